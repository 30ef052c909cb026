/** Health, readiness, graceful shutdown on SIGTERM, and the stateless HTTP mode. */
import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import { connectHttp, fixture, freePort, startHttpServer, textOf } from "../support/processes.ts"
import { startOtlpReceiver } from "../support/telemetry.ts"

const SPEC = fixture("content.yaml") // getSlow: GET /slow, getImage: GET /image

/** An upstream answering every request after `ms`; it counts the requests started, and those answered in full. */
const slowUpstream = async (ms: number) => {
  let started = 0
  let answered = 0
  const server = createServer((req, res) => {
    started++
    req.resume()
    res.once("finish", () => answered++)
    setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{\"done\":true}"), ms)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    started: () => started,
    answered: () => answered,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

const until = async (check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return false
}

const post = (base: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body)
  })

const INIT = {
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
}

describe("graceful shutdown", () => {
  it("on SIGTERM fails readiness, refuses new sessions, lets the slow call finish, flushes spans and exits 0", async () => {
    const upstream = await slowUpstream(1500)
    const otlp = await startOtlpReceiver()
    const server = await startHttpServer(["--spec", SPEC, "--base-url", upstream.url], {
      SHUTDOWN_GRACE_MS: "8000", OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url
    })
    try {
      assert.deepInclude(await (await fetch(`${server.base}/readyz`)).json(), { status: "ready" })
      const { client } = await connectHttp(server.base)
      const call = client.callTool({ name: "getSlow", arguments: {} })
      assert.isTrue(await until(() => upstream.started() === 1))
      const exited = new Promise<number | null>((r) => server.child.once("exit", (code) => r(code)))
      server.child.kill("SIGTERM")
      // while draining, the server still answers: not ready, and no new sessions
      assert.isTrue(await until(async () => (await fetch(`${server.base}/readyz`)).status === 503))
      const refused = await post(server.base, INIT)
      assert.strictEqual(refused.status, 503)
      assert.include(await refused.text(), "shutting down")
      const result = await call
      assert.deepStrictEqual(result.structuredContent, { done: true }, textOf(result))
      const stopping = Date.now()
      assert.strictEqual(await exited, 0)
      assert.isBelow(Date.now() - stopping, 5000, "open event streams do not hold the exit back")
      assert.isTrue(otlp.spans.some((s) => s.name === "tools/call getSlow"), "spans were flushed before exit")
    } finally {
      await server.stop()
      await upstream.close()
      await otlp.close()
    }
  })

  it("on SIGTERM also waits for a call whose client went away and may come back for its answer (a stream that can resume)", async () => {
    const upstream = await slowUpstream(2500)
    const server = await startHttpServer(["--spec", SPEC, "--base-url", upstream.url], { SHUTDOWN_GRACE_MS: "8000" })
    try {
      const init = await post(server.base, { ...INIT, params: { ...INIT.params, protocolVersion: "2025-11-25" } })
      const headers = { "mcp-session-id": init.headers.get("mcp-session-id")!, "mcp-protocol-version": "2025-11-25" }
      await init.text()
      const away = new AbortController()
      const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "getSlow", arguments: {}, _meta: { progressToken: "p" } } }
      const res = await fetch(`${server.base}/mcp`, {
        method: "POST", signal: away.signal, body: JSON.stringify(call),
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers }
      })
      // the first progress notification (at 1 s) makes the answer an event stream that can resume; then the client goes
      const reader = res.body!.getReader()
      for (let text = ""; !text.includes("notifications/progress");) text += new TextDecoder().decode((await reader.read()).value)
      away.abort()
      const exited = new Promise<number | null>((r) => server.child.once("exit", (code) => r(code)))
      server.child.kill("SIGTERM")
      assert.strictEqual(await exited, 0)
      assert.strictEqual(upstream.answered(), 1, "the upstream request was let finish, not cut by the exit")
      assert.include(server.stderr(), "waiting for 1 call(s) in flight")
    } finally {
      await server.stop()
      await upstream.close()
    }
  })
})

describe("readiness", () => {
  it("is not ready while the configured Redis is unreachable, though alive", async () => {
    const port = await freePort()
    const server = await startHttpServer(["--spec", SPEC, "--base-url", "http://127.0.0.1:9"], {
      CACHE_BACKEND: "redis", REDIS_URL: `redis://127.0.0.1:${port}`
    })
    try {
      assert.strictEqual((await fetch(`${server.base}/healthz`)).status, 200)
      const ready = await fetch(`${server.base}/readyz`)
      assert.strictEqual(ready.status, 503)
      assert.strictEqual(((await ready.json()) as { status: string }).status, "not ready")
    } finally {
      await server.stop()
    }
  })
})

describe("stateless mode", () => {
  it("answers any request without a session, in JSON, and refuses the event stream", async () => {
    const upstream = await slowUpstream(0)
    const server = await startHttpServer(["--spec", SPEC, "--base-url", upstream.url, "--stateless"])
    try {
      const init = await post(server.base, INIT)
      assert.strictEqual(init.status, 200)
      assert.match(init.headers.get("content-type") ?? "", /application\/json/)
      assert.isNull(init.headers.get("mcp-session-id"))
      const headers = { "mcp-protocol-version": "2025-06-18" }
      const list = await post(server.base, { jsonrpc: "2.0", id: 2, method: "tools/list" }, headers)
      assert.strictEqual(((await list.json()) as { result: { tools: Array<unknown> } }).result.tools.length, 2)
      const call = await post(server.base, { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "getSlow", arguments: {} } }, headers)
      assert.deepStrictEqual(((await call.json()) as { result: { structuredContent: unknown } }).result.structuredContent, { done: true })
      const stream = await fetch(`${server.base}/mcp`, { headers: { accept: "text/event-stream" } })
      assert.strictEqual(stream.status, 405)
    } finally {
      await server.stop()
      await upstream.close()
    }
  })
})
