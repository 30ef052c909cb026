/**
 * When an upstream API takes calls again, from its answer's headers: Retry-After, or the reset of a rate
 * limit it says is used up. Read by the retries (Upstream.ts) and by the tool error (ResponseMapper.ts).
 */
const REMAINING_HEADERS = ["x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining"]
const RESET_HEADERS = ["ratelimit-reset", "x-ratelimit-reset-after", "x-ratelimit-reset", "x-rate-limit-reset"]

/**
 * Whether the answer says the API's rate limit is used up: a 429, or a remaining count of 0 (GitHub answers
 * 403 with `x-ratelimit-remaining: 0`; the IETF `RateLimit` header says `remaining=0` or `r=0`).
 */
export const rateLimited = (status: number, headers: Readonly<Record<string, string>>): boolean =>
  status === 429 || REMAINING_HEADERS.some((h) => headers[h]?.trim() === "0") ||
  /(?:^|[\s,;])(?:remaining|r)=0(?![\d.])/.test(headers["ratelimit"] ?? "")

/** A reset time as delta seconds, Unix seconds or Unix milliseconds (told apart by size), in seconds from now. */
const secondsUntil = (value: string, now: number): number | undefined => {
  const n = Number(value.trim())
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) return undefined
  if (n > 1e12) return Math.max(0, Math.ceil((n - now) / 1000))
  if (n > 1e9) return Math.max(0, Math.ceil(n - now / 1000))
  return Math.ceil(n)
}

/**
 * Seconds until the API takes calls again: its Retry-After header (delta seconds or an HTTP date), else, when
 * the answer is rate-limited (`rateLimited`), when its rate limit resets (`x-ratelimit-reset` and its
 * spellings, `ratelimit-reset`, the `reset=`/`t=` of `RateLimit`). Undefined when it says neither.
 */
export const retryAfterSeconds = (headers: Readonly<Record<string, string>>, now: number, status: number): number | undefined => {
  const v = headers["retry-after"]
  if (v !== undefined) {
    if (/^\d+$/.test(v.trim())) return Number(v.trim())
    const date = Date.parse(v)
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - now) / 1000))
  }
  if (!rateLimited(status, headers)) return undefined
  for (const h of RESET_HEADERS) {
    const value = headers[h]
    const seconds = value === undefined ? undefined : secondsUntil(value, now)
    if (seconds !== undefined) return seconds
  }
  const structured = /(?:^|[\s,;])(?:reset|t)=(\d+)/.exec(headers["ratelimit"] ?? "")?.[1]
  return structured === undefined ? undefined : Number(structured)
}
