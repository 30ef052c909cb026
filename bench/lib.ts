/**
 * Benchmark plumbing: child processes started on 127.0.0.1 and stopped by PID, /proc readings (CPU, peak
 * RSS), bounded closed loops, latency statistics and table formatting. Shared by `run.ts` and `profile.ts`.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { execFileSync, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
/** The server under test; BENCH_CLI points at another build (e.g. to compare two commits). */
export const CLI = resolve(process.env["BENCH_CLI"] ?? resolve(ROOT, "dist/bundle/cli.js"))
export const EXAMPLE_SPEC = resolve(ROOT, "examples/petstore.yaml")
export const GITHUB_SPEC = process.env["BENCH_GITHUB_SPEC"] ?? resolve(ROOT, "../shared/specs/github_api.github.com.json")
export const RESULTS = resolve(ROOT, "bench/results")

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Node ≥ 23.6 runs the bench's .ts files; the server needs dist/ built. */
export const preflight = () => {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  if (major < 23 || (major === 23 && minor < 6)) {
    throw new Error(`Node ${process.versions.node} cannot run bench/*.ts; use the pinned Node 24 (npm run bench, or PATH=node_modules/.bin:$PATH)`)
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm run bench does)`)
}

// ---------------------------------------------------------------------------------------------------------
// /proc readings (Linux). Elsewhere they are undefined and the report says n/a.

let clockTicks: number | undefined
const ticksPerSecond = (): number => {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** User and system CPU time of a process so far, in ms (from /proc/<pid>/stat utime, stime). */
export const processCpu = (pid: number | undefined | null): { user: number; system: number } | undefined => {
  if (pid === undefined || pid === null) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // fields after "pid (comm) ": state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { user: (Number(fields[11]) * 1000) / ticksPerSecond(), system: (Number(fields[12]) * 1000) / ticksPerSecond() }
  } catch {
    return undefined
  }
}

/** User + system CPU time of a process so far, in ms. */
export const processCpuMs = (pid: number | undefined | null): number | undefined => {
  const cpu = processCpu(pid)
  return cpu === undefined ? undefined : cpu.user + cpu.system
}

/** CPU time all processes of the machine have used so far, in ms (from /proc/stat), to see other load. */
export const machineBusyMs = (): number | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
    return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / ticksPerSecond()
  } catch {
    return undefined
  }
}

/** A memory field of /proc/<pid>/status in MiB: VmHWM is the peak resident set size, VmRSS the current one. */
export const processMemMiB = (pid: number | undefined | null, field: "VmHWM" | "VmRSS"): number | undefined => {
  if (pid === undefined || pid === null) return undefined
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------------------
// Child processes: every PID is registered and stopped at the end, also on errors and signals.

const livePids = new Set<number>()

const HAS_PROC = existsSync("/proc/self/stat")

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  if (!HAS_PROC) return true
  try {
    // a zombie still answers signal 0; /proc says whether it has really run to the end
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

export const track = (pid: number | undefined | null) => {
  if (pid !== undefined && pid !== null) livePids.add(pid)
}

/** SIGTERM, then SIGKILL after `graceMs` if the process is still there. */
export const stopPid = async (pid: number | undefined | null, graceMs = 3000): Promise<void> => {
  if (pid === undefined || pid === null) return
  if (isAlive(pid)) {
    try {
      process.kill(pid, "SIGTERM")
    } catch { /* already gone */ }
    const until = Date.now() + graceMs
    while (isAlive(pid) && Date.now() < until) await sleep(20)
    if (isAlive(pid)) {
      try {
        process.kill(pid, "SIGKILL")
      } catch { /* already gone */ }
    }
  }
  livePids.delete(pid)
}

/** Waits until the process has exited on its own (e.g. after its stdin closed), up to `ms`. */
export const waitExit = async (pid: number | undefined | null, ms: number): Promise<boolean> => {
  if (pid === undefined || pid === null) return true
  const until = Date.now() + ms
  while (isAlive(pid) && Date.now() < until) await sleep(20)
  return !isAlive(pid)
}

export const stopAll = async () => {
  await Promise.all([...livePids].map((pid) => stopPid(pid)))
}

let cleanupInstalled = false
/** Kills every registered child on exit, uncaught errors and SIGINT/SIGTERM. */
export const installCleanup = () => {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on("exit", () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, "SIGKILL")
      } catch { /* gone */ }
    }
  })
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping child processes\n`)
      void stopAll().finally(() => process.exit(130))
    })
  }
}

