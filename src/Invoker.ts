/**
 * Invoker: one tool call end to end: validate the arguments, build the request, add the credential, send it
 * upstream, map the answer. Every failure the model can act on (bad arguments, upstream 4xx/5xx, timeouts,
 * unreachable upstream) comes back as an `isError` tool result; only an unknown tool is a protocol error.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Context, Effect, type Fiber, Layer, LogLevel, Option, References, Schema } from "effect"
import { createHash } from "node:crypto"
import { mkdir } from "node:fs/promises"
import { AppConfig, ConfigInvalid, type OperationOverride, type Settings } from "./AppConfig.ts"
import { Auth, type AuthError, CallerToken } from "./Auth.ts"
import { SAFE_METHODS, type Tool } from "./domain/Tool.ts"
import { BuildError, buildRequest, type OutgoingRequest } from "./Invoker/RequestBuilder.ts"
import { mapResponse } from "./Invoker/ResponseMapper.ts"
import { saveDownload } from "./Invoker/Downloads.ts"
import { fileArguments, namesLocalFiles, readLocalFiles } from "./Invoker/LocalFiles.ts"
import { applySelect, checkSelect, SELECT_ARGUMENT } from "./Invoker/Select.ts"
import { coerceTextArguments, MAX_ARGUMENT_DEPTH, nestedDeeper, validate } from "./Invoker/Validation.ts"
import { ToolCatalog } from "./ToolCatalog.ts"
import { problemOf } from "./ToolCatalog/Mapping.ts"
import { type CacheInfo, ResponseCache, type Sent } from "./ResponseCache.ts"
import { type CallPolicy, originOf, Upstream, type UpstreamError } from "./Upstream.ts"
import { rateLimited } from "./Upstream/RetryAfter.ts"

/**
 * The headers of the client's request that go to the API with this call (MCP_FORWARD_HEADERS), by their name
 * for the API, lower-case. Set per call by the MCP server from the HTTP request that carried it; they win over
 * the configured credentials and headers of the same name.
 */
export const ForwardedHeaders = Context.Reference<Readonly<Record<string, string>> | undefined>("openapi-mcp/Invoker/ForwardedHeaders", {
  defaultValue: () => undefined
})

const withForwarded = (request: OutgoingRequest, forwarded: Readonly<Record<string, string>> | undefined): OutgoingRequest =>
  forwarded === undefined ? request : { ...request, headers: { ...request.headers, ...forwarded } }

/** Says which of a refused request's headers the client forwarded, as the configured credential may not have been sent. */
const forwardedNote = (forwarded: Readonly<Record<string, string>> | undefined) =>
  forwarded === undefined ? "" : `\nSent with the client's own ${Object.keys(forwarded).join(", ")} (MCP_FORWARD_HEADERS), which the API may have refused.`

export class UnknownTool extends Schema.TaggedError<UnknownTool>()("UnknownTool", { name: Schema.String }) {}

export const toolError = (text: string, structured?: Record<string, unknown>): CallToolResult => ({
  isError: true,
  content: [{ type: "text", text }],
  ...(structured ? { structuredContent: structured } : {})
})

/** The result with `note` after its text (`separator` between them). */
const withNote = (result: CallToolResult, note: string | undefined, separator = "\n\n"): CallToolResult => {
  const [first, ...rest] = result.content
  return note === undefined || first?.type !== "text" ? result : { ...result, content: [{ ...first, text: `${first.text}${separator}${note}` }, ...rest] }
}

/**
 * The tool error for a tool whose operation turned out unmappable when it was built (lazily, after start),
 * or undefined when the tool can be used.
 */
export const unusable = (tool: Tool): CallToolResult | undefined => {
  const problem = problemOf(tool)
  return problem === undefined ? undefined : toolError(
    `${tool.name} cannot be used: the API description of this operation is broken (${problem.location}: ${problem.message}). ` +
      `Use another operation.`,
    { error: "unusable_operation", location: problem.location, reason: problem.message }
  )
}

const attemptsNote = (n: number) => n > 1 ? ` (after ${n} attempts)` : ""

