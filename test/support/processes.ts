/**
 * Real components for tests, started on 127.0.0.1 free ports and stopped by PID: the built CLI, the Prism
 * mock server, a recording node:http upstream, Redis and Prometheus Alertmanager.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer as createHttpServer, type IncomingHttpHeaders, type RequestListener } from "node:http"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
/** The shipped CLI: the bundle that `bin` points to (npm run build makes it). */
export const CLI = resolve(ROOT, "dist/bundle/cli.js")
export const SPECS = resolve(ROOT, "../shared/specs")
export const spec = (name: string) => resolve(SPECS, name)
export const fixture = (name: string) => resolve(ROOT, "test/fixtures", name)
export const EXAMPLE_SPEC = resolve(ROOT, "examples/petstore.yaml")

export const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer().once("error", rej).listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })

export const waitFor = async (check: () => Promise<boolean>, what: string, ms = 30_000) => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export const stop = (child: ChildProcess): Promise<void> =>
  new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return res()
    child.once("exit", () => res())
    process.kill(child.pid, "SIGTERM")
    setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }, 5000).unref()
  })

/** Prism serving a spec on a free port; `log` is what it has printed so far (its VALIDATOR lines say what it refused). */
export const startPrism = async (specPath: string): Promise<{ url: string; child: ChildProcess; log: () => string }> => {
  const port = await freePort()
  const child = spawn(process.execPath, [resolve(ROOT, "node_modules/@stoplight/prism-cli/dist/index.js"), "mock", "-h", "127.0.0.1", "-p", String(port), specPath], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`prism exited: ${out}`)
    return out.includes("Prism is listening")
  }, `prism on ${specPath}`, 150_000) // the 13 MB GitHub spec takes Prism ~20 s alone, more on a busy machine
  return { url: `http://127.0.0.1:${port}`, child, log: () => out }
}

export interface Recorded {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** A node:http server on a free 127.0.0.1 port answering with `handler`; `close` ends its open connections too. */
export const startLocalServer = async (handler: RequestListener) => {
  const server = createHttpServer(handler)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

/** A node:http upstream that records every request exactly and answers with `reply`. */
export const startRecorder = async (
  reply: (r: Recorded) => { status: number; headers?: Record<string, string>; body?: string | Buffer } = () => ({
    status: 200, headers: { "content-type": "application/json" }, body: "{\"ok\":true}"
  })
) => {
  const requests: Array<Recorded> = []
  const server = await startLocalServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const r = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) }
      requests.push(r)
      const out = reply(r)
      res.writeHead(out.status, out.headers ?? {}).end(out.body)
    })
  })
  return { url: server.url, requests, close: server.close }
}

/** The built CLI over stdio, with the SDK client connected. stderr is collected. */
export const connectStdio = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, ...args],
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stderr: "pipe"
  })
  let stderr = ""
  transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
  const client = new Client({ name: "test-client", version: "1.0.0" })
  await client.connect(transport).catch((e: Error) => {
    throw new Error(`${e.message}; the server said: ${stderr.trim() || "nothing"}`)
  })
  return { client, transport, stderr: () => stderr, close: () => client.close() }
}

/** The built CLI serving Streamable HTTP on a free port. */
export const startHttpServer = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const port = await freePort()
  const child = spawn(process.execPath, [CLI, ...args, "--transport", "http", "--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env["PATH"] ?? "", ...env }
  })
  let stderr = ""
  let stdout = ""
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
  const base = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`)
    return (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) })).ok
  }, "the HTTP server")
  return { base, child, stderr: () => stderr, stdout: () => stdout, stop: () => stop(child) }
}

export const connectHttp = async (base: string) => {
  const client = new Client({ name: "test-client", version: "1.0.0" })
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`))
  await client.connect(transport)
  return { client, transport }
}

/** Runs the CLI to completion (for start-up failures), returning exit code and output. */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, ms = 30_000) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "", ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), ms)
    child.on("exit", (code) => {
      clearTimeout(timer)
      res({ code, stdout, stderr })
    })
  })

/** Text of a tool result's content. */
export const textOf = (result: unknown): string =>
  (((result as { content?: unknown }).content ?? []) as Array<{ type: string; text?: string }>).map((c) => c.text ?? "").join("\n")

/** A real redis-server (Debian package) on a free 127.0.0.1 port, without persistence. */
export const startRedis = async (port?: number) => {
  const p = port ?? await freePort()
  const child = spawn("redis-server", ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`)
    return out.includes("Ready to accept connections")
  }, "redis-server")
  return { url: `redis://127.0.0.1:${p}`, port: p, child, stop: () => stop(child) }
}

/**
 * A real Prometheus Alertmanager (Debian package prometheus-alertmanager) on a free 127.0.0.1 port: clustering
 * off, one receiver that sends nothing, its data in a temporary directory. Its API v2 is at `${url}/api/v2`.
 */
export const startAlertmanager = async () => {
  const dir = mkdtempSync(join(tmpdir(), "alertmanager-"))
  writeFileSync(join(dir, "alertmanager.yml"), "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n")
  const port = await freePort()
  const child = spawn("prometheus-alertmanager", [
    `--config.file=${join(dir, "alertmanager.yml")}`, `--storage.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address="
  ], { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()))
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`prometheus-alertmanager exited ${child.exitCode}: ${log}`)
    return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true
  }, "prometheus-alertmanager")
  return {
    url,
    log: () => log,
    stop: async () => {
      await stop(child)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
