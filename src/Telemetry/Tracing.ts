/**
 * Traces without the OpenTelemetry SDK: Effect spans as small objects with AWS X-Ray-format ids and the
 * standard OTEL_TRACES_SAMPLER samplers, exported over OTLP/HTTP in batches with node:http: protobuf by default
 * (the OTLP default), JSON when asked.
 *
 * Why not the OTel SDK (the first design): through @effect/opentelemetry every Effect span became an SDK
 * span (context objects, attribute limits, hrtime conversions, a span processor, then a second conversion to
 * OTLP objects and the wire format), and each went through Effect's generic span machinery. A traced tool
 * call cost about 40 % more instructions than an untraced one. Here a span is a plain object until its batch
 * is written, and an unsampled one is only the trace context; the OTLP document is the same.
 *
 * Standard variables read here (as the SDK did): OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,
 * OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION, OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL
 * (http/protobuf or http/json; grpc gets a warning), OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
 * OTEL_BSP_MAX_QUEUE_SIZE and OTEL_RESOURCE_ATTRIBUTES.
 */
import { Cause, Config, Context, Effect, Exit, Layer, Option, Tracer } from "effect"
import * as OtlpResource from "effect/observability/OtlpResource"
import { randomFillSync } from "node:crypto"
import { Agent as HttpAgent, request as httpRequest } from "node:http"
import { Agent as HttpsAgent, request as httpsRequest } from "node:https"
import { promisify } from "node:util"
import { gzip } from "node:zlib"
import type { Settings } from "../AppConfig.ts"
import { type FixedAttributes, SpanStarter, type StartSpan, TraceFlush } from "../Telemetry.ts"
import { ProtoWriter, writeJsonAttributes, writeKeyValue } from "./OtlpProtobuf.ts"

const gzipAsync = promisify(gzip)

// ids: 32-bit random words from a refilled pool (one getrandom call per 256 spans). A span keeps its ids as
// words, written into a batch as they are; their hex text is made only when something reads it (the trace
// headers of an upstream request, a log line), so most spans never have any.
const pool = new Uint32Array(1024)
let used = pool.length
const randomWord = (): number => {
  if (used === pool.length) {
    randomFillSync(pool)
    used = 0
  }
  return pool[used++]!
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))
/** A word as 8 hex digits (big-endian, as ids are written). */
const hex8 = (w: number): string => HEX[w >>> 24]! + HEX[(w >>> 16) & 255]! + HEX[(w >>> 8) & 255]! + HEX[w & 255]!

/** A 128-bit trace id as four 32-bit words, shared by the spans of a trace. */
export class TraceId {
  readonly w0: number
  readonly w1: number
  readonly w2: number
  readonly w3: number
  #hex: string | undefined

  constructor(w0: number, w1: number, w2: number, w3: number, hex?: string) {
    this.w0 = w0
    this.w1 = w1
    this.w2 = w2
    this.w3 = w3
    this.#hex = hex
  }

  get hex(): string {
    return this.#hex ??= hex8(this.w0) + hex8(this.w1) + hex8(this.w2) + hex8(this.w3)
  }

  /** A trace id from its 32 hex digits (a caller's, from `traceparent` or `X-Amzn-Trace-Id`). */
  static fromHex(hex: string): TraceId {
    const word = (i: number) => parseInt(hex.slice(i, i + 8), 16) >>> 0
    return new TraceId(word(0), word(8), word(16), word(24), hex)
  }
}

/** An AWS X-Ray-compatible trace id: the epoch seconds in the first word (8 hex digits), then 96 random bits. */
export const newTraceId = (nowMs: number = Date.now()): TraceId =>
  new TraceId(Math.floor(nowMs / 1000) >>> 0, randomWord(), randomWord(), randomWord())

/** Whether a span is recorded: given its parent (undefined for a root) and its trace id. */
export type Sampler = (parent: Tracer.AnySpan | undefined, traceId: TraceId) => boolean

/**
 * The trace-id-ratio decision of the OTel SDKs (the XOR of the id's 32-bit words against ratio × 2^32), so a
 * trace gets the same decision here as in other services sampling at the same ratio.
 */
