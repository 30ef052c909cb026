import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { writeFileSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AppConfig } from "../src/AppConfig.ts"
import { helpText, OPTIONS, parseArgv } from "../src/AppConfig/Options.ts"

const load = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  AppConfig.load(parseArgv(argv).values, env)

describe("AppConfig", () => {
  it.effect("takes awslabs-compatible flag aliases and env names", () => Effect.gen(function*() {
    const s = yield* load(["--spec-path", "a.yaml", "--api-url", "http://x", "--api-name", "Pets"])
    assert.strictEqual(s.spec, "a.yaml")
    assert.deepStrictEqual(s.baseUrl, Option.some("http://x"))
    assert.deepStrictEqual(s.name, Option.some("Pets"))
    const e = yield* load([], { API_SPEC_PATH: "b.yaml", API_BASE_URL: "http://y", SERVER_TRANSPORT: "http", SERVER_PORT: "9000" })
    assert.strictEqual(e.spec, "b.yaml")
    assert.strictEqual(e.transport, "http")
    assert.strictEqual(e.port, 9000)
  }))

  it.effect("prefers API_SPEC_URL over API_SPEC_PATH, as the awslabs server does", () => Effect.gen(function*() {
    const s = yield* load([], { API_SPEC_PATH: "local.yaml", API_SPEC_URL: "https://example.com/spec.json" })
    assert.strictEqual(s.spec, "https://example.com/spec.json")
  }))

  it.effect("applies defaults < config file < environment < flags", () => Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"))
    const file = join(dir, "config.yaml")
    writeFileSync(file, "spec: from-file.yaml\nhttp-timeout: 12\nHTTP_MAX_CONNECTIONS: 7\nSERVER_PORT: 1111\ninclude-tags: [a, b]\n")
    const s = yield* load(["--config", file, "--port", "3333"], { SERVER_PORT: "2222", HTTP_TIMEOUT: "2.5" })
    assert.strictEqual(s.spec, "from-file.yaml")
    assert.strictEqual(s.http.timeoutMs, 2500) // env beats file
    assert.strictEqual(s.http.maxConnections, 7) // file beats default
    assert.strictEqual(s.port, 3333) // flag beats env
    assert.deepStrictEqual(s.filters.includeTags, ["a", "b"])
    assert.strictEqual(s.http.connectTimeoutMs, 5000) // default
  }))

  it.effect("rejects an unknown config-file key, naming it", () => Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"))
    const file = join(dir, "config.yaml")
    writeFileSync(file, "spec: x.yaml\nhttp-timout: 12\n")
    const error = yield* Effect.flip(load(["--config", file]))
    assert.include(error.message, "unknown setting 'http-timout'")
    assert.include(error.message, file)
  }))

  it.effect("names the flag, env var, value and rule of a bad value", () => Effect.gen(function*() {
    const port = yield* Effect.flip(load(["--spec", "x", "--port", "70000"]))
    assert.include(port.message, "--port (SERVER_PORT)")
    assert.include(port.message, "70000")
    const transport = yield* Effect.flip(load(["--spec", "x"], { SERVER_TRANSPORT: "sse" }))
    assert.include(transport.message, "\"sse\"")
    assert.include(transport.message, "allowed: stdio, http")
    const level = yield* Effect.flip(load(["--spec", "x", "--log-level", "loud"]))
    assert.include(level.message, "--log-level (LOG_LEVEL)")
    const missing = yield* Effect.flip(load([]))
    assert.include(missing.message, "no spec given")
    const interval = yield* Effect.flip(load(["--spec", "x", "--watch", "--watch-interval", "0"]))
    assert.include(interval.message, "--watch-interval (SPEC_WATCH_INTERVAL)")
    assert.include(interval.message, "at least 1")
    const paths = yield* Effect.flip(load(["--spec", "x", "--include-paths", "/pets/*,repos/**"]))
    assert.include(paths.message, "--include-paths (INCLUDE_PATHS)")
    assert.include(paths.message, "path templates starting with '/'")
  }))

  it.effect("keeps secrets redacted and never prints them in errors", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "x", "--auth-type", "bearer", "--auth-token", "s3cr3t-token"])
    assert.isTrue(Option.isSome(s.auth.token))
    assert.strictEqual(Redacted.value(Option.getOrThrow(s.auth.token)), "s3cr3t-token")
    assert.notInclude(String(Option.getOrThrow(s.auth.token)), "s3cr3t-token")
    assert.notInclude(JSON.stringify(s), "s3cr3t-token")
  }))

  it.effect("maps awslabs log level names", () => Effect.gen(function*() {
    assert.strictEqual((yield* load(["--spec", "x"], { LOG_LEVEL: "WARNING" })).logLevel, "Warn")
    assert.strictEqual((yield* load(["--spec", "x"], { LOG_LEVEL: "CRITICAL" })).logLevel, "Fatal")
    assert.strictEqual((yield* load(["--spec", "x"], { LOG_LEVEL: "debug" })).logLevel, "Debug")
  }))

  it("--help lists every flag with its env var", () => {
    const help = helpText("test")
    for (const o of OPTIONS) {
      assert.include(help, `--${o.flag}`)
      for (const env of o.env) assert.include(help, env)
    }
  })

  it("rejects unknown flags and stray arguments", () => {
    assert.throws(() => parseArgv(["--spec", "x", "--bogus"]), /bogus/)
    assert.throws(() => parseArgv(["check-this"]), /unexpected argument 'check-this'/)
  })
})

