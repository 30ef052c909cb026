/**
 * Inbound security of the Streamable HTTP transport, through the built CLI: Origin checks (DNS-rebinding
 * protection), the static bearer token, OAuth 2.1 resource-server mode against a local JWKS (with the
 * protected-resource metadata), body size, session limits and idle expiry, and the headers forwarded to the
 * API (MCP_FORWARD_HEADERS).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startJsonServer } from "../support/authServers.ts"
import { connectStdio, EXAMPLE_SPEC, fixture, runCli, startHttpServer, startRecorder, textOf, waitFor } from "../support/processes.ts"

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }

const post = (base: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

/** Status, one header and the body text of an initialize POST. */
const initialize = async (base: string, headers: Record<string, string> = {}) => {
  const res = await post(base, INIT, headers)
  const text = await res.text()
  return { status: res.status, session: res.headers.get("mcp-session-id"), wwwAuthenticate: res.headers.get("www-authenticate"), text }
}

const sdkClient = async (base: string, headers: Record<string, string>) => {
  const client = new Client({ name: "test-client", version: "1.0.0" })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers } }))
  return client
}

describe("inbound: Origin, static token, body size, sessions per client", () => {
  let server: Awaited<ReturnType<typeof startHttpServer>>
  const TOKEN = "inbound-static-token-0123"
  beforeAll(async () => {
    // the token comes from a mounted secret file (a secret reference)
    const tokenFile = join(mkdtempSync(join(tmpdir(), "inbound-")), "token")
    writeFileSync(tokenFile, `${TOKEN}\n`)
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", "http://127.0.0.1:1"], {
      MCP_AUTH_TOKEN: `file:${tokenFile}`, MCP_ALLOWED_ORIGINS: "https://app.example.com", MCP_MAX_BODY_BYTES: "2048",
      MCP_MAX_SESSIONS_PER_CLIENT: "3"
    })
  })
  afterAll(async () => {
    await server?.stop()
  })
  const auth = { authorization: `Bearer ${TOKEN}` }

  it("refuses a foreign Origin with 403 (DNS rebinding), accepts localhost origins, listed origins and no Origin", async () => {
    for (const origin of ["http://evil.example", "http://127.0.0.1.evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com"]) {
      const r = await initialize(server.base, { ...auth, origin })
      assert.strictEqual(r.status, 403, origin)
      assert.include(r.text, "is not allowed (MCP_ALLOWED_ORIGINS)")
    }
    for (const origin of ["http://localhost:6274", "http://127.0.0.1:3000", "https://app.example.com"]) {
      const r = await initialize(server.base, { ...auth, origin })
      assert.strictEqual(r.status, 200, origin)
      await fetch(`${server.base}/mcp`, { method: "DELETE", headers: { ...auth, "mcp-session-id": r.session! } })
    }
  })

  it("lets a browser page of an allowed origin call (CORS): preflight without credentials, session id readable; not a foreign one", async () => {
    const preflight = (origin: string) =>
      fetch(`${server.base}/mcp`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, mcp-protocol-version" }
      })
    const ok = await preflight("https://app.example.com")
    assert.strictEqual(ok.status, 204)
    assert.strictEqual(ok.headers.get("access-control-allow-origin"), "https://app.example.com")
    assert.include(ok.headers.get("access-control-allow-methods")!, "POST")
    assert.strictEqual(ok.headers.get("access-control-allow-headers"), "authorization, content-type, mcp-protocol-version")
    const foreign = await preflight("https://evil.example")
    assert.strictEqual(foreign.status, 403)
    assert.isNull(foreign.headers.get("access-control-allow-origin"))
    const res = await post(server.base, INIT, { ...auth, origin: "http://localhost:5173" })
    assert.strictEqual(res.status, 200)
    assert.strictEqual(res.headers.get("access-control-allow-origin"), "http://localhost:5173")
    assert.include(res.headers.get("access-control-expose-headers")!, "mcp-session-id")
    await res.text()
    await fetch(`${server.base}/mcp`, { method: "DELETE", headers: { ...auth, "mcp-session-id": res.headers.get("mcp-session-id")! } })
    // a denied request of an allowed origin is readable too (the page learns why)
    const unauthorized = await post(server.base, INIT, { origin: "https://app.example.com" })
    assert.strictEqual(unauthorized.status, 401)
    assert.strictEqual(unauthorized.headers.get("access-control-allow-origin"), "https://app.example.com")
  })

  it("answers 401 without the token or with a wrong one, and serves the SDK client that sends it", async () => {
    const missing = await initialize(server.base)
    assert.strictEqual(missing.status, 401)
    assert.strictEqual(missing.wwwAuthenticate, "Bearer realm=\"openapi-mcp-server\"")
    const wrong = await initialize(server.base, { authorization: "Bearer nope" })
    assert.strictEqual(wrong.status, 401)
    assert.include(wrong.wwwAuthenticate!, "error=\"invalid_token\"")
    const client = await sdkClient(server.base, auth)
    assert.strictEqual((await client.listTools()).tools.length, 6)
    await (client.transport as StreamableHTTPClientTransport).terminateSession()
    await client.close()
    // the health check stays open for load balancers
    assert.strictEqual((await fetch(`${server.base}/healthz`)).status, 200)
  })

  it("answers 413 to a body over MCP_MAX_BODY_BYTES, declared or streamed", async () => {
    const big = JSON.stringify({ ...INIT, padding: "x".repeat(4000) })
    const declared = await post(server.base, big, auth)
    assert.strictEqual(declared.status, 413)
    assert.include(await declared.text(), "over 2048 bytes (MCP_MAX_BODY_BYTES)")
    const streamed = await fetch(`${server.base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...auth },
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(big)); c.close() } }),
      duplex: "half"
    } as RequestInit)
    assert.strictEqual(streamed.status, 413)
  })

  it("answers 429 when one client opens more than MCP_MAX_SESSIONS_PER_CLIENT sessions", async () => {
    const opened: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const r = await initialize(server.base, auth)
      assert.strictEqual(r.status, 200)
      opened.push(r.session!)
    }
    const refused = await initialize(server.base, auth)
    assert.strictEqual(refused.status, 429)
    assert.include(refused.text, "MCP_MAX_SESSIONS_PER_CLIENT")
    await fetch(`${server.base}/mcp`, { method: "DELETE", headers: { ...auth, "mcp-session-id": opened[0]! } })
    assert.strictEqual((await initialize(server.base, auth)).status, 200)
  })
})

describe("inbound: sessions in all and idle expiry", () => {
  let server: Awaited<ReturnType<typeof startHttpServer>>
  beforeAll(async () => {
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", "http://127.0.0.1:1"], {
      MCP_MAX_SESSIONS: "2", MCP_SESSION_IDLE_SECONDS: "1"
    })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("answers 503 past MCP_MAX_SESSIONS, and 404 'Session expired' for a session idle past MCP_SESSION_IDLE_SECONDS", async () => {
    const a = await initialize(server.base)
    const b = await initialize(server.base)
    assert.strictEqual(a.status, 200)
    assert.strictEqual(b.status, 200)
    const full = await initialize(server.base)
    assert.strictEqual(full.status, 503)
    assert.include(full.text, "MCP_MAX_SESSIONS")
    await new Promise((r) => setTimeout(r, 2500))
    const expired = await post(server.base, { jsonrpc: "2.0", id: 2, method: "tools/list" }, { "mcp-session-id": a.session!, "mcp-protocol-version": "2025-06-18" })
    assert.strictEqual(expired.status, 404)
    assert.include(await expired.text(), "Session expired: no request for 1 s (MCP_SESSION_IDLE_SECONDS)")
    // the expired sessions no longer count
    assert.strictEqual((await initialize(server.base)).status, 200)
  })
})

describe("inbound: OAuth 2.1 resource server", () => {
  let server: Awaited<ReturnType<typeof startHttpServer>>
  let jwks: Awaited<ReturnType<typeof startJsonServer>>
  type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"]
  let sign: (claims: Record<string, unknown>, options?: { key?: Key; expiresIn?: string }) => Promise<string>
  let otherKey: Key
  const ISSUER = "https://auth.example.com/"
  const RESOURCE = "https://mcp.example.com/mcp"
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256")
    otherKey = (await generateKeyPair("RS256")).privateKey
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }
    jwks = await startJsonServer(() => ({ status: 200, body: { keys: [jwk] } }))
    sign = (claims, options = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuedAt()
        .setExpirationTime(options.expiresIn ?? "5m").sign(options.key ?? privateKey)
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", "http://127.0.0.1:1"], {
      MCP_OAUTH_JWKS_URL: `${jwks.url}/.well-known/jwks.json`, MCP_OAUTH_ISSUER: ISSUER, MCP_OAUTH_AUDIENCE: RESOURCE,
      MCP_OAUTH_SCOPES: "mcp:tools"
    })
  })
  afterAll(async () => {
    await server?.stop()
    await jwks?.close()
  })
  const good = { iss: ISSUER, aud: RESOURCE, sub: "user-1", scope: "openid mcp:tools" }
  const METADATA = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

  it("serves the protected-resource metadata (RFC 9728)", async () => {
    for (const path of ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]) {
      const res = await fetch(`${server.base}${path}`)
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(await res.json(), {
        resource: RESOURCE, authorization_servers: [ISSUER], bearer_methods_supported: ["header"], scopes_supported: ["mcp:tools"],
        resource_name: "openapi-mcp-server"
      })
    }
  })

  it("answers 401 with WWW-Authenticate pointing at the metadata, for a missing or invalid token", async () => {
    const missing = await initialize(server.base)
    assert.strictEqual(missing.status, 401)
    assert.strictEqual(missing.wwwAuthenticate, `Bearer resource_metadata="${METADATA}"`)
    const cases: ReadonlyArray<readonly [string, Promise<string>, string]> = [
      ["wrong audience", sign({ ...good, aud: "https://other.example.com" }), "'aud' claim"],
      ["wrong issuer", sign({ ...good, iss: "https://evil.example.com/" }), "'iss' claim"],
      ["expired", sign(good, { expiresIn: "-10m" }), "has expired"],
      ["foreign key", sign(good, { key: otherKey }), "signature is invalid"],
      ["garbage", Promise.resolve("not.a.jwt"), "not a valid JWT"]
    ]
    for (const [what, token, why] of cases) {
      const r = await initialize(server.base, { authorization: `Bearer ${await token}` })
      assert.strictEqual(r.status, 401, what)
      assert.include(r.wwwAuthenticate!, "error=\"invalid_token\"", what)
      assert.include(r.wwwAuthenticate!, `resource_metadata="${METADATA}"`, what)
      assert.include(r.text, why, what)
    }
  })

  it("answers 403 insufficient_scope for a token without the required scope", async () => {
    const r = await initialize(server.base, { authorization: `Bearer ${await sign({ ...good, scope: "openid" })}` })
    assert.strictEqual(r.status, 403)
    assert.include(r.wwwAuthenticate!, "error=\"insufficient_scope\", scope=\"mcp:tools\"")
  })

  it("serves a client with a valid token, and keeps its session to that subject", async () => {
    const token = await sign(good)
    const client = await sdkClient(server.base, { authorization: `Bearer ${token}` })
    assert.strictEqual((await client.listTools()).tools.length, 6)
    const session = (client.transport as StreamableHTTPClientTransport).sessionId!
    const stranger = await post(server.base, { jsonrpc: "2.0", id: 3, method: "tools/list" }, {
      authorization: `Bearer ${await sign({ ...good, sub: "user-2" })}`, "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"
    })
    assert.strictEqual(stranger.status, 404)
    await client.close()
  })
})

describe("inbound: each client's own credential (MCP_FORWARD_HEADERS)", () => {
  it("sends each client's chosen headers to the API with its calls, never this server's token, and no one else's", async () => {
    const upstream = await startRecorder()
    const server = await startHttpServer(["--spec", fixture("wire.yaml"), "--base-url", `${upstream.url}/api`], {
      MCP_AUTH_TOKEN: "server-token-1", MCP_FORWARD_HEADERS: "X-Trace,X-Upstream-Authorization=Authorization",
      AUTH_TYPE: "bearer", AUTH_TOKEN: "configured-token-9"
    })
    try {
      const alice = await sdkClient(server.base, {
        authorization: "Bearer server-token-1", "x-upstream-authorization": "Bearer alice-api-token", "x-trace": "alice"
      })
      const nobody = await sdkClient(server.base, { authorization: "Bearer server-token-1" })
      // the spec's X-Trace header parameter comes from the client now: not an argument
      const { tools } = await alice.listTools()
      assert.notProperty(tools.find((t) => t.name === "styles")!.inputSchema.properties, "X-Trace")
      assert.isUndefined((await alice.callTool({ name: "secure", arguments: {} })).isError)
      assert.isUndefined((await nobody.callTool({ name: "secure", arguments: {} })).isError)
      const [fromAlice, fromNobody] = upstream.requests
      assert.strictEqual(fromAlice!.headers["authorization"], "Bearer alice-api-token")
      assert.strictEqual(fromAlice!.headers["x-trace"], "alice")
      assert.isUndefined(fromAlice!.headers["x-upstream-authorization"])
      // a client that sends none gets the configured credential (and not alice's cached answer: the cache key covers the headers)
      assert.strictEqual(fromNobody!.headers["authorization"], "Bearer configured-token-9")
      assert.isUndefined(fromNobody!.headers["x-trace"])
      for (const r of upstream.requests) assert.notInclude(JSON.stringify(r.headers), "server-token-1")
      assert.notInclude(server.stderr(), "alice-api-token")
      await alice.close()
      await nobody.close()
    } finally {
      await server.stop()
      await upstream.close()
    }
  })

  it("says in a 401 tool error that the client's own headers were sent", async () => {
    const upstream = await startRecorder(() => ({ status: 401, headers: { "content-type": "application/json" }, body: "{\"error\":\"bad key\"}" }))
    const server = await startHttpServer(["--spec", fixture("wire.yaml"), "--base-url", `${upstream.url}/api`], { MCP_FORWARD_HEADERS: "X-Api-Key" })
    try {
      const client = await sdkClient(server.base, { "x-api-key": "key-of-bob" })
      const result = await client.callTool({ name: "secure", arguments: {} })
      assert.isTrue(result.isError)
      assert.include(textOf(result), "Sent with the client's own x-api-key (MCP_FORWARD_HEADERS)")
      assert.notInclude(textOf(result), "key-of-bob")
      assert.strictEqual(upstream.requests[0]!.headers["x-api-key"], "key-of-bob")
      await client.close()
    } finally {
      await server.stop()
      await upstream.close()
    }
  })

  it("refuses to forward the Authorization that clients authenticate to this server with", async () => {
    const r = await runCli(["--spec", EXAMPLE_SPEC], { MCP_FORWARD_HEADERS: "authorization", MCP_AUTH_TOKEN: "server-token-2" })
    assert.strictEqual(r.code, 1)
    assert.include(r.stderr, "--mcp-forward-headers (MCP_FORWARD_HEADERS)")
    assert.include(r.stderr, "not Authorization while clients authenticate to this server")
    assert.notInclude(r.stderr, "server-token-2")
  })
})

describe("inbound: calls per minute per client (MCP_MAX_CALLS_PER_MINUTE), and the audit log", () => {
  it("refuses a client's calls past the limit without calling the API, over stdio and across a client's HTTP sessions; AUDIT_LOG names who called what", async () => {
    const api = await startRecorder()
    const env = { MCP_MAX_CALLS_PER_MINUTE: "2", AUDIT_LOG: "true" }
    const stdio = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--cache-backend", "none"], env)
    const http = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--cache-backend", "none"], env)
    /** The AUDIT_LOG lines of a server's stderr. */
    const audited = (stderr: string) =>
      stderr.split("\n").filter((l) => l.includes("\"tool call\"")).map((l) => JSON.parse(l) as Record<string, unknown>)
    const call = (client: Client) => client.callTool({ name: "getPet", arguments: { petId: 1 } })
    try {
      assert.isUndefined((await call(stdio.client)).isError)
      assert.isUndefined((await call(stdio.client)).isError)
      const refused = await call(stdio.client)
      assert.isTrue(refused.isError)
      assert.include(textOf(refused), "allows 2 tool calls per minute per client (MCP_MAX_CALLS_PER_MINUTE)")
      assert.deepInclude(refused.structuredContent as object, { error: "rate_limited" })
      assert.strictEqual(api.requests.length, 2)
      // over HTTP the client is its address (or its token's subject): two sessions of it share the limit
      const [a, b] = [await sdkClient(http.base, {}), await sdkClient(http.base, {})]
      assert.isUndefined((await call(a)).isError)
      assert.isUndefined((await call(b)).isError)
      assert.isTrue((await call(b)).isError)
      assert.strictEqual(api.requests.length, 4)
      await Promise.all([a.close(), b.close()])
      // AUDIT_LOG: one line per call, who and how it ended, never the arguments (stderr may come a moment after the answer)
      await waitFor(async () => audited(stdio.stderr()).length >= 3 && audited(http.stderr()).length >= 3, "the audit lines", 5000)
      assert.deepStrictEqual(audited(stdio.stderr()).map((l) => [l["tool"], l["client"], l["outcome"]]), [
        ["getPet", "stdio", "ok"], ["getPet", "stdio", "ok"], ["getPet", "stdio", "tool_error"]
      ])
      const overHttp = audited(http.stderr())
      assert.deepStrictEqual(overHttp.map((l) => [l["client"], l["outcome"]]), [["addr:127.0.0.1", "ok"], ["addr:127.0.0.1", "ok"], ["addr:127.0.0.1", "tool_error"]])
      assert.isTrue(overHttp.every((l) => typeof l["duration_ms"] === "number" && typeof l["session"] === "string" && !JSON.stringify(l).includes("petId")))
    } finally {
      await stdio.close()
      await http.stop()
      await api.close()
    }
  })
})