/** The environment for the server: PATH only, so no AUTH_*, LOG_LEVEL… of the caller's shell leaks in. */
export const serverEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env["PATH"] ?? "",
  ...(process.env["HOME"] !== undefined ? { HOME: process.env["HOME"] } : {}),
  ...extra
})

export const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer().once("error", rej).listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })

export interface Upstream {
  readonly url: string
  readonly pid: number
  /** HTTP requests the upstream has received so far. */
  readonly requests: () => Promise<number>
  readonly stop: () => Promise<void>
}

/**
 * The bundled example API (examples/petstore.yaml) in its own process, so it has its own CPU accounting; or,
 * as `otlp-sink`, an OTLP/HTTP endpoint that drops what it gets (its `requests` are span batches).
 */
export const startUpstream = async (kind: "api" | "otlp-sink" = "api"): Promise<Upstream> => {
  const child = spawn(process.execPath, [resolve(ROOT, "bench/upstream.ts"), ...(kind === "otlp-sink" ? ["--otlp-sink"] : [])], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  track(child.pid)
  child.stdin.on("error", () => undefined)
  const lines: Array<string> = []
  const waiting: Array<(line: string) => void> = []
  let partial = ""
  child.stdout.on("data", (d: Buffer) => {
    partial += d.toString()
    let i: number
    while ((i = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, i)
      partial = partial.slice(i + 1)
      const w = waiting.shift()
      if (w) w(line)
      else lines.push(line)
    }
  })
  const nextLine = (what: string, ms: number) =>
    withTimeout(new Promise<string>((res) => {
      const l = lines.shift()
      if (l !== undefined) res(l)
      else waiting.push(res)
    }), ms, what)
  const info = JSON.parse(await nextLine("the example upstream to start", 15_000)) as { url: string; pid: number }
  return {
    url: info.url,
    pid: info.pid,
    requests: async () => {
      child.stdin.write("count\n")
      return (JSON.parse(await nextLine("the upstream's request count", 5000)) as { requests: number }).requests
    },
    stop: () => stopPid(child.pid)
  }
}

/** What the server under test supports, from its --help (the bench runs against older builds too). */
export const serverFeatures = () => {
  const help = execFileSync(process.execPath, [CLI, "--help"], { encoding: "utf8", cwd: ROOT })
  return {
    /** `--cache-backend none` exists: the proxy path can be measured without the response cache */
    cacheNone: /--cache-backend <[^>]*\bnone\b/.test(help),
    /** a response cache exists at all (then cache hits get their own cells) */
    cache: /--cache-backend <[^>]*\bnone\b/.test(help) && !/Response cache store \(later version\)/.test(help),
    /** `--tool-mode all|discover|auto` exists: big specs may be listed as meta-tools by default */
    toolMode: /--tool-mode <[^>]*\ball\b/.test(help),
    /** the on-disk catalog cache (then cold starts are measured without and with it) */
    catalogCache: /--catalog-cache-dir/.test(help),
    /** tracing (OTLP endpoint) and a Prometheus endpoint in stdio mode */
    telemetry: /--otel-exporter-otlp-endpoint/.test(help) && /--enable-prometheus/.test(help)
  }
}

/** The last `max` characters of a stream: a server that logs a lot cannot grow the bench's memory. */
const tail = (max = 64 * 1024) => {
  let text = ""
  return {
    add: (d: Buffer) => {
      text += d.toString()
      if (text.length > 2 * max) text = text.slice(-max)
    },
    text: () => text.slice(-max)
  }
}

export interface McpConnection {
  readonly client: Client
  readonly pid: number | undefined
  readonly stderr: () => string
  readonly close: () => Promise<void>
}

/** The built CLI over stdio, connected with the SDK client (which spawns it). */
export const connectStdio = async (
  serverArgs: ReadonlyArray<string>,
  options: { nodeArgs?: ReadonlyArray<string>; env?: Record<string, string>; cli?: string } = {}
): Promise<McpConnection> => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...(options.nodeArgs ?? []), options.cli ?? CLI, ...serverArgs],
    env: serverEnv(options.env),
    cwd: ROOT,
    stderr: "pipe"
  })
  const stderr = tail()
  transport.stderr?.on("data", stderr.add)
  const client = new Client({ name: "openapi-mcp-bench", version: "1.0.0" })
  await withTimeout(client.connect(transport), 30_000, "stdio server initialize").catch(async (e: Error) => {
    const pid = transport.pid
    await transport.close().catch(() => undefined) // the SDK stops its child…
    await stopPid(pid) // …and if it did not, by PID
    throw new Error(`${e.message}: ${stderr.text()}`)
  })
  const pid = transport.pid ?? undefined
  track(pid)
  return {
    client,
    pid,
    stderr: stderr.text,
    close: async () => {
      // the SDK ends stdin, then SIGTERM/SIGKILL on its child; the PID backstop makes sure
      await client.close().catch(() => undefined)
      if (!(await waitExit(pid, 5000))) await stopPid(pid)
      else if (pid !== undefined) livePids.delete(pid)
    }
  }
}

