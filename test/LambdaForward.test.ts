/**
 * The Lambda handler with MCP_FORWARD_HEADERS: each invocation's own header goes to the API with its tool call
 * (a Function URL serving many users, each with their API key). Its own file: the handler reads its settings
 * once per process (module), as Lambda does.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { HttpEventV2 } from "../src/Lambda.ts"
import { EXAMPLE_SPEC, startRecorder } from "./support/processes.ts"

const post = (body: unknown, headers: Record<string, string>): HttpEventV2 => ({
  version: "2.0",
  routeKey: "$default",
  rawPath: "/mcp",
  rawQueryString: "",
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18", ...headers },
  requestContext: { http: { method: "POST", path: "/mcp", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" } },
  body: JSON.stringify(body),
  isBase64Encoded: false
}) as unknown as HttpEventV2

describe("Lambda handler, forwarding each caller's header", () => {
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let handler: typeof import("../src/Lambda.ts").handler
  beforeAll(async () => {
    upstream = await startRecorder()
    process.env["API_SPEC_PATH"] = EXAMPLE_SPEC
    process.env["API_BASE_URL"] = upstream.url
    process.env["LOG_LEVEL"] = "error"
    process.env["MCP_FORWARD_HEADERS"] = "X-Api-Key"
    process.env["CACHE_BACKEND"] = "none"
    ;({ handler } = await import("../src/Lambda.ts"))
  })
  afterAll(async () => {
    for (const key of ["MCP_FORWARD_HEADERS", "CACHE_BACKEND"]) delete process.env[key]
    await upstream?.close()
  })

  it("sends each invocation's X-Api-Key with its own call", async () => {
    const call = (id: number, key: string) =>
      handler(post({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "getPet", arguments: { petId: id } } }, { "X-Api-Key": key }))
    const [a, b] = await Promise.all([call(1, "key-of-ann"), call(2, "key-of-bob")])
    assert.strictEqual(a.statusCode, 200)
    assert.strictEqual(b.statusCode, 200)
    const keys = Object.fromEntries(upstream.requests.map((r) => [r.url, r.headers["x-api-key"]]))
    assert.deepStrictEqual(keys, { "/pets/1": "key-of-ann", "/pets/2": "key-of-bob" })
  })
})
