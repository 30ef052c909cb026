import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { validatorFor } from "../../src/Invoker/Validation.ts"
import type { LoadedSpec } from "../../src/SpecLoader.ts"
import { type Json, type JsonObject, RefResolver } from "../../src/SpecLoader/Refs.ts"
import { fitName, mapSpec, type MappingOptions, mediaKind, pathPattern, problemOf, sanitizeName, settle, shortHash } from "../../src/ToolCatalog/Mapping.ts"
import { loadSpec, MAPPING, SpecLoaderTest } from "../support/specs.ts"
import { toJsonSchema } from "../../src/ToolCatalog/Schema.ts"
import { estimateTokens, exceedsBudget, toListed } from "../../src/ToolCatalog.ts"
import { SELECT_LISTED_CHARS, SELECT_PROPERTY } from "../../src/Invoker/Select.ts"
import type { Tool } from "../../src/domain/Tool.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const spec = (name: string) => resolve(ROOT, "../shared/specs", name)
const fixture = (name: string) => resolve(ROOT, "test/fixtures/mapping", name)
const EXAMPLE = resolve(ROOT, "examples/petstore.yaml")

const TestLayer = SpecLoaderTest
const OPTIONS = MAPPING
const load = loadSpec
const loadAndMap = (source: string, options: Partial<MappingOptions> = {}) =>
  load(source).pipe(Effect.map((loaded) => mapSpec(loaded, { ...OPTIONS, ...options })))

const byOperation = (tools: ReadonlyArray<Tool>, operationId: string): Tool => {
  const tool = tools.find((t) => t.operationId === operationId)
  assert.isDefined(tool, `no tool for operation ${operationId}`)
  return tool!
}
const prop = (tool: Tool, name: string): Record<string, unknown> => {
  const p = tool.inputSchema.properties[name]
  assert.isDefined(p, `${tool.name} has no argument '${name}' (has ${Object.keys(tool.inputSchema.properties).join(", ")})`)
  return p as Record<string, unknown>
}

/** An in-memory single-document spec, for shapes that are easier to generate than to write out. */
const inMemory = (document: JsonObject): LoadedSpec => {
  const url = "file:///in-memory/openapi.json"
  return {
    source: "in-memory",
    url,
    version: "3.0",
    document,
    refs: new RefResolver(new Map<string, Json>([[url, document]]), new Map()),
    files: 1,
    documentUrls: [],
    pathProblems: new Map(),
    mendedYaml: new Map()
  }
}

describe("the operator's tool names and descriptions", () => {
  layer(TestLayer)((it) => {
    it.effect("name and describe a tool instead of its operationId and summary; filters see both names", () =>
      Effect.gen(function*() {
        const options = {
          toolOverrides: {
            getPet: { tool_name: "pet_by_id", description: "One pet, by its id. Use listPets to find ids." },
            listPets: { tool_name: "createPet" }
          }
        }
        const { tools } = yield* loadAndMap(EXAMPLE, options)
        const pet = byOperation(tools, "getPet")
        assert.strictEqual(pet.name, "pet_by_id")
        assert.isTrue(pet.description.startsWith("One pet, by its id. Use listPets to find ids.\n\nGET /pets/{petId}"))
        assert.notInclude(pet.description, "Get a pet")
        // a chosen name another tool has is made unique as any other
        assert.deepStrictEqual([byOperation(tools, "listPets").name, byOperation(tools, "createPet").name], ["createPet", "createPet_2"])
        const kept = yield* loadAndMap(EXAMPLE, { ...options, includeOperations: ["pet_by_id", "getInventory"] })
        assert.deepStrictEqual(kept.tools.map((t) => t.name), ["pet_by_id", "getInventory"])
        const dropped = yield* loadAndMap(EXAMPLE, { ...options, excludeOperations: ["getPet"] })
        assert.notInclude(dropped.tools.map((t) => t.name), "pet_by_id")
      }))
  })
})

describe("server URL variables (SERVER_VARIABLES)", () => {
  it("fill the spec's server URL, over its defaults; without them the defaults apply", () => {
    const spec = inMemory({
      openapi: "3.0.3",
      info: { title: "t", version: "1" },
      servers: [{ url: "https://{region}.api.example.com/{version}", variables: { region: { default: "us" }, version: { default: "v1" } } }],
      paths: { "/things": { get: { operationId: "listThings", responses: { "200": { description: "ok" } } } } }
    })
    const base = (options: Partial<MappingOptions>) => mapSpec(spec, { ...OPTIONS, ...options }).tools[0]!.baseUrl
    assert.strictEqual(base({}), "https://us.api.example.com/v1")
    assert.strictEqual(base({ serverVariables: { region: "eu" } }), "https://eu.api.example.com/v1")
  })
})

describe("text request bodies", () => {
  it("know NDJSON (Elasticsearch's _bulk), JSON Lines and GraphQL as text (so `check` does not warn of them)", () => {
    for (const type of ["application/x-ndjson", "application/jsonl", "application/graphql", "application/x-yaml", "text/csv; charset=utf-8"]) {
      assert.strictEqual(mediaKind(type), "text", type)
    }
    assert.isUndefined(mediaKind("application/vnd.custom"))
  })
})

describe("name helpers", () => {
  it("sanitizes to [A-Za-z0-9_-], collapsing runs and trimming the ends", () => {
    assert.strictEqual(sanitizeName("pets.list (v2)!"), "pets_list_v2")
    assert.strictEqual(sanitizeName("get-/users/{id}"), "get-_users_id")
    assert.strictEqual(sanitizeName("__a__b__"), "a_b")
    assert.strictEqual(sanitizeName("déjà vu"), "d_j_vu")
    assert.strictEqual(sanitizeName("???"), "")
  })

  it("hashes with 32-bit FNV-1a as 8 hex digits", () => {
    assert.strictEqual(shortHash(""), "811c9dc5")
    assert.strictEqual(shortHash("a"), "e40c292c")
    assert.strictEqual(shortHash("foobar"), "bf9cf968")
  })

  it("cuts a long name to the limit and ends it with the hash of the whole name", () => {
    const long = `${"x".repeat(70)}_tail`
    const cut = fitName(long, 64)
    assert.strictEqual(cut.length, 64)
    assert.strictEqual(cut, `${"x".repeat(55)}_${shortHash(long)}`)
    assert.strictEqual(fitName("short", 64), "short")
    assert.strictEqual(fitName("y".repeat(64), 64), "y".repeat(64))
    // a cut falling just after a separator does not leave a doubled one
    assert.notInclude(fitName(`${"a".repeat(54)}__${"b".repeat(20)}`, 64), "__")
  })
})

