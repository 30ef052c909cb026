/**
 * The application's layer graph, shared by the CLI and tests: everything below the transports, plus the
 * JSON-lines logger. Entry points provide AppConfig and pick a transport.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Cause, Context, Layer, Logger, References, Tracer } from "effect"
import type { LogLevel } from "effect/LogLevel"
import { Auth } from "./Auth.ts"
import { Discovery } from "./Discovery.ts"
import { Invoker } from "./Invoker.ts"
import { McpServer, PACKAGE_VERSION } from "./McpServer.ts"
import { ResponseCache } from "./ResponseCache.ts"
import { SpecLoader } from "./SpecLoader.ts"
import { specSourcePolicyLayer } from "./Security/SsrfGuard.ts"
import { SpecWatch } from "./SpecWatch.ts"
import { ClientLog, Telemetry } from "./Telemetry.ts"
import { ToolCatalog } from "./ToolCatalog.ts"
import { Upstream } from "./Upstream.ts"

/** A log call's message: what `Effect.log("text")` logs is an array of one. */
const messageOf = (message: unknown): unknown => Array.isArray(message) && message.length === 1 ? message[0] : message

/**
 * One JSON object per line on stderr: time, level, message, the current trace/span ids and the log
 * annotations (tool, operation, status, duration_ms…). stderr, never stdout: stdout is MCP's in stdio mode.
 */
export const jsonStderrLogger = Logger.make(({ cause, date, fiber, logLevel, message }) => {
  const entry: Record<string, unknown> = { time: date.toISOString(), level: logLevel.toLowerCase(), message: messageOf(message) }
  const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
  // without tracing, spans are not recorded and their ids mean nothing
  if (span !== undefined && fiber.getRef(References.TracerEnabled)) {
    entry["trace_id"] = span.traceId
    entry["span_id"] = span.spanId
  }
  for (const [k, v] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) entry[k] = v
  if (cause.reasons.length > 0) entry["cause"] = Cause.pretty(cause)
  let line: string
  try {
    line = JSON.stringify(entry)
  } catch {
    line = JSON.stringify({ time: entry["time"], level: entry["level"], message: String(entry["message"]) })
  }
  process.stderr.write(`${line}\n`)
})

/**
 * A tool call's own warnings and errors (those naming its tool: a failed upstream call, a credential that could
 * not be had) also go to the MCP client that made it (MCP `logging`, as `notifications/message` with the message
 * and the log annotations), never to other clients. The server's own troubles met on the way (the cache's store
 * down, say) stay in its log: they are the operator's, and name its infrastructure.
 */
const clientLogger = Logger.make(({ fiber, logLevel, message }) => {
  if (logLevel !== "Warn" && logLevel !== "Error" && logLevel !== "Fatal") return
  const sink = fiber.getRef(ClientLog)
  const annotations = fiber.getRef(References.CurrentLogAnnotations)
  if (sink === undefined || !("tool" in annotations)) return
  const text = messageOf(message)
  sink(logLevel === "Warn" ? "warning" : logLevel === "Error" ? "error" : "critical", {
    message: typeof text === "string" ? text : String(text),
    ...annotations
  })
})

export const LoggingLayer = (level: LogLevel) =>
  Layer.merge(Logger.layer([jsonStderrLogger, clientLogger]), Layer.succeed(References.MinimumLogLevel, level))

/** The spec loader under the SSRF guard / allowed-directories / size policy from AppConfig. */
export const SpecLoaderLive = SpecLoader.layerNoDeps.pipe(
  Layer.provide(Layer.merge(NodeFileSystem.layer, specSourcePolicyLayer))
)
const CatalogLive = ToolCatalog.layerNoDeps.pipe(Layer.provide(SpecLoaderLive))

/** Everything built from the spec: catalog, auth, invoker and the tool surface; built again as a whole by --watch. */
const SpecLayer = Discovery.layerNoDeps.pipe(
  Layer.provideMerge(Invoker.layerNoDeps),
  Layer.provideMerge(Layer.merge(CatalogLive, Auth.layer.pipe(Layer.provide(CatalogLive))))
)

/** The spec's services, the MCP server and the spec watch, over the upstream client, cache and telemetry (built first, closed last); needs AppConfig. */
export const AppLayer = SpecWatch.layer(SpecLayer, SpecLoaderLive).pipe(
  Layer.provideMerge(McpServer.layerNoDeps),
  Layer.provideMerge(SpecLayer),
  Layer.provideMerge(Layer.merge(Upstream.layer, ResponseCache.layer)),
  Layer.provideMerge(Telemetry.layer({ serviceVersion: PACKAGE_VERSION }))
)
