/**
 * The fast first step for incoming requests: it may only take messages the SDK would accept as they are,
 * and everything else must still reach the SDK's own path (its validation and its errors).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import {
  type CallToolRequest, CallToolRequestSchema, ErrorCode, isJSONRPCRequest, type JSONRPCMessage, McpError
} from "@modelcontextprotocol/sdk/types.js"
import { assert, describe, it } from "@effect/vitest"
import {
  dispatchPlainRequests, inFlightCalls, isPlainRequest, isPlainToolCall, setToolCallHandler, type ToolCallExtra
} from "../../src/McpServer/Dispatch.ts"

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

describe("tool calls answered without the Protocol's dispatch", () => {
  /** A server whose plain tool calls go straight to `handle`, and the raw client end of its transport. */
  const direct = async (handle: (request: CallToolRequest, extra: ToolCallExtra) => Promise<{ content: Array<{ type: "text"; text: string }> }>) => {
    const server = new Server({ name: "t", version: "1" }, { capabilities: { tools: {} } })
    const inFlight = inFlightCalls(server)
    assert.isDefined(inFlight, "the SDK's cancel and close handlers are where this was written against")
    setToolCallHandler(server, handle)
    dispatchPlainRequests(server, { handle, inFlight: inFlight! })
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    const received: Array<JSONRPCMessage> = []
    clientSide.onmessage = (m) => void received.push(m)
    await server.connect(serverSide)
    await clientSide.start()
    const send = (m: unknown) => clientSide.send(m as JSONRPCMessage)
    const answerTo = async (id: number) => {
      for (let i = 0; i < 100; i++) {
        const found = received.find((m) => (m as { id?: unknown }).id === id)
        if (found !== undefined) return found as { result?: { content: Array<{ type: string; text: string }> }; error?: { code: number; message: string; data?: unknown } }
        await new Promise((r) => setTimeout(r, 5))
      }
      return undefined
    }
    return { send, received, answerTo }
  }

  it("answers as the Protocol does: the result, an McpError's code and data, or an internal error", async () => {
    const extras: Array<ToolCallExtra> = []
    const { send, answerTo } = await direct(async (request, extra) => {
      extras.push(extra)
      if (request.params.name === "invalid") throw new McpError(ErrorCode.InvalidParams, "petId must be a number", { argument: "petId" })
      if (request.params.name === "broken") throw new Error("boom")
      return { content: [{ type: "text", text: `called ${request.params.name}` }] }
    })
    await send(call({ name: "getPet", arguments: { petId: 1 } }, { id: 1 }))
    await send(call({ name: "invalid" }, { id: 2 }))
    await send(call({ name: "broken" }, { id: 3 }))
    assert.deepStrictEqual((await answerTo(1))?.result?.content, [{ type: "text", text: "called getPet" }])
    assert.deepStrictEqual((await answerTo(2))?.error, { code: ErrorCode.InvalidParams, message: "MCP error -32602: petId must be a number", data: { argument: "petId" } })
    assert.deepStrictEqual((await answerTo(3))?.error, { code: ErrorCode.InternalError, message: "boom" })
    // the direct path (the Protocol's would have given an abort signal), with the request's id
    assert.deepStrictEqual(extras.map((e) => [e.requestId, e.signal]), [[1, undefined], [2, undefined], [3, undefined]])
  })

  it("gives a cancelled call no answer and stops its notifications; other calls go on", async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((r) => (release = r))
    const progress = (extra: ToolCallExtra, n: number) =>
      extra.sendNotification({ method: "notifications/progress", params: { progressToken: "p", progress: n } })
    const { send, received, answerTo } = await direct(async (request, extra) => {
      if (request.params.name === "slow") {
        await progress(extra, 1)
        await held
        await progress(extra, 2)
      }
      return { content: [{ type: "text", text: `called ${request.params.name}` }] }
    })
    await send(call({ name: "slow", _meta: { progressToken: "p" } }, { id: 5 }))
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
    await send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 5, reason: "changed my mind" } })
    release()
    await send(call({ name: "fast" }, { id: 6 }))
    assert.deepStrictEqual((await answerTo(6))?.result?.content, [{ type: "text", text: "called fast" }])
    await new Promise((r) => setTimeout(r, 50))
    assert.isUndefined(received.find((m) => (m as { id?: unknown }).id === 5))
    const notes = received.filter((m) => (m as { method?: string }).method === "notifications/progress")
    assert.deepStrictEqual(notes.map((m) => (m as unknown as { params: { progress: number } }).params.progress), [1])
  })
})
