/**
 * The Lambda handler checks clients as the HTTP server does (MCP_AUTH_TOKEN here; the Origin check too): a
 * Function URL with auth type NONE is not left open when the operator set a token. Its own file: the handler
 * reads its settings once per process (module), as Lambda does.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { event, loadHandler } from "./support/lambda.ts"
import { startRecorder } from "./support/processes.ts"

describe("Lambda handler, with clients authenticated (MCP_AUTH_TOKEN)", () => {
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let handler: typeof import("../src/Lambda.ts").handler
  const TOKEN = "lambda-client-token-42"
  beforeAll(async () => {
    upstream = await startRecorder()
    handler = await loadHandler(upstream.url, { MCP_AUTH_TOKEN: TOKEN, CACHE_BACKEND: "none" })
  })
  afterAll(async () => {
    for (const key of ["MCP_AUTH_TOKEN", "CACHE_BACKEND"]) delete process.env[key]
    await upstream?.close()
  })

  const call = (headers: Record<string, string>) =>
    handler(event("POST", "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "getPet", arguments: { petId: 1 } } }, {
      "mcp-protocol-version": "2025-06-18", ...headers
    }))

  it("refuses a call without the token, with a wrong one, or from a foreign Origin, before the API is called", async () => {
    const missing = await call({})
    assert.strictEqual(missing.statusCode, 401)
    assert.match(missing.headers["www-authenticate"] ?? "", /^Bearer/)
    assert.strictEqual((await call({ authorization: "Bearer nope" })).statusCode, 401)
    assert.strictEqual((await call({ authorization: `Bearer ${TOKEN}`, origin: "https://evil.example" })).statusCode, 403)
    assert.strictEqual(upstream.requests.length, 0)
    const ok = await call({ authorization: `Bearer ${TOKEN}` })
    assert.strictEqual(ok.statusCode, 200)
    assert.strictEqual(upstream.requests.length, 1)
    assert.notInclude(missing.body + ok.body, TOKEN)
  })
})
