/**
 * CIRCUIT_BREAKER_BACKEND=redis: the replicas sharing REDIS_URL tell each other what they learn about an API's
 * state, so that the first replica to learn it spares the others the calls that would teach them the same:
 * - an origin's breaker opened, or closed after its probe: the first replica to see an API go down stops every
 *   replica's calls to it (and the first to see it back lets them all through);
 * - an operation's rate limit is used up until a given time (the pause of Upstream's rate-limit check).
 * Each replica still counts failures itself, with no Redis on the call path; only these changes go through
 * Redis: published on the channel `omcp:breaker` for the replicas running, and kept as `omcp:b:<origin>` (when
 * the breaker opened, epoch ms; expiring with the open time) and `omcp:l:<key>` (when the pause ends, epoch ms;
 * expiring then) for those that start meanwhile. While Redis is down each replica works on its own.
 */
import { Context, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { AppConfig } from "../AppConfig.ts"

export type SharedState = "Open" | "Closed"

/** What a replica hears from the others. */
export interface Adopt {
  /** Another replica's breaker for `origin` opened at `at` (epoch ms), or closed after its probe. */
  readonly breaker: (origin: string, to: SharedState, at: number) => void
  /** Another replica learnt that the rate limit of `key` is used up until `until` (epoch ms). */
  readonly pause: (key: string, until: number) => void
}

export interface ReplicaSyncShape {
  /** This replica's breaker for `origin` opened at `at` (epoch ms), or closed after its probe succeeded. */
  readonly publish: (origin: string, to: SharedState, at: number) => void
  /** This replica learnt at `now` that the rate limit of `key` (CallPolicy.rateLimitKey) is used up until `until`. */
  readonly publishPause: (key: string, until: number, now: number) => void
  /** Hands the other replicas' news to `adopt` from now on, and first what holds now (done when it ends). */
  readonly subscribe: (adopt: Adopt) => Effect.Effect<void>
}

/** In this process only (the default): nothing to tell or hear. */
export const ReplicaSync = Context.Reference<ReplicaSyncShape>("openapi-mcp/Upstream/ReplicaSync", {
  defaultValue: () => ({ publish: () => undefined, publishPause: () => undefined, subscribe: () => Effect.void })
})

const CHANNEL = "omcp:breaker"
const BREAKER_KEY = "omcp:b:"
const PAUSE_KEY = "omcp:l:"

type Message =
  | { readonly from: string; readonly origin: string; readonly to: SharedState; readonly at: number }
  | { readonly from: string; readonly pause: string; readonly until: number }

const messageOf = (text: string): Message | undefined => {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof m !== "object" || m === null) return undefined
  const { from, origin, to, at, pause, until } = m as Record<string, unknown>
  if (typeof from !== "string") return undefined
  if (typeof origin === "string" && (to === "Open" || to === "Closed") && Number.isFinite(at)) return m as Message
  if (typeof pause === "string" && Number.isFinite(until)) return m as Message
  return undefined
}

/** Shared through Redis (REDIS_URL), with CIRCUIT_BREAKER_BACKEND=redis. */
const layerRedis = Layer.effect(ReplicaSync, Effect.gen(function*() {
  const config = yield* AppConfig
  const url = Option.getOrUndefined(config.cache.redisUrl)
  const { createClient } = yield* Effect.promise(() => import("redis"))
  const socket = { connectTimeout: 1000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) }
  // news is told at once or not at all; the subscription waits for the connection and comes back with it
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
    runFork(Effect.logWarning(`shared circuit breaker state (redis) unavailable, breakers and rate-limit pauses are this replica's own until it is back: ${(e as Error).message}`))
  }
  const send = (write: ReturnType<typeof client.multi>) => void write.exec().then(() => void (down = false), failed)
  return ReplicaSync.of({
    publish: (origin, to, at) => {
      const message = JSON.stringify({ from: me, origin, to, at } satisfies Message)
      send(to === "Open"
        ? client.multi().set(`${BREAKER_KEY}${origin}`, String(at), { PX: openMs }).publish(CHANNEL, message)
        : client.multi().del(`${BREAKER_KEY}${origin}`).publish(CHANNEL, message))
    },
    publishPause: (key, until, now) => {
      const ms = until - now
      if (ms <= 0) return
      const message = JSON.stringify({ from: me, pause: key, until } satisfies Message)
      send(client.multi().set(`${PAUSE_KEY}${key}`, String(until), { PX: ms }).publish(CHANNEL, message))
    },
    // at start, what holds now is adopted before the first call (a second at most); a Redis that is down does not
    // hold up the start: the subscription then waits for it in the background
    subscribe: (adopt) => {
      const listening = (async () => {
        await subscriber.subscribe(CHANNEL, (text) => {
          const m = messageOf(text)
          if (m === undefined || m.from === me) return
          if ("pause" in m) adopt.pause(m.pause, m.until)
          else adopt.breaker(m.origin, m.to, m.at)
        })
        for await (const keys of client.scanIterator({ MATCH: "omcp:[bl]:*", COUNT: 100 })) {
          for (const key of keys) {
            const at = Number(await client.get(key))
            if (!Number.isFinite(at)) continue
            if (key.startsWith(PAUSE_KEY)) adopt.pause(key.slice(PAUSE_KEY.length), at)
            else adopt.breaker(key.slice(BREAKER_KEY.length), "Open", at)
          }
        }
      })().catch(failed)
      return client.isReady
        ? Effect.promise(() => listening).pipe(Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.void }))
        : Effect.void
    }
  })
}))

/** The ReplicaSync that CIRCUIT_BREAKER_BACKEND asks for. */
export const layer = Layer.unwrap(Effect.gen(function*() {
  return (yield* AppConfig).breaker.backend === "redis" ? layerRedis : Layer.empty
}))
