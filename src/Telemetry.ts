/**
 * Telemetry: metrics and traces.
 *
 * - Metrics are Effect `Metric`s (see Telemetry/Metrics.ts) read by the OpenTelemetry SDK's Prometheus
 *   exporter, with process and Node runtime metrics beside them. Scraped on `/metrics` of the HTTP
 *   transport, and on PROMETHEUS_HOST:PROMETHEUS_PORT when ENABLE_PROMETHEUS is set (the only way for stdio).
 * - Traces: our own spans (Telemetry/Tracing.ts) with AWS X-Ray-format ids, sampled by OTEL_TRACES_SAMPLER,
 *   batched and sent over OTLP/HTTP (protobuf, or JSON when asked) to OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT,
 *   flushed when the layer closes. Tracing is off without an endpoint, and then no span is made at all.
 * - One SERVER span per tools/call (continuing the caller's `traceparent` / `X-Amzn-Trace-Id`) and one
 *   CLIENT span per upstream attempt, whose trace context goes to the upstream in both W3C and X-Ray form.
 *
 * Effect's own HTTP spans are switched off: its client span would record the full request URL, which may
 * carry an API key in the query, and its server spans would trace every scrape and health check. The
 * upstream CLIENT span made here records the URL with query values redacted and no headers.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Cause, Clock, Context, Effect, Exit, Layer, Option, References, Schema, Tracer } from "effect"
import { HttpClient, HttpMiddleware } from "effect/http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { AppConfig } from "./AppConfig.ts"
import {
  BREAKER_STATE_VALUE,
  circuitBreakerState,
  type FixedAttributes,
  methodDuration,
  outcomeOf,
  requestTelemetry,
  ToolTelemetry,
  unknownToolTelemetry
} from "./Telemetry/Metrics.ts"
import { callerSpan, propagationHeaders, redactedUrl, type TraceHeaders } from "./Telemetry/Propagation.ts"

export {
  type CacheResult,
  cacheRequests,
  circuitBreakerState,
  FixedAttributes,
  METRIC_NAMES,
  outcomeOf,
  specOperations,
  type ToolOutcome,
  ToolTelemetry,
  unknownToolTelemetry
} from "./Telemetry/Metrics.ts"
export {
  callerSpan,
  formatTraceparent,
  formatXRay,
  parseTraceparent,
  parseXRay,
  redactedUrl,
  type TraceHeaders
} from "./Telemetry/Propagation.ts"

export const notFound = (res: ServerResponse) => {
  res.statusCode = 404
  res.setHeader("content-type", "text/plain")
  res.end("not found\n")
}

export class TelemetryError extends Schema.TaggedError<TelemetryError>()("TelemetryError", { message: Schema.String }) {}

/**
 * Starts a span (Telemetry/Tracing.ts): a trace id (X-Ray format) or the parent's, the sampling decision,
 * the start time. The instrumentation below makes its spans with it directly rather than through
 * `Effect.withSpan`, whose generic machinery (several context updates per span) cost more than the span.
 * An unsampled span is only carried as the trace context (never ended, never exported).
 */
export type StartSpan = (
  name: string,
  kind: Tracer.SpanKind,
  parent: Tracer.AnySpan | undefined,
  startTime: bigint,
  fixed?: FixedAttributes
) => Tracer.Span

/** Exports the spans batched so far (bounded in time); nothing to do while tracing is off. */
export const TraceFlush = Context.Reference<Effect.Effect<void>>("openapi-mcp/Telemetry/TraceFlush", {
  defaultValue: () => Effect.void
})

/** How spans start while tracing is on; undefined while it is off (no span work at all). */
export const SpanStarter = Context.Reference<StartSpan | undefined>("openapi-mcp/Telemetry/SpanStarter", {
  defaultValue: () => undefined
})

/** The tool whose call is running, for the labels and spans of the upstream requests it makes. */
export const CurrentTool = Context.Reference<ToolTelemetry | undefined>("openapi-mcp/Telemetry/CurrentTool", {
  defaultValue: () => undefined
})

const always = () => true


