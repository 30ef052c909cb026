/**
 * Byte-for-byte checks of what reaches the upstream: every parameter style, every body type and every
 * static auth placement, through the built CLI over stdio, against a recording node:http upstream.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { connectStdio, EXAMPLE_SPEC, fixture, startRecorder, textOf } from "../support/processes.ts"

const WIRE = fixture("wire.yaml")

describe("requests on the wire", () => {
  let upstream: Awaited<ReturnType<typeof startRecorder>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    upstream = await startRecorder()
    mcp = await connectStdio(["--spec", WIRE, "--base-url", `${upstream.url}/api`])
  })
  afterAll(async () => {
    await mcp?.close()
    await upstream?.close()
  })
  const last = () => upstream.requests[upstream.requests.length - 1]!

  it("serializes path, query, header and cookie parameters by style and explode", async () => {
    const result = await mcp.client.callTool({
      name: "styles",
      arguments: {
        id: "a b/c", label: ["x", "y"], matrix: ["m1", "m2"], tags: ["t1", "t2"], ids: [1, 2, 3], words: ["hello", "big world"],
        pipes: ["p", "q"], filter: { color: "red", size: "L" }, q: "x&y=z", "X-Trace": ["u", "v"], session: "abc 123"
      }
    })
    assert.isUndefined(result.isError, textOf(result))
    const r = last()
    assert.strictEqual(r.method, "GET")
    assert.strictEqual(
      r.url,
      "/api/items/a%20b%2Fc/.x,y/;matrix=m1;matrix=m2" +
        "?tags=t1&tags=t2&ids=1,2,3&words=hello%20big%20world&pipes=p|q&filter[color]=red&filter[size]=L&q=x%26y%3Dz"
    )
    assert.strictEqual(r.headers["x-trace"], "u,v")
    assert.strictEqual(r.headers["cookie"], "session=abc%20123")
  })

  it("sends a flattened JSON body with its content type", async () => {
    await mcp.client.callTool({ name: "postJson", arguments: { name: "Rex", nested: { a: true } } })
    const r = last()
    assert.strictEqual(r.method, "POST")
    assert.strictEqual(r.url, "/api/json")
    assert.strictEqual(r.headers["content-type"], "application/json")
    assert.strictEqual(r.body.toString(), "{\"name\":\"Rex\",\"nested\":{\"a\":true}}")
  })

  it("sends form-urlencoded bodies", async () => {
    await mcp.client.callTool({ name: "postForm", arguments: { name: "a b&c", colors: ["red", "blue"] } })
    const r = last()
    assert.strictEqual(r.headers["content-type"], "application/x-www-form-urlencoded")
    assert.strictEqual(r.body.toString(), "name=a+b%26c&colors=red&colors=blue")
  })

  it("sends multipart bodies with a real file part", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255])
    await mcp.client.callTool({ name: "upload", arguments: { file: png.toString("base64"), note: "hi", meta: { k: "v" } } })
    const r = last()
    const type = String(r.headers["content-type"])
    assert.match(type, /^multipart\/form-data; boundary=/)
    const body = r.body.toString("latin1")
    assert.include(body, "Content-Disposition: form-data; name=\"file\"; filename=\"file\"\r\nContent-Type: image/png\r\n\r\n")
    assert.include(body, png.toString("latin1"))
    assert.include(body, "name=\"note\"\r\n\r\nhi\r\n")
    assert.include(body, "{\"k\":\"v\"}")
  })

  it("sends text and binary bodies", async () => {
    await mcp.client.callTool({ name: "putText", arguments: { body: "plain words" } })
    assert.strictEqual(last().headers["content-type"], "text/plain")
    assert.strictEqual(last().body.toString(), "plain words")
    await mcp.client.callTool({ name: "putBlob", arguments: { body: "data:application/octet-stream;base64,AAEC/w==" } })
    assert.strictEqual(last().headers["content-type"], "application/octet-stream")
    assert.deepStrictEqual([...last().body], [0, 1, 2, 255])
  })

  it("drops the Accept header parameter as OpenAPI requires and keeps stdout clean", async () => {
    const tools = await mcp.client.listTools()
    const styles = tools.tools.find((t) => t.name === "styles")!
    assert.notProperty(styles.inputSchema.properties, "Accept")
  })
})

describe("auth placements reach the upstream", () => {
  const cases: Array<{ name: string; args: Array<string>; check: (r: { url: string; headers: Record<string, unknown> }) => void }> = [
    {
      name: "api_key in a header",
      args: ["--auth-type", "api_key", "--auth-api-key", "k-123", "--auth-api-key-name", "X-Api-Key"],
      check: (r) => assert.strictEqual(r.headers["x-api-key"], "k-123")
    },
    {
      name: "api_key in the query",
      args: ["--auth-type", "api_key", "--auth-api-key", "k 123", "--auth-api-key-in", "query"],
      check: (r) => assert.strictEqual(r.url, "/api/secure?api_key=k%20123")
    },
    {
      name: "api_key in a cookie",
      args: ["--auth-type", "api_key", "--auth-api-key", "k-123", "--auth-api-key-name", "sid", "--auth-api-key-in", "cookie"],
      check: (r) => assert.strictEqual(r.headers["cookie"], "sid=k-123")
    },
    {
      name: "basic",
      args: ["--auth-type", "basic", "--auth-username", "ann", "--auth-password", "pa:ss"],
      check: (r) => assert.strictEqual(r.headers["authorization"], `Basic ${Buffer.from("ann:pa:ss").toString("base64")}`)
    },
    {
      name: "bearer",
      args: [],
      check: (r) => assert.strictEqual(r.headers["authorization"], "Bearer tok-456")
    }
  ]
  for (const c of cases) {
    it(`sends ${c.name}`, async () => {
      const upstream = await startRecorder()
      const env = c.name === "bearer" ? { AUTH_TYPE: "bearer", AUTH_TOKEN: "tok-456" } : {}
      const mcp = await connectStdio(["--spec", WIRE, "--base-url", `${upstream.url}/api`, ...c.args], env)
      try {
        const result = await mcp.client.callTool({ name: "secure", arguments: {} })
        assert.isUndefined(result.isError, textOf(result))
        assert.strictEqual(upstream.requests.length, 1)
        c.check(upstream.requests[0]!)
        // the credential never shows up in what the model sees or in the logs
        for (const secret of ["k-123", "k 123", "pa:ss", "tok-456"]) {
          assert.notInclude(JSON.stringify(result), secret)
          assert.notInclude(mcp.stderr(), secret)
        }
      } finally {
        await mcp.close()
        await upstream.close()
      }
    })
  }
})

describe("local files as upload content (UPLOAD_DIRS)", () => {
  it("reads a file: URI in a file argument from UPLOAD_DIRS and sends its content, name and type; refuses files elsewhere", async () => {
    const root = mkdtempSync(join(tmpdir(), "uploads-"))
    const allowed = join(root, "allowed")
    mkdirSync(allowed)
    const pdf = Buffer.from("%PDF-1.4 fake \u0000\u00ff")
    writeFileSync(join(allowed, "report.pdf"), pdf)
    writeFileSync(join(root, "secret.txt"), "do not send")
    symlinkSync(join(root, "secret.txt"), join(allowed, "link.txt"))
    const upstream = await startRecorder()
    const mcp = await connectStdio(["--spec", WIRE, "--base-url", `${upstream.url}/api`, "--upload-dirs", allowed, "--upload-max-bytes", "1000"])
    try {
      const upload = (await mcp.client.listTools()).tools.find((t) => t.name === "upload")!
      assert.include((upload.inputSchema.properties!["file"] as { description: string }).description, "file:///absolute/path")
      const sent = await mcp.client.callTool({ name: "upload", arguments: { file: pathToFileURL(join(allowed, "report.pdf")).href, note: "q3" } })
      assert.isUndefined(sent.isError, textOf(sent))
      const body = upstream.requests.at(-1)!.body.toString("latin1")
      // the spec's part type wins; the part is named after the file
      assert.include(body, "name=\"file\"; filename=\"report.pdf\"\r\nContent-Type: image/png\r\n\r\n")
      assert.include(body, pdf.toString("latin1"))
      await mcp.client.callTool({ name: "putBlob", arguments: { body: pathToFileURL(join(allowed, "report.pdf")).href } })
      assert.deepStrictEqual(upstream.requests.at(-1)!.body, pdf)
      const count = upstream.requests.length
      // outside the directories, also through a symbolic link; too big; missing
      const outside = await mcp.client.callTool({ name: "putBlob", arguments: { body: pathToFileURL(join(root, "secret.txt")).href } })
      assert.isTrue(outside.isError)
      assert.include(textOf(outside), "is outside the directories files may be sent from (UPLOAD_DIRS")
      const linked = await mcp.client.callTool({ name: "putBlob", arguments: { body: pathToFileURL(join(allowed, "link.txt")).href } })
      assert.include(textOf(linked), "is outside the directories")
      writeFileSync(join(allowed, "big.bin"), Buffer.alloc(1001))
      const big = await mcp.client.callTool({ name: "putBlob", arguments: { body: pathToFileURL(join(allowed, "big.bin")).href } })
      assert.include(textOf(big), "is 1001 bytes, more than UPLOAD_MAX_BYTES (1000)")
      const missing = await mcp.client.callTool({ name: "putBlob", arguments: { body: "file:///nowhere/x.bin" } })
      assert.include(textOf(missing), "/nowhere/x.bin does not exist")
      assert.strictEqual(upstream.requests.length, count)
      for (const r of upstream.requests) assert.notInclude(r.body.toString("latin1"), "do not send")
    } finally {
      await mcp.close()
      await upstream.close()
      rmSync(root, { recursive: true, force: true })
    }
  })

  it("refuses file: values unless UPLOAD_DIRS is set, saying how to allow them", async () => {
    const upstream = await startRecorder()
    const mcp = await connectStdio(["--spec", WIRE, "--base-url", `${upstream.url}/api`])
    try {
      const refused = await mcp.client.callTool({ name: "putBlob", arguments: { body: "file:///etc/hostname" } })
      assert.isTrue(refused.isError)
      assert.include(textOf(refused), "this server sends no local files (set UPLOAD_DIRS")
      assert.strictEqual(upstream.requests.length, 0)
    } finally {
      await mcp.close()
      await upstream.close()
    }
  })
})

describe("headers for every request (API_HEADERS)", () => {
  it("sends them on every call, takes them out of the tools' arguments, and never shows their values", async () => {
    const upstream = await startRecorder()
    const mcp = await connectStdio(["--spec", WIRE, "--base-url", `${upstream.url}/api`, "--headers", '{"X-Trace": "fixed-trace", "X-Tenant": "env:TENANT_KEY"}'], {
      TENANT_KEY: "tenant-secret-7"
    })
    try {
      const { tools } = await mcp.client.listTools()
      // the spec's X-Trace header parameter is the operator's now: not an argument
      assert.notProperty(tools.find((t) => t.name === "styles")!.inputSchema.properties, "X-Trace")
      const styles = await mcp.client.callTool({ name: "styles", arguments: { id: "1", label: ["a"], matrix: ["b"] } })
      assert.isUndefined(styles.isError, textOf(styles))
      const secure = await mcp.client.callTool({ name: "secure", arguments: {} })
      assert.isUndefined(secure.isError, textOf(secure))
      for (const r of upstream.requests) {
        assert.strictEqual(r.headers["x-trace"], "fixed-trace")
        assert.strictEqual(r.headers["x-tenant"], "tenant-secret-7")
      }
      assert.include(mcp.stderr(), "headers sent with every request: X-Trace, X-Tenant")
      assert.notInclude(mcp.stderr(), "tenant-secret-7")
      assert.notInclude(JSON.stringify(tools), "tenant-secret-7")
    } finally {
      await mcp.close()
      await upstream.close()
    }
  })
})

describe("OpenAPI 3.2 requests on the wire", () => {
  it("sends QUERY with its body, an additionalOperations method as written, and a querystring parameter as the query", async () => {
    const upstream = await startRecorder()
    const mcp = await connectStdio(["--spec", fixture("openapi32.yaml"), "--base-url", upstream.url])
    try {
      const listed = (await mcp.client.listTools()).tools.map((t) => t.name)
      assert.deepStrictEqual(listed, ["listPets", "searchPets", "purgePets", "searchByJson"])
      assert.isUndefined((await mcp.client.callTool({ name: "searchPets", arguments: { species: "cat", minAge: 2 } })).isError)
      assert.isUndefined((await mcp.client.callTool({ name: "purgePets", arguments: {} })).isError)
      assert.isUndefined((await mcp.client.callTool({ name: "listPets", arguments: { filter: { species: "cat", tag: ["a", "b"] } } })).isError)
      const [query, purge, list] = upstream.requests
      assert.deepStrictEqual([query!.method, query!.url, query!.headers["content-type"]], ["QUERY", "/pets", "application/json"])
      assert.deepStrictEqual(JSON.parse(query!.body.toString()), { species: "cat", minAge: 2 })
      assert.deepStrictEqual([purge!.method, purge!.url], ["PURGE", "/pets"])
      assert.deepStrictEqual([list!.method, list!.url], ["GET", "/pets?species=cat&tag=a&tag=b"])
    } finally {
      await mcp.close()
      await upstream.close()
    }
  })
})

describe("fixed arguments on the wire", () => {
  it("sends the operator's values, which the model cannot see or set", async () => {
    const upstream = await startRecorder()
    const dir = mkdtempSync(join(tmpdir(), "fixed-"))
    const config = join(dir, "config.yaml")
    writeFileSync(config, "operations:\n  createPet: { arguments: { name: Rex, tags: [fixed] } }\n")
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", upstream.url, "--config", config, "--fixed-arguments", "petId=7,owner=acme"])
    try {
      const tools = (await mcp.client.listTools()).tools
      assert.notProperty(tools.find((t) => t.name === "getPet")!.inputSchema.properties ?? {}, "petId")
      assert.isUndefined((await mcp.client.callTool({ name: "getPet", arguments: {} })).isError)
      assert.isUndefined((await mcp.client.callTool({ name: "createPet", arguments: {} })).isError)
      const [get, create] = upstream.requests
      assert.strictEqual(get!.url, "/pets/7")
      assert.deepStrictEqual(JSON.parse(create!.body.toString()), { name: "Rex", tags: ["fixed"] })
      // the model cannot reach another pet
      const other = await mcp.client.callTool({ name: "getPet", arguments: { petId: 8 } })
      assert.isTrue(other.isError)
      assert.include(textOf(other), "petId")
      assert.strictEqual(upstream.requests.length, 2)
      assert.include(mcp.stderr(), "FIXED_ARGUMENTS: no operation has an argument named owner")
    } finally {
      await mcp.close()
      await upstream.close()
    }
  })
})
