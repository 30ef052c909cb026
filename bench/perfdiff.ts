/**
 * Where two server configurations differ in CPU per call, by symbol: both stdio servers run the bench's loop
 * (getPet, cache off) under one Linux `perf record` (cpu-clock sampling, so it works without hardware
 * counters, in a VM too), with `--perf-basic-prof` so JIT-compiled JavaScript has names; kernel time is
 * included. They take turns in one-second blocks, the order reversed every round, so the machine's drift
 * falls on both alike. Needs the Debian package `linux-perf`.
 *
 *   npm run build && node bench/perfdiff.ts [--rounds 8] [--concurrency 8] [--a="<server args>"] [--b="<server args>"]
 *     [--a-env K=V,…] [--b-env K=V,…] [--a-cli <cli.js>] [--b-cli <cli.js>] [--top 40] [--http]   (KEEP_PERF=1 keeps perf.data)
 *
 * By default A is the plain server and B the same with every call traced to a local OTLP sink. `--a-cli` and
 * `--b-cli` run another build (default: this one's bundle, or BENCH_CLI), to compare two commits; `{sink}` in
 * `--a`/`--b` is the OTLP sink's URL (e.g. both traced: `--a="--otel-exporter-otlp-endpoint {sink}"`). Server
 * args go after `=`: node's parseArgs takes a separate value that starts with a dash for another option.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { closedLoop, connectHttp, connectStdio, EXAMPLE_SPEC, installCleanup, startUpstream } from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "8" },
    concurrency: { type: "string", default: "8" },
    a: { type: "string", default: "" },
    b: { type: "string" },
    "a-env": { type: "string", default: "" },
    "b-env": { type: "string", default: "" },
    "a-cli": { type: "string" },
    "b-cli": { type: "string" },
    top: { type: "string", default: "40" },
    http: { type: "boolean", default: false }
  }
})

/**
 * One `perf report` of both processes, by thread and `sort` key: per process (all its threads), the CPU time
 * (cpu-clock: nanoseconds) under each symbol or binary.
 */
const report = async (data: string, sort: "sym" | "dso", threadsOf: ReadonlyArray<ReadonlySet<number>>) => {
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn("perf", ["report", "-i", data, "--no-children", "-g", "none", "--sort", `pid,${sort}`, "--stdio"], {
      stdio: ["ignore", "pipe", "ignore"]
    })
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.on("error", reject).on("exit", () => resolve(out))
  })
  const totalNs = Number(/Event count \(approx\.\): (\d+)/.exec(text)?.[1] ?? Number.NaN)
  const perProcess = threadsOf.map(() => new Map<string, number>())
  for (const m of text.matchAll(/^\s+([\d.]+)%\s+(\d+):\S+\s+(?:\[.\]\s+)?(.+?)\s*$/gm)) {
    const i = threadsOf.findIndex((threads) => threads.has(Number(m[2])))
    if (i < 0) continue
    const key = m[3]!.replace(/^\[JIT\] tid \d+$/, "[JIT]") // one per thread
    perProcess[i]!.set(key, (perProcess[i]!.get(key) ?? 0) + (Number(m[1]) / 100) * totalNs)
  }
  return perProcess
}

/** A process's thread ids (from /proc), so perf's per-thread samples add up per process. */
const threadsOf = (pid: number): Set<number> => new Set(readdirSync(`/proc/${pid}/task`).map(Number))