export class Telemetry extends Context.Service<Telemetry, {
  /** Whether spans are recorded and exported (an OTLP endpoint is configured). */
  readonly tracing: boolean
  /**
   * Exports the spans batched so far (bounded to 3 s). Closing the layer does this too; a process that is
   * frozen between requests (AWS Lambda) calls it at the end of each one.
   */
  readonly flush: Effect.Effect<void>
  /** Answers a Prometheus scrape on a raw Node request/response; 404 when metrics are off. */
  readonly serveMetrics: (req: IncomingMessage, res: ServerResponse) => void
}>()("openapi-mcp/Telemetry") {
  /**
   * The OTel SDK from the settings: the Prometheus reader when metrics are served (HTTP transport, or
   * ENABLE_PROMETHEUS), the OTLP trace pipeline when an endpoint is set. Also switches off Effect's own
   * HTTP client and server spans (see the module header) and, without tracing, span recording.
   */
  static readonly layer = (options: { readonly serviceVersion: string }) =>
    Layer.unwrap(Effect.gen(function*() {
      const config = yield* AppConfig
      const t = config.telemetry
      const metricsOn = config.transport === "http" || t.prometheus.enabled
      const tracesUrl = Option.getOrUndefined(t.tracesEndpoint)
      const tracing = tracesUrl !== undefined
      if (!metricsOn && !tracing) {
        // nothing to export: Effect metrics still update in memory; the OTel SDK is not even loaded
        return Layer.mergeAll(
          Telemetry.layerTest,
          Layer.succeed(References.TracerEnabled, false),
          Layer.succeed(HttpClient.TracerDisabledWhen, always),
          Layer.succeed(HttpMiddleware.TracerDisabledWhen, always)
        )
      }
      // metrics: the OTel SDK's Prometheus reader, with process metrics (Effect metrics reach it through a
      // MetricProducer); loaded only when metrics are on
      const metrics = metricsOn ? yield* Effect.promise(() => import("./Telemetry/Sdk.ts")) : undefined
      const prometheus = metrics === undefined ? undefined : (() => {
        const processMetrics = metrics.makeProcessMetrics()
        const exporter = new metrics.PrometheusExporter({
          preventServerStart: true,
          withoutScopeInfo: true,
          metricProducers: [processMetrics]
        })
        const layer = metrics.metricsLayer(exporter, { serviceName: t.serviceName, serviceVersion: options.serviceVersion })
        return { processMetrics, exporter, layer }
      })()
      // spans: our own light tracer, batched to the OTLP endpoint (see Telemetry/Tracing.ts)
      const tracer = tracesUrl === undefined ? undefined : yield* Effect.promise(() => import("./Telemetry/Tracing.ts")).pipe(
        Effect.map((traces) =>
          traces.layer({
            url: tracesUrl,
            serviceName: t.serviceName,
            serviceVersion: options.serviceVersion,
            sampler: traces.makeSampler(t.sampler, t.samplerArg)
          })
        )
      )
      const service = Layer.effect(Telemetry, Effect.gen(function*() {
        if (metrics !== undefined && prometheus !== undefined) {
          const { exporter, processMetrics } = prometheus
          yield* Effect.addFinalizer(() => Effect.sync(processMetrics.close))
          if (t.prometheus.enabled) {
            const server = yield* metrics.metricsServer(exporter, t.prometheus.host, t.prometheus.port)
            const address = server.address()
            const port = typeof address === "object" && address !== null ? address.port : t.prometheus.port
            yield* Effect.logInfo(`metrics on http://${t.prometheus.host}:${port}/metrics`)
          }
          yield* metrics.routeDiagToLog
        }
        const flush = yield* TraceFlush
        return Telemetry.of({
          tracing,
          flush,
          serveMetrics: prometheus === undefined
            ? (_req, res) => notFound(res)
            : (req, res) => prometheus.exporter.getMetricsRequestHandler(req, res)
        })
      }))
      return Layer.mergeAll(
        tracer === undefined ? service : service.pipe(Layer.provideMerge(tracer)),
        prometheus === undefined ? Layer.empty : prometheus.layer,
        Layer.succeed(References.TracerEnabled, tracing),
        Layer.succeed(HttpClient.TracerDisabledWhen, always),
        Layer.succeed(HttpMiddleware.TracerDisabledWhen, always)
      )
    }))

  /** No exporters, no tracing: metrics still update the in-memory registry. */
  static readonly layerTest: Layer.Layer<Telemetry> = Layer.succeed(Telemetry, {
    tracing: false,
    flush: Effect.void,
    serveMetrics: (_req, res) => notFound(res)
  })
}

