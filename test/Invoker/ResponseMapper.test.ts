import { assert, describe, it } from "@effect/vitest"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import type { Tool } from "../../src/domain/Tool.ts"
import { mapResponse } from "../../src/Invoker/ResponseMapper.ts"
import { retryAfterSeconds } from "../../src/Upstream/RetryAfter.ts"
import type { UpstreamResponse } from "../../src/Upstream.ts"

const BASE = "https://internal.upstream.example.com/v1"
const NOW = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")
const CAP = 100_000

const tool: Tool = {
  name: "get_pet",
  operationId: "getPetById",
  method: "GET",
  path: "/pets/{petId}",
  baseUrl: BASE,
  title: undefined,
  description: "",
  tags: [],
  inputSchema: { type: "object", properties: {}, additionalProperties: false },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  params: [],
  body: undefined
}

const response = (status: number, headers: Record<string, string>, body: string | Uint8Array = ""): UpstreamResponse => ({
  status,
  headers,
  body: typeof body === "string" ? new TextEncoder().encode(body) : body
})

const map = (res: UpstreamResponse, maxBytes = CAP): CallToolResult => mapResponse(tool, res, maxBytes, NOW)

/** The single text content of a result. */
const textOf = (result: CallToolResult): string => {
  assert.strictEqual(result.content.length, 1)
  const [item] = result.content
  assert.strictEqual(item?.type, "text")
  return item?.type === "text" ? item.text : ""
}

