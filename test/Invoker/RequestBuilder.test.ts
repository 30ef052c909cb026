import { assert, describe, it } from "@effect/vitest"
import type { BodyBinding, ParamBinding, ParamLocation, Tool } from "../../src/domain/Tool.ts"
import { BuildError, buildRequest, decodeFile, encodeStrict } from "../../src/Invoker/RequestBuilder.ts"

const BASE = "https://api.example.com/v1"

const makeTool = (partial: Partial<Tool> = {}): Tool => ({
  name: "test_tool",
  operationId: "testOp",
  method: "GET",
  path: "/items",
  baseUrl: BASE,
  title: undefined,
  description: "",
  tags: [],
  inputSchema: { type: "object", properties: {}, additionalProperties: false },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  params: [],
  body: undefined,
  ...partial
})

/** A parameter with the OpenAPI defaults: form (explode) for query/cookie, simple otherwise. */
const param = (
  name: string,
  location: ParamLocation,
  options: Partial<Omit<ParamBinding, "name" | "in">> = {}
): ParamBinding => {
  const style = options.style ?? (location === "query" || location === "cookie" ? "form" : "simple")
  return {
    arg: name,
    name,
    in: location,
    style,
    explode: style === "form",
    allowReserved: false,
    json: false,
    ...options
  }
}

const makeBody = (partial: Partial<BodyBinding> & Pick<BodyBinding, "mediaType" | "kind">): BodyBinding => ({
  required: false,
  fields: undefined,
  arg: "body",
  fileFields: [],
  partTypes: {},
  ...partial
})

// The `color` values of the OpenAPI 3.0.3 "Style Examples" table.
const PRIMITIVE = "blue"
const ARRAY = ["blue", "black", "brown"]
const OBJECT = { R: 100, G: 200, B: 150 }

/** The expanded path of `/colors/{color}` for one value. */
const pathFor = (options: Partial<ParamBinding>, value: unknown): string => {
  const tool = makeTool({ path: "/colors/{color}", params: [param("color", "path", options)] })
  return buildRequest(tool, { color: value }).url.slice(`${BASE}/colors/`.length)
}

/** The query string produced by one `color` query parameter. */
const queryFor = (options: Partial<ParamBinding>, value: unknown): string =>
  buildRequest(makeTool({ params: [param("color", "query", options)] }), { color: value }).query.join("&")

const headerFor = (options: Partial<ParamBinding>, value: unknown): string | undefined =>
  buildRequest(makeTool({ params: [param("X-Color", "header", options)] }), { "X-Color": value }).headers["x-color"]

const cookiesFor = (options: Partial<ParamBinding>, value: unknown) =>
  buildRequest(makeTool({ params: [param("color", "cookie", options)] }), { color: value }).cookies

const bytesOf = (data: Uint8Array | FormData | undefined): string => {
  assert.instanceOf(data, Uint8Array)
  return Buffer.from(data as Uint8Array).toString("utf8")
}

const formOf = (data: Uint8Array | FormData | undefined): FormData => {
  assert.instanceOf(data, FormData)
  return data as FormData
}

const fileOf = (form: FormData, name: string): File => {
  const part = form.get(name)
  assert.instanceOf(part, File)
  return part as File
}

const expectBuildError = (f: () => unknown, ...fragments: ReadonlyArray<string>): void => {
  try {
    f()
  } catch (e) {
    assert.instanceOf(e, BuildError)
    for (const fragment of fragments) assert.include((e as BuildError).message, fragment)
    return
  }
  assert.fail("expected a BuildError")
}