/** Every alternative of the operation's security has a mutualTLS scheme. */
const needsClientCert = (tool: Tool) =>
  tool.security !== undefined && tool.security.length > 0 && tool.security.every((alt) => alt.some((e) => e.definition.type === "mutualTLS"))

const describeUpstreamError = (tool: Tool, e: UpstreamError, maxBytes: number, now: number): CallToolResult => {
  const r = e.reason
  const what = `${tool.operationId} failed`
  switch (r._tag) {
    case "UpstreamTimeout": {
      const seconds = r.afterMs / 1000
      const text = r.kind === "connect"
        ? `${what}: could not connect to ${originOf(tool.baseUrl)} within ${seconds} s (connect timeout, HTTP_CONNECT_TIMEOUT)${attemptsNote(e.attempts)}.`
        : r.kind === "attempt"
        ? `${what}: the upstream API did not answer within ${seconds} s (request timeout, HTTP_TIMEOUT) for ${tool.method} ${tool.path}${attemptsNote(e.attempts)}. The request was cancelled.`
        : `${what}: the call did not finish within ${seconds} s (overall deadline, CALL_TIMEOUT) for ${tool.method} ${tool.path}${attemptsNote(e.attempts)}. The request was cancelled.`
      return toolError(text, { error: "timeout", timeout: r.kind === "attempt" ? "request" : r.kind, after_ms: r.afterMs, attempts: e.attempts })
    }
    case "UpstreamConnect":
      return toolError(
        `${what}: could not reach the upstream API at ${originOf(tool.baseUrl)} (${r.detail})${attemptsNote(e.attempts)}.` +
          (r.detail === "UND_ERR_SOCKET" && needsClientCert(tool)
            ? " This operation's security asks for a client certificate (mutual TLS), and an API that gets none may close the connection: " +
              "check AUTH_CLIENT_CERT and AUTH_CLIENT_KEY."
            : ""),
        { error: "connect", detail: r.detail, attempts: e.attempts }
      )
    case "UpstreamStatus":
      // retries are converted to the last answer by Upstream; kept for completeness
      return mapResponse(tool, r.response, maxBytes, now)
    case "UpstreamCircuitOpen": {
      const retryAfter = Math.max(1, Math.ceil(r.retryAfterMs / 1000))
      return toolError(
        r.probing
          ? `${what}: calls to ${r.origin} are paused while one trial call checks whether it has recovered (circuit breaker half-open). Retry in about ${retryAfter} s.`
          : `${what}: calls to ${r.origin} are paused because its recent calls failed (circuit breaker open). Retry in about ${retryAfter} s.`,
        { error: "circuit_open", retry_after_seconds: retryAfter }
      )
    }
    case "UpstreamBulkheadFull":
      return toolError(
        `${what}: too many calls to ${r.origin} are in flight (${r.limit} running, ${r.queue} waiting, HTTP_MAX_CONNECTIONS / HTTP_MAX_QUEUE); try again shortly.`,
        { error: "overloaded", retry_after_seconds: 1 }
      )
    case "UpstreamInvalidRequest":
      return toolError(`${what}: ${r.detail}.`, { error: r.error ?? "invalid_request" })
    case "UpstreamRateLimited": {
      const retryAfter = Math.max(1, Math.ceil(r.retryAfterMs / 1000))
      return toolError(
        `${what}: not sent: the API's last answer to ${tool.method} ${tool.path} said its rate limit is used up, and it resets in ` +
          `about ${retryAfter} s. Call again after that; other operations may still be allowed.`,
        { error: "rate_limited", retry_after_seconds: retryAfter }
      )
    }
  }
}

/** A credential could not be had: an error result naming the step, never a secret. */
const authFailed = (tool: Tool, e: AuthError) =>
  Effect.logWarning(`auth failed: ${e.reason._tag}`).pipe(
    Effect.annotateLogs({ tool: tool.name, operation: tool.operationId }),
    Effect.as(toolError(`${tool.operationId} failed: ${e.text}`, { error: "auth", reason: e.reason._tag }))
  )

/** A tool's overrides from the config file: its tags' entries, then its own (which win). */
export const overrideFor = (tool: Tool, overrides: Readonly<Record<string, OperationOverride>>): OperationOverride =>
  Object.assign({}, ...tool.tags.map((tag) => overrides[`tag:${tag}`]), overrides[tool.operationId] ?? overrides[tool.name])

