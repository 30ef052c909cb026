/**
 * Upstream: the resilient HTTP client. One call = up to RETRY_MAX_ATTEMPTS attempts inside an overall
 * deadline; each attempt passes the origin's bulkhead (bounded concurrency and queue) and circuit breaker,
 * and has its own timeout. Retries back off exponentially (capped, jittered) or as Retry-After says, and only
 * ever resend requests that are safe to repeat. Any timeout or interruption aborts the request (undici
 * closes the socket). Errors never carry the request URL: it may hold an API key in its query.
 *
 * Order per attempt: retry ▶ bulkhead ▶ circuit breaker ▶ attempt timeout ▶ pooled undici Agent. Retry is
 * outermost (unlike DESIGN.md's sketch) so a call sleeping between attempts holds no bulkhead slot, and an
 * attempt refused by an open breaker ends the retries at once.
 *
 * This is the hottest path of the server, so it is written for a cheap first attempt: one timer per attempt
 * (the attempt timeout, cut short by the deadline), a synchronous breaker and bulkhead, no fiber forked, and
 * the retry machinery entered only after a failure. Under a TestClock the timers are virtual.
 */
import { Clock, Context, Duration, Effect, Exit, Layer, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { AppConfig } from "./AppConfig.ts"
import { NON_PUBLIC_ADDRESS } from "./Security/SsrfGuard.ts"
import { type OutgoingRequest, serializeBody } from "./Invoker/RequestBuilder.ts"
import { rateLimited, retryAfterSeconds } from "./Upstream/RetryAfter.ts"
import { type AttemptResult, breakerTransition, clientAttempt, recordRetry, type TraceHeaders } from "./Telemetry.ts"
import { Breakers, type Outcome } from "./Upstream/Breaker.ts"
import * as ReplicaSync from "./Upstream/ReplicaSync.ts"
import { type UpstreamResponse, UpstreamTransport, type WireRequest } from "./Upstream/Transport.ts"

export type { UpstreamResponse, WireRequest } from "./Upstream/Transport.ts"

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
  detail: Schema.String,
  /** The tool error's `error` (default `invalid_request`). */
  error: Schema.optional(Schema.String)
}) {
  readonly retryable = false
}
/** Not sent: the operation's last answer said the API's rate limit is used up, and it has not reset yet. */
export class UpstreamRateLimited extends Schema.TaggedError<UpstreamRateLimited>()("UpstreamRateLimited", {
  retryAfterMs: Schema.Number
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
  | UpstreamRateLimited

export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  reason: Schema.Union([
    UpstreamTimeout, UpstreamConnect, UpstreamStatus, UpstreamCircuitOpen, UpstreamBulkheadFull, UpstreamInvalidRequest, UpstreamRateLimited
  ]),
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
  /**
   * The base URL was chosen by a spec read from a URL: each new connection's addresses are checked to be
   * public (DNS rebinding, or a name that did not resolve at start), unless private networks are allowed.
   */
  readonly guardConnections: boolean
  /**
   * Calls with the same key are not sent while the API's rate limit is used up, as an earlier answer to one of
   * them said (a 429 or a remaining count of 0, with when it resets): the API and the operation, and the client's
   * own credential when it sends one; the same in every replica (see ReplicaSync). Undefined: every call is sent.
   */
  readonly rateLimitKey?: string | undefined
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "QUERY"])
const RETRYABLE_STATUS = new Set([429, 502, 503, 504])

/** The request with the attempt's trace context added (named stores: spreading the second object cost more). */
const withTraceHeaders = (wire: WireRequest, trace: TraceHeaders): WireRequest => {
  const headers: Record<string, string> = { ...wire.headers }
  headers["traceparent"] = trace.traceparent
  headers["x-amzn-trace-id"] = trace["x-amzn-trace-id"]
  return { ...wire, headers }
}

/** True when repeating the request cannot do anything twice. */
const safeToRetry = (request: OutgoingRequest, policy: CallPolicy): boolean =>
  IDEMPOTENT.has(request.method) || policy.idempotencyKeyHeader !== undefined

/** The first error in a cause chain with a code (that code, when given). */
const causeWith = (cause: unknown, code?: string): { readonly code: string; readonly message?: unknown } | undefined => {
  let c: unknown = cause
  for (let i = 0; i < 5 && typeof c === "object" && c !== null; i++) {
    const own = (c as { code?: unknown }).code
    if (typeof own === "string" && (code === undefined || own === code)) return c as { code: string }
    c = (c as { cause?: unknown }).cause
  }
  return undefined
}

