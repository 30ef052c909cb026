/**
 * Auth against real local identity providers (node:http on 127.0.0.1): OAuth2 client credentials, both
 * Cognito flows, spec-driven scheme credentials, secret references and SigV4. Token lifetimes run on the
 * TestClock: expiry and proactive refresh are checked without waiting.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { FetchHttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import { generateKeyPairSync } from "node:crypto"
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { jwtVerify } from "jose"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { defaults, type Settings } from "../src/AppConfig.ts"
import { Auth, CallerToken } from "../src/Auth.ts"
import { cognitoRegion, hostedTokenUrl, idpEndpoint, secretHash } from "../src/Auth/Cognito.ts"
import { missing } from "../src/Auth/Errors.ts"
import { cognitoDefaults, oauth2Defaults, sigv4Defaults } from "../src/Auth/Settings.ts"
import { Secrets, SecretsManager } from "../src/Auth/Secrets.ts"
import { AwsCredentials } from "../src/Auth/SigV4.ts"
import type { Tool } from "../src/domain/Tool.ts"
import { buildRequest, type OutgoingRequest } from "../src/Invoker/RequestBuilder.ts"
import { loadSpec, SpecLoaderTest } from "./support/specs.ts"
import { mapSpec } from "../src/ToolCatalog/Mapping.ts"
import { basicOf, formOf, jsonServer, type Seen } from "./support/authServers.ts"
import { freePort, fixture } from "./support/processes.ts"
import { verifySigV4 } from "./support/sigv4.ts"

const AWS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session-tok" }

const deps = (env: Record<string, string> = {}, secrets: Record<string, string> = {}) =>
  Layer.mergeAll(
    Secrets.layerWith(env).pipe(Layer.provide(SecretsManager.layerTest(secrets))),
    FetchHttpClient.layer,
    AwsCredentials.layerTest(AWS)
  )

const makeAuth = (auth: Partial<Settings["auth"]>, env: Record<string, string> = {}, secrets: Record<string, string> = {}) =>
  Auth.make({ ...defaults.auth, ...auth }).pipe(Effect.provide(deps(env, secrets)))

/** The tools of test/fixtures/security.yaml, by operationId. */
const securityTools = Effect.gen(function*() {
  const spec = yield* loadSpec(fixture("security.yaml")).pipe(
    Effect.provide(SpecLoaderTest)
  )
  const { tools } = mapSpec(spec, {
    baseUrl: "http://127.0.0.1:1", includeTags: [], excludeTags: [], includeOperations: [], excludeOperations: [],
    toolNameMaxLength: 64, descriptionMaxLength: 1024
  })
  return new Map(tools.map((t) => [t.operationId, t]))
})

const get = (tools: Map<string, Tool>, id: string) => tools.get(id)!
const bare = (tool: Tool): OutgoingRequest => buildRequest(tool, {})
const bearerOf = (r: OutgoingRequest) => r.headers["authorization"]

const tokenReply = (prefix = "tok", expiresIn: number | undefined = 3600) => (_: Seen, n: number) => ({
  status: 200,
  body: { access_token: `${prefix}-${n}`, token_type: "Bearer", ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}) }
})