/** The call policy of a tool: global defaults, then `tag:<name>` overrides, then the operation's own. */
export const policyFor = (
  tool: Tool,
  defaults: CallPolicy,
  overrides: Readonly<Record<string, OperationOverride>>
): CallPolicy => {
  const o = overrideFor(tool, overrides)
  return {
    ...defaults,
    ...(o.timeout !== undefined ? { attemptTimeoutMs: Math.round(o.timeout * 1000) } : {}),
    ...(o.max_attempts !== undefined ? { maxAttempts: o.max_attempts } : {}),
    ...(o.idempotency_key_header !== undefined ? { idempotencyKeyHeader: o.idempotency_key_header } : {}),
    ...(o.circuit_breaker !== undefined ? { circuitBreaker: o.circuit_breaker } : {})
  }
}

/** Default freshness of a tool's cached responses, or undefined when its responses are not cached. */
export const cacheTtlFor = (tool: Tool, config: Pick<Settings, "cache" | "operations">): number | undefined => {
  if (config.cache.backend === "none" || (tool.method !== "GET" && tool.method !== "HEAD")) return undefined
  const o = overrideFor(tool, config.operations)
  if (o.cache === false) return undefined
  return Math.round((o.cache_ttl ?? config.cache.ttlSeconds) * 1000)
}

const CACHE_META = "openapi-mcp-server/cache"

