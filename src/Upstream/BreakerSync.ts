/**
 * CIRCUIT_BREAKER_BACKEND=redis: the replicas sharing REDIS_URL tell each other when an origin's breaker opens,
 * or closes after its probe, so that the first replica to see an API go down stops every replica's calls to it
 * (and the first to see it back lets them all through). Each replica still counts failures itself, with no
 * Redis on the call path; only transitions go through Redis: published on the channel `omcp:breaker` for the
 * replicas running, and kept as `omcp:b:<origin>` (when it opened, epoch ms; expiring with the open time)
 * for those that start while it is open. While Redis is down each replica's breakers work on their own.
 */
import { Context, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { AppConfig } from "../AppConfig.ts"

export type SharedState = "Open" | "Closed"

export interface BreakerSyncShape {
  /** This replica's breaker for `origin` opened at `at` (epoch ms), or closed after its probe succeeded. */
  readonly publish: (origin: string, to: SharedState, at: number) => void
  /** Hands the other replicas' transitions to `adopt` from now on, and first the breakers open now (done when it ends). */
  readonly subscribe: (adopt: (origin: string, to: SharedState, at: number) => void) => Effect.Effect<void>
}

/** In this process only (the default): nothing to tell or hear. */
export const BreakerSync = Context.Reference<BreakerSyncShape>("openapi-mcp/Upstream/BreakerSync", {
  defaultValue: () => ({ publish: () => undefined, subscribe: () => Effect.void })
})

const CHANNEL = "omcp:breaker"
const KEY = "omcp:b:"

interface Message {
  readonly from: string
  readonly origin: string
  readonly to: SharedState
  readonly at: number
}

const isMessage = (m: unknown): m is Message => {
  if (typeof m !== "object" || m === null) return false
  const { from, origin, to, at } = m as Record<string, unknown>
  return typeof from === "string" && typeof origin === "string" && (to === "Open" || to === "Closed") && Number.isFinite(at)
}

/** Shared through Redis (REDIS_URL), with CIRCUIT_BREAKER_BACKEND=redis. */
const layerRedis = Layer.effect(BreakerSync, Effect.gen(function*() {
  const config = yield* AppConfig
  const url = Option.getOrUndefined(config.cache.redisUrl)
  const { createClient } = yield* Effect.promise(() => import("redis"))
  const socket = { connectTimeout: 1000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) }
  // transitions are told at once or not at all; the subscription waits for the connection and comes back with it
  const client = createClient({ ...(url !== undefined ? { url } : {}), disableOfflineQueue: true, socket })
  const subscriber = client.duplicate({ disableOfflineQueue: false })
  for (const c of [client, subscriber]) c.on("error", () => undefined) // reported below, once per outage
  const connecting = Promise.all([client.connect(), subscriber.connect()]).catch(() => undefined)
  yield* Effect.promise(() => connecting).pipe(Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.void }))
  let closed = false
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => {
      closed = true
      return Promise.allSettled([client.close(), subscriber.close()])
    })
  )
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const me = randomUUID()
  const openMs = config.breaker.resetTimeoutMs
  let down = false
  const failed = (e: unknown) => {
    if (down || closed) return
    down = true
    runFork(Effect.logWarning(`circuit breaker state (redis) unavailable, breakers are this replica's own until it is back: ${(e as Error).message}`))
  }
  return BreakerSync.of({
    publish: (origin, to, at) => {
      const message = JSON.stringify({ from: me, origin, to, at } satisfies Message)
      const write = to === "Open"
        ? client.multi().set(`${KEY}${origin}`, String(at), { PX: openMs }).publish(CHANNEL, message)
        : client.multi().del(`${KEY}${origin}`).publish(CHANNEL, message)
      write.exec().then(() => void (down = false), failed)
    },
    // at start, the breakers open now are adopted before the first call (a second at most); a Redis that is down
    // does not hold up the start: the subscription then waits for it in the background
    subscribe: (adopt) => {
      const listening = (async () => {
        await subscriber.subscribe(CHANNEL, (text) => {
          let m: unknown
          try {
            m = JSON.parse(text)
          } catch {
            return
          }
          if (isMessage(m) && m.from !== me) adopt(m.origin, m.to, m.at)
        })
        for await (const keys of client.scanIterator({ MATCH: `${KEY}*`, COUNT: 100 })) {
          for (const key of keys) {
            const at = Number(await client.get(key))
            if (Number.isFinite(at)) adopt(key.slice(KEY.length), "Open", at)
          }
        }
      })().catch(failed)
      return client.isReady
        ? Effect.promise(() => listening).pipe(Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.void }))
        : Effect.void
    }
  })
}))

/** The BreakerSync that CIRCUIT_BREAKER_BACKEND asks for. */
export const layer = Layer.unwrap(Effect.gen(function*() {
  return (yield* AppConfig).breaker.backend === "redis" ? layerRedis : Layer.empty
}))
