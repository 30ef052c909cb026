/**
 * The older HTTP+SSE transport (`GET /sse`, `POST /messages?sessionId=…`) for clients that do not speak
 * Streamable HTTP: the SDK's own SSEClientTransport against the built server, the same inbound guard as
 * `/mcp`, sessions that end with their stream, and calls cancelled when the stream closes.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { EXAMPLE_SPEC, fixture, startHttpServer, startLocalServer, textOf, waitFor } from "../support/processes.ts"

const TOKEN = "legacy-token"
const auth = { authorization: `Bearer ${TOKEN}` }

/** Opens `GET /sse` by hand: the messages URL from its first event, the events read so far, and a way to close it. */
const openStream = async (base: string) => {
  const controller = new AbortController()
  const res = await fetch(`${base}/sse`, { headers: { ...auth, accept: "text/event-stream" }, signal: controller.signal })
  assert.strictEqual(res.status, 200)
  assert.include(res.headers.get("content-type") ?? "", "text/event-stream")
  const reader = res.body!.getReader()
  let text = ""
  const events: Array<{ event: string; data: string }> = []
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        text += new TextDecoder().decode(value)
        let end
        while ((end = text.indexOf("\n\n")) >= 0) {
          const block = text.slice(0, end)
          text = text.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== undefined && data !== undefined) events.push({ event, data })
        }
      }
    } catch {
      // aborted
    }
  })()
  await waitFor(async () => events.length > 0, "the endpoint event", 5000)
  assert.strictEqual(events[0]!.event, "endpoint")
  const messages = new URL(events[0]!.data, base).toString()
  assert.match(events[0]!.data, /^\/messages\?sessionId=[0-9a-f-]{36}$/)
  const post = (message: unknown) =>
    fetch(messages, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(message) })
  const answer = async (id: number) => {
    await waitFor(async () => events.some((e) => e.event === "message" && JSON.parse(e.data).id === id), `the answer to ${id}`, 10_000)
    return JSON.parse(events.find((e) => e.event === "message" && JSON.parse(e.data).id === id)!.data)
  }
  const initialize = async () => {
    assert.strictEqual((await post({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "raw", version: "1" } } })).status, 202)
    assert.strictEqual((await answer(0)).result.protocolVersion, "2024-11-05")
    assert.strictEqual((await post({ jsonrpc: "2.0", method: "notifications/initialized" })).status, 202)
  }
  return { messages, post, answer, initialize, close: () => controller.abort() }
}

describe("legacy HTTP+SSE transport", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    api = await startExampleApi()
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url], { MCP_AUTH_TOKEN: TOKEN })
  })
  afterAll(async () => {
    await server?.stop()
    await api?.close()
  })

  it("serves tools/list and tools/call to the SDK's SSE client", async () => {
    const client = new Client({ name: "legacy-client", version: "1.0.0" })
    const transport = new SSEClientTransport(new URL(`${server.base}/sse`), {
      requestInit: { headers: auth },
      eventSourceInit: { fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...auth } }) }
    })
    await client.connect(transport)
    const { tools } = await client.listTools()
    assert.strictEqual(tools.length, 6)
    const result = await client.callTool({ name: "getInventory", arguments: {} })
    assert.isUndefined(result.isError, textOf(result))
    assert.deepStrictEqual(result.structuredContent, { available: 1, pending: 1, sold: 1 })
    const invalid = await client.callTool({ name: "getPet", arguments: {} })
    assert.include(textOf(invalid), "'petId' is required")
    await client.close()
  })

  it("holds the stream and its messages to the same guard as /mcp", async () => {
    const noToken = await fetch(`${server.base}/sse`, { headers: { accept: "text/event-stream" } })
    assert.strictEqual(noToken.status, 401)
    const foreignOrigin = await fetch(`${server.base}/sse`, { headers: { ...auth, origin: "https://evil.example" } })
    assert.strictEqual(foreignOrigin.status, 403)
    const stream = await openStream(server.base)
    const messageWithoutToken = await fetch(stream.messages, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
    })
    assert.strictEqual(messageWithoutToken.status, 401)
    stream.close()
  })

  it("answers on the stream, refuses unknown sessions, and ends a session with its stream", async () => {
    const stream = await openStream(server.base)
    await stream.initialize()
    assert.strictEqual((await stream.post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "getPet", arguments: { petId: 1 } } })).status, 202)
    const answer = await stream.answer(1)
    assert.strictEqual(answer.result.structuredContent.id, 1)
    // not JSON-RPC; no such session; a GET on the messages endpoint
    assert.strictEqual((await stream.post({ hello: "world" })).status, 400)
    const unknown = await fetch(`${server.base}/messages?sessionId=00000000-0000-0000-0000-000000000000`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" })
    })
    assert.strictEqual(unknown.status, 404)
    assert.include(await unknown.text(), "GET /sse")
    assert.strictEqual((await fetch(stream.messages, { headers: auth })).status, 405)
    stream.close()
    await waitFor(async () => (await stream.post({ jsonrpc: "2.0", id: 3, method: "ping" })).status === 404, "the session to end with its stream", 5000)
  })
})

describe("legacy HTTP+SSE transport: calls and the stream", () => {
  it("cancels a call whose client closed the stream (the upstream request is aborted)", async () => {
    let started = 0
    let closedEarly = 0
    const upstream = await startLocalServer((_req, res) => {
      started++
      const timer = setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{\"ok\":true}"), 3000)
      res.once("close", () => {
        if (!res.writableEnded) {
          clearTimeout(timer)
          closedEarly++
        }
      })
    })
    const server = await startHttpServer(["--spec", fixture("content.yaml"), "--base-url", upstream.url, "--cache-backend", "none"], { MCP_AUTH_TOKEN: TOKEN })
    try {
      const stream = await openStream(server.base)
      await stream.initialize()
      assert.strictEqual((await stream.post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "getSlow", arguments: {} } })).status, 202)
      await waitFor(async () => started === 1, "the upstream call to start", 5000)
      stream.close()
      await waitFor(async () => closedEarly === 1, "the upstream call to be aborted", 5000)
    } finally {
      await server.stop()
      await upstream.close()
    }
  })

  it("is not offered by a stateless server (no session to hold the stream)", async () => {
    const server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", "http://127.0.0.1:9", "--stateless"])
    try {
      const res = await fetch(`${server.base}/sse`)
      assert.strictEqual(res.status, 404)
      assert.include(await res.text(), "/mcp")
    } finally {
      await server.stop()
    }
  })
})