layer(TestLayer)("mapSpec", (it) => {
  describe("broken references", () => {
    it.effect("skips only the operation with a broken parameter $ref, naming where it is", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("broken-ref.yaml"))
        assert.strictEqual(result.operations, 5)
        assert.deepStrictEqual(result.tools.map((t) => t.name), ["listPets", "deletePet"])
        const getPet = result.skipped.find((p) => p.location.startsWith("paths./pets/{id}.get"))
        assert.deepStrictEqual(getPet, {
          location: "paths./pets/{id}.get.parameters[2]",
          message: "$ref '#/components/parameters/Nope' not found"
        })
      }))

    it.effect("lazily mapped, a broken operation keeps its place and name until built, then says why; settled, it is skipped", () =>
      Effect.gen(function*() {
        const loaded = yield* load(fixture("broken-ref.yaml"))
        const eager = mapSpec(loaded, OPTIONS)
        const lazy = mapSpec(loaded, OPTIONS, true)
        // every operation with a base URL is a tool until its schemas are read
        assert.sameMembers(lazy.tools.map((t) => t.operationId), ["listPets", "getPet", "createPet", "deletePet", "getPhoto"])
        assert.deepStrictEqual(lazy.skipped, [])
        const getPet = byOperation(lazy.tools, "getPet")
        assert.deepStrictEqual(problemOf(getPet), {
          location: "paths./pets/{id}.get.parameters[2]",
          message: "$ref '#/components/parameters/Nope' not found"
        })
        assert.deepStrictEqual(getPet.inputSchema.properties, {}) // readable, never a throw
        assert.isUndefined(problemOf(byOperation(lazy.tools, "listPets")))
        const settled = settle(lazy)
        assert.deepStrictEqual(settled.tools.map((t) => t.name), eager.tools.map((t) => t.name))
        assert.sameDeepMembers([...settled.skipped], [...eager.skipped])
      }))

    it.effect("skips an operation whose body schema $ref is missing, pointing into the request body", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("broken-ref.yaml"))
        const createPet = result.skipped.find((p) => p.location.startsWith("paths./pets.post"))
        assert.isDefined(createPet)
        assert.match(createPet!.location, /^paths\.\/pets\.post\.requestBody/)
        assert.strictEqual(createPet!.message, "$ref '#/components/schemas/Missing' not found")
      }))

    it.effect("skips an operation whose $ref names a missing file, saying the file was not found", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("broken-ref.yaml"))
        const photo = result.skipped.find((p) => p.location.startsWith("paths./pets/{id}/photo.get"))
        assert.isDefined(photo)
        assert.strictEqual(photo!.location, "paths./pets/{id}/photo.get.parameters[1]")
        assert.include(photo!.message, "./no-such-file.yaml#/Size")
        assert.include(photo!.message, "no-such-file.yaml: file not found")
        assert.strictEqual(result.skipped.length, 3)
      }))
    it("reports a broken path-level parameter $ref for each operation of the path", () => {
      const result = mapSpec(
        inMemory({
          openapi: "3.0.3",
          info: { title: "t", version: "1" },
          servers: [{ url: "https://x.example.com" }],
          paths: {
            "/things/{id}": {
              parameters: [{ $ref: "#/components/parameters/Gone" }],
              get: { operationId: "getThing", responses: { "200": { description: "ok" } } },
              delete: { operationId: "deleteThing", responses: { "204": { description: "ok" } } }
            },
            "/things": { get: { operationId: "listThings", responses: { "200": { description: "ok" } } } }
          }
        }),
        OPTIONS
      )
      assert.deepStrictEqual(result.tools.map((t) => t.name), ["listThings"])
      assert.deepStrictEqual(result.skipped, [
        { location: "paths./things/{id}.parameters[0]", message: "$ref '#/components/parameters/Gone' not found" },
        { location: "paths./things/{id}.parameters[0]", message: "$ref '#/components/parameters/Gone' not found" }
      ])
    })
  })

  describe("circular schemas", () => {
    it.effect("cuts self- and mutually recursive schemas with a note", () =>
      Effect.gen(function*() {
        const started = performance.now()
        const result = yield* loadAndMap(fixture("circular.yaml"))
        assert.isBelow(performance.now() - started, 2_000)

        const node = byOperation(result.tools, "createNode")
        assert.deepStrictEqual(Object.keys(node.inputSchema.properties), ["name", "parent", "children"])
        assert.include(JSON.stringify(node.inputSchema), "recursive 'Node' structure")

        const person = byOperation(result.tools, "createPerson")
        assert.deepStrictEqual(Object.keys(person.inputSchema.properties), ["name", "employer"])
        const employer = prop(person, "employer")
        assert.deepStrictEqual(Object.keys(employer["properties"] as object), ["name", "ceo", "staff"])
        assert.include(JSON.stringify(employer), "recursive 'Company' structure")

        const companies = byOperation(result.tools, "findCompanies")
        assert.include(JSON.stringify(prop(companies, "where")), "recursive")

        for (const tool of result.tools) {
          assert.notInclude(JSON.stringify(tool.inputSchema), "$ref")
          validatorFor(tool)
        }
      }))

    it.effect("skips a $ref that points at itself instead of hanging", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("circular.yaml"))
        const loop = result.skipped.find((p) => p.location.startsWith("paths./loops.post"))
        assert.isDefined(loop)
        assert.include(loop!.message, "loop of references")
        assert.strictEqual(result.tools.length, 3)
      }))

    it.effect("maps kin_circularRef (a cycle across two files) without hanging", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(spec("kin_circularRef/base.yml"), { baseUrl: "http://127.0.0.1:9" })
        assert.strictEqual(result.operations, 0)
        assert.deepStrictEqual(result.skipped, [])
      }))

    it.effect("maps the NDHM spec fast and cuts its self-referencing File schema with a note", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("apisguru_ndhm.gov.in_ndhm-healthid.json"))
        const started = performance.now()
        const result = mapSpec(loaded, OPTIONS)
        assert.isBelow(performance.now() - started, 2_000)
        assert.strictEqual(result.tools.length, 73)
        assert.deepStrictEqual(result.skipped, [])
        // No operation input reaches `File` (File.parentFile/absoluteFile/canonicalFile → File), so convert it directly.
        const file = toJsonSchema({ $ref: "#/components/schemas/File" }, loaded.url, { refs: loaded.refs, stack: [], expansions: 0 }, "x")
        assert.isTrue(typeof file === "object")
        const properties = (file as { readonly properties: Record<string, { readonly description?: string }> }).properties
        for (const key of ["parentFile", "absoluteFile", "canonicalFile"]) {
          assert.strictEqual(properties[key]?.description, "(recursive 'File' structure, not expanded further here)")
        }
      }))

        it("maps a densely cross-linked model fast and with a bounded input schema", () => {
      const schemas: Record<string, Json> = {}
      const count = 20
      for (let i = 0; i < count; i++) {
        const properties: Record<string, Json> = { id: { type: "string" } }
        for (let k = 1; k <= 3; k++) properties[`rel${k}`] = { $ref: `#/components/schemas/S${(i + k) % count}` }
        schemas[`S${i}`] = { type: "object", properties }
      }
      const document: JsonObject = {
        openapi: "3.0.3",
        info: { title: "Graph", version: "1" },
        servers: [{ url: "https://graph.example.com" }],
        paths: {
          "/s": {
            post: {
              operationId: "createS",
              requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/S0" } } } },
              responses: { "201": { description: "ok" } }
            }
          }
        },
        components: { schemas }
      }
      const started = performance.now()
      const result = mapSpec(inMemory(document), OPTIONS)
      assert.isBelow(performance.now() - started, 2_000)
      assert.strictEqual(result.tools.length, 1)
      assert.isBelow(JSON.stringify(result.tools[0]!.inputSchema).length, 1_000_000)
    })
  })

  describe("tool names", () => {
    it.effect("sanitises, cuts, de-duplicates and falls back to method_path", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("names.yaml"))
        const names = result.tools.map((t) => t.name)
        const alpha = "listEveryThingThatBelongsToTheCurrentUserAcrossAllWorkspacesAndProjectsAlpha"
        const beta = "listEveryThingThatBelongsToTheCurrentUserAcrossAllWorkspacesAndProjectsBeta"
        assert.deepStrictEqual(names, [
          "pets_list_v2",
          "getPet",
          "GetPet_2",
          "getPet_3",
          `${alpha.slice(0, 55)}_${shortHash(alpha)}`,
          `${beta.slice(0, 55)}_${shortHash(beta)}`,
          "post_users_userId_posts",
          "get",
          "get_g"
        ])
        assert.strictEqual(byOperation(result.tools, "pets.list (v2)!").name, "pets_list_v2")
        for (const name of names) assert.match(name, /^[A-Za-z0-9_-]{1,64}$/)
        assert.strictEqual(new Set(names.map((n) => n.toLowerCase())).size, names.length)
      }))

    it.effect("honours a smaller name limit, keeping the hash suffix", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("names.yaml"), { toolNameMaxLength: 32 })
        for (const tool of result.tools) assert.isAtMost(tool.name.length, 32)
        const cut = result.tools.filter((t) => t.operationId.startsWith("listEveryThing"))
        assert.strictEqual(cut.length, 2)
        for (const tool of cut) assert.match(tool.name, /^listEveryThing.*_[0-9a-f]{8}$/)
        assert.notStrictEqual(cut[0]!.name, cut[1]!.name)
      }))

    it.effect("gives the same names on every run", () =>
      Effect.gen(function*() {
        const first = yield* loadAndMap(spec("apisguru_hubapi.com_automation.json"))
        const second = yield* loadAndMap(spec("apisguru_hubapi.com_automation.json"))
        assert.deepStrictEqual(first.tools.map((t) => t.name), second.tools.map((t) => t.name))
      }))

    it.effect("keeps HubSpot's long, slash-laden operationIds valid, within 64 and distinct", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(spec("apisguru_hubapi.com_automation.json"))
        assert.strictEqual(result.tools.length, 16)
        assert.deepStrictEqual(result.skipped, [])
        const names = result.tools.map((t) => t.name)
        for (const name of names) assert.match(name, /^[A-Za-z0-9_-]{1,64}$/)
        assert.strictEqual(new Set(names.map((n) => n.toLowerCase())).size, 16)

        const short = byOperation(result.tools, "get-/automation/v4/actions/{appId}_getPage")
        assert.strictEqual(short.name, "get-_automation_v4_actions_appId_getPage")
        const longest = "put-/automation/v4/actions/{appId}/{definitionId}/functions/{functionType}/{functionId}_createOrReplace"
        const tool = byOperation(result.tools, longest)
        assert.strictEqual(tool.name.length, 64)
        assert.strictEqual(tool.name, fitName(sanitizeName(longest), 64))
        assert.match(tool.name, /^put-_automation_v4_actions_appId_definitionId_functions_[0-9a-f]{8}$/)
        // the four getById/archive/createOrReplace/getByFunctionType variants share their first 55 characters
        const cut = names.filter((n) => /_[0-9a-f]{8}$/.test(n))
        assert.isAtLeast(cut.length, 5)
      }))

    it.effect("suffixes case-insensitive duplicate operationIds (NDHM)", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(spec("apisguru_ndhm.gov.in_ndhm-healthid.json"))
        const names = result.tools.map((t) => t.name)
        assert.include(names, "generateMobileOTPUsingPOST")
        assert.include(names, "generateMobileOtpUsingPOST_2")
        assert.include(names, "verifyAadharOtpUsingPOST")
        assert.include(names, "verifyAadharOTPUsingPOST_2")
      }))
  })

  describe("input schemas", () => {
    it("converts 3.0 boolean exclusive bounds to 3.1 numbers, keeps numeric ones, and keeps deprecated only when true", () => {
      const ctx = { refs: new RefResolver(new Map(), new Map()), stack: [], expansions: 0 }
      const convert = (node: JsonObject) => toJsonSchema(node, "file:///x.yaml", ctx, "x")
      assert.deepStrictEqual(convert({ type: "integer", minimum: 1, exclusiveMinimum: true, maximum: 9 }), {
        type: "integer", exclusiveMinimum: 1, maximum: 9
      })
      assert.deepStrictEqual(convert({ type: "number", exclusiveMaximum: 5, minimum: 0, exclusiveMinimum: false }), {
        type: "number", minimum: 0, exclusiveMaximum: 5
      })
      assert.deepStrictEqual(convert({ type: "string", deprecated: false, pattern: "^[a-z]+$" }), { type: "string", pattern: "^[a-z]+$" })
      assert.deepStrictEqual(convert({ type: "string", deprecated: true, pattern: "([" }), { type: "string", deprecated: true })
      // examples: only those of the schema's type (an integer is a number too)
      assert.deepStrictEqual(convert({ type: "number", example: 3 }), { type: "number", examples: [3] })
      assert.deepStrictEqual(convert({ type: "integer", example: "3" }), { type: "integer" })
      assert.deepStrictEqual(convert({ type: "string", nullable: true, examples: ["a", null, 1] }), { type: ["string", "null"], examples: ["a", null] })
      assert.deepStrictEqual(convert({ example: { a: 1 } }), { examples: [{ a: 1 }] })
      // …and in its enum, and matching its pattern
      assert.deepStrictEqual(convert({ type: "string", enum: ["git", "svn"], example: "\"git\"" }), { type: "string", enum: ["git", "svn"] })
      assert.deepStrictEqual(convert({ type: "string", enum: ["git", "svn"], example: "svn" }), { type: "string", enum: ["git", "svn"], examples: ["svn"] })
      assert.deepStrictEqual(convert({ type: "string", pattern: "^sha256:[a-f0-9]{4}$", examples: ["sha256:abcd", "sha256:…"] }), {
        type: "string", pattern: "^sha256:[a-f0-9]{4}$", examples: ["sha256:abcd"]
      })
      // …and of the shape of a uuid, date or date-time format (other formats are not judged)
      assert.deepStrictEqual(convert({ type: "string", format: "uuid", examples: ["4f4e4e1-c824-4d63-b37a-d8d698862f1d", "B2E783E1-C824-4D63-B37A-D8D698862F1D"] }), {
        type: "string", format: "uuid", examples: ["B2E783E1-C824-4D63-B37A-D8D698862F1D"]
      })
      assert.deepStrictEqual(convert({ type: "string", format: "date-time", examples: ["2024-02-01T09:00:00Z", "2024-02-01T09:00:00.5+01:00", "\"2007-10-29T02:42:39.000-07:00\"", "yesterday"] }), {
        type: "string", format: "date-time", examples: ["2024-02-01T09:00:00Z", "2024-02-01T09:00:00.5+01:00"]
      })
      assert.deepStrictEqual(convert({ type: "string", format: "date", example: "2024-02-01T09:00:00Z" }), { type: "string", format: "date" })
      assert.deepStrictEqual(convert({ type: "string", format: "email", example: "someone" }), { type: "string", format: "email", examples: ["someone"] })
    })

    it.effect("leaves readOnly properties out, makes nullable a type union and oneOf an anyOf", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const createPet = byOperation(result.tools, "createPet")
        assert.deepStrictEqual(Object.keys(createPet.inputSchema.properties), ["name", "tag", "status", "owner", "details"])
        assert.deepStrictEqual(createPet.inputSchema.required, ["name"])
        assert.deepStrictEqual(prop(createPet, "tag")["type"], ["string", "null"])
        assert.deepStrictEqual(prop(createPet, "status"), { type: ["string", "null"], enum: ["available", "sold", null] })
        const owner = prop(createPet, "owner")
        assert.isUndefined(owner["oneOf"])
        assert.strictEqual((owner["anyOf"] as Array<unknown>).length, 2)
        const details = prop(createPet, "details")
        assert.deepStrictEqual(Object.keys(details["properties"] as object), ["color"])

        const validate = validatorFor(createPet)
        assert.isTrue(validate({ name: "Rex", tag: null, status: null, owner: "someone" }))
        assert.isFalse(validate({ tag: "x" }))
        assert.isFalse(validate({ name: "Rex", id: "server-assigned" }))
      }))

    it.effect("flattens an object body into top-level arguments", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const createPet = byOperation(result.tools, "createPet")
        assert.deepStrictEqual(createPet.params, [])
        assert.strictEqual(createPet.body?.kind, "json")
        assert.strictEqual(createPet.body?.arg, undefined)
        assert.deepStrictEqual(createPet.body?.fields?.map((f) => f.name), ["name", "tag", "status", "owner", "details"])
      }))

    it.effect("an optional body's required fields are required together once any body field is given (Twilio)", () =>
      Effect.gen(function*() {
        // Twilio's spec leaves `required` off every request body, though its bodies have required fields
        const result = yield* loadAndMap(spec("apisguru_twilio.com_twilio_verify_v2.json"))
        const verify = byOperation(result.tools, "CreateVerification")
        assert.deepStrictEqual(verify.inputSchema.required, ["ServiceSid"])
        const dependent = verify.inputSchema.dependentRequired ?? {}
        assert.deepStrictEqual(dependent["To"], ["Channel"])
        assert.deepStrictEqual(dependent["Channel"], ["To"])
        assert.sameMembers([...dependent["Locale"] ?? []], ["To", "Channel"])
        assert.isUndefined(dependent["ServiceSid"])
        assert.match(String(prop(verify, "To")["description"]), /\(required when any request body field is given\)$/)
        assert.notMatch(String(prop(verify, "Locale")["description"]), /required when/)

        const validate = validatorFor(verify)
        const sid = "VA" + "0".repeat(32)
        assert.isTrue(validate({ ServiceSid: sid }), "no body field: no body, nothing more needed")
        assert.isTrue(validate({ ServiceSid: sid, To: "+15017122661", Channel: "sms" }))
        assert.isFalse(validate({ ServiceSid: sid, Locale: "en" }))
        assert.isFalse(validate({ ServiceSid: sid, To: "+15017122661" }))

        // a body the spec marks required keeps its required fields plain required
        const inputs = yield* loadAndMap(fixture("inputs.yaml"))
        assert.isUndefined(byOperation(inputs.tools, "createPet").inputSchema.dependentRequired)
      }))

    it.effect("leaves out an example whose type or format is not the schema's (Twitter's array ids, Decentraland's string authChain, Train Travel's uuid)", () =>
      Effect.gen(function*() {
        const twitter = yield* loadAndMap(spec("apisguru_twitter.com_current.json"))
        const byId = byOperation(twitter.tools, "findUsersById")
        // the spec's example is the value as sent ("2244994945,6253282,12"), not the array the argument is
        assert.strictEqual(prop(byId, "ids")["type"], "array")
        assert.isUndefined(prop(byId, "ids")["examples"])
        // an example of the right type stays
        assert.isArray((prop(byId, "user.fields")["examples"] as Array<unknown>)[0])

        const dcl = yield* loadAndMap(spec("decentraland-catalyst_api.yaml"))
        const post = byOperation(dcl.tools, "postEntity")
        assert.isUndefined(prop(post, "authChain")["examples"])
        assert.deepStrictEqual(prop(post, "entityId")["examples"], ["QmY4GFuf2jR3ocfuXuFLgvUrGEpjo84Byg44Pv2wduuinW"])

        // Train Travel's uuid trip_id has the example "4f4e4e1-…" (seven digits first): the API refuses it
        const train = yield* loadAndMap(spec("readme_3.1_train-travel.json"))
        const booking = byOperation(train.tools, "create-booking")
        assert.strictEqual(prop(booking, "trip_id")["format"], "uuid")
        assert.isUndefined(prop(booking, "trip_id")["examples"])
      }))

    it("a required list sent as text needs an item ([] would send nothing); a JSON one may be empty", () => {
      const op = (content: string) => ({
        operationId: content.replace(/\W/g, "_"),
        parameters: [
          { name: "tags", in: "query", required: true, schema: { type: "array", items: { type: "string" } } },
          { name: "few", in: "query", required: true, schema: { type: "array", minItems: 2, items: { type: "string" } } },
          { name: "maybe", in: "query", schema: { type: "array", items: { type: "string" } } },
          { name: "filter", in: "query", required: true, content: { "application/json": { schema: { type: "array" } } } }
        ],
        requestBody: {
          content: { [content]: { schema: { type: "object", required: ["events"], properties: { events: { type: "array", items: { type: "string" } } } } } }
        },
        responses: { "200": { description: "ok" } }
      })
      const result = mapSpec(inMemory({
        openapi: "3.0.3",
        info: { title: "t", version: "1" },
        servers: [{ url: "https://x.example.com" }],
        paths: { "/a": { post: op("application/x-www-form-urlencoded") }, "/b": { post: op("application/json") } }
      }), OPTIONS)
      const [form, json] = [byOperation(result.tools, "application_x_www_form_urlencoded"), byOperation(result.tools, "application_json")]
      assert.strictEqual(prop(form, "tags")["minItems"], 1)
      assert.strictEqual(prop(form, "few")["minItems"], 2)
      assert.isUndefined(prop(form, "maybe")["minItems"])
      assert.isUndefined(prop(form, "filter")["minItems"], "a JSON-encoded parameter sends [] as text")
      assert.strictEqual(prop(form, "events")["minItems"], 1)
      assert.isUndefined(prop(json, "events")["minItems"])
      assert.isFalse(validatorFor(form)({ tags: [], few: ["a", "b"], filter: [] }))
      assert.isTrue(validatorFor(form)({ tags: ["a"], few: ["a", "b"], filter: [], maybe: [] }))
    })

    it.effect("Swagger 2.0: a body shared through `parameters` or declared on the path item reaches its operations", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("swagger2-bodies.yaml"))
        assert.deepStrictEqual(result.skipped, [])
        const create = byOperation(result.tools, "createPet")
        assert.deepStrictEqual(Object.keys(create.inputSchema.properties), ["name", "tag"])
        assert.deepStrictEqual(create.inputSchema.required, ["name"])
        assert.strictEqual(create.body?.mediaType, "application/json")
        const replace = byOperation(result.tools, "replacePet")
        assert.deepStrictEqual(Object.keys(replace.inputSchema.properties), ["id", "name"])
        assert.deepStrictEqual(replace.inputSchema.required, ["id", "name"])
        // its own form field wins over the path item's body: the two exclude each other
        const patch = byOperation(result.tools, "patchPet")
        assert.deepStrictEqual(Object.keys(patch.inputSchema.properties), ["id", "tag", "note"])
        assert.strictEqual(patch.body?.mediaType, "application/x-www-form-urlencoded")
        // a required form field makes the body required (the converter leaves it optional)
        assert.deepStrictEqual(patch.inputSchema.required, ["id", "note"])
        assert.isUndefined(patch.inputSchema.dependentRequired)

        // Slack's form fields
        const slack = yield* loadAndMap(spec("slack_web_openapi_v2.json"))
        assert.deepStrictEqual(byOperation(slack.tools, "chat_postMessage").inputSchema.required, ["token", "channel"])

        // Kubernetes declares every body on the path item
        const k8s = yield* loadAndMap(spec("kubernetes-canary_swagger.json"), { baseUrl: "http://127.0.0.1:9" })
        const binding = byOperation(k8s.tools, "createCoreV1NamespacedBinding")
        assert.includeMembers(Object.keys(binding.inputSchema.properties), ["namespace", "target", "metadata"])
        assert.include([...binding.inputSchema.required ?? []], "target")
      }))

    it.effect("marks an operation that documents a redirect as its answer (GitHub's downloads)", () =>
      Effect.gen(function*() {
        const github = yield* loadAndMap(spec("github_api.github.com.json"))
        const tarball = byOperation(github.tools, "repos/download-tarball-archive")
        assert.isTrue(tarball.redirects)
        assert.include(tarball.description, "GET /repos/{owner}/{repo}/tarball/{ref} → 302")
        assert.isTrue(byOperation(github.tools, "repos/get").redirects, "301 for a renamed repository")
        assert.isUndefined(byOperation(github.tools, "issues/create").redirects)
      }))

    it("sends a body as a concrete media type, never a range such as application/*+json", () => {
      const op = (types: Array<string>) => ({
        operationId: `op_${types.length}`,
        requestBody: { content: Object.fromEntries(types.map((t) => [t, { schema: { type: "object", properties: { q: { type: "string" } } } }])) },
        responses: { "200": { description: "ok" } }
      })
      const result = mapSpec(inMemory({
        openapi: "3.0.3",
        info: { title: "t", version: "1" },
        servers: [{ url: "https://x.example.com" }],
        paths: {
          // facecheck lists the range first
          "/a": { post: op(["application/*+json", "application/json", "text/json"]) },
          "/b": { post: op(["*/*"]) },
          "/c": { post: op(["text/*", "application/octet-stream", "image/*", "video/*"]) }
        }
      }), OPTIONS)
      assert.deepStrictEqual(result.tools.map((t) => t.body?.mediaType), ["application/json", "application/json", "text/plain"])
    })

    it.effect("takes a list of files for a file field (kin's multipart `file`, an array of binaries)", () =>
      Effect.gen(function*() {
        const kin = yield* loadAndMap(spec("kin_refInRefInProperty/openapi.yaml"), { baseUrl: "http://127.0.0.1:9" })
        assert.deepStrictEqual(kin.tools[0]!.body?.fileFields, ["file"])
      }))

    it.effect("keeps the body as one 'body' argument when a body property clashes with a parameter", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const replacePet = byOperation(result.tools, "replacePet")
        assert.deepStrictEqual(Object.keys(replacePet.inputSchema.properties), ["petId", "trace", "name", "body"])
        assert.deepStrictEqual(replacePet.inputSchema.required, ["petId"])
        assert.strictEqual(replacePet.body?.arg, "body")
        assert.isUndefined(replacePet.body?.fields)
        const body = prop(replacePet, "body")
        assert.strictEqual(body["type"], "object")
        assert.notProperty(body["properties"] as object, "id")
        assert.property(body["properties"] as object, "name")
      }))

    it.effect("merges path-level parameters with operation-level overrides", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const getPet = byOperation(result.tools, "getPet")
        assert.deepStrictEqual(Object.keys(getPet.inputSchema.properties), ["petId", "trace"])
        assert.deepStrictEqual(prop(getPet, "petId"), { type: "integer", description: "operation-level" })
        assert.deepStrictEqual(getPet.inputSchema.required, ["petId"])
        assert.deepStrictEqual(getPet.params.map((p) => `${p.in}:${p.name}`), ["path:petId", "query:trace"])

        const deletePet = byOperation(result.tools, "deletePet")
        assert.deepStrictEqual(prop(deletePet, "petId"), { type: "string", description: "path-level" })
      }))

    it.effect("ignores Accept, Content-Type and Authorization header parameters", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const listPets = byOperation(result.tools, "listPets")
        assert.deepStrictEqual(listPets.params.map((p) => `${p.in}:${p.name}`), [
          "query:filter[status]",
          "query:page.size",
          "header:X-Request-Id"
        ])
        assert.isUndefined(listPets.inputSchema.required)
      }))

    it.effect("turns parameter names like filter[status] into valid argument names bound to the wire name", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const listPets = byOperation(result.tools, "listPets")
        assert.deepStrictEqual(Object.keys(listPets.inputSchema.properties), ["filter_status", "page.size", "X-Request-Id"])
        const filter = listPets.params.find((p) => p.name === "filter[status]")
        assert.strictEqual(filter?.arg, "filter_status")
        assert.deepStrictEqual(prop(listPets, "filter_status")["enum"], ["available", "sold"])
      }))

    it.effect("adds an undeclared {placeholder} in the path as a required string argument", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const tool = byOperation(result.tools, "getOwnerPet")
        assert.sameMembers(tool.inputSchema.required as Array<string>, ["ownerId", "petId"])
        assert.strictEqual(prop(tool, "ownerId")["type"], "string")
        assert.deepStrictEqual(tool.params.find((p) => p.name === "ownerId")?.in, "path")
      }))

    it.effect("adds a location suffix only when names collide across locations", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const search = byOperation(result.tools, "search")
        assert.deepStrictEqual(Object.keys(search.inputSchema.properties), ["id", "id__header", "id__cookie"])
        assert.deepStrictEqual(search.params.map((p) => `${p.arg}=${p.in}:${p.name}`), [
          "id=query:id",
          "id__header=header:id",
          "id__cookie=cookie:id"
        ])
      }))

    it.effect("never puts oneOf/anyOf/allOf at the top of an input schema and rejects unknown arguments", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        for (const tool of result.tools) {
          assert.strictEqual(tool.inputSchema.type, "object")
          assert.strictEqual(tool.inputSchema.additionalProperties, false)
          for (const key of ["oneOf", "anyOf", "allOf"]) assert.notProperty(tool.inputSchema, key)
        }
      }))
  })

  describe("descriptions", () => {
    const described = (op: JsonObject, descriptionMaxLength = 1024) =>
      mapSpec(
        inMemory({
          openapi: "3.0.3",
          info: { title: "t", version: "1" },
          servers: [{ url: "https://x.example.com" }],
          paths: { "/pets": { get: op } }
        }),
        { ...OPTIONS, descriptionMaxLength }
      ).tools[0]!

    it("joins summary, description, method and path, and the success response", () => {
      const tool = described({
        operationId: "listPets",
        summary: "List pets",
        description: "Returns every pet.",
        deprecated: true,
        responses: { "200": { description: "A page of pets\nwith more lines" }, "404": { description: "none" } }
      })
      assert.strictEqual(tool.description, "List pets\n\nReturns every pet.\n\nGET /pets → 200: A page of pets\n\nDeprecated by the API.")
      assert.strictEqual(tool.title, "List pets")
      assert.strictEqual(tool.annotations.title, "List pets")
    })

    it("caps the description at the configured length with an ellipsis", () => {
      const tool = described({ operationId: "listPets", description: "word ".repeat(500), responses: {} }, 100)
      assert.isAtMost(tool.description.length, 100)
      assert.isTrue(tool.description.endsWith("…"))
    })
  })

  describe("annotations", () => {
    it.effect("marks reads, destructive deletes and idempotent writes", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("inputs.yaml"))
        const hints = (id: string) => {
          const { readOnlyHint, destructiveHint, idempotentHint } = byOperation(result.tools, id).annotations
          return { readOnlyHint, destructiveHint, idempotentHint }
        }
        assert.deepStrictEqual(hints("getPet"), { readOnlyHint: true, destructiveHint: false, idempotentHint: true })
        assert.deepStrictEqual(hints("createPet"), { readOnlyHint: false, destructiveHint: false, idempotentHint: false })
        assert.deepStrictEqual(hints("replacePet"), { readOnlyHint: false, destructiveHint: false, idempotentHint: true })
        assert.deepStrictEqual(hints("deletePet"), { readOnlyHint: false, destructiveHint: true, idempotentHint: true })
      }))
  })

  describe("filters", () => {
    const names = (options: Partial<MappingOptions>) =>
      loadAndMap(fixture("filters.yaml"), options).pipe(Effect.map((r) => r.tools.map((t) => t.name)))

    it.effect("include-tags keeps tagged matches only; untagged operations vanish", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("filters.yaml"), { includeTags: ["pets"] })
        assert.deepStrictEqual(result.tools.map((t) => t.name), ["listPets", "createPet"])
        assert.strictEqual(result.operations, 5)
        assert.strictEqual(result.filteredOut, 3)
      }))

    it.effect("exclude wins over include", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* names({ includeTags: ["pets"], excludeTags: ["admin"] }), ["listPets"])
        assert.deepStrictEqual(
          yield* names({ includeOperations: ["listPets", "createPet"], excludeOperations: ["createPet"] }),
          ["listPets"]
        )
        assert.deepStrictEqual(yield* names({ includeOperations: ["createPet"], excludeTags: ["admin"] }), [])
        assert.deepStrictEqual(
          yield* names({ includeTags: ["pets", "stores"], excludeOperations: ["listPets"] }),
          ["createPet", "listStores"]
        )
      }))

    it.effect("exclude-tags alone keeps untagged operations", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* names({ excludeTags: ["pets"] }), ["listStores", "health", "listUsers"])
      }))

    it.effect("read-only keeps the operations that read; path templates keep and drop by path, exclude winning; deprecated ones may go", () =>
      Effect.gen(function*() {
        const readOnly = yield* loadAndMap(fixture("filters.yaml"), { readOnly: true })
        assert.deepStrictEqual(readOnly.tools.map((t) => t.name), ["listPets", "listStores", "health", "listUsers"])
        assert.strictEqual(readOnly.filteredOut, 1)
        assert.deepStrictEqual(yield* names({ includePaths: ["/pets", "/stores/"] }), ["listPets", "createPet", "listStores"])
        assert.deepStrictEqual(yield* names({ excludePaths: ["/pets"], readOnly: true }), ["listStores", "health", "listUsers"])
        assert.deepStrictEqual(yield* names({ includePaths: ["/**"], excludePaths: ["/*s"] }), ["health"])
        assert.deepStrictEqual(yield* names({ excludeDeprecated: true }), ["listPets", "createPet", "listStores", "health"])
        // on a real spec: GitHub's issues of a repository, reading only
        const github = yield* loadAndMap(spec("github_api.github.com.json"), { includePaths: ["/repos/*/*/issues/**"], readOnly: true })
        assert.isAbove(github.tools.length, 10)
        assert.isTrue(github.tools.every((t) => t.method === "GET" && t.path.startsWith("/repos/{owner}/{repo}/issues")))
        assert.include(github.tools.map((t) => t.path), "/repos/{owner}/{repo}/issues")
      }))

    it("matches path templates: * one segment or part of one, /** any number of segments, none included", () => {
      const test = (pattern: string, path: string) => pathPattern(pattern)(path)
      assert.isTrue(test("/repos/**", "/repos"))
      assert.isTrue(test("/repos/**", "/repos/{owner}/{repo}/issues/{issue_number}"))
      assert.isFalse(test("/repos/**", "/repositories"))
      assert.isTrue(test("/pets/*", "/pets/{petId}"))
      assert.isFalse(test("/pets/*", "/pets/{petId}/photos"))
      assert.isTrue(test("/users/*/repos", "/users/{username}/repos"))
      assert.isTrue(test("/gists/*.json", "/gists/{id}.json"))
      assert.isFalse(test("/a.b", "/aXb"))
    })

    it.effect("include-operations selects by operationId", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* names({ includeOperations: ["listStores", "health"] }), ["listStores", "health"])
      }))

    it.effect("include-operations also matches the sanitised tool name", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("names.yaml"), { includeOperations: ["pets_list_v2", "get_g"] })
        assert.deepStrictEqual(result.tools.map((t) => t.name), ["pets_list_v2", "get_g"])
      }))
  })

  describe("base URL", () => {
    it.effect("fills server variables with their defaults; path- and operation-level servers win", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("servers.yaml"))
        assert.deepStrictEqual(result.skipped, [])
        assert.strictEqual(byOperation(result.tools, "a").baseUrl, "https://eu.api.example.com:8443/v2")
        assert.strictEqual(byOperation(result.tools, "b").baseUrl, "https://path-level.example.com")
        assert.strictEqual(byOperation(result.tools, "c").baseUrl, "https://op-level.example.com/x")
      }))

    it.effect("--base-url overrides every server", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("servers.yaml"), { baseUrl: "http://127.0.0.1:9/api" })
        assert.deepStrictEqual(result.tools.map((t) => t.baseUrl), Array(3).fill("http://127.0.0.1:9/api"))
      }))

    it.effect("skips operations with a 'no base URL' problem when the only server URL is relative", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(fixture("relative-server.yaml"))
        assert.deepStrictEqual(result.tools, [])
        assert.strictEqual(result.operations, 2)
        assert.deepStrictEqual(result.skipped.map((p) => p.location), ["paths./pets.get", "paths./pets/{id}.get"])
        for (const problem of result.skipped) {
          assert.include(problem.message, "no base URL")
          assert.include(problem.message, "--base-url")
        }
        const fixed = yield* loadAndMap(fixture("relative-server.yaml"), { baseUrl: "https://pets.example.com/api/v3" })
        assert.strictEqual(fixed.tools.length, 2)
        assert.deepStrictEqual(fixed.skipped, [])
      }))

    it.effect("skips with 'no base URL' when a spec has no servers at all (facecheck)", () =>
      Effect.gen(function*() {
        const result = yield* loadAndMap(spec("apisguru_facecheck.id.json"))
        assert.strictEqual(result.tools.length, 0)
        assert.strictEqual(result.skipped.length, 4)
        for (const problem of result.skipped) assert.include(problem.message, "no base URL")
      }))
  })
})