describe("Auth: OAuth2 client credentials", () => {
  it.effect("fetches a token (Basic client auth, scope, audience) and sends it as a bearer token", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply())
      const tools = yield* securityTools
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: {
          ...oauth2Defaults, tokenUrl: Option.some(`${idp.url}/oauth2/token`), clientId: Option.some("my client"),
          clientSecret: Option.some(Redacted.make("s3cr3t:&=")), scopes: ["read", "write"], audience: Option.some("https://api.example.com")
        }
      })
      const out = yield* auth.apply(bare(get(tools, "publicOp")), get(tools, "publicOp"))
      assert.strictEqual(bearerOf(out), "Bearer tok-1")
      assert.strictEqual(idp.seen.length, 1)
      const seen = idp.seen[0]!
      assert.strictEqual(seen.method, "POST")
      assert.strictEqual(seen.url, "/oauth2/token")
      assert.include(String(seen.headers["content-type"]), "application/x-www-form-urlencoded")
      assert.deepStrictEqual(basicOf(seen), ["my client", "s3cr3t:&="])
      assert.deepStrictEqual(formOf(seen), { grant_type: "client_credentials", audience: "https://api.example.com", scope: "read write" })
    }))

  it.effect("sends the client id and secret in the form with client auth 'post'", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply())
      const tools = yield* securityTools
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(idp.url), clientId: Option.some("cid"), clientSecret: Option.some(Redacted.make("sec")), clientAuth: "post" }
      })
      yield* auth.apply(bare(get(tools, "publicOp")), get(tools, "publicOp"))
      assert.isUndefined(idp.seen[0]!.headers.authorization)
      assert.deepStrictEqual(formOf(idp.seen[0]!), { grant_type: "client_credentials", client_id: "cid", client_secret: "sec" })
    }))

  it.effect("keeps the token until a minute before expiry, then fetches a new one before the old one expires", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply("tok", 3600))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(idp.url), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("s")) }
      })
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer tok-1")
      yield* TestClock.adjust("3539 seconds")
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer tok-1")
      assert.strictEqual(idp.seen.length, 1)
      // 60 s before the token's end (3600 s) it is no longer used: the next call fetches a fresh one
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer tok-2")
      assert.strictEqual(idp.seen.length, 2)
      // a short-lived token is renewed a tenth of its life early
      const short = yield* jsonServer(tokenReply("short", 100))
      const auth2 = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(short.url), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("s")) }
      })
      yield* auth2.apply(bare(tool), tool)
      yield* TestClock.adjust("89 seconds")
      yield* auth2.apply(bare(tool), tool)
      assert.strictEqual(short.seen.length, 1)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(bearerOf(yield* auth2.apply(bare(tool), tool)), "Bearer short-2")
    }))

  it.effect("concurrent calls share one token request", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply())
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(idp.url), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("s")) }
      })
      const out = yield* Effect.all(Array.from({ length: 20 }, () => auth.apply(bare(tool), tool)), { concurrency: "unbounded" })
      assert.deepStrictEqual(new Set(out.map(bearerOf)), new Set(["Bearer tok-1"]))
      assert.strictEqual(idp.seen.length, 1)
    }))

  it.effect("after a 401 the refused token is dropped once; a late 401 for an old token fetches nothing more", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply())
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(idp.url), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("s")) }
      })
      const first = yield* auth.apply(bare(tool), tool)
      assert.isTrue(yield* auth.refresh(first, tool))
      const second = yield* auth.apply(bare(tool), tool)
      assert.strictEqual(bearerOf(second), "Bearer tok-2")
      // another call that was sent with tok-1 reports its 401 late: tok-2 stays
      assert.isTrue(yield* auth.refresh(first, tool))
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer tok-2")
      assert.strictEqual(idp.seen.length, 2)
    }))

  it.effect("a token endpoint that refuses the client fails the call, naming the error but never the secret it echoed", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(() => ({ status: 401, body: { error: "invalid_client", error_description: "wrong secret very-secret-42" } }))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(`${idp.url}/token?tenant=x`), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("very-secret-42")) }
      })
      const error = yield* Effect.flip(auth.apply(bare(tool), tool))
      assert.strictEqual(error.reason._tag, "AuthRejected")
      assert.include(error.text, `${idp.url}/token refused the configured credentials (HTTP 401: invalid_client: wrong secret <redacted>)`)
      assert.notInclude(error.text, "very-secret-42")
      assert.notInclude(error.text, "tenant") // no query strings in messages
      // a failure is not cached: the next call asks again
      yield* Effect.flip(auth.apply(bare(tool), tool))
      assert.strictEqual(idp.seen.length, 2)
    }))

  it.effect("an unreachable token endpoint, a 5xx and an answer without a token are clear failures", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const port = yield* Effect.promise(() => freePort())
      const settings = (url: string) => ({
        type: "oauth2" as const,
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some(url), clientId: Option.some("c"), clientSecret: Option.some(Redacted.make("s")) }
      })
      const down = yield* Effect.flip((yield* makeAuth(settings(`http://127.0.0.1:${port}/token`))).apply(bare(tool), tool))
      assert.strictEqual(down.reason._tag, "AuthUnreachable")
      assert.include(down.text, `http://127.0.0.1:${port}/token could not be reached (ECONNREFUSED)`)
      const failing = yield* jsonServer(() => ({ status: 503, body: {} }))
      const unavailable = yield* Effect.flip((yield* makeAuth(settings(failing.url))).apply(bare(tool), tool))
      assert.strictEqual(unavailable.reason._tag, "AuthUnreachable")
      assert.include(unavailable.text, "HTTP 503")
      const empty = yield* jsonServer(() => ({ status: 200, body: { token_type: "Bearer" } }))
      const bad = yield* Effect.flip((yield* makeAuth(settings(empty.url))).apply(bare(tool), tool))
      assert.strictEqual(bad.reason._tag, "AuthBadResponse")
      assert.include(bad.text, "no access_token")
    }))

  it.effect("stops the start when a required setting is missing or the token URL is not http(s)", () =>
    Effect.gen(function*() {
      const noUrl = yield* Effect.flip(makeAuth({ type: "oauth2" }))
      assert.strictEqual(noUrl.message, "--auth-type oauth2 needs --auth-oauth2-token-url (or AUTH_OAUTH2_TOKEN_URL)")
      const ftp = yield* Effect.flip(makeAuth({ type: "oauth2", oauth2: { ...oauth2Defaults, tokenUrl: Option.some("ftp://x/token") } }))
      assert.include(ftp.message, "must be an http(s) URL")
      const noSecret = yield* Effect.flip(makeAuth({
        type: "oauth2", oauth2: { ...oauth2Defaults, tokenUrl: Option.some("https://x/token"), clientId: Option.some("c") }
      }))
      assert.include(noSecret.message, "--auth-oauth2-client-secret")
    }))
})

