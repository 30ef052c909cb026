/**
 * Upstream: the resilient HTTP client. One call = up to RETRY_MAX_ATTEMPTS attempts inside an overall
 * deadline; each attempt passes the origin's bulkhead (bounded concurrency and queue) and circuit breaker,
 * and has its own timeout. Retries use an exponential, capped, jittered Schedule and honour Retry-After,
 * and only ever resend requests that are safe to repeat. Any timeout or interruption aborts the request
 * (undici closes the socket). Errors never carry the request URL: it may hold an API key in its query.
 *
 * Order per attempt: retry ▶ bulkhead ▶ circuit breaker ▶ attempt timeout ▶ pooled undici client. Retry is
 * outermost (unlike DESIGN.md's sketch) so a call sleeping between attempts holds no bulkhead slot, and an
 * attempt refused by an open breaker ends the retries at once.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Clock, Context, Duration, Effect, Exit, Layer, Schedule, Schema, Semaphore } from "effect"
import { HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import * as CircuitBreaker from "effect/persistence/CircuitBreaker"
import { randomUUID } from "node:crypto"
import { AppConfig } from "./AppConfig.ts"
import { retryAfterSeconds } from "./Invoker/ResponseMapper.ts"
import type { OutgoingRequest } from "./Invoker/RequestBuilder.ts"
import { type AttemptResult, clientAttempt, recordRetry, trackBreakerState } from "./Telemetry.ts"

export interface UpstreamResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

const Response = Schema.declare((u): u is UpstreamResponse => typeof u === "object" && u !== null && "status" in u)

export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", {
  /** connect: HTTP_CONNECT_TIMEOUT; attempt: HTTP_TIMEOUT; deadline: CALL_TIMEOUT. */
  kind: Schema.Literals(["connect", "attempt", "deadline"]),
  afterMs: Schema.Number
}) {
  get retryable() {
    return this.kind !== "deadline"
  }
}
export class UpstreamConnect extends Schema.TaggedError<UpstreamConnect>()("UpstreamConnect", { detail: Schema.String }) {
  readonly retryable = true
}
/** A status worth retrying (429, 502, 503, 504); carries the answer for when the retries run out. */
export class UpstreamStatus extends Schema.TaggedError<UpstreamStatus>()("UpstreamStatus", {
  response: Response,
  retryAfterMs: Schema.optional(Schema.Number)
}) {
  readonly retryable = true
}
export class UpstreamCircuitOpen extends Schema.TaggedError<UpstreamCircuitOpen>()("UpstreamCircuitOpen", {
  origin: Schema.String,
  retryAfterMs: Schema.Number,
  probing: Schema.Boolean
}) {
  readonly retryable = false
}
export class UpstreamBulkheadFull extends Schema.TaggedError<UpstreamBulkheadFull>()("UpstreamBulkheadFull", {
  origin: Schema.String,
  limit: Schema.Number,
  queue: Schema.Number
}) {
  readonly retryable = false
}
export class UpstreamInvalidRequest extends Schema.TaggedError<UpstreamInvalidRequest>()("UpstreamInvalidRequest", {
  detail: Schema.String
}) {
  readonly retryable = false
}
export type UpstreamReason =
  | UpstreamTimeout
  | UpstreamConnect
  | UpstreamStatus
  | UpstreamCircuitOpen
  | UpstreamBulkheadFull
  | UpstreamInvalidRequest

export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  reason: Schema.Union([UpstreamTimeout, UpstreamConnect, UpstreamStatus, UpstreamCircuitOpen, UpstreamBulkheadFull, UpstreamInvalidRequest]),
  attempts: Schema.Number
}) {}

/** How one operation's calls are made; defaults from AppConfig, overridden per operation or tag. */
export interface CallPolicy {
  readonly attemptTimeoutMs: number
  readonly deadlineMs: number
  readonly maxAttempts: number
  /** For POST/PATCH: send this header with one generated key on every attempt, which makes retries safe. */
  readonly idempotencyKeyHeader: string | undefined
  readonly circuitBreaker: boolean
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])
const RETRYABLE_STATUS = new Set([429, 502, 503, 504])