/** Marks a result with where it came from; a stale answer also gets a note the model will read. */
const withCacheInfo = (result: CallToolResult, info: CacheInfo | undefined): CallToolResult => {
  if (info === undefined) return result
  const meta = { ...result._meta, [CACHE_META]: { status: info.status, age_seconds: info.ageSeconds, ...(info.staleBecause ? { stale_because: info.staleBecause } : {}) } }
  if (info.status !== "stale") return { ...result, _meta: meta }
  return {
    ...result,
    _meta: meta,
    content: [...result.content, {
      type: "text",
      text: `Note: this answer is a cached copy, ${info.ageSeconds} s old and no longer fresh, served because ${info.staleBecause}.`
    }]
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
    const config = yield* AppConfig
    const { maxResponseBytes } = config
    const cache = yield* ResponseCache
    // DOWNLOAD_DIR: made at start, so a directory that cannot be made stops the start rather than every download
    const downloads = Option.isNone(config.download.dir) ? undefined : { dir: config.download.dir.value, maxBytes: config.download.maxBytes }
    if (downloads !== undefined) {
      yield* Effect.tryPromise(() => mkdir(downloads.dir, { recursive: true })).pipe(Effect.mapError((e) =>
        new ConfigInvalid({ message: `--download-dir (DOWNLOAD_DIR): cannot make ${downloads.dir}: ${((e.cause ?? e) as NodeJS.ErrnoException).code ?? String(e)}` })
      ))
    }
    // each tool's call policy and cache TTL, worked out at its first call (a big API has thousands of tools)
    const perTool = new Map<Tool, { readonly policy: CallPolicy; readonly ttlMs: number | undefined; readonly files: ReadonlyArray<string> }>()
    const settingsOf = (tool: Tool) => {
      let found = perTool.get(tool)
      if (found === undefined) {
        // (the API's base URL too: replicas sharing pauses through Redis may serve other APIs with tools of this name)
        const policy: CallPolicy = { ...policyFor(tool, upstream.defaultPolicy, config.operations), rateLimitKey: `${tool.baseUrl} ${tool.name}` }
        found = {
          policy: catalog.specChosenUpstream.has(tool) ? { ...policy, guardConnections: true } : policy,
          ttlMs: cacheTtlFor(tool, config),
          files: fileArguments(tool)
        }
        perTool.set(tool, found)
      }
      return found
    }
    for (const key of Object.keys(config.operations)) {
      const matches = key.startsWith("tag:")
        ? catalog.tools.some((t) => t.tags.includes(key.slice(4)))
        : catalog.tools.some((t) => t.operationId === key || t.name === key)
      if (!matches) yield* Effect.logWarning(`config file: operations.${key} matches no tool (unknown operationId or tag, or filtered out)`)
    }

    /** The answer mapped to a tool result (on the call's fiber); each call is logged at debug (warning for 5xx). */
    const answer = (
      fiber: Fiber.Fiber<unknown, unknown>,
      tool: Tool,
      res: Sent & { readonly cache?: CacheInfo },
      started: number
    ): Effect.Effect<CallToolResult> => {
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      const result = () => {
        const mapped = mapResponse(tool, res, maxResponseBytes, now)
        if (mapped.isError) {
          // a refused credential: say which was sent, or what the operation needs
          const refusal = (res.status === 401 || res.status === 403) && !rateLimited(res.status, res.headers)
            ? `\n${auth.refused(tool, res.status)}${forwardedNote(fiber.getRef(ForwardedHeaders))}`
            : ""
          const note = `${refusal}${attemptsNote(res.attempts)}`
          if (note !== "") return withNote(mapped, note, "")
        }
        return withCacheInfo(mapped, res.cache)
      }
      const level = res.status >= 500 ? "Warn" : "Debug"
      // the log line is built only when it will be written: its annotations cost on every call otherwise
      if (!LogLevel.isGreaterThanOrEqualTo(level, fiber.getRef(References.MinimumLogLevel))) return Effect.succeed(result())
      return Effect.logWithLevel(level)("upstream call").pipe(
        Effect.annotateLogs({ tool: tool.name, operation: tool.operationId, status: res.status, duration_ms: now - started, attempts: res.attempts }),
        Effect.map(result)
      )
    }

    // not Effect.gen: a call is one chain of combinators (a generator and its steps cost more than the rest)
    const call = (name: string, rawArgs: unknown): Effect.Effect<CallToolResult, UnknownTool> =>
      Effect.withFiber((fiber) => {
        const tool = catalog.lookup(name)
        if (tool === undefined) return Effect.fail(new UnknownTool({ name }))
        const broken = unusable(tool)
        if (broken !== undefined) return Effect.succeed(broken)
        if (rawArgs !== undefined && rawArgs !== null && (typeof rawArgs !== "object" || Array.isArray(rawArgs))) {
          return Effect.succeed(toolError(`Invalid arguments for ${name}: arguments must be a JSON object.`, { error: "invalid_arguments" }))
        }
        if (nestedDeeper(rawArgs, MAX_ARGUMENT_DEPTH)) {
          return Effect.succeed(toolError(`Invalid arguments for ${name}: nested more than ${MAX_ARGUMENT_DEPTH} levels deep.`, { error: "invalid_arguments" }))
        }
        // RESPONSE_SELECT: `_select` is the call's, not the operation's (checked below, applied to the answer)
        let given = (rawArgs ?? {}) as Record<string, unknown>
        let select: unknown
        if (config.responseSelect && Object.hasOwn(given, SELECT_ARGUMENT)) {
          ;({ [SELECT_ARGUMENT]: select, ...given } = given)
        }
        const args = coerceTextArguments(tool, given)
        const problems = validate(tool, args)
        if (problems.length > 0) {
          return Effect.succeed(toolError(
            `Invalid arguments for ${name}:\n${problems.map((p) => `- ${p}`).join("\n")}\nFix the arguments and call the tool again.`,
            { error: "invalid_arguments", problems }
          ))
        }
        const { policy, ttlMs, files } = settingsOf(tool)
        /** The call from its checked arguments on: the request built (with the operator's fixed arguments), sent and answered. */
        const proceed = (args: Record<string, unknown>): Effect.Effect<CallToolResult> => {
          let built: OutgoingRequest
          try {
            built = buildRequest(tool, tool.fixedArguments === undefined ? args : { ...args, ...tool.fixedArguments })
          } catch (e) {
            if (e instanceof BuildError) return Effect.succeed(toolError(`Invalid arguments for ${name}: ${e.message}`, { error: "invalid_arguments" }))
            throw e // a defect
          }
          const clock = fiber.getRef(Clock.Clock)
          const forwarded = fiber.getRef(ForwardedHeaders)
          const caller = fiber.getRef(CallerToken)
          // a client that sends its own credential (MCP_FORWARD_HEADERS), or whose token is exchanged for the API's
          // (AUTH_OAUTH2_GRANT), has its own rate limit
          const callPolicy = forwarded === undefined && caller === undefined ? policy : {
            ...policy,
            rateLimitKey: `${policy.rateLimitKey} ${createHash("sha256").update(JSON.stringify([forwarded, caller])).digest("base64url")}`
          }
          const send = (r: OutgoingRequest) => upstream.execute(r, callPolicy)
          const writes = !SAFE_METHODS.has(tool.method)
          const exchangeOf = (request: OutgoingRequest): Effect.Effect<Sent & { readonly cache?: CacheInfo }, UpstreamError> =>
            ttlMs !== undefined
              ? cache.fetch(request, send, { ttlMs })
              : writes
              ? Effect.tap(send(request), (res) => res.status >= 200 && res.status < 300 ? cache.invalidate(request) : Effect.void)
              : send(request)
          /** The answer, with only what `expression` selects of it when the call has one, or where it was saved. */
          const answerSelected = (res: Sent & { readonly cache?: CacheInfo }, started: number, expression: string | undefined) => {
            // DOWNLOAD_DIR: a binary answer is saved, and the result says where
            const saved = downloads === undefined ? undefined : saveDownload(tool, res, downloads, maxResponseBytes, clock.currentTimeMillisUnsafe())
            if (saved !== undefined) return saved
            return expression === undefined ? answer(fiber, tool, res, started) : Effect.flatMap(applySelect(res, expression), (selected) =>
              "error" in selected
                ? Effect.succeed(toolError(selected.error, { error: "select_failed" }))
                : Effect.map(answer(fiber, tool, { ...res, ...selected.res }, started), (result) => withNote(result, selected.note)))
          }
          // (catchTag data-first: its data-last form costs a closure over `arguments` on every call)
          const called = (expression: string | undefined) => Effect.flatMap(auth.apply(built, tool), (authorized): Effect.Effect<CallToolResult, AuthError> => {
            const started = clock.currentTimeMillisUnsafe()
            const request = withForwarded(authorized, forwarded)
            // a 401 gets one renewal of the credential (fresh token, rotated secret) and one more try
            const exchange = Effect.flatMap(exchangeOf(request), (res) =>
              res.status !== 401 ? Effect.succeed(res) : auth.refresh(authorized, tool).pipe(Effect.flatMap((renewed) =>
                renewed ? auth.apply(built, tool).pipe(Effect.flatMap((again) => exchangeOf(withForwarded(again, forwarded)))) : Effect.succeed(res)
              )))
            const answered: Effect.Effect<CallToolResult, UpstreamError | AuthError> =
              Effect.flatMap(exchange, (res) => answerSelected(res, started, expression))
            return Effect.catchTag(answered, "UpstreamError", (e) =>
              Effect.logWarning(`upstream call failed: ${e.reason._tag}`).pipe(
                Effect.annotateLogs({ tool: name, operation: tool.operationId, attempts: e.attempts }),
                Effect.andThen(Effect.sync(() => describeUpstreamError(tool, e, maxResponseBytes, clock.currentTimeMillisUnsafe())))
              ))
          })
          // the credential could not be had, at first or when renewed after a 401
          const run = (expression: string | undefined) => Effect.catchTag(called(expression), "AuthError", (e) => authFailed(tool, e))
          if (select === undefined) return run(undefined)
          return Effect.flatMap(checkSelect(select), (checked) =>
            "problem" in checked
              ? Effect.succeed(toolError(`Invalid arguments for ${name}: ${checked.problem}`, { error: "invalid_arguments" }))
              : run(checked.expression))
        }
        // UPLOAD_DIRS: file arguments that name local files get those files' content
        if (files.length === 0 || !namesLocalFiles(args, files)) return proceed(args)
        return Effect.flatMap(Effect.result(readLocalFiles(args, files, config.uploads)), (read) =>
          read._tag === "Failure"
            ? Effect.succeed(toolError(`Invalid arguments for ${name}: ${read.failure.message}`, { error: "invalid_arguments" }))
            : proceed(read.success))
      })

    return Invoker.of({ call })
  }))
}