describe("Auth: OAuth2 private_key_jwt client authentication", () => {
  it.effect("signs a client assertion (RFC 7523) with the client's EC key instead of sending a secret", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply())
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      const auth = yield* makeAuth({
        type: "oauth2",
        oauth2: {
          ...oauth2Defaults, tokenUrl: Option.some(`${idp.url}/token`), clientId: Option.some("svc-app"), clientAuth: "private_key_jwt",
          clientKey: Option.some(Redacted.make("env:CLIENT_KEY_PEM")), clientKeyId: Option.some("key-2026")
        }
      }, { CLIENT_KEY_PEM: pem })
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer tok-1")
      const seen = idp.seen[0]!
      assert.isUndefined(seen.headers.authorization)
      const form = formOf(seen)
      assert.strictEqual(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
      assert.strictEqual(form["client_id"], "svc-app")
      assert.isUndefined(form["client_secret"])
      const verified = yield* Effect.promise(() => jwtVerify(form["client_assertion"]!, publicKey, { issuer: "svc-app", subject: "svc-app", audience: `${idp.url}/token` }))
      assert.deepInclude(verified.protectedHeader, { alg: "ES256", kid: "key-2026" })
      assert.isString(verified.payload.jti)
      assert.isAtMost(verified.payload.exp! - verified.payload.iat!, 120)
    }))

  it.effect("refuses to start without the key, or with one that cannot sign, naming the setting", () =>
    Effect.gen(function*() {
      const settings = (clientKey: Option.Option<Redacted.Redacted>) => ({
        type: "oauth2" as const,
        oauth2: { ...oauth2Defaults, tokenUrl: Option.some("https://idp/token"), clientId: Option.some("c"), clientAuth: "private_key_jwt" as const, clientKey }
      })
      assert.include((yield* Effect.flip(makeAuth(settings(Option.none())))).message, "--auth-oauth2-client-key")
      const garbage = yield* Effect.flip(makeAuth(settings(Option.some(Redacted.make("literal:-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")))))
      assert.include(garbage.message, "AUTH_OAUTH2_CLIENT_KEY (--auth-oauth2-client-key) holds no unencrypted PEM private key")
    }))
})

describe("Auth: OAuth2 refresh token (on a user's behalf)", () => {
  const refreshing = (url: string, refreshToken: string, secret?: string) => ({
    type: "oauth2" as const,
    oauth2: {
      ...oauth2Defaults, tokenUrl: Option.some(url), clientId: Option.some("app"), refreshToken: Option.some(Redacted.make(refreshToken)),
      ...(secret !== undefined ? { clientSecret: Option.some(Redacted.make(secret)) } : {})
    }
  })

  it.effect("gets access tokens with the refresh_token grant, again before each expires; a public client sends its id alone", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply("user", 600))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth(refreshing(idp.url, "rt-1"))
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer user-1")
      assert.isUndefined(idp.seen[0]!.headers.authorization)
      assert.deepStrictEqual(formOf(idp.seen[0]!), { grant_type: "refresh_token", refresh_token: "rt-1", client_id: "app" })
      yield* TestClock.adjust("541 seconds")
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer user-2")
      assert.strictEqual(formOf(idp.seen[1]!)["refresh_token"], "rt-1")
      // a confidential client authenticates as with client credentials
      const confidential = yield* jsonServer(tokenReply("user"))
      yield* (yield* makeAuth(refreshing(confidential.url, "rt-1", "app-secret"))).apply(bare(tool), tool)
      assert.deepStrictEqual(basicOf(confidential.seen[0]!), ["app", "app-secret"])
    }))

  it.effect("uses the refresh token the provider rotated to next time, and writes it back to its file", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer((_, n) => ({ status: 200, body: { access_token: `user-${n}`, token_type: "Bearer", expires_in: 600, refresh_token: `rt-${n + 1}` } }))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const file = join(mkdtempSync(join(tmpdir(), "rt-")), "refresh-token")
      writeFileSync(file, "rt-1\n")
      const auth = yield* makeAuth(refreshing(idp.url, `file:${file}`))
      yield* auth.apply(bare(tool), tool)
      assert.strictEqual(readFileSync(file, "utf8"), "rt-2\n")
      assert.strictEqual(statSync(file).mode & 0o777, 0o600)
      yield* TestClock.adjust("541 seconds")
      yield* auth.apply(bare(tool), tool)
      assert.deepStrictEqual(idp.seen.map((r) => formOf(r)["refresh_token"]), ["rt-1", "rt-2"])
      assert.strictEqual(readFileSync(file, "utf8"), "rt-3\n")
    }))

  it.effect("a refused refresh token fails the call saying to get a new one, never showing it", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(() => ({ status: 400, body: { error: "invalid_grant", error_description: "Token rt-secret-9 has been expired or revoked." } }))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const error = yield* Effect.flip((yield* makeAuth(refreshing(idp.url, "rt-secret-9"))).apply(bare(tool), tool))
      assert.strictEqual(error.reason._tag, "AuthRejected")
      assert.include(error.text, "invalid_grant: Token <redacted> has been expired or revoked.")
      assert.include(error.text, "the refresh token (AUTH_OAUTH2_REFRESH_TOKEN) is expired, revoked or used up: get a new one")
      assert.notInclude(error.text, "rt-secret-9")
    }))
})

