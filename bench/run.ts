/**
 * `npm run bench`: what the server costs on top of a direct HTTP call, and how fast it starts.
 *
 * - Tool calls: the bundled example API (own process, node:http keep-alive) as the upstream; the built CLI
 *   over stdio and over Streamable HTTP, driven with the MCP SDK client by closed loops at concurrency 1, 8
 *   and 64; the same HTTP request sent directly to the upstream with a keep-alive undici Agent as the
 *   baseline. Per cell: calls/s, ratio to direct, p50/p95/p99, added p50, server CPU per call, errors.
 * - Cold start (stdio, raw JSON-RPC: spawn → initialize → tools/list answered), tools/list bytes and peak
 *   RSS on the bundled spec and on the GitHub REST spec (1,223 operations; by default and, when the server
 *   has discovery mode, also with `--tool-mode all`); with a catalog cache, as a first start and a restart.
 * - The same calls through bench/floor.ts (`stdio, Node floor` and `http, Node floor`), the least any Node.js
 *   MCP server can do per call: what of a cell's cost the platform sets (wake-ups, socket writes, the client).
 * - With a response cache in the server, `stdio, cache hit` cells as well; with tracing, `stdio, traced`
 *   cells (spans to a local OTLP sink, metrics served) and what they cost against plain stdio, also measured
 *   by alternating the two servers in short blocks (see TracingAb).
 *
 * Writes bench/results/<time>-<mode>.{json,md} (and latest.{json,md}) and prints the tables.
 * Modes: default (full, ≈8 min), --quick (≈1 min), --smoke (≈15 s; exits 1 on any error, for CI).
 * All traffic stays on 127.0.0.1; every loop is bounded in calls and time; every child is stopped by PID.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { basename, join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { Agent, request } from "undici"
import {
  CLI,
  closedLoop,
  coldStart,
  type ColdStart,
  connectHttp,
  connectStdio,
  EXAMPLE_SPEC,
  fmt,
  GITHUB_SPEC,
  installCleanup,
  type LoopResult,
  markdownTable,
  median,
  percentiles,
  preflight,
  type McpConnection,
  processCpu,
  processCpuMs,
  processMemMiB,
  machineBusyMs,
  RESULTS,
  ROOT,
  serverFeatures,
  startUpstream,
  stopAll
} from "./lib.ts"

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\nRun 'node bench/run.ts --help' for the options.\n`)
  process.exit(2)
}

const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        smoke: { type: "boolean", default: false },
        seconds: { type: "string" },
        "max-calls": { type: "string" },
        concurrency: { type: "string" },
        workload: { type: "string", default: "getPet" },
        "cold-runs": { type: "string" },
        "no-cold": { type: "boolean", default: false },
        "no-load": { type: "boolean", default: false },
        "no-floor": { type: "boolean", default: false },
        out: { type: "string" },
        help: { type: "boolean", default: false }
      }
    })
  } catch (e) {
    return usageError((e as Error).message)
  }
})()

if (flags.help) {
  process.stdout.write(`node bench/run.ts [--quick | --smoke] [options]    (build first: npm run build; or npm run bench)

  --quick              ≈1 min: 2.5 s per cell, 3 cold starts per spec
  --smoke              ≈15 s: 0.3 s per cell, 1 cold start per spec; exit code 1 on any error (for CI)
  (default: full)      ≈8 min: 15 s per cell, 5 cold starts per spec, tracing A/B 16 rounds × 4 servers × 1.5 s
  --seconds N          measured seconds per cell (after warm-up)
  --max-calls N        most calls per cell
  --concurrency LIST   comma list of closed-loop concurrencies (default 1,8,64)
  --workload NAME      getPet (default), listPets, getInventory
  --cold-runs N        cold starts per spec
  --no-cold, --no-load skip the cold-start or the tool-call part
  --no-floor           skip the Node floor cells (bench/floor.ts: the least a Node.js MCP server does per call)
  --out DIR            results directory (default bench/results)
  BENCH_GITHUB_SPEC    path of the large spec (default ../shared/specs/github_api.github.com.json)
  BENCH_CLI            the server's cli.js (default dist/bundle/cli.js), e.g. another build to compare
`)
  process.exit(0)
}

const MODES = {
  // jitMs: one warm-up per server process (JIT tiering) before any cell; warmMs: per cell, not measured
  // abRounds × abBlockMs: the interleaved tracing A/B (each round one block per server: untraced, traced, twin, and the stdio floor)
  smoke: { cellMs: 300, warmMs: 50, jitMs: 200, maxCalls: 20_000, coldRuns: 1, abRounds: 2, abBlockMs: 100 },
  quick: { cellMs: 2_500, warmMs: 300, jitMs: 1_500, maxCalls: 100_000, coldRuns: 3, abRounds: 6, abBlockMs: 500 },
  full: { cellMs: 15_000, warmMs: 1_000, jitMs: 4_000, maxCalls: 500_000, coldRuns: 5, abRounds: 16, abBlockMs: 1_500 }
} as const
const mode: keyof typeof MODES = flags.smoke ? "smoke" : flags.quick ? "quick" : "full"
const positive = (s: string | undefined, name: string): number | undefined => {
  if (s === undefined) return undefined
  const n = Number(s)
  if (!Number.isFinite(n) || n <= 0) usageError(`--${name} must be a positive number, got '${s}'`)
  return n
}
const settings = {
  cellMs: (positive(flags.seconds, "seconds") ?? MODES[mode].cellMs / 1000) * 1000,
  warmMs: MODES[mode].warmMs,
  jitMs: MODES[mode].jitMs,
  maxCalls: Math.round(positive(flags["max-calls"], "max-calls") ?? MODES[mode].maxCalls),
  coldRuns: Math.round(positive(flags["cold-runs"], "cold-runs") ?? MODES[mode].coldRuns),
  concurrency: (flags.concurrency ?? "1,8,64").split(",").map((c) => Math.round(positive(c.trim(), "concurrency")!)),
  /** per-call timeout: a stuck call is an error, never a hang */
  callTimeoutMs: 10_000
}
/** The Node floor's cells (bench/floor.ts) run beside the server's. */
const withFloor = !flags["no-floor"]