describe("headers for every request (API_HEADERS, --headers)", () => {
  it.effect("reads a JSON object, Name: value pairs, or a mapping in the config file", () => Effect.gen(function*() {
    const json = yield* load(["--spec", "a.yaml", "--headers", '{"Notion-Version": "2022-06-28", "X-Tenant": "env:T"}'])
    assert.deepStrictEqual(json.auth.headers, { "Notion-Version": "2022-06-28", "X-Tenant": "env:T" })
    const pairs = yield* load(["--spec", "a.yaml"], { API_HEADERS: "X-A: 1, X-B:two:parts" })
    assert.deepStrictEqual(pairs.auth.headers, { "X-A": "1", "X-B": "two:parts" })
    const dir = mkdtempSync(join(tmpdir(), "cfg-"))
    const file = join(dir, "c.yaml")
    writeFileSync(file, "spec: a.yaml\nheaders:\n  Stripe-Version: '2024-06-20'\n")
    assert.deepStrictEqual((yield* load(["--config", file])).auth.headers, { "Stripe-Version": "2024-06-20" })
    assert.deepStrictEqual((yield* load(["--spec", "a.yaml"])).auth.headers, {})
  }))

  it.effect("refuses bad names, reserved names and values on two lines, without showing a value", () => Effect.gen(function*() {
    const cases: Array<[string, string]> = [
      ["{not json", "not valid JSON"],
      ['["X-A"]', "must be a JSON object"],
      ["X-A: 1, secret-without-name", "item 2 of the list is not a Name: value pair"],
      ['{"Bad Name": "v"}', "is not a valid header name"],
      ['{"Host": "evil.example"}', "Host is set by the connection"],
      ['{"X-A": "line\\nbreak-secret"}', "must be text on one line"],
      ['{"X-A": 5}', "must be text on one line"]
    ]
    for (const [value, message] of cases) {
      const e = yield* Effect.flip(load(["--spec", "a.yaml", "--headers", value]))
      assert.include(e.message, message, value)
      assert.notInclude(e.message, "secret")
      assert.notInclude(e.message, "evil.example")
    }
  }))

  it.effect("fixed arguments come as name=value pairs or a JSON object; anything else is refused naming the setting", () => Effect.gen(function*() {
    assert.deepStrictEqual((yield* load(["--spec", "a.yaml", "--fixed-arguments", "owner=acme, repo=site"])).fixedArguments, { owner: "acme", repo: "site" })
    assert.deepStrictEqual((yield* load(["--spec", "a.yaml"], { FIXED_ARGUMENTS: "{\"account_id\": 1234}" })).fixedArguments, { account_id: 1234 })
    const bad = yield* Effect.flip(load(["--spec", "a.yaml", "--fixed-arguments", "owner"]))
    assert.include(bad.message, "FIXED_ARGUMENTS (--fixed-arguments): item 1 is not a name=value pair")
    assert.include((yield* Effect.flip(load(["--spec", "a.yaml", "--fixed-arguments", "{nope"]))).message, "FIXED_ARGUMENTS (--fixed-arguments) is not valid JSON")
  }))

  it.effect("go with an additional spec's own credentials; one without settings of its own uses the main spec's", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "a.yaml", "--headers", "X-Main: m"], {
      ADDITIONAL_SPECS: JSON.stringify([{ spec_path: "b.yaml", headers: { "X-B": "b" } }, { spec_path: "c.yaml" }])
    })
    assert.deepStrictEqual(s.additionalSpecs[0]!.auth?.headers, { "X-B": "b" })
    assert.isUndefined(s.additionalSpecs[1]!.auth)
    // its own client certificate and OAuth grant, as for the main spec
    const own = yield* load(["--spec", "a.yaml"], {
      ADDITIONAL_SPECS: JSON.stringify([{
        spec_path: "k8s.json", auth_client_cert: "/certs/k8s.pem", auth_type: "oauth2", auth_oauth2_grant: "token_exchange",
        auth_oauth2_token_url: "https://idp/token", auth_oauth2_client_id: "mcp"
      }])
    })
    const auth = own.additionalSpecs[0]!.auth!
    assert.strictEqual(Redacted.value(Option.getOrThrow(auth.clientCert)), "/certs/k8s.pem")
    assert.strictEqual(auth.oauth2.grant, "token_exchange")
    assert.isTrue(Option.isNone(own.auth.clientCert))
  }))
})

