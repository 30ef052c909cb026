/**
 * Trace context in and out, in the two formats a caller or an upstream may speak: W3C `traceparent` and
 * AWS X-Ray `X-Amzn-Trace-Id`. X-Ray ids are W3C ids written differently (`Root=1-<8 hex>-<24 hex>`), so one
 * span context converts both ways without loss. Parsing never throws: a malformed header is ignored.
 */
import { Tracer } from "effect"

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/
const HEX2 = /^[0-9a-f]{2}$/
const ZERO_TRACE = "00000000000000000000000000000000"
const ZERO_SPAN = "0000000000000000"

/** A W3C `traceparent` value (`00-<trace id>-<parent id>-<flags>`) as a parent span, or undefined. */
export const parseTraceparent = (value: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof value !== "string") return undefined
  const parts = value.trim().toLowerCase().split("-")
  const [version, traceId, spanId, flags] = parts
  if (version === undefined || traceId === undefined || spanId === undefined || flags === undefined) return undefined
  // version 00 has exactly four fields; later versions may append more (W3C: parse the first four)
  if (!HEX2.test(version) || version === "ff" || (version === "00" && parts.length !== 4)) return undefined
  if (!HEX32.test(traceId) || !HEX16.test(spanId) || !HEX2.test(flags)) return undefined
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 })
}

/**
 * An `X-Amzn-Trace-Id` value (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`)
 * as a parent span, or undefined. A header without `Parent` (as an ALB sends it) names no span to continue.
 * `Sampled=?` (undecided) counts as sampled.
 */
export const parseXRay = (value: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof value !== "string") return undefined
  let root: string | undefined
  let parent: string | undefined
  let sampled: string | undefined
  for (const part of value.split(";")) {
    const eq = part.indexOf("=")
    if (eq < 0) continue
    const key = part.slice(0, eq).trim().toLowerCase()
    const v = part.slice(eq + 1).trim().toLowerCase()
    if (key === "root") root = v
    else if (key === "parent") parent = v
    else if (key === "sampled") sampled = v
  }
  const m = root === undefined ? null : /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(root)
  if (m === null || parent === undefined || !HEX16.test(parent) || parent === ZERO_SPAN) return undefined
  const traceId = `${m[1]}${m[2]}`
  if (traceId === ZERO_TRACE) return undefined
  return Tracer.externalSpan({ traceId, spanId: parent, sampled: sampled !== "0" })
}

type HeaderBag = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const header = (headers: HeaderBag | undefined, name: string): string | undefined => {
  const v = headers?.[name]
  return typeof v === "string" ? v : v?.[0]
}

/**
 * The caller's span to continue, if it sent one: MCP `params._meta.traceparent` first (it belongs to this
 * very request), then the HTTP `traceparent` header, then `X-Amzn-Trace-Id`. Header names are lower case.
 */
export const callerSpan = (meta: unknown, headers: HeaderBag | undefined): Tracer.ExternalSpan | undefined => {
  if (typeof meta === "object" && meta !== null) {
    const fromMeta = parseTraceparent((meta as Record<string, unknown>)["traceparent"])
    if (fromMeta !== undefined) return fromMeta
  }
  if (headers === undefined) return undefined
  return parseTraceparent(header(headers, "traceparent")) ?? parseXRay(header(headers, "x-amzn-trace-id"))
}

interface SpanContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/** The W3C `traceparent` value naming this span. */
export const formatTraceparent = (span: SpanContext): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The `X-Amzn-Trace-Id` value naming this span. */
export const formatXRay = (span: SpanContext): string =>
  `Root=1-${span.traceId.slice(0, 8)}-${span.traceId.slice(8)};Parent=${span.spanId};Sampled=${span.sampled ? "1" : "0"}`

/** Outgoing headers that make a span the upstream's parent, in both formats. */
export interface TraceHeaders {
  readonly traceparent: string
  readonly "x-amzn-trace-id": string
}

/** The TraceHeaders naming this span. */
export const propagationHeaders = (span: SpanContext): TraceHeaders => ({
  traceparent: formatTraceparent(span),
  "x-amzn-trace-id": formatXRay(span)
})

/**
 * A URL fit for a span attribute: the query's values replaced by `REDACTED` (an API key may travel in the
 * query), names kept; user info in the authority redacted. Takes the request's URL without query and its `name=value` query items.
 */
export const redactedUrl = (url: string, query: ReadonlyArray<string>): string => {
  // credentials in the authority (https://user:pass@host) are secrets too
  const base = url.includes("@") ? url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, "$1REDACTED:REDACTED@") : url
  if (query.length === 0) return base
  let out = `${base}?`
  for (let i = 0; i < query.length; i++) {
    const item = query[i]!
    const eq = item.indexOf("=")
    out += `${i > 0 ? "&" : ""}${eq < 0 ? item : `${item.slice(0, eq)}=REDACTED`}`
  }
  return out
}
