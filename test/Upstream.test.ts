/**
 * Upstream resilience in virtual time: retries (exact attempts, delays within jitter bounds, Retry-After,
 * idempotency), timeouts and the overall deadline, the circuit breaker's state machine, the bulkhead.
 * The HTTP client is an in-process fake that follows a script and records when each attempt arrived.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig, defaults, type Settings } from "../src/AppConfig.ts"
import type { OutgoingRequest } from "../src/Invoker/RequestBuilder.ts"
import { type CallPolicy, Upstream, type UpstreamResponse, type WireRequest } from "../src/Upstream.ts"
import { Breakers } from "../src/Upstream/Breaker.ts"
import { UpstreamTransport } from "../src/Upstream/Transport.ts"

/** What the fake upstream does with attempt n: answer, fail like a refused connection, or never answer. */
type Step = (req: WireRequest) => UpstreamResponse | Error | "hang"

const status = (code: number, headers: Record<string, string> = {}): Step => () => ({
  status: code,
  headers: { "content-type": "application/json", ...headers },
  body: new TextEncoder().encode(code === 204 ? "" : JSON.stringify({ code }))
})
const refused: Step = () => Object.assign(new Error("refused"), { code: "ECONNREFUSED" })
const hang: Step = () => "hang"

/** A fake upstream answering attempt n with script[n] (the last entry repeats); records attempt times. */
const fake = (script: ReadonlyArray<Step>, settings: Partial<Settings> = {}) => {
  const arrivals: Array<{ at: number; req: WireRequest }> = []
  const aborted: Array<WireRequest> = []
  const transport = Layer.effect(UpstreamTransport, Effect.clockWith((clock) =>
    Effect.succeed(UpstreamTransport.of({
      send: (req, done) => {
        arrivals.push({ at: clock.currentTimeMillisUnsafe(), req })
        const result = script[Math.min(arrivals.length - 1, script.length - 1)]!(req)
        if (result !== "hang") done(result)
        return () => aborted.push(req)
      }
    }))
  ))
  const layer = Upstream.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(transport, AppConfig.layerTest({ spec: "x", ...settings })))
  )
  return { layer, arrivals, aborted }
}

const request = (method: OutgoingRequest["method"], url = "http://api.test/v1/things"): OutgoingRequest => ({
  method, url, query: [], headers: {}, cookies: [], body: undefined
})

const policy = (p: Partial<CallPolicy> = {}): CallPolicy => ({
  attemptTimeoutMs: 30_000, deadlineMs: 60_000, maxAttempts: 3, idempotencyKeyHeader: undefined, circuitBreaker: true, guardConnections: false, ...p
})

const run = <A, E>(effect: Effect.Effect<A, E, Upstream>) => effect.pipe(Effect.forkChild)