const ratioSampler = (ratio: number): Sampler => {
  if (ratio >= 1) return () => true
  if (ratio <= 0) return () => false
  const bound = Math.floor(ratio * 0xffffffff)
  return (_parent, id) => ((id.w0 ^ id.w1 ^ id.w2 ^ id.w3) >>> 0) < bound
}

/** The sampler OTEL_TRACES_SAMPLER names; the parentbased ones follow the parent's decision when there is one. */
export const makeSampler = (name: Settings["telemetry"]["sampler"], ratio: number): Sampler => {
  const parentBased = (root: Sampler): Sampler => (parent, traceId) => parent !== undefined ? parent.sampled : root(parent, traceId)
  switch (name) {
    case "always_on":
      return () => true
    case "always_off":
      return () => false
    case "traceidratio":
      return ratioSampler(ratio)
    case "parentbased_always_on":
      return parentBased(() => true)
    case "parentbased_always_off":
      return parentBased(() => false)
    case "parentbased_traceidratio":
      return parentBased(ratioSampler(ratio))
  }
}

const NO_LINKS: ReadonlyArray<Tracer.SpanLink> = []

/** A span: plain fields until it ends; sampled ones go to `done` when they end, unsampled ones nowhere. */
class Span implements Tracer.Span {
  readonly _tag = "Span"
  readonly name: string
  /** The span id as two words, never both zero. */
  readonly s0: number
  readonly s1: number
  #spanId: string | undefined
  readonly trace: TraceId
  readonly parent: Option.Option<Tracer.AnySpan>
  readonly annotations: Context.Context<never>
  links: ReadonlyArray<Tracer.SpanLink>
  readonly sampled: boolean
  readonly kind: Tracer.SpanKind
  /** The attributes set on this span; those of `fixed` (its tool's) come first in `attributes`. */
  readonly own = new Map<string, unknown>()
  readonly fixed: FixedAttributes | undefined
  status: Tracer.SpanStatus
  events: Array<readonly [name: string, time: bigint, attributes: Record<string, unknown> | undefined]> | undefined
  readonly done: (span: Span) => void

  constructor(
    name: string,
    kind: Tracer.SpanKind,
    parent: Tracer.AnySpan | undefined,
    startTime: bigint,
    sampler: Sampler,
    done: (span: Span) => void,
    links: ReadonlyArray<Tracer.SpanLink> = NO_LINKS,
    annotations: Context.Context<never> = Context.empty(),
    fixed?: FixedAttributes
  ) {
    this.name = name
    this.fixed = fixed
    this.kind = kind
    this.parent = parent === undefined ? Option.none() : Option.some(parent)
    this.annotations = annotations
    this.links = links
    let s0 = randomWord()
    let s1 = randomWord()
    while (s0 === 0 && s1 === 0) {
      s0 = randomWord()
      s1 = randomWord()
    }
    this.s0 = s0
    this.s1 = s1
    this.trace = parent instanceof Span ? parent.trace : parent !== undefined ? TraceId.fromHex(parent.traceId) : newTraceId()
    this.sampled = sampler(parent, this.trace)
    this.status = { _tag: "Started", startTime }
    this.events = undefined
    this.done = done
  }

  get spanId(): string {
    return this.#spanId ??= hex8(this.s0) + hex8(this.s1)
  }

  get traceId(): string {
    return this.trace.hex
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Ended") return
    // a success keeps no value: an ended span waits up to a batch interval for export, and holding each call's
    // result (or upstream response) that long promoted them all to the old generation
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit: Exit.isSuccess(exit) ? Exit.void : exit }
    if (this.sampled) this.done(this)
  }

  get attributes(): ReadonlyMap<string, unknown> {
    return this.fixed === undefined ? this.own : new Map([...this.fixed.entries, ...this.own])
  }

  attribute(key: string, value: unknown): void {
    if (this.status._tag !== "Ended") this.own.set(key, value)
  }

  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    if (this.status._tag !== "Ended") (this.events ??= []).push([name, startTime, attributes])
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    if (this.status._tag !== "Ended") this.links = [...this.links, ...links]
  }
}

/**
 * Our spans, for the instrumentation (`SpanStarter`) and as Effect's Tracer (spans of `Effect.fn` and
 * `Effect.withSpan` elsewhere), with `done` receiving each sampled span as it ends.
 */
