/**
 * Invoker: one tool call end to end: validate the arguments, build the request, add the credential, send it
 * upstream, map the answer. Every failure the model can act on (bad arguments, upstream 4xx/5xx, timeouts,
 * unreachable upstream) comes back as an `isError` tool result; only an unknown tool is a protocol error.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { AppConfig } from "./AppConfig.ts"
import { Auth } from "./Auth.ts"
import type { Tool } from "./domain/Tool.ts"
import { BuildError, buildRequest } from "./Invoker/RequestBuilder.ts"
import { mapResponse } from "./Invoker/ResponseMapper.ts"
import { validate } from "./Invoker/Validation.ts"
import { ToolCatalog } from "./ToolCatalog.ts"
import { Upstream, type UpstreamError } from "./Upstream.ts"

export class UnknownTool extends Schema.TaggedError<UnknownTool>()("UnknownTool", { name: Schema.String }) {}

const toolError = (text: string, structured?: Record<string, unknown>): CallToolResult => ({
  isError: true,
  content: [{ type: "text", text }],
  ...(structured ? { structuredContent: structured } : {})
})

const origin = (tool: Tool): string => {
  try {
    return new URL(tool.baseUrl).origin
  } catch {
    return tool.baseUrl
  }
}

const describeUpstreamError = (tool: Tool, e: UpstreamError): CallToolResult => {
  const r = e.reason
  switch (r._tag) {
    case "UpstreamTimeout":
      return toolError(
        `${tool.operationId} failed: the upstream API did not answer within ${r.afterMs / 1000} s (request timeout, HTTP_TIMEOUT) for ${tool.method} ${tool.path}. The request was cancelled; it may be retried later.`,
        { error: "timeout", timeout: "request", after_ms: r.afterMs }
      )
    case "UpstreamConnect":
      return toolError(
        `${tool.operationId} failed: could not reach the upstream API at ${origin(tool)} (${r.detail}).`,
        { error: "connect", detail: r.detail }
      )
    case "UpstreamInvalidRequest":
      return toolError(`${tool.operationId} failed: ${r.detail}.`, { error: "invalid_request" })
  }
}

export class Invoker extends Context.Service<Invoker, {
  /** Calls the named tool with the given arguments. */
  readonly call: (name: string, args: unknown) => Effect.Effect<CallToolResult, UnknownTool>
}>()("openapi-mcp/Invoker") {
  static readonly layerNoDeps = Layer.effect(Invoker, Effect.gen(function*() {
    const catalog = yield* ToolCatalog
    const auth = yield* Auth
    const upstream = yield* Upstream
    const { maxResponseBytes } = yield* AppConfig

    const call = Effect.fn("Invoker.call")(function*(name: string, rawArgs: unknown) {
      const tool = catalog.lookup(name)
      if (tool === undefined) return yield* new UnknownTool({ name })
      yield* Effect.annotateCurrentSpan({ "gen_ai.tool.name": name, "openapi.operation_id": tool.operationId })
      if (rawArgs !== undefined && rawArgs !== null && (typeof rawArgs !== "object" || Array.isArray(rawArgs))) {
        return toolError(`Invalid arguments for ${name}: arguments must be a JSON object.`)
      }
      const args = (rawArgs ?? {}) as Record<string, unknown>
      const problems = validate(tool, args)
      if (problems.length > 0) {
        return toolError(
          `Invalid arguments for ${name}:\n${problems.map((p) => `- ${p}`).join("\n")}\nFix the arguments and call the tool again.`,
          { error: "invalid_arguments", problems }
        )
      }
      let request
      try {
        request = auth.apply(buildRequest(tool, args))
      } catch (e) {
        if (e instanceof BuildError) return toolError(`Invalid arguments for ${name}: ${e.message}`, { error: "invalid_arguments" })
        throw e
      }
      const started = yield* Clock.currentTimeMillis
      return yield* upstream.execute(request).pipe(
        Effect.flatMap((res) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const log = res.status >= 500 ? Effect.logWarning : Effect.logDebug
            yield* log("upstream call").pipe(Effect.annotateLogs({
              tool: name, operation: tool.operationId, status: res.status, duration_ms: now - started
            }))
            return mapResponse(tool, res, maxResponseBytes, now)
          })
        ),
        Effect.catchTag("UpstreamError", (e) =>
          Effect.logWarning(`upstream call failed: ${e.reason._tag}`).pipe(
            Effect.annotateLogs({ tool: name, operation: tool.operationId }),
            Effect.as(describeUpstreamError(tool, e))
          ))
      )
    })
    return Invoker.of({ call })
  }))
}
