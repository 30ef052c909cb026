/**
 * The Lambda handler driven in-process with real API Gateway HTTP API (payload v2) / Function URL event
 * shapes: initialize, tools/list and tools/call, statelessly, against the example API, with the HTTP
 * server's own MCP transport and its refusals.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { startExampleApi } from "../src/demo/ExampleApi.ts"
import type { HttpEventV2 } from "../src/Lambda.ts"
import { event, loadHandler } from "./support/lambda.ts"
import { CLI, EXAMPLE_SPEC } from "./support/processes.ts"

const rpc = (id: number, method: string, params: unknown = {}) => ({ jsonrpc: "2.0", id, method, params })
const INIT = rpc(1, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "lambda-test", version: "1" } })

describe("Lambda handler", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let handler: typeof import("../src/Lambda.ts").handler
  beforeAll(async () => {
    api = await startExampleApi()
    handler = await loadHandler(api.url)
  })
  afterAll(async () => {
    await api?.close()
  })

  it("answers initialize, tools/list and tools/call without sessions, with JSON bodies", async () => {
    const init = await handler(event("POST", "/mcp", INIT))
    assert.strictEqual(init.statusCode, 200)
    assert.match(init.headers["content-type"] ?? "", /application\/json/)
    assert.isUndefined(init.headers["mcp-session-id"])
    assert.strictEqual(JSON.parse(init.body).result.serverInfo.name, "Example Pet Store")

    // any request can go to any container: no session id is needed afterwards
    const list = await handler(event("POST", "/mcp", rpc(2, "tools/list"), { "mcp-protocol-version": "2025-06-18" }))
    assert.strictEqual(list.statusCode, 200)
    assert.strictEqual(JSON.parse(list.body).result.tools.length, 6)

    const call = await handler(event("POST", "/mcp", rpc(3, "tools/call", { name: "getPet", arguments: { petId: 1 } }), { "mcp-protocol-version": "2025-06-18" }))
    const result = JSON.parse(call.body).result
    assert.strictEqual(result.structuredContent.name, "Rex")
  })

  it("refuses what the HTTP server refuses, accepts notifications with 202 and answers a batch in one JSON array", async () => {
    const version = { "mcp-protocol-version": "2025-06-18" }
    const refusal = async (e: HttpEventV2) => {
      const r = await handler(e)
      return [r.statusCode, JSON.parse(r.body).error.code]
    }
    assert.deepStrictEqual(await refusal({ ...event("POST", "/mcp"), body: "{not json", isBase64Encoded: false }), [400, -32700])
    assert.deepStrictEqual(await refusal(event("POST", "/mcp", rpc(2, "tools/list"), { ...version, accept: "application/json" })), [406, -32000])
    assert.deepStrictEqual(await refusal(event("POST", "/mcp", rpc(2, "tools/list"), { ...version, "content-type": "text/plain" })), [415, -32000])
    assert.deepStrictEqual(await refusal(event("POST", "/mcp", { jsonrpc: "2.0", id: 2 }, version)), [400, -32700])
    assert.deepStrictEqual(await refusal(event("POST", "/mcp", rpc(2, "tools/list"), { "mcp-protocol-version": "1999-01-01" })), [400, -32000])

    const notified = await handler(event("POST", "/mcp", { jsonrpc: "2.0", method: "notifications/initialized" }, version))
    assert.strictEqual(notified.statusCode, 202)
    assert.strictEqual(notified.body, "")

    const batch = await handler(event("POST", "/mcp", [
      rpc(7, "tools/call", { name: "getPet", arguments: { petId: 1 } }),
      rpc(8, "tools/call", { name: "getPet", arguments: {} })
    ], version))
    assert.strictEqual(batch.statusCode, 200)
    const answers = JSON.parse(batch.body) as Array<{ id: number; result: { isError?: boolean; structuredContent?: { name: string } } }>
    assert.deepStrictEqual(answers.map((a) => a.id).sort(), [7, 8])
    assert.strictEqual(answers.find((a) => a.id === 7)!.result.structuredContent!.name, "Rex")
    assert.isTrue(answers.find((a) => a.id === 8)!.result.isError) // petId missing: a tool error the model can read
  })

  it("answers health checks and refuses the SSE stream", async () => {
    assert.strictEqual((await handler(event("GET", "/healthz"))).statusCode, 200)
    const stream = await handler(event("GET", "/mcp", undefined, { accept: "text/event-stream" }))
    assert.strictEqual(stream.statusCode, 405)
  })
})

describe("Lambda handler as deployed (the bundle the SAM template names)", () => {
  it("answers from dist/bundle/Lambda.js, with a catalog the CLI made ahead", () => {
    const dir = mkdtempSync(join(tmpdir(), "lambda-bundle-"))
    const env = { PATH: process.env["PATH"] ?? "", API_SPEC_PATH: EXAMPLE_SPEC, API_BASE_URL: "http://127.0.0.1:9", CATALOG_CACHE_DIR: dir }
    try {
      // made ahead: the CLI started once with stdin at its end writes the catalog as it stops
      const ahead = spawnSync(process.execPath, [CLI], { input: "", env, encoding: "utf8", timeout: 30_000 })
      assert.strictEqual(ahead.status, 0, ahead.stderr)
      const script = `
        const { handler } = await import(${JSON.stringify(resolve(CLI, "../Lambda.js"))})
        const [init, list] = JSON.parse(process.env.EVENTS)
        await handler(init)
        const listed = await handler(list)
        process.stdout.write(JSON.stringify(JSON.parse(listed.body).result.tools.map((t) => t.name)))`
      const events = [event("POST", "/mcp", INIT), event("POST", "/mcp", rpc(2, "tools/list"), { "mcp-protocol-version": "2025-06-18" })]
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        env: { ...env, LOG_LEVEL: "debug", EVENTS: JSON.stringify(events) }, encoding: "utf8", timeout: 30_000
      })
      assert.strictEqual(run.status, 0, run.stderr)
      assert.deepStrictEqual(JSON.parse(run.stdout), ["listPets", "createPet", "getPet", "deletePet", "updatePet", "getInventory"])
      assert.include(run.stderr, "read from the catalog cache")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  /** Imports the bundled handler in a fresh process, runs `then` (JavaScript) and answers `events` in order. */
  const lambdaProcess = (env: Record<string, string>, then: string, events: ReadonlyArray<HttpEventV2>) => {
    const script = `
      const { handler } = await import(${JSON.stringify(resolve(CLI, "../Lambda.js"))});
      ${then}
      const answers = []
      for (const e of JSON.parse(process.env.EVENTS)) answers.push(await handler(e))
      process.stdout.write(JSON.stringify(answers))`
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { PATH: process.env["PATH"] ?? "", API_BASE_URL: "http://127.0.0.1:9", CATALOG_CACHE_DIR: "off", ...env, EVENTS: JSON.stringify(events) },
      encoding: "utf8",
      timeout: 30_000
    })
    assert.strictEqual(run.status, 0, run.stderr)
    return { answers: JSON.parse(run.stdout) as Array<{ statusCode: number; body: string }>, stderr: run.stderr }
  }

  it("builds the application while the module loads (Lambda's init phase), before the first invocation", () => {
    const dir = mkdtempSync(join(tmpdir(), "lambda-init-"))
    const spec = join(dir, "petstore.yaml")
    copyFileSync(EXAMPLE_SPEC, spec)
    try {
      // the spec is gone before the first invocation: only a start made at import can have read it
      const { answers } = lambdaProcess({ API_SPEC_PATH: spec }, `(await import("node:fs")).rmSync(${JSON.stringify(spec)})`, [
        event("POST", "/mcp", rpc(2, "tools/list"), { "mcp-protocol-version": "2025-06-18" })
      ])
      assert.strictEqual(answers[0]!.statusCode, 200)
      assert.strictEqual(JSON.parse(answers[0]!.body).result.tools.length, 6)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("logs a start that fails in the init phase, and the invocations answer with its reason", () => {
    const missing = join(tmpdir(), "no-such-dir-for-lambda", "spec.yaml")
    const { answers, stderr } = lambdaProcess({ API_SPEC_PATH: missing }, "", [
      event("POST", "/mcp", INIT),
      event("GET", "/healthz")
    ])
    const logged = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { level: string; message: string })
    const initFailure = logged.find((l) => l.message.includes("init phase"))
    assert.strictEqual(initFailure?.level, "error", stderr)
    assert.include(initFailure!.message, "file not found")
    assert.strictEqual(answers[0]!.statusCode, 500)
    assert.include(JSON.parse(answers[0]!.body).error.message, "file not found")
    assert.strictEqual(answers[1]!.statusCode, 503)
  })
})