describe("Auth: OAuth2 token exchange (the client's user)", () => {
  const exchanging = (url: string, grant: "token_exchange" | "on_behalf_of") => ({
    type: "oauth2" as const,
    oauth2: {
      ...oauth2Defaults, tokenUrl: Option.some(url), clientId: Option.some("mcp-server"), clientSecret: Option.some(Redacted.make("srv-secret")),
      grant, scopes: ["api.read"], audience: Option.some("https://api.example.com")
    }
  })
  /** An identity provider that gives `api-for-<subject token>-<n>`. */
  const exchanger = () => jsonServer((r, n) => ({ status: 200, body: { access_token: `api-for-${formOf(r)["subject_token"] ?? formOf(r)["assertion"]}-${n}`, token_type: "Bearer", expires_in: 600 } }))
  const as = (caller: string | undefined) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    caller === undefined ? effect : Effect.provideService(effect, CallerToken, caller)

  it.effect("exchanges each caller's token once (RFC 8693), keeps the result until shortly before it expires, and again after a 401", () =>
    Effect.gen(function*() {
      const idp = yield* exchanger()
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* Auth.make({ ...defaults.auth, ...exchanging(idp.url, "token_exchange") }, { callerTokens: true }).pipe(Effect.provide(deps()))
      const call = (caller: string) => auth.apply(bare(tool), tool).pipe(as(caller), Effect.map(bearerOf))
      assert.strictEqual(yield* call("alice-jwt"), "Bearer api-for-alice-jwt-1")
      assert.strictEqual(yield* call("bob-jwt"), "Bearer api-for-bob-jwt-2")
      assert.strictEqual(yield* call("alice-jwt"), "Bearer api-for-alice-jwt-1")
      assert.deepStrictEqual(basicOf(idp.seen[0]!), ["mcp-server", "srv-secret"])
      assert.deepStrictEqual(formOf(idp.seen[0]!), {
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: "alice-jwt",
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
        audience: "https://api.example.com",
        scope: "api.read"
      })
      // the API refused alice's token: hers is exchanged again, bob's is kept
      assert.isTrue(yield* auth.refresh(bare(tool), tool).pipe(as("alice-jwt")))
      assert.strictEqual(yield* call("alice-jwt"), "Bearer api-for-alice-jwt-3")
      assert.strictEqual(yield* call("bob-jwt"), "Bearer api-for-bob-jwt-2")
      // shortly before the tokens got expire (600 s), they are got again
      yield* TestClock.adjust("541 seconds")
      assert.strictEqual(yield* call("bob-jwt"), "Bearer api-for-bob-jwt-4")
      // a call without a caller token is not sent
      const error = yield* Effect.flip(auth.apply(bare(tool), tool))
      assert.strictEqual(error.reason._tag, "AuthMissing")
      assert.include(error.text, "came without one")
    }))

  it.effect("speaks Entra ID's on-behalf-of flow; refuses to start when clients send no token to exchange", () =>
    Effect.gen(function*() {
      const idp = yield* exchanger()
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* Auth.make({ ...defaults.auth, ...exchanging(idp.url, "on_behalf_of") }, { callerTokens: true }).pipe(Effect.provide(deps()))
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool).pipe(as("carol-jwt"))), "Bearer api-for-carol-jwt-1")
      assert.deepStrictEqual(formOf(idp.seen[0]!), {
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: "carol-jwt", requested_token_use: "on_behalf_of",
        audience: "https://api.example.com", scope: "api.read"
      })
      const noOAuth = yield* Effect.flip(makeAuth(exchanging(idp.url, "token_exchange")))
      assert.include(noOAuth.message, "AUTH_OAUTH2_GRANT=token_exchange exchanges the OAuth token each MCP client sends")
      assert.include(noOAuth.message, "MCP_OAUTH_JWKS_URL")
    }))

  it.effect("a token the provider will not exchange fails the call, saying so, without showing the token", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(() => ({ status: 400, body: { error: "invalid_grant", error_description: "subject token dave-jwt is not valid" } }))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* Auth.make({ ...defaults.auth, ...exchanging(idp.url, "token_exchange") }, { callerTokens: true }).pipe(Effect.provide(deps()))
      const error = yield* Effect.flip(auth.apply(bare(tool), tool).pipe(as("dave-jwt")))
      assert.include(error.text, "could not be exchanged for one to the API (AUTH_OAUTH2_GRANT=token_exchange)")
      assert.notInclude(error.text, "dave-jwt")
    }))
})