layer(TestLayer)("lazy mapping", (it) => {
  for (const name of ["github_api.github.com.json", "apisguru_twilio.com_twilio_verify_v2.json", "kubernetes-canary_swagger.json"]) {
    it.effect(`gives ${name} the same tools, names and problems as mapping at once`, () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec(name))
        const eager = mapSpec(loaded, OPTIONS)
        const lazy = mapSpec(loaded, OPTIONS, true)
        // before anything is built, names and what search reads are already there
        const heads = new Map(lazy.tools.map((t) => [t, [t.name, t.method, t.path, t.description, t.tags]]))
        const settled = settle(lazy)
        assert.deepStrictEqual(settled.tools.map((t) => heads.get(t)), eager.tools.map((t) => [t.name, t.method, t.path, t.description, t.tags]))
        assert.deepStrictEqual(JSON.parse(JSON.stringify(settled.tools)), JSON.parse(JSON.stringify(eager.tools)))
        assert.deepStrictEqual(settled.skipped, eager.skipped)
        assert.strictEqual(settled.operations, eager.operations)
      }), 60_000)
  }
})

layer(TestLayer)("token budget", (it) => {
  it.effect("is exceeded exactly when the full listing's estimate is over it, for eager and lazily mapped tools", () =>
    Effect.gen(function*() {
      const loaded = yield* load(spec("apisguru_twilio.com_twilio_verify_v2.json"))
      for (const lazy of [false, true]) {
        const { tools } = mapSpec(loaded, OPTIONS, lazy)
        const estimate = estimateTokens(tools.map(toListed))
        assert.isFalse(exceedsBudget(tools, estimate))
        assert.isTrue(exceedsBudget(tools, estimate - 1))
        // with _select on every tool (RESPONSE_SELECT), the listing that counts is that one
        const selecting = tools.map((t) => {
          const listed = toListed(t)
          return { ...listed, inputSchema: { ...listed.inputSchema, properties: { ...listed.inputSchema.properties, _select: SELECT_PROPERTY } } }
        })
        // (a tool without arguments gets one comma less: counted a character high)
        assert.isFalse(exceedsBudget(tools, estimateTokens(selecting) + 1, SELECT_LISTED_CHARS))
        assert.isTrue(exceedsBudget(tools, estimate, SELECT_LISTED_CHARS))
      }
      // a big API is over the budget on its names and descriptions alone
      const github = mapSpec(yield* load(spec("github_api.github.com.json")), OPTIONS, true)
      assert.isTrue(exceedsBudget(github.tools, 20_000))
    }), 60_000)
})