describe("README", () => {
  it("documents every flag and environment variable", async () => {
    const { readFileSync } = await import("node:fs")
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    for (const o of OPTIONS) {
      assert.include(readme, `\`--${o.flag}\``)
      for (const env of o.env) assert.include(readme, `\`${env}\``)
    }
  })
})

describe("per-operation overrides", () => {
  const write = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), "ops-"))
    const file = join(dir, "config.yaml")
    writeFileSync(file, text)
    return file
  }

  it.effect("reads timeout, attempts, idempotency key and breaker per operationId or tag", () => Effect.gen(function*() {
    const file = write("spec: x.yaml\noperations:\n  createPet: { timeout: 2.5, max_attempts: 5, idempotency_key_header: Idempotency-Key }\n  'tag:store': { circuit_breaker: false }\n")
    const s = yield* load(["--config", file])
    assert.deepStrictEqual(s.operations, {
      createPet: { timeout: 2.5, max_attempts: 5, idempotency_key_header: "Idempotency-Key" },
      "tag:store": { circuit_breaker: false }
    })
  }))

  it.effect("names the operation and the rule when an override is wrong", () => Effect.gen(function*() {
    const typo = yield* Effect.flip(load(["--config", write("spec: x\noperations:\n  createPet: { retries: 3 }\n")]))
    assert.include(typo.message, "operations.createPet")
    assert.include(typo.message, "max_attempts")
    const bad = yield* Effect.flip(load(["--config", write("spec: x\noperations:\n  getPet: { max_attempts: 0 }\n")]))
    assert.include(bad.message, "operations.getPet")
    const name = yield* Effect.flip(load(["--config", write("spec: x\noperations:\n  getPet: { tool_name: 'get pet' }\n")]))
    assert.include(name.message, "operations.getPet")
    assert.include(name.message, "tool_name (letters, digits, _ and -, up to 64)")
    const tag = yield* Effect.flip(load(["--config", write("spec: x\noperations:\n  'tag:pets': { description: Pets }\n")]))
    assert.include(tag.message, "operations.tag:pets: tool_name and description belong to one operation")
  }))

  it.effect("reads a tool's own name and description", () => Effect.gen(function*() {
    const s = yield* load(["--config", write("spec: x\noperations:\n  getPet: { tool_name: pet_by_id, description: 'One pet, by its id.' }\n")])
    assert.deepStrictEqual(s.operations, { getPet: { tool_name: "pet_by_id", description: "One pet, by its id." } })
  }))
})

