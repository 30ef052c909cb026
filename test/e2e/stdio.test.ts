/**
 * The built CLI over stdio with the MCP SDK client, against the bundled example API, exactly as an
 * agent's MCP client runs it.
 */
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { CLI, connectStdio, EXAMPLE_SPEC, fixture, textOf } from "../support/processes.ts"

const KEY = "stdio-test-key"

describe("stdio transport", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    api = await startExampleApi({ apiKey: KEY })
    mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url], {
      AUTH_TYPE: "api_key", AUTH_API_KEY: KEY, AUTH_API_KEY_NAME: "X-API-Key", LOG_LEVEL: "debug"
    })
  })
  afterAll(async () => {
    await mcp?.close()
    await api?.close()
  })

  it("announces the spec's title and lists one tool per operation", async () => {
    assert.strictEqual(mcp.client.getServerVersion()?.name, "Example Pet Store")
    const { tools } = await mcp.client.listTools()
    assert.deepStrictEqual(tools.map((t) => t.name).sort(), ["createPet", "deletePet", "getInventory", "getPet", "listPets", "updatePet"])
    const getPet = tools.find((t) => t.name === "getPet")!
    assert.deepStrictEqual(getPet.inputSchema.required, ["petId"])
    assert.strictEqual(getPet.annotations?.readOnlyHint, true)
    const create = tools.find((t) => t.name === "createPet")!
    // readOnly id/createdAt stay out; body properties are flattened
    assert.deepStrictEqual(Object.keys(create.inputSchema.properties ?? {}).sort(), ["name", "status", "tags"])
  })

  it("calls the real API and returns JSON as structuredContent and text", async () => {
    const created = await mcp.client.callTool({ name: "createPet", arguments: { name: "Bella", tags: ["dog"] } })
    assert.isUndefined(created.isError, textOf(created))
    const pet = created.structuredContent as { id: number; name: string; status: string }
    assert.strictEqual(pet.name, "Bella")
    assert.strictEqual(pet.status, "available")
    assert.deepStrictEqual(JSON.parse(textOf(created)), pet)
    const list = await mcp.client.callTool({ name: "listPets", arguments: { tags: ["dog"] } })
    const names = (list.structuredContent as { items: Array<{ name: string }> }).items.map((p) => p.name)
    assert.deepStrictEqual(names, ["Bella", "Rex"])
    const deleted = await mcp.client.callTool({ name: "deletePet", arguments: { petId: pet.id } })
    assert.include(textOf(deleted), "204")
  })

  it("returns upstream 4xx as a tool error naming status, operation and body", async () => {
    const result = await mcp.client.callTool({ name: "getPet", arguments: { petId: 4242 } })
    assert.isTrue(result.isError)
    const text = textOf(result)
    assert.include(text, "getPet failed: HTTP 404 Not Found from GET /pets/{petId}")
    assert.include(text, "no pet with id 4242")
  })

  it("rejects invalid arguments with a message the model can act on, without calling the API", async () => {
    const result = await mcp.client.callTool({ name: "listPets", arguments: { status: "lost", limit: "ten", petid: 1 } })
    assert.isTrue(result.isError)
    const text = textOf(result)
    assert.include(text, "'status' must be one of")
    assert.include(text, "'limit' must be of type integer (got \"ten\")")
    assert.include(text, "'petid' is not an argument of this tool")
  })

  it("answers an unknown tool with a protocol error", async () => {
    const error = await mcp.client.callTool({ name: "nope", arguments: {} }).then(() => undefined, (e: unknown) => e)
    assert.instanceOf(error, McpError)
    assert.include((error as Error).message, "Unknown tool: nope")
    assert.notInclude((error as Error).message, "did you mean")
    // a near miss names what it may have meant
    const typo = await mcp.client.callTool({ name: "get_pet", arguments: {} }).then(() => undefined, (e: unknown) => e)
    assert.include((typo as Error).message, "Unknown tool: get_pet (did you mean getPet?)")
    const edit = await mcp.client.callTool({ name: "listPet", arguments: {} }).then(() => undefined, (e: unknown) => e)
    assert.include((edit as Error).message, "(did you mean listPets?)")
  })

  it("logs JSON lines on stderr with tool, operation, status and duration, and never the API key", async () => {
    await mcp.client.callTool({ name: "getInventory", arguments: {} })
    const lines = mcp.stderr().trim().split("\n")
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    const call = entries.find((e) => e["tool"] === "getInventory")
    assert.isDefined(call)
    assert.strictEqual(call!["operation"], "getInventory")
    assert.strictEqual(call!["status"], 200)
    assert.isNumber(call!["duration_ms"])
    assert.isString(call!["time"])
    assert.notInclude(mcp.stderr(), KEY)
  })
})

/** Raw process: every stdout line must be a JSON-RPC message; EOF and signals end it cleanly. */
const rawSession = (args: Array<string>, input: string, end: "eof" | "SIGTERM" | "SIGINT", answers = 2) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
      // once the answers are in, end the session the chosen way
      if (stdout.split("\n").filter((l) => l.trim() !== "").length >= answers) {
        if (end === "eof") child.stdin.end()
        else child.kill(end)
      }
    })
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
    child.stdin.write(input)
  })

const INIT = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
})
const LIST = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" })

describe("malformed requests", () => {
  it("are answered with a short JSON-RPC error (a request the SDK cannot read would get none, and the client would wait)", async () => {
    const requests = [
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: null },
      { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: 5 } },
      { jsonrpc: "2.0", id: 4, method: "prompts/get", params: { name: "getItem", arguments: { id: { nested: 1 } } } }
    ]
    const r = await rawSession(["--spec", fixture("wire.yaml")], [INIT, ...requests.map((m) => JSON.stringify(m))].join("\n") + "\n", "eof", 4)
    assert.strictEqual(r.code, 0, r.stderr)
    const byId = new Map(r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: number; error?: { code: number; message: string } }).map((m) => [m.id, m.error]))
    assert.deepStrictEqual(byId.get(2), { code: -32600, message: "Invalid Request: params: Invalid input: expected object, received null" })
    assert.strictEqual(byId.get(3)?.code, -32602)
    assert.include(byId.get(3)?.message, "Invalid params for tools/call: params.name: Invalid input: expected string, received number")
    assert.strictEqual(byId.get(4)?.code, -32602)
    assert.include(byId.get(4)?.message, "Invalid params for prompts/get: params.arguments.id:")
    for (const error of byId.values()) assert.notInclude(error?.message ?? "", "\n")
  })
})

describe("stdio process hygiene", () => {
  for (const end of ["eof", "SIGTERM", "SIGINT"] as const) {
    it(`writes only JSON-RPC to stdout and exits 0 on ${end}`, async () => {
      const r = await rawSession(["--spec", fixture("wire.yaml"), "--log-level", "debug"], `${INIT}\n${LIST}\n`, end)
      assert.strictEqual(r.code, 0, r.stderr)
      const lines = r.stdout.split("\n").filter((l) => l.trim() !== "")
      assert.isAtLeast(lines.length, 2)
      for (const line of lines) assert.strictEqual((JSON.parse(line) as { jsonrpc: string }).jsonrpc, "2.0")
      for (const line of r.stderr.trim().split("\n")) assert.doesNotThrow(() => JSON.parse(line), line)
    })
  }
})
