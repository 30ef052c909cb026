/**
 * Traces as a collector receives them: the built CLI exports OTLP/HTTP (JSON) to a local receiver. One tool
 * call gives a SERVER span with a CLIENT span per upstream attempt below it (no spans for in-process steps), with
 * X-Ray trace ids; the upstream gets the CLIENT span as `traceparent` and `X-Amzn-Trace-Id`; a caller's
 * trace (HTTP header or MCP `_meta.traceparent`) is continued; secrets reach neither spans nor logs. In
 * stdio mode stdout stays MCP-only with tracing, metrics and debug logs all on.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { CLI, connectHttp, fixture, freePort, startHttpServer, startRecorder, stop } from "../support/processes.ts"
import { type ReceivedSpan, startOtlpReceiver } from "../support/telemetry.ts"

const SPEC = fixture("telemetry.yaml")
const SECRET = "sekrit-api-key-6f1c9d"
const SERVER = 2
const CLIENT = 3

const reply = () => ({ status: 200, headers: { "content-type": "application/json" }, body: "{\"id\":7}" })

/** The spans of one trace, with helpers to walk it. */
const traceOf = (spans: ReadonlyArray<ReceivedSpan>, traceId: string) => {
  const mine = spans.filter((s) => s.traceId === traceId)
  const named = (name: string) => {
    const s = mine.find((x) => x.name === name)
    if (s === undefined) throw new Error(`no span ${name} in ${mine.map((x) => x.name).join(", ")}`)
    return s
  }
  return { spans: mine, named }
}

describe("tracing over Streamable HTTP", () => {
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    otlp = await startOtlpReceiver()
    upstream = await startRecorder(reply)
    server = await startHttpServer(["--spec", SPEC, "--base-url", upstream.url], {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SERVICE_NAME: "tracing-test",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      AUTH_TYPE: "api_key", AUTH_API_KEY: SECRET, AUTH_API_KEY_NAME: "api_key", AUTH_API_KEY_IN: "query",
      LOG_LEVEL: "debug", CACHE_BACKEND: "none"
    })
  })
  afterAll(async () => {
    await server?.stop()
    await upstream?.close()
    await otlp?.close()
  })

  it("exports one tool call as a SERVER span with a CLIENT span per upstream attempt, with X-Ray ids, propagated upstream", async () => {
    const { client } = await connectHttp(server.base)
    const before = Math.floor(Date.now() / 1000)
    const result = await client.callTool({ name: "getItem", arguments: { id: 7, verbose: true } })
    assert.isUndefined(result.isError)
    await client.close()

    await otlp.waitFor((spans) => spans.some((s) => s.name === "tools/call getItem"), "the tools/call span")
    const root = otlp.spans.find((s) => s.name === "tools/call getItem")!
    const trace = traceOf(otlp.spans, root.traceId)
    await otlp.waitFor((spans) => spans.filter((s) => s.traceId === root.traceId).length >= 2, "the whole trace")

    assert.strictEqual(root.kind, SERVER)
    assert.isUndefined(root.parentSpanId)
    assert.strictEqual(root.attributes["gen_ai.tool.name"], "getItem")
    assert.strictEqual(root.attributes["mcp.method.name"], "tools/call")
    assert.strictEqual(root.resource["service.name"], "tracing-test")
    // AWS X-Ray trace id: the first 8 hex digits are the start time in epoch seconds
    const epoch = parseInt(root.traceId.slice(0, 8), 16)
    assert.isTrue(epoch >= before - 1 && epoch <= Math.ceil(Date.now() / 1000), `${root.traceId} vs ${before}`)

    const attempt = trace.named("GET /items/{id}")
    assert.strictEqual(attempt.kind, CLIENT)
    assert.strictEqual(attempt.parentSpanId, root.spanId)
    // two spans per call (no span per in-process step: they cost more than they show)
    assert.strictEqual(trace.spans.length, 2)
    assert.strictEqual(attempt.attributes["http.request.method"], "GET")
    assert.strictEqual(attempt.attributes["http.response.status_code"], 200)
    assert.strictEqual(attempt.attributes["server.address"], "127.0.0.1")
    assert.strictEqual(attempt.attributes["url.template"], "/items/{id}")
    assert.strictEqual(attempt.attributes["gen_ai.tool.name"], "getItem")
    assert.strictEqual(attempt.attributes["url.full"], `${upstream.url}/items/7?verbose=REDACTED&api_key=REDACTED`)
    // Effect's own client span (which would record the raw URL) is off
    assert.isFalse(trace.spans.some((s) => s.name === "GET" || s.name.startsWith("http.client")))

    // the upstream saw the CLIENT span as its parent, in both formats
    const seen = upstream.requests[upstream.requests.length - 1]!
    assert.include(seen.url, `api_key=${SECRET}`)
    assert.strictEqual(seen.headers["traceparent"], `00-${root.traceId}-${attempt.spanId}-01`)
    assert.strictEqual(
      seen.headers["x-amzn-trace-id"],
      `Root=1-${root.traceId.slice(0, 8)}-${root.traceId.slice(8)};Parent=${attempt.spanId};Sampled=1`
    )
    assert.isUndefined(seen.headers["b3"])

    // the debug log of the upstream call carries the trace and span ids
    const logs = server.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
    const log = logs.find((l) => l["message"] === "upstream call" && l["trace_id"] === root.traceId)
    assert.isDefined(log, server.stderr())
    assert.match(String(log!["span_id"]), /^[0-9a-f]{16}$/)
    assert.strictEqual(log!["tool"], "getItem")

    // the API key never reaches an exported span or a log line
    for (const payload of otlp.payloads) assert.notInclude(payload, SECRET)
    assert.notInclude(server.stderr(), SECRET)
  })

  it("continues a caller's trace from the HTTP traceparent header", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    const parentId = "00f067aa0ba902b7"
    const client = new Client({ name: "traced-client", version: "1.0.0" })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), {
      requestInit: { headers: { traceparent: `00-${traceId}-${parentId}-01` } }
    }))
    await client.callTool({ name: "getItem", arguments: { id: 1 } })
    await client.close()
    await otlp.waitFor((spans) => spans.some((s) => s.traceId === traceId && s.name === "tools/call getItem"), "the continued span")
    const span = otlp.spans.find((s) => s.traceId === traceId && s.name === "tools/call getItem")!
    assert.strictEqual(span.parentSpanId, parentId)
    const seen = upstream.requests[upstream.requests.length - 1]!
    assert.match(String(seen.headers["traceparent"]), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
    assert.match(String(seen.headers["x-amzn-trace-id"]), new RegExp(`^Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)};`))
  })

  it("continues a caller's trace from X-Amzn-Trace-Id and from MCP params._meta.traceparent", async () => {
    const xrayTrace = "5759e988bd862e3fe1be46a994272793"
    const xray = new Client({ name: "xray-client", version: "1.0.0" })
    await xray.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), {
      requestInit: { headers: { "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" } }
    }))
    await xray.callTool({ name: "getItem", arguments: { id: 2 } })
    await xray.close()

    const metaTrace = "0af7651916cd43dd8448eb211c80319c"
    const { client } = await connectHttp(server.base)
    await client.callTool({ name: "getItem", arguments: { id: 3 }, _meta: { traceparent: `00-${metaTrace}-b7ad6b7169203331-01` } })
    await client.close()

    await otlp.waitFor(
      (spans) => [xrayTrace, metaTrace].every((t) => spans.some((s) => s.traceId === t && s.kind === SERVER)),
      "both continued traces"
    )
    assert.strictEqual(otlp.spans.find((s) => s.traceId === xrayTrace && s.kind === SERVER)!.parentSpanId, "53995c3f42cd8ad8")
    assert.strictEqual(otlp.spans.find((s) => s.traceId === metaTrace && s.kind === SERVER)!.parentSpanId, "b7ad6b7169203331")
  })
})