describe("retries", () => {
  it.effect("retries a GET on 503 and succeeds on the third try, backing off exponentially with jitter", () => {
    const { layer, arrivals } = fake([status(503), status(503), status(200)])
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      const fiber = yield* run(upstream.execute(request("GET"), policy()))
      yield* TestClock.adjust("10 seconds")
      const res = yield* Fiber.join(fiber)
      assert.strictEqual(res.status, 200)
      assert.strictEqual(res.attempts, 3)
      assert.strictEqual(arrivals.length, 3)
      const first = arrivals[1]!.at - arrivals[0]!.at
      const second = arrivals[2]!.at - arrivals[1]!.at
      assert.isAtLeast(first, 160)
      assert.isAtMost(first, 240) // 200 ms ± 20 %
      assert.isAtLeast(second, 320)
      assert.isAtMost(second, 480) // 400 ms ± 20 %
    }).pipe(Effect.provide(layer))
  })

  it.effect("stops after RETRY_MAX_ATTEMPTS and returns the last answer", () => {
    const { layer, arrivals } = fake([status(502)])
    return Effect.gen(function*() {
      const fiber = yield* run((yield* Upstream).execute(request("GET"), policy({ maxAttempts: 4 })))
      yield* TestClock.adjust("1 minute")
      const res = yield* Fiber.join(fiber)
      assert.strictEqual(res.status, 502)
      assert.strictEqual(res.attempts, 4)
      assert.strictEqual(arrivals.length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("caps the delay at RETRY_MAX_DELAY_MS", () => {
    const { layer, arrivals } = fake([status(503)], { retry: { maxAttempts: 6, baseDelayMs: 1000, maxDelayMs: 1500 } })
    return Effect.gen(function*() {
      const fiber = yield* run((yield* Upstream).execute(request("GET"), policy({ maxAttempts: 6, circuitBreaker: false })))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      // whole milliseconds: virtual time accumulates jittered (fractional) delays
      const gaps = arrivals.slice(1).map((a, i) => Math.round(a.at - arrivals[i]!.at))
      assert.strictEqual(gaps.length, 5)
      for (const gap of gaps) assert.isAtMost(gap, 1500)
      assert.strictEqual(gaps[gaps.length - 1], 1500)
    }).pipe(Effect.provide(layer))
  })

  it.effect("waits exactly as long as Retry-After says", () => {
    const { layer, arrivals } = fake([status(429, { "retry-after": "3" }), status(200)])
    return Effect.gen(function*() {
      const fiber = yield* run((yield* Upstream).execute(request("GET"), policy()))
      yield* TestClock.adjust("2999 millis")
      assert.strictEqual(arrivals.length, 1)
      yield* TestClock.adjust("1 millis")
      const res = yield* Fiber.join(fiber)
      assert.strictEqual(res.status, 200)
      assert.strictEqual(arrivals[1]!.at - arrivals[0]!.at, 3000)
    }).pipe(Effect.provide(layer))
  })

  it.effect("without Retry-After, waits until a 429's rate limit resets (RateLimit-Reset)", () => {
    const { layer, arrivals } = fake([status(429, { "ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "4" }), status(200)])
    return Effect.gen(function*() {
      const fiber = yield* run((yield* Upstream).execute(request("GET"), policy()))
      yield* TestClock.adjust("3999 millis")
      assert.strictEqual(arrivals.length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).status, 200)
      assert.strictEqual(arrivals[1]!.at - arrivals[0]!.at, 4000)
    }).pipe(Effect.provide(layer))
  })

  it.effect("does not wait for a Retry-After past the deadline: answers at once with the 429", () => {
    const { layer, arrivals } = fake([status(429, { "retry-after": "120" }), status(200)])
    return Effect.gen(function*() {
      const res = yield* (yield* Upstream).execute(request("GET"), policy({ deadlineMs: 60_000 }))
      assert.strictEqual(res.status, 429)
      assert.strictEqual(res.headers["retry-after"], "120")
      assert.strictEqual(arrivals.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("does not send an operation's calls while the API says its rate limit is used up, until it resets", () => {
    const { layer, arrivals } = fake([
      status(429, { "retry-after": "90" }),
      status(200),
      status(403, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(120) }),
      status(200)
    ])
    const limited = policy({ rateLimitKey: "getThings" })
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      // a wait past the deadline is not started: the 429 is the answer, and the operation pauses for 90 s
      assert.strictEqual((yield* upstream.execute(request("GET"), limited)).status, 429)
      const refused = yield* Effect.flip(upstream.execute(request("GET"), limited))
      assert.strictEqual(refused.reason._tag, "UpstreamRateLimited")
      assert.strictEqual((refused.reason as { retryAfterMs: number }).retryAfterMs, 90_000)
      assert.strictEqual(refused.attempts, 0)
      // other operations, and calls without a key, are sent
      assert.strictEqual((yield* upstream.execute(request("GET"), policy())).status, 200)
      assert.strictEqual(arrivals.length, 2)
      yield* TestClock.adjust("89 seconds")
      assert.strictEqual((yield* Effect.flip(upstream.execute(request("GET"), limited))).reason._tag, "UpstreamRateLimited")
      yield* TestClock.adjust("1 second")
      // GitHub's way: 403 with no requests remaining, and when the limit resets
      assert.strictEqual((yield* upstream.execute(request("GET"), limited)).status, 403)
      assert.strictEqual((yield* Effect.flip(upstream.execute(request("GET"), limited))).reason._tag, "UpstreamRateLimited")
      yield* TestClock.adjust("120 seconds")
      assert.strictEqual((yield* upstream.execute(request("GET"), limited)).status, 200)
      assert.strictEqual(arrivals.length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("never sends a POST twice", () => {
    const { layer, arrivals } = fake([status(503), status(200)])
    return Effect.gen(function*() {
      const res = yield* (yield* Upstream).execute(request("POST"), policy())
      assert.strictEqual(res.status, 503)
      assert.strictEqual(arrivals.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("never resends a PATCH after a connection failure", () => {
    const { layer, arrivals } = fake([refused, status(200)])
    return Effect.gen(function*() {
      const failed = yield* Effect.flip((yield* Upstream).execute(request("PATCH"), policy()))
      assert.strictEqual(failed.reason._tag, "UpstreamConnect")
      assert.strictEqual(failed.attempts, 1)
      assert.strictEqual(arrivals.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("retries a POST with an idempotency key, sending the same key on every attempt", () => {
    const { layer, arrivals } = fake([status(503), refused, status(201)])
    return Effect.gen(function*() {
      const fiber = yield* run((yield* Upstream).execute(request("POST"), policy({ idempotencyKeyHeader: "Idempotency-Key" })))
      yield* TestClock.adjust("10 seconds")
      const res = yield* Fiber.join(fiber)
      assert.strictEqual(res.status, 201)
      const keys = arrivals.map((a) => a.req.headers["idempotency-key"])
      assert.strictEqual(keys.length, 3)
      assert.match(keys[0]!, /^[0-9a-f-]{36}$/)
      assert.deepStrictEqual(new Set(keys).size, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("does not retry other 4xx or 500", () => {
    const { layer, arrivals } = fake([status(404), status(200)])
    return Effect.gen(function*() {
      assert.strictEqual((yield* (yield* Upstream).execute(request("GET"), policy())).status, 404)
      assert.strictEqual(arrivals.length, 1)
    }).pipe(Effect.provide(layer))
  })
})

describe("timeouts", () => {
  it.effect("times out each attempt, aborts it, retries, and reports the attempt timeout", () => {
    const { layer, arrivals, aborted } = fake([hang])
    return Effect.gen(function*() {
      const fiber = yield* run(Effect.flip((yield* Upstream).execute(request("GET"), policy({ attemptTimeoutMs: 1000, maxAttempts: 2 }))))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "UpstreamTimeout")
      assert.strictEqual((error.reason as { kind: string }).kind, "attempt")
      assert.strictEqual(error.attempts, 2)
      assert.strictEqual(arrivals.length, 2)
      assert.strictEqual(aborted.length, 2) // each timed-out request was aborted, not left running
    }).pipe(Effect.provide(layer))
  })

  it.effect("ends the whole call at the overall deadline, retries included", () => {
    const { layer, arrivals } = fake([hang])
    return Effect.gen(function*() {
      const fiber = yield* run(Effect.flip((yield* Upstream).execute(request("GET"), policy({ attemptTimeoutMs: 1000, deadlineMs: 1500, maxAttempts: 5 }))))
      yield* TestClock.adjust("1499 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "UpstreamTimeout")
      assert.strictEqual((error.reason as { kind: string }).kind, "deadline")
      assert.strictEqual((error.reason as { afterMs: number }).afterMs, 1500)
      assert.strictEqual(arrivals.length, 2)
    }).pipe(Effect.provide(layer))
  })
})

describe("circuit breaker", () => {
  const settings: Partial<Settings> = { breaker: { failureThreshold: 3, resetTimeoutMs: 10_000, backend: "memory" } }

  it.effect("opens after consecutive failures, fails fast while open, probes after the reset timeout, closes on success", () => {
    let healthy = false
    const { layer, arrivals } = fake([(req) => healthy ? status(200)(req) : status(500)(req)], settings)
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      const once = policy({ maxAttempts: 1 })
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* upstream.execute(request("GET"), once)).status, 500)
      const open = yield* Effect.flip(upstream.execute(request("GET"), once))
      assert.strictEqual(open.reason._tag, "UpstreamCircuitOpen")
      assert.strictEqual((open.reason as { retryAfterMs: number }).retryAfterMs, 10_000)
      assert.strictEqual(arrivals.length, 3) // refused without reaching the upstream
      yield* TestClock.adjust("10 seconds")
      healthy = true
      assert.strictEqual((yield* upstream.execute(request("GET"), once)).status, 200) // the probe
      assert.strictEqual((yield* upstream.execute(request("GET"), once)).status, 200) // closed again
      assert.strictEqual(arrivals.length, 5)
    }).pipe(Effect.provide(layer))
  })

  it.effect("keeps one breaker per origin and ignores 4xx answers", () => {
    const { layer, arrivals } = fake([(req) => req.origin === "http://bad.test" ? status(503)(req) : status(404)(req)], settings)
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      const once = policy({ maxAttempts: 1 })
      for (let i = 0; i < 3; i++) yield* upstream.execute(request("GET", "http://bad.test/x"), once)
      assert.strictEqual((yield* Effect.flip(upstream.execute(request("GET", "http://bad.test/x"), once))).reason._tag, "UpstreamCircuitOpen")
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* upstream.execute(request("GET", "http://good.test/x"), once)).status, 404)
      assert.strictEqual(arrivals.length, 8)
    }).pipe(Effect.provide(layer))
  })

  it.effect("stops retrying once the breaker opens mid-call", () => {
    const { layer, arrivals } = fake([refused], { breaker: { failureThreshold: 2, resetTimeoutMs: 10_000, backend: "memory" } })
    return Effect.gen(function*() {
      const fiber = yield* run(Effect.flip((yield* Upstream).execute(request("GET"), policy({ maxAttempts: 5 }))))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "UpstreamCircuitOpen")
      assert.strictEqual(arrivals.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("can be turned off per operation", () => {
    const { layer, arrivals } = fake([status(500)], { breaker: { failureThreshold: 1, resetTimeoutMs: 10_000, backend: "memory" } })
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      for (let i = 0; i < 4; i++) {
        assert.strictEqual((yield* upstream.execute(request("GET"), policy({ maxAttempts: 1, circuitBreaker: false }))).status, 500)
      }
      assert.strictEqual(arrivals.length, 4)
    }).pipe(Effect.provide(layer))
  })
})

describe("bulkhead", () => {
  it.effect("queues up to HTTP_MAX_QUEUE calls per origin and refuses the rest at once", () => {
    const { layer, arrivals } = fake([hang], { http: { ...defaults.http, maxConnections: 2, maxQueue: 1 } })
    return Effect.gen(function*() {
      const upstream = yield* Upstream
      const slow = policy({ maxAttempts: 1, attemptTimeoutMs: 5_000 })
      const running = yield* Effect.forEach([1, 2, 3], () => run(upstream.execute(request("GET"), slow)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(arrivals.length, 2) // two running, one queued
      const refusedCall = yield* Effect.flip(upstream.execute(request("GET"), slow))
      assert.strictEqual(refusedCall.reason._tag, "UpstreamBulkheadFull")
      // another origin has its own bulkhead
      const other = yield* run(upstream.execute(request("GET", "http://other.test/x"), slow))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(arrivals.length, 3)
      yield* TestClock.adjust("5 seconds") // the first two time out, the queued one starts
      assert.strictEqual(arrivals.length, 4)
      yield* TestClock.adjust("10 seconds")
      for (const f of [...running, other]) yield* Fiber.await(f)
    }).pipe(Effect.provide(layer))
  })
})

describe("Breakers", () => {
  it("lets one probe through when half-open, refuses the rest, and ignores outcomes from before a transition", () => {
    const moves: Array<string> = []
    const b = new Breakers(2, 1000, (key, to) => moves.push(`${key}:${to}`))
    const first = b.admit("o", 0)
    const second = b.admit("o", 0)
    assert.strictEqual(first._tag, "Run")
    assert.strictEqual(second._tag, "Run")
    b.record("o", (first as { generation: number }).generation, "failure", 10)
    b.record("o", (second as { generation: number }).generation, "failure", 20)
    assert.deepStrictEqual(b.admit("o", 500), { _tag: "Open", retryAfterMs: 520 })
    const probe = b.admit("o", 1020)
    assert.strictEqual(probe._tag, "Run")
    assert.deepStrictEqual(b.admit("o", 1021), { _tag: "Probing" })
    b.record("o", 0, "success", 1022) // a late outcome from the closed generation changes nothing
    assert.deepStrictEqual(b.admit("o", 1023), { _tag: "Probing" })
    b.record("o", (probe as { generation: number }).generation, "ignored", 1024) // a cancelled probe frees the slot
    const next = b.admit("o", 1025)
    assert.strictEqual(next._tag, "Run")
    b.record("o", (next as { generation: number }).generation, "success", 1026)
    assert.deepStrictEqual(moves, ["o:Open", "o:HalfOpen", "o:Closed"])
  })
})

describe("Breakers shared between replicas", () => {
  it("opens and closes on another replica's word, until that replica's open time is over, and tells only its own transitions", () => {
    const moves: Array<string> = []
    const b = new Breakers(2, 1000, (key, to, at, adopted) => moves.push(`${key}:${to}@${at}${adopted ? " adopted" : ""}`))
    // another replica opened at 100: refused here until 1100
    b.adopt("o", "Open", 100, 150)
    assert.deepStrictEqual(b.admit("o", 600), { _tag: "Open", retryAfterMs: 500 })
    // an older word changes nothing; one whose open time is over neither
    b.adopt("o", "Open", 50, 700)
    b.adopt("p", "Open", 0, 2000)
    assert.strictEqual(b.admit("p", 2000)._tag, "Run")
    // the other replica's probe succeeded: closed here too, before this one's open time is over
    b.adopt("o", "Closed", 900, 900)
    assert.strictEqual(b.admit("o", 901)._tag, "Run")
    // this replica's own failures open it, told as its own
    for (let i = 0; i < 2; i++) b.record("q", (b.admit("q", 1000) as { generation: number }).generation, "failure", 1000)
    assert.deepStrictEqual(moves, ["o:Open@100 adopted", "o:Closed@900 adopted", "q:Open@1000"])
  })
})