describe("OpenAPI 3.2", () => {
  layer(TestLayer)((it) => {
    it.effect("maps QUERY operations, additionalOperations and querystring parameters; refuses a standard method in additionalOperations", () =>
      Effect.gen(function*() {
        const loaded = yield* load(resolve(ROOT, "test/fixtures/openapi32.yaml"))
        assert.strictEqual(loaded.version, "3.2")
        const { tools, skipped, operations } = mapSpec(loaded, OPTIONS)
        assert.strictEqual(operations, 5)
        assert.deepStrictEqual(tools.map((t) => [t.name, t.method]), [
          ["listPets", "GET"], ["searchPets", "QUERY"], ["purgePets", "PURGE"], ["searchByJson", "GET"]
        ])
        assert.deepStrictEqual(skipped, [{
          location: "paths./pets.additionalOperations.get",
          message: "'get' is a method of the path item itself, not one for additionalOperations"
        }])
        // QUERY reads: a read-only, idempotent tool whose body fields are its arguments
        const search = byOperation(tools, "searchPets")
        assert.include(search.annotations, { readOnlyHint: true, idempotentHint: true, destructiveHint: false })
        assert.deepStrictEqual(search.inputSchema.required, ["species"])
        assert.include(search.description, "QUERY /pets")
        assert.include(byOperation(tools, "purgePets").annotations, { readOnlyHint: false, idempotentHint: false })
        // the whole query string is one argument, an object of its fields
        const list = byOperation(tools, "listPets")
        assert.deepStrictEqual(list.params.map((p) => [p.arg, p.in]), [["filter", "querystring"]])
        assert.deepStrictEqual(prop(list, "filter")["properties"], { species: { type: "string" }, tag: { type: "array", items: { type: "string" } } })
        // --read-only keeps QUERY and GET
        assert.deepStrictEqual(mapSpec(loaded, { ...OPTIONS, readOnly: true }).tools.map((t) => t.name), ["listPets", "searchPets", "searchByJson"])
      }))
  })
})