describe("Auth: Amazon Cognito", () => {
  it("derives the region from the user pool id and the standard endpoints from region and domain", () => {
    assert.strictEqual(cognitoRegion({ region: Option.none(), userPoolId: Option.some("eu-west-1_AbCdEf") }), "eu-west-1")
    assert.strictEqual(cognitoRegion({ region: Option.some("us-west-2"), userPoolId: Option.some("eu-west-1_AbCdEf") }), "us-west-2")
    assert.strictEqual(cognitoRegion({ region: Option.none(), userPoolId: Option.none() }), "us-east-1")
    assert.strictEqual(hostedTokenUrl("my-app", "eu-west-1"), "https://my-app.auth.eu-west-1.amazoncognito.com/oauth2/token")
    assert.strictEqual(idpEndpoint("eu-west-1"), "https://cognito-idp.eu-west-1.amazonaws.com/")
    // the documented Cognito example: HMAC-SHA256(secret, username + clientId), base64
    assert.strictEqual(secretHash("user", "client", Redacted.make("secret")), "wvW87lzZoI+qQCVGmWVBJLlucdJ65huAVP1z+0MgA6E=")
  })

  it.effect("client-credentials flow: the hosted token endpoint with Basic client auth and scopes; the access token is sent", () =>
    Effect.gen(function*() {
      const idp = yield* jsonServer(tokenReply("access"))
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth({
        type: "cognito",
        cognito: {
          ...cognitoDefaults, clientId: Option.some("app-client"), clientSecret: Option.some(Redacted.make("app-secret")),
          domain: Option.some("my-domain"), scopes: ["api/read"], tokenUrl: Option.some(`${idp.url}/oauth2/token`)
        }
      })
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer access-1")
      assert.deepStrictEqual(basicOf(idp.seen[0]!), ["app-client", "app-secret"])
      assert.deepStrictEqual(formOf(idp.seen[0]!), { grant_type: "client_credentials", scope: "api/read" })
    }))

  const cognitoIdp = (options: { refreshFails?: boolean } = {}) =>
    jsonServer((r, n) => {
      const req = JSON.parse(r.body) as { AuthFlow: string; AuthParameters: Record<string, string> }
      if (req.AuthFlow === "REFRESH_TOKEN_AUTH" && options.refreshFails) {
        return { status: 400, body: { __type: "NotAuthorizedException", message: "Refresh Token has expired" } }
      }
      if (req.AuthFlow === "USER_PASSWORD_AUTH" && req.AuthParameters["PASSWORD"] !== "pa55word") {
        return { status: 400, body: { __type: "NotAuthorizedException", message: "Incorrect username or password." } }
      }
      return {
        status: 200,
        body: {
          AuthenticationResult: {
            AccessToken: `access-${n}`, IdToken: `id-${n}`, ExpiresIn: 3600, TokenType: "Bearer",
            ...(req.AuthFlow === "USER_PASSWORD_AUTH" ? { RefreshToken: `refresh-${n}` } : {})
          }
        }
      }
    })

  const passwordSettings = (endpoint: string, password = "pa55word") => ({
    type: "cognito" as const,
    cognito: {
      ...cognitoDefaults, clientId: Option.some("app-client"), clientSecret: Option.some(Redacted.make("app-secret")),
      username: Option.some("alice"), password: Option.some(Redacted.make(password)), endpoint: Option.some(endpoint)
    }
  })

  it.effect("user-password flow: InitiateAuth USER_PASSWORD_AUTH with SECRET_HASH, the ID token is sent, then REFRESH_TOKEN_AUTH before expiry", () =>
    Effect.gen(function*() {
      const idp = yield* cognitoIdp()
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth(passwordSettings(idp.url))
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer id-1")
      const first = idp.seen[0]!
      assert.strictEqual(first.headers["x-amz-target"], "AWSCognitoIdentityProviderService.InitiateAuth")
      assert.strictEqual(first.headers["content-type"], "application/x-amz-json-1.1")
      assert.deepStrictEqual(JSON.parse(first.body), {
        AuthFlow: "USER_PASSWORD_AUTH", ClientId: "app-client",
        AuthParameters: { USERNAME: "alice", PASSWORD: "pa55word", SECRET_HASH: secretHash("alice", "app-client", Redacted.make("app-secret")) }
      })
      yield* TestClock.adjust("3541 seconds")
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer id-2")
      assert.deepStrictEqual(JSON.parse(idp.seen[1]!.body), {
        AuthFlow: "REFRESH_TOKEN_AUTH", ClientId: "app-client",
        AuthParameters: { REFRESH_TOKEN: "refresh-1", SECRET_HASH: secretHash("alice", "app-client", Redacted.make("app-secret")) }
      })
    }))

  it.effect("user-password flow: a refused refresh token falls back to signing in with the password", () =>
    Effect.gen(function*() {
      const idp = yield* cognitoIdp({ refreshFails: true })
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const auth = yield* makeAuth(passwordSettings(idp.url))
      yield* auth.apply(bare(tool), tool)
      yield* TestClock.adjust("3541 seconds")
      assert.strictEqual(bearerOf(yield* auth.apply(bare(tool), tool)), "Bearer id-3")
      assert.deepStrictEqual(idp.seen.map((s) => (JSON.parse(s.body) as { AuthFlow: string }).AuthFlow), [
        "USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH", "USER_PASSWORD_AUTH"
      ])
    }))

  it.effect("wrong credentials and challenges are refusals naming Cognito's reason, never the password", () =>
    Effect.gen(function*() {
      const idp = yield* cognitoIdp()
      const tools = yield* securityTools
      const tool = get(tools, "publicOp")
      const wrong = yield* Effect.flip((yield* makeAuth(passwordSettings(idp.url, "Wr0ng-pass"))).apply(bare(tool), tool))
      assert.strictEqual(wrong.reason._tag, "AuthRejected")
      assert.include(wrong.text, "HTTP 400: NotAuthorizedException: Incorrect username or password.")
      assert.notInclude(wrong.text, "Wr0ng-pass")
      const challenge = yield* jsonServer(() => ({ status: 200, body: { ChallengeName: "NEW_PASSWORD_REQUIRED", Session: "x" } }))
      const asked = yield* Effect.flip((yield* makeAuth(passwordSettings(challenge.url))).apply(bare(tool), tool))
      assert.include(asked.text, "NEW_PASSWORD_REQUIRED challenge")
    }))

  it.effect("stops the start when neither flow is fully configured", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(makeAuth({ type: "cognito", cognito: { ...cognitoDefaults, clientId: Option.some("c") } }))
      assert.include(e.message, "--auth-cognito-username and --auth-cognito-password (user-password flow)")
      assert.include(e.message, "--auth-cognito-client-secret and --auth-cognito-domain (client-credentials flow)")
    }))
})

