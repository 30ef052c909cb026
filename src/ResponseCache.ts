/**
 * ResponseCache: HTTP response caching for GET/HEAD tool calls, with a store in memory (Effect `Cache`:
 * TTL + capacity, least-recently-used eviction) or in Redis (shared by replicas, TTL in Redis, size-capped).
 *
 * - Key: method, full URL (query included), every request header and cookie (so credentials and varying
 *   headers are part of it; of a SigV4 signature, only the credential and scope) hashed with SHA-256: two
 *   credentials never share an entry, and no secret is stored in a key.
 * - HTTP semantics: `Cache-Control` (no-store, no-cache, private, max-age, s-maxage), `Expires`, `Vary: *`,
 *   ETag / Last-Modified revalidation (a 304 refreshes the entry), CACHE_TTL when the upstream says nothing.
 * - Concurrent identical misses share one upstream request (coalescing through an Effect `Cache`).
 * - Stale-if-error: when the upstream fails (5xx, timeout, open circuit, unreachable) a stale entry no older
 *   than CACHE_STALE_IF_ERROR seconds past its freshness is served, marked stale.
 * - A store that fails (Redis down) is bypassed: calls go straight upstream; logged once per outage.
 * - A successful write (non-GET 2xx) invalidates cached GETs of the same path and of its parent paths.
 */
import { Cache, Clock, Context, Duration, Effect, Equal, Exit, Hash, Layer, Metric, Option, Schema } from "effect"
import { createHash } from "node:crypto"
import { AppConfig } from "./AppConfig.ts"
import type { OutgoingRequest } from "./Invoker/RequestBuilder.ts"
import { cacheRequests } from "./Telemetry.ts"
import type { UpstreamError, UpstreamResponse } from "./Upstream.ts"

export interface CacheEntry {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
  readonly storedAt: number
  readonly freshUntil: number
  /** How long the store keeps it: freshness plus the stale-if-error / revalidation window. */
  readonly retainMs: number
}

export type CacheStatus = "hit" | "miss" | "revalidated" | "stale" | "bypass"

export interface CacheInfo {
  readonly status: CacheStatus
  readonly ageSeconds: number
  /** Why a stale entry was served. */
  readonly staleBecause?: string
}

export type Sent = UpstreamResponse & { readonly attempts: number }
export type Fetched = Sent & { readonly cache: CacheInfo }

export class CacheMiss extends Schema.TaggedError<CacheMiss>()("CacheMiss", { key: Schema.String }) {}
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", { detail: Schema.String }) {}

/** Where entries live. Every method may fail with StoreUnavailable; callers then bypass the cache. */
export interface CacheStore {
  readonly name: "memory" | "redis"
  readonly get: (key: string) => Effect.Effect<CacheEntry | undefined, StoreUnavailable>
  readonly set: (key: string, entry: CacheEntry, pathKeys: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  readonly invalidatePaths: (pathKeys: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  /** Health for readiness probes. */
  readonly ping: Effect.Effect<void, StoreUnavailable>
}

const sha = (s: string) => createHash("sha256").update(s).digest("base64url")

/**
 * A header as the cache key has it. A SigV4 signature covers the signing time, so each signed request
 * differs: the key leaves out the time (`x-amz-date`) and the signature, and keeps the credential and its
 * scope (access key, date, region, service), so repeated signed GETs with one credential share an entry.
 */
const keyHeader = (name: string, value: string): string | undefined =>
  name === "x-amz-date" ? undefined
  : name === "authorization" && value.startsWith("AWS4-HMAC-SHA256 ") ? `${name}:${value.replace(/,\s*Signature=[0-9a-fA-F]*/, "")}`
  : `${name}:${value}`

/**
 * The cache key of a request: method, URL, every header and cookie (SigV4's per-request parts aside) and the
 * client certificate (mutual TLS) it is sent with, hashed.
 */
export const requestKey = (r: OutgoingRequest): string => {
  const headers = Object.entries(r.headers).flatMap(([k, v]) => keyHeader(k.toLowerCase(), v) ?? []).sort().join("\n")
  const cookies = r.cookies.map(([k, v]) => `${k}=${v}`).sort().join(";")
  return sha(`${r.method}\n${r.url}?${r.query.join("&")}\n${headers}\n${cookies}${r.tls === undefined ? "" : `\ntls:${r.tls.id}`}`)
}

/** Keys of a request's path and its parent paths (`/pets/1` → `/pets/1`, `/pets`), for invalidation. */
export const pathKeys = (url: string): ReadonlyArray<string> => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return [sha(url)]
  }
  const segments = u.pathname.split("/").filter((s) => s !== "")
  const keys: Array<string> = []
  for (let n = segments.length; n >= 1; n--) keys.push(sha(`${u.origin}/${segments.slice(0, n).join("/")}`))
  return keys
}