/** The first error code in a cause chain (ECONNREFUSED, UND_ERR_SOCKET…), never a message that could hold a URL. */
const errorCode = (cause: unknown): string =>
  causeWith(cause)?.code ??
    (typeof cause === "object" && cause !== null && "name" in cause ? String((cause as { name: unknown }).name) : "unknown error")

/**
 * The request as it goes on the wire: the URL parsed once (so the origin and the normalised path are what
 * any HTTP client would send), the query appended, cookies in one header, the body's content type.
 * A multipart (FormData) body must have been serialized first (serializeBody).
 */
export const toWire = (req: OutgoingRequest, guarded = false): WireRequest => {
  const url = new URL(req.query.length > 0 ? `${req.url}?${req.query.join("&")}` : req.url) // throws when invalid
  let headers = req.headers
  const body = req.body?.data instanceof Uint8Array ? req.body.data : undefined
  const contentType = body === undefined ? undefined : req.body?.contentType
  if (req.cookies.length > 0 || contentType !== undefined) {
    const h: Record<string, string> = { ...req.headers }
    if (req.cookies.length > 0) h["cookie"] = req.cookies.map(([k, v]) => `${k}=${v}`).join("; ")
    if (contentType !== undefined) h["content-type"] = contentType
    headers = h
  }
  const wire: WireRequest = { method: req.method, origin: url.origin, path: `${url.pathname}${url.search}`, headers, body }
  return guarded || req.tls !== undefined ? { ...wire, guarded, tls: req.tls } : wire
}

export const originOf = (url: string): string => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

/** The wait before retry n (1 for the first): exponential from the base, jittered ×0.8–1.2, capped. */
const backoffMs = (n: number, settings: { readonly baseDelayMs: number; readonly maxDelayMs: number }): number =>
  Math.min(settings.baseDelayMs * 2 ** (n - 1) * (0.8 + 0.4 * Math.random()), settings.maxDelayMs)

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
    case "UpstreamRateLimited":
      return "rate_limited"
  }
}

const failureOf = <A>(exit: Exit.Exit<A, UpstreamReason>): UpstreamReason | undefined =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

/** An attempt's status and error kind, for its metric labels and span (Telemetry.clientAttempt). */
const describeAttempt = (exit: Exit.Exit<UpstreamResponse, UpstreamReason>): AttemptResult => {
  if (Exit.isSuccess(exit)) {
    const status = exit.value.status
    return { status, errorType: status >= 400 ? String(status) : undefined }
  }
  const error = failureOf(exit)
  if (error === undefined) return { status: undefined, errorType: exit.cause.reasons.some((r) => r._tag === "Interrupt") ? "cancelled" : "_OTHER" }
  return error._tag === "UpstreamStatus"
    ? { status: error.response.status, errorType: String(error.response.status) }
    : { status: undefined, errorType: retryReason(error) }
}

/** Breaker outcome: 5xx, 429, timeouts and connection failures count; other 4xx answers and cancellations do not. */
const breakerOutcome = (exit: Exit.Exit<UpstreamResponse, UpstreamReason>): Outcome => {
  if (Exit.isSuccess(exit)) return exit.value.status >= 500 ? "failure" : "success"
  const error = failureOf(exit)
  return error === undefined || error._tag === "UpstreamInvalidRequest" ? "ignored" : "failure"
}

