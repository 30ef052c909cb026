/**
 * The OpenTelemetry SDK parts of Telemetry (the Prometheus exporter, process metrics), loaded only when
 * metrics are served: a stdio server without them starts without loading the SDK. Traces do not use the SDK
 * (Tracing.ts).
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { diag, DiagLogLevel } from "@opentelemetry/api"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Effect, Layer } from "effect"
import { createServer, type Server } from "node:http"
import { notFound, TelemetryError } from "../Telemetry.ts"

export { PrometheusExporter }
export { makeProcessMetrics } from "./ProcessMetrics.ts"

/** Effect's metrics as an OTel MetricProducer read by `reader`, with the service's resource. */
export const metricsLayer = (reader: PrometheusExporter, resource: { readonly serviceName: string; readonly serviceVersion: string }) =>
  OtelMetrics.layer(() => reader).pipe(Layer.provide(Resource.layerFromEnv(Resource.configToAttributes(resource))))

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
 * The OTel SDK reports its failures through its diag logger, silent by default: send
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
