/** Prompts, resources, progress notifications, confirmation by elicitation, binary answers (inline or saved), and _select. */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { brotliCompressSync, gzipSync } from "node:zlib"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { CLI, connectStdio, EXAMPLE_SPEC, fixture, runCli, startLocalServer, textOf } from "../support/processes.ts"

describe("prompts and resources", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    api = await startExampleApi()
    mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--resources"])
  })
  afterAll(async () => {
    await mcp?.close()
    await api?.close()
  })

  it("offers a prompt per operation and per tag", async () => {
    const { prompts } = await mcp.client.listPrompts()
    const names = prompts.map((p) => p.name)
    assert.includeMembers(names, ["getPet", "listPets", "tag_pets", "tag_store"])
    const howTo = await mcp.client.getPrompt({ name: "getPet", arguments: { petId: "7" } })
    const text = (howTo.messages[0]!.content as { text: string }).text
    assert.include(text, "Use the tool getPet")
    assert.include(text, "- petId (required): integer — The pet's id")
    assert.include(text, 'Call it with: {"petId":"7"}')
    const group = await mcp.client.getPrompt({ name: "tag_pets" })
    assert.include((group.messages[0]!.content as { text: string }).text, "Everything about pets")
  })

  it("exposes GET operations without required arguments as resources", async () => {
    const { resources } = await mcp.client.listResources()
    assert.deepStrictEqual(resources.map((r) => r.name).sort(), ["getInventory", "listPets"])
    const read = await mcp.client.readResource({ uri: "openapi-operation://getInventory" })
    assert.deepStrictEqual(JSON.parse((read.contents[0] as { text: string }).text), { available: 1, pending: 1, sold: 1 })
  })

  it("exposes GET operations whose required arguments are path parameters as resource templates", async () => {
    const { resourceTemplates } = await mcp.client.listResourceTemplates()
    assert.deepStrictEqual(resourceTemplates.map((t) => t.uriTemplate), ["openapi-operation://getPet/{petId}"])
    const pet = await mcp.client.readResource({ uri: "openapi-operation://getPet/1" })
    assert.strictEqual(pet.contents[0]!.uri, "openapi-operation://getPet/1")
    assert.strictEqual(JSON.parse((pet.contents[0] as { text: string }).text).id, 1)
    // a pet that is not there, a segment too many, an argument refused: errors naming why
    const missing = await mcp.client.readResource({ uri: "openapi-operation://getPet/999" }).then(() => "", (e: Error) => e.message)
    assert.include(missing, "HTTP 404")
    const extra = await mcp.client.readResource({ uri: "openapi-operation://getPet/1/2" }).then(() => "", (e: Error) => e.message)
    assert.include(extra, "Unknown resource: openapi-operation://getPet/1/2")
    const dots = await mcp.client.readResource({ uri: "openapi-operation://getPet/%2E%2E" }).then(() => "", (e: Error) => e.message)
    assert.include(dots, "petId")
  })
})

describe("confirmation of destructive calls", () => {
  const connect = async (answer: "accept" | "decline" | undefined, env: Record<string, string>, api: string) => {
    const client = new Client({ name: "elicit-client", version: "1" }, { capabilities: answer ? { elicitation: {} } : {} })
    const asked: Array<string> = []
    if (answer) {
      client.setRequestHandler(ElicitRequestSchema, (request) => {
        asked.push((request.params as { message: string }).message)
        return answer === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" }
      })
    }
    await client.connect(new StdioClientTransport({
      command: process.execPath, args: [CLI, "--spec", EXAMPLE_SPEC, "--base-url", api, "--confirm-destructive"],
      env: { PATH: process.env["PATH"] ?? "", ...env }, stderr: "pipe"
    }))
    return { client, asked }
  }

  it("sends a DELETE only when the user accepts it", async () => {
    const api = await startExampleApi()
    try {
      const declined = await connect("decline", {}, api.url)
      const no = await declined.client.callTool({ name: "deletePet", arguments: { petId: 1 } })
      assert.isTrue(no.isError)
      assert.include(textOf(no), "the user declined deletePet")
      assert.include(declined.asked[0]!, "DELETE /pets/{petId}")
      assert.isUndefined((await declined.client.callTool({ name: "getPet", arguments: { petId: 1 } })).isError)
      await declined.client.close()

      const accepted = await connect("accept", {}, api.url)
      assert.include(textOf(await accepted.client.callTool({ name: "deletePet", arguments: { petId: 1 } })), "204")
      assert.isTrue((await accepted.client.callTool({ name: "getPet", arguments: { petId: 1 } })).isError)
      await accepted.client.close()

      const unable = await connect(undefined, {}, api.url)
      const refused = await unable.client.callTool({ name: "deletePet", arguments: { petId: 2 } })
      assert.include(textOf(refused), "this client cannot ask")
      await unable.client.close()
    } finally {
      await api.close()
    }
  })
})

