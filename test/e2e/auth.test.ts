/**
 * Outbound auth through the built CLI, against local identity providers and a recording upstream:
 * OAuth2 tokens cached and renewed once on a 401, Cognito's user-password flow, SigV4 signatures checked by
 * an independent verifier on the requests as they arrived, spec-driven scheme credentials from the config
 * file, and failures of the identity provider as tool errors. Known secrets must appear in no log line,
 * error or tool output.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { formOf, startJsonServer } from "../support/authServers.ts"
import { connectStdio, fixture, freePort, startRecorder, textOf } from "../support/processes.ts"
import { verifySigV4 } from "../support/sigv4.ts"

const CLIENT_SECRET = "CLIENT-SECRET-e2e-4242"
const PASSWORD = "Cognito-Pa55-e2e-7777"
const AWS_SECRET = "AWS-SECRET-e2e-9999/+abc"

const everyOutput = (mcp: { stderr: () => string }, results: ReadonlyArray<unknown>) =>
  [mcp.stderr(), ...results.map((r) => JSON.stringify(r))].join("\n")

describe("outbound auth: OAuth2 client credentials", () => {
  let idp: Awaited<ReturnType<typeof startJsonServer>>
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  const results: Array<unknown> = []
  beforeAll(async () => {
    idp = await startJsonServer((_r, n) => ({ status: 200, body: { access_token: `access-token-${n}-xyz`, token_type: "Bearer", expires_in: 3600 } }))
    // the upstream revokes the first token: its calls answer 401
    upstream = await startRecorder((r) =>
      r.headers.authorization === "Bearer access-token-1-xyz"
        ? { status: 401, headers: { "content-type": "application/json", "www-authenticate": "Bearer error=\"invalid_token\"" }, body: "{\"message\":\"token revoked\"}" }
        : { status: 200, headers: { "content-type": "application/json" }, body: "{\"ok\":true}" }
    )
    mcp = await connectStdio(["--spec", fixture("security.yaml"), "--base-url", upstream.url], {
      AUTH_TYPE: "oauth2", AUTH_OAUTH2_TOKEN_URL: `${idp.url}/oauth2/token`, AUTH_OAUTH2_CLIENT_ID: "svc",
      AUTH_OAUTH2_CLIENT_SECRET: CLIENT_SECRET, AUTH_OAUTH2_SCOPES: "pets:read pets:write", LOG_LEVEL: "debug"
    })
  })
  afterAll(async () => {
    await mcp?.close()
    await upstream?.close()
    await idp?.close()
  })

  it("gets a token, renews it once when the upstream answers 401, retries, and reuses the new token", async () => {
    const first = await mcp.client.callTool({ name: "publicOp", arguments: {} })
    results.push(first)
    assert.isUndefined(first.isError, textOf(first))
    assert.deepStrictEqual(first.structuredContent, { ok: true })
    assert.deepStrictEqual(upstream.requests.map((r) => r.headers.authorization), ["Bearer access-token-1-xyz", "Bearer access-token-2-xyz"])
    const second = await mcp.client.callTool({ name: "usesDefault", arguments: {} })
    results.push(second)
    assert.isUndefined(second.isError)
    assert.strictEqual(upstream.requests[2]!.headers.authorization, "Bearer access-token-2-xyz")
    assert.strictEqual(idp.seen.length, 2)
    assert.deepStrictEqual(formOf(idp.seen[0]!), { grant_type: "client_credentials", scope: "pets:read pets:write" })
  })

  it("keeps secrets and tokens out of every log line and tool result", () => {
    const all = everyOutput(mcp, results)
    assert.include(all, "oauth2: token obtained from")
    for (const secret of [CLIENT_SECRET, "access-token-1-xyz", "access-token-2-xyz", Buffer.from(`svc:${CLIENT_SECRET}`).toString("base64")]) {
      assert.notInclude(all, secret)
    }
  })
})

describe("outbound auth: identity provider failures are tool errors", () => {
  it("an unreachable token endpoint or refused credentials give isError results; the server keeps serving", async () => {
    const upstream = await startRecorder()
    const port = await freePort()
    const refusing = await startJsonServer(() => ({ status: 400, body: { error: "invalid_client", error_description: `client secret ${CLIENT_SECRET} is wrong` } }))
    const down = await connectStdio(["--spec", fixture("security.yaml"), "--base-url", upstream.url], {
      AUTH_TYPE: "oauth2", AUTH_OAUTH2_TOKEN_URL: `http://127.0.0.1:${port}/token`, AUTH_OAUTH2_CLIENT_ID: "svc", AUTH_OAUTH2_CLIENT_SECRET: CLIENT_SECRET
    })
    const refused = await connectStdio(["--spec", fixture("security.yaml"), "--base-url", upstream.url], {
      AUTH_TYPE: "oauth2", AUTH_OAUTH2_TOKEN_URL: refusing.url, AUTH_OAUTH2_CLIENT_ID: "svc", AUTH_OAUTH2_CLIENT_SECRET: CLIENT_SECRET, LOG_LEVEL: "debug"
    })
    try {
      const a = await down.client.callTool({ name: "publicOp", arguments: {} })
      assert.isTrue(a.isError)
      assert.strictEqual(textOf(a),
        `publicOp failed: could not get a credential: http://127.0.0.1:${port}/token could not be reached (ECONNREFUSED); the API was not called. Try again later.`)
      assert.deepStrictEqual(a.structuredContent, { error: "auth", reason: "AuthUnreachable" })
      assert.strictEqual((await down.client.listTools()).tools.length, 8)
      const b = await refused.client.callTool({ name: "publicOp", arguments: {} })
      assert.isTrue(b.isError)
      assert.include(textOf(b), "refused the configured credentials (HTTP 400: invalid_client: client secret <redacted> is wrong)")
      assert.strictEqual(upstream.requests.length, 0)
      const all = everyOutput(refused, [a, b]) + down.stderr()
      assert.notInclude(all, CLIENT_SECRET)
    } finally {
      await down.close()
      await refused.close()
      await refusing.close()
      await upstream.close()
    }
  })
})

describe("outbound auth: Cognito user-password flow", () => {
  it("signs in with InitiateAuth and sends the ID token; the password stays secret", async () => {
    const cognito = await startJsonServer(() => ({
      status: 200,
      body: { AuthenticationResult: { IdToken: "cognito-id-token", AccessToken: "cognito-access-token", RefreshToken: "r", ExpiresIn: 3600 } }
    }))
    const upstream = await startRecorder()
    const mcp = await connectStdio(["--spec", fixture("security.yaml"), "--base-url", upstream.url], {
      AUTH_TYPE: "cognito", AUTH_COGNITO_CLIENT_ID: "app", AUTH_COGNITO_USERNAME: "alice", AUTH_COGNITO_PASSWORD: PASSWORD,
      AUTH_COGNITO_USER_POOL_ID: "eu-west-1_Pool", AUTH_COGNITO_ENDPOINT: cognito.url, LOG_LEVEL: "debug"
    })
    try {
      const result = await mcp.client.callTool({ name: "publicOp", arguments: {} })
      assert.isUndefined(result.isError, textOf(result))
      assert.strictEqual(upstream.requests[0]!.headers.authorization, "Bearer cognito-id-token")
      assert.strictEqual(cognito.seen[0]!.headers["x-amz-target"], "AWSCognitoIdentityProviderService.InitiateAuth")
      const all = everyOutput(mcp, [result])
      assert.notInclude(all, PASSWORD)
      assert.notInclude(all, "cognito-id-token")
    } finally {
      await mcp.close()
      await upstream.close()
      await cognito.close()
    }
  })
})

describe("outbound auth: SigV4", () => {
  const creds = { accessKeyId: "AKIDE2ETEST", secretAccessKey: AWS_SECRET, sessionToken: "e2e-session-token" }
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  const results: Array<unknown> = []
  beforeAll(async () => {
    upstream = await startRecorder()
    mcp = await connectStdio(["--spec", fixture("wire.yaml"), "--base-url", `${upstream.url}/prod`], {
      AUTH_TYPE: "sigv4", AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey, AWS_SESSION_TOKEN: creds.sessionToken, LOG_LEVEL: "debug"
    })
  })
  afterAll(async () => {
    await mcp?.close()
    await upstream?.close()
  })

  it("every request verifies against its own bytes: query styles, headers, cookies, JSON, form and multipart bodies", async () => {
    const calls: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
      ["styles", {
        id: "a b/c", label: ["x", "y"], matrix: ["m1", "m2"], tags: ["t1", "t2"], ids: [1, 2, 3], words: ["hello", "big world"],
        pipes: ["p", "q"], filter: { color: "red", size: "L" }, q: "x&y=z+1", "X-Trace": ["u", "v"], session: "abc 123"
      }],
      ["postJson", { name: "Rëx", nested: { a: true } }],
      ["postForm", { name: "a b&c", colors: ["red", "blue"] }],
      ["upload", { file: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 255]).toString("base64"), note: "n", meta: { k: "v" } }],
      ["putText", { body: "plain text" }],
      ["secure", {}]
    ]
    for (const [name, args] of calls) {
      const result = await mcp.client.callTool({ name, arguments: args })
      results.push(result)
      assert.isUndefined(result.isError, `${name}: ${textOf(result)}`)
    }
    assert.strictEqual(upstream.requests.length, calls.length)
    for (const r of upstream.requests) {
      const verdict = await verifySigV4(r, creds)
      assert.isTrue(verdict.ok, `${r.method} ${r.url}: ${verdict.reason}`)
      assert.strictEqual(verdict.region, "eu-west-1")
      assert.strictEqual(verdict.service, "execute-api")
      assert.strictEqual(r.headers["x-amz-security-token"], "e2e-session-token")
      assert.includeMembers([...verdict.signedHeaders], ["host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"])
    }
    // the query went out in SigV4's canonical encoding, with the same values
    const styles = upstream.requests[0]!
    assert.include(styles.url, "/prod/items/a%20b%2Fc/.x,y/;matrix=m1;matrix=m2?")
    assert.include(styles.url, "q=x%26y%3Dz%2B1")
    assert.include(styles.url, "pipes=p%7Cq")
    assert.include(styles.url, "filter%5Bcolor%5D=red")
    // the multipart body was signed as sent, boundary included
    assert.match(String(upstream.requests[3]!.headers["content-type"]), /^multipart\/form-data; boundary=/)
    // tampering is detected
    const tampered = await verifySigV4({ ...upstream.requests[1]!, body: Buffer.from("{\"name\":\"evil\"}") }, creds)
    assert.isFalse(tampered.ok)
  })

  it("never logs or returns the AWS secret key or the signature", () => {
    const all = everyOutput(mcp, results)
    assert.notInclude(all, AWS_SECRET)
    for (const r of upstream.requests) assert.notInclude(all, String(r.headers.authorization).split("Signature=")[1]!)
  })
})

describe("outbound auth: spec-driven security schemes", () => {
  it("sends each operation the credential its security requirement names, from the config file and AUTH_SCHEME_*", async () => {
    const upstream = await startRecorder()
    const dir = mkdtempSync(join(tmpdir(), "schemes-"))
    writeFileSync(join(dir, "key"), "file-api-key\n")
    const config = join(dir, "config.yaml")
    writeFileSync(config, [
      "security_schemes:",
      `  apiKeyHeader: { value: "file:${join(dir, "key")}" }`,
      "  bearerAuth: { value: \"env:MY_BEARER\" }",
      "  basicAuth: \"literal:bob:builder\""
    ].join("\n"))
    const mcp = await connectStdio(["--spec", fixture("security.yaml"), "--base-url", upstream.url, "--config", config], {
      MY_BEARER: "env-bearer-token", AUTH_SCHEME_APIKEYQUERY: "query-key", AUTH_SCHEME_APIKEYCOOKIE: "cookie-key"
    })
    try {
      const call = async (name: string) => {
        const result = await mcp.client.callTool({ name, arguments: {} })
        return { result, request: upstream.requests[upstream.requests.length - 1]! }
      }
      assert.strictEqual((await call("either")).request.headers["x-api-key"], "file-api-key")
      assert.strictEqual((await call("usesDefault")).request.headers.authorization, "Bearer env-bearer-token")
      assert.strictEqual((await call("basicOp")).request.headers.authorization, `Basic ${Buffer.from("bob:builder").toString("base64")}`)
      const both = (await call("both")).request
      assert.strictEqual(both.url, "/both?api_key=query-key")
      assert.strictEqual(both.headers.cookie, "session=cookie-key")
      const publicOp = (await call("publicOp")).request
      assert.isUndefined(publicOp.headers.authorization)
      assert.isUndefined(publicOp.headers["x-api-key"])
      const before = upstream.requests.length
      const missing = await mcp.client.callTool({ name: "oauthOp", arguments: {} })
      assert.isTrue(missing.isError)
      assert.include(textOf(missing), "no credential for this operation: oauthOp needs one of: oauth (oauth2, scopes read)")
      assert.strictEqual(upstream.requests.length, before)
    } finally {
      await mcp.close()
      await upstream.close()
    }
  })
})
