/**
 * How Streamable HTTP answers a POST: plain JSON when there is nothing but the answer, an event stream when
 * the call has progress to report or a confirmation to ask for, and a cancelled upstream call when the
 * client goes away before its answer.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ElicitRequestSchema, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { createServer, type Server } from "node:http"
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

describe("Streamable HTTP answers", () => {
  // an upstream whose /slow answers after 1.3 s and records requests closed before their answer
  let upstream: Server
  let base: string
  let closedEarly = 0
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      if (req.url === "/image") return void res.writeHead(200, { "content-type": "image/png" }).end(Buffer.from([1, 2, 3]))
      const timer = setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{\"ok\":true}"), 1300)
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
    const events = (await res.text()).split("\n\n").filter((e) => e.trim() !== "").map((e) => JSON.parse(e.split("data: ")[1]!) as Record<string, unknown>)
    assert.strictEqual(events[0]!["method"], "notifications/progress")
    assert.deepStrictEqual((events[0]!["params"] as { progressToken: string }).progressToken, "p1")
    const last = events[events.length - 1]!
    assert.strictEqual(last["id"], 7)
    assert.deepStrictEqual((last["result"] as { structuredContent: unknown }).structuredContent, { ok: true })
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
