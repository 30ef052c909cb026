/**
 * MCP_MAX_CALLS_PER_MINUTE: a token bucket per client (the admitted client of an HTTP request: its token's
 * subject, else its address; over stdio the one client), so that a runaway agent cannot spend the API's quota or
 * flood it. The bucket holds a minute's calls and refills continuously; a call that finds it empty is refused
 * with the wait until the next one is allowed.
 */
export class CallLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private readonly perMinute: number

  constructor(perMinute: number) {
    this.perMinute = perMinute
  }

  /** Takes one call for `client` at `now` (epoch ms): undefined when it may go, else the milliseconds to wait. */
  take(client: string, now: number): number | undefined {
    let bucket = this.buckets.get(client)
    if (bucket === undefined) {
      if (this.buckets.size >= 10_000) this.dropFull(now)
      bucket = { tokens: this.perMinute, at: now }
      this.buckets.set(client, bucket)
    } else {
      bucket.tokens = this.filled(bucket, now)
      bucket.at = now
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return undefined
    }
    return Math.ceil((1 - bucket.tokens) * 60_000 / this.perMinute)
  }

  private filled(bucket: { tokens: number; at: number }, now: number) {
    return Math.min(this.perMinute, bucket.tokens + Math.max(0, now - bucket.at) * this.perMinute / 60_000)
  }

  /** Forgets the clients whose bucket is full again (as good as new), to bound memory. */
  private dropFull(now: number) {
    for (const [client, bucket] of this.buckets) if (this.filled(bucket, now) >= this.perMinute) this.buckets.delete(client)
  }
}
