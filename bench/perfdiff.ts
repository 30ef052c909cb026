/**
 * Where two server configurations differ in CPU per call, by symbol: each stdio server runs the bench's loop
 * (getPet, cache off) under Linux `perf record` (cpu-clock sampling, so it works without hardware counters,
 * in a VM too), with `--perf-basic-prof` so JIT-compiled JavaScript has names; kernel time is included. The
 * two are measured one after the other, so machine drift shows in the totals: read the symbols that appear
 * or grow in B. Needs the Debian package `linux-perf`.
 *
 *   npm run build && node bench/perfdiff.ts [--seconds 8] [--concurrency 8] [--a "<server args>"] [--b "<server args>"]
 *     [--a-env K=V,…] [--b-env K=V,…] [--top 40]
 *
 * By default A is the plain server and B the same with every call traced to a local OTLP sink.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { closedLoop, connectStdio, EXAMPLE_SPEC, installCleanup, startUpstream } from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    concurrency: { type: "string", default: "8" },
    a: { type: "string", default: "" },
    b: { type: "string" },
    "a-env": { type: "string", default: "" },
    "b-env": { type: "string", default: "" },
    top: { type: "string", default: "40" }
  }
})

/** perf's "Event count" (cpu-clock: nanoseconds) and each symbol's share, from `perf report`. */
const report = async (data: string, sort: "sym" | "dso") => {
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn("perf", ["report", "-i", data, "--no-children", "-g", "none", "--sort", sort, "--stdio"], {
      stdio: ["ignore", "pipe", "ignore"]
    })
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.on("error", reject).on("exit", () => resolve(out))
  })
  const totalNs = Number(/Event count \(approx\.\): (\d+)/.exec(text)?.[1] ?? Number.NaN)
  const shares = new Map<string, number>()
  for (const m of text.matchAll(/^\s+([\d.]+)%\s+(?:\[.\]\s+)?(.+?)\s*$/gm)) {
    const key = m[2]!.replace(/^\[JIT\] tid \d+$/, "[JIT]") // one per process
    shares.set(key, (shares.get(key) ?? 0) + Number(m[1]) / 100)
  }
  return { totalNs, shares }
}

installCleanup()
const upstream = await startUpstream()
const sink = await startUpstream("otlp-sink")
const dir = mkdtempSync(join(tmpdir(), "perfdiff-"))
try {
  const base = ["--spec", EXAMPLE_SPEC, "--base-url", upstream.url, "--cache-backend", "none", "--catalog-cache-dir", "off"]
  const split = (s: string) => s.split(" ").filter((x) => x !== "")
  const env = (s: string) => Object.fromEntries(s.split(",").filter((x) => x.includes("=")).map((x) => x.split("=", 2) as [string, string]))
  const configs = [
    ["A", split(flags.a), env(flags["a-env"])],
    ["B", flags.b !== undefined ? split(flags.b) : ["--otel-exporter-otlp-endpoint", sink.url], env(flags["b-env"])]
  ] as const
  const perCall: Record<string, { calls: number; sym: Awaited<ReturnType<typeof report>>; dso: Awaited<ReturnType<typeof report>> }> = {}
  for (const [name, args, vars] of configs) {
    const conn = await connectStdio([...base, ...args], { nodeArgs: ["--perf-basic-prof"], env: vars })
    try {
      const call = async () => {
        await conn.client.callTool({ name: "getPet", arguments: { petId: 1 } })
        return undefined
      }
      const loop = (ms: number) => closedLoop({ concurrency: Number(flags.concurrency), maxCalls: 2_000_000, maxMs: ms, call })
      await loop(5000) // JIT warm-up, not recorded
      const data = join(dir, `${name}.data`)
      const perf = spawn("perf", ["record", "-F", "1999", "-g", "-p", String(conn.pid), "-o", data], { stdio: "ignore" })
      await new Promise((r) => setTimeout(r, 300))
      const r = await loop(Number(flags.seconds) * 1000)
      perf.kill("SIGINT")
      await new Promise((r) => perf.on("exit", r))
      perCall[name] = { calls: r.calls, sym: await report(data, "sym"), dso: await report(data, "dso") }
    } finally {
      await conn.close()
    }
  }
  const a = perCall["A"]!
  const b = perCall["B"]!
  const us = (x: typeof a, kind: "sym" | "dso", key: string) => ((x[kind].shares.get(key) ?? 0) * x[kind].totalNs) / x.calls / 1000
  const lines = [
    `A: ${configs[0][1].join(" ") || "(plain)"} ${flags["a-env"]}: ${a.calls} calls, ${(a.sym.totalNs / a.calls / 1000).toFixed(1)} µs CPU per call`,
    `B: ${configs[1][1].join(" ")} ${flags["b-env"]}: ${b.calls} calls, ${(b.sym.totalNs / b.calls / 1000).toFixed(1)} µs CPU per call`,
    "",
    "by binary (µs per call, A → B):"
  ]
  for (const key of new Set([...a.dso.shares.keys(), ...b.dso.shares.keys()])) {
    lines.push(`  ${us(a, "dso", key).toFixed(1).padStart(7)} → ${us(b, "dso", key).toFixed(1).padStart(7)}  ${key}`)
  }
  lines.push("", `symbols that grew most (µs per call, B − A, then A and B):`)
  const rows = [...new Set([...a.sym.shares.keys(), ...b.sym.shares.keys()])]
    .map((key) => [key, us(b, "sym", key) - us(a, "sym", key), us(a, "sym", key), us(b, "sym", key)] as const)
    .sort((x, y) => y[1] - x[1])
  for (const [key, d, x, y] of rows.slice(0, Number(flags.top))) {
    lines.push(`  ${d.toFixed(2).padStart(7)}  ${x.toFixed(2).padStart(7)} ${y.toFixed(2).padStart(7)}  ${key.slice(0, 120)}`)
  }
  process.stdout.write(`${lines.join("\n")}\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
  await sink.stop()
  await upstream.stop()
}