interface Workload {
  readonly tool: string
  readonly args: Record<string, unknown>
  /** the request the server makes for this call, relative to the base URL (…/v1) */
  readonly path: string
}
const WORKLOADS: Record<string, Workload> = {
  getPet: { tool: "getPet", args: { petId: 1 }, path: "/pets/1" },
  listPets: { tool: "listPets", args: { limit: 20 }, path: "/pets?limit=20" },
  getInventory: { tool: "getInventory", args: {}, path: "/store/inventory" }
}
const workload = WORKLOADS[flags.workload]
if (workload === undefined) usageError(`--workload must be one of ${Object.keys(WORKLOADS).join(", ")}`)

/**
 * direct: undici to the upstream; stdio/http: through the server, cache off; stdio-cache: cache hits;
 * stdio-telemetry: stdio with every call traced (spans exported to a local OTLP sink) and metrics served;
 * stdio-floor/http-floor: bench/floor.ts, the least a Node.js MCP server can do for the same call.
 */
type Path = "direct" | "stdio" | "stdio-floor" | "http" | "http-floor" | "stdio-cache" | "stdio-telemetry"
const LABEL: Record<Path, string> = {
  direct: "direct",
  stdio: "stdio",
  "stdio-floor": "stdio, Node floor",
  http: "http",
  "http-floor": "http, Node floor",
  "stdio-cache": "stdio, cache hit",
  "stdio-telemetry": "stdio, traced"
}

interface Cell {
  readonly path: Path
  readonly concurrency: number
  readonly calls: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly seconds: number
  readonly callsPerSecond: number
  readonly ratioToDirect: number | undefined
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  readonly meanMs: number
  readonly addedP50Ms: number | undefined
  readonly serverCpuMsPerCall: number | undefined
  readonly serverUserCpuMsPerCall: number | undefined
  readonly serverSystemCpuMsPerCall: number | undefined
  readonly upstreamCpuMsPerCall: number | undefined
  /** CPU used on the machine by anything but the server, the upstream and the bench, in cores (noise) */
  readonly otherLoadCores: number | undefined
  /** upstream HTTP requests per completed call: 1 when every call went through, ≈0 for cache hits */
  readonly upstreamRequestsPerCall: number
  readonly clientCpuMsPerCall: number
}

/**
 * Tracing's cost measured by alternation: the untraced and the traced stdio servers (both running) take turns
 * in short blocks at one concurrency, the order reversed every round, so the machine's drift (±20-30 % over
 * minutes here) falls on both alike; per round the traced share of calls/s and the extra server CPU per call,
 * reported as medians. A second untraced server (the twin) takes its turns too: what separates it from the
 * first is the method's own noise. With the floor cells on, the stdio Node floor takes its turns as well: the
 * untraced server's CPU per call and calls/s against the floor's, less noisy than their separate cells.
 */
interface TracingAb {
  readonly concurrency: number
  readonly rounds: number
  readonly blockSeconds: number
  /** per round: traced calls/s ÷ untraced calls/s */
  readonly shares: ReadonlyArray<number>
  /** per round: traced minus untraced server CPU, ms per call */
  readonly cpuDeltaMs: ReadonlyArray<number>
  /** per round: the untraced server's CPU, ms per call */
  readonly untracedCpuMs: ReadonlyArray<number>
  /** per round: the twin's calls/s ÷ the untraced server's, and its CPU minus the untraced server's (ms per call) */
  readonly twinShares: ReadonlyArray<number>
  readonly twinCpuDeltaMs: ReadonlyArray<number>
  /** per round, when the floor took turns: the untraced server's CPU per call ÷ the floor's, and its calls/s ÷ the floor's */
  readonly floorCpuRatios?: ReadonlyArray<number>
  readonly floorShares?: ReadonlyArray<number>
}

const gitInfo = () => {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" }).trim() !== ""
    return { commit, srcModified: dirty }
  } catch {
    return { commit: "unknown", srcModified: false }
  }
}

/** The bench's minimal MCP server (see its header), run like the CLI. */
const FLOOR = resolve(ROOT, "bench/floor.ts")