export const makeSpans = (sampler: Sampler, done: (span: Tracer.Span) => void) => {
  const start: StartSpan = (name, kind, parent, startTime, fixed) =>
    new Span(name, kind, parent, startTime, sampler, done, NO_LINKS, Context.empty(), fixed)
  const tracer = Tracer.make({
    span: (o) => new Span(o.name, o.kind, Option.getOrUndefined(o.parent), o.startTime, sampler, done, o.links, o.annotations)
  })
  return { start, tracer }
}

const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const

/**
 * A string as JSON text: most attribute values need no escapes, and checking that is several times cheaper
 * than JSON.stringify on a short string (~30 vs ~160 ns), which dominated writing a span.
 */
const quote = (text: string): string => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text)
  }
  return `"${text}"`
}

/** `{"key":<key>,"value":` of each attribute key seen (keys come from code, so there are few). */
const keyPrefixes = new Map<string, string>()
const keyPrefix = (key: string): string => {
  let prefix = keyPrefixes.get(key)
  if (prefix === undefined) {
    prefix = `{"key":${quote(key)},"value":`
    if (keyPrefixes.size < 1024) keyPrefixes.set(key, prefix)
  }
  return prefix
}

/** An attribute value as OTLP/JSON AnyValue. */
const valueJson = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return `{"stringValue":${quote(value)}}`
    case "boolean":
      return `{"boolValue":${value}}`
    case "number":
      return Number.isSafeInteger(value)
        ? `{"intValue":${value}}`
        : Number.isFinite(value) ? `{"doubleValue":${value}}` : `{"doubleValue":"${value}"}`
    case "bigint":
      return `{"intValue":"${value}"}`
    default:
      return Array.isArray(value)
        ? `{"arrayValue":{"values":[${value.map(valueJson).join(",")}]}}`
        : `{"stringValue":${quote(String(value))}}`
  }
}

/**
 * Attributes as an OTLP/JSON KeyValue list, after `fixed` (comma-separated KeyValues) when given (Map.forEach:
 * iterating entries would allocate one pair each).
 */
const attributesJson = (attributes: ReadonlyMap<string, unknown>, fixed = ""): string => {
  let out = fixed
  attributes.forEach((value, key) => {
    out += `${out === "" ? "" : ","}${keyPrefix(key)}${valueJson(value)}}`
  })
  return `[${out}]`
}

const recordJson = (attributes: Record<string, unknown> | undefined): string =>
  attributesJson(new Map(Object.entries(attributes ?? {})))

const fixedJson = (fixed: FixedAttributes | undefined): string | undefined =>
  fixed === undefined ? undefined : fixed.json ??= attributesJson(new Map(fixed.entries)).slice(1, -1)

/** One ended span as OTLP/JSON, written directly (building objects to stringify cost twice as much). */
const spanJson = (span: Span): string => {
  const status = span.status as Extract<Tracer.SpanStatus, { _tag: "Ended" }>
  let attributes: ReadonlyMap<string, unknown> = span.own
  let events = ""
  const event = (name: string, time: bigint, attributes: string) => {
    events += `${events === "" ? "" : ","}{"name":${quote(name)},"timeUnixNano":"${time}","attributes":${attributes}}`
  }
  for (const [name, time, attrs] of span.events ?? []) event(name, time, recordJson(attrs))
  let otlpStatus: string
  if (Exit.isSuccess(status.exit)) {
    otlpStatus = `{"code":1}` // OK
  } else if (Cause.hasInterruptsOnly(status.exit.cause)) {
    otlpStatus = `{"code":0}` // UNSET: cancelled, not failed
    attributes = new Map([...attributes, ["effect.fiber.interrupted", true]])
  } else {
    const errors = Cause.prettyErrors(status.exit.cause)
    otlpStatus = `{"code":2,"message":${quote(errors[0]?.message ?? "failed")}}`
    for (const error of errors) {
      event("exception", status.endTime, attributesJson(new Map([["exception.type", error.name], ["exception.message", error.message]])))
    }
  }
  const parent = Option.getOrUndefined(span.parent)
  let links = ""
  for (const link of span.links) {
    links += `${links === "" ? "" : ","}{"traceId":"${link.span.traceId}","spanId":"${link.span.spanId}","attributes":${
      recordJson(link.attributes)
    }}`
  }
  return `{"traceId":"${span.traceId}","spanId":"${span.spanId}",${parent !== undefined ? `"parentSpanId":"${parent.spanId}",` : ""}` +
    `"name":${quote(span.name)},"kind":${KIND[span.kind]},"startTimeUnixNano":"${status.startTime}",` +
    `"endTimeUnixNano":"${status.endTime}","attributes":${attributesJson(attributes, fixedJson(span.fixed))},"events":[${events}],` +
    `"status":${otlpStatus},"links":[${links}]}`
}

