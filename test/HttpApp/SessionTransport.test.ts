/**
 * The Streamable HTTP session transport on a real node:http server, with the protocol side played by the
 * test: what reaches `onmessage`, and what the client gets for each kind of POST, GET and DELETE. Resuming a
 * broken event stream runs on recorded responses under fake timers (its grace period is timed).
 */
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { createServer, type Server } from "node:http"
import { HttpSessionTransport } from "../../src/HttpApp/SessionTransport.ts"

const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
  server = undefined
})

/** A server whose every request goes to one transport (the body parsed as JSON, as HttpApp does). */
const serve = async (transport: HttpSessionTransport) => {
  server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      transport.handle(req, res, text === "" ? undefined : JSON.parse(text))
    })
  })
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()))
  return `http://127.0.0.1:${(server!.address() as { port: number }).port}/mcp`
}

const post = (url: string, body: unknown, headers: Record<string, string> = HEADERS, signal?: AbortSignal) =>
  fetch(url, { method: "POST", headers, body: JSON.stringify(body), ...(signal ? { signal } : {}) })

describe("HttpSessionTransport", () => {
  it("answers a request as JSON, a batch as a JSON array, and notifications with 202", async () => {
    const transport = new HttpSessionTransport({ sessionIdGenerator: () => "s-1" })
    const seen: Array<JSONRPCMessage> = []
    transport.onmessage = (m) => {
      seen.push(m)
      if ("id" in m && "method" in m) void transport.send({ jsonrpc: "2.0", id: m.id, result: { echo: m.method } })
    }
    const url = await serve(transport)
    const init = await post(url, { jsonrpc: "2.0", id: 1, method: "initialize", params: {} })
    assert.strictEqual(init.headers.get("mcp-session-id"), "s-1")
    assert.include(init.headers.get("content-type")!, "application/json")
    // sized, not chunked: the answer leaves in one write
    assert.isNull(init.headers.get("transfer-encoding"))
    const body = await init.text()
    assert.strictEqual(Number(init.headers.get("content-length")), Buffer.byteLength(body))
    assert.deepStrictEqual(JSON.parse(body), { jsonrpc: "2.0", id: 1, result: { echo: "initialize" } })

    const batch = await post(url, [{ jsonrpc: "2.0", id: 2, method: "ping" }, { jsonrpc: "2.0", id: 3, method: "tools/list" }])
    assert.deepStrictEqual(await batch.json(), [
      { jsonrpc: "2.0", id: 2, result: { echo: "ping" } },
      { jsonrpc: "2.0", id: 3, result: { echo: "tools/list" } }
    ])
    const note = await post(url, { jsonrpc: "2.0", method: "notifications/initialized" })
    assert.strictEqual(note.status, 202)
    assert.deepStrictEqual(seen.map((m) => "method" in m ? m.method : "?"), ["initialize", "ping", "tools/list", "notifications/initialized"])
  })

  /** A transport that sends a progress notification for each request, then (20 ms later) its answer. */
  const progressing = (transport: HttpSessionTransport) => {
    transport.onmessage = (m) => {
      const id = "id" in m ? m.id : undefined
      if (id === undefined) return
      void transport.send({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "t", progress: 1 } }, { relatedRequestId: id })
      setTimeout(() => void transport.send({ jsonrpc: "2.0", id, result: { done: true } }), 20)
    }
    return transport
  }

  it("turns a POST into an event stream when something related is sent before the answer", async () => {
    const res = await post(await serve(progressing(new HttpSessionTransport())), { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "x" } })
    assert.include(res.headers.get("content-type")!, "text/event-stream")
    const events = (await res.text()).trim().split("\n\n").map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)))
    assert.deepStrictEqual(events, [
      { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "t", progress: 1 } },
      { jsonrpc: "2.0", id: 9, result: { done: true } }
    ])
  })

  it("with jsonOnly (the Lambda handler) drops what comes before the answer and answers with plain JSON", async () => {
    const res = await post(await serve(progressing(new HttpSessionTransport({ jsonOnly: true }))), { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "x" } })
    assert.include(res.headers.get("content-type")!, "application/json")
    assert.deepStrictEqual(await res.json(), { jsonrpc: "2.0", id: 9, result: { done: true } })
  })

  it("refuses what Streamable HTTP does not allow, each with its status and a JSON-RPC error", async () => {
    const transport = new HttpSessionTransport({ sessionIdGenerator: () => "s-2" })
    transport.onmessage = (m) => {
      if ("id" in m && "method" in m) void transport.send({ jsonrpc: "2.0", id: m.id, result: {} })
    }
    const url = await serve(transport)
    const expect = async (res: Response, status: number, text: string) => {
      assert.strictEqual(res.status, status)
      const body = await res.json() as { error: { message: string } }
      assert.include(body.error.message, text)
    }
    await expect(await post(url, { jsonrpc: "2.0", id: 1, method: "ping" }, { ...HEADERS, accept: "application/json" }), 406, "Not Acceptable")
    await expect(await post(url, { jsonrpc: "2.0", id: 1, method: "ping" }, { ...HEADERS, "content-type": "text/plain" }), 415, "Content-Type")
    await expect(await post(url, { id: 1, method: "ping" }), 400, "Invalid JSON-RPC message")
    await expect(await post(url, []), 400, "a batch holds 1 to 100 messages")
    await expect(await post(url, { jsonrpc: "2.0", id: 1, method: "ping" }, { ...HEADERS, "mcp-protocol-version": "1999-01-01" }), 400, "Unsupported protocol version")
    await expect(await post(url, [{ jsonrpc: "2.0", id: 1, method: "initialize" }, { jsonrpc: "2.0", id: 2, method: "ping" }]), 400, "Only one initialization")
    assert.strictEqual((await post(url, { jsonrpc: "2.0", id: 1, method: "initialize" })).status, 200)
    await expect(await post(url, { jsonrpc: "2.0", id: 2, method: "initialize" }), 400, "already initialized")
    await expect(await fetch(url, { method: "PUT" }), 405, "Method not allowed")
  })

  it("keeps one event stream per session, alive with comments, ends the session on DELETE, and cancels the calls of a client that left", async () => {
    const closed: Array<string> = []
    const transport = new HttpSessionTransport({
      sessionIdGenerator: () => "s-3", onsessionclosed: (id) => closed.push(id), keepAliveMs: 30
    })
    const seen: Array<JSONRPCMessage> = []
    transport.onmessage = (m) => {
      seen.push(m)
      if ("id" in m && "method" in m && m.method === "initialize") void transport.send({ jsonrpc: "2.0", id: m.id, result: {} })
    }
    const url = await serve(transport)
    await (await post(url, { jsonrpc: "2.0", id: 1, method: "initialize" })).text()

    const abort = new AbortController()
    const pending = post(url, { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "slow" } }, HEADERS, abort.signal).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 50))
    abort.abort()
    await pending
    await new Promise((r) => setTimeout(r, 50))
    assert.deepStrictEqual(seen.at(-1), {
      jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 5, reason: "the client disconnected" }
    })

    const stream = await fetch(url, { headers: { accept: "text/event-stream" } })
    assert.strictEqual(stream.status, 200)
    assert.strictEqual((await fetch(url, { headers: { accept: "text/event-stream" } })).status, 409)
    const reader = stream.body!.getReader()
    // an idle stream gets keep-alive comments (proxies cut silent connections)
    assert.include(new TextDecoder().decode((await reader.read()).value), ": keepalive")
    void transport.send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" })
    let text = ""
    while (!text.includes("list_changed")) text += new TextDecoder().decode((await reader.read()).value)
    assert.include(text, "notifications/tools/list_changed")

    assert.strictEqual((await fetch(url, { method: "DELETE" })).status, 200)
    assert.deepStrictEqual(closed, ["s-3"])
    assert.strictEqual((await post(url, { jsonrpc: "2.0", id: 6, method: "ping" })).status, 404)
    await reader.cancel()
  })
})

