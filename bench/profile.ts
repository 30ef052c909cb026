/**
 * CPU profiles of the built server (`node --cpu-prof dist/bin/cli.js …`) under the benchmark's workloads,
 * summarised as Markdown:
 *
 * - `stdio-c1`: the stdio server under the closed loop at C=1 (getPet, response cache off), start-up and
 *   warm-up samples left out;
 * - `http-c1`:  the same over Streamable HTTP;
 * - `stdio-c1-cache-hit`: the same over stdio with the memory cache on (every call a hit), when the server has one;
 * - `stdio-c1-traced`: the stdio loop with tracing on (spans to a local sink) and metrics served;
 * - `cold-github`: a cold start (spawn → initialize → tools/list) on the GitHub REST spec;
 * - `cold-petstore`: a cold start on the bundled spec (module loading dominates).
 *
 *   npm run build && node bench/profile.ts [--seconds N] [--only stdio-c1,cold-github] [--concurrency 8]
 *
 * (`--concurrency` runs the loops with that many callers; the profile names keep `c1`.)
 *
 * Writes bench/results/profiles/<name>.cpuprofile (open in Chrome DevTools or speedscope) and
 * bench/results/profile-<time>.md, and prints the summary.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { type CpuProfile, summarize, summaryMarkdown } from "./cpuprofile.ts"
import {
  closedLoop,
  coldStart,
  connectHttp,
  connectStdio,
  EXAMPLE_SPEC,
  GITHUB_SPEC,
  installCleanup,
  type McpConnection,
  preflight,
  processCpuMs,
  processMemMiB,
  RESULTS,
  serverFeatures,
  sleep,
  startUpstream,
  stopAll
} from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "15" },
    only: { type: "string" },
    interval: { type: "string", default: "250" },
    concurrency: { type: "string", default: "1" }
  }
})
const seconds = Number(flags.seconds)
const only = flags.only?.split(",")
const wanted = (name: string) => only === undefined || only.includes(name)
const DIR = resolve(RESULTS, "profiles")
const log = (s: string) => process.stderr.write(`${s}\n`)

const profArgs = (name: string) => [
  "--cpu-prof",
  `--cpu-prof-dir=${DIR}`,
  `--cpu-prof-name=${name}.cpuprofile`,
  `--cpu-prof-interval=${flags.interval}`
]

const readProfile = async (name: string): Promise<CpuProfile> => {
  const file = resolve(DIR, `${name}.cpuprofile`)
  // written by the server as it exits
  for (let i = 0; i < 100 && !existsSync(file); i++) await sleep(100)
  return JSON.parse(readFileSync(file, "utf8")) as CpuProfile
}

const underLoop = async (
  name: string,
  extraArgs: Array<string>,
  connect: (args: Array<string>, nodeArgs: Array<string>) => Promise<McpConnection>
) => {
  const upstream = await startUpstream()
  const t0 = performance.now()
  const conn = await connect(["--spec", EXAMPLE_SPEC, "--base-url", upstream.url, ...extraArgs], profArgs(name))
  const call = async () => {
    const r = await conn.client.callTool({ name: "getPet", arguments: { petId: 1 } }, undefined, { timeout: 10_000 })
    return r.isError === true ? "tool error" : undefined
  }
  try {
    await closedLoop({ concurrency: 1, maxCalls: 100_000, maxMs: 2000, call }) // warm-up, not in the summary
    const skipMs = performance.now() - t0
    const cpu0 = processCpuMs(conn.pid)
    const rss0 = processMemMiB(conn.pid, "VmRSS")
    const r = await closedLoop({ concurrency: Number(flags.concurrency), maxCalls: 1_000_000, maxMs: seconds * 1000, call })
    const cpu1 = processCpuMs(conn.pid)
    const rss1 = processMemMiB(conn.pid, "VmRSS")
    log(`  ${name}: ${r.calls} calls in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.errors} errors, ` +
      `server CPU ${cpu0 === undefined || cpu1 === undefined ? "n/a" : ((cpu1 - cpu0) / r.calls).toFixed(3)} ms/call, ` +
      `RSS ${rss0?.toFixed(0)} → ${rss1?.toFixed(0)} MiB`)
    return { skipMs, calls: r.calls }
  } finally {
    await conn.close()
    await upstream.stop()
  }
}

const main = async () => {
  preflight()
  installCleanup()
  mkdirSync(DIR, { recursive: true })
  const sections: Array<string> = [`# Server CPU profiles`, "", `${new Date().toISOString()}, Node ${process.version}, sampling every ${flags.interval} µs.`, ""]

  const features = serverFeatures()
  // spans of the traced profile go to a local sink (its own process) that accepts and drops them
  const sink = await startUpstream("otlp-sink")
  const cacheOff = features.cacheNone ? ["--cache-backend", "none"] : []
  const stdio = (a: Array<string>, n: Array<string>) => connectStdio(a, { nodeArgs: n })
  const http = (a: Array<string>, n: Array<string>) => connectHttp(a, { nodeArgs: n })
  for (const [name, args, connect] of [
    ["stdio-c1", cacheOff, stdio],
    ["http-c1", cacheOff, http],
    ...(features.cache ? [["stdio-c1-cache-hit", ["--cache-backend", "memory"], stdio] as const] : []),
    ["stdio-c1-traced", [...cacheOff, "--otel-exporter-otlp-endpoint", sink.url, "--enable-prometheus", "--prometheus-port", "0"], stdio]
  ] as const) {
    if (!wanted(name)) continue
    log(`profiling ${name} (${seconds} s at C=${flags.concurrency}, server args ${args.join(" ") || "(defaults)"})`)
    const { skipMs, calls } = await underLoop(name, [...args], connect)
    const s = summarize(await readProfile(name), { skipMs })
    sections.push(summaryMarkdown(`${name}: getPet at C=${flags.concurrency}, ${calls} calls (start-up and warm-up left out)`, s))
    sections.push(`Per call: ${(s.busyMs / calls).toFixed(3)} ms of main-thread CPU in the profile.`, "")
  }
  for (const [name, spec] of [["cold-github", GITHUB_SPEC], ["cold-petstore", EXAMPLE_SPEC]] as const) {
    if (!wanted(name)) continue
    if (!existsSync(spec)) {
      log(`skipping ${name}: ${spec} not found`)
      continue
    }
    log(`profiling ${name}`)
    // a first start: no cached catalog
    const c = await coldStart(spec, { nodeArgs: profArgs(name), serverArgs: features.catalogCache ? ["--catalog-cache-dir", "off"] : [] })
    log(`  ${name}: initialize ${c.initializeMs.toFixed(0)} ms, tools/list ${c.toolsListMs.toFixed(0)} ms (profiling slows it)`)
    sections.push(summaryMarkdown(`${name}: spawn → initialize → tools/list (${c.tools} tools, ${c.toolsListBytes} bytes)`, summarize(await readProfile(name))))
  }
  await sink.stop()
  await stopAll()
  const md = sections.join("\n")
  const out = resolve(RESULTS, `profile-${new Date().toISOString().replace(/[:.]/g, "-")}.md`)
  writeFileSync(out, md)
  writeFileSync(resolve(RESULTS, "profile-latest.md"), md)
  process.stdout.write(md)
  log(`wrote ${out} and profiles in ${DIR}`)
}

main().catch(async (e: unknown) => {
  log(`profile: failed: ${e instanceof Error ? (process.env["BENCH_DEBUG"] ? (e.stack ?? e.message) : e.message) : String(e)}`)
  await stopAll()
  process.exit(1)
})