/** True when repeating the request cannot do anything twice. */
export const safeToRetry = (request: OutgoingRequest, policy: CallPolicy): boolean =>
  IDEMPOTENT.has(request.method) || policy.idempotencyKeyHeader !== undefined

/** The first error code in a cause chain (ECONNREFUSED, UND_ERR_SOCKET…), never a message that could hold a URL. */
const errorCode = (cause: unknown): string => {
  let c: unknown = cause
  for (let i = 0; i < 5 && typeof c === "object" && c !== null; i++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === "string") return code
    c = (c as { cause?: unknown }).cause
  }
  return typeof cause === "object" && cause !== null && "name" in cause ? String((cause as { name: unknown }).name) : "unknown error"
}

export const toHttpRequest = (req: OutgoingRequest): HttpClientRequest.HttpClientRequest => {
  const url = req.query.length > 0 ? `${req.url}?${req.query.join("&")}` : req.url
  const headers: Record<string, string> = { ...req.headers }
  if (req.cookies.length > 0) headers["cookie"] = req.cookies.map(([k, v]) => `${k}=${v}`).join("; ")
  const body = req.body === undefined
    ? HttpBody.empty
    : req.body.data instanceof FormData
    ? HttpBody.formData(req.body.data)
    : HttpBody.uint8Array(req.body.data, req.body.contentType)
  return HttpClientRequest.make(req.method)(url, { headers, body })
}

export const originOf = (url: string): string => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

/** Retry delays: exponential from the base, jittered ×0.8–1.2, capped, or the server's Retry-After. */
export const retrySchedule = (settings: { readonly baseDelayMs: number; readonly maxDelayMs: number }) =>
  Schedule.min([
    Schedule.exponential(Duration.millis(settings.baseDelayMs)).pipe(Schedule.jittered),
    Schedule.spaced(Duration.millis(settings.maxDelayMs))
  ]).pipe(
    Schedule.setInputType<UpstreamReason>(),
    Schedule.modifyDelay(({ input, duration }) =>
      Effect.succeed(input._tag === "UpstreamStatus" && input.retryAfterMs !== undefined ? Duration.millis(input.retryAfterMs) : duration)
    )
  )

/** An attempt's status and error kind, for its metric labels and span (Telemetry.clientAttempt). */
const describeAttempt = (exit: Exit.Exit<UpstreamResponse, UpstreamReason>): AttemptResult => {
  if (Exit.isSuccess(exit)) {
    const status = exit.value.status
    return { status, errorType: status >= 400 ? String(status) : undefined }
  }
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
  if (error === undefined) return { status: undefined, errorType: exit.cause.reasons.some((r) => r._tag === "Interrupt") ? "cancelled" : "_OTHER" }
  return error._tag === "UpstreamStatus"
    ? { status: error.response.status, errorType: String(error.response.status) }
    : { status: undefined, errorType: retryReason(error) }
}

/** A bounded label for what made an attempt fail: the status, or the kind of failure. */
const retryReason = (reason: UpstreamReason): string => {
  switch (reason._tag) {
    case "UpstreamStatus":
      return String(reason.response.status)
    case "UpstreamTimeout":
      return reason.kind === "connect" ? "connect_timeout" : "timeout"
    case "UpstreamConnect":
      return "connect_error"
    case "UpstreamCircuitOpen":
      return "circuit_open"
    case "UpstreamBulkheadFull":
      return "bulkhead_full"
    case "UpstreamInvalidRequest":
      return "invalid_request"
  }
}

interface Bulkhead {
  readonly semaphore: Semaphore.Semaphore
  inUse: number
  queued: number
}

