/**
 * --watch: editing the spec while the server runs. Real files in a temporary directory, saved as editors save
 * them (a new file renamed over the old one), the built server over stdio and Streamable HTTP, the SDK client,
 * and the bundled example API as the upstream.
 */
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { connectHttp, connectStdio, EXAMPLE_SPEC, startHttpServer, startLocalServer, textOf, waitFor } from "../support/processes.ts"

const PETSTORE = readFileSync(EXAMPLE_SPEC, "utf8")

/** Saves `text` to `file` the way editors do: written beside it, then renamed over it. */
const save = (file: string, text: string) => {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

/** Counts the client's tools/list_changed notifications, and waits for the next one. */
const listChanges = (client: Awaited<ReturnType<typeof connectStdio>>["client"]) => {
  let count = 0
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    count++
  })
  return {
    count: () => count,
    next: async () => {
      const before = count
      await waitFor(async () => count > before, "tools/list_changed", 15_000)
    }
  }
}

/** The example spec with createPet's body in a second document, `schemas.yaml` (`schemas(extra)` is its text). */
const SPLIT_MAIN = PETSTORE.replace(
  /(operationId: createPet[\s\S]*?application\/json:\s*\n\s*schema:\s*\n\s*)\$ref: ['"]?#\/components\/schemas\/NewPet['"]?/,
  "$1$ref: './schemas.yaml#/Pet'"
)
const schemas = (extra: string) => `Pet:\n  type: object\n  required: [name]\n  properties:\n    name: { type: string }\n${extra}`

const createPetProperties = async (client: Awaited<ReturnType<typeof connectStdio>>["client"]) =>
  Object.keys((await client.listTools()).tools.find((t) => t.name === "createPet")!.inputSchema.properties ?? {})

const toolNames = async (client: Awaited<ReturnType<typeof connectStdio>>["client"]) =>
  (await client.listTools()).tools.map((t) => t.name).sort()

describe("--watch", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let dir: string
  let mcp: Awaited<ReturnType<typeof connectStdio>> | undefined
  beforeAll(async () => {
    api = await startExampleApi()
  })
  afterEach(async () => {
    await mcp?.close()
    mcp = undefined
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })
  afterAll(async () => {
    await api?.close()
  })
  const start = async (files: Record<string, string>, args: ReadonlyArray<string> = []) => {
    dir = mkdtempSync(join(tmpdir(), "watch-"))
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
    mcp = await connectStdio(["--spec", join(dir, "openapi.yaml"), "--base-url", api.url, "--watch", "--catalog-cache-dir", "off", ...args])
    return mcp
  }

  it("serves the edited spec's tools after a save, and keeps serving them when a later save does not load", async () => {
    const { client, stderr } = await start({ "openapi.yaml": PETSTORE })
    assert.isTrue(client.getServerCapabilities()?.tools?.listChanged)
    assert.include(await toolNames(client), "getPet")
    const changes = listChanges(client)

    save(join(dir, "openapi.yaml"), PETSTORE.replace("operationId: getPet", "operationId: fetchPet"))
    await changes.next()
    const names = await toolNames(client)
    assert.include(names, "fetchPet")
    assert.notInclude(names, "getPet")
    const pet = await client.callTool({ name: "fetchPet", arguments: { petId: 1 } })
    assert.isNotTrue(pet.isError, textOf(pet))
    assert.strictEqual(JSON.parse(textOf(pet)).id, 1)
    const gone = await client.callTool({ name: "getPet", arguments: { petId: 1 } }).then(() => "", (e: Error) => e.message)
    assert.include(gone, "Unknown tool: getPet")

    // a save that breaks the spec: logged with where and why, the tools stay
    save(join(dir, "openapi.yaml"), `${PETSTORE.replace("operationId: getPet", "operationId: fetchPet")}\n  broken: [\n`)
    await waitFor(async () => stderr().includes("does not load"), "the reload error", 15_000)
    const error = stderr().split("\n").find((l) => l.includes("does not load"))!
    assert.include(error, "still serving the previous 6 tools")
    assert.include(error, join(dir, "openapi.yaml"))
    assert.include(error, "YAML")
    assert.include(await toolNames(client), "fetchPet")
    assert.isNotTrue((await client.callTool({ name: "fetchPet", arguments: { petId: 2 } })).isError)
    const told = changes.count()

    // fixed again: served again
    save(join(dir, "openapi.yaml"), PETSTORE)
    await changes.next()
    assert.include(await toolNames(client), "getPet")
    assert.strictEqual(changes.count(), told + 1)
  })

  it("a save that changes nothing reloads nothing", async () => {
    const { stderr } = await start({ "openapi.yaml": PETSTORE }, ["--log-level", "debug"])
    save(join(dir, "openapi.yaml"), PETSTORE)
    await waitFor(async () => stderr().includes("content has not changed"), "the unchanged-content note", 15_000)
    assert.notInclude(stderr(), "spec reloaded")
  })

  it("watches the files the spec refers to", async () => {
    assert.notStrictEqual(SPLIT_MAIN, PETSTORE, "the example spec's createPet body is a $ref to NewPet")
    const { client } = await start({ "openapi.yaml": SPLIT_MAIN, "schemas.yaml": schemas("") })
    assert.notInclude(await createPetProperties(client), "nickname")
    const changes = listChanges(client)
    save(join(dir, "schemas.yaml"), schemas("    nickname: { type: string }\n"))
    await changes.next()
    assert.include(await createPetProperties(client), "nickname")
  })

  it("keeps the operations a client described in discovery mode listed, as the new spec has them", async () => {
    const { client } = await start({ "openapi.yaml": PETSTORE }, ["--tool-mode", "discover"])
    await client.callTool({ name: "describe_operation", arguments: { name: "listPets" } })
    const changes = listChanges(client)
    const listed = async () => (await client.listTools()).tools.find((t) => t.name === "listPets")?.description ?? ""
    assert.notInclude(await listed(), "Edited")
    save(join(dir, "openapi.yaml"), PETSTORE.replace("summary: List pets", "summary: Edited summary"))
    await changes.next()
    assert.include(await listed(), "Edited summary")
  })

  it("fetches a spec URL again every SPEC_WATCH_INTERVAL, and reloads it when it changed", async () => {
    let served: { status: number; text: string } = { status: 200, text: PETSTORE }
    let fetches = 0
    const specServer = await startLocalServer((_req, res) => {
      fetches++
      res.writeHead(served.status, { "content-type": "application/yaml" }).end(served.text)
    })
    try {
      mcp = await connectStdio([
        "--spec", `${specServer.url}/openapi.yaml`, "--allow-insecure-http", "--allow-private-networks", "--base-url", api.url,
        "--watch", "--watch-interval", "1", "--catalog-cache-dir", "off", "--log-level", "debug"
      ])
      const { client, stderr } = mcp
      const changes = listChanges(client)
      // unchanged: fetched again, nothing reloaded
      const before = fetches
      await waitFor(async () => fetches >= before + 2, "two more fetches of the spec", 15_000)
      assert.strictEqual(changes.count(), 0)
      assert.notInclude(stderr(), "spec reloaded")
      // the API's spec cannot be fetched for a while: said so, the tools stay
      served = { status: 503, text: "down" }
      await waitFor(async () => stderr().includes("cannot fetch the spec to see whether it changed"), "the fetch warning", 15_000)
      assert.include(await toolNames(client), "getPet")
      // a new version of the spec: reloaded
      served = { status: 200, text: PETSTORE.replace("operationId: getPet", "operationId: fetchPet") }
      await changes.next()
      assert.include(await toolNames(client), "fetchPet")
      assert.include(stderr(), "spec reloaded: 6 tools")
    } finally {
      await specServer.close()
    }
  })

  it("fetches the documents a spec URL refers to as well, and reloads when one of them changed", async () => {
    const served: Record<string, string> = { "/openapi.yaml": SPLIT_MAIN, "/schemas.yaml": schemas("") }
    const fetched: Record<string, number> = {}
    const specServer = await startLocalServer((req, res) => {
      fetched[req.url!] = (fetched[req.url!] ?? 0) + 1
      res.writeHead(200, { "content-type": "application/yaml" }).end(served[req.url!])
    })
    try {
      mcp = await connectStdio([
        "--spec", `${specServer.url}/openapi.yaml`, "--allow-insecure-http", "--allow-private-networks", "--base-url", api.url,
        "--watch", "--watch-interval", "1", "--catalog-cache-dir", "off"
      ])
      const { client, stderr } = mcp
      assert.notInclude(await createPetProperties(client), "nickname")
      await waitFor(async () => (fetched["/schemas.yaml"] ?? 0) >= 3, "the referenced document fetched again", 15_000)
      assert.notInclude(stderr(), "spec reloaded")
      const changes = listChanges(client)
      served["/schemas.yaml"] = schemas("    nickname: { type: string }\n")
      await changes.next()
      assert.include(await createPetProperties(client), "nickname")
    } finally {
      await specServer.close()
    }
  })

  it("reloads an HTTP server on SIGHUP, without --watch, keeping its sessions", async () => {
    dir = mkdtempSync(join(tmpdir(), "watch-"))
    writeFileSync(join(dir, "openapi.yaml"), PETSTORE)
    const server = await startHttpServer(["--spec", join(dir, "openapi.yaml"), "--base-url", api.url, "--catalog-cache-dir", "off"])
    try {
      const { client } = await connectHttp(server.base)
      assert.include(await toolNames(client as never), "getPet")
      // no watching: a save alone changes nothing
      save(join(dir, "openapi.yaml"), PETSTORE.replace("operationId: getPet", "operationId: fetchPet"))
      server.child.kill("SIGHUP")
      await waitFor(async () => server.stderr().includes("SIGHUP: spec reloaded: 6 tools"), "the SIGHUP reload", 15_000)
      const names = await toolNames(client as never)
      assert.include(names, "fetchPet")
      assert.notInclude(names, "getPet")
      assert.isNotTrue((await client.callTool({ name: "fetchPet", arguments: { petId: 1 } })).isError)
      assert.notInclude(server.stderr(), "--watch: watching")
      await client.close()
    } finally {
      await server.stop()
    }
  })

  it("tells Streamable HTTP sessions, and readiness counts the new tools", async () => {
    dir = mkdtempSync(join(tmpdir(), "watch-"))
    writeFileSync(join(dir, "openapi.yaml"), PETSTORE)
    const server = await startHttpServer(["--spec", join(dir, "openapi.yaml"), "--base-url", api.url, "--watch", "--catalog-cache-dir", "off"])
    try {
      const { client, transport } = await connectHttp(server.base)
      const ready = async () => (await (await fetch(`${server.base}/readyz`)).json() as { tools: number }).tools
      assert.strictEqual(await ready(), 6)
      // the session's stream for notifications: the SDK client opens it after initialize, in the background; this
      // GET is answered 409 once it is open, else it is the stream
      let stream = ""
      const own = await fetch(`${server.base}/mcp`, {
        headers: { accept: "text/event-stream", "mcp-session-id": transport.sessionId!, "mcp-protocol-version": "2025-06-18" }
      })
      if (own.status === 200) {
        void (async () => {
          for await (const chunk of own.body!) stream += Buffer.from(chunk).toString()
        })().catch(() => undefined)
      } else {
        assert.strictEqual(own.status, 409)
      }
      const changes = listChanges(client as never)
      save(join(dir, "openapi.yaml"), PETSTORE.replace(/\n  \/store\/inventory:[\s\S]*?(?=\n  \/|\ncomponents:)/, ""))
      await waitFor(async () => changes.count() > 0 || stream.includes("notifications/tools/list_changed"), "tools/list_changed", 15_000)
      assert.strictEqual(await ready(), 5)
      assert.notInclude((await client.listTools()).tools.map((t) => t.name), "getInventory")
      await client.close()
    } finally {
      await server.stop()
    }
  })
})
