/** Streamable HTTP on /mcp: sessions, the SDK client, session end, health. */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { connectHttp, EXAMPLE_SPEC, startHttpServer, startRecorder, textOf } from "../support/processes.ts"

describe("Streamable HTTP transport", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    api = await startExampleApi()
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url])
  })
  afterAll(async () => {
    await server?.stop()
    await api?.close()
  })

  it("answers /healthz", async () => {
    const res = await fetch(`${server.base}/healthz`)
    assert.strictEqual(res.status, 200)
    assert.deepStrictEqual(await res.json(), { status: "ok" })
  })

  it("serves tools/list and tools/call to the SDK client in a session", async () => {
    const { client, transport } = await connectHttp(server.base)
    assert.isString(transport.sessionId)
    const { tools } = await client.listTools()
    assert.strictEqual(tools.length, 6)
    const result = await client.callTool({ name: "getInventory", arguments: {} })
    assert.isUndefined(result.isError, textOf(result))
    assert.deepStrictEqual(result.structuredContent, { available: 1, pending: 1, sold: 1 })
    await client.close()
  })

  it("keeps sessions apart and ends one on DELETE", async () => {
    const a = await connectHttp(server.base)
    const b = await connectHttp(server.base)
    assert.notStrictEqual(a.transport.sessionId, b.transport.sessionId)
    const sessionId = a.transport.sessionId!
    await a.transport.terminateSession()
    const after = await fetch(`${server.base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" })
    })
    assert.strictEqual(after.status, 404)
    // the other session is unaffected
    assert.strictEqual((await b.client.listTools()).tools.length, 6)
    await b.client.close()
  })

  it("refuses requests without a session that are not initialize, and bad JSON", async () => {
    const noSession = await fetch(`${server.base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    assert.strictEqual(noSession.status, 400)
    assert.include(await noSession.text(), "initialize")
    const badJson = await fetch(`${server.base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "{not json"
    })
    assert.strictEqual(badJson.status, 400)
    assert.include(await badJson.text(), "Parse error")
  })

  it("writes nothing but logs to stderr and nothing to stdout", async () => {
    assert.strictEqual(server.stdout(), "")
    for (const line of server.stderr().trim().split("\n")) assert.doesNotThrow(() => JSON.parse(line), line)
  })
})

describe("Streamable HTTP: compressed answers", () => {
  // an API whose inventory is about 60 KB of JSON
  const big = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`item-${i}`, i]))
  let api: Awaited<ReturnType<typeof startRecorder>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    api = await startRecorder((r) => ({
      status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(r.url.includes("inventory") ? big : { id: 1 })
    }))
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--cache-backend", "none"])
  })
  afterAll(async () => {
    await server?.stop()
    await api?.close()
  })

  /** A raw POST in a new session, with the Accept-Encoding given; the response. */
  const call = async (encoding: string, message: Record<string, unknown>) => {
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", "accept-encoding": encoding }
    const init = await fetch(`${server.base}/mcp`, {
      method: "POST", headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } })
    })
    await init.text()
    return fetch(`${server.base}/mcp`, {
      method: "POST", headers: { ...headers, "mcp-session-id": init.headers.get("mcp-session-id")!, "mcp-protocol-version": "2025-06-18" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, ...message })
    })
  }

  it("gzips a long JSON answer for a client that accepts it, and only then", async () => {
    const inventory = { method: "tools/call", params: { name: "getInventory", arguments: {} } }
    const zipped = await call("gzip, deflate, br", inventory)
    assert.strictEqual(zipped.headers.get("content-encoding"), "gzip")
    const compressedBytes = Number(zipped.headers.get("content-length"))
    const body = await zipped.json() as { result: { structuredContent: unknown } }
    assert.deepStrictEqual(body.result.structuredContent, big)
    assert.isBelow(compressedBytes, JSON.stringify(body).length / 3)
    const plain = await call("identity", inventory)
    assert.isNull(plain.headers.get("content-encoding"))
    assert.deepStrictEqual((await plain.json() as typeof body).result.structuredContent, big)
    // a short answer goes out as it is
    const short = await call("gzip", { method: "tools/call", params: { name: "getPet", arguments: { petId: 1 } } })
    assert.isNull(short.headers.get("content-encoding"))
    // and the SDK client (fetch) reads the gzipped answer as any other
    const { client } = await connectHttp(server.base)
    try {
      assert.deepStrictEqual((await client.callTool({ name: "getInventory", arguments: {} })).structuredContent, big)
    } finally {
      await client.close()
    }
  })
})