describe("long calls and binary answers", () => {
  it("sends progress notifications while a slow call runs, and returns images as image content", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])
    const server = await startLocalServer((req, res) => {
      if (req.url === "/image") return void res.writeHead(200, { "content-type": "image/png" }).end(png)
      setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{\"ok\":true}"), 2300)
    })
    const base = server.url
    const mcp = await connectStdio(["--spec", fixture("content.yaml"), "--base-url", base])
    try {
      const image = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.deepStrictEqual(image.content, [{ type: "image", data: png.toString("base64"), mimeType: "image/png" }])
      const progress: Array<{ progress: number; message?: string | undefined }> = []
      const slow = await mcp.client.callTool({ name: "getSlow", arguments: {} }, undefined, {
        onprogress: (p) => progress.push(p)
      })
      assert.deepStrictEqual(slow.structuredContent, { ok: true })
      assert.isAtLeast(progress.length, 2)
      assert.deepStrictEqual(progress.slice(0, 2).map((p) => p.progress), [1, 2])
      assert.include(progress[0]!.message ?? "", "getSlow: waiting for the API")
    } finally {
      await mcp.close()
      await server.close()
    }
  })
})

describe("redirects", () => {
  it("answers a redirect the operation documents with its address, an undocumented one as an error; neither is followed", async () => {
    let followed = 0
    const server = await startLocalServer((req, res) => {
      if (req.url === "/elsewhere") {
        followed++
        return void res.writeHead(200).end("followed")
      }
      res.writeHead(302, { location: `http://${req.headers.host}/elsewhere` }).end()
    })
    const base = server.url
    const mcp = await connectStdio(["--spec", fixture("redirects.yaml"), "--base-url", base])
    try {
      const archive = await mcp.client.callTool({ name: "getArchive", arguments: {} })
      assert.isUndefined(archive.isError)
      assert.deepStrictEqual(archive.structuredContent, { status: 302, location: `${base}/elsewhere` })
      assert.include(textOf(archive), `the API answers with the address ${base}/elsewhere`)
      const moved = await mcp.client.callTool({ name: "getMoved", arguments: {} })
      assert.isTrue(moved.isError)
      assert.include(textOf(moved), `HTTP 302 Found from GET /moved (redirect to ${base}/elsewhere, not followed)`)
      assert.strictEqual(followed, 0)
    } finally {
      await mcp.close()
      await server.close()
    }
  })
})

describe("compressed answers", () => {
  it("asks for compression and reads gzip and brotli answers, errors too; a compressed bomb is cut like a long answer", async () => {
    const seen: Array<string | undefined> = []
    const server = await startLocalServer((req, res) => {
      seen.push(req.headers["accept-encoding"])
      if (req.url === "/image") {
        // (getImage) 40 MiB of zeros in about 40 KiB of gzip
        return void res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" }).end(gzipSync(Buffer.alloc(40 * 1024 * 1024)))
      }
      const body = JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `pet ${i}` })) })
      const brotli = seen.length === 2
      res.writeHead(brotli ? 503 : 200, { "content-type": "application/json", "content-encoding": brotli ? "br" : "gzip" })
      res.end(brotli ? brotliCompressSync(body) : gzipSync(body))
    })
    const base = server.url
    const mcp = await connectStdio(["--spec", fixture("content.yaml"), "--base-url", base, "--retry-max-attempts", "1", "--max-response-bytes", "4096", "--cache-backend", "none"])
    try {
      const ok = await mcp.client.callTool({ name: "getSlow", arguments: {} })
      assert.strictEqual((ok.structuredContent as { items: Array<unknown> }).items.length, 50)
      const failed = await mcp.client.callTool({ name: "getSlow", arguments: {} })
      assert.isTrue(failed.isError)
      assert.include(textOf(failed), "HTTP 503")
      assert.include(textOf(failed), "{\"items\":[{\"id\":0,\"name\":\"pet 0\"}")
      const bomb = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.include(textOf(bomb), "[truncated: showing 4096 of more than")
      assert.deepStrictEqual(seen, ["gzip, deflate, br", "gzip, deflate, br", "gzip, deflate, br"])
    } finally {
      await mcp.close()
      await server.close()
    }
  })
})