describe("ResponseMapper", () => {
  describe("successful answers", () => {
    it("returns a JSON object as structuredContent with the body as text", () => {
      const body = "{\"id\":1,\"name\":\"Rex\",\"tags\":[\"good\"]}"
      const result = map(response(200, { "content-type": "application/json; charset=utf-8" }, body))
      assert.isUndefined(result.isError)
      assert.strictEqual(textOf(result), body)
      assert.deepStrictEqual(result.structuredContent, { id: 1, name: "Rex", tags: ["good"] })
    })

    it("wraps a JSON array or scalar in {result}", () => {
      const array = map(response(200, { "content-type": "application/json" }, "[{\"id\":1},{\"id\":2}]"))
      assert.deepStrictEqual(array.structuredContent, { result: [{ id: 1 }, { id: 2 }] })
      assert.strictEqual(textOf(array), "[{\"id\":1},{\"id\":2}]")
      assert.deepStrictEqual(map(response(200, { "content-type": "application/json" }, "42")).structuredContent, { result: 42 })
    })

    it("recognises +json media types such as application/problem+json", () => {
      const body = "{\"type\":\"about:blank\",\"title\":\"Accepted\"}"
      assert.deepStrictEqual(
        map(response(202, { "content-type": "application/problem+json" }, body)).structuredContent,
        { type: "about:blank", title: "Accepted" }
      )
      assert.deepStrictEqual(
        map(response(200, { "content-type": "application/vnd.api+json" }, "{\"data\":[]}")).structuredContent,
        { data: [] }
      )
    })

    it("treats an untyped body that looks like JSON as JSON", () => {
      assert.deepStrictEqual(map(response(200, {}, "  {\"ok\":true}")).structuredContent, { ok: true })
    })

    it("falls back to text when a JSON-typed body does not parse", () => {
      const result = map(response(200, { "content-type": "application/json" }, "{not json"))
      assert.strictEqual(textOf(result), "{not json")
      assert.isUndefined(result.structuredContent)
    })

    it("says there is no content for a 204 or an empty body", () => {
      const noContent = map(response(204, {}))
      assert.include(textOf(noContent), "204")
      assert.include(textOf(noContent), "no content")
      assert.isUndefined(noContent.isError)
      assert.include(textOf(map(response(200, { "content-type": "application/json" }))), "no content")
    })

    it("returns text/plain, XML and other text types as text", () => {
      assert.strictEqual(textOf(map(response(200, { "content-type": "text/plain" }, "pong"))), "pong")
      const xml = "<pet><id>1</id></pet>"
      const result = map(response(200, { "content-type": "application/xml" }, xml))
      assert.strictEqual(textOf(result), xml)
      assert.isUndefined(result.structuredContent)
      // JSON Lines and other JSON sequences (OpenAPI 3.2 itemSchema answers) are text, one value per line
      const lines = `{"id":1}\n{"id":2}\n`
      for (const type of ["application/jsonl", "application/x-ndjson", "application/json-seq"]) {
        assert.strictEqual(textOf(map(response(200, { "content-type": type }, lines))), lines, type)
      }
    })

    it("cuts JSON over the size cap after its last whole entry, so it stays JSON, states the sizes, and gives no structuredContent", () => {
      const body = JSON.stringify({ total: 50, items: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `pet ${i}` })) })
      const result = map(response(200, { "content-type": "application/json" }, body), 100)
      const text = textOf(result)
      const [json, note] = text.split("\n\n")
      // 100 bytes end inside the fourth entry: the first three are kept whole
      assert.deepStrictEqual(JSON.parse(json!), { total: 50, items: [{ id: 0, name: "pet 0" }, { id: 1, name: "pet 1" }, { id: 2, name: "pet 2" }] })
      // the bytes shown are those of the answer (the closing "]}" added are not)
      assert.strictEqual(note, `[truncated: showing ${json!.length - 2} of ${body.length} bytes; ${body.length - json!.length + 2} bytes cut; ` +
        "the list 'items' keeps its first 3 entries, so the JSON above is valid but incomplete]")
      assert.isUndefined(result.structuredContent)
      // a top-level list
      const list = JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ id: i })))
      const cutList = textOf(map(response(200, { "content-type": "application/json" }, list), 40))
      assert.deepStrictEqual(JSON.parse(cutList.split("\n\n")[0]!), [{ id: 0 }, { id: 1 }, { id: 2 }, { id: 3 }])
      assert.include(cutList, "; the list keeps its first 4 entries, so")
      // not JSON after all, or one huge value (a cut after the last whole entry would keep too little): cut as text
      for (const body of [`{"a": ${"x".repeat(200)}`, `{"a": "${"x".repeat(200)}"}`]) {
        const cut = textOf(map(response(200, { "content-type": "application/json" }, body), 64))
        assert.isTrue(cut.startsWith(`{"a": ${body[6] === '"' ? '"' : ""}xxx`))
        assert.include(cut, `[truncated: showing 64 of ${body.length} bytes; ${body.length - 64} bytes cut]`)
      }
    })

    it("tells the model which argument gets smaller, whole pages, and still reads the next page from what it kept", () => {
      const q = (name: string) => ({ arg: name, name, in: "query" as const, style: "form", explode: true, allowReserved: false, json: false })
      const lister: Tool = { ...tool, name: "list_repos", params: [q("per_page"), q("cursor")] }
      const body = JSON.stringify({ next_cursor: "c2", repos: Array.from({ length: 100 }, (_, i) => ({ id: i })) })
      const result = mapResponse(lister, response(200, { "content-type": "application/json" }, body), 120, NOW)
      assert.include((result.content[0] as { text: string }).text, "; call list_repos again with a smaller 'per_page' to get whole pages]")
      assert.deepStrictEqual((result._meta as Record<string, unknown>)["openapi-mcp-server/next_page"], { cursor: "c2" })
    })

    it("cuts long text without splitting a multi-byte character", () => {
      const text = textOf(map(response(200, { "content-type": "text/plain" }, "aéé"), 2))
      assert.isTrue(text.startsWith("a\n\n[truncated: showing 2 of 5 bytes"))
      assert.notInclude(text, "\uFFFD")
    })

    it("says 'more than' for a body cut while read (or the declared size), and never passes it off as whole", () => {
      const head = "x".repeat(101)
      const cut = { ...response(200, { "content-type": "text/plain" }, head), bodyCut: true as const }
      const text = textOf(map(cut, 100))
      assert.include(text, "[truncated: showing 100 of more than 101 bytes]")
      const declared = textOf(map({ ...cut, headers: { ...cut.headers, "content-length": "5000000" } }, 100))
      assert.include(declared, "showing 100 of 5000000 bytes; 4999900 bytes cut")
      const json = JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ id: i })) }).slice(0, 101)
      const cutJson = { ...response(200, { "content-type": "application/json" }, json), bodyCut: true as const }
      assert.include(textOf(map(cutJson, 100)), "[truncated: showing 99 of more than 101 bytes; the list 'items' keeps its first 10 entries")
      // a cut body within the cap still is not whole: no structuredContent from a fragment
      const small = map({ ...cut, body: new TextEncoder().encode("{\"a\":1}") }, 100)
      assert.isUndefined(small.structuredContent)
      const binary = { ...response(200, { "content-type": "application/zip" }, new Uint8Array(101)), bodyCut: true as const }
      assert.include(textOf(map(binary, 100)), "response of more than 101 bytes not returned (over the 100-byte limit)")
    })

    it("returns an image as image content with base64 data and its mime type", () => {
      const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
      assert.deepStrictEqual(map(response(200, { "content-type": "image/png" }, png)).content, [
        { type: "image", data: Buffer.from(png).toString("base64"), mimeType: "image/png" }
      ])
    })

    it("returns audio as audio content", () => {
      const mp3 = Uint8Array.from([0x49, 0x44, 0x33, 0x04])
      assert.deepStrictEqual(map(response(200, { "content-type": "audio/mpeg" }, mp3)).content, [
        { type: "audio", data: Buffer.from(mp3).toString("base64"), mimeType: "audio/mpeg" }
      ])
    })

    it("returns a PDF as an embedded blob resource whose uri does not reveal the upstream URL", () => {
      const pdf = new TextEncoder().encode("%PDF-1.7\n%\u00e2\u00e3")
      const result = map(response(200, { "content-type": "application/pdf" }, pdf))
      assert.strictEqual(result.content.length, 1)
      const [item] = result.content
      assert.strictEqual(item?.type, "resource")
      if (item?.type !== "resource") return
      assert.strictEqual(item.resource.mimeType, "application/pdf")
      assert.strictEqual("blob" in item.resource ? item.resource.blob : undefined, Buffer.from(pdf).toString("base64"))
      assert.notInclude(item.resource.uri, "upstream.example.com")
      assert.notInclude(item.resource.uri, "/pets")
      assert.notInclude(JSON.stringify(result), BASE)
    })

    it("does not return a binary over the size cap, saying how large it was", () => {
      const text = textOf(map(response(200, { "content-type": "application/zip" }, new Uint8Array(500)), 100))
      assert.include(text, "500 bytes")
      assert.include(text, "100-byte limit")
    })
  })

  describe("error answers", () => {
    it("marks a non-2xx answer as an error naming the operation, status, reason, method and path template", () => {
      const body = "{\"message\":\"Pet 7 not found\"}"
      const result = map(response(404, { "content-type": "application/json" }, body))
      assert.isTrue(result.isError)
      const text = textOf(result)
      assert.include(text, "getPetById")
      assert.include(text, "HTTP 404 Not Found")
      assert.include(text, "GET /pets/{petId}")
      assert.include(text, body)
      assert.deepStrictEqual(result.structuredContent, { status: 404 })
    })

    it("names the reason of a 5xx", () => {
      assert.include(textOf(map(response(503, {}))), "HTTP 503 Service Unavailable")
      assert.include(textOf(map(response(500, {}, "boom"))), "HTTP 500 Internal Server Error")
    })

    it("caps the body excerpt of an error at about 2000 characters", () => {
      const body = "x".repeat(10_000)
      const text = textOf(map(response(500, { "content-type": "text/plain" }, body)))
      assert.isBelow(text.length, 2300)
      assert.include(text, "x".repeat(2000))
      assert.notInclude(text, "x".repeat(2001))
      assert.include(text, "showing 2000 of 10000 bytes")
    })

    it("gives retry_after_seconds and a sentence for a 429 with Retry-After in seconds", () => {
      const result = map(response(429, { "retry-after": "120" }, "slow down"))
      assert.isTrue(result.isError)
      assert.deepStrictEqual(result.structuredContent, { status: 429, retry_after_seconds: 120 })
      assert.include(textOf(result), "HTTP 429 Too Many Requests")
      assert.include(textOf(result), "retry after 120 seconds")
    })

    it("gives retry_after_seconds for a 429 with Retry-After as an HTTP date", () => {
      const result = map(response(429, { "retry-after": "Wed, 21 Oct 2015 07:29:30 GMT" }))
      assert.deepStrictEqual(result.structuredContent, { status: 429, retry_after_seconds: 90 })
      assert.include(textOf(result), "retry after 90 seconds")
    })

    it("says when the API's rate limit is used up and when it resets (GitHub's 403 without Retry-After)", () => {
      const reset = String(NOW / 1000 + 1800)
      const result = map(response(403, { "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset }, "{\"message\":\"API rate limit exceeded\"}"))
      assert.isTrue(result.isError)
      assert.deepStrictEqual(result.structuredContent, { status: 403, retry_after_seconds: 1800 })
      assert.include(textOf(result), "HTTP 403 Forbidden from GET /pets/{petId}.\nThe API's rate limit is used up; it resets in 1800 seconds.")
      // a 429 without any header: used up, no time known
      const bare = map(response(429, {}))
      assert.include(textOf(bare), "The API's rate limit is used up.")
      assert.deepStrictEqual(bare.structuredContent, { status: 429 })
      // a 403 with calls left is a plain refusal
      assert.notInclude(textOf(map(response(403, { "x-ratelimit-remaining": "59", "x-ratelimit-reset": reset }))), "rate limit")
    })

    it("says a redirect was not followed, with its target", () => {
      const result = map(response(302, { location: "https://login.example.com/" }))
      assert.isTrue(result.isError)
      const text = textOf(result)
      assert.include(text, "HTTP 302 Found")
      assert.include(text, "https://login.example.com/")
      assert.include(text, "not followed")
    })

    it("answers with the address when the operation documents the redirect (GitHub's downloads), not as an error", () => {
      const download: Tool = { ...tool, redirects: true }
      const location = "https://codeload.example.com/me/repo/legacy.tar.gz/main?token=short-lived"
      const result = mapResponse(download, response(302, { location }), CAP, NOW)
      assert.isUndefined(result.isError)
      assert.include(textOf(result), `HTTP 302 Found: the API answers with the address ${location}`)
      assert.deepStrictEqual(result.structuredContent, { status: 302, location })
      assert.deepStrictEqual(mapResponse(download, response(304, {}), CAP, NOW).structuredContent, { status: 304 })
      // an undocumented status is still an error
      assert.isTrue(mapResponse(download, response(404, {}), CAP, NOW).isError)
    })
  })

  describe("retryAfterSeconds", () => {
    it("reads delta seconds and HTTP dates relative to now", () => {
      assert.strictEqual(retryAfterSeconds({ "retry-after": " 5 " }, NOW, 503), 5)
      assert.strictEqual(retryAfterSeconds({ "retry-after": "Wed, 21 Oct 2015 07:28:01 GMT" }, NOW - 500, 429), 2)
    })

    it("gives 0 for a date in the past and nothing for a missing or unreadable header", () => {
      assert.strictEqual(retryAfterSeconds({ "retry-after": "Wed, 21 Oct 2015 07:00:00 GMT" }, NOW, 429), 0)
      assert.isUndefined(retryAfterSeconds({}, NOW, 429))
      assert.isUndefined(retryAfterSeconds({ "retry-after": "soon" }, NOW, 503))
    })

    it("without Retry-After, reads when a used-up rate limit resets: delta seconds, Unix seconds or milliseconds", () => {
      const epoch = NOW / 1000
      // GitHub: 403 (or 429) with x-ratelimit-remaining 0 and the reset as Unix seconds
      assert.strictEqual(retryAfterSeconds({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(epoch + 523) }, NOW, 403), 523)
      assert.strictEqual(retryAfterSeconds({ "x-rate-limit-remaining": "0", "x-rate-limit-reset": String(NOW + 4500) }, NOW, 429), 5)
      // IETF drafts: RateLimit-Reset in delta seconds, or reset=/t= in the RateLimit header
      assert.strictEqual(retryAfterSeconds({ "ratelimit-remaining": "0", "ratelimit-reset": "30" }, NOW, 403), 30)
      assert.strictEqual(retryAfterSeconds({ ratelimit: "limit=100, remaining=0, reset=50" }, NOW, 403), 50)
      assert.strictEqual(retryAfterSeconds({ ratelimit: "\"default\";r=0;t=7" }, NOW, 400), 7)
      assert.strictEqual(retryAfterSeconds({ "x-ratelimit-reset-after": "1.2" }, NOW, 429), 2)
      // a reset in the past is now
      assert.strictEqual(retryAfterSeconds({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(epoch - 10) }, NOW, 403), 0)
      // not rate-limited: calls are left, so the reset says nothing about this answer
      assert.isUndefined(retryAfterSeconds({ "x-ratelimit-remaining": "10", "x-ratelimit-reset": String(epoch + 60) }, NOW, 403))
      assert.isUndefined(retryAfterSeconds({ ratelimit: "limit=100, remaining=0.5, reset=50" }, NOW, 503))
      assert.isUndefined(retryAfterSeconds({ "x-ratelimit-reset": String(epoch + 60) }, NOW, 503))
    })
  })
})