const T0 = performance.now()
const log = (s: string) => process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(1).padStart(5)} s] ${s}\n`)

// ---------------------------------------------------------------------------------------------------------

const measureCold = async (spec: string, runs: number, serverArgs: ReadonlyArray<string> = [], note = "") => {
  const results: Array<ColdStart> = []
  const label = [basename(spec), ...serverArgs.filter((a, i, all) => a !== "--catalog-cache-dir" && all[i - 1] !== "--catalog-cache-dir")].join(" ") + note
  for (let i = 0; i < runs; i++) {
    results.push(await coldStart(spec, { serverArgs }))
    log(`  cold start ${label} #${i + 1}: tools/list done in ${fmt(results.at(-1)!.toolsListMs)} ms`)
  }
  const med = (f: (c: ColdStart) => number | undefined) => {
    const xs = results.map(f).filter((x): x is number => x !== undefined)
    return xs.length === 0 ? undefined : median(xs)
  }
  const list = results.map((r) => r.toolsListMs)
  return {
    spec: label,
    runs,
    tools: results[0]!.tools,
    toolsListBytes: results[0]!.toolsListBytes,
    initializeMsMedian: med((r) => r.initializeMs)!,
    toolsListMsMedian: med((r) => r.toolsListMs)!,
    toolsListMsMin: Math.min(...list),
    toolsListMsMax: Math.max(...list),
    cpuMsMedian: med((r) => r.cpuMs),
    peakRssMiBMedian: med((r) => r.peakRssMiB),
    runsDetail: results
  }
}
type ColdSummary = Awaited<ReturnType<typeof measureCold>>

