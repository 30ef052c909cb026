/**
 * The server side of MCP's older HTTP+SSE transport (protocol 2024-11-05), for clients that do not speak
 * Streamable HTTP yet: `GET /sse` opens the session's event stream, whose first event (`endpoint`) names where
 * to POST messages (`/messages?sessionId=…`); each POST is answered 202, and every answer, notification and
 * server request goes out on the stream. The session lives as long as its stream: when the client closes it,
 * the session ends and its calls in flight are cancelled (their upstream requests aborted), as on `/mcp`.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js"
import { type ResponseLike, writeError } from "../Security/Inbound.ts"
import { event, keepAlive, kindOf, messageExtra, readMessages, type RequestLike, SSE_HEADERS } from "./SessionTransport.ts"

export const LEGACY_STREAM_PATH = "/sse"
export const LEGACY_MESSAGES_PATH = "/messages"

export interface LegacySseOptions {
  readonly keepAliveMs?: number
  /** A request arrived / was answered (or dropped): the server's count of calls in flight. */
  readonly begin?: () => void
  readonly end?: () => void
  readonly onsessionclosed?: (id: string) => void
  /** Who the inbound checks admitted when the stream opened (per-client limits): `authInfo.clientId` of its requests. */
  readonly client?: string
}

export class LegacySseTransport implements Transport {
  readonly sessionId: string
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: Transport["onmessage"]

  private readonly stream: ResponseLike
  private readonly options: LegacySseOptions
  /** Requests not answered yet. */
  private readonly pending = new Set<RequestId>()
  private closed = false

  constructor(sessionId: string, stream: ResponseLike, options: LegacySseOptions = {}) {
    this.sessionId = sessionId
    this.stream = stream
    this.options = options
  }

  /** Opens the event stream and tells the client where to send its messages. */
  async start(): Promise<void> {
    this.stream.writeHead(200, SSE_HEADERS)
    this.stream.write(`event: endpoint\ndata: ${LEGACY_MESSAGES_PATH}?sessionId=${encodeURIComponent(this.sessionId)}\n\n`)
    keepAlive(this.stream, this.options.keepAliveMs)
    this.stream.once("close", () => void this.close())
  }

  /** One POST to the messages endpoint: 202 at once; the answers go out on the stream. */
  handlePost(req: RequestLike, res: ResponseLike, body: unknown): void {
    if (this.closed) return writeError(res, 404, -32001, "Session not found: its event stream is closed; open a new one")
    const read = readMessages(req, res, body)
    if (read === undefined) return
    const { messages, kinds } = read
    res.writeHead(202, { "content-type": "text/plain" })
    res.end("Accepted")
    const extra = messageExtra(req, this.options.client)
    for (let i = 0; i < messages.length; i++) {
      if (kinds[i] === "request") {
        const id = (messages[i] as { id: RequestId }).id
        if (!this.pending.has(id)) {
          this.pending.add(id)
          this.options.begin?.()
        }
      }
      this.onmessage?.(messages[i]!, extra)
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return // the client went away
    if (kindOf(message) === "response" && this.pending.delete((message as { id: RequestId }).id)) this.options.end?.()
    this.stream.write(event(message))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const _ of this.pending) this.options.end?.()
    this.pending.clear()
    this.stream.end()
    this.options.onsessionclosed?.(this.sessionId)
    // the server's close cancels the calls still running (their upstream requests are aborted)
    this.onclose?.()
  }
}
