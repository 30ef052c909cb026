/**
 * A refreshed token: fetched on first use, kept (through the `cached` combinator, so concurrent calls share
 * one fetch) until shortly before it expires, then fetched again before it can be sent expired. After the
 * upstream refuses a token (401) it is dropped, so the next call fetches a fresh one.
 */
import { Duration, Effect, Exit, Redacted } from "effect"
import { cached } from "../ResponseCache.ts"
import type { AuthError } from "./Errors.ts"

export interface Token {
  readonly value: Redacted.Redacted
  /** How long the token is valid from when it was fetched (the endpoint's `expires_in`). */
  readonly lifetimeMs: number
}

/** When a token expiring after `lifetimeMs` stops being used: a tenth of its life before, at most a minute. */
export const refreshMarginMs = (lifetimeMs: number): number => Math.min(60_000, Math.floor(lifetimeMs / 10))

/** Lifetime assumed when the endpoint does not say (`expires_in` missing). */
export const DEFAULT_LIFETIME_MS = 3_600_000

export interface TokenSource {
  /** The current token, fetched when there is none or it is about to expire. */
  readonly get: Effect.Effect<Redacted.Redacted, AuthError>
  /**
   * The upstream refused `used`: forget it if it is still the current token. True: sending again with
   * `get` may succeed (a fresh token will be fetched, or already was by another call).
   */
  readonly refused: (used: string) => Effect.Effect<boolean>
}

export const makeTokenSource = (fetch: Effect.Effect<Token, AuthError>): Effect.Effect<TokenSource> =>
  Effect.gen(function*() {
    // Each generation is one cache key: dropping a refused token is moving to the next generation.
    let generation = 0
    let current: string | undefined
    const lookup = yield* cached((_generation: number) => fetch, {
      capacity: 2,
      timeToLive: (exit) =>
        Exit.isSuccess(exit) ? Duration.millis(Math.max(0, exit.value.lifetimeMs - refreshMarginMs(exit.value.lifetimeMs))) : Duration.zero
    })
    const get = Effect.suspend(() => lookup(generation)).pipe(
      Effect.map((token) => {
        current = Redacted.value(token.value)
        return token.value
      })
    )
    const refused = (used: string) =>
      Effect.sync(() => {
        if (current === undefined || used === current) {
          generation++
          current = undefined
        }
        return true
      })
    return { get, refused }
  })