/** A failure's `error.type`: the JSON-RPC code of an MCP protocol error, `cancelled`, or `_OTHER`. */
const errorTypeOfCause = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterruptsOnly(cause)) return "cancelled"
  for (const reason of cause.reasons) {
    const value = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
    const code = typeof value === "object" && value !== null ? (value as { code?: unknown }).code : undefined
    if (typeof code === "number") return String(code)
  }
  return "_OTHER"
}

/** What the MCP transport knows about one request, for trace continuation and span attributes. */
export interface McpRequestInfo {
  readonly meta: unknown
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>> | undefined
  readonly requestId: string | number | undefined
  readonly sessionId: string | undefined
  /** The calling client's MCP log (`notifications/message`): it hears the call's warnings and errors (ClientLog). */
  readonly log?: ClientLogSink
}

/** Sends one log message to an MCP client (MCP `logging`). */
export type ClientLogSink = (level: "warning" | "error" | "critical", data: Record<string, unknown>) => void

/** The current tool call's client, for its warnings and errors (Main.ts's client logger); undefined elsewhere. */
export const ClientLog = Context.Reference<ClientLogSink | undefined>("openapi-mcp/Telemetry/ClientLog", {
  defaultValue: () => undefined
})

/**
 * One tools/call request: the tool-call counter (by outcome) and the duration histogram, the tool as the
 * current operation for upstream metrics, and with tracing a SERVER span `tools/call <tool>` that continues
 * the caller's trace from `params._meta.traceparent` or the HTTP `traceparent` / `X-Amzn-Trace-Id` headers.
 */
export const serveToolCall = <E, R>(
  tool: ToolTelemetry,
  request: McpRequestInfo,
  call: Effect.Effect<CallToolResult, E, R>
): Effect.Effect<CallToolResult, E, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const started = clock.currentTimeNanosUnsafe()
    const start = fiber.getRef(SpanStarter)
    const span = start?.(tool.spanName, "server", callerSpan(request.meta, request.headers), started, tool.serverAttributes)
    const recorded = span !== undefined && span.sampled ? span : undefined
    if (recorded !== undefined) {
      if (request.requestId !== undefined) recorded.attribute("jsonrpc.request.id", String(request.requestId))
      if (request.sessionId !== undefined) recorded.attribute("mcp.session.id", request.sessionId)
    }
    const measured = Effect.onExitPrimitive(call, (exit) => {
      let errorType: string | undefined
      if (Exit.isSuccess(exit)) {
        const outcome = outcomeOf(exit.value)
        tool.toolCalls(outcome)?.updateUnsafe(1, fiber.context)
        if (outcome !== "ok") errorType = outcome
      } else {
        errorType = errorTypeOfCause(exit.cause)
      }
      const ended = clock.currentTimeNanosUnsafe()
      tool.callDuration(errorType).updateUnsafe(Number(ended - started) / 1e9, fiber.context)
      if (recorded !== undefined) {
        if (errorType !== undefined) recorded.attribute("error.type", errorType)
        recorded.end(ended, exit)
      }
      return undefined
    })
    // one context update for both (each is a context switch now and another when the call ends)
    return Effect.updateContext(measured, (context) => {
      let withTool = Context.add(context, CurrentTool, tool)
      if (request.log !== undefined) withTool = Context.add(withTool, ClientLog, request.log)
      return span === undefined ? withTool : Context.add(withTool, Tracer.ParentSpan, span)
    })
  })

/**
 * Another MCP request (tools/list…): its duration, and with tracing a SERVER span named after the method,
 * continuing the caller's trace.
 */