interface Directives {
  readonly noStore: boolean
  readonly noCache: boolean
  readonly isPrivate: boolean
  readonly maxAgeMs: number | undefined
}

export const parseCacheControl = (value: string | undefined): Directives => {
  const d = { noStore: false, noCache: false, isPrivate: false, maxAgeMs: undefined as number | undefined }
  let sMaxAge: number | undefined
  for (const part of (value ?? "").toLowerCase().split(",")) {
    const [name = "", arg] = part.trim().split("=").map((s) => s.trim().replace(/^"|"$/g, ""))
    if (name === "no-store") d.noStore = true
    else if (name === "no-cache") d.noCache = true
    else if (name === "private") d.isPrivate = true
    else if (name === "max-age" && arg !== undefined && /^\d+$/.test(arg)) d.maxAgeMs = Number(arg) * 1000
    else if (name === "s-maxage" && arg !== undefined && /^\d+$/.test(arg)) sMaxAge = Number(arg) * 1000
  }
  // this cache may be shared between clients (Redis, or no credential): s-maxage wins as for a shared cache
  return { ...d, maxAgeMs: sMaxAge ?? d.maxAgeMs }
}

export interface Freshness {
  /** Milliseconds the response is fresh for; 0 = store but revalidate before use; undefined = do not store. */
  readonly freshMs: number | undefined
}

/** How long a 200 answer may be used, from its headers; undefined when it must not be stored. */
export const freshnessOf = (
  res: UpstreamResponse,
  now: number,
  defaultTtlMs: number,
  shared: boolean
): number | undefined => {
  if (res.status !== 200) return undefined
  const h = res.headers
  const cc = parseCacheControl(h["cache-control"])
  if (cc.noStore || (cc.isPrivate && shared)) return undefined
  if ((h["vary"] ?? "").includes("*") || h["set-cookie"] !== undefined) return undefined
  if (cc.noCache) return 0
  if (cc.maxAgeMs !== undefined) return cc.maxAgeMs
  if (h["expires"] !== undefined) {
    const expires = Date.parse(h["expires"])
    const date = h["date"] !== undefined ? Date.parse(h["date"]) : now
    return Number.isNaN(expires) ? 0 : Math.max(0, expires - (Number.isNaN(date) ? now : date))
  }
  return defaultTtlMs
}

/**
 * The `@cached` decorator's counterpart: wraps a keyed effect with an Effect `Cache` (capacity, LRU
 * eviction, TTL that may depend on the outcome; failures are not kept unless the TTL says so). Concurrent
 * calls with the same key share one evaluation.
 */
export const cached = <Key, A, E, R>(
  lookup: (key: Key) => Effect.Effect<A, E, R>,
  options: {
    readonly timeToLive: Duration.Input | ((exit: Exit.Exit<A, E>) => Duration.Input)
    readonly capacity?: number
  }
): Effect.Effect<(key: Key) => Effect.Effect<A, E, R>> =>
  Cache.makeWith(lookup, {
    capacity: options.capacity ?? 1000,
    requireServicesAt: "lookup",
    timeToLive: typeof options.timeToLive === "function"
      ? options.timeToLive
      : (exit) => Exit.isSuccess(exit) ? options.timeToLive as Duration.Input : Duration.zero
  }).pipe(Effect.map((cache) => (key: Key) => Cache.get(cache, key)))

