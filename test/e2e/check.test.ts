/** `openapi-mcp-server check`: the report a user (or CI) reads before serving a spec. */
import { assert, describe, it } from "@effect/vitest"
import { EXAMPLE_SPEC, fixture, runCli, spec } from "../support/processes.ts"

interface Report {
  operations: number
  tools: number
  errors: Array<{ kind: string; subject: string; detail: string }>
  warnings: Array<{ kind: string; subject: string; detail: string }>
  notes: Array<{ kind: string; subject: string; detail: string }>
  tokens: { all: number; discover: number; autoMode: string }
  spec: { files: number; version: string }
  security: {
    schemes: Array<{ scheme: string; kind: string; credential: string; operations: number; scopes: Array<string>; setting: string; configured: boolean; tokenUrls?: Record<string, string> }>
    open: number
    authType: string
    headers: Array<string>
    forwarded: Array<string>
  }
}

const json = async (args: Array<string>) => {
  const r = await runCli(["check", "--format", "json", ...args])
  return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr }
}

describe("check", () => {
  it("reports a clean spec with exit code 0", async () => {
    const r = await runCli(["check", "--spec", EXAMPLE_SPEC])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, "Operations: 6; tools: 6")
    assert.include(r.stdout, "auto mode (budget 20,000) lists every operation")
    assert.include(r.stdout, "Result: OK")
    // read-only, and only what is under /pets: listPets and getPet
    const filtered = await json(["--spec", EXAMPLE_SPEC, "--read-only", "--include-paths", "/pets/**"])
    const { operations, tools, filteredOut } = filtered.report as unknown as Record<string, number>
    assert.deepStrictEqual({ operations, tools, filteredOut }, { operations: 6, tools: 2, filteredOut: 4 })
  })

  it("says which credentials the operations ask for and which this configuration gives, never a value", async () => {
    const r = await runCli(["check", "--format", "json", "--spec", spec("readme_3.0_petstore.json")], { AUTH_SCHEME_API_KEY: "secret-key-value" })
    assert.strictEqual(r.code, 0, r.stderr)
    const { security } = JSON.parse(r.stdout) as Report
    assert.deepStrictEqual(security, {
      schemes: [
        { scheme: "petstore_auth", kind: "oauth2", credential: "a token", operations: 7, scopes: ["read:pets", "write:pets"], setting: "AUTH_SCHEME_PETSTORE_AUTH", configured: false },
        { scheme: "api_key", kind: "API key in header 'api_key'", credential: "the key", operations: 2, scopes: [], setting: "AUTH_SCHEME_API_KEY", configured: true }
      ],
      open: 11,
      authType: "none",
      headers: [],
      forwarded: []
    })
    assert.notInclude(r.stdout, "secret-key-value")
    const text = await runCli(["check", "--spec", spec("readme_3.0_petstore.json"), "--auth-type", "bearer", "--auth-token", "tok-value", "--headers", "X-Tenant: tenant-value"], {
      MCP_FORWARD_HEADERS: "X-Upstream-Authorization=Authorization"
    })
    assert.include(text.stdout, "  - petstore_auth (oauth2; scopes read:pets write:pets): 7 operations; AUTH_SCHEME_PETSTORE_AUTH (a token) is not set")
    assert.include(text.stdout, "  - 11 operations need no credential")
    assert.include(text.stdout, "  --auth-type bearer: sent to every operation that gets no scheme credential")
    assert.include(text.stdout, "  headers sent with every request (API_HEADERS): X-Tenant")
    assert.include(text.stdout, "  headers of the client's request sent on to the API (MCP_FORWARD_HEADERS): authorization (from x-upstream-authorization)")
    assert.notInclude(text.stdout, "tok-value")
    assert.notInclude(text.stdout, "tenant-value")
    // a spec without security and no --auth-type: no section
    assert.notInclude((await runCli(["check", "--spec", fixture("content.yaml")])).stdout, "Authentication")
    // an oauth2 scheme with a token URL says where AUTH_OAUTH2_TOKEN_URL could point
    const slack = await json(["--spec", spec("slack_web_openapi_v2.json")])
    assert.deepStrictEqual(slack.report.security.schemes[0]!.tokenUrls, { authorizationCode: "https://slack.com/api/oauth.access" })
  })

  it("fails (exit 1) on skipped operations, naming where and why", async () => {
    const r = await runCli(["check", "--spec", fixture("startup-broken.yaml")])
    assert.strictEqual(r.code, 1)
    assert.include(r.stdout, "paths./pets/{id}.get.parameters[2]: $ref '#/components/parameters/Nope' not found")
    assert.include(r.stdout, "Result: errors found")
    const missing = await runCli(["check", "--spec", "/nonexistent.yaml"])
    assert.strictEqual(missing.code, 1)
  })

  it("flags instruction-like descriptions, file fields and cut recursive schemas", async () => {
    const { code, report } = await json(["--spec", fixture("injection.yaml")])
    assert.strictEqual(code, 0)
    const injection = report.warnings.find((w) => w.kind === "instruction-like-text")
    assert.strictEqual(injection?.subject, "listNotes")
    assert.deepInclude(report.notes.map((n) => [n.kind, n.subject]), ["binary-fields", "uploadFile"])
    assert.deepInclude(report.notes.map((n) => [n.kind, n.subject]), ["schema-cut", "putTree"])
  })

  it("notes optional bodies with required fields and warns of required fields without a schema", async () => {
    const twilio = await json(["--spec", spec("apisguru_twilio.com_twilio_verify_v2.json")])
    const verify = twilio.report.notes.find((n) => n.kind === "optional-body-with-required-fields" && n.subject === "CreateVerification")
    assert.strictEqual(verify?.detail, "the spec leaves the body optional; when sent it needs Channel, To")
    const digitalOcean = await json(["--spec", spec("digitalocean_multifile/specification/DigitalOcean-public.v2.yaml")])
    assert.deepInclude(digitalOcean.report.warnings, {
      kind: "undescribed-required-field", subject: "uptime_create_check", detail: "body field 'method' is required but has no schema: any value is accepted"
    })
  })

  it("warns of YAML lines it read as other parsers do, and passes", async () => {
    const { code, report } = await json(["--spec", spec("pouch-engine_swagger.yaml"), "--base-url", "http://127.0.0.1:9"])
    assert.strictEqual(code, 0)
    assert.deepInclude(report.warnings, {
      kind: "yaml-indentation", subject: spec("pouch-engine_swagger.yaml"),
      detail: "YAML lines 2249, 2250, 2251, 2252 continue a [...] list, {...} map or quoted text with less indentation than YAML allows; " +
        "read as PyYAML and go-yaml read them (indent them further to silence this)"
    })
  })

  it("reports truncated names on a real spec", async () => {
    const { report } = await json(["--spec", spec("apisguru_hubapi.com_automation.json")])
    assert.strictEqual(report.warnings.filter((w) => w.kind === "name-truncated").length, 8)
  })

  it("shows the token bill of the GitHub spec per mode, and that auto mode would switch to discovery", async () => {
    const { code, report } = await json(["--spec", spec("github_api.github.com.json")])
    assert.strictEqual(code, 0)
    assert.strictEqual(report.tools, 1223)
    assert.isAbove(report.tokens.all, 100_000)
    assert.isBelow(report.tokens.discover, 5000)
    assert.strictEqual(report.tokens.autoMode, "discover")
  })

  it("counts the files of a multi-file spec and warns when no base URL is known", async () => {
    const multi = await json(["--spec", spec("kin_refInRefInProperty/openapi.yaml")])
    assert.isAbove(multi.report.spec.files, 1)
    assert.deepInclude(multi.report.warnings.map((w) => w.kind), "no-base-url")
    assert.strictEqual(multi.report.tools, 1)
  })
})