describe("Auth: --auth-type api_key", () => {
  it.effect("without a name or place, the key goes where the operation's apiKey scheme says, else as the api_key header", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const auth = yield* makeAuth({ type: "api_key", apiKey: Option.some(Redacted.make("k&1")) })
      const apply = (id: string) => auth.apply(bare(get(tools, id)), get(tools, id))
      // mutualTLS or one apiKeyHeader scheme: the scheme's header
      const either = yield* apply("either")
      assert.strictEqual(either.headers["x-api-key"], "k&1")
      assert.isUndefined(either.headers["api_key"])
      assert.strictEqual((yield* apply("optional")).headers["x-api-key"], "k&1")
      // two keys needed together (query and cookie): one key cannot be both, so the default place
      const both = yield* apply("both")
      assert.strictEqual(both.headers["api_key"], "k&1")
      assert.deepStrictEqual([both.query, both.cookies], [[], []])
      // no apiKey scheme (bearer, or public): the default place
      assert.strictEqual((yield* apply("usesDefault")).headers["api_key"], "k&1")
      assert.strictEqual((yield* apply("publicOp")).headers["api_key"], "k&1")
    }))

  it.effect("a name or place given explicitly is used for every operation", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const named = yield* makeAuth({ type: "api_key", apiKey: Option.some(Redacted.make("k")), apiKeyName: Option.some("X-Other") })
      const either = yield* named.apply(bare(get(tools, "either")), get(tools, "either"))
      assert.deepStrictEqual(either.headers, { "x-other": "k" })
      const inQuery = yield* makeAuth({ type: "api_key", apiKey: Option.some(Redacted.make("k k")), apiKeyIn: Option.some("query" as const) })
      const out = yield* inQuery.apply(bare(get(tools, "either")), get(tools, "either"))
      assert.deepStrictEqual([out.query, out.headers], [["api_key=k%20k"], {}])
    }))
})

describe("Auth: headers for every request", () => {
  it.effect("adds them (references resolved) to every request; the credential wins a clash", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const auth = yield* makeAuth({
        type: "bearer", token: Option.some(Redacted.make("tok")),
        headers: { "X-Tenant": "env:TENANT", "Notion-Version": "2022-06-28", Authorization: "Bearer static" }
      }, { TENANT: "t-1" })
      const out = yield* auth.apply(bare(get(tools, "publicOp")), get(tools, "publicOp"))
      assert.deepStrictEqual(out.headers, { "x-tenant": "t-1", "notion-version": "2022-06-28", authorization: "Bearer tok" })
      const missingRef = yield* Effect.flip(makeAuth({ headers: { "X-Tenant": "env:NOPE" } }))
      assert.include(missingRef.message, "header X-Tenant (API_HEADERS)")
    }))
})

describe("Auth: what a refusal (401/403) is told", () => {
  it.effect("names the credential sent, by its setting, or what the operation needs when none was; never a value", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const none = yield* makeAuth({})
      assert.strictEqual(none.refused(get(tools, "basicOp"), 401),
        "This operation needs basicAuth (HTTP basic); no credential for it is configured (AUTH_SCHEME_<NAME> for a scheme, or --auth-type).")
      assert.strictEqual(none.refused(get(tools, "publicOp"), 401),
        "No credential is configured; if the API needs one, set --auth-type (or AUTH_SCHEME_<NAME> for a scheme of the spec).")
      const bearer = yield* makeAuth({ type: "bearer", token: Option.some(Redacted.make("s3cret-token")) })
      const oauth = bearer.refused(get(tools, "oauthOp"), 403)
      assert.strictEqual(oauth, "The API refused the --auth-type bearer credential: it may lack a permission for this operation. This operation needs oauth (oauth2, scopes read).")
      assert.strictEqual(bearer.refused(get(tools, "usesDefault"), 401),
        "The API refused the --auth-type bearer credential: it may be wrong or expired. This operation needs bearerAuth (HTTP bearer).")
      const schemes = yield* makeAuth({ schemes: { APIKEYQUERY: "q-secret", APIKEYCOOKIE: "c-secret" } })
      const both = schemes.refused(get(tools, "both"), 401)
      assert.include(both, "The API refused the credentials configured for apiKeyQuery (AUTH_SCHEME_APIKEYQUERY) and apiKeyCookie (AUTH_SCHEME_APIKEYCOOKIE)")
      for (const text of [oauth, both]) for (const secret of ["s3cret-token", "q-secret", "c-secret"]) assert.notInclude(text, secret)
    }))
})