describe("an endless answer", () => {
  it("reads a body only up to what it can use, then stops the download and says the answer was cut", async () => {
    let closedEarly = false
    const chunk = Buffer.alloc(64 * 1024, "a")
    const server = await startLocalServer((req, res) => {
      // text that never ends: 64 KiB every few milliseconds until the client goes away
      res.writeHead(200, { "content-type": "text/plain" })
      const timer = setInterval(() => res.write(chunk), 2)
      res.once("close", () => {
        clearInterval(timer)
        closedEarly = !res.writableEnded
      })
    })
    const base = server.url
    const mcp = await connectStdio(["--spec", fixture("content.yaml"), "--base-url", base, "--max-response-bytes", "4096", "--cache-max-entry-bytes", "65536"])
    try {
      const result = await mcp.client.callTool({ name: "getSlow", arguments: {} })
      const text = textOf(result)
      assert.isTrue(text.startsWith("a".repeat(4096)))
      assert.include(text, "[truncated: showing 4096 of more than 65537 bytes]")
      await new Promise((r) => setTimeout(r, 100))
      assert.isTrue(closedEarly)
    } finally {
      await mcp.close()
      await server.close()
    }
  })

  it("gives an endless JSON list as valid JSON up to its last whole entry", async () => {
    const server = await startLocalServer((_req, res) => {
      // {"data": [ … ] } whose list never ends: 200 entries every few milliseconds until the client goes away
      res.writeHead(200, { "content-type": "application/json" })
      res.write("{\"object\": \"list\", \"data\": [")
      let id = 0
      const batch = () => Array.from({ length: 200 }, () => JSON.stringify({ id: id++, name: `entry ${id}`, note: "é \" \\" })).join(",") + ","
      const timer = setInterval(() => res.write(batch()), 2)
      res.once("close", () => clearInterval(timer))
    })
    const mcp = await connectStdio(["--spec", fixture("content.yaml"), "--base-url", server.url, "--max-response-bytes", "8192", "--cache-max-entry-bytes", "65536"])
    try {
      const result = await mcp.client.callTool({ name: "getSlow", arguments: {} })
      assert.notStrictEqual(result.isError, true)
      assert.isUndefined(result.structuredContent) // never passed off as the whole answer
      const [json, note] = textOf(result).split("\n\n")
      const value = JSON.parse(json!) as { object: string; data: Array<{ id: number; note: string }> }
      assert.strictEqual(value.object, "list")
      assert.isAbove(value.data.length, 50)
      assert.deepStrictEqual(value.data.map((e) => e.id), value.data.map((_, i) => i))
      assert.isTrue(value.data.every((e) => e.note === "é \" \\"))
      assert.match(note!, new RegExp(`^\\[truncated: showing \\d+ of more than 65537 bytes; the list 'data' keeps its first ${value.data.length} entries, so the JSON above is valid but incomplete\\]$`))
    } finally {
      await mcp.close()
      await server.close()
    }
  })
})

describe("_select (RESPONSE_SELECT)", () => {
  let api: Awaited<ReturnType<typeof startExampleApi>>
  beforeAll(async () => {
    api = await startExampleApi()
  })
  afterAll(async () => {
    await api?.close()
  })

  it("gives every tool a _select argument whose JMESPath result is what comes back", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--response-select"])
    try {
      const { tools } = await mcp.client.listTools()
      for (const t of tools) assert.property(t.inputSchema.properties, "_select", t.name)
      const names = await mcp.client.callTool({ name: "listPets", arguments: { _select: "items[].name" } })
      assert.isUndefined(names.isError, textOf(names))
      const all = await mcp.client.callTool({ name: "listPets", arguments: {} })
      const expected = (all.structuredContent as { items: Array<{ name: string }> }).items.map((p) => p.name)
      assert.isAbove(expected.length, 0)
      assert.deepStrictEqual(JSON.parse(textOf(names)), expected)
      assert.deepStrictEqual(names.structuredContent, { result: expected })
      // a bad expression is refused before the request, as a bad argument
      const bad = await mcp.client.callTool({ name: "getPet", arguments: { petId: 1, _select: "name[" } })
      assert.isTrue(bad.isError)
      assert.include(textOf(bad), "Invalid arguments for getPet: _select is not a valid JMESPath expression")
    } finally {
      await mcp.close()
    }
  })

  it("takes select beside call_operation's arguments in discovery mode; without the setting there is no _select", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url, "--response-select", "--tool-mode", "discover"])
    try {
      const call = (await mcp.client.listTools()).tools.find((t) => t.name === "call_operation")!
      assert.property(call.inputSchema.properties, "select")
      const count = await mcp.client.callTool({ name: "call_operation", arguments: { name: "listPets", arguments: {}, select: "total" } })
      assert.isUndefined(count.isError, textOf(count))
      assert.isNumber(JSON.parse(textOf(count)))
    } finally {
      await mcp.close()
    }
    const plain = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url])
    try {
      assert.notProperty((await plain.client.listTools()).tools.find((t) => t.name === "listPets")!.inputSchema.properties, "_select")
      const refused = await plain.client.callTool({ name: "listPets", arguments: { _select: "items" } })
      assert.isTrue(refused.isError)
      assert.include(textOf(refused), "_select")
    } finally {
      await plain.close()
    }
  })
})

