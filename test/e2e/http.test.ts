/** Streamable HTTP on /mcp: sessions, the SDK client, session end, health. */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { connectHttp, EXAMPLE_SPEC, startHttpServer, textOf } from "../support/processes.ts"

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