export const serveRequest = <A, E, R>(method: string, request: McpRequestInfo, handle: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const started = clock.currentTimeNanosUnsafe()
    const span = fiber.getRef(SpanStarter)?.(method, "server", callerSpan(request.meta, request.headers), started)
    if (span?.sampled === true) span.attribute("mcp.method.name", method)
    const measured = Effect.onExitPrimitive(handle, (exit) => {
      const ended = clock.currentTimeNanosUnsafe()
      methodDuration(method).updateUnsafe(Number(ended - started) / 1e9, fiber.context)
      if (span?.sampled === true) span.end(ended, exit)
      return undefined
    })
    return span === undefined ? measured : Effect.provideService(measured, Tracer.ParentSpan, span)
  })

/** How an upstream attempt ended, for its metric labels and span attributes. */
export interface AttemptResult {
  /** The HTTP status, when an answer came. */
  readonly status: number | undefined
  /** Set when the attempt failed: the status as text for 4xx/5xx, else a short kind (`timeout`, `connect`…). */
  readonly errorType: string | undefined
}

/** What a failed attempt's span records: the status or the kind of failure, never a URL. */
class AttemptError extends Error {
  override readonly name = "UpstreamAttemptError"
}

/**
 * One HTTP attempt to the upstream: `http_client_request_duration_seconds`, and with tracing a CLIENT span
 * (HTTP semantic-convention attributes, the URL with query values redacted, no headers) whose context
 * `send` must add to the request (as `traceparent` and `X-Amzn-Trace-Id`); without tracing it gets undefined.
 */
export const clientAttempt = <A, E, R>(
  request: { readonly method: string; readonly url: string; readonly query: ReadonlyArray<string> },
  resendCount: number,
  send: (traceHeaders: TraceHeaders | undefined) => Effect.Effect<A, E, R>,
  describe: (exit: Exit.Exit<A, E>) => AttemptResult
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const tool = fiber.getRef(CurrentTool) ?? requestTelemetry(request.method, request.url)
    const clock = fiber.getRef(Clock.Clock)
    const started = clock.currentTimeNanosUnsafe()
    /** The attempt, timed into its metric and, when it has one, ended into its span: one exit callback for both. */
    const observed = (headers: TraceHeaders | undefined, span?: Tracer.Span) =>
      Effect.onExitPrimitive(send(headers), (exit) => {
        const ended = clock.currentTimeNanosUnsafe()
        const { errorType, status } = describe(exit)
        tool.httpDuration(status).updateUnsafe(Number(ended - started) / 1e9, fiber.context)
        if (span === undefined) return undefined
        if (status !== undefined) span.attribute("http.response.status_code", status)
        if (errorType !== undefined) span.attribute("error.type", errorType)
        // a 4xx/5xx answer is a successful Effect but a failed HTTP call; either way the span says what failed
        span.end(
          ended,
          errorType === undefined || (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
            ? exit
            : Exit.fail(new AttemptError(status !== undefined ? `HTTP ${status}` : errorType))
        )
        return undefined
      })
    const start = fiber.getRef(SpanStarter)
    if (start === undefined) return observed(undefined)
    // a trace the sampler left out: no span of ours, but the upstream still learns the trace and the decision
    const parent = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
    if (parent !== undefined && !parent.sampled) return observed(propagationHeaders(parent))
    const shape = tool.clientSpan(request.method)
    const span = start(shape.name, "client", parent, started, shape.attributes)
    if (!span.sampled) return observed(propagationHeaders(span))
    span.attribute("url.full", redactedUrl(request.url, request.query))
    if (resendCount > 0) span.attribute("http.request.resend_count", resendCount)
    return observed(propagationHeaders(span), span)
  })

/** Counts one retry of an upstream request, labelled with the current tool's operation. */
export const recordRetry = (reason: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    ;(fiber.getRef(CurrentTool) ?? unknownToolTelemetry).retries(reason).updateUnsafe(1, fiber.context)
    return Effect.void
  })

/** Sets `openapi_mcp_circuit_breaker_state` of an origin when its breaker changes state. */
export const breakerTransition = (origin: string, to: keyof typeof BREAKER_STATE_VALUE, context: Context.Context<never>): void => {
  circuitBreakerState(origin).updateUnsafe(BREAKER_STATE_VALUE[to], context)
}