installCleanup()
const upstream = await startUpstream()
const sink = await startUpstream("otlp-sink")
const dir = mkdtempSync(join(tmpdir(), "perfdiff-"))
try {
  const base = ["--spec", EXAMPLE_SPEC, "--base-url", upstream.url, "--cache-backend", "none", "--catalog-cache-dir", "off"]
  const split = (s: string) => s.split(" ").filter((x) => x !== "").map((x) => x.replaceAll("{sink}", sink.url))
  const env = (s: string) => Object.fromEntries(s.split(",").filter((x) => x.includes("=")).map((x) => x.split("=", 2) as [string, string]))
  const configs = [
    ["A", split(flags.a), env(flags["a-env"]), flags["a-cli"]],
    ["B", flags.b !== undefined ? split(flags.b) : ["--otel-exporter-otlp-endpoint", sink.url], env(flags["b-env"]), flags["b-cli"]]
  ] as const
  // --perf-basic-prof also turns on V8's log: into the scratch directory, not isolate-*.log files in the work tree
  const nodeArgs = (name: string) => ["--perf-basic-prof", `--logfile=${join(dir, `${name}-v8.log`)}`, "--no-logfile-per-isolate"]
  const conns = await Promise.all(configs.map(([name, args, vars, cli]) =>
      (flags.http ? connectHttp : connectStdio)([...base, ...args], { nodeArgs: nodeArgs(name), env: vars, ...(cli !== undefined ? { cli: resolve(cli) } : {}) })
    )
  )
  const perCall: Record<string, { calls: number; sym: Map<string, number>; dso: Map<string, number> }> = {}
  try {
    const loop = (conn: (typeof conns)[number], ms: number) =>
      closedLoop({
        concurrency: Number(flags.concurrency),
        maxCalls: 2_000_000,
        maxMs: ms,
        call: async () => {
          await conn.client.callTool({ name: "getPet", arguments: { petId: 1 } })
          return undefined
        }
      })
    for (const conn of conns) await loop(conn, 5000) // JIT warm-up, not recorded
    const data = join(dir, "perf.data")
    const perf = spawn("perf", ["record", "-F", "1999", "-g", "-p", conns.map((c) => c.pid).join(","), "-o", data], { stdio: "ignore" })
    await new Promise((r) => setTimeout(r, 300))
    const calls = [0, 0]
    for (let round = 0; round < Number(flags.rounds); round++) {
      for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) calls[i]! += (await loop(conns[i]!, 1000)).calls
    }
    const threads = conns.map((c) => threadsOf(c.pid!))
    perf.kill("SIGINT")
    await new Promise((r) => perf.on("exit", r))
    const [sym, dso] = [await report(data, "sym", threads), await report(data, "dso", threads)]
    for (const [i, [name]] of configs.entries()) perCall[name] = { calls: calls[i]!, sym: sym[i]!, dso: dso[i]! }
  } finally {
    for (const conn of conns) await conn.close()
  }
  const a = perCall["A"]!
  const b = perCall["B"]!
  const us = (x: typeof a, kind: "sym" | "dso", key: string) => (x[kind].get(key) ?? 0) / x.calls / 1000
  const total = (x: typeof a) => [...x.dso.values()].reduce((t, v) => t + v, 0) / x.calls / 1000
  const lines = [
    `A: ${flags["a-cli"] ?? ""} ${configs[0][1].join(" ") || "(plain)"} ${flags["a-env"]}: ${a.calls} calls, ${total(a).toFixed(1)} µs CPU per call`,
    `B: ${flags["b-cli"] ?? ""} ${configs[1][1].join(" ")} ${flags["b-env"]}: ${b.calls} calls, ${total(b).toFixed(1)} µs CPU per call`,
    "",
    "by binary (µs per call, A → B):"
  ]
  for (const key of new Set([...a.dso.keys(), ...b.dso.keys()])) {
    lines.push(`  ${us(a, "dso", key).toFixed(1).padStart(7)} → ${us(b, "dso", key).toFixed(1).padStart(7)}  ${key}`)
  }
  lines.push("", `symbols that grew most (µs per call, B − A, then A and B):`)
  const rows = [...new Set([...a.sym.keys(), ...b.sym.keys()])]
    .map((key) => [key, us(b, "sym", key) - us(a, "sym", key), us(a, "sym", key), us(b, "sym", key)] as const)
    .sort((x, y) => y[1] - x[1])
  for (const [key, d, x, y] of rows.slice(0, Number(flags.top))) {
    lines.push(`  ${d.toFixed(2).padStart(7)}  ${x.toFixed(2).padStart(7)} ${y.toFixed(2).padStart(7)}  ${key.slice(0, 120)}`)
  }
  process.stdout.write(`${lines.join("\n")}\n`)
} finally {
  if (process.env["KEEP_PERF"]) process.stderr.write(`perf.data kept in ${dir}\n`)
  else rmSync(dir, { recursive: true, force: true })
  await sink.stop()
  await upstream.stop()
}
