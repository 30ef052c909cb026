/**
 * MCP over this process's stdin/stdout: one JSON-RPC message per line. Like the SDK's stdio transport, but a
 * line is only JSON-parsed here: the SDK's also runs every message through its zod union schema before the
 * protocol layer classifies (and validates) it again, which costs more than the parse on every call.
 *
 * Answers that are ready while other requests are still being worked on are written together, once per turn
 * of the event loop: one write to the pipe, and one wake-up of the client, for all the answers whose upstream
 * responses arrived together. The answer to the only open request is written at once, as before.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import type { Readable, Writable } from "node:stream"

/** A line longer than this (a runaway client) is refused rather than buffered without end. */
const MAX_LINE_BYTES = 64 * 1024 * 1024

export class StdioTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: Transport["onmessage"]

  private readonly input: Readable
  private readonly output: Writable
  private pending: Buffer | undefined
  private closed = false
  /** Requests received and not answered yet or cancelled (a hint: it only decides when answers are written). */
  private open = 0
  /** Lines waiting for this turn's write, and the promise that write settles. */
  private batch: { text: string; readonly written: Promise<void>; readonly resolve: () => void } | undefined

  constructor(input: Readable = process.stdin, output: Writable = process.stdout) {
    this.input = input
    this.output = output
  }

  private readonly onData = (chunk: Buffer) => {
    let data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    let newline: number
    while ((newline = data.indexOf(10)) !== -1) {
      const end = newline > 0 && data[newline - 1] === 13 ? newline - 1 : newline
      const line = data.toString("utf8", 0, end)
      data = data.subarray(newline + 1)
      if (line.trim() !== "") this.deliver(line)
    }
    if (data.length > MAX_LINE_BYTES) {
      this.pending = undefined
      this.onerror?.(new Error(`an incoming message is over ${MAX_LINE_BYTES} bytes without a newline: dropped`))
      return
    }
    this.pending = data.length > 0 ? data : undefined
  }

  private deliver(line: string) {
    let message: unknown
    try {
      message = JSON.parse(line)
    } catch (e) {
      this.onerror?.(new Error(`an incoming line is not JSON (${(e as Error).message})`))
      return
    }
    if (typeof message !== "object" || message === null || (message as { jsonrpc?: unknown }).jsonrpc !== "2.0") {
      this.onerror?.(new Error("an incoming line is not a JSON-RPC 2.0 message"))
      return
    }
    if ("method" in message) {
      if ("id" in message) this.open++
      // a cancelled request gets no answer (MCP); a cancel that comes after the answer only makes a later
      // answer go out on its own
      else if (message.method === "notifications/cancelled" && this.open > 0) this.open--
    }
    this.onmessage?.(message as JSONRPCMessage)
  }

  private readonly onError = (error: Error) => this.onerror?.(error)

  async start(): Promise<void> {
    this.input.on("data", this.onData)
    this.input.on("error", this.onError)
    // a process that exits in the same turn as an answer still writes it (pipe writes are synchronous on Linux)
    process.on("exit", this.flush)
  }

  send(message: JSONRPCMessage): Promise<void> {
    const line = `${JSON.stringify(message)}\n`
    if ("id" in message && !("method" in message) && this.open > 0) this.open--
    const batch = this.batch
    if (batch !== undefined) {
      batch.text += line
      if (this.open === 0) this.flush()
      return batch.written
    }
    if (this.open === 0) return this.write(line)
    let resolve!: () => void
    const written = new Promise<void>((r) => (resolve = r))
    this.batch = { text: line, written, resolve }
    setImmediate(this.flush)
    return written
  }

  private write(text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.output.write(text)) resolve()
      else this.output.once("drain", resolve)
    })
  }

  private readonly flush = () => {
    const batch = this.batch
    if (batch === undefined) return
    this.batch = undefined
    void this.write(batch.text).then(batch.resolve)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.input.off("data", this.onData)
    this.input.off("error", this.onError)
    if (this.input.listenerCount("data") === 0) this.input.pause()
    this.pending = undefined
    this.flush()
    process.off("exit", this.flush)
    this.onclose?.()
  }
}
