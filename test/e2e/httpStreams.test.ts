/**
 * How Streamable HTTP answers a POST: plain JSON when there is nothing but the answer, an event stream when
 * the call has progress to report or a confirmation to ask for, and a cancelled upstream call when the
 * client goes away before its answer. An event stream that breaks off can be resumed (Last-Event-ID) within
 * MCP_STREAM_RESUME_SECONDS; the connection is cut for real, at a TCP proxy between the SDK client and the server.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ElicitRequestSchema, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { createServer, type Server } from "node:http"
import { connect, createServer as createTcpServer, type Socket } from "node:net"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { EXAMPLE_SPEC, fixture, startHttpServer, textOf, waitFor } from "../support/processes.ts"

const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }

/** initialize + initialized by hand: the session id and the headers for the session's next POSTs. */
const openSession = async (base: string) => {
  const init = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify({
      jsonrpc: "2.0", id: 0, method: "initialize",
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    })
  })
  assert.strictEqual(init.status, 200)
  const session = init.headers.get("mcp-session-id")!
  assert.isString(session)
  await init.text()
  const headers = { ...HEADERS, "mcp-session-id": session, "mcp-protocol-version": LATEST_PROTOCOL_VERSION }
  const initialized = await fetch(`${base}/mcp`, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })
  assert.strictEqual(initialized.status, 202)
  return headers
}

/** The events of an event stream's text: each one's id (if any) and data (parsed; undefined when empty). */
const eventsOf = (text: string) =>
  text.split("\n\n").filter((e) => e.trim() !== "").map((e) => {
    const field = (name: string) => e.split("\n").find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim()
    const data = field("data")
    return { id: field("id"), data: data ? JSON.parse(data) as Record<string, unknown> : undefined }
  })

/** Reads an event stream's body until its text so far satisfies `done`; the text. */
const readUntil = async (body: ReadableStream<Uint8Array>, done: (text: string) => boolean) => {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let text = ""
  while (!done(text)) {
    const { value, done: ended } = await reader.read()
    if (ended) throw new Error(`the stream ended before what was awaited: ${text}`)
    text += decoder.decode(value, { stream: true })
  }
  reader.releaseLock()
  return text
}

/** A TCP proxy to 127.0.0.1:`port`: `cut()` breaks the connections open through it (new ones go through). */
const startProxy = async (port: number) => {
  const open = new Set<Socket>()
  const proxy = createTcpServer((client) => {
    const server = connect(port, "127.0.0.1")
    for (const s of [client, server]) {
      open.add(s)
      s.on("error", () => undefined).on("close", () => {
        open.delete(s)
        client.destroy()
        server.destroy()
      })
    }
    client.pipe(server).pipe(client)
  })
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    cut: () => {
      for (const s of open) s.destroy()
    },
    close: () =>
      new Promise<void>((r) => {
        proxy.close(() => r())
        for (const s of open) s.destroy()
      })
  }
}