describe("fixed arguments (FIXED_ARGUMENTS, operations: arguments)", () => {
  layer(TestLayer)((it) => {
    it.effect("leave the tool's schema with their values typed; an operation's own win over its tag's, which win over the global ones", () =>
      Effect.gen(function*() {
        const loaded = yield* load(EXAMPLE)
        const { tools } = mapSpec(loaded, {
          ...OPTIONS,
          fixedArguments: { limit: "5", petId: "7", nothing: "x" },
          tagArguments: { pets: { limit: "10" } },
          toolOverrides: { createPet: { arguments: { name: "Rex" } } }
        })
        const list = byOperation(tools, "listPets")
        assert.notProperty(list.inputSchema.properties, "limit")
        assert.deepStrictEqual(list.fixedArguments, { limit: 10 })
        const get = byOperation(tools, "getPet")
        assert.notProperty(get.inputSchema.properties, "petId")
        assert.notInclude(get.inputSchema.required ?? [], "petId")
        assert.deepStrictEqual(get.fixedArguments, { petId: 7 })
        const create = byOperation(tools, "createPet")
        assert.deepStrictEqual(create.fixedArguments, { name: "Rex" })
        assert.notInclude(create.inputSchema.required ?? [], "name")
        assert.isUndefined(byOperation(tools, "getInventory").fixedArguments)
      }))
  })
})