/** A span attribute as a KeyValue of Span.attributes (a Map.forEach callback, the writer as `this`). */
function writeSpanAttribute(this: ProtoWriter, value: unknown, key: string): void {
  writeKeyValue(this, 9, key, value)
}

/** Fixed attributes as the bytes of their KeyValue fields, written once per tool. */
const fixedProtobuf = (fixed: FixedAttributes): Uint8Array => {
  const w = new ProtoWriter(256)
  for (const [key, value] of fixed.entries) writeKeyValue(w, 9, key, value)
  return w.take()
}

const writeRecord = (w: ProtoWriter, field: number, attributes: Record<string, unknown> | undefined): void => {
  for (const key in attributes) writeKeyValue(w, field, key, attributes[key])
}

const writeEvent = (w: ProtoWriter, name: string, time: bigint, attributes: Record<string, unknown> | undefined): void => {
  const mark = w.begin(11)
  w.fixed64(1, time)
  w.string(2, name)
  writeRecord(w, 3, attributes)
  w.end(mark)
}

/** One ended span as a `spans` field of ScopeSpans (the same content as `spanJson`). */
const writeSpan = (w: ProtoWriter, span: Span): void => {
  const status = span.status as Extract<Tracer.SpanStatus, { _tag: "Ended" }>
  const mark = w.begin(2, 2)
  const trace = span.trace
  w.words(1, trace.w0, trace.w1, trace.w2, trace.w3)
  w.words(2, span.s0, span.s1)
  const parent = Option.getOrUndefined(span.parent)
  if (parent instanceof Span) w.words(4, parent.s0, parent.s1)
  else if (parent !== undefined) w.hex(4, parent.spanId)
  w.string(5, span.name)
  w.uint(6, KIND[span.kind])
  w.fixed64(7, status.startTime)
  w.fixed64(8, status.endTime)
  const fixed = span.fixed
  if (fixed !== undefined) w.bytes(fixed.protobuf ??= fixedProtobuf(fixed))
  span.own.forEach(writeSpanAttribute, w)
  if (span.events !== undefined) for (const [name, time, attrs] of span.events) writeEvent(w, name, time, attrs)
  let code = 1 // OK
  let message: string | undefined
  if (Exit.isFailure(status.exit)) {
    if (Cause.hasInterruptsOnly(status.exit.cause)) {
      code = 0 // UNSET: cancelled, not failed
      writeKeyValue(w, 9, "effect.fiber.interrupted", true)
    } else {
      const errors = Cause.prettyErrors(status.exit.cause)
      code = 2
      message = errors[0]?.message ?? "failed"
      for (const error of errors) {
        writeEvent(w, "exception", status.endTime, { "exception.type": error.name, "exception.message": error.message })
      }
    }
  }
  for (const link of span.links) {
    const l = w.begin(13)
    w.hex(1, link.span.traceId)
    w.hex(2, link.span.spanId)
    writeRecord(w, 4, link.attributes)
    w.end(l)
  }
  const s = w.begin(15)
  if (message !== undefined) w.string(2, message)
  if (code !== 0) w.uint(3, code)
  w.end(s)
  w.end(mark)
}

/** How a batch is written: OTLP/HTTP's two encodings, the resource and scope written once. */
export interface Encoding {
  readonly contentType: string
  readonly encode: (batch: ReadonlyArray<Span>) => string | Uint8Array
}

type OtlpJsonAttributes = ReadonlyArray<{ readonly key: string; readonly value: unknown }>
interface Head {
  readonly resource: { readonly attributes: OtlpJsonAttributes }
  readonly scope: { readonly name: string; readonly version: string }
}