/** Certificate checks of the API's certificate that fail because no trusted CA signed it. */
const UNTRUSTED = new Set([
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_UNTRUSTED", "CERT_SIGNATURE_FAILURE"
])
/** TLS alerts of an API that refused the client's certificate, or wanted one. */
const CLIENT_CERT_REFUSED = /^ERR_SSL_.*ALERT_(?:CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/

/** A TLS failure that no retry mends, said so that the operator knows what to change; undefined for other codes. */
const tlsProblem = (code: string): string | undefined =>
  UNTRUSTED.has(code)
    ? `the API's TLS certificate is not signed by a trusted CA (${code}); if a private CA signed it, start the server with NODE_EXTRA_CA_CERTS=<that CA's PEM file>`
    : code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID"
    ? `the API's TLS certificate is not valid now (${code})`
    : code === "ERR_TLS_CERT_ALTNAME_INVALID"
    ? `the API's TLS certificate is not for this host name (${code}); check the base URL`
    : CLIENT_CERT_REFUSED.test(code)
    ? `the API refused the TLS connection (${code}): it wants a client certificate it trusts (mutual TLS: AUTH_CLIENT_CERT and AUTH_CLIENT_KEY)`
    : undefined

/** The prototype of Effect's live clock: only it may be replaced by plain timers. */
const LIVE_CLOCK = Object.getPrototypeOf(Clock.Clock.defaultValue()) as object

/**
 * An effect completed by `register`'s callback that fails with `onTimeout()` after `ms` unless it
 * completed first; `register` returns the cancel function, called on timeout and on interruption. With the
 * live clock the timer is a plain setTimeout (no fiber forked); under a TestClock it is Effect's own.
 */
const timedCallback = <A, E>(
  live: boolean,
  ms: number,
  onTimeout: () => E,
  register: (settle: (result: Effect.Effect<A, E>) => void) => () => void
): Effect.Effect<A, E> => {
  const base = Effect.callback<A, E>((resume) => {
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const cancel = register((result) => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      resume(result)
    })
    if (live && !settled) {
      timer = setTimeout(() => {
        if (settled) return
        settled = true
        cancel()
        resume(Effect.fail(onTimeout()))
      }, ms)
    }
    return Effect.sync(() => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      cancel()
    })
  })
  return live ? base : Effect.timeoutOrElse(base, { duration: Duration.millis(ms), orElse: () => Effect.fail(onTimeout()) })
}

interface Bulkhead {
  inUse: number
  readonly waiting: Array<() => void>
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
    const { send } = yield* UpstreamTransport
    const context = yield* Effect.context<never>()
    const sync = yield* ReplicaSync.ReplicaSync
    const clock = yield* Clock.Clock
    const breakers = new Breakers(
      Math.max(1, config.breaker.failureThreshold),
      config.breaker.resetTimeoutMs,
      (origin, to, at, adopted) => {
        breakerTransition(origin, to, context)
        // the other replicas hear what this one found (CIRCUIT_BREAKER_BACKEND=redis); each probes on its own
        if (!adopted && to !== "HalfOpen") sync.publish(origin, to, at)
      }
    )
    const bulkheads = new Map<string, Bulkhead>()
    /** When each rate-limited key (CallPolicy.rateLimitKey) may be called again, in epoch ms. */
    const pausedUntil = new Map<string, number>()
    const pause = (key: string, until: number, now: number) => {
      if (pausedUntil.size >= 10_000) for (const [k, at] of pausedUntil) if (at <= now) pausedUntil.delete(k)
      if (until > (pausedUntil.get(key) ?? now)) pausedUntil.set(key, until)
    }
    /** Remembers a rate limit the final answer to a call says is used up, until it resets (a day at most). */
    const notePause = (key: string | undefined, res: UpstreamResponse, now: number) => {
      if (key === undefined || !rateLimited(res.status, res.headers)) return
      const seconds = retryAfterSeconds(res.headers, now, res.status)
      if (seconds === undefined || seconds <= 0) return
      const until = now + Math.min(seconds, 86_400) * 1000
      pause(key, until, now)
      // the other replicas hear it (CIRCUIT_BREAKER_BACKEND=redis): they share the API's limit
      sync.publishPause(key, until, now)
    }
    yield* sync.subscribe({
      breaker: (origin, to, at) => breakers.adopt(origin, to, at, clock.currentTimeMillisUnsafe()),
      pause: (key, until) => pause(key, until, clock.currentTimeMillisUnsafe())
    })
    const limit = config.http.maxConnections
    const maxQueue = config.http.maxQueue

    const defaultPolicy: CallPolicy = {
      attemptTimeoutMs: config.http.timeoutMs,
      deadlineMs: config.callTimeoutMs,
      maxAttempts: config.retry.maxAttempts,
      idempotencyKeyHeader: undefined,
      circuitBreaker: config.breaker.failureThreshold > 0,
      guardConnections: false
    }

