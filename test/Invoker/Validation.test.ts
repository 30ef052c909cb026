import { assert, describe, it } from "@effect/vitest"
import type { JsonSchemaObject, Tool } from "../../src/domain/Tool.ts"
import { coerceTextArguments, validate, validatorFor } from "../../src/Invoker/Validation.ts"

const makeTool = (inputSchema: JsonSchemaObject, partial: Partial<Tool> = {}): Tool => ({
  name: "update_pet",
  operationId: "updatePet",
  method: "PUT",
  path: "/pets/{petId}",
  baseUrl: "https://api.example.com",
  title: undefined,
  description: "",
  tags: [],
  inputSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  params: [],
  body: undefined,
  ...partial
})

const petTool = () =>
  makeTool({
    type: "object",
    properties: {
      petId: { type: "integer" },
      status: { type: "string", enum: ["available", "pending", "sold"] },
      limit: { type: "integer", minimum: 1 },
      owner_email: { type: "string", format: "email" },
      born: { type: "string", format: "date-time" },
      body: {
        type: "object",
        properties: {
          items: {
            type: "array",
            items: { type: "object", required: ["name"], properties: { name: { type: "string" } } }
          }
        }
      }
    },
    required: ["petId"],
    additionalProperties: false
  })

describe("Validation", () => {
  it("accepts valid arguments with no messages", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: 1, status: "sold", body: { items: [{ name: "Rex" }] } }), [])
  })

  it("names a missing required argument", () => {
    assert.deepStrictEqual(validate(petTool(), {}), ["'petId' is required"])
  })

  it("converts what goes on the wire as text to the declared scalar type, and nothing else", () => {
    const param = (arg: string, json = false) => ({ arg, name: arg, in: "query" as const, style: "form", explode: true, allowReserved: false, json })
    const tool = makeTool({
      type: "object",
      properties: {
        id: { type: "string" }, n: { type: "integer" }, x: { type: "number" }, on: { type: "boolean" }, maybe: { type: ["string", "null"] },
        filter: { type: "object" }, count: { type: "integer" }, label: { type: "string" }
      },
      additionalProperties: false
    }, {
      params: [param("id"), param("n"), param("x"), param("on"), param("maybe"), param("filter", true)],
      body: { mediaType: "application/x-www-form-urlencoded", kind: "form", required: false, fields: [{ arg: "count", name: "count" }, { arg: "label", name: "label" }], arg: undefined, fileFields: [], partTypes: {} }
    })
    const args = { id: 42, n: "-3", x: "2.5e1", on: "false", maybe: true, filter: "{}", count: "9", label: false }
    assert.deepStrictEqual(coerceTextArguments(tool, args), { id: "42", n: -3, x: 25, on: false, maybe: "true", filter: "{}", count: 9, label: "false" })
    // what does not read as the type is left for validation to refuse; nothing to convert: the same object
    assert.deepStrictEqual(coerceTextArguments(tool, { n: "3.5", on: "yes" }), { n: "3.5", on: "yes" })
    const plain = { id: "a", n: 1 }
    assert.strictEqual(coerceTextArguments(tool, plain), plain)
    // a JSON body's fields keep their types
    const json = makeTool(tool.inputSchema, { body: { ...tool.body!, kind: "json", mediaType: "application/json" } })
    assert.deepStrictEqual(coerceTextArguments(json, { count: "9" }), { count: "9" })
  })

  it("names the body field an optional body needs once another of its fields is given", () => {
    const tool = makeTool({
      type: "object",
      properties: { petId: { type: "integer" }, name: { type: "string" }, kind: { type: "string" }, tag: { type: "string" } },
      required: ["petId"],
      dependentRequired: { name: ["kind"], kind: ["name"], tag: ["name", "kind"] },
      additionalProperties: false
    })
    assert.deepStrictEqual(validate(tool, { petId: 1 }), [])
    assert.deepStrictEqual(validate(tool, { petId: 1, tag: "dog" }), [
      "'name' is required when any request body field is given (given: 'tag')",
      "'kind' is required when any request body field is given (given: 'tag')"
    ])
    // one line per missing field, however many body fields were given (five named at most)
    const wide = makeTool({
      type: "object",
      properties: Object.fromEntries(["need", "a", "b", "c", "d", "e", "f", "g"].map((k) => [k, { type: "string" }])),
      dependentRequired: Object.fromEntries(["a", "b", "c", "d", "e", "f", "g"].map((k) => [k, ["need"]])),
      additionalProperties: false
    })
    assert.deepStrictEqual(validate(wide, { a: "", b: "", c: "", d: "", e: "", f: "", g: "" }), [
      "'need' is required when any request body field is given (given: 'a', 'b', 'c', 'd', 'e' and 2 more)"
    ])
    assert.deepStrictEqual(validate(tool, { petId: "x", kind: "cat", tag: "dog" }), [
      "'petId' must be of type integer (got \"x\")",
      "'name' is required when any request body field is given (given: 'kind', 'tag')"
    ])
  })

  it("names the argument, the expected type and the value got for a wrong type", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: "abc" }), ["'petId' must be of type integer (got \"abc\")"])
    assert.deepStrictEqual(validate(petTool(), { petId: 1.5 }), ["'petId' must be of type integer (got 1.5)"])
    assert.deepStrictEqual(validate(petTool(), { petId: 1, body: [] }), ["'body' must be of type object (got [])"])
  })

  it("lists the allowed values of an enum and the value got", () => {
    const [message] = validate(petTool(), { petId: 1, status: "gone" })
    assert.strictEqual(message, "'status' must be one of [\"available\",\"pending\",\"sold\"] (got \"gone\")")
  })

  it("suggests the close argument name for a case or underscore typo", () => {
    for (const typo of ["petid", "PetId", "pet_id", "PET-ID"]) {
      const messages = validate(petTool(), { [typo]: 1 })
      assert.include(messages, `'${typo}' is not an argument of this tool (did you mean 'petId'?)`)
      assert.include(messages, "'petId' is required")
    }
    assert.include(validate(petTool(), { petId: 1, ownerEmail: "a@b.c" }), "'ownerEmail' is not an argument of this tool (did you mean 'owner_email'?)")
  })

  it("lists the tool's arguments for an unknown argument with no close name", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: 1, colour: "red" }), [
      "'colour' is not an argument of this tool (arguments: petId, status, limit, owner_email, born, body)"
    ])
  })

  it("reports nested problems with a readable path like body.items[0].name", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: 1, body: { items: [{ name: "ok" }, { name: 5 }] } }), [
      "'body.items[1].name' must be of type string (got 5)"
    ])
    assert.deepStrictEqual(validate(petTool(), { petId: 1, body: { items: [{}] } }), ["'body.items[0].name' is required"])
  })

  it("reports every problem at once", () => {
    const messages = validate(petTool(), { status: "gone", limit: "x" })
    assert.strictEqual(messages.length, 3)
    assert.include(messages, "'petId' is required")
    assert.include(messages, "'limit' must be of type integer (got \"x\")")
  })

  it("names the argument and value for other rules such as minimum", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: 1, limit: 0 }), ["'limit' must be >= 1 (got 0)"])
  })

  it("shortens a long offending value in the message", () => {
    const [message] = validate(petTool(), { petId: "x".repeat(500) })
    assert.isDefined(message)
    assert.isBelow(message!.length, 120)
    assert.include(message!, "...")
  })

  it("does not enforce formats: the upstream API judges them", () => {
    assert.deepStrictEqual(validate(petTool(), { petId: 1, owner_email: "x", born: "yesterday" }), [])
  })

  it("explains a const mismatch with the expected value", () => {
    const tool = makeTool({ type: "object", properties: { kind: { const: "dog" } }, additionalProperties: false })
    assert.deepStrictEqual(validate(tool, { kind: "cat" }), ["'kind' must be \"dog\" (got \"cat\")"])
  })

  it("shows an escaped JSON-pointer segment as the original property name", () => {
    const tool = makeTool({
      type: "object",
      properties: { filter: { type: "object", properties: { "a/b": { type: "string" }, "c~d": { type: "string" } } } },
      additionalProperties: false
    })
    assert.deepStrictEqual(validate(tool, { filter: { "a/b": 1, "c~d": 2 } }), [
      "'filter.a/b' must be of type string (got 1)",
      "'filter.c~d' must be of type string (got 2)"
    ])
  })

  it("explains each option when a value matches none of anyOf's", () => {
    const tool = makeTool({
      type: "object",
      properties: { id: { anyOf: [{ type: "string" }, { type: "integer" }] } },
      additionalProperties: false
    })
    assert.deepStrictEqual(validate(tool, { id: true }), [
      "'id' must be of type string (got true)",
      "'id' must be of type integer (got true)"
    ])
  })

  it("names the full path of an unknown property inside an object argument", () => {
    const tool = makeTool({
      type: "object",
      properties: { filter: { type: "object", properties: { name: { type: "string" } }, additionalProperties: false } },
      additionalProperties: false
    })
    const [message] = validate(tool, { filter: { nmae: "Rex" } })
    assert.include(message, "'filter.nmae'")
  })

  it("caps the list at 20 messages", () => {
    const args = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`extra${i}`, i]))
    assert.strictEqual(validate(petTool(), { petId: 1, ...args }).length, 20)
  })

  it("compiles a tool's validator once and reuses it", () => {
    const tool = petTool()
    const first = validatorFor(tool)
    validate(tool, { petId: 1 })
    assert.strictEqual(validatorFor(tool), first)
    assert.notStrictEqual(validatorFor(petTool()), first)
  })
})