export const jsonEncoding = (head: Head): Encoding => {
  const prefix = `{"resourceSpans":[{"resource":${JSON.stringify(head.resource)},"scopeSpans":[{"scope":${
    JSON.stringify(head.scope)
  },"spans":[`
  return { contentType: "application/json", encode: (batch) => `${prefix}${batch.map(spanJson).join(",")}]}]}]}` }
}

/**
 * ExportTraceServiceRequest in protobuf, in one writer reused batch after batch: the body it returns is a view
 * of the writer's memory, valid until the next batch is written (the exporter sends one batch at a time).
 */
export const protobufEncoding = (head: Head): Encoding => {
  const w = new ProtoWriter(1024)
  writeJsonAttributes(w, 1, head.resource.attributes)
  const resource = w.take()
  w.reset()
  w.string(1, head.scope.name)
  w.string(2, head.scope.version)
  const scope = w.take()
  const writer = new ProtoWriter()
  return {
    contentType: "application/x-protobuf",
    encode: (batch) => {
      writer.reset()
      const resourceSpans = writer.begin(1)
      writer.raw(1, resource)
      const scopeSpans = writer.begin(2)
      writer.raw(1, scope)
      for (const span of batch) writeSpan(writer, span)
      writer.end(scopeSpans)
      writer.end(resourceSpans)
      return writer.buf.subarray(0, writer.pos)
    }
  }
}

/** `k1=v1,k2=v2` (values URL-encoded), as OTEL_EXPORTER_OTLP_HEADERS is written. */
export const parseHeaderList = (text: string): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const part of text.split(",")) {
    const eq = part.indexOf("=")
    if (eq <= 0) continue
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    try {
      headers[key] = decodeURIComponent(value)
    } catch {
      headers[key] = value
    }
  }
  return headers
}

/** The first of the standard variables that is set (signal-specific first): its name and text. */
const firstSet = (...names: Array<string>) =>
  Config.all(names.map((name) => Config.option(Config.String(name)).pipe(Config.map(Option.map((v) => [name, v.trim()] as const)))))
    .pipe(Config.map((values) => Option.firstSomeOf(values)))

/**
 * A whole-number setting of at least 1; unset gives the default, and an invalid value too, with a warning
 * (as the OTel SDKs treat their variables: a bad one must not stop the server).
 */
const wholeNumber = (found: Option.Option<readonly [string, string]>, fallback: number) => {
  if (Option.isNone(found)) return Effect.succeed(fallback)
  const [name, text] = found.value
  const n = Number(text)
  return Number.isInteger(n) && n >= 1
    ? Effect.succeed(n)
    : Effect.as(Effect.logWarning(`${name}=${text} is not a whole number of at least 1; using ${fallback}`), fallback)
}

interface ExporterOptions {
  readonly url: string
  readonly headers: Record<string, string>
  readonly gzip: boolean
  readonly delayMs: number
  readonly batchSize: number
  readonly maxQueue: number
  readonly timeoutMs: number
  readonly encoding: Encoding
  readonly warn: (reason: string) => void
}

const agents = { "http:": new HttpAgent({ keepAlive: true, maxSockets: 1 }), "https:": new HttpsAgent({ keepAlive: true, maxSockets: 1 }) }

/**
 * POSTs a batch and gives the answer's status, within `timeoutMs`. Through node:http, not undici: upstream calls
 * go through undici, and a second, differently shaped use of its classes (another request API, a body, an
 * abort signal) made V8 deoptimize the hot upstream path and recompile it more generic, which cost every
 * traced call far more than its spans did.
 */
const post = (target: URL, headers: Record<string, string>, body: string | Uint8Array, timeoutMs: number, retry = true): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    const send = target.protocol === "https:" ? httpsRequest : httpRequest
    const req = send(target, {
      method: "POST",
      headers: { ...headers, "content-length": String(typeof body === "string" ? Buffer.byteLength(body) : body.length) },
      agent: agents[target.protocol as keyof typeof agents]
    }, (res) => {
      res.on("error", fail)
      res.on("end", () => {
        clearTimeout(timer)
        resolve(res.statusCode ?? 0)
      })
      res.resume()
    })
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    function fail(e: Error) {
      clearTimeout(timer)
      reject(e)
    }
    req.on("error", (e: NodeJS.ErrnoException) => {
      // a kept-alive connection the collector closed meanwhile: once more on a new one
      if (retry && req.reusedSocket && e.code === "ECONNRESET") {
        clearTimeout(timer)
        resolve(post(target, headers, body, timeoutMs, false))
      } else {
        fail(e)
      }
    })
    req.end(body)
  })

