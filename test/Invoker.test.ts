/**
 * The Invoker end to end with the HTTP client swapped for an in-process fake: what is sent, and how
 * timeouts and transport failures come back to the model. Time is virtual (TestClock).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig, defaults, type Settings } from "../src/AppConfig.ts"
import { Auth } from "../src/Auth.ts"
import { Invoker } from "../src/Invoker.ts"
import { layerMemoryStore, ResponseCache } from "../src/ResponseCache.ts"
import { SpecLoaderTest } from "./support/specs.ts"
import { ToolCatalog } from "../src/ToolCatalog.ts"
import { Upstream, type UpstreamResponse, type WireRequest } from "../src/Upstream.ts"
import { UpstreamTransport } from "../src/Upstream/Transport.ts"
import { EXAMPLE_SPEC, textOf } from "./support/processes.ts"

/** The fake upstream's answer: a response, a transport error, or none ever. */
type Handler = (req: WireRequest) => UpstreamResponse | Error | "hang"

const makeLayer = (handler: Handler, settings: Partial<Settings> = {}) => {
  const seen: Array<WireRequest> = []
  const transport = Layer.succeed(UpstreamTransport, UpstreamTransport.of({
    send: (req, done) => {
      seen.push(req)
      const result = handler(req)
      if (result !== "hang") done(result)
      return () => undefined
    }
  }))
  const config = AppConfig.layerTest({ spec: EXAMPLE_SPEC, baseUrl: Option.some("http://upstream.test/v1"), ...settings })
  const catalog = ToolCatalog.layerNoDeps.pipe(
    Layer.provide(SpecLoaderTest)
  )
  const layer = Invoker.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(
      catalog, Auth.layer.pipe(Layer.provide(catalog)), Upstream.layerNoDeps.pipe(Layer.provide(transport)),
      ResponseCache.layerNoDeps.pipe(Layer.provide(layerMemoryStore))
    )),
    Layer.provide(config)
  )
  return { layer, seen }
}

const json = (body: unknown, status = 200): UpstreamResponse =>
  ({ status, headers: { "content-type": "application/json" }, body: new TextEncoder().encode(JSON.stringify(body)) })

describe("Invoker", () => {
  it.effect("builds the request from the arguments and adds the credential", () => {
    const { layer, seen } = makeLayer(() => json({ id: 7, name: "Rex" }), {
      auth: { ...defaults.auth, type: "api_key", apiKey: Option.some(Redacted.make("k1")), apiKeyName: Option.some("X-API-Key") }
    })
    return Effect.gen(function*() {
      const invoker = yield* Invoker
      const result = yield* invoker.call("listPets", { status: "available", tags: ["a", "b"], limit: 5 })
      assert.isUndefined(result.isError)
      assert.strictEqual(seen.length, 1)
      const req = seen[0]!
      assert.strictEqual(req.method, "GET")
      assert.strictEqual(req.origin, "http://upstream.test")
      assert.strictEqual(req.path, "/v1/pets?status=available&tags=a,b&limit=5")
      assert.strictEqual(req.headers["x-api-key"], "k1")
      assert.deepStrictEqual(result.structuredContent, { id: 7, name: "Rex" })
    }).pipe(Effect.provide(layer))
  })

  it.effect("does not call the upstream when the arguments are invalid", () => {
    const { layer, seen } = makeLayer(() => json({}))
    return Effect.gen(function*() {
      const result = yield* (yield* Invoker).call("getPet", {})
      assert.isTrue(result.isError)
      assert.include(textOf(result), "'petId' is required")
      assert.strictEqual(seen.length, 0)
      const notObject = yield* (yield* Invoker).call("getPet", [1])
      assert.include(textOf(notObject), "arguments must be a JSON object")
    }).pipe(Effect.provide(layer))
  })

  it.effect("refuses arguments nested too deep for the code that walks them, as a tool error (not a crash)", () => {
    const { layer, seen } = makeLayer(() => json({ id: 1 }, 201))
    const nested = (depth: number) => {
      let v: unknown = "x"
      for (let i = 0; i < depth; i++) v = [v]
      return v
    }
    return Effect.gen(function*() {
      const invoker = yield* Invoker
      const deep = yield* invoker.call("createPet", { name: "Rex", tags: nested(50_000) })
      assert.isTrue(deep.isError)
      assert.strictEqual(textOf(deep), "Invalid arguments for createPet: nested more than 64 levels deep.")
      // within the limit, the usual validation answers
      const shallow = yield* invoker.call("createPet", { name: "Rex", tags: nested(63) })
      assert.include(textOf(shallow), "'tags[0]' must be of type string")
      assert.strictEqual(seen.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("takes a number quoted or not where it goes on the wire as text; a JSON body keeps its types", () => {
    const { layer, seen } = makeLayer(() => json({ id: 7 }))
    return Effect.gen(function*() {
      const invoker = yield* Invoker
      // the integer path and query parameters as strings, the string array's items as numbers
      assert.isUndefined((yield* invoker.call("getPet", { petId: "7" })).isError)
      assert.isUndefined((yield* invoker.call("listPets", { limit: "5", tags: [1, 2] })).isError)
      assert.deepStrictEqual(seen.map((r) => r.path), ["/v1/pets/7", "/v1/pets?tags=1,2&limit=5"])
      // what does not read as the type is still refused, and so is a wrong type in the JSON body
      assert.include(textOf(yield* invoker.call("getPet", { petId: "seven" })), "'petId' must be of type integer (got \"seven\")")
      assert.include(textOf(yield* invoker.call("listPets", { limit: "0" })), "'limit' must be >= 1")
      assert.include(textOf(yield* invoker.call("createPet", { name: 7 })), "'name' must be of type string (got 7)")
      assert.strictEqual(seen.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails an unknown tool with UnknownTool", () => {
    const { layer } = makeLayer(() => json({}))
    return Effect.gen(function*() {
      const error = yield* Effect.flip((yield* Invoker).call("nope", {}))
      assert.strictEqual(error._tag, "UnknownTool")
      assert.strictEqual(error.name, "nope")
    }).pipe(Effect.provide(layer))
  })

  it.effect("ends a call that outlives HTTP_TIMEOUT with a timeout result naming the limit", () => {
    const { layer, seen } = makeLayer(() => "hang", { http: { ...defaults.http, timeoutMs: 5_000 }, retry: { ...defaults.retry, maxAttempts: 1 } })
    return Effect.gen(function*() {
      const fiber = yield* (yield* Invoker).call("getPet", { petId: 1 }).pipe(Effect.forkChild)
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(fiber)
      assert.isTrue(result.isError)
      assert.include(textOf(result), "did not answer within 5 s")
      assert.deepStrictEqual(result.structuredContent, { error: "timeout", timeout: "request", after_ms: 5000, attempts: 1 })
      assert.strictEqual(seen.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("reports an unreachable upstream by origin and error code, never the full URL", () => {
    const { layer } = makeLayer(() => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), {
      auth: { ...defaults.auth, type: "api_key", apiKey: Option.some(Redacted.make("sekret")), apiKeyIn: Option.some("query" as const) },
      retry: { ...defaults.retry, maxAttempts: 1 }
    })
    return Effect.gen(function*() {
      const result = yield* (yield* Invoker).call("getInventory", {})
      assert.isTrue(result.isError)
      assert.include(textOf(result), "could not reach the upstream API at http://upstream.test (ECONNREFUSED)")
      assert.notInclude(JSON.stringify(result), "sekret")
    }).pipe(Effect.provide(layer))
  })
})

