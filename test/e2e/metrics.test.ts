/**
 * Metrics as a real Prometheus sees them: the built CLI over Streamable HTTP serves /metrics, Prometheus
 * (the Debian package) scrapes it every second, and the test reads the numbers back through Prometheus's
 * HTTP API after making known tool calls: successes, a 404, invalid arguments, a retried 503, 500s that
 * open the circuit breaker and a call refused by it.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { resolve } from "node:path"
import { connectHttp, fixture, ROOT, startHttpServer, textOf } from "../support/processes.ts"
import { startPrometheus } from "../support/telemetry.ts"

const SPEC = fixture("telemetry.yaml")

/** /items/404 → 404, /items/N → 200, /flaky → 503 then 200 alternately, /broken → 500. */
const startUpstream = async () => {
  let flaky = 0
  const server: Server = createServer((req, res) => {
    req.resume()
    const path = (req.url ?? "").split("?")[0]!
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
    if (path === "/items/404") return json(404, { error: "no such item" })
    if (path.startsWith("/items/")) return json(200, { id: Number(path.slice(7)) })
    if (path === "/flaky") return ++flaky % 2 === 1 ? json(503, { error: "busy" }) : json(200, { ok: true })
    if (path === "/broken") return json(500, { error: "broken" })
    return json(404, {})
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

/** Polls a PromQL query until `ok` holds (each scrape is 1 s apart), bounded. */
const eventually = async <A>(read: () => Promise<A>, ok: (a: A) => boolean, what: string, ms = 15_000): Promise<A> => {
  const until = Date.now() + ms
  let last: A | undefined
  while (Date.now() < until) {
    last = await read()
    if (ok(last)) return last
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
}

describe("Prometheus metrics", () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  let prometheus: Awaited<ReturnType<typeof startPrometheus>>
  beforeAll(async () => {
    upstream = await startUpstream()
    server = await startHttpServer(["--spec", SPEC, "--base-url", upstream.url], {
      CIRCUIT_BREAKER_FAILURE_THRESHOLD: "2", RETRY_BASE_DELAY_MS: "10", CACHE_BACKEND: "none"
    })
    prometheus = await startPrometheus(server.base.replace("http://", ""))
  })
  afterAll(async () => {
    await prometheus?.stop()
    await server?.stop()
    await upstream?.close()
  })

  it("serves the text exposition on /metrics of the HTTP transport", async () => {
    const res = await fetch(`${server.base}/metrics`)
    assert.strictEqual(res.status, 200)
    const text = await res.text()
    assert.match(text, /^openapi_mcp_spec_operations 3$/m)
    assert.match(text, /^openapi_mcp_circuit_breaker_state\{upstream="http:\/\/127\.0\.0\.1:\d+"\} 0$/m)
    assert.match(text, /^process_cpu_seconds_total \d/m)
    assert.match(text, /^process_resident_memory_bytes \d/m)
    assert.match(text, /^nodejs_heap_size_used_bytes \d/m)
  })

  it("counts tool calls by outcome, times them, and Prometheus scrapes exactly those numbers", async () => {
    const { client } = await connectHttp(server.base)
    for (const id of [1, 2, 3]) assert.isUndefined((await client.callTool({ name: "getItem", arguments: { id } })).isError)
    assert.isTrue((await client.callTool({ name: "getItem", arguments: { id: 404 } })).isError) // tool_error
    assert.isTrue((await client.callTool({ name: "getItem", arguments: { id: "abc" } })).isError) // invalid_args
    const flaky = await client.callTool({ name: "getFlaky", arguments: {} }) // 503, retried, then 200
    assert.isUndefined(flaky.isError, textOf(flaky))
    for (let i = 0; i < 2; i++) assert.isTrue((await client.callTool({ name: "getBroken", arguments: {} })).isError) // upstream_error
    const refused = await client.callTool({ name: "getBroken", arguments: {} }) // the breaker is open now
    assert.include(textOf(refused), "circuit breaker open")
    await client.close()

    const calls = await eventually(
      () => prometheus.query("openapi_mcp_tool_calls_total"),
      (series) => series.reduce((n, s) => n + s.value, 0) === 9,
      "9 tool calls in Prometheus"
    )
    const count = (tool: string, outcome: string) =>
      calls.find((s) => s.labels["tool"] === tool && s.labels["outcome"] === outcome)?.value
    assert.strictEqual(count("getItem", "ok"), 3)
    assert.strictEqual(count("getItem", "tool_error"), 1)
    assert.strictEqual(count("getItem", "invalid_args"), 1)
    assert.strictEqual(count("getFlaky", "ok"), 1)
    assert.strictEqual(count("getBroken", "upstream_error"), 2)
    assert.strictEqual(count("getBroken", "circuit_open"), 1)
    for (const s of calls) assert.strictEqual(s.labels["job"], "openapi-mcp")

    // the MCP duration histogram, per tool and error type
    const durations = await prometheus.query("sum by (gen_ai_tool_name, error_type) (mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\"})")
    const durationCount = (tool: string, errorType: string | undefined) =>
      durations.find((s) => s.labels["gen_ai_tool_name"] === tool && s.labels["error_type"] === errorType)?.value
    assert.strictEqual(durationCount("getItem", undefined), 3)
    assert.strictEqual(durationCount("getItem", "tool_error"), 1)
    assert.strictEqual(durationCount("getBroken", "circuit_open"), 1)
    const p95 = await prometheus.query("histogram_quantile(0.95, sum by (le) (mcp_server_operation_duration_seconds_bucket))")
    assert.isTrue(p95.length === 1 && p95[0]!.value > 0 && p95[0]!.value < 10, JSON.stringify(p95))

    // one upstream request per attempt, by status: the 503 and its retry are both there; none for the refused call
    const http = await prometheus.query("sum by (openapi_operation_id, http_response_status_code) (http_client_request_duration_seconds_count)")
    const attempts = (op: string, status: string) =>
      http.find((s) => s.labels["openapi_operation_id"] === op && s.labels["http_response_status_code"] === status)?.value
    assert.strictEqual(attempts("getItem", "200"), 3)
    assert.strictEqual(attempts("getItem", "404"), 1)
    assert.strictEqual(attempts("getFlaky", "503"), 1)
    assert.strictEqual(attempts("getFlaky", "200"), 1)
    assert.strictEqual(attempts("getBroken", "500"), 2)
    const methods = await prometheus.query("http_client_request_duration_seconds_count")
    for (const s of methods) {
      assert.strictEqual(s.labels["http_request_method"], "GET")
      assert.strictEqual(s.labels["server_address"], "127.0.0.1")
    }

    const retries = await prometheus.query("openapi_mcp_upstream_retries_total")
    assert.deepStrictEqual(retries.map((s) => [s.labels["operation"], s.labels["reason"], s.value]), [["getFlaky", "503", 1]])

    const breaker = await prometheus.query("openapi_mcp_circuit_breaker_state")
    assert.deepStrictEqual(breaker.map((s) => s.value), [2])
    assert.strictEqual(breaker[0]!.labels["upstream"], upstream.url)

    // label cardinality stays bounded: no argument values, paths or URLs with ids anywhere
    const all = await prometheus.query("{job=\"openapi-mcp\"}")
    for (const s of all) {
      for (const [k, v] of Object.entries(s.labels)) {
        assert.notMatch(v, /\/items\/\d|abc/, `${s.labels["__name__"]} ${k}=${v}`)
      }
    }
  })

  it("runs every query of the Grafana dashboard against the scraped data", async () => {
    const dashboard = JSON.parse(readFileSync(resolve(ROOT, "docker/grafana-dashboard.json"), "utf8")) as {
      panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>
    }
    const panels = dashboard.panels.filter((p) => p.type !== "row")
    // rates need two samples of each series: wait for one more scrape after the calls
    await eventually(
      () => prometheus.query("min(count_over_time(openapi_mcp_tool_calls_total[1m]))"),
      (r) => (r[0]?.value ?? 0) >= 2,
      "a second scrape"
    )
    assert.isAtLeast(panels.length, 10)
    // the panels that must show data after the calls above (the cache is off in this server)
    const mustHaveData = new Set([
      "Tool calls per second", "Request rate per tool", "Errors by outcome", "p95 latency per tool", "p95 upstream latency per operation",
      "Upstream responses by status", "Retries by reason", "Circuit breaker state", "Operations served", "CPU", "Resident memory"
    ])
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        const expr = target.expr.replaceAll("$__rate_interval", "1m").replace(/\$(job|instance|tool)\b/g, ".*")
        const series = await prometheus.query(expr) // throws when Prometheus cannot parse it
        if (mustHaveData.has(panel.title)) assert.isNotEmpty(series, `${panel.title}: ${expr}`)
      }
    }
  })
})
