/**
 * The OpenTelemetry SDK parts of Telemetry, loaded only when metrics are served or tracing is on: a stdio
 * server with neither starts without loading the SDK and its exporters.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { diag, DiagLogLevel } from "@opentelemetry/api"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { AWSXRayIdGenerator } from "@opentelemetry/id-generator-aws-xray"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Tracer } from "effect"
import { createServer, type Server } from "node:http"
import type { Settings } from "../AppConfig.ts"
import { notFound, TelemetryError } from "../Telemetry.ts"

export { BatchSpanProcessor, NodeSdk, OtelTracer, OTLPTraceExporter, PrometheusExporter }

export const xrayIds = () => new AWSXRayIdGenerator()

/**
 * Effect spans as OTel spans, without @effect/opentelemetry's per-step context hook. That hook makes every
 * Effect step inside a span run within an OTel context holding it, for OTel instrumentations of other
 * libraries; there are none here (spans link to their parents through Effect), and it was most of the
 * tracing cost of a tool call.
 */
export const SpansOnlyTracer = Layer.effect(
  Tracer.Tracer,
  Effect.map(OtelTracer.make, (otel) => Tracer.make({ span: (options) => otel.span(options) }))
)

/** An OTel diag message part as text: errors arrive as JSON-serialised exceptions; keep their message. */
const diagText = (x: unknown): string => {
  if (x instanceof Error) return x.message
  if (typeof x !== "string") return ""
  try {
    const parsed = JSON.parse(x) as { message?: unknown }
    return typeof parsed.message === "string" ? parsed.message : x
  } catch {
    return x
  }
}

/**
 * The OTel SDK reports failed exports (collector down…) through its diag logger, silent by default: send
 * its warnings and errors to our JSON log as warnings (the server itself is fine), until the scope closes.
 */
export const routeDiagToLog = Effect.gen(function*() {
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const report = (...parts: Array<unknown>) =>
    runFork(Effect.logWarning(`opentelemetry: ${parts.map(diagText).filter((p) => p !== "").join(": ")}`))
  const noop = () => {}
  diag.setLogger(
    { error: report, warn: report, info: noop, debug: noop, verbose: noop },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true }
  )
  yield* Effect.addFinalizer(() => Effect.sync(() => diag.disable()))
})

/** The OTel sampler named by OTEL_TRACES_SAMPLER (and OTEL_TRACES_SAMPLER_ARG for the ratio ones). */
export const makeSampler = (name: Settings["telemetry"]["sampler"], ratio: number): Sampler => {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler()
    case "always_off":
      return new AlwaysOffSampler()
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio)
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}


/** A node:http server answering GET /metrics from the exporter, closed with the scope. */
export const metricsServer = (exporter: PrometheusExporter, host: string, port: number) =>
  Effect.acquireRelease(
    Effect.callback<Server, TelemetryError>((resume) => {
      const server = createServer((req, res) => {
        const path = (req.url ?? "").split("?")[0]
        if (req.method === "GET" && path === "/metrics") exporter.getMetricsRequestHandler(req, res)
        else notFound(res)
      })
      server.once("error", (e: NodeJS.ErrnoException) =>
        resume(Effect.fail(
          new TelemetryError({
            message: `cannot serve metrics on ${host}:${port} (--prometheus-host/--prometheus-port, PROMETHEUS_HOST/PROMETHEUS_PORT): ${e.code ?? e.message}`
          })
        )))
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