/** Statuses after which a collector may take the same batch later (OTLP/HTTP); any other refusal drops it. */
const RETRYABLE = new Set([429, 502, 503, 504])

const spanCount = (n: number) => `${n} span${n === 1 ? "" : "s"}`

/** What a refusal usually means, for the warning. */
const hint = (status: number, encoding: Encoding): string => {
  switch (status) {
    case 404:
      return " (no OTLP receiver at that path: OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL and gets /v1/traces " +
        "added; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given)"
    case 401:
    case 403:
      return " (the collector wants credentials: OTEL_EXPORTER_OTLP_HEADERS)"
    case 415:
      return ` (the collector does not take ${encoding.contentType}: set OTEL_EXPORTER_OTLP_PROTOCOL=${
        encoding.contentType === "application/json" ? "http/protobuf" : "http/json"
      })`
    default:
      return ""
  }
}

/**
 * Batches of ended spans POSTed to an OTLP/HTTP endpoint, like the SDK's batch span processor: a batch goes when
 * `batchSize` spans wait or every `delayMs`; one export is in flight at a time, bounded by `timeoutMs`; a
 * batch that failed for a passing reason (no answer, 429, 502-504) goes back to the front of the queue, one
 * refused otherwise is dropped; at most `maxQueue` spans wait (the newest are dropped).
 * A failure is logged once per minute, never with the endpoint's headers.
 */
export class BatchExporter {
  readonly #queue: Array<Span> = []
  readonly #timer: NodeJS.Timeout
  #sending: Promise<boolean> | undefined
  #quietUntil = 0
  readonly #options: ExporterOptions
  readonly #target: URL

  constructor(options: ExporterOptions) {
    this.#options = options
    this.#target = new URL(options.url)
    this.#timer = setInterval(() => void this.#send(), options.delayMs)
    this.#timer.unref()
  }