    /** A transport failure as an attempt's error: a connect timeout, or a connection error by its code. */
    const transportFailure = (e: Error): UpstreamReason => {
      const code = errorCode(e)
      if (code === "UND_ERR_CONNECT_TIMEOUT") return new UpstreamTimeout({ kind: "connect", afterMs: config.http.connectTimeoutMs })
      if (code === "UND_ERR_INVALID_ARG") return new UpstreamInvalidRequest({ detail: "the request could not be sent (invalid header or body)" })
      if (code === NON_PUBLIC_ADDRESS) {
        return new UpstreamInvalidRequest({
          detail: `not sent: the API's host resolves to a non-public address (${causeWith(e, code)?.message}), and the spec was read from a URL; ` +
            `pass --base-url <url> (for an additional spec, its baseUrl in ADDITIONAL_SPECS) to choose the upstream yourself, ` +
            `or --allow-private-networks if the spec is trusted`
        })
      }
      const tls = tlsProblem(code)
      return tls !== undefined ? new UpstreamInvalidRequest({ detail: tls, error: "tls" }) : new UpstreamConnect({ detail: code })
    }

    /** Runs `use` holding one of the origin's slots; waits in its bounded queue (at most `waitMs`) when all are taken. */
    const withBulkhead = <A>(
      origin: string,
      live: boolean,
      waitMs: number,
      onTimeout: () => UpstreamReason,
      use: Effect.Effect<A, UpstreamReason>
    ): Effect.Effect<A, UpstreamReason> => Effect.suspend(() => {
      let b = bulkheads.get(origin)
      if (b === undefined) {
        b = { inUse: 0, waiting: [] }
        bulkheads.set(origin, b)
      }
      const bulkhead = b
      const release = () => {
        const next = bulkhead.waiting.shift()
        if (next === undefined) bulkhead.inUse--
        else next() // the slot passes to the next in line
        return undefined
      }
      if (bulkhead.inUse < limit) {
        bulkhead.inUse++
        return Effect.onExitPrimitive(use, release)
      }
      if (bulkhead.waiting.length >= maxQueue) return Effect.fail(new UpstreamBulkheadFull({ origin, limit, queue: maxQueue }))
      let granted = false
      const wait = timedCallback<void, UpstreamReason>(live, waitMs, onTimeout, (settle) => {
        const grant = () => {
          granted = true
          settle(Effect.void)
        }
        bulkhead.waiting.push(grant)
        return () => {
          const i = bulkhead.waiting.indexOf(grant)
          if (i >= 0) bulkhead.waiting.splice(i, 1)
        }
      })
      return Effect.onExitPrimitive(Effect.flatMap(wait, () => use), () => granted ? release() : undefined)
    })

