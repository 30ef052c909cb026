/**
 * Telemetry in process: trace-context parsing and formatting, URL redaction, outcome classification, the
 * telemetry settings, the samplers, and the instrumentation wrappers with our spans collected in memory;
 * Telemetry.layer exporting over OTLP/HTTP to a real local receiver.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Layer, Logger, Metric, Option, Tracer } from "effect"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { createServer as createNetServer, type Socket } from "node:net"
import { gunzipSync } from "node:zlib"
import { load as parseYaml } from "js-yaml"
import { AppConfig, defaults } from "../src/AppConfig.ts"
import { parseArgv } from "../src/AppConfig/Options.ts"
import type { Tool } from "../src/domain/Tool.ts"
import {
  callerSpan,
  clientAttempt,
  formatTraceparent,
  formatXRay,
  outcomeOf,
  parseTraceparent,
  parseXRay,
  redactedUrl,
  serveToolCall,
  SpanStarter,
  Telemetry,
  ToolTelemetry,
  TraceFlush,
  type TraceHeaders
} from "../src/Telemetry.ts"
import {
  BatchExporter,
  jsonEncoding,
  layer as tracingLayer,
  makeSampler,
  makeSpans,
  newTraceId,
  parseHeaderList,
  protobufEncoding,
  TraceId
} from "../src/Telemetry/Tracing.ts"
import { otlpDocument, startOtlpReceiver } from "./support/telemetry.ts"

describe("trace context", () => {
  it("parses a W3C traceparent and refuses malformed or all-zero ones", () => {
    const span = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")!
    assert.deepStrictEqual([span.traceId, span.spanId, span.sampled], ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true])
    assert.isFalse(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")!.sampled)
    // a later version may append fields; version ff is invalid
    assert.isDefined(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"))
    for (const bad of [
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
      "garbage",
      42
    ]) assert.isUndefined(parseTraceparent(bad), String(bad))
  })

  it("parses X-Amzn-Trace-Id, needs its Parent, and reads Sampled", () => {
    const span = parseXRay("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")!
    assert.deepStrictEqual([span.traceId, span.spanId, span.sampled], ["5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true])
    assert.isFalse(parseXRay("Sampled=0; Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793")!.sampled)
    assert.isTrue(parseXRay("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?")!.sampled)
    assert.isUndefined(parseXRay("Root=1-5759e988-bd862e3fe1be46a994272793")) // as an ALB sends it
    assert.isUndefined(parseXRay("Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"))
    assert.isUndefined(parseXRay("Root=1-5759e988-bd86;Parent=53995c3f42cd8ad8"))
  })

  it("writes a span in both formats, which parse back to the same ids", () => {
    const span = { traceId: "6b0856cfbd862e3fe1be46a994272793", spanId: "53995c3f42cd8ad8", sampled: true }
    assert.strictEqual(formatTraceparent(span), "00-6b0856cfbd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
    assert.strictEqual(formatXRay(span), "Root=1-6b0856cf-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    for (const parsed of [parseTraceparent(formatTraceparent(span)), parseXRay(formatXRay(span))]) {
      assert.deepStrictEqual([parsed!.traceId, parsed!.spanId, parsed!.sampled], [span.traceId, span.spanId, true])
    }
  })

  it("prefers MCP _meta.traceparent, then the traceparent header, then X-Amzn-Trace-Id", () => {
    const meta = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
    const headers = {
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    }
    assert.strictEqual(callerSpan(meta, headers)?.traceId, "0af7651916cd43dd8448eb211c80319c")
    assert.strictEqual(callerSpan({ traceparent: "bad" }, headers)?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
    assert.strictEqual(callerSpan(undefined, { "x-amzn-trace-id": headers["x-amzn-trace-id"] })?.traceId, "5759e988bd862e3fe1be46a994272793")
    assert.isUndefined(callerSpan(undefined, undefined))
  })

  it("redacts query values and URL credentials, keeping names", () => {
    assert.strictEqual(redactedUrl("https://api.test/v1/pets", []), "https://api.test/v1/pets")
    assert.strictEqual(redactedUrl("https://api.test/v1/pets", ["limit=10", "api_key=s3cret", "flag"]), "https://api.test/v1/pets?limit=REDACTED&api_key=REDACTED&flag")
    assert.strictEqual(redactedUrl("https://bob:pw@api.test/x", []), "https://REDACTED:REDACTED@api.test/x")
  })
})

describe("outcomes", () => {
  const error = (structuredContent?: Record<string, unknown>) => ({ isError: true, content: [], ...(structuredContent ? { structuredContent } : {}) })
  it("classifies results by what the model is told", () => {
    assert.strictEqual(outcomeOf({ content: [] }), "ok")
    assert.strictEqual(outcomeOf(error({ error: "invalid_arguments" })), "invalid_args")
    assert.strictEqual(outcomeOf(error({ error: "timeout" })), "timeout")
    assert.strictEqual(outcomeOf(error({ error: "circuit_open" })), "circuit_open")
    assert.strictEqual(outcomeOf(error({ error: "connect" })), "upstream_error")
    assert.strictEqual(outcomeOf(error({ error: "overloaded" })), "upstream_error")
    assert.strictEqual(outcomeOf(error({ status: 503 })), "upstream_error")
    assert.strictEqual(outcomeOf(error({ status: 404 })), "tool_error")
    assert.strictEqual(outcomeOf(error({ error: "invalid_request" })), "tool_error")
  })
})

describe("telemetry settings", () => {
  const load = (env: Record<string, string>, argv: ReadonlyArray<string> = []) =>
    AppConfig.load(parseArgv(["--spec", "x.yaml", ...argv]).values, env)

  it.effect("turns tracing on from either OTLP endpoint, the signal-specific one winning", () => Effect.gen(function*() {
    assert.isTrue(Option.isNone((yield* load({})).telemetry.tracesEndpoint))
    assert.deepStrictEqual((yield* load({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })).telemetry.tracesEndpoint, Option.some("http://collector:4318/v1/traces"))
    const both = yield* load({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/custom" })
    assert.deepStrictEqual(both.telemetry.tracesEndpoint, Option.some("http://b:4318/custom"))
    const s = yield* load({ OTEL_SERVICE_NAME: "pets-mcp", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" })
    assert.deepStrictEqual([s.telemetry.serviceName, s.telemetry.sampler, s.telemetry.samplerArg], ["pets-mcp", "parentbased_traceidratio", 0.25])
  }))

  it.effect("reads the Prometheus settings", () => Effect.gen(function*() {
    const s = yield* load({ PROMETHEUS_PORT: "9464" }, ["--enable-prometheus", "--prometheus-host", "0.0.0.0"])
    assert.deepStrictEqual(s.telemetry.prometheus, { enabled: true, host: "0.0.0.0", port: 9464 })
    assert.deepStrictEqual((yield* load({})).telemetry.prometheus, { enabled: false, host: "127.0.0.1", port: 9090 })
  }))

  it.effect("names the setting of a bad sampler, ratio, port or endpoint", () => Effect.gen(function*() {
    const sampler = yield* Effect.flip(load({ OTEL_TRACES_SAMPLER: "sometimes" }))
    assert.include(sampler.message, "--otel-traces-sampler (OTEL_TRACES_SAMPLER)")
    assert.include(sampler.message, "parentbased_always_on")
    assert.include((yield* Effect.flip(load({ OTEL_TRACES_SAMPLER_ARG: "2" }))).message, "OTEL_TRACES_SAMPLER_ARG")
    assert.include((yield* Effect.flip(load({ PROMETHEUS_PORT: "99999" }))).message, "--prometheus-port (PROMETHEUS_PORT)")
    assert.include((yield* Effect.flip(load({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }))).message, "an http(s) URL")
  }))

  it("samples as the standard OTEL_TRACES_SAMPLER values say", () => {
    const sampled = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: true })
    const unsampled = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: false })
    const ids = Array.from({ length: 4000 }, () => newTraceId())
    const share = (name: Parameters<typeof makeSampler>[0], ratio: number, parent?: Tracer.AnySpan) => {
      const sampler = makeSampler(name, ratio)
      return ids.filter((id) => sampler(parent, id)).length / ids.length
    }
    assert.strictEqual(share("always_on", 0), 1)
    assert.strictEqual(share("always_off", 1), 0)
    assert.strictEqual(share("always_on", 1, unsampled), 1) // not parent-based: ignores the caller
    // parent-based: the caller's decision wins, the root sampler decides new traces
    assert.strictEqual(share("parentbased_always_on", 1, unsampled), 0)
    assert.strictEqual(share("parentbased_always_off", 1, sampled), 1)
    assert.strictEqual(share("parentbased_always_off", 1), 0)
    assert.strictEqual(share("parentbased_traceidratio", 0.25, sampled), 1)
    // by trace id: about the ratio of new traces, and the same answer every time for the same id
    const quarter = share("traceidratio", 0.25)
    assert.isTrue(quarter > 0.2 && quarter < 0.3, String(quarter))
    assert.strictEqual(share("parentbased_traceidratio", 0.25), quarter)
    assert.strictEqual(share("traceidratio", 0), 0)
    assert.strictEqual(share("traceidratio", 1), 1)
    // the decision of the OTel SDKs for the same id (XOR of the 32-bit words against ratio × 2^32)
    assert.isTrue(makeSampler("traceidratio", 0.5)(undefined, TraceId.fromHex("00000000000000000000000000000001")))
    assert.isFalse(makeSampler("traceidratio", 0.5)(undefined, TraceId.fromHex("00000000000000000000000080000000")))
    assert.isFalse(makeSampler("traceidratio", 0.5)(undefined, TraceId.fromHex("ffffffff000000000000000000000000")))
  })
})

const tool: Tool = {
  name: "getPet", operationId: "getPet", method: "GET", path: "/pets/{petId}", baseUrl: "http://pets.test:8080/v1"
} as unknown as Tool

describe("instrumentation", () => {
  const request = { method: "GET", url: "http://pets.test:8080/v1/pets/7", query: ["api_key=s3cret"] }
  const ok = (status: number) => ({ status })
  const describeExit = (exit: Exit.Exit<{ status: number }, never>) =>
    Exit.isSuccess(exit)
      ? { status: exit.value.status, errorType: exit.value.status >= 400 ? String(exit.value.status) : undefined }
      : { status: undefined, errorType: "_OTHER" }

  /** Our spans with the default sampler, the ended sampled ones collected in `finished`. */
  const tracing = () => {
    const finished: Array<Tracer.Span> = []
    const { start, tracer } = makeSpans(makeSampler("parentbased_always_on", 1), (span) => finished.push(span))
    const layer = Layer.mergeAll(Layer.succeed(SpanStarter, start), Layer.succeed(Tracer.Tracer, tracer))
    return { finished, layer }
  }
  const parentId = (span: Tracer.Span) => Option.getOrUndefined(span.parent)?.spanId

  it.effect("makes a SERVER span continuing the caller and a CLIENT span whose context goes upstream", () => {
    const { finished, layer } = tracing()
    const telemetry = ToolTelemetry.forTool(tool)
    const sent: Array<TraceHeaders | undefined> = []
    const call = serveToolCall(
      telemetry,
      { meta: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }, headers: undefined, requestId: 1, sessionId: undefined },
      Effect.void.pipe(
        Effect.andThen(clientAttempt(request, 0, (traceHeaders) => {
          sent.push(traceHeaders)
          return Effect.succeed(ok(404))
        }, describeExit)),
        Effect.as({ isError: true, content: [], structuredContent: { status: 404 } })
      )
    )
    return Effect.gen(function*() {
      yield* call
      const server = finished.find((s) => s.name === "tools/call getPet")!
      const client = finished.find((s) => s.name === "GET /pets/{petId}")!
      assert.strictEqual(server.kind, "server")
      assert.strictEqual(server.traceId, "0af7651916cd43dd8448eb211c80319c")
      assert.strictEqual(parentId(server), "b7ad6b7169203331")
      assert.strictEqual(server.attributes.get("error.type"), "tool_error")
      assert.strictEqual(server.attributes.get("jsonrpc.request.id"), "1")
      assert.strictEqual(client.kind, "client")
      assert.strictEqual(parentId(client), server.spanId)
      assert.strictEqual(client.attributes.get("url.full"), "http://pets.test:8080/v1/pets/7?api_key=REDACTED")
      assert.strictEqual(client.attributes.get("server.port"), 8080)
      assert.strictEqual(client.attributes.get("http.response.status_code"), 404)
      // a 404 is a failed HTTP call: the span ends as a failure saying so
      const clientStatus = client.status as Extract<Tracer.SpanStatus, { _tag: "Ended" }>
      assert.isTrue(Exit.isFailure(clientStatus.exit))
      assert.include(String(Exit.isFailure(clientStatus.exit) ? clientStatus.exit.cause : ""), "HTTP 404")
      assert.strictEqual(finished.length, 2) // the call and its upstream attempt: no span per in-process step
      assert.strictEqual(sent[0]?.["traceparent"], `00-0af7651916cd43dd8448eb211c80319c-${client.spanId}-01`)
      assert.strictEqual(sent[0]?.["x-amzn-trace-id"], `Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=${client.spanId};Sampled=1`)
      for (const s of finished) assert.notInclude(JSON.stringify([...s.attributes]), "s3cret")
    }).pipe(Effect.provide(layer))
  })

  it.effect("makes no span for a trace the caller did not sample, and still tells the upstream", () => {
    const { finished, layer } = tracing()
    const sent: Array<TraceHeaders | undefined> = []
    let serverSpanId = ""
    const call = serveToolCall(
      ToolTelemetry.forTool(tool),
      { meta: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00" }, headers: undefined, requestId: 3, sessionId: undefined },
      clientAttempt(request, 0, (traceHeaders) =>
        Effect.withFiber((fiber) => {
          serverSpanId = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)?.spanId ?? ""
          sent.push(traceHeaders)
          return Effect.succeed(ok(200))
        }), describeExit).pipe(Effect.as({ content: [] }))
    )
    return Effect.gen(function*() {
      yield* call
      assert.strictEqual(finished.length, 0)
      // the upstream's parent is the (unsampled) call itself: no CLIENT span was made for it
      assert.strictEqual(sent[0]?.["traceparent"], `00-0af7651916cd43dd8448eb211c80319c-${serverSpanId}-00`)
      assert.strictEqual(sent[0]?.["x-amzn-trace-id"], `Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=${serverSpanId};Sampled=0`)
    }).pipe(Effect.provide(layer))
  })

  it.effect("starts an X-Ray trace (epoch seconds first) when the caller sent none", () => {
    const { finished, layer } = tracing()
    return Effect.gen(function*() {
      const before = Math.floor(Date.now() / 1000)
      yield* serveToolCall(ToolTelemetry.forTool(tool), { meta: undefined, headers: {}, requestId: 2, sessionId: undefined }, Effect.succeed({ content: [] }))
      const [server] = finished
      assert.isUndefined(parentId(server!))
      assert.match(server!.traceId, /^[0-9a-f]{32}$/)
      assert.match(server!.spanId, /^[0-9a-f]{16}$/)
      const epoch = parseInt(server!.traceId.slice(0, 8), 16)
      assert.isTrue(epoch >= before - 1 && epoch <= before + 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("without tracing: counts and times, adds no trace headers", () => Effect.gen(function*() {
    const telemetry = ToolTelemetry.forTool(tool)
    const sent: Array<TraceHeaders | undefined> = []
    yield* serveToolCall(
      telemetry,
      { meta: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }, headers: undefined, requestId: 1, sessionId: undefined },
      clientAttempt(request, 0, (traceHeaders) => {
        sent.push(traceHeaders)
        return Effect.succeed(ok(200))
      }, describeExit).pipe(Effect.as({ content: [] }))
    )
    assert.strictEqual(sent.length, 1)
    assert.isUndefined(sent[0]) // no trace headers to add
    assert.strictEqual((yield* Metric.value(telemetry.toolCalls("ok")!)).count, 1)
    assert.strictEqual((yield* Metric.value(telemetry.callDuration(undefined))).count, 1)
    assert.strictEqual((yield* Metric.value(telemetry.httpDuration(200))).count, 1)
    // the same label set is the same Metric value: made once per tool
    assert.strictEqual(telemetry.toolCalls("ok"), telemetry.toolCalls("ok"))
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("Telemetry.layer", () => {
  it.live("exports batched spans over OTLP/HTTP on flush, with the service name and X-Ray ids", () =>
    Effect.gen(function*() {
      const otlp = yield* Effect.acquireRelease(Effect.promise(() => startOtlpReceiver()), (r) => Effect.promise(() => r.close()))
      const config = AppConfig.layerTest({
        spec: "x.yaml",
        telemetry: { ...defaults.telemetry, serviceName: "unit-test", tracesEndpoint: Option.some(`${otlp.url}/v1/traces`) }
      })
      yield* Effect.gen(function*() {
        const telemetry = yield* Telemetry
        assert.isTrue(telemetry.tracing)
        yield* serveToolCall(ToolTelemetry.forTool(tool), { meta: undefined, headers: undefined, requestId: 1, sessionId: undefined }, Effect.succeed({ content: [] }))
        yield* telemetry.flush // the batch delay is 5 s: only the flush sends it now
        assert.deepStrictEqual(otlp.spans.map((s) => [s.name, s.kind, s.resource["service.name"]]), [["tools/call getPet", 2, "unit-test"]])
        assert.isTrue(Math.abs(parseInt(otlp.spans[0]!.traceId.slice(0, 8), 16) - Date.now() / 1000) < 5)
      }).pipe(Effect.provide(Telemetry.layer({ serviceVersion: "test" }).pipe(Layer.provide(config))))
    }).pipe(Effect.scoped))
})

describe("span export", () => {
  interface OtlpSpan {
    readonly traceId: string
    readonly spanId: string
    readonly parentSpanId?: string
    readonly name: string
    readonly attributes: Array<{ key: string; value: Record<string, unknown> }>
    readonly events: Array<{ name: string; timeUnixNano: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }>
    readonly status: { code: number; message?: string }
  }
  /** A collector that answers `status()` and records the span names of each accepted batch. */
  const collector = async (status: () => number) => {
    const batches: Array<Array<string>> = []
    const spans: Array<OtlpSpan> = []
    const encodings: Array<string | undefined> = []
    const contentTypes: Array<string | undefined> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c)).on("end", () => {
        const code = status()
        if (code === 200) {
          encodings.push(req.headers["content-encoding"])
          contentTypes.push(req.headers["content-type"])
          const raw = Buffer.concat(chunks)
          const doc = otlpDocument(req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw, req.headers["content-type"]) as {
            resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }>
          }
          spans.push(...doc.resourceSpans[0]!.scopeSpans[0]!.spans)
          batches.push(doc.resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.name))
        }
        res.writeHead(code).end("{}")
      })
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`
    return { url, batches, spans, encodings, contentTypes, close: () => new Promise<void>((r) => server.close(() => r())) }
  }
  const head = { resource: { attributes: [{ key: "service.name", value: { stringValue: "t" } }] }, scope: { name: "test", version: "1" } }
  const exporterFor = (url: string, maxQueue: number, warnings: Array<string>, gzip = false, encoding = protobufEncoding(head)) => {
    const exporter = new BatchExporter({
      url, headers: { authorization: "Bearer collector-secret" }, gzip, delayMs: 60_000, batchSize: 2, maxQueue, timeoutMs: 2000, encoding,
      warn: (reason) => warnings.push(reason)
    })
    const { start } = makeSpans(makeSampler("always_on", 1), (span) => exporter.push(span as never))
    const span = (name: string) => start(name, "internal", undefined, 1n).end(2n, Exit.void)
    return { exporter, span, start }
  }

  it("keeps what a failing collector refused (bounded), warns once, and delivers it when the collector is back", async () => {
    let status = 503
    const otlp = await collector(() => status)
    const warnings: Array<string> = []
    const { exporter, span } = exporterFor(otlp.url, 3, warnings)
    try {
      for (const name of ["a", "b", "c", "d", "e"]) span(name) // a full batch of 2 goes at once, and is refused
      await exporter.flush()
      assert.deepStrictEqual(otlp.batches, [])
      assert.strictEqual(warnings.length, 1) // one warning for the failure spell, not one per attempt
      assert.strictEqual(warnings[0], "HTTP 503; the spans wait in a bounded queue, the newest are dropped when it is full")
      status = 200
      await exporter.flush()
      // the queue holds 3: the two refused spans went back first, one more fitted, the rest were dropped
      assert.deepStrictEqual(otlp.batches.flat(), ["a", "b", "c"])
    } finally {
      await exporter.close()
      await otlp.close()
    }
  })

  for (const [protocol, encoding] of [["http/protobuf", protobufEncoding(head)], ["http/json", jsonEncoding(head)]] as const) {
    it(`${protocol}: any text reads back the same (quotes, backslashes, control characters, emoji; a lone surrogate as U+FFFD in protobuf), numbers too`, async () => {
      const otlp = await collector(() => 200)
      const { exporter, start } = exporterFor(otlp.url, 10, [], false, encoding)
      const long = "é".repeat(20_000) // a span of over 16 KiB: three-byte lengths
      const texts = ['say "hi"', "C:\\temp\\x", "line\nbreak\ttab\u0001", "lone \ud800 half", "café 🐈", "plain", long]
      const parent = start("parent", "server", undefined, 1n)
      const span = start('GET /a"b', "client", parent, 1n)
      texts.forEach((text, i) => span.attribute(`k${i}`, text))
      span.attribute('odd "key"', ["x\\y", 2, 2.5, true, -7, 2 ** 40])
      span.event("retry \"1\"", 2n, { reason: "HTTP 503\n" })
      span.end(3n, Exit.fail(new Error('upstream said "no"\u0000')))
      await exporter.close()
      await otlp.close()
      assert.deepStrictEqual(otlp.contentTypes, [encoding.contentType])
      const sent = otlp.spans[0]!
      assert.strictEqual(sent.name, 'GET /a"b')
      assert.strictEqual(sent.parentSpanId, parent.spanId)
      assert.strictEqual(sent.spanId, span.spanId)
      assert.strictEqual(sent.traceId, span.traceId)
      // JSON.stringify writes a lone surrogate as \ud800, which reads back as the same code unit; protobuf
      // strings must be UTF-8, so it becomes U+FFFD there (a collector refuses a batch with invalid UTF-8)
      assert.deepStrictEqual(sent.attributes.map((a) => [a.key, a.value]), [
        ...texts.map((text, i) => [`k${i}`, { stringValue: protocol === "http/protobuf" && i === 3 ? "lone \ufffd half" : text }]),
        ['odd "key"', {
          arrayValue: {
            values: [{ stringValue: "x\\y" }, { intValue: 2 }, { doubleValue: 2.5 }, { boolValue: true }, { intValue: -7 }, { intValue: 2 ** 40 }]
          }
        }]
      ])
      assert.deepStrictEqual(sent.events[0], { name: 'retry "1"', timeUnixNano: "2", attributes: [{ key: "reason", value: { stringValue: "HTTP 503\n" } }] })
      assert.deepStrictEqual(sent.status, { code: 2, message: 'upstream said "no"\u0000' })
    })
  }

  it("http/protobuf: a batch larger than the writer's first buffer, with a link and a cancelled span, decodes whole", () => {
    const spans: Array<Tracer.Span> = []
    const { start } = makeSpans(makeSampler("always_on", 1), (span) => spans.push(span))
    const other = start("other", "internal", undefined, 1n)
    for (let i = 0; i < 300; i++) {
      const span = start(`s${i}`, "internal", undefined, BigInt(i))
      span.attribute("payload", "x".repeat(1000))
      if (i === 7) span.addLinks([{ span: other, attributes: { "link.reason": "retry of" } }])
      span.end(BigInt(i + 1), i === 9 ? Exit.interrupt(1) : Exit.void)
    }
    const doc = otlpDocument(Buffer.from(protobufEncoding(head).encode(spans as never)), "application/x-protobuf") as {
      resourceSpans: Array<{ resource: { attributes: Array<unknown> }; scopeSpans: Array<{ scope: unknown; spans: Array<OtlpSpan & { links: Array<unknown> }> }> }>
    }
    const [resourceSpans] = doc.resourceSpans
    assert.deepStrictEqual(resourceSpans!.resource.attributes, head.resource.attributes)
    assert.deepStrictEqual(resourceSpans!.scopeSpans[0]!.scope, { ...head.scope, attributes: [] })
    const sent = resourceSpans!.scopeSpans[0]!.spans
    assert.deepStrictEqual(sent.map((s) => s.name), spans.map((s) => s.name))
    assert.deepStrictEqual(sent[7]!.links, [{ traceId: other.traceId, spanId: other.spanId, attributes: [{ key: "link.reason", value: { stringValue: "retry of" } }] }])
    assert.deepStrictEqual(sent[9]!.status, { code: 0 }) // cancelled, not failed
    assert.deepStrictEqual(sent[9]!.attributes.at(-1), { key: "effect.fiber.interrupted", value: { boolValue: true } })
    assert.deepStrictEqual(sent[8]!.status, { code: 1 })
  })

  it("writes a tool's fixed span attributes before each span's own, alike in both encodings", () => {
    const spans: Array<Tracer.Span> = []
    const { start } = makeSpans(makeSampler("always_on", 1), (span) => spans.push(span))
    const shape = ToolTelemetry.forTool(tool).clientSpan("GET")
    assert.strictEqual(shape.name, "GET /pets/{petId}")
    for (const status of [200, 404]) {
      const span = start(shape.name, "client", undefined, 1n, shape.attributes)
      span.attribute("http.response.status_code", status)
      span.end(2n, Exit.void)
    }
    const expected = (status: number) => [
      ["http.request.method", { stringValue: "GET" }],
      ["url.template", { stringValue: "/pets/{petId}" }],
      ["server.address", { stringValue: "pets.test" }],
      ["server.port", { intValue: 8080 }],
      ["gen_ai.tool.name", { stringValue: "getPet" }],
      ["openapi.operation_id", { stringValue: "getPet" }],
      ["http.response.status_code", { intValue: status }]
    ]
    assert.deepStrictEqual([...spans[1]!.attributes].map(([key]) => key), expected(404).map(([key]) => key))
    // each encoding keeps its own copy of the fixed part: one written first must not leak into the other
    for (const encoding of [jsonEncoding(head), protobufEncoding(head), jsonEncoding(head), protobufEncoding(head)]) {
      const body = encoding.encode(spans as never)
      const doc = otlpDocument(Buffer.from(body), encoding.contentType) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }>
      }
      const sent = doc.resourceSpans[0]!.scopeSpans[0]!.spans
      assert.deepStrictEqual(sent.map((s) => s.attributes.map((a) => [a.key, a.value])), [expected(200), expected(404)])
    }
  })

  it("drops a batch the collector refuses for good (400, 415…) instead of resending it forever, and says what the status means", async () => {
    const statuses = [400, 200]
    const otlp = await collector(() => statuses.shift() ?? 200)
    const warnings: Array<string> = []
    const { exporter, span } = exporterFor(otlp.url, 10, warnings)
    try {
      span("a")
      span("b") // a full batch: refused with 400
      await exporter.flush()
      span("c")
      span("d")
      await exporter.flush()
      assert.deepStrictEqual(otlp.batches, [["c", "d"]])
      assert.deepStrictEqual(warnings, ["HTTP 400; 2 spans dropped"])
    } finally {
      await exporter.close()
      await otlp.close()
    }
    for (const [encoding, advice] of [[protobufEncoding(head), "http/json"], [jsonEncoding(head), "http/protobuf"]] as const) {
      const refusing = await collector(() => 415)
      const seen: Array<string> = []
      const refused = exporterFor(refusing.url, 10, seen, false, encoding)
      refused.span("x")
      await refused.exporter.close()
      await refusing.close()
      assert.deepStrictEqual(seen, [
        `HTTP 415 (the collector does not take ${encoding.contentType}: set OTEL_EXPORTER_OTLP_PROTOCOL=${advice}); 1 span dropped`
      ])
    }
  })

  it("drops a batch it cannot write (an attribute whose text throws) with a warning, and goes on exporting", async () => {
    const otlp = await collector(() => 200)
    const warnings: Array<string> = []
    const { exporter, span, start } = exporterFor(otlp.url, 10, warnings)
    const bad = start("bad", "internal", undefined, 1n)
    bad.attribute("odd", { toString: () => { throw new Error("no text") } })
    bad.end(2n, Exit.void)
    span("lost with it") // same batch of 2
    span("next")
    await exporter.close()
    await otlp.close()
    assert.deepStrictEqual(otlp.batches, [["next"]])
    assert.deepStrictEqual(warnings, ["a batch (2 spans) could not be written (no text) and was dropped"])
  })

  it("sends gzip-compressed batches when asked (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)", async () => {
    const otlp = await collector(() => 200)
    const warnings: Array<string> = []
    const { exporter, span } = exporterFor(otlp.url, 10, warnings, true)
    span("zipped")
    await exporter.close()
    await otlp.close()
    assert.deepStrictEqual(otlp.batches, [["zipped"]])
    assert.deepStrictEqual(otlp.encodings, ["gzip"])
    assert.deepStrictEqual(warnings, [])
  })

  it("reads OTEL_EXPORTER_OTLP_HEADERS as the standard comma-separated, URL-encoded list", () => {
    assert.deepStrictEqual(parseHeaderList("api-key=s%3Dcr%2Ct, x-team = core ,broken,=v"), { "api-key": "s=cr,t", "x-team": "core" })
  })

  it("sends the next batch on a new connection when the collector reset the kept-alive one, without a warning", async () => {
    // a collector that answers the first request of each connection and resets the connection at the second
    const bodies: Array<number> = []
    const sockets = new Set<Socket>()
    const server = createNetServer((socket) => {
      sockets.add(socket)
      let requests = 0
      let pending = Buffer.alloc(0)
      socket.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk])
        const end = pending.indexOf("\r\n\r\n")
        if (end < 0) return
        const length = Number(/content-length: (\d+)/i.exec(pending.subarray(0, end).toString())?.[1] ?? 0)
        if (pending.length < end + 4 + length) return
        pending = Buffer.alloc(0)
        if (++requests > 1) return void socket.resetAndDestroy()
        bodies.push(length)
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n{}")
      })
      socket.on("error", () => undefined)
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    const warnings: Array<string> = []
    const { exporter, span } = exporterFor(`http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`, 10, warnings)
    try {
      span("a")
      span("b")
      await exporter.flush()
      span("c")
      span("d")
      await exporter.flush()
      assert.strictEqual(bodies.length, 2) // both batches arrived, the second over a new connection
      assert.deepStrictEqual(warnings, [])
    } finally {
      await exporter.close()
      for (const socket of sockets) socket.destroy() // the exporter keeps its connection for the next batch
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it("warns without the endpoint's headers when the collector is unreachable, and never throws", async () => {
    const otlp = await collector(() => 200)
    await otlp.close() // nothing listens there now
    const warnings: Array<string> = []
    const { exporter, span } = exporterFor(otlp.url, 10, warnings)
    span("x")
    await exporter.close()
    assert.strictEqual(warnings.length, 1)
    assert.notInclude(warnings[0]!, "collector-secret")
  })
})

describe("tracing settings", () => {
  it.live("a bad OTEL_BSP_*, compression or protocol value gets a warning and the default, not a failed start", () =>
    Effect.gen(function*() {
      const otlp = yield* Effect.acquireRelease(Effect.promise(() => startOtlpReceiver()), (r) => Effect.promise(() => r.close()))
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel === "Warn") warnings.push(String(Array.isArray(message) ? message[0] : message))
      })
      const layer = tracingLayer({ url: `${otlp.url}/v1/traces`, serviceName: "t", serviceVersion: "1", sampler: makeSampler("always_on", 1) }).pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          OTEL_BSP_SCHEDULE_DELAY: "soon", OTEL_BSP_MAX_QUEUE_SIZE: "-3", OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "zstd",
          OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
        }))),
        Layer.provide(Logger.layer([logger]))
      )
      yield* Effect.gen(function*() {
        const start = yield* SpanStarter
        start!("works anyway", "internal", undefined, 1n).end(2n, Exit.void)
        yield* (yield* TraceFlush)
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(otlp.spans.map((s) => s.name), ["works anyway"])
      assert.deepStrictEqual(warnings, [
        "OTEL_BSP_SCHEDULE_DELAY=soon is not a whole number of at least 1; using 5000",
        "OTEL_BSP_MAX_QUEUE_SIZE=-3 is not a whole number of at least 1; using 2048",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=zstd is neither gzip nor none; sending uncompressed",
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: spans are sent over OTLP/HTTP (http/protobuf, or http/json when asked), " +
        "which collectors take on their OTLP/HTTP port (4318), not the gRPC one (4317); sending http/protobuf"
      ])
    }).pipe(Effect.scoped))
})

describe("tracing protocol", () => {
  const exportOne = (env: Record<string, string>) =>
    Effect.gen(function*() {
      const otlp = yield* Effect.acquireRelease(Effect.promise(() => startOtlpReceiver()), (r) => Effect.promise(() => r.close()))
      const layer = tracingLayer({ url: `${otlp.url}/v1/traces`, serviceName: "svc", serviceVersion: "1", sampler: makeSampler("always_on", 1) }).pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
      )
      yield* Effect.gen(function*() {
        const start = yield* SpanStarter
        const span = start!("getPet", "client", undefined, 1n)
        span.attribute("http.response.status_code", 200)
        span.end(2n, Exit.void)
        yield* (yield* TraceFlush)
      }).pipe(Effect.provide(layer))
      return otlp
    })

  it.live("sends OTLP/HTTP protobuf by default (the OTLP standard's default)", () =>
    Effect.gen(function*() {
      const otlp = yield* exportOne({})
      assert.deepStrictEqual(otlp.contentTypes, ["application/x-protobuf"])
      assert.deepStrictEqual(otlp.spans.map((s) => [s.name, s.kind, s.attributes["http.response.status_code"], s.resource["service.name"]]), [
        ["getPet", 3, 200, "svc"]
      ])
    }).pipe(Effect.scoped))

  it.live("sends OTLP/HTTP JSON when OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (or ..._PROTOCOL) is http/json", () =>
    Effect.gen(function*() {
      for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
        const otlp = yield* exportOne({ [name]: "http/json" })
        assert.deepStrictEqual(otlp.contentTypes, ["application/json"])
        assert.deepStrictEqual(otlp.spans.map((s) => [s.name, s.attributes["http.response.status_code"]]), [["getPet", 200]])
      }
    }).pipe(Effect.scoped))
})

describe("otel-collector.yaml", () => {
  it("receives OTLP, limits memory then batches, exports traces to X-Ray and metrics by SigV4 remote write", () => {
    type Section = Record<string, unknown>
    const doc = parseYaml(readFileSync(new URL("../otel-collector.yaml", import.meta.url), "utf8")) as {
      extensions: Section; receivers: Section; processors: Section; exporters: Record<string, Section>
      service: { extensions: Array<string>; pipelines: Record<string, { receivers: Array<string>; processors: Array<string>; exporters: Array<string> }> }
    }
    const { traces, metrics } = doc.service.pipelines
    assert.deepStrictEqual(traces!.receivers, ["otlp"])
    assert.deepStrictEqual(traces!.exporters, ["awsxray"])
    assert.deepStrictEqual(metrics!.exporters, ["prometheusremotewrite"])
    assert.deepStrictEqual((doc.exporters["prometheusremotewrite"]!["auth"] as Section)["authenticator"], "sigv4auth")
    for (const pipeline of [traces!, metrics!]) {
      assert.deepStrictEqual(pipeline.processors, ["memory_limiter", "batch"])
      for (const r of pipeline.receivers) assert.property(doc.receivers, r)
      for (const p of pipeline.processors) assert.property(doc.processors, p)
      for (const e of pipeline.exporters) assert.property(doc.exporters, e)
    }
    for (const e of doc.service.extensions) assert.property(doc.extensions, e)
    assert.include(doc.service.extensions, "sigv4auth")
  })
})
