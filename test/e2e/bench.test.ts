/** The benchmark must not rot: its smoke mode runs every cell briefly and fails on any error or empty cell. */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { ROOT } from "../support/processes.ts"

describe("npm run bench", () => {
  it("runs in smoke mode without errors", async () => {
    const r = await new Promise<{ code: number | null; out: string }>((res) => {
      const child = spawn(process.execPath, [resolve(ROOT, "bench/run.ts"), "--smoke"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout.on("data", (d: Buffer) => (out += d.toString()))
      child.stderr.on("data", (d: Buffer) => (out += d.toString()))
      const timer = setTimeout(() => child.kill("SIGTERM"), 150_000)
      child.on("exit", (code) => {
        clearTimeout(timer)
        res({ code, out })
      })
    })
    assert.strictEqual(r.code, 0, r.out.slice(-3000))
    assert.include(r.out, "smoke: ok")
    // the reference rows: the bare Node.js MCP server of bench/floor.ts, over both transports
    assert.match(r.out, /stdio, Node floor\s+C=1 /)
    assert.match(r.out, /http, Node floor\s+C=64 /)
  }, 180_000)
})