describe("RequestBuilder", () => {
  describe("path parameters (OpenAPI style examples)", () => {
    it("simple style joins arrays and objects with commas", () => {
      assert.strictEqual(pathFor({ style: "simple", explode: false }, PRIMITIVE), "blue")
      assert.strictEqual(pathFor({ style: "simple", explode: false }, ARRAY), "blue,black,brown")
      assert.strictEqual(pathFor({ style: "simple", explode: false }, OBJECT), "R,100,G,200,B,150")
    })

    it("simple style with explode writes object members as key=value", () => {
      assert.strictEqual(pathFor({ style: "simple", explode: true }, PRIMITIVE), "blue")
      assert.strictEqual(pathFor({ style: "simple", explode: true }, ARRAY), "blue,black,brown")
      assert.strictEqual(pathFor({ style: "simple", explode: true }, OBJECT), "R=100,G=200,B=150")
    })

    // The 3.0.3 table prints `.blue.black.brown` / `.R.100.G.200.B.150` here: a typo the OAI fixed in 3.0.4 and
    // 3.1.1 (OAI/OpenAPI-Specification#3144). The normative rule is RFC 6570 `{.color}`, which uses commas.
    it("label style prefixes a dot and joins with commas, as RFC 6570 {.color}", () => {
      assert.strictEqual(pathFor({ style: "label", explode: false }, PRIMITIVE), ".blue")
      assert.strictEqual(pathFor({ style: "label", explode: false }, ARRAY), ".blue,black,brown")
      assert.strictEqual(pathFor({ style: "label", explode: false }, OBJECT), ".R,100,G,200,B,150")
    })

    it("label style with explode separates every item with a dot", () => {
      assert.strictEqual(pathFor({ style: "label", explode: true }, PRIMITIVE), ".blue")
      assert.strictEqual(pathFor({ style: "label", explode: true }, ARRAY), ".blue.black.brown")
      assert.strictEqual(pathFor({ style: "label", explode: true }, OBJECT), ".R=100.G=200.B=150")
    })

    it("matrix style writes ;name=value with comma-joined collections", () => {
      assert.strictEqual(pathFor({ style: "matrix", explode: false }, PRIMITIVE), ";color=blue")
      assert.strictEqual(pathFor({ style: "matrix", explode: false }, ARRAY), ";color=blue,black,brown")
      assert.strictEqual(pathFor({ style: "matrix", explode: false }, OBJECT), ";color=R,100,G,200,B,150")
    })

    it("matrix style with explode repeats the name per item and uses member names for objects", () => {
      assert.strictEqual(pathFor({ style: "matrix", explode: true }, PRIMITIVE), ";color=blue")
      assert.strictEqual(pathFor({ style: "matrix", explode: true }, ARRAY), ";color=blue;color=black;color=brown")
      assert.strictEqual(pathFor({ style: "matrix", explode: true }, OBJECT), ";R=100;G=200;B=150")
    })

    it("substitutes several parameters, numbers and booleans into the template", () => {
      const tool = makeTool({
        path: "/owners/{ownerId}/pets/{petId}/vaccinated/{flag}",
        params: [param("ownerId", "path"), param("petId", "path"), param("flag", "path")]
      })
      assert.strictEqual(
        buildRequest(tool, { ownerId: "ann", petId: 42, flag: true }).url,
        `${BASE}/owners/ann/pets/42/vaccinated/true`
      )
    })

    it("uses the wire name in the template when the argument name differs", () => {
      const tool = makeTool({ path: "/pets/{pet-id}", params: [param("pet-id", "path", { arg: "pet_id" })] })
      assert.strictEqual(buildRequest(tool, { pet_id: 7 }).url, `${BASE}/pets/7`)
    })
  })

  describe("path value encoding", () => {
    it("percent-encodes spaces, slashes, '?', '#' and unicode so a value stays one segment", () => {
      assert.strictEqual(pathFor({}, "a b/c?d#e"), "a%20b%2Fc%3Fd%23e")
      assert.strictEqual(pathFor({}, "café"), "caf%C3%A9")
      assert.strictEqual(pathFor({}, "日本"), "%E6%97%A5%E6%9C%AC")
      assert.strictEqual(pathFor({}, "100%"), "100%25")
    })

    it("encodes the separators inside array items and object members", () => {
      assert.strictEqual(pathFor({}, ["a,b", "c/d"]), "a%2Cb,c%2Fd")
      assert.strictEqual(pathFor({ explode: true }, { "k=1": "v;2" }), "k%3D1=v%3B2")
    })

    it("leaves values that merely contain dots alone", () => {
      assert.strictEqual(pathFor({}, "v1.2"), "v1.2")
      assert.strictEqual(pathFor({}, "..."), "...")
    })

    // URL parsing treats `%2E%2E` / `%2E` segments like `..` / `.`, so such values are refused outright.
    it("a '..' or '.' path value cannot walk up the path once the URL is parsed", () => {
      const tool = makeTool({ path: "/files/{name}/meta", params: [param("name", "path")] })
      for (const value of ["..", "."]) {
        let url: string
        try {
          url = buildRequest(tool, { name: value }).url
        } catch (e) {
          assert.instanceOf(e, BuildError)
          continue
        }
        assert.isTrue(new URL(url).pathname.startsWith("/v1/files/"), `${value} → ${new URL(url).pathname}`)
      }
    })

    it("refuses a call without a path parameter, naming the argument", () => {
      const tool = makeTool({ path: "/pets/{petId}", params: [param("petId", "path")] })
      expectBuildError(() => buildRequest(tool, {}), "'petId'", "path parameter")
      expectBuildError(() => buildRequest(tool, { petId: null }), "'petId'")
    })

    it("sends a path parameter declared as application/json content as encoded JSON", () => {
      assert.strictEqual(pathFor({ json: true }, { a: 1 }), "%7B%22a%22%3A1%7D")
    })
  })

  describe("query parameters (OpenAPI style examples)", () => {
    it("form style with explode repeats the name for arrays and spreads objects", () => {
      assert.strictEqual(queryFor({ style: "form", explode: true }, PRIMITIVE), "color=blue")
      assert.strictEqual(queryFor({ style: "form", explode: true }, ARRAY), "color=blue&color=black&color=brown")
      assert.strictEqual(queryFor({ style: "form", explode: true }, OBJECT), "R=100&G=200&B=150")
    })

    it("form style without explode joins with commas", () => {
      assert.strictEqual(queryFor({ style: "form", explode: false }, PRIMITIVE), "color=blue")
      assert.strictEqual(queryFor({ style: "form", explode: false }, ARRAY), "color=blue,black,brown")
      assert.strictEqual(queryFor({ style: "form", explode: false }, OBJECT), "color=R,100,G,200,B,150")
    })

    it("spaceDelimited joins with %20", () => {
      assert.strictEqual(queryFor({ style: "spaceDelimited", explode: false }, ARRAY), "color=blue%20black%20brown")
      assert.strictEqual(queryFor({ style: "spaceDelimited", explode: false }, OBJECT), "color=R%20100%20G%20200%20B%20150")
    })

    it("pipeDelimited joins with |", () => {
      assert.strictEqual(queryFor({ style: "pipeDelimited", explode: false }, ARRAY), "color=blue|black|brown")
      assert.strictEqual(queryFor({ style: "pipeDelimited", explode: false }, OBJECT), "color=R|100|G|200|B|150")
    })

    it("deepObject writes name[key]=value, nesting for nested objects", () => {
      assert.strictEqual(queryFor({ style: "deepObject", explode: true }, OBJECT), "color[R]=100&color[G]=200&color[B]=150")
      assert.strictEqual(
        queryFor({ style: "deepObject", explode: true }, { filter: { name: "Rex", age: 3 } }),
        "color[filter][name]=Rex&color[filter][age]=3"
      )
    })

    it("keeps the declared parameter order and skips null and missing arguments", () => {
      const tool = makeTool({ params: [param("b", "query"), param("a", "query"), param("c", "query"), param("d", "query")] })
      assert.deepStrictEqual(buildRequest(tool, { a: 1, b: "x", c: null }).query, ["b=x", "a=1"])
    })

    it("leaves out null items of an array", () => {
      assert.strictEqual(queryFor({ explode: true }, ["a", null, "b"]), "color=a&color=b")
    })

    it("percent-encodes reserved characters, including those encodeURIComponent leaves", () => {
      assert.strictEqual(queryFor({}, "a&b=c d/e?f#g+h"), "color=a%26b%3Dc%20d%2Fe%3Ff%23g%2Bh")
      assert.strictEqual(queryFor({}, "it's (ok)!*"), "color=it%27s%20%28ok%29%21%2A")
      assert.strictEqual(queryFor({}, "ü"), "color=%C3%BC")
    })

    it("sends reserved characters unencoded when allowReserved is set, except '#' which would end the URL", () => {
      assert.strictEqual(queryFor({ allowReserved: true }, "/path/to?x=1&y=[2]"), "color=/path/to?x=1&y=[2]")
      assert.strictEqual(queryFor({ allowReserved: true }, "a#b c"), "color=a%23b%20c")
    })

    it("sends a parameter declared as application/json content as encoded JSON text", () => {
      assert.strictEqual(queryFor({ json: true }, { a: 1, b: ["x"] }), "color=%7B%22a%22%3A1%2C%22b%22%3A%5B%22x%22%5D%7D")
      assert.strictEqual(queryFor({ json: true, explode: true }, ["x", "y"]), "color=%5B%22x%22%2C%22y%22%5D")
    })
  })

  describe("header parameters", () => {
    it("simple style: primitive, comma-joined array and object", () => {
      assert.strictEqual(headerFor({}, PRIMITIVE), "blue")
      assert.strictEqual(headerFor({}, ARRAY), "blue,black,brown")
      assert.strictEqual(headerFor({}, OBJECT), "R,100,G,200,B,150")
    })

    it("simple style with explode writes object members as key=value", () => {
      assert.strictEqual(headerFor({ explode: true }, ARRAY), "blue,black,brown")
      assert.strictEqual(headerFor({ explode: true }, OBJECT), "R=100,G=200,B=150")
    })

    it("sends the header under its lower-cased name, values unencoded", () => {
      const request = buildRequest(makeTool({ params: [param("X-Request-Id", "header", { arg: "requestId" })] }), {
        requestId: "a b/c"
      })
      assert.deepStrictEqual(request.headers, { "x-request-id": "a b/c" })
    })

    it("sends a header declared as application/json content as JSON text", () => {
      assert.strictEqual(headerFor({ json: true }, { a: "line1\nline2" }), "{\"a\":\"line1\\nline2\"}")
    })

    it("refuses header values with CR, LF or NUL, naming the argument and the header", () => {
      for (const value of ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\u0000b"]) {
        expectBuildError(() => headerFor({}, value), "'X-Color'", "X-Color header")
      }
      expectBuildError(() => headerFor({}, ["ok", "bad\r\nX: 1"]), "line breaks")
      expectBuildError(() => headerFor({}, { k: "bad\nvalue" }), "line breaks")
    })

    it("omits a null or missing header", () => {
      assert.deepStrictEqual(buildRequest(makeTool({ params: [param("X-Color", "header")] }), { "X-Color": null }).headers, {})
      assert.deepStrictEqual(buildRequest(makeTool({ params: [param("X-Color", "header")] }), {}).headers, {})
    })
  })

  describe("cookie parameters", () => {
    it("form style without explode: primitive, comma-joined array and object", () => {
      assert.deepStrictEqual(cookiesFor({ explode: false }, PRIMITIVE), [["color", "blue"]])
      assert.deepStrictEqual(cookiesFor({ explode: false }, ARRAY), [["color", "blue,black,brown"]])
      assert.deepStrictEqual(cookiesFor({ explode: false }, OBJECT), [["color", "R,100,G,200,B,150"]])
    })

    it("percent-encodes characters a cookie value cannot hold", () => {
      assert.deepStrictEqual(cookiesFor({}, "a b;c=d,\"e\""), [["color", "a%20b%3Bc%3Dd%2C%22e%22"]])
    })

    it("sends a cookie declared as application/json content as encoded JSON", () => {
      assert.deepStrictEqual(cookiesFor({ json: true }, { a: 1 }), [["color", "%7B%22a%22%3A1%7D"]])
    })

    it("omits null and missing cookies", () => {
      const tool = makeTool({ params: [param("a", "cookie"), param("b", "cookie"), param("c", "cookie")] })
      assert.deepStrictEqual(buildRequest(tool, { a: "1", b: null }).cookies, [["a", "1"]])
    })
  })

  describe("base URL", () => {
    it("joins a base URL without a trailing slash to the path", () => {
      const request = buildRequest(makeTool({ baseUrl: "https://api.example.com/v1", path: "/pets" }), {})
      assert.strictEqual(request.url, "https://api.example.com/v1/pets")
    })

    it("joins a base URL with a trailing slash without doubling it", () => {
      const request = buildRequest(makeTool({ baseUrl: "https://api.example.com/v1/", path: "/pets" }), {})
      assert.strictEqual(request.url, "https://api.example.com/v1/pets")
    })

    it("joins a bare origin", () => {
      assert.strictEqual(buildRequest(makeTool({ baseUrl: "http://localhost:8080", path: "/pets" }), {}).url, "http://localhost:8080/pets")
      assert.strictEqual(buildRequest(makeTool({ baseUrl: "http://localhost:8080/", path: "/pets" }), {}).url, "http://localhost:8080/pets")
    })

    it("keeps the tool's method and sends no body when the operation has none", () => {
      const request = buildRequest(makeTool({ method: "DELETE" }), { stray: 1 })
      assert.strictEqual(request.method, "DELETE")
      assert.isUndefined(request.body)
      assert.deepStrictEqual(request.query, [])
      assert.deepStrictEqual(request.cookies, [])
    })
  })

  describe("JSON bodies", () => {
    it("sends the whole-body argument as JSON under the declared media type", () => {
      const tool = makeTool({ method: "POST", body: makeBody({ mediaType: "application/vnd.api+json", kind: "json", arg: "body" }) })
      const body = buildRequest(tool, { body: { data: { type: "pets", attributes: { name: "Rex" } } } }).body
      assert.strictEqual(body?.contentType, "application/vnd.api+json")
      assert.strictEqual(bytesOf(body?.data), "{\"data\":{\"type\":\"pets\",\"attributes\":{\"name\":\"Rex\"}}}")
    })

    it("sends a JSON array or scalar body as is", () => {
      const tool = makeTool({ method: "POST", body: makeBody({ mediaType: "application/json", kind: "json", arg: "body" }) })
      assert.strictEqual(bytesOf(buildRequest(tool, { body: [1, "two"] }).body?.data), "[1,\"two\"]")
      assert.strictEqual(bytesOf(buildRequest(tool, { body: "text" }).body?.data), "\"text\"")
    })

    it("sends no body when the whole-body argument is missing", () => {
      const tool = makeTool({ method: "POST", body: makeBody({ mediaType: "application/json", kind: "json", arg: "body" }) })
      assert.isUndefined(buildRequest(tool, {}).body)
    })

    it("builds a flattened body from only the fields given, under their wire names", () => {
      const tool = makeTool({
        method: "POST",
        body: makeBody({
          mediaType: "application/json",
          kind: "json",
          arg: undefined,
          fields: [{ arg: "name", name: "name" }, { arg: "tag", name: "tag" }, { arg: "owner_id", name: "owner-id" }]
        })
      })
      const body = buildRequest(tool, { name: "Rex", owner_id: 3 }).body
      assert.strictEqual(body?.contentType, "application/json")
      assert.strictEqual(bytesOf(body?.data), "{\"name\":\"Rex\",\"owner-id\":3}")
    })

    it("sends no body for an optional flattened body with no fields given", () => {
      const tool = makeTool({
        method: "PATCH",
        body: makeBody({ mediaType: "application/json", kind: "json", arg: undefined, required: false, fields: [{ arg: "name", name: "name" }] })
      })
      assert.isUndefined(buildRequest(tool, {}).body)
    })

    it("sends {} for a required flattened body with no fields given", () => {
      const tool = makeTool({
        method: "POST",
        body: makeBody({ mediaType: "application/json", kind: "json", arg: undefined, required: true, fields: [{ arg: "name", name: "name" }] })
      })
      assert.strictEqual(bytesOf(buildRequest(tool, {}).body?.data), "{}")
    })

    it("keeps path, query and body arguments apart", () => {
      const tool = makeTool({
        method: "PUT",
        path: "/pets/{petId}",
        params: [param("petId", "path"), param("dryRun", "query")],
        body: makeBody({ mediaType: "application/json", kind: "json", arg: undefined, fields: [{ arg: "name", name: "name" }] })
      })
      const request = buildRequest(tool, { petId: 1, dryRun: true, name: "Rex" })
      assert.strictEqual(request.url, `${BASE}/pets/1`)
      assert.deepStrictEqual(request.query, ["dryRun=true"])
      assert.strictEqual(bytesOf(request.body?.data), "{\"name\":\"Rex\"}")
    })
  })

  describe("form-urlencoded bodies", () => {
    const formTool = makeTool({
      method: "POST",
      body: makeBody({ mediaType: "application/x-www-form-urlencoded", kind: "form", arg: "body" })
    })

    it("encodes spaces as '+', escapes reserved characters and repeats arrays", () => {
      const body = buildRequest(formTool, { body: { q: "a b&c=d+e", tag: ["x", "y z"], n: 5, skip: null } }).body
      assert.strictEqual(body?.contentType, "application/x-www-form-urlencoded")
      assert.strictEqual(bytesOf(body?.data), "q=a+b%26c%3Dd%2Be&tag=x&tag=y+z&n=5")
    })

    it("sends a nested object field as JSON text", () => {
      assert.strictEqual(
        bytesOf(buildRequest(formTool, { body: { meta: { a: 1 } } }).body?.data),
        "meta=%7B%22a%22%3A1%7D"
      )
    })

    it("builds a flattened form body from the given fields", () => {
      const tool = makeTool({
        method: "POST",
        body: makeBody({
          mediaType: "application/x-www-form-urlencoded",
          kind: "form",
          arg: undefined,
          fields: [{ arg: "grant_type", name: "grant_type" }, { arg: "scope", name: "scope" }]
        })
      })
      assert.strictEqual(bytesOf(buildRequest(tool, { grant_type: "client_credentials" }).body?.data), "grant_type=client_credentials")
    })
  })

  describe("multipart bodies", () => {
    const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    const PNG_BASE64 = Buffer.from(PNG).toString("base64")

    const multipartTool = (partial: Partial<BodyBinding> = {}) =>
      makeTool({
        method: "POST",
        body: makeBody({
          mediaType: "multipart/form-data",
          kind: "multipart",
          arg: undefined,
          fields: [
            { arg: "file", name: "file" },
            { arg: "avatar", name: "avatar" },
            { arg: "note", name: "note" },
            { arg: "tags", name: "tags" },
            { arg: "meta", name: "meta" }
          ],
          fileFields: ["file", "avatar"],
          ...partial
        })
      })

    it("leaves the content type to the HTTP client so it can add the boundary", () => {
      const body = buildRequest(multipartTool(), { note: "hi" }).body
      assert.isUndefined(body?.contentType)
      assert.instanceOf(body?.data, FormData)
    })

    it("turns a base64 file into a file part named after the field, typed from the spec's encoding", async () => {
      const form = formOf(buildRequest(multipartTool({ partTypes: { file: "image/png" } }), { file: PNG_BASE64 }).body?.data)
      const file = fileOf(form, "file")
      assert.strictEqual(file.type, "image/png")
      assert.strictEqual(file.name, "file")
      assert.deepStrictEqual(new Uint8Array(await file.arrayBuffer()), PNG)
    })

    it("types a base64 file without a usable encoding as application/octet-stream", () => {
      for (const partTypes of [{}, { file: "image/*" }, { file: "image/png, image/jpeg" }]) {
        const form = formOf(buildRequest(multipartTool({ partTypes }), { file: PNG_BASE64 }).body?.data)
        assert.strictEqual(fileOf(form, "file").type, "application/octet-stream")
      }
    })

    it("turns a data: URI into a file part with the URI's media type", async () => {
      const form = formOf(buildRequest(multipartTool(), { avatar: `data:image/png;base64,${PNG_BASE64}` }).body?.data)
      const file = fileOf(form, "avatar")
      assert.strictEqual(file.type, "image/png")
      assert.strictEqual(file.name, "avatar")
      assert.deepStrictEqual(new Uint8Array(await file.arrayBuffer()), PNG)
    })

    it("turns a list of files into one file part per file under the field's name", async () => {
      const form = formOf(buildRequest(multipartTool(), { file: [PNG_BASE64, "data:text/plain,hi"] }).body?.data)
      const parts = form.getAll("file")
      assert.strictEqual(parts.length, 2)
      const [png, text] = parts as Array<File>
      assert.instanceOf(png, Blob)
      assert.deepStrictEqual(new Uint8Array(await png!.arrayBuffer()), PNG)
      assert.strictEqual(text!.type, "text/plain")
      assert.strictEqual(await text!.text(), "hi")
      assert.throws(() => buildRequest(multipartTool(), { file: [PNG_BASE64, 7] }), "'file[1]' must be base64 text or a data: URI")
    })

    it("sends text fields as strings, repeats primitive arrays and sends objects as JSON text fields", () => {
      const form = formOf(
        buildRequest(multipartTool(), { note: "hello", tags: ["a", 2], meta: { owner: "ann", ids: [1] } }).body?.data
      )
      assert.strictEqual(form.get("note"), "hello")
      assert.deepStrictEqual(form.getAll("tags"), ["a", "2"])
      // a plain field, not a Blob: a Blob part gets a filename and servers take it for an upload
      assert.strictEqual(form.get("meta"), "{\"owner\":\"ann\",\"ids\":[1]}")
      assert.deepStrictEqual([...form.keys()], ["note", "tags", "tags", "meta"])
    })

    it("types an object part from the spec's encoding when given", async () => {
      const form = formOf(buildRequest(multipartTool({ partTypes: { meta: "application/vnd.meta+json" } }), { meta: { a: 1 } }).body?.data)
      assert.strictEqual((form.get("meta") as Blob).type, "application/vnd.meta+json")
    })

    it("leaves out null fields", () => {
      const form = formOf(buildRequest(multipartTool({ required: true }), { note: null, tags: ["x"] }).body?.data)
      assert.deepStrictEqual([...form.keys()], ["tags"])
    })

    it("refuses a file field that is not base64, naming the field", () => {
      expectBuildError(() => buildRequest(multipartTool(), { file: "not base64!" }), "'file'", "base64")
      expectBuildError(() => buildRequest(multipartTool(), { file: 12 }), "'file'")
    })
  })

  describe("text and binary bodies", () => {
    it("sends a text/plain body as UTF-8", () => {
      const tool = makeTool({ method: "POST", body: makeBody({ mediaType: "text/plain", kind: "text", arg: "body" }) })
      const body = buildRequest(tool, { body: "héllo\nworld" }).body
      assert.strictEqual(body?.contentType, "text/plain")
      assert.strictEqual(bytesOf(body?.data), "héllo\nworld")
    })

    it("sends a non-string value for a text body as JSON text", () => {
      const tool = makeTool({ method: "POST", body: makeBody({ mediaType: "text/csv", kind: "text", arg: "body" }) })
      assert.strictEqual(bytesOf(buildRequest(tool, { body: { a: 1 } }).body?.data), "{\"a\":1}")
    })

    it("decodes a base64 octet-stream body into raw bytes", () => {
      const tool = makeTool({ method: "PUT", body: makeBody({ mediaType: "application/octet-stream", kind: "binary", arg: "body" }) })
      const body = buildRequest(tool, { body: Buffer.from([0, 1, 2, 255]).toString("base64") }).body
      assert.strictEqual(body?.contentType, "application/octet-stream")
      assert.deepStrictEqual(Array.from(body?.data as Uint8Array), [0, 1, 2, 255])
    })

    it("decodes a data: URI body, keeping the declared media type", () => {
      const tool = makeTool({ method: "PUT", body: makeBody({ mediaType: "application/octet-stream", kind: "binary", arg: "body" }) })
      const body = buildRequest(tool, { body: "data:image/png;base64,AAEC/w==" }).body
      assert.strictEqual(body?.contentType, "application/octet-stream")
      assert.deepStrictEqual(Array.from(body?.data as Uint8Array), [0, 1, 2, 255])
    })

    it("takes the content type from a data: URI when the spec accepts any type", () => {
      const tool = makeTool({ method: "PUT", body: makeBody({ mediaType: "*/*", kind: "binary", arg: "body" }) })
      assert.strictEqual(buildRequest(tool, { body: "data:image/gif;base64,R0lG" }).body?.contentType, "image/gif")
      assert.strictEqual(buildRequest(tool, { body: "R0lG" }).body?.contentType, "application/octet-stream")
    })

    it("refuses an invalid base64 body with a BuildError naming the argument", () => {
      const tool = makeTool({ method: "PUT", body: makeBody({ mediaType: "application/octet-stream", kind: "binary", arg: "upload" }) })
      expectBuildError(() => buildRequest(tool, { upload: "this is *not* base64" }), "'upload'", "base64")
    })
  })

  describe("decodeFile", () => {
    it("decodes standard and URL-safe base64, ignoring whitespace", () => {
      const bytes = Uint8Array.from([0xfb, 0xff, 0xfe, 0x00])
      assert.deepStrictEqual(Array.from(decodeFile(Buffer.from(bytes).toString("base64"), "f").bytes), Array.from(bytes))
      assert.deepStrictEqual(Array.from(decodeFile(Buffer.from(bytes).toString("base64url"), "f").bytes), Array.from(bytes))
      assert.strictEqual(Buffer.from(decodeFile("aGVs\nbG8g\r\nd29y bGQ=", "f").bytes).toString(), "hello world")
      assert.isUndefined(decodeFile("aGVsbG8=", "f").mediaType)
    })

    it("decodes base64 and percent-encoded data: URIs with their media type", () => {
      const b64 = decodeFile("data:text/plain;charset=utf-8;base64,aMOp", "f")
      assert.strictEqual(Buffer.from(b64.bytes).toString(), "hé")
      assert.strictEqual(b64.mediaType, "text/plain")
      const plain = decodeFile("data:text/csv,a%2Cb%0A1%2C2", "f")
      assert.strictEqual(Buffer.from(plain.bytes).toString(), "a,b\n1,2")
      assert.strictEqual(plain.mediaType, "text/csv")
      assert.isUndefined(decodeFile("data:,hi", "f").mediaType)
    })

    it("refuses non-strings and invalid base64, naming the argument", () => {
      expectBuildError(() => decodeFile(42, "photo"), "'photo'", "data: URI")
      expectBuildError(() => decodeFile({ data: "x" }, "photo"), "'photo'")
      expectBuildError(() => decodeFile("héllo", "photo"), "'photo'", "not valid base64")
      expectBuildError(() => decodeFile("abc=def", "photo"), "'photo'")
    })

    it("refuses a data: URI with malformed percent-encoding with a BuildError", () => {
      expectBuildError(() => decodeFile("data:text/plain,100%", "file"), "'file'")
    })

    it("refuses a data: URI whose base64 payload is invalid", () => {
      expectBuildError(() => decodeFile("data:image/png;base64,this is *not* base64!", "file"), "'file'", "base64")
    })
  })

  describe("encodeStrict", () => {
    it("leaves only RFC 3986 unreserved characters unencoded", () => {
      assert.strictEqual(encodeStrict("AZaz09-._~"), "AZaz09-._~")
      assert.strictEqual(encodeStrict("!'()*"), "%21%27%28%29%2A")
      assert.strictEqual(encodeStrict(":/?#[]@$&+,;= %"), "%3A%2F%3F%23%5B%5D%40%24%26%2B%2C%3B%3D%20%25")
      assert.strictEqual(encodeStrict("€"), "%E2%82%AC")
    })
  })
})

describe("RequestBuilder: an OpenAPI 3.2 querystring parameter", () => {
  const queryOf = (options: Partial<ParamBinding>, value: unknown) =>
    buildRequest(makeTool({ params: [param("filter", "querystring", options)] }), { filter: value }).query.join("&")

  it("form-encodes an object as the whole query string: lists as repeated names, objects as JSON text", () => {
    assert.strictEqual(queryOf({}, { species: "cat dog", tag: ["a&b", "c"], range: { min: 1 }, none: null }),
      "species=cat%20dog&tag=a%26b&tag=c&range=%7B%22min%22%3A1%7D")
  })

  it("sends JSON content as percent-encoded JSON text, and a string as it is, escaping what cannot stand in a query", () => {
    assert.strictEqual(queryOf({ json: true }, { a: [1, 2] }), encodeStrict(JSON.stringify({ a: [1, 2] })))
    assert.strictEqual(queryOf({}, "a=1&b=x y#frag"), "a=1&b=x%20y%23frag")
  })
})