describe("Auth: spec-driven security schemes", () => {
  it.effect("sends the credentials of the first alternative whose schemes are all configured, placed as each scheme says", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const auth = yield* makeAuth({
        schemes: {
          BEARERAUTH: "env:BEARER", APIKEYHEADER: "hdr-key", APIKEYQUERY: "q key&", APIKEYCOOKIE: "c;key",
          BASICAUTH: "literal:user:pa ss", OAUTH: "oauth-token"
        }
      }, { BEARER: "doc-bearer" })
      const apply = (id: string) => auth.apply(bare(get(tools, id)), get(tools, id))
      assert.strictEqual((yield* apply("usesDefault")).headers["authorization"], "Bearer doc-bearer")
      const either = yield* apply("either")
      assert.strictEqual(either.headers["x-api-key"], "hdr-key") // mutualTLS cannot be sent: the next alternative
      assert.isUndefined(either.headers["authorization"])
      const both = yield* apply("both")
      assert.deepStrictEqual(both.query, ["api_key=q%20key%26"])
      assert.deepStrictEqual(both.cookies, [["session", "c%3Bkey"]])
      assert.strictEqual((yield* apply("basicOp")).headers["authorization"], `Basic ${Buffer.from("user:pa ss").toString("base64")}`)
      assert.strictEqual((yield* apply("oauthOp")).headers["authorization"], "Bearer oauth-token")
      // optional security prefers sending the configured credential
      assert.strictEqual((yield* apply("optional")).headers["x-api-key"], "hdr-key")
      // explicitly public: nothing
      assert.deepStrictEqual((yield* apply("publicOp")).headers, {})
    }))

  it.effect("an operation needing a scheme nobody configured fails clearly; public and optional ones go without", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const auth = yield* makeAuth({ schemes: { APIKEYQUERY: "k" } })
      const error = yield* Effect.flip(auth.apply(bare(get(tools, "unconfigured")), get(tools, "unconfigured")))
      assert.strictEqual(error.reason._tag, "AuthMissing")
      assert.include(error.text, "unconfigured needs one of: mtls (mutualTLS) | nowhere (unusable: 'nowhere' is not defined in components.securitySchemes)")
      assert.include(error.text, "security_schemes.mtls or security_schemes.nowhere")
      assert.include(error.text, "AUTH_SCHEME_MTLS / AUTH_SCHEME_NOWHERE")
      assert.deepStrictEqual((yield* auth.apply(bare(get(tools, "publicOp")), get(tools, "publicOp"))).headers, {})
      assert.deepStrictEqual((yield* auth.apply(bare(get(tools, "optional")), get(tools, "optional"))).headers, {})
    }))

  it.effect("without a usable scheme credential the global --auth-type credential is sent", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const auth = yield* makeAuth({ type: "bearer", token: Option.some(Redacted.make("global-t")), schemes: { APIKEYHEADER: "k" } })
      assert.strictEqual((yield* auth.apply(bare(get(tools, "unconfigured")), get(tools, "unconfigured"))).headers["authorization"], "Bearer global-t")
      const either = yield* auth.apply(bare(get(tools, "either")), get(tools, "either"))
      assert.strictEqual(either.headers["x-api-key"], "k")
      assert.isUndefined(either.headers["authorization"])
    }))

  it.effect("a scheme secret read from a file is read again after a 401, and the call may be retried only when it changed", () =>
    Effect.gen(function*() {
      const tools = yield* securityTools
      const tool = get(tools, "either")
      const file = join(mkdtempSync(join(tmpdir(), "secret-")), "api-key")
      writeFileSync(file, "key-v1\n")
      const auth = yield* makeAuth({ schemes: { APIKEYHEADER: `file:${file}` } })
      const sent = yield* auth.apply(bare(tool), tool)
      assert.strictEqual(sent.headers["x-api-key"], "key-v1")
      assert.isFalse(yield* auth.refresh(sent, tool)) // unchanged: retrying would not help
      writeFileSync(file, "key-v2\n")
      assert.isTrue(yield* auth.refresh(sent, tool))
      assert.strictEqual((yield* auth.apply(bare(tool), tool)).headers["x-api-key"], "key-v2")
    }))
})

describe("Secrets", () => {
  const resolve = (ref: string, env: Record<string, string> = {}, sm: Record<string, string> = {}) =>
    Secrets.use((s) => s.resolve(ref, "AUTH_TOKEN")).pipe(
      Effect.provide(Secrets.layerWith(env).pipe(Layer.provide(SecretsManager.layerTest(sm))))
    )
  const ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/api-AbCdEf"

  it.effect("resolves env:, file:, secretsmanager: (whole or one JSON key), literal: and plain values, all redacted", () =>
    Effect.gen(function*() {
      const file = join(mkdtempSync(join(tmpdir(), "secret-")), "token")
      writeFileSync(file, "from-file\r\n")
      const cases: ReadonlyArray<readonly [string, string, string]> = [
        ["env:TOKEN", "from-env", "env"],
        [`file:${file}`, "from-file", "file"],
        [`file://${file}`, "from-file", "file"],
        [`secretsmanager:${ARN}`, "{\"apiKey\":\"k-1\",\"n\":7}", "secretsmanager"],
        [`secretsmanager:${ARN}#apiKey`, "k-1", "secretsmanager"],
        [`secretsmanager:${ARN}#n`, "7", "secretsmanager"],
        ["literal:env:NOT_A_REF", "env:NOT_A_REF", "literal"],
        ["plain-value", "plain-value", "literal"]
      ]
      for (const [ref, value, source] of cases) {
        const s = yield* resolve(ref, { TOKEN: "from-env" }, { [ARN]: "{\"apiKey\":\"k-1\",\"n\":7}" })
        assert.strictEqual(Redacted.value(s.value), value, ref)
        assert.strictEqual(s.source, source, ref)
        assert.notInclude(String(s.value), value)
        assert.notInclude(JSON.stringify(s), value)
      }
    }))

  it.effect("failures name the reference and the setting, never a value", () =>
    Effect.gen(function*() {
      const env = yield* Effect.flip(resolve("env:MISSING"))
      assert.strictEqual(env.message, "cannot read env:MISSING (given for AUTH_TOKEN): the variable is not set")
      const file = yield* Effect.flip(resolve("file:/nonexistent/secret"))
      assert.strictEqual(file.message, "cannot read file:/nonexistent/secret (given for AUTH_TOKEN): ENOENT")
      const sm = yield* Effect.flip(resolve(`secretsmanager:${ARN}`))
      assert.include(sm.message, `cannot read secretsmanager:${ARN} (given for AUTH_TOKEN): ResourceNotFoundException`)
      const key = yield* Effect.flip(resolve(`secretsmanager:${ARN}#missing`, {}, { [ARN]: "{\"apiKey\":\"top-secret-value\"}" }))
      assert.include(key.message, "has no string key 'missing'")
      assert.notInclude(key.message, "top-secret-value")
    }))

  it.effect("a secret reference that cannot be read stops the start with that message", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(makeAuth({ type: "bearer", token: Option.some(Redacted.make("file:/nonexistent/token")) }))
      assert.strictEqual(e._tag, "AuthConfigError")
      assert.strictEqual(e.message, "cannot read file:/nonexistent/token (given for --auth-token (AUTH_TOKEN)): ENOENT")
    }))
})