describe("pagination hints", () => {
  const q = (name: string, arg = name) => ({ arg, name, in: "query" as const, style: "form", explode: true, allowReserved: false, json: false })
  const lister: Tool = { ...tool, name: "listPets", params: [q("page"), q("per_page"), q("cursor"), q("starting_after")] }
  const json = (body: unknown, headers: Record<string, string> = {}) =>
    mapResponse(lister, response(200, { "content-type": "application/json", ...headers }, JSON.stringify(body)), CAP, NOW)
  const next = (r: CallToolResult) => (r._meta as Record<string, unknown> | undefined)?.["openapi-mcp-server/next_page"]

  it("reads the next page from a Link header and says how to call again", () => {
    const r = json([{ id: 1 }], { link: '<https://api.test/pets?page=3&per_page=50>; rel="next", <https://api.test/pets?page=9>; rel="last"' })
    assert.deepStrictEqual(next(r), { page: 3, per_page: 50 })
    const hint = r.content[1]
    assert.strictEqual(hint?.type === "text" ? hint.text : "", 'More results are available: call listPets again with the same arguments plus {"page":3,"per_page":50}.')
  })

  it("reads cursors and next links from the body", () => {
    assert.deepStrictEqual(next(json({ data: [], next_cursor: "abc" })), { cursor: "abc" })
    assert.deepStrictEqual(next(json({ data: [], meta: { next: "/pets?cursor=xyz" } })), { cursor: "xyz" })
    assert.deepStrictEqual(next(json({ items: [], pagination: { next_page: 2 } })), { page: 2 })
  })

  it("says nothing when there is no next page", () => {
    assert.isUndefined(next(json({ data: [], has_more: false, next_cursor: "abc" })))
    assert.isUndefined(next(json({ data: [], next: null })))
    assert.strictEqual(json({ a: 1 }).content.length, 1)
  })
})
