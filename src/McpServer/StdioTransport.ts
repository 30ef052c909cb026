/**
 * MCP over this process's stdin/stdout: one JSON-RPC message per line. Like the SDK's stdio transport, but a
 * line is only JSON-parsed here: the SDK's also runs every message through its zod union schema before the
 * protocol layer classifies (and validates) it again, which costs more than the parse on every call.
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
    this.onmessage?.(message as JSONRPCMessage)
  }

  private readonly onError = (error: Error) => this.onerror?.(error)

  async start(): Promise<void> {
    this.input.on("data", this.onData)
    this.input.on("error", this.onError)
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.output.write(`${JSON.stringify(message)}\n`)) resolve()
      else this.output.once("drain", resolve)
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.input.off("data", this.onData)
    this.input.off("error", this.onError)
    if (this.input.listenerCount("data") === 0) this.input.pause()
    this.pending = undefined
    this.onclose?.()
  }
}