export class Upstream extends Context.Service<Upstream, {
  /** Sends the request under the policy; any final HTTP status is a success here (mapping is the Invoker's). */
  readonly execute: (
    request: OutgoingRequest,
    policy: CallPolicy
  ) => Effect.Effect<UpstreamResponse & { readonly attempts: number }, UpstreamError>
  /** The policy from the global settings, before per-operation overrides. */
  readonly defaultPolicy: CallPolicy
}>()("openapi-mcp/Upstream") {
  static readonly layerNoDeps = Layer.effect(Upstream, Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* HttpClient.HttpClient
    const breaker = yield* CircuitBreaker.make({
      tripPolicy: CircuitBreaker.consecutive(Math.max(1, config.breaker.failureThreshold)),
      openDuration: Duration.millis(config.breaker.resetTimeoutMs)
    })
    yield* trackBreakerState(breaker.transitions)
    const bulkheads = new Map<string, Bulkhead>()
    const limit = config.http.maxConnections
    const maxQueue = config.http.maxQueue
    const schedule = retrySchedule(config.retry)

    const defaultPolicy: CallPolicy = {
      attemptTimeoutMs: config.http.timeoutMs,
      deadlineMs: config.callTimeoutMs,
      maxAttempts: config.retry.maxAttempts,
      idempotencyKeyHeader: undefined,
      circuitBreaker: config.breaker.failureThreshold > 0
    }

    /** One attempt, with its own timeout. Retryable statuses fail so the schedule sees them. */
    const sendOnce = (request: HttpClientRequest.HttpClientRequest, timeoutMs: number, now: () => number) =>
      Effect.gen(function*() {
        const response = yield* client.execute(request)
        const body = new Uint8Array(yield* response.arrayBuffer)
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(response.headers)) if (typeof v === "string") headers[k] = v
        const result: UpstreamResponse = { status: response.status, headers, body }
        if (RETRYABLE_STATUS.has(result.status)) {
          const after = retryAfterSeconds(headers, now())
          return yield* new UpstreamStatus({ response: result, ...(after !== undefined ? { retryAfterMs: after * 1000 } : {}) })
        }
        return result
      }).pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(timeoutMs),
          orElse: () => Effect.fail(new UpstreamTimeout({ kind: "attempt", afterMs: timeoutMs }))
        }),
        Effect.catchTag("HttpClientError", (e): Effect.Effect<never, UpstreamReason> => {
          const reason = e.reason
          switch (reason._tag) {
            case "InvalidUrlError":
              return Effect.fail(new UpstreamInvalidRequest({ detail: "the request URL is invalid" }))
            case "EncodeError":
              return Effect.fail(new UpstreamInvalidRequest({ detail: "the request body could not be encoded" }))
            default: {
              const code = errorCode(reason.cause)
              return Effect.fail(
                code === "UND_ERR_CONNECT_TIMEOUT"
                  ? new UpstreamTimeout({ kind: "connect", afterMs: config.http.connectTimeoutMs })
                  : new UpstreamConnect({ detail: code })
              )
            }
          }
        })
      )

    /** Breaker outcome: 5xx, 429, timeouts and connection failures count; other 4xx answers do not. */
    const classify = (exit: Exit.Exit<UpstreamResponse, UpstreamReason>): CircuitBreaker.Outcome => {
      if (Exit.isSuccess(exit)) return exit.value.status >= 500 ? CircuitBreaker.failure() : CircuitBreaker.success
      const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
      return error === undefined || error._tag === "UpstreamInvalidRequest" ? CircuitBreaker.ignored : CircuitBreaker.failure()
    }

    const withBreaker = (origin: string) => <A extends UpstreamResponse>(attempt: Effect.Effect<A, UpstreamReason>) =>
      breaker.execute(attempt, { key: origin, classify }).pipe(
        Effect.catchTag("CircuitBreakerError", (e) => {
          const r = e.reason
          return r._tag === "CircuitOpen"
            ? Effect.fail(new UpstreamCircuitOpen({ origin, retryAfterMs: Duration.toMillis(r.retryAfter), probing: false }))
            : r._tag === "CircuitHalfOpen"
            ? Effect.fail(new UpstreamCircuitOpen({ origin, retryAfterMs: 1000, probing: true }))
            : attempt // the breaker's store failed: go ahead without it
        })
      )

    const withBulkhead = (origin: string) => <A, E>(attempt: Effect.Effect<A, E>): Effect.Effect<A, E | UpstreamBulkheadFull> =>
      Effect.suspend((): Effect.Effect<A, E | UpstreamBulkheadFull> => {
        let b = bulkheads.get(origin)
        if (b === undefined) {
          b = { semaphore: Semaphore.makeUnsafe(limit), inUse: 0, queued: 0 }
          bulkheads.set(origin, b)
        }
        const bulkhead = b
        if (bulkhead.inUse >= limit && bulkhead.queued >= maxQueue) {
          return Effect.fail(new UpstreamBulkheadFull({ origin, limit, queue: maxQueue }))
        }
        bulkhead.queued++
        let started = false
        return Semaphore.withPermit(bulkhead.semaphore, Effect.suspend(() => {
          started = true
          bulkhead.queued--
          bulkhead.inUse++
          return attempt
        }).pipe(Effect.ensuring(Effect.sync(() => bulkhead.inUse--)))).pipe(
          Effect.ensuring(Effect.sync(() => {
            if (!started) bulkhead.queued--
          }))
        )
      })

    const execute = Effect.fn("Upstream.execute")(function*(request: OutgoingRequest, policy: CallPolicy) {
      const origin = originOf(request.url)
      const keyed = policy.idempotencyKeyHeader !== undefined && !IDEMPOTENT.has(request.method)
        ? { ...request, headers: { ...request.headers, [policy.idempotencyKeyHeader.toLowerCase()]: randomUUID() } }
        : request
      const httpRequest = toHttpRequest(keyed)
      const retryable = safeToRetry(request, policy)
      const started = yield* Clock.currentTimeMillis
      const clock = yield* Clock.Clock
      const now = () => clock.currentTimeMillisUnsafe()
      let attempts = 0
      const attempt = Effect.suspend(() => {
        attempts++
        return clientAttempt(keyed, attempts - 1, httpRequest, (r) => sendOnce(r, policy.attemptTimeoutMs, now), describeAttempt)
      }).pipe(
        (a) => policy.circuitBreaker ? withBreaker(origin)(a) : a,
        withBulkhead(origin)
      )
      const response = yield* attempt.pipe(
        Effect.retry(schedule.pipe(
          Schedule.while(({ input, now: at }) => {
            if (!retryable || !input.retryable || attempts >= policy.maxAttempts) return false
            // a Retry-After that ends past the deadline is not waited for: the caller hears it at once
            const wait = input._tag === "UpstreamStatus" ? input.retryAfterMs ?? 0 : 0
            if (at - started + wait >= policy.deadlineMs) return false
            return recordRetry(retryReason(input)).pipe(Effect.as(true))
          })
        )),
        Effect.timeoutOrElse({
          duration: Duration.millis(policy.deadlineMs),
          orElse: () => Effect.fail(new UpstreamTimeout({ kind: "deadline", afterMs: policy.deadlineMs }))
        }),
        // retries ran out on a retryable status: the last answer is the result
        Effect.catchTag("UpstreamStatus", (e) => Effect.succeed(e.response)),
        Effect.mapError((reason) => new UpstreamError({ reason, attempts }))
      )
      return { ...response, attempts }
    })

    return Upstream.of({ execute, defaultPolicy })
  }))

  /** Pooled keep-alive undici client sized from HTTP_MAX_CONNECTIONS / HTTP_CONNECT_TIMEOUT; breaker state in memory. */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    return Upstream.layerNoDeps.pipe(Layer.provide(Layer.mergeAll(
      NodeHttpClient.layerUndiciOptions({
        connections: config.http.maxConnections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: config.http.connectTimeoutMs }
      }),
      CircuitBreaker.layerStoreMemory()
    )))
  }))
}
