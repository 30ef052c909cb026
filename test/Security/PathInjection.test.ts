/**
 * Tool arguments can never change where a call goes: for a matrix of hostile path values, in every path
 * style and in tricky templates, the request either is refused (`.`/`..` segments) or goes to the base
 * URL's origin, under the operation's path, with the same number of segments, no query or fragment added,
 * and every hostile character kept as data. Checked on the URL the HTTP client is given.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ParamBinding, Tool } from "../../src/domain/Tool.ts"
import { BuildError, buildRequest } from "../../src/Invoker/RequestBuilder.ts"
import { toWire } from "../../src/Upstream.ts"

const BASE = "https://api.example.com/v1"

const tool = (path: string, params: ReadonlyArray<ParamBinding>): Tool => ({
  name: "t", operationId: "t", method: "GET", path, baseUrl: BASE, title: undefined, description: "", tags: [],
  inputSchema: { type: "object", properties: {}, additionalProperties: false },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  params, body: undefined
})

const param = (name: string, style = "simple", explode = false): ParamBinding =>
  ({ arg: name, name, in: "path", style, explode, allowReserved: false, json: false })

const HOSTILE = [
  "..", ".", "../admin", "../../../etc/passwd", "%2e%2e", "%2E", ".%2e", "%2e.", "..%2F..%2Fadmin", "..%2fadmin", "a/../../b",
  "/etc/passwd", "//evil.com", "///evil.com", "\\\\evil.com", "\\..\\admin", "@evil.com", "user:pass@evil.com", "evil.com:443",
  "#fragment", "?admin=true", "a?b#c", "&x=1", "%00", "\u0000", "\r\nHost: evil.com", "\t", "．．", "%252e%252e", "%%32%65%%32%65",
  "http://evil.com/", "https:evil.com", " ", "a b", "%", "é/ü", "..;/admin", ";jsessionid=1", "a;b=c", "*", "~", "'\"<>`{}|^"
]

/** Segments a template produces, with each `{param}` group as one segment. */
const segmentsOf = (path: string) => path.split("/").length

describe("path injection", () => {
  const templates: ReadonlyArray<readonly [string, ReadonlyArray<ParamBinding>, (v: string) => Record<string, unknown>]> = [
    ["/files/{name}", [param("name")], (v) => ({ name: v })],
    ["/files/{name}.json", [param("name")], (v) => ({ name: v })],
    ["/files/{name}/raw", [param("name", "label")], (v) => ({ name: v })],
    ["/files/{name}/raw", [param("name", "matrix")], (v) => ({ name: v })],
    ["/files/{name}", [param("name", "simple", true)], (v) => ({ name: [v, v] })],
    ["/pairs/{a}{b}", [param("a"), param("b")], (v) => ({ a: v, b: v })],
    ["/pairs/{a}{b}", [param("a"), param("b")], (v) => ({ a: ".", b: v })]
  ]

  it("keeps every hostile path value on the base URL's origin and under the operation's path", () => {
    let refused = 0
    let sent = 0
    for (const [path, params, args] of templates) {
      for (const value of HOSTILE) {
        const t = tool(path, params)
        let url: URL
        try {
          const wire = toWire(buildRequest(t, args(value)))
          url = new URL(`${wire.origin}${wire.path}`)
        } catch (e) {
          assert.instanceOf(e, BuildError, `${path} ${JSON.stringify(value)}`)
          assert.match((e as Error).message, /'\.' or '\.\.'/)
          refused++
          continue
        }
        sent++
        const what = `${path} with ${JSON.stringify(value)} → ${url.href}`
        assert.strictEqual(url.origin, "https://api.example.com", what)
        assert.strictEqual(url.username, "", what)
        assert.strictEqual(url.search, "", what)
        assert.strictEqual(url.hash, "", what)
        const prefix = `/v1${path.slice(0, path.indexOf("{"))}`
        assert.isTrue(url.pathname.startsWith(prefix), what)
        assert.strictEqual(segmentsOf(url.pathname), segmentsOf(`/v1${path}`), what)
        for (const segment of url.pathname.split("/")) assert.notMatch(segment, /^\.{1,2}$/, what)
      }
    }
    assert.isAbove(refused, 0)
    assert.isAbove(sent, HOSTILE.length * 4)
  })

  it("refuses '.' and '..' as whole segments, from a value alone or with the template's text", () => {
    for (const value of ["..", "."]) {
      assert.throws(() => buildRequest(tool("/files/{name}", [param("name")]), { name: value }), BuildError)
    }
    // an escaped dot is data: its '%' is escaped in turn, so no server decodes it into a dot segment
    assert.strictEqual(buildRequest(tool("/files/{name}", [param("name")]), { name: "%2e%2e" }).url, `${BASE}/files/%252e%252e`)
    // an empty value next to a literal dot of the template makes a dot segment too
    assert.throws(() => buildRequest(tool("/files/{name}.", [param("name")]), { name: "" }), BuildError,
      "the path parameters together form a '.' or '..' path segment")
    assert.throws(() => buildRequest(tool("/files/.{name}", [param("name")]), { name: "." }), BuildError)
    // a dot inside a longer segment is data
    assert.strictEqual(buildRequest(tool("/files/{name}", [param("name")]), { name: "..." }).url, `${BASE}/files/...`)
  })

  it("percent-encodes the characters that would change the URL's structure", () => {
    const url = buildRequest(tool("/files/{name}", [param("name")]), { name: "a/b?c#d@e:f\\g%h" }).url
    assert.strictEqual(url, `${BASE}/files/a%2Fb%3Fc%23d%40e%3Af%5Cg%25h`)
  })
})
