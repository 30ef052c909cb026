/**
 * ResponseCache in virtual time with the in-memory store: freshness from Cache-Control/Expires/CACHE_TTL,
 * revalidation, no-store/private/Vary, LRU eviction, coalescing, stale-if-error, credential isolation,
 * invalidation by writes, and a failing store being bypassed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Metric } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig, defaults, type Settings } from "../src/AppConfig.ts"
import { signRequest } from "../src/Auth/SigV4.ts"
import type { OutgoingRequest } from "../src/Invoker/RequestBuilder.ts"
import {
  cached, type CacheStore, CacheStoreTag, layerMemoryStore, ResponseCache, type Sent, StoreUnavailable
} from "../src/ResponseCache.ts"
import { cacheRequests } from "../src/Telemetry.ts"
import { UpstreamError, UpstreamTimeout } from "../src/Upstream.ts"

const get = (url = "http://api.test/v1/pets", headers: Record<string, string> = {}): OutgoingRequest => ({
  method: "GET", url, query: [], headers, cookies: [], body: undefined
})

const answer = (status: number, headers: Record<string, string> = {}, body = `{"n":1}`): Sent => ({
  status, headers: { "content-type": "application/json", ...headers }, body: Buffer.from(body), attempts: 1
})

/** A fake upstream: `reply(n, request)` answers the n-th request (1-based); requests are recorded. */
const upstream = (reply: (n: number, r: OutgoingRequest) => Effect.Effect<Sent, UpstreamError>) => {
  const seen: Array<OutgoingRequest> = []
  const send = (r: OutgoingRequest) => Effect.suspend(() => {
    seen.push(r)
    return reply(seen.length, r)
  })
  return { send, seen }
}

const withCache = (settings: Partial<Settings> = {}, store?: Layer.Layer<CacheStoreTag, never, AppConfig>) => {
  const config = AppConfig.layerTest({ spec: "x", ...settings })
  return ResponseCache.layerNoDeps.pipe(Layer.provide(store ?? layerMemoryStore), Layer.provide(config))
}

const TTL = { ttlMs: 300_000 }