  push(span: Span): void {
    if (this.#queue.length >= this.#options.maxQueue) return
    this.#queue.push(span)
    if (this.#queue.length >= this.#options.batchSize && this.#sending === undefined) void this.#send()
  }

  /** Sends everything queued now (for the end of a Lambda invocation, or shutdown); stops at a refusal. */
  async flush(): Promise<void> {
    if (this.#sending !== undefined) await this.#sending
    while (this.#queue.length > 0 && (await this.#send())) {
      // next batch
    }
  }

  close(): Promise<void> {
    clearInterval(this.#timer)
    return this.flush()
  }

  /** Sends one batch (or joins the one in flight); true when it is done with (delivered, or dropped as refused for good). */
  #send(): Promise<boolean> {
    if (this.#sending !== undefined) return this.#sending
    if (this.#queue.length === 0) return Promise.resolve(true)
    const o = this.#options
    const batch = this.#queue.splice(0, o.batchSize)
    let encoded: string | Uint8Array
    try {
      encoded = o.encoding.encode(batch)
    } catch (e) {
      // an attribute value whose text cannot be had (a throwing toString): the batch is lost, not the server
      this.#warn(`a batch (${spanCount(batch.length)}) could not be written (${(e as Error).message}) and was dropped`)
      return Promise.resolve(true)
    }
    this.#sending = (async () => {
      try {
        const body = o.gzip ? await gzipAsync(encoded) : encoded
        const status = await post(
          this.#target,
          { ...o.headers, "content-type": o.encoding.contentType, ...(o.gzip ? { "content-encoding": "gzip" } : {}) },
          body,
          o.timeoutMs
        )
        if (status < 300) return true
        if (RETRYABLE.has(status)) {
          this.#failed(batch, `HTTP ${status}`)
        } else {
          // the same batch would be refused again, and would hold up every batch behind it
          this.#warn(`HTTP ${status}${hint(status, o.encoding)}; ${spanCount(batch.length)} dropped`)
          return true
        }
      } catch (e) {
        this.#failed(batch, (e as Error).message)
      } finally {
        this.#sending = undefined
      }
      return false
    })()
    return this.#sending
  }

  /** A refused batch goes back to the front; past the queue limit the newest spans are dropped. */
  #failed(batch: Array<Span>, reason: string) {
    this.#queue.unshift(...batch)
    if (this.#queue.length > this.#options.maxQueue) this.#queue.length = this.#options.maxQueue
    this.#warn(`${reason}; the spans wait in a bounded queue, the newest are dropped when it is full`)
  }

  /** At most one warning a minute. */
  #warn(reason: string) {
    const now = Date.now()
    if (now < this.#quietUntil) return
    this.#quietUntil = now + 60_000
    this.#options.warn(reason)
  }
}

/** Tracer.Tracer and SpanStarter exporting to `url`, and TraceFlush; the queue is flushed when the layer closes. */
export const layer = (options: {
  readonly url: string
  readonly serviceName: string
  readonly serviceVersion: string
  readonly sampler: Sampler
}) =>
  Layer.unwrap(
    Effect.gen(function*() {
      const env = yield* Config.all({
        headers: firstSet("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
        timeout: firstSet("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        compression: firstSet("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
        protocol: firstSet("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        delay: firstSet("OTEL_BSP_SCHEDULE_DELAY"),
        batchSize: firstSet("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        maxQueue: firstSet("OTEL_BSP_MAX_QUEUE_SIZE")
      })
      const timeoutMs = yield* wholeNumber(env.timeout, 10_000)
      const delayMs = yield* wholeNumber(env.delay, 5000)
      const batchSize = yield* wholeNumber(env.batchSize, 512)
      const maxQueue = yield* wholeNumber(env.maxQueue, 2048)
      const compression = Option.getOrUndefined(env.compression)
      if (compression !== undefined && compression[1] !== "gzip" && compression[1] !== "none") {
        yield* Effect.logWarning(`${compression[0]}=${compression[1]} is neither gzip nor none; sending uncompressed`)
      }
      const protocol = Option.getOrUndefined(env.protocol)
      if (protocol !== undefined && protocol[1] !== "http/protobuf" && protocol[1] !== "http/json") {
        yield* Effect.logWarning(
          `${protocol[0]}=${protocol[1]}: spans are sent over OTLP/HTTP (http/protobuf, or http/json when asked), ` +
            "which collectors take on their OTLP/HTTP port (4318), not the gRPC one (4317); sending http/protobuf"
        )
      }
      const resource = yield* OtlpResource.fromConfig({ serviceName: options.serviceName, serviceVersion: options.serviceVersion })
      const head = { resource, scope: { name: "openapi-mcp-server", version: options.serviceVersion } }
      // origin and path only: a URL may carry credentials in its user info or query
      const shown = URL.canParse(options.url) ? `${new URL(options.url).origin}${new URL(options.url).pathname}` : "(invalid URL)"
      yield* Effect.logInfo("tracing on: spans go to the OTLP endpoint").pipe(Effect.annotateLogs({ endpoint: shown }))
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const exporter = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new BatchExporter({
            url: options.url,
            headers: Option.match(env.headers, { onNone: () => ({}), onSome: ([, text]) => parseHeaderList(text) }),
            gzip: compression?.[1] === "gzip",
            delayMs,
            batchSize,
            maxQueue,
            timeoutMs,
            encoding: protocol?.[1] === "http/json" ? jsonEncoding(head) : protobufEncoding(head),
            warn: (reason) => runFork(Effect.logWarning(`opentelemetry: span export to ${shown} failed: ${reason}`))
          })
        ),
        (exporter) => Effect.promise(() => exporter.close()).pipe(Effect.timeoutOption("3 seconds"))
      )
      const { start, tracer } = makeSpans(options.sampler, (span) => exporter.push(span as Span))
      return Layer.mergeAll(
        Layer.succeed(Tracer.Tracer, tracer),
        Layer.succeed(SpanStarter, start),
        Layer.succeed(TraceFlush, Effect.promise(() => exporter.flush()).pipe(Effect.timeoutOption("3 seconds"), Effect.asVoid))
      )
    })
  )