/** The built CLI serving Streamable HTTP on a free 127.0.0.1 port, connected with the SDK client. */
export const connectHttp = async (
  serverArgs: ReadonlyArray<string>,
  options: { nodeArgs?: ReadonlyArray<string>; env?: Record<string, string>; cli?: string } = {}
): Promise<McpConnection & { readonly base: string }> => {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), options.cli ?? CLI, ...serverArgs, "--transport", "http", "--host", "127.0.0.1", "--port", String(port)],
    { stdio: ["ignore", "ignore", "pipe"], env: serverEnv(options.env), cwd: ROOT }
  )
  track(child.pid)
  const stderr = tail()
  child.stderr?.on("data", stderr.add)
  const base = `http://127.0.0.1:${port}`
  const until = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`HTTP server exited with ${child.exitCode}: ${stderr.text()}`)
    if (Date.now() > until) {
      await stopPid(child.pid)
      throw new Error(`HTTP server not answering on ${base}/healthz after 30 s: ${stderr.text()}`)
    }
    const ok = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
    if (ok) break
    await sleep(50)
  }
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`))
  const client = new Client({ name: "openapi-mcp-bench", version: "1.0.0" })
  await withTimeout(client.connect(transport), 30_000, "HTTP server initialize")
  return {
    client,
    base,
    pid: child.pid,
    stderr: stderr.text,
    close: async () => {
      await withTimeout(transport.terminateSession(), 3000, "DELETE /mcp").catch(() => undefined)
      await client.close().catch(() => undefined)
      await stopPid(child.pid)
    }
  }
}

export const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

// ---------------------------------------------------------------------------------------------------------
// Cold start over raw stdio: exact wire bytes and no client-side parsing in the measurement.

export interface ColdStart {
  /** spawn → initialize answered */
  readonly initializeMs: number
  /** spawn → tools/list answer fully received */
  readonly toolsListMs: number
  readonly toolsListBytes: number
  readonly tools: number
  /** server CPU (user + system) from spawn to the tools/list answer */
  readonly cpuMs: number | undefined
  /** VmHWM after tools/list */
  readonly peakRssMiB: number | undefined
}

export const coldStart = (
  specPath: string,
  options: { nodeArgs?: ReadonlyArray<string>; serverArgs?: ReadonlyArray<string>; timeoutMs?: number; cli?: string } = {}
): Promise<ColdStart> =>
  new Promise((res, rej) => {
    const t0 = performance.now()
    const child = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), options.cli ?? CLI, "--spec", specPath, "--base-url", "http://127.0.0.1:9", ...(options.serverArgs ?? [])],
      { stdio: ["pipe", "pipe", "pipe"], env: serverEnv(), cwd: ROOT }
    )
    track(child.pid)
    let stderr = ""
    let chunks: Array<Buffer> = []
    let initializeMs = 0
    let settled = false
    const finish = (result: ColdStart | Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.stdin.end()
      // stdio mode exits on end of stdin (needed for --cpu-prof to write its file); PID kill as backstop
      void waitExit(child.pid, 10_000).then(async (exited) => {
        if (!exited) await stopPid(child.pid)
        else if (child.pid !== undefined) livePids.delete(child.pid)
        if (result instanceof Error) rej(result)
        else res(result)
      })
    }
    const timer = setTimeout(
      () => finish(new Error(`cold start on ${specPath} did not finish within ${options.timeoutMs ?? 60_000} ms: ${stderr}`)),
      options.timeoutMs ?? 60_000
    )
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdin.on("error", () => undefined) // EPIPE when the server died; reported through "exit"
    child.on("exit", (code) => {
      if (!settled) finish(new Error(`server exited with ${code} during cold start on ${specPath}: ${stderr}`))
    })
    const send = (msg: unknown) => child.stdin.write(`${JSON.stringify(msg)}\n`)
    child.stdout.on("data", (d: Buffer) => {
      chunks.push(d)
      if (!d.includes(10)) return
      const all = Buffer.concat(chunks)
      const nl = all.indexOf(10)
      const line = all.subarray(0, nl)
      chunks = [all.subarray(nl + 1)]
      const message = JSON.parse(line.toString("utf8")) as { id?: number; result?: { tools?: Array<unknown> }; error?: unknown }
      if (message.error !== undefined) return finish(new Error(`server answered an error: ${JSON.stringify(message.error)}`))
      if (message.id === 1) {
        initializeMs = performance.now() - t0
        send({ jsonrpc: "2.0", method: "notifications/initialized" })
        send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
      } else if (message.id === 2) {
        const toolsListMs = performance.now() - t0
        finish({
          initializeMs,
          toolsListMs,
          toolsListBytes: line.length + 1,
          tools: message.result?.tools?.length ?? 0,
          cpuMs: processCpuMs(child.pid),
          peakRssMiB: processMemMiB(child.pid, "VmHWM")
        })
      }
    })
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "openapi-mcp-bench", version: "1.0.0" } }
    })
  })

// ---------------------------------------------------------------------------------------------------------
// Closed loops and statistics

export interface LoopResult {
  readonly calls: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly elapsedMs: number
  /** per-call latencies in ms, in completion order */
  readonly latencies: Float64Array
}

/**
 * `concurrency` workers, each sending its next call when its previous one answered, until `maxCalls` calls
 * were started or `maxMs` passed. `call` resolves to an error description or undefined; a throw is an error.
 */
export const closedLoop = async (options: {
  readonly concurrency: number
  readonly maxCalls: number
  readonly maxMs: number
  readonly call: () => Promise<string | undefined>
}): Promise<LoopResult> => {
  const latencies = new Float64Array(options.maxCalls)
  let started = 0
  let done = 0
  let errors = 0
  let firstError: string | undefined
  const t0 = performance.now()
  const deadline = t0 + options.maxMs
  const worker = async () => {
    while (started < options.maxCalls && performance.now() < deadline) {
      started++
      const t = performance.now()
      let problem: string | undefined
      try {
        problem = await options.call()
      } catch (e) {
        problem = e instanceof Error ? e.message : String(e)
      }
      latencies[done++] = performance.now() - t
      if (problem !== undefined) {
        errors++
        firstError ??= problem
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return { calls: done, errors, firstError, elapsedMs: performance.now() - t0, latencies: latencies.subarray(0, done) }
}

/** Nearest-rank percentile (p in 0..1) of unsorted values. */
export const percentiles = (values: Float64Array, ps: ReadonlyArray<number>): Array<number> => {
  if (values.length === 0) return ps.map(() => Number.NaN)
  const sorted = Float64Array.from(values).sort()
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!)
}

export const median = (values: ReadonlyArray<number>): number => percentiles(Float64Array.from(values), [0.5])[0]!

/** Compact number formatting for tables. */
export const fmt = (n: number | undefined | null, digits?: number): string => {
  if (n === undefined || n === null || Number.isNaN(n)) return "n/a"
  if (digits !== undefined) return n.toFixed(digits)
  const a = Math.abs(n)
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toFixed(3)
}

export const markdownTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n")
}