describe("freshness", () => {
  it.effect("serves a repeat GET from the cache for CACHE_TTL when the upstream says nothing", () => {
    const up = upstream(() => Effect.succeed(answer(200)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const first = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(first.cache.status, "miss")
      yield* TestClock.adjust("299 seconds")
      const second = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(second.cache.status, "hit")
      assert.strictEqual(second.cache.ageSeconds, 299)
      assert.strictEqual(Buffer.from(second.body).toString(), `{"n":1}`)
      assert.strictEqual(up.seen.length, 1)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "miss")
      assert.strictEqual(up.seen.length, 2)
      // and openapi_mcp_cache_requests_total counts them
      assert.strictEqual((yield* Metric.value(cacheRequests("memory", "hit"))).count, 1)
      assert.strictEqual((yield* Metric.value(cacheRequests("memory", "miss"))).count, 2)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("follows max-age, s-maxage and Expires over CACHE_TTL", () => {
    const up = upstream((n) => Effect.succeed(answer(200, n === 1 ? { "cache-control": "max-age=10" } : { "cache-control": "public, max-age=100, s-maxage=5" })))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "hit")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "miss") // 2nd answer: s-maxage 5
      yield* TestClock.adjust("6 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "miss")
      assert.strictEqual(up.seen.length, 3)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("honours Expires relative to Date", () => {
    const up = upstream(() => Effect.succeed(answer(200, { date: "Thu, 01 Jan 2026 00:00:00 GMT", expires: "Thu, 01 Jan 2026 00:00:30 GMT" })))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "hit")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "miss")
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("never stores no-store, Vary: *, Set-Cookie or non-200 answers", () => {
    const replies = [{ "cache-control": "no-store" }, { vary: "*" }, { "set-cookie": "a=b" }]
    const up = upstream((n) => Effect.succeed(n <= 3 ? answer(200, replies[n - 1]) : answer(404)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      for (let i = 0; i < 3; i++) yield* cache.fetch(get(`http://api.test/v1/x${i}`), up.send, TTL)
      yield* cache.fetch(get("http://api.test/v1/missing"), up.send, TTL)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* cache.fetch(get(`http://api.test/v1/x${i}`), up.send, TTL)).cache.status, "miss")
      assert.strictEqual((yield* cache.fetch(get("http://api.test/v1/missing"), up.send, TTL)).cache.status, "miss")
      assert.strictEqual(up.seen.length, 8)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("does not share a private answer when the server has no credential, but keeps it per credential", () => {
    const up = upstream(() => Effect.succeed(answer(200, { "cache-control": "private, max-age=60" })))
    const program = Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      return (yield* cache.fetch(get(), up.send, TTL)).cache.status
    })
    return Effect.gen(function*() {
      assert.strictEqual(yield* program.pipe(Effect.provide(withCache())), "miss")
      assert.strictEqual(yield* program.pipe(Effect.provide(withCache({ auth: { ...defaults.auth, type: "bearer" } }))), "hit")
    })
  })
})

describe("revalidation", () => {
  it.effect("revalidates no-cache answers with If-None-Match and serves the cached body on 304", () => {
    const up = upstream((n) => Effect.succeed(n === 1
      ? answer(200, { "cache-control": "no-cache", etag: "\"v1\"" }, `{"pets":["Rex"]}`)
      : answer(304, { etag: "\"v1\"" }, "")))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      const again = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(again.cache.status, "revalidated")
      assert.strictEqual(again.status, 200)
      assert.strictEqual(Buffer.from(again.body).toString(), `{"pets":["Rex"]}`)
      assert.strictEqual(up.seen[1]!.headers["if-none-match"], "\"v1\"")
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("revalidates with If-Modified-Since and replaces the entry on 200", () => {
    const up = upstream((n) => Effect.succeed(answer(200, { "cache-control": "max-age=1", "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT" }, `{"v":${n}}`)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      yield* TestClock.adjust("2 seconds")
      const fresh = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(up.seen[1]!.headers["if-modified-since"], "Wed, 01 Jan 2025 00:00:00 GMT")
      assert.strictEqual(Buffer.from(fresh.body).toString(), `{"v":2}`)
    }).pipe(Effect.provide(withCache()))
  })
})

describe("store", () => {
  it.effect("evicts the least recently used entry at CACHE_MAXSIZE", () => {
    const up = upstream(() => Effect.succeed(answer(200)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const at = (p: string) => get(`http://api.test/v1/${p}`)
      yield* cache.fetch(at("a"), up.send, TTL)
      yield* cache.fetch(at("b"), up.send, TTL)
      yield* cache.fetch(at("a"), up.send, TTL) // a is now the most recent
      yield* cache.fetch(at("c"), up.send, TTL) // evicts b
      assert.strictEqual((yield* cache.fetch(at("a"), up.send, TTL)).cache.status, "hit")
      assert.strictEqual((yield* cache.fetch(at("b"), up.send, TTL)).cache.status, "miss")
      assert.strictEqual(up.seen.length, 4)
    }).pipe(Effect.provide(withCache({ cache: { ...defaults.cache, maxSize: 2 } })))
  })

  it.effect("coalesces concurrent identical misses into one upstream request", () => {
    const up = upstream(() => Effect.succeed(answer(200)).pipe(Effect.delay("1 second")))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => cache.fetch(get(), up.send, TTL).pipe(Effect.forkChild))
      yield* TestClock.adjust("1 second")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.strictEqual(up.seen.length, 1)
      assert.deepStrictEqual(results.map((r) => r.status), [200, 200, 200, 200, 200])
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("keeps credentials apart: the same URL with two API keys makes two entries", () => {
    const up = upstream((n) => Effect.succeed(answer(200, {}, `{"user":${n}}`)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const alice = get("http://api.test/v1/me", { "x-api-key": "alice" })
      const bob = get("http://api.test/v1/me", { "x-api-key": "bob" })
      yield* cache.fetch(alice, up.send, TTL)
      const b = yield* cache.fetch(bob, up.send, TTL)
      assert.strictEqual(Buffer.from(b.body).toString(), `{"user":2}`)
      assert.strictEqual(Buffer.from((yield* cache.fetch(alice, up.send, TTL)).body).toString(), `{"user":1}`)
      assert.strictEqual(up.seen.length, 2)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("keeps client certificates apart: the same URL over two mutual TLS identities makes two entries", () => {
    const up = upstream((n) => Effect.succeed(answer(200, {}, `{"user":${n}}`)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const as = (id: string): OutgoingRequest => ({ ...get("http://api.test/v1/me"), tls: { id, cert: "c", key: "k" } })
      yield* cache.fetch(as("alice"), up.send, TTL)
      assert.strictEqual(Buffer.from((yield* cache.fetch(as("bob"), up.send, TTL)).body).toString(), `{"user":2}`)
      assert.strictEqual((yield* cache.fetch(as("alice"), up.send, TTL)).cache.status, "hit")
      assert.strictEqual(up.seen.length, 2)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("serves repeated SigV4-signed GETs from one entry, and keeps two AWS credentials apart", () => {
    const up = upstream((n) => Effect.succeed(answer(200, {}, `{"n":${n}}`)))
    const signed = (accessKeyId: string, at: number) =>
      signRequest(get("https://abc.execute-api.eu-west-1.amazonaws.com/prod/pets", { accept: "application/json" }), {
        service: "execute-api",
        region: "eu-west-1",
        credentials: { accessKeyId, secretAccessKey: `secret-of-${accessKeyId}` },
        signingDate: new Date(Date.UTC(2026, 10, 26, 12, 0, at))
      })
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      const first = yield* signed("AKIDALICE", 0)
      const later = yield* signed("AKIDALICE", 7)
      // each signature differs (it covers the time) ...
      assert.notStrictEqual(first.headers["authorization"], later.headers["authorization"])
      yield* cache.fetch(first, up.send, TTL)
      // ... yet the same credential asking again is a hit, and another credential is not
      assert.strictEqual(Buffer.from((yield* cache.fetch(later, up.send, TTL)).body).toString(), `{"n":1}`)
      assert.strictEqual(Buffer.from((yield* cache.fetch(yield* signed("AKIDBOB", 9), up.send, TTL)).body).toString(), `{"n":2}`)
      assert.strictEqual(up.seen.length, 2)
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("drops cached GETs of a path and its parents after a write to it", () => {
    const up = upstream(() => Effect.succeed(answer(200)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      for (const p of ["pets", "pets/1", "pets/2"]) yield* cache.fetch(get(`http://api.test/v1/${p}`), up.send, TTL)
      yield* cache.invalidate({ ...get("http://api.test/v1/pets/1"), method: "PATCH" })
      assert.strictEqual((yield* cache.fetch(get("http://api.test/v1/pets/1"), up.send, TTL)).cache.status, "miss")
      assert.strictEqual((yield* cache.fetch(get("http://api.test/v1/pets"), up.send, TTL)).cache.status, "miss")
      assert.strictEqual((yield* cache.fetch(get("http://api.test/v1/pets/2"), up.send, TTL)).cache.status, "hit")
    }).pipe(Effect.provide(withCache()))
  })

  it.effect("bypasses a failing store: calls still reach the upstream", () => {
    const broken: CacheStore = {
      name: "redis",
      get: () => Effect.fail(new StoreUnavailable({ detail: "down" })),
      set: () => Effect.fail(new StoreUnavailable({ detail: "down" })),
      invalidatePaths: () => Effect.fail(new StoreUnavailable({ detail: "down" })),
      ping: Effect.fail(new StoreUnavailable({ detail: "down" }))
    }
    const up = upstream(() => Effect.succeed(answer(200)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* cache.fetch(get(), up.send, TTL)).cache.status, "bypass")
      yield* cache.invalidate(get())
      assert.strictEqual(up.seen.length, 3)
    }).pipe(Effect.provide(withCache({}, Layer.succeed(CacheStoreTag, broken))))
  })
})

describe("stale-if-error", () => {
  const timeout = Effect.fail(new UpstreamError({ reason: new UpstreamTimeout({ kind: "attempt", afterMs: 30_000 }), attempts: 3 }))

  it.effect("serves a stale entry, marked, when the upstream fails within CACHE_STALE_IF_ERROR", () => {
    const up = upstream((n) => n === 1 ? Effect.succeed(answer(200, { "cache-control": "max-age=10" })) : n === 2 ? timeout : Effect.succeed(answer(503)))
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      yield* TestClock.adjust("40 seconds")
      const stale = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(stale.cache.status, "stale")
      assert.strictEqual(stale.cache.ageSeconds, 40)
      assert.strictEqual(stale.cache.staleBecause, "the upstream timed out")
      const again = yield* cache.fetch(get(), up.send, TTL)
      assert.strictEqual(again.cache.status, "stale")
      assert.strictEqual(again.cache.staleBecause, "the upstream answered HTTP 503")
    }).pipe(Effect.provide(withCache({ cache: { ...defaults.cache, staleIfErrorSeconds: 60 } })))
  })

  it.effect("fails as the upstream did once the stale window has passed", () => {
    const up = upstream((n) => n === 1 ? Effect.succeed(answer(200, { "cache-control": "max-age=10" })) : timeout)
    return Effect.gen(function*() {
      const cache = yield* ResponseCache
      yield* cache.fetch(get(), up.send, TTL)
      yield* TestClock.adjust("71 seconds")
      const error = yield* Effect.flip(cache.fetch(get(), up.send, TTL))
      assert.strictEqual(error.reason._tag, "UpstreamTimeout")
    }).pipe(Effect.provide(withCache({ cache: { ...defaults.cache, staleIfErrorSeconds: 60, ttlSeconds: 0 } })))
  })
})


describe("cached combinator", () => {
  it.effect("keeps a keyed result for its TTL, shares concurrent lookups and does not keep failures", () => Effect.gen(function*() {
    let calls = 0
    const lookup = (key: string) => Effect.suspend(() => {
      calls++
      return key === "bad" ? Effect.fail(`no ${key}`) : Effect.succeed(`${key}:${calls}`).pipe(Effect.delay("10 millis"))
    })
    const get = yield* cached(lookup, { timeToLive: "1 minute" })
    const fibers = yield* Effect.forEach([1, 2, 3], () => get("a").pipe(Effect.forkChild))
    yield* TestClock.adjust("10 millis")
    assert.deepStrictEqual(yield* Effect.forEach(fibers, Fiber.join), ["a:1", "a:1", "a:1"])
    yield* TestClock.adjust("59 seconds")
    assert.strictEqual(yield* get("a"), "a:1")
    yield* TestClock.adjust("1 second")
    const refreshed = yield* get("a").pipe(Effect.forkChild)
    yield* TestClock.adjust("10 millis")
    assert.strictEqual(yield* Fiber.join(refreshed), "a:2")
    yield* Effect.flip(get("bad"))
    yield* Effect.flip(get("bad"))
    assert.strictEqual(calls, 4)
  }))
})
