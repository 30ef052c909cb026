/**
 * Calling the API as the MCP client's user: the server validates each client's OAuth token (a JWKS on a local
 * server) and exchanges it at a local token endpoint (RFC 8693) for a token to the API, once per user; the API
 * sees each user's own token. The SDK client over Streamable HTTP.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import { formOf, startJsonServer } from "../support/authServers.ts"
import { EXAMPLE_SPEC, startHttpServer, startRecorder, textOf } from "../support/processes.ts"

const ISSUER = "https://auth.example.com/"
const RESOURCE = "https://mcp.example.com/mcp"

describe("token exchange (AUTH_OAUTH2_GRANT=token_exchange)", () => {
  let jwks: Awaited<ReturnType<typeof startJsonServer>>
  let idp: Awaited<ReturnType<typeof startJsonServer>>
  let api: Awaited<ReturnType<typeof startRecorder>>
  let server: Awaited<ReturnType<typeof startHttpServer>>
  let sign: (sub: string) => Promise<string>
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256")
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }
    jwks = await startJsonServer(() => ({ status: 200, body: { keys: [jwk] } }))
    sign = (sub) =>
      new SignJWT({ iss: ISSUER, aud: RESOURCE, sub }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuedAt().setExpirationTime("5m").sign(privateKey)
    // the token endpoint names the API token after the user whose token it exchanged
    idp = await startJsonServer((r) => {
      const subject = JSON.parse(Buffer.from(formOf(r)["subject_token"]!.split(".")[1]!, "base64url").toString()) as { sub: string }
      return { status: 200, body: { access_token: `api-token-of-${subject.sub}`, token_type: "Bearer", expires_in: 3600 } }
    })
    api = await startRecorder(() => ({ status: 200, headers: { "content-type": "application/json" }, body: "{\"id\":1,\"name\":\"Rex\"}" }))
    server = await startHttpServer(["--spec", EXAMPLE_SPEC, "--base-url", api.url], {
      MCP_OAUTH_JWKS_URL: `${jwks.url}/jwks.json`, MCP_OAUTH_ISSUER: ISSUER, MCP_OAUTH_AUDIENCE: RESOURCE,
      AUTH_TYPE: "oauth2", AUTH_OAUTH2_GRANT: "token_exchange", AUTH_OAUTH2_TOKEN_URL: `${idp.url}/token`,
      AUTH_OAUTH2_CLIENT_ID: "mcp-server", AUTH_OAUTH2_CLIENT_SECRET: "server-secret", AUTH_OAUTH2_AUDIENCE: "https://api.example.com",
      CACHE_BACKEND: "none"
    })
  })
  afterAll(async () => {
    await server?.stop()
    await Promise.all([jwks?.close(), idp?.close(), api?.close()])
  })

  const clientOf = async (user: string) => {
    const client = new Client({ name: user, version: "1" })
    const headers = { authorization: `Bearer ${await sign(user)}` }
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), { requestInit: { headers } }))
    return client
  }

  it("calls the API with each user's own token, got once per user", async () => {
    const [alice, bob] = await Promise.all([clientOf("alice"), clientOf("bob")])
    try {
      for (const client of [alice, bob, alice, bob]) {
        const result = await client.callTool({ name: "getPet", arguments: { petId: 1 } })
        assert.deepStrictEqual(result.structuredContent, { id: 1, name: "Rex" }, textOf(result))
      }
      assert.deepStrictEqual(api.requests.map((r) => r.headers.authorization), [
        "Bearer api-token-of-alice", "Bearer api-token-of-bob", "Bearer api-token-of-alice", "Bearer api-token-of-bob"
      ])
      assert.strictEqual(idp.seen.length, 2)
      assert.deepStrictEqual(idp.seen.map((r) => formOf(r)["grant_type"]), Array(2).fill("urn:ietf:params:oauth:grant-type:token-exchange"))
      // the client's own token never reaches the API
      assert.isTrue(api.requests.every((r) => !String(r.headers.authorization).includes(".")))
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })
})
