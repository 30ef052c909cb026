/**
 * The server side of MCP Streamable HTTP for one session (or one stateless POST), on Node's own request and
 * response objects. It replaces the SDK's transport, which turns every request into a web Request and
 * answers every POST with an event stream.
 *
 * A POST that carries requests is answered as JSON once its responses are ready, unless the server has
 * something else to send on it first (a progress notification, a confirmation request): then the answer
 * turns into an event stream, which ends after the last response. Calls that need no stream (nearly all)
 * cost one plain JSON response. A POST with only notifications or responses gets 202. GET opens the
 * session's stream for messages unrelated to a request (tools/list_changed); DELETE ends the session.
 * A client that disconnects before its answer cancels its requests (the upstream calls are aborted). An event
 * stream can resume (MCP 2025-11-25 clients, in a session): its events are numbered and kept, and when its
 * connection breaks its requests go on for resumeMs, waiting for the client's GET with Last-Event-ID.
 */
import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js"
import { type JSONRPCMessage, type RequestId, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js"
import type { IncomingMessage } from "node:http"
import { gzip } from "node:zlib"
import { type ResponseLike, writeError } from "../Security/Inbound.ts"

/** What the transport reads of a request: Node's IncomingMessage, or the Lambda handler's event. */
export type RequestLike = Pick<IncomingMessage, "method" | "headers">

const MAX_BATCH = 100

type Kind = "request" | "notification" | "response" | undefined

/** What a message is, by its shape (the protocol layer validates it further). */
export const kindOf = (m: unknown): Kind => {
  if (typeof m !== "object" || m === null || Array.isArray(m) || (m as { jsonrpc?: unknown }).jsonrpc !== "2.0") return undefined
  const { id, method } = m as { id?: unknown; method?: unknown }
  const hasId = typeof id === "string" || typeof id === "number"
  if (typeof method === "string") return hasId ? "request" : id === undefined ? "notification" : undefined
  return hasId && ("result" in m || "error" in m) ? "response" : undefined
}

/**
 * The JSON-RPC messages of a POST (one, or a batch), with what each is; undefined once the POST has been
 * refused (not JSON, an empty or oversized batch, something that is not a JSON-RPC message).
 */
export const readMessages = (
  req: RequestLike,
  res: ResponseLike,
  body: unknown
): { readonly messages: Array<JSONRPCMessage>; readonly kinds: Array<Kind> } | undefined => {
  if (!(req.headers["content-type"] ?? "").includes("application/json")) {
    writeError(res, 415, -32000, "Unsupported Media Type: Content-Type must be application/json")
    return undefined
  }
  const messages = (Array.isArray(body) ? body : [body]) as Array<JSONRPCMessage>
  if (messages.length === 0 || messages.length > MAX_BATCH) {
    writeError(res, 400, -32600, `Invalid Request: a batch holds 1 to ${MAX_BATCH} messages`)
    return undefined
  }
  const kinds = messages.map(kindOf)
  if (kinds.includes(undefined)) {
    writeError(res, 400, -32700, "Parse error: Invalid JSON-RPC message")
    return undefined
  }
  return { messages, kinds }
}

const accepts = (req: RequestLike, type: string) => (req.headers.accept ?? "").includes(type)

/**
 * JSON answers at least this long go out gzipped to a client that accepts it (fetch does): a big API's tools/list
 * (2 MB for GitHub's) or a large API answer crosses the network in a fraction of the bytes, compressed on libuv's
 * thread pool. A tool call's usual answer is shorter and goes out as it is.
 */
export const COMPRESS_FROM = 16_384


/** What the request handlers get of an HTTP request: its headers, and who the inbound checks admitted (`authInfo.clientId`). */
export const messageExtra = (req: RequestLike, client: string | undefined) =>
  client === undefined
    ? { requestInfo: { headers: req.headers } }
    : { requestInfo: { headers: req.headers }, authInfo: { token: "", clientId: client, scopes: [] } }

/** Clients from this protocol version on read an event without data: the priming event of a stream that can resume. */
const RESUMABLE_FROM = "2025-11-25"

/**
 * The events of a stream that can resume, numbered from 1, for a client that reconnects with Last-Event-ID:
 * the last KEPT_EVENTS of them are kept. Event ids are `<stream>.<number>`.
 */
class EventLog {
  private readonly events: Array<string> = []
  /** The number of events[0]. */
  private first = 1
  readonly id: string
  constructor(id: string) {
    this.id = id
  }

  /** The event that opens a connection to the stream: the id of its last event so far (0: none), and no data. */
  get priming(): string {
    return `id: ${this.id}.${this.first + this.events.length - 1}\ndata: \n\n`
  }

  /** `message` as the stream's next event, numbered and kept. */
  add(message: JSONRPCMessage): string {
    const text = `id: ${this.id}.${this.first + this.events.length}\n${event(message)}`
    this.events.push(text)
    if (this.events.length > KEPT_EVENTS) {
      this.events.shift()
      this.first++
    }
    return text
  }

  /** The events after number `n`, or undefined when some of them are no longer kept. */
  after(n: number): ReadonlyArray<string> | undefined {
    return n + 1 < this.first ? undefined : this.events.slice(n + 1 - this.first)
  }
}

/**
 * The last events of a stream kept for a resume: a call's progress comes once a second, so a client that resumes
 * within MCP_STREAM_RESUME_SECONDS finds what it missed (and the answer, always the last event).
 */
const KEPT_EVENTS = 100
/** The id of the session's own stream (GET). */
const SESSION_STREAM = "0"

/** One POST that carried requests, until all of them are answered. */
interface Exchange {
  /** The response carrying the answer; undefined while a stream that can resume waits for its client to come back. */
  res: ResponseLike | undefined
  readonly batch: boolean
  readonly open: Set<RequestId>
  /** Answers held back for a JSON reply (all at once, when the last one is ready). */
  readonly answers: Array<JSONRPCMessage>
  /** What its client's Accept-Encoding says, with compression on: read for a long answer (see COMPRESS_FROM). */
  readonly encodings: string | undefined
  /** Its event stream, if it becomes one, can resume (a session, MCP_STREAM_RESUME_SECONDS, a 2025-11-25 client). */
  readonly resumable: boolean
  stream: boolean
  done: boolean
  /** The events of a stream that can resume. */
  log?: EventLog
  /** While its client is away: when its requests are cancelled and its events dropped. */
  timer?: ReturnType<typeof setTimeout> | undefined
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no"
}

/** A `: keepalive` comment on an open event stream every `ms` (15 s), so proxies do not cut it as idle, until it closes. */
export const keepAlive = (res: ResponseLike, ms = 15_000): void => {
  const timer = setInterval(() => res.write(": keepalive\n\n"), ms)
  timer.unref()
  res.once("close", () => clearInterval(timer))
}

export const event = (message: JSONRPCMessage) => `event: message\ndata: ${JSON.stringify(message)}\n\n`

export interface SessionOptions {
  /** How often an open event stream gets a `: keepalive` comment, so proxies do not cut it as idle (15 s). */
  readonly keepAliveMs?: number
  /** Makes the session id at initialize; absent in stateless mode (no session). */
  readonly sessionIdGenerator?: () => string
  readonly onsessioninitialized?: (id: string) => void
  readonly onsessionclosed?: (id: string) => void
  /**
   * How long (ms) the requests of an event stream that broke off keep running, their events kept, for the client
   * to resume the stream (GET with Last-Event-ID); 0 or absent: a broken stream cancels them at once.
   */
  readonly resumeMs?: number
  /**
   * Answers are always plain JSON: what the server sends about a request before its answer (progress) is
   * dropped rather than turning the answer into an event stream (the Lambda handler, whose result is returned
   * whole, so such messages could only arrive with the answer).
   */
  readonly jsonOnly?: boolean
  /** Gzips long JSON answers for clients that accept it (COMPRESS_FROM). */
  readonly compress?: boolean
  /**
   * A POST carrying requests began / was settled (answered, abandoned or closed): the calls in flight a shutdown
   * waits for, including those going on while their client is away (see resumeMs).
   */
  readonly begin?: () => void
  readonly end?: () => void
}

export class HttpSessionTransport implements Transport {
  sessionId: string | undefined
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: Transport["onmessage"]

  private readonly options: SessionOptions
  private readonly exchanges = new Map<RequestId, Exchange>()
  /** The streams that can resume, by their id. */
  private readonly streams = new Map<string, Exchange>()
  private streamCount = 0
  private standalone: ResponseLike | undefined
  /** The events of the session's stream, once a client that can resume opened it. */
  private standaloneLog: EventLog | undefined
  private initialized = false
  private closed = false

  constructor(options: SessionOptions = {}) {
    this.options = options
  }

  async start(): Promise<void> {}

  /**
   * Handles one HTTP request to the MCP endpoint; `body` is the parsed JSON of a POST; `client`: who the inbound
   * checks admitted (for per-client limits), handed to the request handlers as `authInfo.clientId`.
   */
  handle(req: RequestLike, res: ResponseLike, body: unknown, client?: string): void {
    if (this.closed) return writeError(res, 404, -32001, "Session not found")
    switch (req.method) {
      case "POST":
        return this.post(req, res, body, client)
      case "GET":
        return this.get(req, res)
      case "DELETE":
        void this.close().then(() => {
          res.writeHead(200)
          res.end()
        })
        return
      default:
        return writeError(res, 405, -32000, "Method not allowed", { allow: "GET, POST, DELETE" })
    }
  }

  private post(req: RequestLike, res: ResponseLike, body: unknown, client: string | undefined): void {
    if (!accepts(req, "application/json") || !accepts(req, "text/event-stream")) {
      return writeError(res, 406, -32000, "Not Acceptable: Client must accept both application/json and text/event-stream")
    }
    const read = readMessages(req, res, body)
    if (read === undefined) return
    const { messages, kinds } = read
    const batch = Array.isArray(body)
    const initializing = messages.some((m, i) => kinds[i] === "request" && (m as { method: string }).method === "initialize")
    if (initializing) {
      if (this.initialized && this.sessionId !== undefined) {
        return writeError(res, 400, -32600, "Invalid Request: Server already initialized")
      }
      if (messages.length > 1) return writeError(res, 400, -32600, "Invalid Request: Only one initialization request is allowed")
      this.sessionId = this.options.sessionIdGenerator?.()
      this.initialized = true
      if (this.sessionId !== undefined) this.options.onsessioninitialized?.(this.sessionId)
    }
    const version = req.headers["mcp-protocol-version"]
    if (!initializing && typeof version === "string" && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return writeError(res, 400, -32000,
        `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`)
    }
    const extra = messageExtra(req, client)
    if (!kinds.includes("request")) {
      res.writeHead(202)
      res.end()
      for (const m of messages) this.onmessage?.(m, extra)
      return
    }
    const exchange: Exchange = {
      res, batch, open: new Set(), answers: [], encodings: this.options.compress === true ? req.headers["accept-encoding"] : undefined,
      resumable: this.canResume(req), stream: false, done: false
    }
    this.options.begin?.()
    for (let i = 0; i < messages.length; i++) {
      if (kinds[i] === "request") {
        const id = (messages[i] as { id: RequestId }).id
        exchange.open.add(id)
        this.exchanges.set(id, exchange)
      }
    }
    res.once("close", () => this.disconnected(exchange, res))
    for (const m of messages) this.onmessage?.(m, extra)
  }

  /**
   * The response carrying `exchange` closed. A client that goes away before its answer cancels what it asked for;
   * on a stream that can resume, only if it has not come back within resumeMs.
   */
  private disconnected(exchange: Exchange, res: ResponseLike) {
    if (exchange.done || exchange.res !== res) return // answered, or carried on by a newer response
    exchange.res = undefined
    if (exchange.log === undefined) return this.abandon(exchange)
    exchange.timer = setTimeout(() => this.abandon(exchange), this.options.resumeMs)
    exchange.timer.unref()
  }

  /** Cancels the requests of an exchange whose client went away, and drops its events. */
  private abandon(exchange: Exchange) {
    if (exchange.log !== undefined) this.streams.delete(exchange.log.id)
    if (!this.settle(exchange)) return
    for (const id of exchange.open) {
      this.exchanges.delete(id)
      this.onmessage?.({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: "the client disconnected" } })
    }
  }

  /**
   * GET with Last-Event-ID: the client lost the stream that event was on, and gets what was sent on it since,
   * then the rest of it (and the answers) as they come, on this response.
   */
  private resume(res: ResponseLike, lastEventId: string) {
    const dot = lastEventId.lastIndexOf(".")
    const n = Number(lastEventId.slice(dot + 1))
    const stream = dot > 0 && Number.isSafeInteger(n) && n >= 0 ? lastEventId.slice(0, dot) : undefined
    if (stream === SESSION_STREAM && this.standaloneLog !== undefined) {
      const missed = this.standaloneLog.after(n)
      if (missed !== undefined) return this.openStandalone(res, missed)
    }
    const exchange = stream === undefined ? undefined : this.streams.get(stream)
    const missed = exchange?.log?.after(n)
    if (exchange === undefined || missed === undefined) {
      return writeError(res, 404, -32001,
        `Not found: no event stream of this session to resume from event ${JSON.stringify(lastEventId.slice(0, 64))}; ` +
          "it ended, or its client stayed away longer than MCP_STREAM_RESUME_SECONDS (its calls were then cancelled)")
    }
    clearTimeout(exchange.timer)
    exchange.timer = undefined
    const previous = exchange.res
    exchange.res = res
    previous?.end() // a connection its client gave up on
    this.openStream(res)
    for (const text of missed) res.write(text)
    if (exchange.done) {
      this.streams.delete(exchange.log!.id)
      res.end()
      return
    }
    res.once("close", () => this.disconnected(exchange, res))
  }

  private get(req: RequestLike, res: ResponseLike): void {
    if (!accepts(req, "text/event-stream")) {
      return writeError(res, 406, -32000, "Not Acceptable: Client must accept text/event-stream")
    }
    const lastEventId = req.headers["last-event-id"]
    if (typeof lastEventId === "string") return this.resume(res, lastEventId)
    if (this.standalone !== undefined) return writeError(res, 409, -32000, "Conflict: Only one SSE stream is allowed per session")
    if (this.standaloneLog === undefined && this.canResume(req)) this.standaloneLog = new EventLog(SESSION_STREAM)
    this.openStandalone(res, this.standaloneLog === undefined ? [] : [this.standaloneLog.priming])
  }

  /** The session's stream goes out on `res` from now on, starting with `first`. */
  private openStandalone(res: ResponseLike, first: ReadonlyArray<string>) {
    const previous = this.standalone
    this.standalone = res
    previous?.end() // a connection its client gave up on
    this.openStream(res)
    for (const text of first) res.write(text)
    res.flushHeaders()
    res.once("close", () => {
      if (this.standalone === res) this.standalone = undefined
    })
  }

  /** Whether the event streams of this request's client can resume (see RESUMABLE_FROM). */
  private canResume(req: RequestLike) {
    const version = req.headers["mcp-protocol-version"]
    return (this.options.resumeMs ?? 0) > 0 && typeof version === "string" && version >= RESUMABLE_FROM
  }

  private headers(base: Record<string, string>): Record<string, string> {
    return this.sessionId === undefined ? base : { ...base, "mcp-session-id": this.sessionId }
  }

  /** Starts an event stream on `res`, with a keep-alive comment every `keepAliveMs` until it closes. */
  private openStream(res: ResponseLike) {
    res.writeHead(200, this.headers(SSE_HEADERS))
    keepAlive(res, this.options.keepAliveMs)
  }

  /**
   * Turns a POST's answer into an event stream, with the answers held so far as its first events. A stream that
   * can resume starts with its priming event (an id, no data), so that the client can come back to it.
   */
  private toStream(exchange: Exchange, res: ResponseLike) {
    exchange.stream = true
    this.openStream(res)
    if (exchange.resumable) {
      exchange.log = new EventLog(String(++this.streamCount))
      this.streams.set(exchange.log.id, exchange)
      res.write(exchange.log.priming)
    }
    for (const answer of exchange.answers.splice(0)) this.emit(exchange, answer)
  }

  /** `message` as the next event of the exchange's stream (kept for a resume, on a stream that can resume). */
  private emit(exchange: Exchange, message: JSONRPCMessage) {
    const text = exchange.log?.add(message) ?? event(message)
    exchange.res?.write(text)
  }

  /** Marks the exchange done, once (false if it already was). */
  private settle(exchange: Exchange) {
    if (exchange.done) return false
    exchange.done = true
    this.options.end?.()
    return true
  }

  private finish(exchange: Exchange) {
    this.settle(exchange)
    if (exchange.stream) {
      // a client that is away gets the answers when it resumes (they are in the stream's log)
      if (exchange.res === undefined) return
      if (exchange.log !== undefined) this.streams.delete(exchange.log.id)
      exchange.res.end()
      return
    }
    const answers = exchange.answers
    const payload = JSON.stringify(exchange.batch ? answers : answers[0])
    const res = exchange.res!
    if (payload.length >= COMPRESS_FROM && exchange.encodings !== undefined && /\bgzip\b/i.test(exchange.encodings)) {
      gzip(payload, { level: 5 }, (error, zipped) => {
        if (error !== null) return this.writeJson(res, payload, undefined)
        this.writeJson(res, zipped, "gzip")
      })
      return
    }
    this.writeJson(res, payload, undefined)
  }

  /** A JSON answer with its length, so it goes out in one write (headers and body), not chunked. */
  private writeJson(res: ResponseLike, body: string | Buffer, encoding: "gzip" | undefined) {
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength
    res.writeHead(200, this.headers(encoding === undefined
      ? { "content-type": "application/json", "content-length": String(length) }
      : { "content-type": "application/json", "content-length": String(length), "content-encoding": encoding, vary: "accept-encoding" }))
    res.end(body)
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const kind = kindOf(message)
    if (kind === "response") {
      const id = (message as { id: RequestId }).id
      const exchange = this.exchanges.get(id)
      if (exchange === undefined) return // its client went away
      this.exchanges.delete(id)
      exchange.open.delete(id)
      if (exchange.done) return
      if (exchange.stream) this.emit(exchange, message)
      else exchange.answers.push(message)
      if (exchange.open.size === 0) this.finish(exchange)
      return
    }
    // a notification or a request of the server's: on the stream of the request it belongs to (dropped when that
    // request's client has gone), else on the session's stream
    const related = options?.relatedRequestId
    if (related === undefined) {
      // (kept even while no client has the stream open, for one that comes back)
      const text = this.standaloneLog?.add(message) ?? event(message)
      this.standalone?.write(text)
      return
    }
    const exchange = this.exchanges.get(related)
    if (exchange === undefined || exchange.done || this.options.jsonOnly) return
    // (an exchange without a stream has its response until it is done)
    if (!exchange.stream) this.toStream(exchange, exchange.res!)
    this.emit(exchange, message)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const exchange of this.streams.values()) clearTimeout(exchange.timer)
    this.streams.clear()
    for (const exchange of new Set(this.exchanges.values())) {
      if (!this.settle(exchange)) continue
      if (exchange.stream) exchange.res?.end()
      else writeError(exchange.res!, 503, -32000, "The session was closed before the answer was ready")
    }
    this.exchanges.clear()
    this.standalone?.end()
    this.standalone = undefined
    if (this.sessionId !== undefined) this.options.onsessionclosed?.(this.sessionId)
    this.onclose?.()
  }
}
