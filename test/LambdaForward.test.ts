/**
 * The Lambda handler with MCP_FORWARD_HEADERS: each invocation's own header goes to the API with its tool call
 * (a Function URL serving many users, each with their API key). Its own file: the handler reads its settings
 * once per process (module), as Lambda does.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { event, loadHandler } from "./support/lambda.ts"
import { startRecorder } from "./support/processes.ts"

describe("Lambda handler, forwarding each caller's header", () => {
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let handler: typeof import("../src/Lambda.ts").handler
  beforeAll(async () => {
    upstream = await startRecorder()
    handler = await loadHandler(upstream.url, { MCP_FORWARD_HEADERS: "X-Api-Key", CACHE_BACKEND: "none" })
  })
  afterAll(async () => {
    for (const key of ["MCP_FORWARD_HEADERS", "CACHE_BACKEND"]) delete process.env[key]
    await upstream?.close()
  })

  it("sends each invocation's X-Api-Key with its own call", async () => {
    const call = (id: number, key: string) =>
      handler(event("POST", "/mcp", { jsonrpc: "2.0", id, method: "tools/call", params: { name: "getPet", arguments: { petId: id } } }, {
        "mcp-protocol-version": "2025-06-18", "X-Api-Key": key
      }))
    const [a, b] = await Promise.all([call(1, "key-of-ann"), call(2, "key-of-bob")])
    assert.strictEqual(a.statusCode, 200)
    assert.strictEqual(b.statusCode, 200)
    const keys = Object.fromEntries(upstream.requests.map((r) => [r.url, r.headers["x-api-key"]]))
    assert.deepStrictEqual(keys, { "/pets/1": "key-of-ann", "/pets/2": "key-of-bob" })
  })
})
