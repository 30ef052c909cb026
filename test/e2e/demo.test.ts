/** The README's first command: `npm run demo` runs the example API and the server, and shows them working. */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { ROOT } from "../support/processes.ts"

describe("npm run demo", () => {
  it("starts the example API and the server, calls tools through a real MCP client, and exits 0 with --once", async () => {
    const r = await new Promise<{ code: number | null; out: string }>((res) => {
      const child = spawn(process.execPath, [resolve(ROOT, "dist/bin/demo.js"), "--once"], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout.on("data", (d: Buffer) => (out += d.toString()))
      child.stderr.on("data", (d: Buffer) => (out += d.toString()))
      child.on("exit", (code) => res({ code, out }))
    })
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "tools/list → 6 tools")
    assert.include(r.out, "\"name\":\"Bella\"")
    assert.include(r.out, "'petId' must be of type integer")
    assert.include(r.out, "getPet failed: HTTP 404 Not Found")
    assert.match(r.out, /Streamable HTTP: http:\/\/127\.0\.0\.1:\d+\/mcp/)
  })
})
