/**
 * Instructions per tool call of the built server, counted by valgrind's callgrind: a deterministic figure for
 * A/B comparisons of small changes, which the CPU times of `npm run bench` (±20 % on a shared machine)
 * cannot resolve. The server runs under callgrind with counting off during start-up and JIT warm-up, on only
 * for the measured loop (MCP SDK client over stdio, getPet on the bench's example upstream, response cache
 * off). Counts include V8's helper threads (GC and JIT compiling, which under valgrind goes on well past the
 * warm-up: 1,500 calls of warm-up counted ~450 k per call, 4,000 ~320-350 k); they are not comparable across
 * machines, Node versions or warm-ups: compare runs with the same settings, several of each. The main
 * thread's share is printed too (callgrind counts each thread apart): it leaves out the helper threads'
 * compiling, which moves the totals by ±5-10 % between runs of a traced server.
 *
 * Caveat: under valgrind some JIT-compiled code runs far more instructions than natively (a protobuf span
 * writer counted ~30 k instructions per span under callgrind, and took 1.4 µs per span natively). For new
 * JavaScript on the hot path, check the direction with a native timing as well.
 *
 *   npm run build && node bench/instructions.ts [--concurrency 8] [--calls 1000] [--warmup 4000] [--traced] [--http] [--ping] [-- <server args>]
 *
 * `--ping` measures MCP pings instead of tool calls (the transport and protocol alone, without the call's work).
 * `--traced` adds an OTLP endpoint (a local sink that accepts and drops spans); `--http` measures the
 * Streamable HTTP transport instead of stdio (SDK client over HTTP; its counts vary more, about ±8 %, as
 * TCP reads batch differently from run to run: compare several runs). With KEEP_CALLGRIND=1 the callgrind
 * output is kept (its directory is printed; `-01` files are the main thread) for `callgrind_annotate`: V8's
 * own functions (string building, GC, JIT compiling) are named there, JIT-compiled JavaScript is not. Needs
 * valgrind (Debian package `valgrind`); about a minute for 1,000 calls. Several runs can go in parallel:
 * counts do not depend on load.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { CLI, EXAMPLE_SPEC, freePort, sleep, startUpstream, stopPid } from "./lib.ts"

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "8" },
    calls: { type: "string", default: "1000" },
    warmup: { type: "string", default: "4000" },
    traced: { type: "boolean", default: false },
    http: { type: "boolean", default: false },
    ping: { type: "boolean", default: false }
  }
})
const concurrency = Number(flags.concurrency)
const calls = Number(flags.calls)

const upstream = await startUpstream()
const sink = flags.traced ? await startUpstream("otlp-sink") : undefined
const dir = mkdtempSync(join(tmpdir(), "callgrind-"))
const serverArgs = [
  "--spec", EXAMPLE_SPEC, "--base-url", upstream.url, "--cache-backend", "none", "--catalog-cache-dir", "off",
  ...(sink !== undefined ? ["--otel-exporter-otlp-endpoint", sink.url] : []),
  ...positionals
]
const valgrind = ["--tool=callgrind", "--smc-check=all", "--instr-atstart=no", "--separate-threads=yes", `--callgrind-out-file=${dir}/out.%p`, process.execPath, CLI]
/** The server under valgrind and a transport to it: over stdio, or over Streamable HTTP once it answers. */
const connect = async (): Promise<{ transport: Transport; pid: number; stop: () => Promise<void> }> => {
  if (!flags.http) {
    const transport = new StdioClientTransport({
      command: "valgrind", args: [...valgrind, ...serverArgs], env: { ...process.env } as Record<string, string>, stderr: "pipe"
    })
    return { transport, pid: -1, stop: async () => {} }
  }
  const port = await freePort()
  const child = spawn("valgrind", [...valgrind, ...serverArgs, "--transport", "http", "--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "ignore"]
  })
  const base = `http://127.0.0.1:${port}`
  for (const until = Date.now() + 180_000; ;) {
    if (Date.now() > until || child.exitCode !== null) throw new Error("the HTTP server under valgrind did not start")
    if (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)) break
    await sleep(500)
  }
  return { transport: new StreamableHTTPClientTransport(new URL(`${base}/mcp`)), pid: child.pid!, stop: () => stopPid(child.pid) }
}
const server = await connect()
const transport = server.transport
const client = new Client({ name: "bench-instructions", version: "1.0.0" })
try {
  await client.connect(transport)
  const loop = async (n: number) => {
    let left = n
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        if (flags.ping) await client.ping({ timeout: 600_000 })
        else await client.callTool({ name: "getPet", arguments: { petId: 1 } }, undefined, { timeout: 600_000 })
      }
    }))
  }
  await loop(Number(flags.warmup)) // JIT warm-up, not counted
  await sleep(300)
  const pid = String(flags.http ? server.pid : (transport as StdioClientTransport).pid)
  execFileSync("callgrind_control", ["-i", "on", pid], { stdio: "ignore" })
  await loop(calls)
  execFileSync("callgrind_control", ["-i", "off", pid], { stdio: "ignore" })
  execFileSync("callgrind_control", ["-d", pid], { stdio: "ignore" })
  await sleep(500)
  // one file per thread (`-01` is the main thread), one `totals:` line per dump in each
  let total = 0
  let main = 0
  for (const f of readdirSync(dir)) {
    let count = 0
    for (const m of readFileSync(join(dir, f), "utf8").matchAll(/^totals: (\d+)/gm)) count = Math.max(count, Number(m[1]))
    total += count
    if (f.endsWith("-01")) main += count
  }
  const k = (n: number) => (n / calls / 1000).toFixed(0)
  process.stdout.write(
    `${k(total)} k instructions per ${flags.ping ? "ping" : "call"}, ${k(main)} k on the main thread (${flags.http ? "Streamable HTTP" : "stdio"}, C=${concurrency}, ` +
      `${calls} calls; server args: ${serverArgs.slice(8).join(" ") || "none"})\n`
  )
} finally {
  await client.close().catch(() => undefined)
  await server.stop()
  await upstream.stop()
  await sink?.stop()
  if (process.env["KEEP_CALLGRIND"]) process.stderr.write(`callgrind output kept in ${dir}\n`)
  else rmSync(dir, { recursive: true, force: true })
}