/** A key that compares by its string only, carrying the request to make on a miss. */
class Flight implements Equal.Equal {
  readonly key: string
  readonly run: Effect.Effect<Fetched, UpstreamError>
  constructor(key: string, run: Effect.Effect<Fetched, UpstreamError>) {
    this.key = key
    this.run = run
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Flight && that.key === this.key
  }
  [Hash.symbol](): number {
    return Hash.string(this.key)
  }
}

/** Upstream failures for which a stale entry is better than nothing. */
const staleWorthy = (e: UpstreamError): string | undefined => {
  switch (e.reason._tag) {
    case "UpstreamTimeout":
      return "the upstream timed out"
    case "UpstreamConnect":
      return `the upstream was unreachable (${e.reason.detail})`
    case "UpstreamCircuitOpen":
      return "the upstream's circuit breaker is open"
    case "UpstreamRateLimited":
      return "the API's rate limit is used up"
    default:
      return undefined
  }
}

export interface FetchOptions {
  /** Default freshness when the upstream says nothing (CACHE_TTL, or the operation's cache_ttl). */
  readonly ttlMs: number
}

export class ResponseCache extends Context.Service<ResponseCache, {
  /** Answers a GET/HEAD from the cache when it may, else through `send` (coalesced), storing what it may. */
  readonly fetch: (
    request: OutgoingRequest,
    send: (request: OutgoingRequest) => Effect.Effect<Sent, UpstreamError>,
    options: FetchOptions
  ) => Effect.Effect<Fetched, UpstreamError>
  /** After a successful write to a path: drops cached GETs of that path and its parents. */
  readonly invalidate: (request: OutgoingRequest) => Effect.Effect<void>
  readonly store: CacheStore
}>()("openapi-mcp/ResponseCache") {
  static readonly layerNoDeps = Layer.effect(ResponseCache, Effect.gen(function*() {
    const config = yield* AppConfig
    const store = yield* CacheStoreTag
    const staleIfErrorMs = config.cache.staleIfErrorSeconds * 1000
    // The cache may serve several MCP clients: without a credential it is a shared cache.
    const shared = store.name === "redis" || config.auth.type === "none"
    let storeDown = false

    /** Runs a store operation; a failure bypasses the cache and is logged once per outage. */
    const guarded = <A>(op: Effect.Effect<A, StoreUnavailable>, fallback: A): Effect.Effect<{ value: A; bypassed: boolean }> =>
      op.pipe(
        Effect.map((value) => ({ value, bypassed: false })),
        Effect.tap(() => {
          if (!storeDown) return Effect.void
          storeDown = false
          return Effect.logInfo(`cache store (${store.name}) reachable again`)
        }),
        Effect.catch((e) => {
          const first = !storeDown
          storeDown = true
          return (first
            ? Effect.logWarning(`cache store (${store.name}) unavailable; calls go straight to the upstream: ${e.detail}`)
            : Effect.void).pipe(Effect.as({ value: fallback, bypassed: true }))
        })
      )

    // only in-flight lookups are shared here; results live in the store
    const coalesced = yield* cached((flight: Flight) => flight.run, { capacity: Number.POSITIVE_INFINITY, timeToLive: () => Duration.zero })

    const fetch = Effect.fn("ResponseCache.fetch")(function*(
      request: OutgoingRequest,
      send: (request: OutgoingRequest) => Effect.Effect<Sent, UpstreamError>,
      options: FetchOptions
    ) {
      const key = requestKey(request)
      const paths = pathKeys(request.url)
      const found = yield* guarded(store.get(key), undefined as CacheEntry | undefined)
      const now = yield* Clock.currentTimeMillis
      const entry = found.value
      if (entry !== undefined && now < entry.freshUntil) {
        return { ...entry, attempts: 0, cache: { status: "hit", ageSeconds: Math.floor((now - entry.storedAt) / 1000) } } satisfies Fetched
      }

      const refresh = Effect.gen(function*() {
        // revalidate with the entry's validators when it has them
        const validators: Record<string, string> = {}
        if (entry?.headers["etag"] !== undefined) validators["if-none-match"] = entry.headers["etag"]
        if (entry?.headers["last-modified"] !== undefined) validators["if-modified-since"] = entry.headers["last-modified"]
        const outcome = yield* Effect.exit(send({ ...request, headers: { ...request.headers, ...validators } }))
        const at = yield* Clock.currentTimeMillis
        const staleWindowOk = entry !== undefined && at <= entry.freshUntil + staleIfErrorMs
        const stale = (because: string): Fetched => ({
          ...entry!, attempts: 0, cache: { status: "stale", ageSeconds: Math.floor((at - entry!.storedAt) / 1000), staleBecause: because }
        })
        if (Exit.isFailure(outcome)) {
          const error = outcome.cause.reasons.find((r) => r._tag === "Fail")?.error
          const because = error === undefined ? undefined : staleWorthy(error)
          if (because !== undefined && staleWindowOk) return stale(because)
          return yield* Effect.failCause(outcome.cause)
        }
        const res = outcome.value
        if (res.status === 304 && entry !== undefined) {
          const merged = { ...entry.headers, ...pick(res.headers, ["cache-control", "expires", "etag", "last-modified", "date"]) }
          const freshMs = freshnessOf({ ...entry, headers: merged }, at, options.ttlMs, shared) ?? 0
          const refreshed: CacheEntry = { ...entry, headers: merged, storedAt: at, freshUntil: at + freshMs, retainMs: retainFor(freshMs) }
          yield* guarded(store.set(key, refreshed, paths), undefined)
          return { ...refreshed, attempts: res.attempts, cache: { status: "revalidated", ageSeconds: 0 } } satisfies Fetched
        }
        if (res.status >= 500 && staleWindowOk) return stale(`the upstream answered HTTP ${res.status}`)
        const freshMs = freshnessOf(res, at, options.ttlMs, shared)
        let status: CacheStatus = "miss"
        if (freshMs !== undefined && res.bodyCut !== true && res.body.byteLength <= config.cache.maxEntryBytes) {
          const stored: CacheEntry = {
            status: res.status, headers: res.headers, body: res.body, storedAt: at, freshUntil: at + freshMs, retainMs: retainFor(freshMs)
          }
          const written = yield* guarded(store.set(key, stored, paths), undefined)
          if (written.bypassed) status = "bypass"
        }
        if (found.bypassed) status = "bypass"
        return { ...res, cache: { status, ageSeconds: 0 } } satisfies Fetched
      })
      return yield* coalesced(new Flight(key, refresh))
    }, Effect.tap((fetched) =>
      // metric label: a revalidated entry was served from the cache
      Metric.update(cacheRequests(store.name, fetched.cache.status === "revalidated" ? "hit" : fetched.cache.status), 1)
    ))

    const retainFor = (freshMs: number) => freshMs + Math.max(staleIfErrorMs, freshMs, config.cache.ttlSeconds * 1000)

    const invalidate = (request: OutgoingRequest) =>
      guarded(store.invalidatePaths(pathKeys(request.url)), undefined).pipe(Effect.asVoid)

    return ResponseCache.of({ fetch, invalidate, store })
  }))

  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    const store = config.cache.backend === "redis" ? layerRedisStore : layerMemoryStore
    return ResponseCache.layerNoDeps.pipe(Layer.provide(store))
  }))
}