describe("binary answers saved to DOWNLOAD_DIR", () => {
  it("saves a PDF under the name the API gives, other binaries under the tool's, returns where; small images stay inline; too big is said", async () => {
    const pdf = Buffer.concat([Buffer.from("%PDF-1.7\n"), Buffer.alloc(300_000, 7)])
    const answers: Array<{ type: string; body: Buffer; disposition?: string }> = [
      { type: "application/pdf", body: pdf, disposition: 'attachment; filename="../../etc/Q3 report.pdf"' },
      { type: "application/pdf", body: pdf, disposition: 'attachment; filename="../../etc/Q3 report.pdf"' },
      { type: "application/zip", body: Buffer.from("PK\u0003\u0004zip") },
      { type: "image/png", body: Buffer.from([0x89, 0x50, 0x4e, 0x47]) },
      { type: "application/octet-stream", body: Buffer.alloc(2_000_001) }
    ]
    const server = await startLocalServer((_req, res) => {
      const next = answers.shift()!
      res.writeHead(200, { "content-type": next.type, ...(next.disposition ? { "content-disposition": next.disposition } : {}) }).end(next.body)
    })
    const dir = join(mkdtempSync(join(tmpdir(), "downloads-")), "saved")
    const mcp = await connectStdio([
      "--spec", fixture("content.yaml"), "--base-url", server.url, "--cache-backend", "none", "--max-response-bytes", "4096",
      "--download-dir", dir, "--download-max-bytes", "2000000"
    ])
    try {
      const first = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.isUndefined(first.isError, textOf(first))
      // the name's directories are dropped: the file stays in the download directory
      assert.deepStrictEqual(first.structuredContent, { saved_to: join(dir, "Q3 report.pdf"), bytes: pdf.length, media_type: "application/pdf" })
      assert.deepStrictEqual(readFileSync(join(dir, "Q3 report.pdf")), pdf)
      assert.deepInclude(first.content as Array<unknown>, {
        type: "resource_link", uri: pathToFileURL(join(dir, "Q3 report.pdf")).href, name: "Q3 report.pdf", mimeType: "application/pdf"
      })
      // the same name again: a new file beside it, never replacing one
      const second = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.strictEqual((second.structuredContent as { saved_to: string }).saved_to, join(dir, "Q3 report-2.pdf"))
      const zip = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.match((zip.structuredContent as { saved_to: string }).saved_to, /\/getImage-[0-9T-]+Z\.zip$/)
      const image = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.strictEqual((image.content as Array<{ type: string }>)[0]!.type, "image")
      const big = await mcp.client.callTool({ name: "getImage", arguments: {} })
      assert.isTrue(big.isError)
      assert.include(textOf(big), "more than 2000000 bytes (DOWNLOAD_MAX_BYTES); it was not saved")
      assert.deepStrictEqual(readdirSync(dir).sort(), ["Q3 report-2.pdf", "Q3 report.pdf", (zip.structuredContent as { saved_to: string }).saved_to.split("/").at(-1)!].sort())
    } finally {
      await mcp.close()
      await server.close()
      rmSync(dirname(dir), { recursive: true, force: true })
    }
  })

  it("stops the start when the directory cannot be made", async () => {
    // a directory inside a file cannot be
    const r = await runCli(["--spec", fixture("content.yaml"), "--download-dir", join(fixture("content.yaml"), "saved")])
    assert.strictEqual(r.code, 1)
    assert.include(r.stderr, `--download-dir (DOWNLOAD_DIR): cannot make ${join(fixture("content.yaml"), "saved")}: ENOTDIR`)
  })
})