describe("Auth: SigV4", () => {
  it.effect("signs with the chain's credentials at the clock's time; an independent verifier accepts query, JSON and multipart bodies", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 0, 15, 12, 30, 0))
      const auth = yield* makeAuth({ type: "sigv4", sigv4: { ...sigv4Defaults, region: Option.some("eu-central-1") } })
      const tool = (yield* securityTools).get("publicOp")!
      const form = new FormData()
      form.append("name", "rex")
      form.append("file", new Blob([new Uint8Array([0, 1, 2, 255])], { type: "image/png" }), "file")
      const requests: ReadonlyArray<OutgoingRequest> = [
        { method: "GET", url: "http://127.0.0.1:8080/v1/pets/a%2Fb%20c", query: ["tags=a,b", "q=x%20y", "pipes=1|2", "tags=c", "empty"], headers: { "x-trace": "t1" }, cookies: [["s", "1"]], body: undefined },
        { method: "POST", url: "http://127.0.0.1:8080/v1/pets", query: [], headers: {}, cookies: [], body: { contentType: "application/json", data: Buffer.from("{\"name\":\"rex\"}") } },
        { method: "POST", url: "http://127.0.0.1:8080/v1/upload", query: [], headers: {}, cookies: [], body: { contentType: undefined, data: form } }
      ]
      for (const request of requests) {
        const signed = yield* auth.apply(request, tool)
        assert.strictEqual(signed.headers["x-amz-date"], "20260115T123000Z")
        assert.strictEqual(signed.headers["x-amz-security-token"], "session-tok")
        assert.match(signed.headers["authorization"]!, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20260115\/eu-central-1\/execute-api\/aws4_request, /)
        assert.isFalse(signed.body?.data instanceof FormData, "multipart bodies are serialized before signing")
        const u = new URL(signed.url)
        const wire = {
          method: signed.method,
          url: `${u.pathname}${signed.query.length > 0 ? `?${signed.query.join("&")}` : ""}`,
          headers: { ...signed.headers, host: u.host },
          body: signed.body === undefined ? new Uint8Array() : signed.body.data as Uint8Array
        }
        const verdict = yield* Effect.promise(() => verifySigV4(wire, AWS))
        assert.isTrue(verdict.ok, verdict.reason)
        // tampering with the query breaks the signature
        const tampered = yield* Effect.promise(() => verifySigV4({ ...wire, url: `${wire.url}${wire.url.includes("?") ? "&" : "?"}x=1` }, AWS))
        assert.isFalse(tampered.ok)
      }
      const multipart = yield* auth.apply(requests[2]!, tool)
      assert.match(multipart.body!.contentType!, /^multipart\/form-data; boundary=/)
      assert.include(Buffer.from(multipart.body!.data as Uint8Array).toString("latin1"), "name=\"name\"\r\n\r\nrex")
    }))

  it.effect("stops the start without a region; fails the call clearly without credentials", () =>
    Effect.gen(function*() {
      const noRegion = yield* Effect.flip(makeAuth({ type: "sigv4" }))
      assert.include(noRegion.message, "--auth-type sigv4 needs --auth-sigv4-region")
      const noCreds = Layer.succeed(AwsCredentials, AwsCredentials.of({ get: Effect.fail(missing("no AWS credentials")) }))
      const auth = yield* Auth.make({ ...defaults.auth, type: "sigv4", sigv4: { ...sigv4Defaults, region: Option.some("us-east-1") } }).pipe(
        Effect.provide(Layer.mergeAll(Secrets.layerWith({}).pipe(Layer.provide(SecretsManager.layerTest({}))), FetchHttpClient.layer, noCreds))
      )
      const tool = (yield* securityTools).get("publicOp")!
      const e = yield* Effect.flip(auth.apply(bare(tool), tool))
      assert.strictEqual(e.reason._tag, "AuthMissing")
    }))
})
