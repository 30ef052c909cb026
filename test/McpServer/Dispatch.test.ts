/**
 * The fast first step for incoming requests: it may only take messages the SDK would accept as they are,
 * and everything else must still reach the SDK's own path (its validation and its errors).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { type CallToolRequest, CallToolRequestSchema, isJSONRPCRequest, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { assert, describe, it } from "@effect/vitest"
import { dispatchPlainRequests, isPlainRequest, isPlainToolCall, setToolCallHandler } from "../../src/McpServer/Dispatch.ts"

const call = (params: unknown, extra: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: 7, method: "tools/call", params, ...extra })

const messages: Array<unknown> = [
  call({ name: "getPet", arguments: { petId: 1 } }),
  call({ name: "getPet" }),
  call({ name: "getPet", arguments: { petId: 1 }, _meta: { progressToken: "p1", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } }),
  call({ name: "getPet", _meta: { progressToken: 3 } }),
  { jsonrpc: "2.0", id: "a", method: "tools/list" },
  { jsonrpc: "2.0", id: "a", method: "ping", params: {} },
  // not plain: the SDK decides (accepts some, refuses others)
  call({ name: "getPet", _meta: { progressToken: 1.5 } }),
  call({ name: "getPet", _meta: { "io.modelcontextprotocol/related-task": { taskId: "t" } } }),
  call({ name: "getPet", _meta: "x" }),
  call({ name: "getPet", task: { ttl: 1000 } }),
  call({ name: 42 }),
  call({ name: "getPet", arguments: [1, 2] }),
  call({ name: "getPet" }, { extra: true }),
  call("params"),
  call(null),
  { jsonrpc: "2.0", id: 1.5, method: "tools/call", params: { name: "getPet" } },
  { jsonrpc: "2.0", id: null, method: "tools/call" },
  { jsonrpc: "1.0", id: 1, method: "tools/call" },
  { jsonrpc: "2.0", id: 1, method: 5 },
  { jsonrpc: "2.0", method: "notifications/initialized" },
  { jsonrpc: "2.0", id: 1, result: {} },
  { jsonrpc: "2.0", id: 1, error: { code: -1, message: "x" } },
  [call({ name: "getPet" })],
  "tools/call",
  null
]

describe("plain request classification", () => {
  it("takes only requests the SDK's schema accepts", () => {
    let plain = 0
    for (const m of messages) {
      if (!isPlainRequest(m)) continue
      plain++
      assert.isTrue(isJSONRPCRequest(m), JSON.stringify(m))
    }
    assert.strictEqual(plain, 9) // the six plain ones, and three that only the call check refuses
  })

  it("takes only tool calls the SDK's schema accepts and leaves unchanged", () => {
    let plain = 0
    for (const m of messages) {
      if (!isPlainToolCall(m)) continue
      plain++
      const parsed = CallToolRequestSchema.safeParse(m)
      assert.isTrue(parsed.success, JSON.stringify(m))
      // the handler reads params: the parse would have given the same
      assert.deepStrictEqual(parsed.data?.params, (m as { params: unknown }).params as never)
    }
    assert.strictEqual(plain, 6) // incl. two whose envelope (extra key, fractional id) only the request check refuses
  })
})

describe("dispatch", () => {
  const connected = async () => {
    const server = new Server({ name: "t", version: "1" }, { capabilities: { tools: {} } })
    const seen: Array<unknown> = []
    const handle = async (request: CallToolRequest) => {
      seen.push(request.params)
      return { content: [{ type: "text" as const, text: `called ${request.params.name}` }] }
    }
    setToolCallHandler(server, handle)
    dispatchPlainRequests(server)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const client = new Client({ name: "c", version: "1" })
    await client.connect(clientSide)
    return { client, clientSide, seen }
  }

  it("answers plain calls, and leaves invalid ones to the SDK's validation", async () => {
    const { client, clientSide, seen } = await connected()
    const ok = await client.callTool({ name: "getPet", arguments: { petId: 1 } })
    assert.deepStrictEqual(ok.content, [{ type: "text", text: "called getPet" }])
    assert.deepStrictEqual(seen, [{ name: "getPet", arguments: { petId: 1 } }])
    // a malformed call (arguments not an object) gets the SDK's own invalid-params error, not a crash
    const answers: Array<JSONRPCMessage> = []
    const previous = clientSide.onmessage
    clientSide.onmessage = (m) => {
      answers.push(m)
    }
    await clientSide.send({ jsonrpc: "2.0", id: 99, method: "tools/call", params: { name: "getPet", arguments: [1] } } as never)
    for (let i = 0; i < 50 && answers.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    if (previous !== undefined) clientSide.onmessage = previous
    const answer = answers[0] as { id: number; error?: { code: number; message: string } }
    assert.strictEqual(answer.id, 99)
    assert.isDefined(answer.error, JSON.stringify(answer))
    assert.match(answer.error!.message, /arguments/)
    assert.strictEqual(seen.length, 1)
    await client.close()
  })
})