const pick = (h: Readonly<Record<string, string>>, names: ReadonlyArray<string>) => {
  const out: Record<string, string> = {}
  for (const n of names) if (h[n] !== undefined) out[n] = h[n]
  return out
}

export class CacheStoreTag extends Context.Service<CacheStoreTag, CacheStore>()("openapi-mcp/CacheStore") {}

/** In-process store: an Effect `Cache` with CACHE_MAXSIZE entries, LRU eviction and per-entry TTL. */
export const layerMemoryStore = Layer.effect(CacheStoreTag, Effect.gen(function*() {
  const config = yield* AppConfig
  const entries = yield* Cache.makeWith((key: string): Effect.Effect<CacheEntry, CacheMiss> => Effect.fail(new CacheMiss({ key })), {
    capacity: config.cache.maxSize,
    // a miss is never kept; an entry lives for its retention time
    timeToLive: (exit) => Exit.isSuccess(exit) ? Duration.millis(exit.value.retainMs) : Duration.zero
  })
  const byPath = new Map<string, Set<string>>()
  return CacheStoreTag.of({
    name: "memory",
    get: (key) => Cache.getOption(entries, key).pipe(Effect.map(Option.getOrUndefined), Effect.catchTag("CacheMiss", () => Effect.succeed(undefined))),
    set: (key, entry, paths) =>
      Effect.sync(() => {
        const exact = paths[0]
        if (exact !== undefined) {
          let keys = byPath.get(exact)
          if (keys === undefined) byPath.set(exact, keys = new Set())
          keys.add(key)
        }
      }).pipe(Effect.andThen(Cache.set(entries, key, entry))),
    invalidatePaths: (paths) =>
      Effect.forEach(paths, (p) => {
        const keys = byPath.get(p)
        byPath.delete(p)
        return Effect.forEach(keys ?? [], (k) => Cache.invalidate(entries, k), { discard: true })
      }, { discard: true }),
    ping: Effect.void
  })
}))

