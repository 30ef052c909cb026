/**
 * Per-origin circuit breakers, kept in this process and updated synchronously (no Effect machinery on the
 * call path). Closed: calls run, and a run of consecutive failures opens the circuit. Open: calls are refused
 * until the open time has passed. Half-open: the next call is a probe and the others are refused while it
 * runs; a successful probe closes the circuit, a failed one opens it again, an ignored or cancelled probe
 * frees the slot for the next caller. Outcomes of calls admitted before a transition change nothing.
 * Another replica's breaker for the same origin may open or close this one (`adopt`, CIRCUIT_BREAKER_BACKEND=redis).
 */
export type BreakerState = "Closed" | "HalfOpen" | "Open"

export type Admission =
  | { readonly _tag: "Run"; readonly generation: number }
  | { readonly _tag: "Open"; readonly retryAfterMs: number }
  | { readonly _tag: "Probing" }

export type Outcome = "success" | "failure" | "ignored"

interface Circuit {
  state: BreakerState
  /** Bumped on every transition: a late outcome from an older generation is dropped. */
  generation: number
  failures: number
  openedAt: number
  probing: boolean
}

export class Breakers {
  private readonly circuits = new Map<string, Circuit>()
  private readonly threshold: number
  private readonly openMs: number
  private readonly onTransition: (key: string, to: BreakerState, at: number, adopted: boolean) => void

  /** `onTransition` hears every change of state, when, and whether it was adopted from another replica. */
  constructor(threshold: number, openMs: number, onTransition: (key: string, to: BreakerState, at: number, adopted: boolean) => void) {
    this.threshold = threshold
    this.openMs = openMs
    this.onTransition = onTransition
  }

  private circuit(key: string): Circuit {
    let c = this.circuits.get(key)
    if (c === undefined) {
      c = { state: "Closed", generation: 0, failures: 0, openedAt: 0, probing: false }
      this.circuits.set(key, c)
    }
    return c
  }

  private move(key: string, c: Circuit, to: BreakerState, now: number, adopted = false) {
    c.state = to
    c.generation++
    c.failures = 0
    c.probing = false
    if (to === "Open") c.openedAt = now
    this.onTransition(key, to, now, adopted)
  }

  /**
   * Another replica's breaker for `key` opened at `at` (open here too, until `at` plus the open time, unless it
   * already is for longer), or closed after its probe succeeded (closed here too).
   */
  adopt(key: string, to: "Open" | "Closed", at: number, now: number): void {
    const c = this.circuit(key)
    if (to === "Closed") {
      if (c.state !== "Closed") this.move(key, c, "Closed", now, true)
      return
    }
    if (at + this.openMs <= now || (c.state === "Open" && c.openedAt >= at)) return
    this.move(key, c, "Open", at, true)
  }

  /** May a call to `key` run now? A call that runs must report its outcome with `record`. */
  admit(key: string, now: number): Admission {
    const c = this.circuit(key)
    if (c.state === "Open") {
      const left = c.openedAt + this.openMs - now
      if (left > 0) return { _tag: "Open", retryAfterMs: left }
      this.move(key, c, "HalfOpen", now)
    }
    if (c.state === "HalfOpen") {
      if (c.probing) return { _tag: "Probing" }
      c.probing = true
    }
    return { _tag: "Run", generation: c.generation }
  }

  record(key: string, generation: number, outcome: Outcome, now: number): void {
    const c = this.circuit(key)
    if (c.generation !== generation) return
    if (c.state === "HalfOpen") {
      if (outcome === "ignored") c.probing = false
      else this.move(key, c, outcome === "success" ? "Closed" : "Open", now)
      return
    }
    if (outcome === "success") c.failures = 0
    else if (outcome === "failure" && ++c.failures >= this.threshold) this.move(key, c, "Open", now)
  }
}