describe("Streamable HTTP answers", () => {
  // an upstream whose /slow answers after `slowMs` and records requests received and closed before their answer
  let upstream: Server
  let base: string
  let slowMs = 1300
  let slowCalls = 0
  let closedEarly = 0
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      if (req.url === "/image") return void res.writeHead(200, { "content-type": "image/png" }).end(Buffer.from([1, 2, 3]))
      slowCalls++
      const timer = setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{\"ok\":true}"), slowMs)
      res.once("close", () => {
        if (!res.writableEnded) {
          clearTimeout(timer)
          closedEarly++
        }
      })
    })
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
    base = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
    server = await startHttpServer(["--spec", fixture("content.yaml"), "--base-url", base, "--cache-backend", "none"])
  })
  afterAll(async () => {
    await server.stop()
    upstream.closeAllConnections()
    upstream.close()
  })

  it("answers a call without a progress token as one JSON response", async () => {
    const headers = await openSession(server.base)
    const res = await fetch(`${server.base}/mcp`, {
      method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "getImage", arguments: {} } })
    })
    assert.strictEqual(res.status, 200)
    assert.include(res.headers.get("content-type")!, "application/json")
    const body = await res.json() as { id: number; result: { content: Array<{ type: string }> } }
    assert.strictEqual(body.id, 1)
    assert.strictEqual(body.result.content[0]!.type, "image")
  })

  it("turns the same POST into an event stream when the call reports progress, ending it with the answer", async () => {
    const headers = await openSession(server.base)
    const res = await fetch(`${server.base}/mcp`, {
      method: "POST", headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "getSlow", arguments: {}, _meta: { progressToken: "p1" } } })
    })
    assert.include(res.headers.get("content-type")!, "text/event-stream")
    const events = eventsOf(await res.text())
    // a 2025-11-25 client: the stream can resume; it opens with an event that has an id and no data
    const stream = events[0]!.id!.split(".")[0]
    assert.deepStrictEqual(events[0], { id: `${stream}.0`, data: undefined })
    assert.deepStrictEqual(events.map((e) => e.id), events.map((_, i) => `${stream}.${i}`))
    const [progress, last] = [events[1]!.data!, events[events.length - 1]!.data!]
    assert.strictEqual(progress["method"], "notifications/progress")
    assert.deepStrictEqual((progress["params"] as { progressToken: string }).progressToken, "p1")
    assert.strictEqual(last["id"], 7)
    assert.deepStrictEqual((last["result"] as { structuredContent: unknown }).structuredContent, { ok: true })
  })

  it("sends a client of an older protocol version an event stream it can read: no event without data, no ids", async () => {
    const headers = { ...await openSession(server.base), "mcp-protocol-version": "2025-06-18" }
    const res = await fetch(`${server.base}/mcp`, {
      method: "POST", headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/call", params: { name: "getSlow", arguments: {}, _meta: { progressToken: "p2" } } })
    })
    const events = eventsOf(await res.text())
    assert.isTrue(events.every((e) => e.id === undefined && e.data !== undefined))
    assert.strictEqual(events[events.length - 1]!.data!["id"], 8)
  })

  it("lets the SDK client resume a call's event stream that broke off: the call goes on, and its answer comes on the new stream", async () => {
    const proxy = await startProxy(Number(new URL(server.base).port))
    const client = new Client({ name: "resume", version: "1" })
    const errors: Array<string> = []
    slowMs = 2600
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`)))
      client.onerror = (e) => errors.push(e.message)
      const [callsBefore, closedBefore] = [slowCalls, closedEarly]
      // the first progress notification (at 1 s) opens the stream, and the connection is cut as it arrives; the
      // client comes back about a second later, before the answer (at 2.6 s)
      let progress = 0
      const result = await client.callTool({ name: "getSlow", arguments: {} }, undefined, {
        onprogress: () => progress++ === 0 && proxy.cut(),
        timeout: 15_000
      })
      assert.deepStrictEqual(result.structuredContent, { ok: true })
      assert.isTrue(errors.some((e) => e.includes("SSE stream disconnected")), `the stream broke: ${errors.join("; ")}`)
      assert.strictEqual(slowCalls - callsBefore, 1)
      assert.strictEqual(closedEarly, closedBefore)
    } finally {
      slowMs = 1300
      await client.close()
      await proxy.close()
    }
  })

  it("keeps what a call sent while its client was away (its answer too) for the client's resume", async () => {
    const headers = await openSession(server.base)
    const abort = new AbortController()
    const res = await fetch(`${server.base}/mcp`, {
      method: "POST", headers, signal: abort.signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "getSlow", arguments: {}, _meta: { progressToken: "p4" } } })
    })
    // read up to the first progress notification (at 1 s), then go away until the answer (at 1.3 s) has come
    const seen = eventsOf(await readUntil(res.body!, (t) => t.includes("notifications/progress")))
    abort.abort()
    await new Promise((r) => setTimeout(r, 1500))
    const resumed = await fetch(`${server.base}/mcp`, { headers: { ...headers, "last-event-id": seen.at(-1)!.id! } })
    assert.strictEqual(resumed.status, 200)
    assert.include(resumed.headers.get("content-type")!, "text/event-stream")
    // the stream ends after the answer, numbered on from the last event the client saw
    const missed = eventsOf(await resumed.text())
    const [stream, last] = seen.at(-1)!.id!.split(".")
    assert.deepStrictEqual(missed.map((e) => e.id), [`${stream}.${Number(last) + 1}`])
    assert.strictEqual(missed[0]!.data!["id"], 5)
    assert.deepStrictEqual((missed[0]!.data!["result"] as { structuredContent: unknown }).structuredContent, { ok: true })
    // once delivered, the stream is gone
    const again = await fetch(`${server.base}/mcp`, { headers: { ...headers, "last-event-id": seen.at(-1)!.id! } })
    assert.strictEqual(again.status, 404)
  })

  it("keeps the session stream's notifications (tools/list_changed after a SIGHUP reload) for a client that comes back", async () => {
    const headers = await openSession(server.base)
    const abort = new AbortController()
    const first = await fetch(`${server.base}/mcp`, { headers, signal: abort.signal })
    const opened = eventsOf(await readUntil(first.body!, (t) => t.includes("\n\n")))
    assert.deepStrictEqual(opened, [{ id: "0.0", data: undefined }])
    abort.abort()
    // the tools change while no stream is open
    const reloads = server.stderr().split("SIGHUP: spec reloaded").length
    server.child.kill("SIGHUP")
    await waitFor(async () => server.stderr().split("SIGHUP: spec reloaded").length > reloads, "the SIGHUP reload", 15_000)
    const back = new AbortController()
    const resumed = await fetch(`${server.base}/mcp`, { headers: { ...headers, "last-event-id": "0.0" }, signal: back.signal })
    assert.strictEqual(resumed.status, 200)
    const missed = eventsOf(await readUntil(resumed.body!, (t) => t.includes("prompts/list_changed")))
    assert.deepStrictEqual(missed.map((e) => [e.id, e.data?.["method"]]), [
      ["0.1", "notifications/tools/list_changed"],
      ["0.2", "notifications/prompts/list_changed"]
    ])
    // it is the session's stream now: a second one is refused; a resume takes its place, and it ends
    assert.strictEqual((await fetch(`${server.base}/mcp`, { headers })).status, 409)
    const again = await fetch(`${server.base}/mcp`, { headers: { ...headers, "last-event-id": "0.2" } })
    assert.strictEqual(again.status, 200)
    const rest = resumed.body!.getReader()
    while (!(await rest.read()).done);
    await again.body!.cancel()
  })

  it("refuses a Last-Event-ID of no stream it keeps with 404, saying why", async () => {
    const headers = await openSession(server.base)
    const res = await fetch(`${server.base}/mcp`, { headers: { ...headers, "last-event-id": "99.3" } })
    assert.strictEqual(res.status, 404)
    const body = await res.json() as { error: { message: string } }
    assert.include(body.error.message, "MCP_STREAM_RESUME_SECONDS")
  })

  it("gives the SDK client its progress notifications over HTTP", async () => {
    const client = new Client({ name: "progress", version: "1" })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`)))
    try {
      const progress: Array<number> = []
      const slow = await client.callTool({ name: "getSlow", arguments: {} }, undefined, { onprogress: (p) => progress.push(p.progress) })
      assert.deepStrictEqual(slow.structuredContent, { ok: true })
      assert.deepStrictEqual(progress, [1])
    } finally {
      await client.close()
    }
  })

  it("cancels the calls of a broken event stream whose client does not come back within MCP_STREAM_RESUME_SECONDS", async () => {
    const quick = await startHttpServer(["--spec", fixture("content.yaml"), "--base-url", base, "--cache-backend", "none", "--mcp-stream-resume-seconds", "1"])
    slowMs = 5000
    try {
      const headers = await openSession(quick.base)
      const before = closedEarly
      const abort = new AbortController()
      const res = await fetch(`${quick.base}/mcp`, {
        method: "POST", headers, signal: abort.signal,
        body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "getSlow", arguments: {}, _meta: { progressToken: "p3" } } })
      })
      // read up to the first progress notification, then go away
      const text = await readUntil(res.body!, (t) => t.includes("notifications/progress"))
      const lastId = eventsOf(text).at(-1)!.id!
      abort.abort()
      // not at once: the stream could still be resumed
      await new Promise((r) => setTimeout(r, 300))
      assert.strictEqual(closedEarly, before)
      await waitFor(async () => closedEarly > before, "the upstream request to be aborted", 2500)
      const late = await fetch(`${quick.base}/mcp`, { headers: { ...headers, "last-event-id": lastId } })
      assert.strictEqual(late.status, 404)
    } finally {
      slowMs = 1300
      await quick.stop()
    }
  })

  it("cancels the upstream call when the client goes away before the answer", async () => {
    const headers = await openSession(server.base)
    const before = closedEarly
    const abort = new AbortController()
    const pending = fetch(`${server.base}/mcp`, {
      method: "POST", headers, signal: abort.signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "getSlow", arguments: {} } })
    }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 300))
    abort.abort()
    await pending
    await waitFor(async () => closedEarly > before, "the upstream request to be aborted", 1000)
  })
})

describe("confirmation over Streamable HTTP", () => {
  it("asks on the call's own stream and sends the DELETE only once accepted", async () => {
    const api = await startExampleApi()
    const server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--confirm-destructive"])
    const client = new Client({ name: "elicit-http", version: "1" }, { capabilities: { elicitation: {} } })
    const asked: Array<string> = []
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      asked.push((request.params as { message: string }).message)
      return { action: "accept", content: { confirm: true } }
    })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`)))
      const deleted = await client.callTool({ name: "deletePet", arguments: { petId: 1 } })
      assert.include(textOf(deleted), "204")
      assert.include(asked[0]!, "DELETE /pets/{petId}")
      assert.isTrue((await client.callTool({ name: "getPet", arguments: { petId: 1 } })).isError)
    } finally {
      await client.close()
      await server.stop()
      await api.close()
    }
  })
})