/** A response that records what is written to it; `close()` is its connection breaking. */
const recorded = () => {
  const listeners: Array<() => void> = []
  const res = {
    status: 0,
    text: "",
    ended: false,
    writeHead(status: number) {
      res.status = status
    },
    write(chunk: string) {
      res.text += chunk
    },
    end(chunk?: string) {
      if (chunk !== undefined) res.text += chunk
      res.ended = true
    },
    once(_event: "close", listener: () => void) {
      listeners.push(listener)
    },
    flushHeaders() {},
    close() {
      for (const l of listeners.splice(0)) l()
    },
    /** The ids of the events written so far. */
    ids: () => [...res.text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1])
  }
  return res
}

describe("HttpSessionTransport: resuming a broken event stream", () => {
  const CLIENT = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" }

  /** A session (resumeMs 30 s) with call 7 open and turned into an event stream by one progress notification. */
  const session = () => {
    const calls = { inFlight: 0 }
    const transport = new HttpSessionTransport({
      sessionIdGenerator: () => "s", resumeMs: 30_000, keepAliveMs: 3_600_000,
      begin: () => calls.inFlight++, end: () => calls.inFlight--
    })
    const seen: Array<JSONRPCMessage> = []
    transport.onmessage = (m) => {
      seen.push(m)
      if ("method" in m && m.method === "initialize") void transport.send({ jsonrpc: "2.0", id: 1, result: {} })
    }
    transport.handle({ method: "POST", headers: CLIENT }, recorded(), { jsonrpc: "2.0", id: 1, method: "initialize", params: {} })
    const res = recorded()
    transport.handle({ method: "POST", headers: CLIENT }, res, { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "x" } })
    const progress = (n: number) =>
      transport.send({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "t", progress: n } }, { relatedRequestId: 7 })
    void progress(1)
    const cancelled = () => seen.filter((m) => "method" in m && m.method === "notifications/cancelled")
    const resume = (lastEventId: string) => {
      const again = recorded()
      transport.handle({ method: "GET", headers: { ...CLIENT, "last-event-id": lastEventId } }, again, undefined)
      return again
    }
    return { transport, res, progress, cancelled, resume, calls }
  }

  afterEach(() => {
    vi.useRealTimers()
  })

  it("keeps the call running while its client is away, and gives a resume what it missed, then the rest", async () => {
    vi.useFakeTimers()
    const { transport, res, progress, cancelled, resume, calls } = session()
    assert.deepStrictEqual(res.ids(), ["1.0", "1.1"])
    res.close()
    // still in flight for a shutdown's drain, though its client is away
    assert.strictEqual(calls.inFlight, 1)
    vi.advanceTimersByTime(29_999)
    await progress(2)
    assert.deepStrictEqual(cancelled(), [])
    const back = resume("1.1")
    assert.strictEqual(back.status, 200)
    assert.deepStrictEqual(back.ids(), ["1.2"])
    // the grace is over for a stream its client came back to: nothing is cancelled
    vi.advanceTimersByTime(60_000)
    assert.deepStrictEqual(cancelled(), [])
    await transport.send({ jsonrpc: "2.0", id: 7, result: { done: true } })
    assert.strictEqual(calls.inFlight, 0)
    assert.deepStrictEqual(back.ids(), ["1.2", "1.3"])
    assert.isTrue(back.ended)
    // delivered: the stream is gone
    assert.strictEqual(resume("1.3").status, 404)
  })

  it("cancels the calls of a client that stays away longer than resumeMs, and forgets the stream", () => {
    vi.useFakeTimers()
    const { res, cancelled, resume, calls } = session()
    res.close()
    vi.advanceTimersByTime(30_000)
    assert.strictEqual(calls.inFlight, 0)
    assert.deepStrictEqual(cancelled(), [
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 7, reason: "the client disconnected" } }
    ])
    assert.strictEqual(resume("1.1").status, 404)
  })

  it("keeps the last 100 events of a stream: a resume from before them is refused, one within them gets the rest", async () => {
    vi.useFakeTimers()
    const { res, progress, resume } = session()
    res.close()
    for (let n = 2; n <= 150; n++) await progress(n)
    assert.strictEqual(resume("1.1").status, 404)
    const back = resume("1.120")
    assert.deepStrictEqual(back.ids(), Array.from({ length: 30 }, (_, i) => `1.${121 + i}`))
  })
})