const main = async () => {
  preflight()
  installCleanup()
  const outDir = flags.out !== undefined ? resolve(flags.out) : RESULTS
  mkdirSync(outDir, { recursive: true })
  const started = new Date()
  const git = gitInfo()
  const features = serverFeatures()
  const perCellS = (settings.cellMs + settings.warmMs) / 1000
  log(
    `bench (${mode}): ${settings.concurrency.length * (3 + (withFloor ? 2 : 0) + (features.cache ? 1 : 0) + (features.telemetry ? 1 : 0))} cells × ≤${fmt(perCellS)} s, ${settings.coldRuns} cold start(s) per spec; ` +
      `workload ${workload.tool} ${JSON.stringify(workload.args)}`
  )

  // ---- cold start ----
  const cold: Array<ColdSummary> = []
  const coldNotes: Array<string> = []
  if (!flags["no-cold"]) {
    log("cold start (stdio: spawn → initialize → tools/list)")
    // with a catalog cache, a first start (none) and a restart (the catalog built by an earlier start) differ
    const cacheDir = features.catalogCache ? mkdtempSync(join(tmpdir(), "bench-catalog-")) : undefined
    const measureBoth = async (spec: string, args: ReadonlyArray<string> = []) => {
      if (cacheDir === undefined) return void cold.push(await measureCold(spec, settings.coldRuns, args))
      cold.push(await measureCold(spec, settings.coldRuns, [...args, "--catalog-cache-dir", "off"], " (first start)"))
      await coldStart(spec, { serverArgs: [...args, "--catalog-cache-dir", cacheDir] }) // builds the cached catalog
      cold.push(await measureCold(spec, settings.coldRuns, [...args, "--catalog-cache-dir", cacheDir], " (restart, cached catalog)"))
    }
    try {
      await measureBoth(EXAMPLE_SPEC)
      if (existsSync(GITHUB_SPEC)) {
        await measureBoth(GITHUB_SPEC)
        // the default may list meta-tools for a spec this big (discovery mode); also measure the full listing
        if (features.toolMode) await measureBoth(GITHUB_SPEC, ["--tool-mode", "all"])
      } else coldNotes.push(`GitHub spec not found at ${GITHUB_SPEC} (set BENCH_GITHUB_SPEC): skipped`)
    } finally {
      if (cacheDir !== undefined) rmSync(cacheDir, { recursive: true, force: true })
    }
  }

  // ---- tool calls ----
  const cells: Array<Cell> = []
  const loadMemory: Record<string, { peakRssMiB: number | undefined; rssMiB: number | undefined }> = {}
  // the proxy path is measured with the response cache off; cache hits get their own cells
  const cacheOff = features.cacheNone ? ["--cache-backend", "none"] : []
  const paths: Array<Path> = [
    "direct", "stdio", ...(withFloor ? ["stdio-floor" as const] : []), "http", ...(withFloor ? ["http-floor" as const] : []),
    ...(features.cache ? ["stdio-cache" as const] : []),
    ...(features.telemetry ? ["stdio-telemetry" as const] : [])
  ]
  let serverArgsNote = ""
  let tracingAb: TracingAb | undefined
  if (!flags["no-load"]) {
    const upstream = await startUpstream()
    const otlp = await startUpstream("otlp-sink")
    log(`upstream: example API at ${upstream.url} (pid ${upstream.pid})`)
    const serverArgs = ["--spec", EXAMPLE_SPEC, "--base-url", upstream.url]
    serverArgsNote = `--spec examples/petstore.yaml --base-url <upstream> ${cacheOff.join(" ")}`.trim()
    const conns: Partial<Record<Path, McpConnection>> = {}
    const agent = new Agent({
      connections: 100,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: settings.callTimeoutMs,
      bodyTimeout: settings.callTimeoutMs
    })
    try {
      await Promise.all([
        connectStdio([...serverArgs, ...cacheOff]).then((c) => (conns.stdio = c)),
        connectHttp([...serverArgs, ...cacheOff]).then((c) => (conns.http = c)),
        withFloor ? connectStdio([...serverArgs, "--path", workload.path], { cli: FLOOR }).then((c) => (conns["stdio-floor"] = c)) : undefined,
        withFloor ? connectHttp([...serverArgs, "--path", workload.path], { cli: FLOOR }).then((c) => (conns["http-floor"] = c)) : undefined,
        paths.includes("stdio-cache")
          ? connectStdio([...serverArgs, "--cache-backend", "memory"]).then((c) => (conns["stdio-cache"] = c))
          : undefined,
        paths.includes("stdio-telemetry")
          ? connectStdio([
            ...serverArgs, ...cacheOff, "--otel-exporter-otlp-endpoint", otlp.url, "--enable-prometheus", "--prometheus-port", "0"
          ]).then((c) => (conns["stdio-telemetry"] = c))
          : undefined
      ])
      log(`servers: ${Object.entries(conns).map(([k, c]) => `${k} pid ${c.pid}`).join(", ")}`)
      const directUrl = `${upstream.url}${workload.path}`
      const call = (path: Path): () => Promise<string | undefined> => {
        if (path === "direct") {
          return async () => {
            const res = await request(directUrl, { dispatcher: agent, method: "GET", headers: { accept: "application/json" } })
            const text = await res.body.text()
            JSON.parse(text)
            return res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}: ${text.slice(0, 200)}`
          }
        }
        const client = conns[path]!.client
        return () => mcpCall(client)
      }
      // one checked call per path before measuring: a broken set-up fails here, loudly
      for (const path of paths) {
        const problem = await call(path)()
        if (problem !== undefined) throw new Error(`${path}: the first ${workload.tool} call failed: ${problem}`)
      }
      // JIT warm-up of each process, at a middle concurrency, not measured
      for (const path of paths) await closedLoop({ concurrency: 8, maxCalls: settings.maxCalls, maxMs: settings.jitMs, call: call(path) })

      for (const concurrency of settings.concurrency) {
        let direct: Cell | undefined
        for (const path of paths) {
          const fn = call(path)
          await closedLoop({ concurrency, maxCalls: settings.maxCalls, maxMs: settings.warmMs, call: fn })
          const serverPid = conns[path]?.pid
          const before = {
            server: processCpu(serverPid),
            upstream: processCpuMs(upstream.pid),
            sink: processCpuMs(otlp.pid),
            requests: await upstream.requests(),
            client: process.cpuUsage(),
            machine: machineBusyMs()
          }
          const r: LoopResult = await closedLoop({ concurrency, maxCalls: settings.maxCalls, maxMs: settings.cellMs, call: fn })
          const after = {
            server: processCpu(serverPid),
            upstream: processCpuMs(upstream.pid),
            sink: processCpuMs(otlp.pid),
            requests: await upstream.requests(),
            client: process.cpuUsage(before.client),
            machine: machineBusyMs()
          }
          const [p50, p95, p99] = percentiles(r.latencies, [0.5, 0.95, 0.99]) as [number, number, number]
          const perCall = (a: number | undefined, b: number | undefined) =>
            a === undefined || b === undefined || r.calls === 0 ? undefined : (b - a) / r.calls
          const callsPerSecond = r.calls / (r.elapsedMs / 1000)
          const cell: Cell = {
            path,
            concurrency,
            calls: r.calls,
            errors: r.errors,
            firstError: r.firstError,
            seconds: r.elapsedMs / 1000,
            callsPerSecond,
            ratioToDirect: direct === undefined ? (path === "direct" ? 1 : undefined) : callsPerSecond / direct.callsPerSecond,
            p50Ms: p50,
            p95Ms: p95,
            p99Ms: p99,
            meanMs: r.latencies.reduce((a, b) => a + b, 0) / Math.max(1, r.calls),
            addedP50Ms: direct === undefined ? (path === "direct" ? 0 : undefined) : p50 - direct.p50Ms,
            serverCpuMsPerCall: perCall(
              before.server && before.server.user + before.server.system,
              after.server && after.server.user + after.server.system
            ),
            serverUserCpuMsPerCall: perCall(before.server?.user, after.server?.user),
            serverSystemCpuMsPerCall: perCall(before.server?.system, after.server?.system),
            upstreamCpuMsPerCall: perCall(before.upstream, after.upstream),
            upstreamRequestsPerCall: r.calls === 0 ? Number.NaN : (after.requests - before.requests) / r.calls,
            clientCpuMsPerCall: r.calls === 0 ? Number.NaN : (after.client.user + after.client.system) / 1000 / r.calls,
            otherLoadCores: otherLoad(before, after, r.elapsedMs)
          }
          if (path === "direct") direct = cell
          cells.push(cell)
          log(
            `  ${LABEL[path].padEnd(16)} C=${String(concurrency).padEnd(3)} ${fmt(callsPerSecond).padStart(6)} calls/s  p50 ${fmt(p50)} ms  ` +
              `p99 ${fmt(p99)} ms  server CPU ${fmt(cell.serverCpuMsPerCall)} ms/call  upstream req/call ${fmt(cell.upstreamRequestsPerCall, 2)}  ` +
              `errors ${r.errors}` + (r.firstError !== undefined ? ` (first: ${r.firstError.slice(0, 160)})` : "")
          )
        }
      }
      if (conns.stdio !== undefined && conns["stdio-telemetry"] !== undefined) {
        const twin = await connectStdio([...serverArgs, ...cacheOff])
        try {
          await closedLoop({ concurrency: 8, maxCalls: settings.maxCalls, maxMs: settings.jitMs, call: () => mcpCall(twin.client) })
          tracingAb = await alternate({ untraced: conns.stdio, traced: conns["stdio-telemetry"], twin, floor: conns["stdio-floor"] }, 8)
        } finally {
          await twin.close()
        }
        log(
          `  tracing A/B at C=8 (${tracingAb.rounds} rounds): traced share of calls/s ${fmt(median(tracingAb.shares), 2)}, ` +
            `server CPU ${signed(median(tracingAb.cpuDeltaMs))} ms/call; untraced twin: share ${fmt(median(tracingAb.twinShares), 2)}, ` +
            `CPU ${signed(median(tracingAb.twinCpuDeltaMs))} ms/call` +
            (tracingAb.floorCpuRatios === undefined ? "" : `; untraced server ÷ Node floor: CPU ${fmt(median(tracingAb.floorCpuRatios), 2)}×`)
        )
      }
      for (const [name, conn] of Object.entries(conns)) {
        loadMemory[name] = { peakRssMiB: processMemMiB(conn.pid, "VmHWM"), rssMiB: processMemMiB(conn.pid, "VmRSS") }
      }
    } finally {
      for (const conn of Object.values(conns)) await conn.close()
      if (paths.includes("stdio-telemetry") && (await otlp.requests()) === 0) log("warning: the traced server exported no spans")
      await otlp.stop()
      await agent.close()
      await upstream.stop()
    }
  }
  await stopAll()

  // ---- report ----
  const meta = {
    mode,
    date: started.toISOString(),
    durationSeconds: (Date.now() - started.getTime()) / 1000,
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
    loadAverageAtStart: loadavg(),
    ...git,
    cli: CLI,
    serverArgs: serverArgsNote,
    features,
    workload: { ...workload, method: "GET" },
    settings
  }
  const todo = [...(features.telemetry ? [] : [TODO.telemetry]), ...(features.cache ? [] : [TODO.cache])]
  const markdown = report(meta, cells, cold, coldNotes, loadMemory, todo, tracingAb)
  const stamp = started.toISOString().replace(/[:.]/g, "-")
  const json = JSON.stringify({ meta, toolCalls: cells, tracingAb, coldStart: cold, coldNotes, loadMemory, todo }, null, 2)
  for (const name of [`${stamp}-${mode}`, "latest"]) {
    writeFileSync(resolve(outDir, `${name}.json`), `${json}\n`)
    writeFileSync(resolve(outDir, `${name}.md`), markdown)
  }
  process.stdout.write(`${markdown}\n`)
  log(`wrote ${resolve(outDir, `${stamp}-${mode}.json`)} and .md (also latest.json, latest.md)`)

  if (mode === "smoke") {
    const problems = [
      ...cells.filter((c) => c.errors > 0).map((c) => `${c.path} C=${c.concurrency}: ${c.errors} errors (${c.firstError})`),
      ...cells.filter((c) => c.calls === 0).map((c) => `${c.path} C=${c.concurrency}: no calls completed`),
      ...cold.filter((c) => c.tools === 0).map((c) => `${c.spec}: tools/list returned no tools`)
    ]
    if (problems.length > 0) {
      log(`smoke: FAILED\n${problems.map((p) => `- ${p}`).join("\n")}`)
      process.exitCode = 1
    } else {
      log("smoke: ok")
    }
  }
}

const signed = (n: number) => `${n >= 0 ? "+" : ""}${fmt(n)}`

/** The interleaved tracing A/B (see TracingAb) between connected stdio servers. */
const alternate = async (
  servers: { readonly untraced: McpConnection; readonly traced: McpConnection; readonly twin: McpConnection; readonly floor: McpConnection | undefined },
  concurrency: number
): Promise<TracingAb> => {
  const { abRounds: rounds, abBlockMs: blockMs } = MODES[mode]
  const block = async (conn: McpConnection) => {
    const cpu0 = processCpuMs(conn.pid)
    const r = await closedLoop({ concurrency, maxCalls: settings.maxCalls, maxMs: blockMs, call: () => mcpCall(conn.client) })
    const cpu1 = processCpuMs(conn.pid)
    return {
      callsPerSecond: r.calls / (r.elapsedMs / 1000),
      cpuMsPerCall: cpu0 === undefined || cpu1 === undefined || r.calls === 0 ? Number.NaN : (cpu1 - cpu0) / r.calls
    }
  }
  type Block = Awaited<ReturnType<typeof block>>
  type Name = "untraced" | "traced" | "twin" | "floor"
  const names: Array<Name> = ["untraced", "traced", "twin", ...(servers.floor !== undefined ? ["floor" as const] : [])]
  const rows: Array<Partial<Record<Name, Block>>> = []
  for (let round = 0; round < rounds; round++) {
    // the order reverses every round, so a steady drift favours none of them
    const row: Partial<Record<Name, Block>> = {}
    for (const name of round % 2 === 0 ? names : [...names].reverse()) row[name] = await block(servers[name]!)
    rows.push(row)
  }
  const of = (name: Name) => rows.map((r) => r[name]!)
  const [untraced, traced, twin] = [of("untraced"), of("traced"), of("twin")]
  const floor = servers.floor !== undefined ? of("floor") : undefined
  return {
    concurrency,
    rounds,
    blockSeconds: blockMs / 1000,
    shares: traced.map((t, i) => t.callsPerSecond / untraced[i]!.callsPerSecond),
    cpuDeltaMs: traced.map((t, i) => t.cpuMsPerCall - untraced[i]!.cpuMsPerCall),
    untracedCpuMs: untraced.map((u) => u.cpuMsPerCall),
    twinShares: twin.map((t, i) => t.callsPerSecond / untraced[i]!.callsPerSecond),
    twinCpuDeltaMs: twin.map((t, i) => t.cpuMsPerCall - untraced[i]!.cpuMsPerCall),
    ...(floor === undefined ? {} : {
      floorCpuRatios: untraced.map((u, i) => u.cpuMsPerCall / floor[i]!.cpuMsPerCall),
      floorShares: untraced.map((u, i) => u.callsPerSecond / floor[i]!.callsPerSecond)
    })
  }
}

interface CpuSnapshot {
  readonly server: { user: number; system: number } | undefined
  readonly upstream: number | undefined
  readonly sink: number | undefined
  readonly machine: number | undefined
}
/** Machine CPU minus our processes (bench, server, upstream, OTLP sink) over a cell, in cores; the rest is noise. */
const otherLoad = (
  before: CpuSnapshot & { client: NodeJS.CpuUsage },
  after: CpuSnapshot & { client: NodeJS.CpuUsage },
  elapsedMs: number
): number | undefined => {
  if (before.machine === undefined || after.machine === undefined) return undefined
  const ours = (after.client.user + after.client.system) / 1000 +
    (before.upstream !== undefined && after.upstream !== undefined ? after.upstream - before.upstream : 0) +
    (before.sink !== undefined && after.sink !== undefined ? after.sink - before.sink : 0) +
    (before.server && after.server ? after.server.user + after.server.system - before.server.user - before.server.system : 0)
  return Math.max(0, (after.machine - before.machine - ours) / elapsedMs)
}

const mcpCall = async (client: Client): Promise<string | undefined> => {
  const result = await client.callTool({ name: workload.tool, arguments: workload.args }, undefined, {
    timeout: settings.callTimeoutMs
  })
  if (result.isError === true) {
    const content = (result.content ?? []) as Array<{ text?: string }>
    return `tool error: ${content.map((c) => c.text ?? "").join(" ").slice(0, 200)}`
  }
  return undefined
}

const TODO = {
  telemetry: "tracing/metrics on vs off: not measured (the server under test has no --otel-exporter-otlp-endpoint)",
  cache: "TODO response cache hit path: the server under test has no response cache (no `--cache-backend none`); " +
    "the bench adds `stdio, cache hit` cells automatically when it has one"
}

const report = (
  meta: {
    mode: string
    date: string
    durationSeconds: number
    node: string
    cpu: string
    commit: string
    srcModified: boolean
    cli: string
    serverArgs: string
  },
  cells: ReadonlyArray<Cell>,
  cold: ReadonlyArray<ColdSummary>,
  coldNotes: ReadonlyArray<string>,
  loadMemory: Record<string, { peakRssMiB: number | undefined; rssMiB: number | undefined }>,
  todo: ReadonlyArray<string>,
  tracingAb: TracingAb | undefined
): string => {
  const out: Array<string> = []
  out.push(`# openapi-mcp-server benchmark (${meta.mode})`, "")
  out.push(
    `${meta.date}, ${fmt(meta.durationSeconds, 0)} s, Node ${meta.node}, ${meta.cpu}, ` +
      (process.env["BENCH_CLI"] !== undefined
        ? `server \`${meta.cli}\` (BENCH_CLI; the work tree is at ${meta.commit}).`
        : `commit ${meta.commit}${meta.srcModified ? " with uncommitted src/ changes (dist/ is whatever was last built)" : ""}.`),
    ""
  )
  if (cells.length > 0) {
    out.push(
      `## Tool calls`,
      "",
      `\`${workload.tool} ${JSON.stringify(workload.args)}\` → \`GET /v1${workload.path}\` on the bundled example API ` +
        `(own process, node:http keep-alive). Closed loops of C concurrent callers, each cell ≤ ${settings.cellMs / 1000} s ` +
        `or ≤ ${settings.maxCalls} calls after ${settings.warmMs / 1000} s of warm-up (and ${settings.jitMs / 1000} s of ` +
        `JIT warm-up per server process before the first cell). *direct*: the same request with ` +
        `a keep-alive undici Agent; *stdio* / *http*: the MCP SDK client through the built server ` +
        `(\`${meta.serverArgs}\`)` +
        (cells.some((c) => c.path.endsWith("-floor"))
          ? `; *Node floor*: the same client through \`bench/floor.ts\`, the least a Node.js MCP server can do per call ` +
            `(parse the message, one undici request, write the body back as text; nothing checked, mapped or measured): ` +
            `what of a cell's cost any Node.js server pays on this machine`
          : "") +
        (cells.some((c) => c.path === "stdio-cache") ? `; *stdio, cache hit*: the same over stdio with \`--cache-backend memory\`` : "") +
        (cells.some((c) => c.path === "stdio-telemetry")
          ? `; *stdio, traced*: the stdio server with tracing on (every call sampled, spans batched to a local OTLP/HTTP sink in its own process) ` +
            `and Prometheus metrics served (\`--otel-exporter-otlp-endpoint <sink> --enable-prometheus\`)`
          : "") +
        `. Server CPU from /proc/<pid>/stat (user+system) over the cell; client CPU is the bench process's; ` +
        `upstream req/call checks that every call reached the upstream (≈0 for cache hits).`,
      ""
    )
    out.push(markdownTable(
      ["path", "C", "calls", "calls/s", "× direct", "p50 ms", "p95 ms", "p99 ms", "added p50 ms", "server CPU ms/call", "client CPU ms/call", "upstream req/call", "other load", "errors"],
      cells.map((c) => [
        LABEL[c.path],
        String(c.concurrency),
        String(c.calls),
        fmt(c.callsPerSecond, 0),
        fmt(c.ratioToDirect, 2),
        fmt(c.p50Ms),
        fmt(c.p95Ms),
        fmt(c.p99Ms),
        c.path === "direct" ? "" : fmt(c.addedP50Ms),
        c.path === "direct" ? "" : fmt(c.serverCpuMsPerCall),
        fmt(c.clientCpuMsPerCall),
        fmt(c.upstreamRequestsPerCall, 2),
        fmt(c.otherLoadCores, 2),
        String(c.errors)
      ])
    ))
    const traced = cells.filter((c) => c.path === "stdio-telemetry")
    if (traced.length > 0) {
      const rows = traced.map((t) => {
        const plain = cells.find((c) => c.path === "stdio" && c.concurrency === t.concurrency)
        const share = plain === undefined ? undefined : t.callsPerSecond / plain.callsPerSecond
        const extra = plain?.serverCpuMsPerCall === undefined || t.serverCpuMsPerCall === undefined
          ? undefined
          : t.serverCpuMsPerCall - plain.serverCpuMsPerCall
        return `C=${t.concurrency}: ${fmt(share === undefined ? undefined : share * 100, 0)} % of the untraced throughput, ` +
          `${fmt(extra)} ms more server CPU per call`
      })
      out.push("", `Tracing and metrics on (stdio, traced vs stdio, separate cells): ${rows.join("; ")}.`)
    }
    if (tracingAb !== undefined) {
      const range = (values: ReadonlyArray<number>, digits?: number) =>
        `${fmt(median(values), digits)} (${fmt(Math.min(...values), digits)} to ${fmt(Math.max(...values), digits)})`
      out.push(
        "",
        `Tracing and metrics on, interleaved: the two stdio servers took turns at C=${tracingAb.concurrency}, ` +
          `${tracingAb.rounds} rounds of ${fmt(tracingAb.blockSeconds)} s each, the order reversed every round, so the ` +
          `machine's drift between cells falls on both alike. Traced share of the untraced calls/s, median of the ` +
          `rounds: ${range(tracingAb.shares, 2)}; server CPU per call ${range(tracingAb.cpuDeltaMs)} ms more than ` +
          `untraced (${fmt(median(tracingAb.untracedCpuMs))} ms). The method's own noise: a second untraced server ` +
          `taking its turns the same way had a share of ${range(tracingAb.twinShares, 2)} and ` +
          `${range(tracingAb.twinCpuDeltaMs)} ms of CPU per call more.` +
          (tracingAb.floorCpuRatios === undefined || tracingAb.floorShares === undefined ? "" :
            ` The stdio Node floor took its turns too: the untraced server used ${range(tracingAb.floorCpuRatios, 2)} times ` +
            `its CPU per call and ran at ${range(tracingAb.floorShares, 2)} of its calls/s.`)
      )
    }
    const mem = Object.entries(loadMemory).map(([k, v]) => `${k} ${fmt(v.peakRssMiB, 0)} MiB`).join(", ")
    out.push(
      "",
      `Peak RSS of the servers after the loops (VmHWM): ${mem}. On a 2-core machine the bench client, the server ` +
        `and the upstream share the cores, so at C ≥ 8 calls/s is bounded by total CPU per call, not by latency. ` +
        `*other load*: CPU (in cores) used during the cell by processes other than the bench, the server, the ` +
        `upstream and the OTLP sink; it makes calls/s and latencies noisy (CPU per call much less so).`,
      ""
    )
    const noisy = cells.filter((c) => (c.otherLoadCores ?? 0) > 0.2)
    if (noisy.length > 0) {
      out.push(
        `**Noisy run**: other processes used > 0.2 cores during ${noisy.length} of ${cells.length} cells ` +
          `(up to ${fmt(Math.max(...noisy.map((c) => c.otherLoadCores ?? 0)), 2)} cores); rerun on a quiet machine to compare throughput.`,
        ""
      )
    }
  }
  if (cold.length > 0) {
    out.push(
      `## Cold start`,
      "",
      `stdio, raw JSON-RPC: spawn → \`initialize\` answered → \`tools/list\` answered in full; median of ${cold[0]!.runs} ` +
        `run(s) (min–max). Server CPU (user+system) and peak RSS (VmHWM) at the \`tools/list\` answer. ` +
        `The large spec runs with \`--base-url http://127.0.0.1:9\` (no call is made). ` +
        `*first start*: no catalog cache (\`--catalog-cache-dir off\`), the spec is parsed and mapped; *restart*: ` +
        `the catalog an earlier start built from the same spec and settings is read from the cache directory.`,
      ""
    )
    out.push(markdownTable(
      ["spec", "tools", "tools/list bytes", "initialize ms", "tools/list done ms", "server CPU ms", "peak RSS MiB"],
      cold.map((c) => [
        c.spec,
        String(c.tools),
        String(c.toolsListBytes),
        fmt(c.initializeMsMedian, 0),
        `${fmt(c.toolsListMsMedian, 0)} (${fmt(c.toolsListMsMin, 0)}–${fmt(c.toolsListMsMax, 0)})`,
        fmt(c.cpuMsMedian, 0),
        fmt(c.peakRssMiBMedian, 0)
      ])
    ))
    out.push("")
  }
  for (const note of coldNotes) out.push(`- ${note}`)
  const checked = againstTargets(cells, cold, tracingAb)
  if (checked.length > 0) {
    out.push(
      "", `## Against the targets`, "",
      `The performance issue's targets, checked on this run (✓ met, ✗ not; ratios and CPU move ±20-30 % between runs on a shared machine). ` +
        `In brackets: the Node floor's figure in the same run (bench/floor.ts); a target beyond it is beyond any Node.js server here.`,
      "",
      markdownTable(["target", "measured"], checked),
      ""
    )
  }
  if (todo.length > 0) out.push(`## Not measured yet`, "", ...todo.map((t) => `- ${t}`), "")
  return out.join("\n")
}

/** The benchmark issue's targets, each with what this run measured: [target, "C=1 0.61 ✓, …"]. */
const againstTargets = (
  cells: ReadonlyArray<Cell>,
  cold: ReadonlyArray<ColdSummary>,
  tracingAb: TracingAb | undefined
): Array<[string, string]> => {
  const mark = (ok: boolean) => (ok ? "✓" : "✗")
  // with the Node floor's figure for the same C in brackets, where the run has one
  const perC = (path: Path, value: (c: Cell) => number | undefined, ok: (v: number) => boolean, onlyC?: ReadonlyArray<number>) =>
    cells
      .filter((c) => c.path === path && (onlyC === undefined || onlyC.includes(c.concurrency)))
      .flatMap((c) => {
        const v = value(c)
        const floor = cells.find((f) => f.path === `${path}-floor` && f.concurrency === c.concurrency)
        const atFloor = floor === undefined ? undefined : value(floor)
        return v === undefined ? [] : [`C=${c.concurrency} ${fmt(v)} ${mark(ok(v))}${atFloor === undefined ? "" : ` (floor ${fmt(atFloor)})`}`]
      })
      .join(", ")
  const tracedShare = (c: Cell) => {
    const plain = cells.find((p) => p.path === "stdio" && p.concurrency === c.concurrency)
    return plain === undefined ? undefined : c.callsPerSecond / plain.callsPerSecond
  }
  const github = cold
    .filter((c) => c.spec.startsWith(basename(GITHUB_SPEC)) && !c.spec.includes("--tool-mode"))
    .map((c) =>
      `${c.spec.includes("restart") ? "restart" : "first start"} ${fmt(c.toolsListMsMedian, 0)} ms ${mark(c.toolsListMsMedian <= 400)}, ` +
      `${fmt(c.peakRssMiBMedian, 0)} MiB ${mark((c.peakRssMiBMedian ?? Infinity) <= 120)}`
    )
    .join("; ")
  const rows: Array<[string, string]> = [
    ["stdio ≥ 0.5 × direct at C=1", perC("stdio", (c) => c.ratioToDirect, (v) => v >= 0.5, [1])],
    ["stdio ≥ 0.4 × direct at C=8 and 64", perC("stdio", (c) => c.ratioToDirect, (v) => v >= 0.4, [8, 64])],
    ["stdio server CPU ≤ 0.15 ms per call", perC("stdio", (c) => c.serverCpuMsPerCall, (v) => v <= 0.15)],
    ["stdio added p50 ≤ 0.15 ms at C=1", perC("stdio", (c) => c.addedP50Ms, (v) => v <= 0.15, [1])],
    ["Streamable HTTP server CPU ≤ 0.3 ms per call", perC("http", (c) => c.serverCpuMsPerCall, (v) => v <= 0.3)],
    ["Streamable HTTP ≥ 2.5 × the best peer's ratio (0.10): ≥ 0.25 × direct", perC("http", (c) => c.ratioToDirect, (v) => v >= 0.25)],
    [
      "tracing + metrics cost ≤ 10 % throughput (share of untraced calls/s)",
      [
        ...(tracingAb === undefined ? [] : [
          `interleaved A/B C=${tracingAb.concurrency} ${fmt(median(tracingAb.shares), 2)} ${mark(median(tracingAb.shares) >= 0.9)}`
        ]),
        `separate cells: ${perC("stdio-telemetry", tracedShare, (v) => v >= 0.9)}`
      ].join("; ")
    ],
    ["GitHub spec: spawn → tools/list ≤ 400 ms, peak RSS ≤ 120 MiB", github]
  ]
  return rows.filter(([, measured]) => measured !== "")
}

main().catch(async (e: unknown) => {
  log(`bench: failed: ${e instanceof Error ? (process.env["BENCH_DEBUG"] ? (e.stack ?? e.message) : e.message) : String(e)}`)
  await stopAll()
  process.exit(1)
})