describe("stdio with tracing, metrics and debug logs on", () => {
  it("keeps stdout to MCP messages, serves metrics on PROMETHEUS_PORT, and flushes spans at exit", async () => {
    const otlp = await startOtlpReceiver()
    const upstream = await startRecorder(reply)
    const metricsPort = await freePort()
    const child = spawn(process.execPath, [CLI, "--spec", SPEC, "--base-url", upstream.url], {
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        PATH: process.env["PATH"] ?? "",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces`,
        // far beyond the test: spans can only arrive through the flush at shutdown
        OTEL_BSP_SCHEDULE_DELAY: "600000",
        ENABLE_PROMETHEUS: "true", PROMETHEUS_PORT: String(metricsPort),
        LOG_LEVEL: "debug", AUTH_TYPE: "bearer", AUTH_TOKEN: SECRET
      }
    })
    try {
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
      const send = (msg: unknown) => child.stdin.write(`${JSON.stringify(msg)}\n`)
      const waitForLine = async (id: number) => {
        const until = Date.now() + 15_000
        while (Date.now() < until) {
          if (stdout.split("\n").some((l) => l.includes(`"id":${id}`))) return
          if (child.exitCode !== null) throw new Error(`exited: ${stderr}`)
          await new Promise((r) => setTimeout(r, 20))
        }
        throw new Error(`no answer to ${id}: ${stdout} ${stderr}`)
      }
      send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } })
      await waitForLine(1)
      send({ jsonrpc: "2.0", method: "notifications/initialized" })
      send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
      send({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "getItem", arguments: { id: 9 } } })
      await waitForLine(3)

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
      assert.match(metrics, /^openapi_mcp_tool_calls_total\{tool="getItem",outcome="ok"\} 1$/m)
      assert.strictEqual((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404)

      child.stdin.end()
      await new Promise<void>((r) => child.exitCode !== null ? r() : child.once("exit", () => r()))
      assert.strictEqual(child.exitCode, 0, stderr)

      for (const line of stdout.split("\n").filter((l) => l.length > 0)) {
        const msg = JSON.parse(line) as Record<string, unknown>
        assert.strictEqual(msg["jsonrpc"], "2.0", line)
      }
      assert.include(stderr, "\"level\":\"debug\"")
      assert.notInclude(stderr, SECRET)
      // the batch delay is ten minutes: these spans came from the flush on shutdown
      await otlp.waitFor((spans) => spans.some((s) => s.name === "tools/call getItem"), "the flushed spans", 5_000)
      const root = otlp.spans.find((s) => s.name === "tools/call getItem")!
      assert.isTrue(otlp.spans.some((s) => s.traceId === root.traceId && s.kind === CLIENT))
      for (const payload of otlp.payloads) assert.notInclude(payload, SECRET)
      assert.strictEqual(upstream.requests[0]!.headers["authorization"], `Bearer ${SECRET}`)
    } finally {
      await stop(child)
      await upstream.close()
      await otlp.close()
    }
  })
})