    const execute = (request: OutgoingRequest, policy: CallPolicy) =>
      Effect.withFiber<UpstreamResponse & { readonly attempts: number }, UpstreamError>((fiber) => {
        const clock = fiber.getRef(Clock.Clock)
        const key = policy.rateLimitKey
        const paused = key === undefined ? undefined : pausedUntil.get(key)
        if (paused !== undefined) {
          const wait = paused - clock.currentTimeMillisUnsafe()
          if (wait > 0) return Effect.fail(new UpstreamError({ reason: new UpstreamRateLimited({ retryAfterMs: wait }), attempts: 0 }))
          pausedUntil.delete(key!)
        }
        const live = Object.getPrototypeOf(clock) === LIVE_CLOCK
        const deadlineAt = clock.currentTimeMillisUnsafe() + policy.deadlineMs
        const deadline = () => new UpstreamTimeout({ kind: "deadline", afterMs: policy.deadlineMs })
        const retryable = safeToRetry(request, policy)
        const keyed = policy.idempotencyKeyHeader !== undefined && !IDEMPOTENT.has(request.method)
          ? { ...request, headers: { ...request.headers, [policy.idempotencyKeyHeader.toLowerCase()]: randomUUID() } }
          : request
        let attempts = 0

        /** One attempt on the wire, under a timer: the attempt timeout, or what is left of the deadline. */
        const sendOnce = (wire: WireRequest, limitMs: number, onTimeout: () => UpstreamReason) =>
          timedCallback<UpstreamResponse, UpstreamReason>(live, limitMs, onTimeout, (settle) =>
            send(wire, (result) => {
              if (result instanceof Error) return settle(Effect.fail(transportFailure(result)))
              if (!RETRYABLE_STATUS.has(result.status)) return settle(Effect.succeed(result))
              const after = retryAfterSeconds(result.headers, clock.currentTimeMillisUnsafe(), result.status)
              settle(Effect.fail(new UpstreamStatus({ response: result, ...(after !== undefined ? { retryAfterMs: after * 1000 } : {}) })))
            }))

        const attempt = (wire: WireRequest): Effect.Effect<UpstreamResponse, UpstreamReason> => {
          const origin = wire.origin
          const remaining = deadlineAt - clock.currentTimeMillisUnsafe()
          if (remaining <= 0) return Effect.fail(deadline())
          return withBulkhead(origin, live, remaining, deadline, Effect.suspend(() => {
            const now = clock.currentTimeMillisUnsafe()
            const left = deadlineAt - now
            if (left <= 0) return Effect.fail(deadline())
            const admission = policy.circuitBreaker ? breakers.admit(origin, now) : undefined
            if (admission?._tag === "Open") return Effect.fail(new UpstreamCircuitOpen({ origin, retryAfterMs: admission.retryAfterMs, probing: false }))
            if (admission?._tag === "Probing") return Effect.fail(new UpstreamCircuitOpen({ origin, retryAfterMs: 1000, probing: true }))
            const byDeadline = left < policy.attemptTimeoutMs
            const limitMs = byDeadline ? left : policy.attemptTimeoutMs
            const onTimeout = byDeadline ? deadline : () => new UpstreamTimeout({ kind: "attempt", afterMs: policy.attemptTimeoutMs })
            attempts++
            const sent = clientAttempt(keyed, attempts - 1, (traceHeaders) =>
              sendOnce(traceHeaders === undefined ? wire : withTraceHeaders(wire, traceHeaders), limitMs, onTimeout), describeAttempt)
            if (admission === undefined) return sent
            return Effect.onExitPrimitive(sent, (exit) => {
              breakers.record(origin, admission.generation, breakerOutcome(exit), clock.currentTimeMillisUnsafe())
              return undefined
            })
          }))
        }

        /** After a failed attempt: wait and try again when that is safe and useful, else give up with it. */
        const retryAfter = (wire: WireRequest, reason: UpstreamReason): Effect.Effect<UpstreamResponse, UpstreamReason> => {
          if (!retryable || !reason.retryable || attempts >= policy.maxAttempts) return Effect.fail(reason)
          const waitMs = reason._tag === "UpstreamStatus" && reason.retryAfterMs !== undefined
            ? reason.retryAfterMs
            : backoffMs(attempts, config.retry)
          // a wait that ends past the deadline is not started: the caller hears the last answer at once
          if (clock.currentTimeMillisUnsafe() + waitMs >= deadlineAt) return Effect.fail(reason)
          return recordRetry(retryReason(reason)).pipe(
            Effect.andThen(clock.sleep(Duration.millis(waitMs))),
            Effect.andThen(() => tryFrom(wire))
          )
        }
        const tryFrom = (wire: WireRequest): Effect.Effect<UpstreamResponse, UpstreamReason> =>
          Effect.catch(attempt(wire), (reason) => retryAfter(wire, reason))

        const toWireEffect = (r: OutgoingRequest): Effect.Effect<WireRequest, UpstreamReason> => {
          try {
            return Effect.succeed(toWire(r, policy.guardConnections))
          } catch {
            return Effect.fail(new UpstreamInvalidRequest({ detail: "the request URL is invalid" }))
          }
        }
        const wire = keyed.body?.data instanceof FormData
          ? Effect.flatMap(serializeBody(keyed), toWireEffect)
          : toWireEffect(keyed)
        return Effect.flatMap(wire, tryFrom).pipe(
          Effect.matchEffect({
            onSuccess: (response) => {
              notePause(key, response, clock.currentTimeMillisUnsafe())
              return Effect.succeed({ ...response, attempts })
            },
            // retries ran out on a retryable status: the last answer is the result
            onFailure: (reason) => {
              if (reason._tag !== "UpstreamStatus") return Effect.fail(new UpstreamError({ reason, attempts }))
              notePause(key, reason.response, clock.currentTimeMillisUnsafe())
              return Effect.succeed({ ...reason.response, attempts })
            }
          })
        )
      })

    return Upstream.of({ execute, defaultPolicy })
  }))

  /** Over the pooled undici transport. */
  static readonly layer = Upstream.layerNoDeps.pipe(Layer.provide(Layer.merge(UpstreamTransport.layer, ReplicaSync.layer)))
}