/**
 * Redis store: `omcp:r:<key>` holds the entry as JSON (body base64) with a PX expiry; `omcp:p:<path>` sets
 * index keys by path for invalidation. Commands fail fast while Redis is down (no offline queue, short
 * timeout) so a call never waits on the cache; the client keeps reconnecting in the background.
 */
export const layerRedisStore = Layer.effect(CacheStoreTag, Effect.gen(function*() {
  const config = yield* AppConfig
  const url = Option.getOrUndefined(config.cache.redisUrl)
  // loaded only for this backend: the client library costs a third of a second at start
  const { createClient } = yield* Effect.promise(() => import("redis"))
  const client = createClient({
    ...(url !== undefined ? { url } : {}),
    disableOfflineQueue: true,
    socket: { connectTimeout: 1000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) }
  })
  client.on("error", () => {
    // reported through command failures (once per outage), never thrown
  })
  // wait up to a second for the first connection; a Redis that is down must not hold up the start
  const connecting = client.connect().catch(() => undefined)
  yield* Effect.promise(() => connecting).pipe(Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.void }))
  yield* Effect.addFinalizer(() => Effect.promise(() => client.close().catch(() => undefined)))
  const run = <A>(what: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (e) => new StoreUnavailable({ detail: `${what}: ${(e as Error).message}` }) }).pipe(
      Effect.timeoutOrElse({ duration: "500 millis", orElse: () => Effect.fail(new StoreUnavailable({ detail: `${what}: timed out` })) })
    )
  const ready = Effect.suspend(() =>
    client.isReady ? Effect.void : Effect.fail(new StoreUnavailable({ detail: "not connected to Redis" }))
  )
  return CacheStoreTag.of({
    name: "redis",
    get: (key) =>
      ready.pipe(Effect.andThen(run("GET", () => client.get(`omcp:r:${key}`))), Effect.map((text) => {
        if (typeof text !== "string") return undefined
        try {
          const raw = JSON.parse(text) as Omit<CacheEntry, "body"> & { body: string }
          return { ...raw, body: Buffer.from(raw.body, "base64") }
        } catch {
          return undefined
        }
      })),
    set: (key, entry, paths) =>
      ready.pipe(Effect.andThen(run("SET", async () => {
        const value = JSON.stringify({ ...entry, body: Buffer.from(entry.body).toString("base64") })
        const multi = client.multi().set(`omcp:r:${key}`, value, { PX: Math.max(1, entry.retainMs) })
        const exact = paths[0]
        if (exact !== undefined) multi.sAdd(`omcp:p:${exact}`, key).pExpire(`omcp:p:${exact}`, Math.max(1, entry.retainMs))
        await multi.exec()
      }))),
    invalidatePaths: (paths) =>
      ready.pipe(Effect.andThen(run("invalidate", async () => {
        for (const p of paths) {
          const keys = await client.sMembers(`omcp:p:${p}`)
          if (keys.length > 0) await client.del(keys.map((k) => `omcp:r:${k}`))
          await client.del(`omcp:p:${p}`)
        }
      }))),
    ping: ready.pipe(Effect.andThen(run("PING", () => client.ping())), Effect.asVoid)
  })
}))