describe("security settings", () => {
  const write = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), "sec-"))
    const file = join(dir, "config.yaml")
    writeFileSync(file, text)
    return file
  }

  it.effect("reads scheme credentials from the config file's security_schemes and AUTH_SCHEME_<NAME>, env winning", () => Effect.gen(function*() {
    const file = write("spec: x.yaml\nsecurity_schemes:\n  api_key: { value: \"env:KEY\" }\n  petstore-auth: \"file:/run/secrets/token\"\n")
    const s = yield* load(["--config", file], { AUTH_SCHEME_API_KEY: "secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:k", AUTH_SCHEME_OTHER: "v" })
    assert.deepStrictEqual(s.auth.schemes, {
      API_KEY: "secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:k", PETSTORE_AUTH: "file:/run/secrets/token", OTHER: "v"
    })
    const bad = yield* Effect.flip(load(["--config", write("spec: x\nsecurity_schemes:\n  api_key: { val: x }\n")]))
    assert.include(bad.message, "security_schemes.api_key must be { value:")
  }))

  it.effect("reads the spec-source flags and the inbound limits; allow flags are real settings now, not 'later version'", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "x", "--allow-insecure-http", "--allow-private-networks", "--allowed-spec-dirs", "/a,/b"], {
      MCP_ALLOWED_ORIGINS: "https://app.example.com", MCP_MAX_SESSIONS: "5", SPEC_MAX_BYTES: "2048"
    })
    assert.deepStrictEqual(s.specSource, { allowInsecureHttp: true, allowPrivateNetworks: true, allowedDirs: ["/a", "/b"], maxBytes: 2048 })
    assert.deepStrictEqual(s.inbound.allowedOrigins, ["https://app.example.com"])
    assert.strictEqual(s.inbound.maxSessions, 5)
  }))

  it.effect("refuses inconsistent inbound settings, naming them, without printing a token", () => Effect.gen(function*() {
    const noAudience = yield* Effect.flip(load(["--spec", "x"], { MCP_OAUTH_JWKS_URL: "https://auth.example.com/jwks", MCP_OAUTH_ISSUER: "https://auth.example.com/" }))
    assert.include(noAudience.message, "--mcp-oauth-audience (MCP_OAUTH_AUDIENCE)")
    const both = yield* Effect.flip(load(["--spec", "x"], {
      MCP_OAUTH_JWKS_URL: "https://a/jwks", MCP_OAUTH_ISSUER: "https://a/", MCP_OAUTH_AUDIENCE: "https://mcp", MCP_AUTH_TOKEN: "tok-secret-123"
    }))
    assert.include(both.message, "MCP_AUTH_TOKEN")
    assert.notInclude(both.message, "tok-secret-123")
    const origin = yield* Effect.flip(load(["--spec", "x"], { MCP_ALLOWED_ORIGINS: "https://app.example.com/path" }))
    assert.include(origin.message, "--mcp-allowed-origins (MCP_ALLOWED_ORIGINS)")
    // the client's credential for this server must not reach the API; nor may MCP's and the connection's headers
    const token = yield* Effect.flip(load(["--spec", "x"], { MCP_FORWARD_HEADERS: "authorization", MCP_AUTH_TOKEN: "tok-secret-123" }))
    assert.include(token.message, "--mcp-forward-headers (MCP_FORWARD_HEADERS)")
    assert.include(token.message, "not Authorization while clients authenticate to this server")
    assert.notInclude(token.message, "tok-secret-123")
    const own = yield* Effect.flip(load(["--spec", "x"], { MCP_FORWARD_HEADERS: "x-api-key,mcp-session-id" }))
    assert.include(own.message, "belong to the connection or to MCP")
    const host = yield* Effect.flip(load(["--spec", "x"], { MCP_FORWARD_HEADERS: "x-target=host" }))
    assert.include(host.message, "belong to the connection or to MCP")
    const name = yield* Effect.flip(load(["--spec", "x"], { MCP_FORWARD_HEADERS: "x(api)" }))
    assert.include(name.message, "<client header>=<API header>")
  }))

  it.effect("reads server URL variables, naming a bad item", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "x", "--server-variables", "subdomain=acme, region = eu-1"])
    assert.deepStrictEqual(s.serverVariables, { subdomain: "acme", region: "eu-1" })
    const bad = yield* Effect.flip(load(["--spec", "x"], { SERVER_VARIABLES: "subdomain=acme,eu-1" }))
    assert.include(bad.message, "SERVER_VARIABLES (--server-variables): item 2 is not a name=value pair")
  }))

  it.effect("reads the headers forwarded to the API, renamed or not", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "x"], { MCP_FORWARD_HEADERS: "X-Api-Key, X-Upstream-Authorization=Authorization", MCP_AUTH_TOKEN: "t" })
    assert.deepStrictEqual(s.inbound.forwardHeaders, [{ from: "x-api-key", to: "x-api-key" }, { from: "x-upstream-authorization", to: "authorization" }])
  }))

  it.effect("reads the OAuth2, Cognito overrides and SigV4 settings, the region also from AWS_REGION", () => Effect.gen(function*() {
    const s = yield* load(["--spec", "x", "--auth-type", "oauth2", "--auth-oauth2-scopes", "a b,c"], {
      AUTH_OAUTH2_TOKEN_URL: "https://idp/token", AUTH_OAUTH2_CLIENT_SECRET: "cs", AWS_REGION: "eu-west-3", AUTH_COGNITO_ENDPOINT: "http://127.0.0.1:9"
    })
    assert.deepStrictEqual(s.auth.oauth2.scopes, ["a", "b", "c"])
    assert.deepStrictEqual(s.auth.oauth2.tokenUrl, Option.some("https://idp/token"))
    assert.deepStrictEqual(s.auth.sigv4.region, Option.some("eu-west-3"))
    assert.deepStrictEqual(s.auth.cognito.endpoint, Option.some("http://127.0.0.1:9"))
    assert.notInclude(JSON.stringify(s), "\"cs\"")
  }))
})
