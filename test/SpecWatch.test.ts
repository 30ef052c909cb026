/**
 * SpecWatch's timing, under TestClock: a spec URL is looked at again every SPEC_WATCH_INTERVAL, and the spec is
 * built again (and handed to the MCP server) only when its document changed, once the DEBOUNCE has passed.
 * The spec's layers, the loader and the MCP server are test layers that count what happens; the file watching
 * and the real rebuild are covered end to end in test/e2e/watch.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig } from "../src/AppConfig.ts"
import { Discovery } from "../src/Discovery.ts"
import { McpServer } from "../src/McpServer.ts"
import { SpecLoader } from "../src/SpecLoader.ts"
import { SpecWatch } from "../src/SpecWatch.ts"
import { type CatalogShape, ToolCatalog } from "../src/ToolCatalog.ts"

const SPEC_URL = "https://specs.example.com/openapi.json"
const SCHEMAS_URL = "https://specs.example.com/schemas.json"

const catalogOf = (name: string, sourceUrls: ReadonlyArray<string>) =>
  ({ serverName: name, tools: [], sourceFiles: [], sourceUrls, lookup: () => undefined }) as unknown as CatalogShape

/**
 * `state.document` is the spec's own document, `state.schemas` one it refers to; `state.urls` the documents the
 * spec as loaded is made of (the catalog's `sourceUrls`; the spec URL alone, as configured, when empty).
 */
const harness = (settings: Partial<AppConfig["Service"]> = { watch: true, watchIntervalSeconds: 60 }, urls: Array<string> = []) => {
  const state = { document: "v1", schemas: "s1", urls, fetches: 0, schemaFetches: 0, builds: 0, replaced: [] as Array<string> }
  let current = catalogOf("v1", state.urls)
  const loader = Layer.succeed(SpecLoader, SpecLoader.of({
    read: (source) =>
      Effect.sync(() => {
        if (source === SCHEMAS_URL) return (state.schemaFetches++, { url: source, data: Buffer.from(state.schemas) })
        return (state.fetches++, { url: source, data: Buffer.from(state.document) })
      }),
    load: () => Effect.die("not used"),
    loadText: () => Effect.die("not used")
  }))
  // what the spec builds into: a catalog named after the document it was built from
  const spec = Layer.syncContext(() => {
    state.builds++
    return Context.make(ToolCatalog, catalogOf(state.document, state.urls)).pipe(Context.add(Discovery, {} as Discovery["Service"]))
  })
  const mcp = Layer.succeed(McpServer, McpServer.of({
    create: () => {
      throw new Error("not used")
    },
    serveStdio: Effect.void,
    catalog: () => current,
    replace: (catalog) => Effect.sync(() => (current = catalog, state.replaced.push(catalog.serverName)))
  }))
  const watch = SpecWatch.layer(spec, loader).pipe(
    Layer.provide(Layer.merge(mcp, AppConfig.layerTest({ spec: SPEC_URL, ...settings })))
  )
  return { state, watch }
}

/** Lets forked fibers run what the clock made due. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

describe("SpecWatch", () => {
  it.effect("looks at a spec URL every SPEC_WATCH_INTERVAL, and reloads only a changed document, after the debounce", () =>
    Effect.gen(function*() {
      const { state, watch } = harness()
      yield* Layer.build(watch)
      yield* settle
      assert.strictEqual(state.fetches, 1) // the document as served at start
      yield* TestClock.adjust("59 seconds")
      yield* settle
      assert.strictEqual(state.fetches, 1)
      // the interval: looked at again after the debounce, unchanged, nothing built
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.fetches, 2)
      assert.strictEqual(state.builds, 0)
      // a new version: built and handed over at the next look
      state.document = "v2"
      yield* TestClock.adjust("59700 millis") // the next look is due 60 s after the last one began
      yield* settle
      assert.strictEqual(state.fetches, 2)
      assert.strictEqual(state.builds, 0) // not before the debounce
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.builds, 1)
      assert.deepStrictEqual(state.replaced, ["v2"])
      // and not again while it stays the same
      yield* TestClock.adjust("60 seconds")
      yield* settle
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.builds, 1)
    }).pipe(Effect.scoped))

  it.effect("looks at every document the loaded spec is made of, and after a reload at the new spec's", () =>
    Effect.gen(function*() {
      const { state, watch } = harness(undefined, [SPEC_URL, SCHEMAS_URL])
      yield* Layer.build(watch)
      yield* settle
      assert.deepStrictEqual([state.fetches, state.schemaFetches], [1, 1])
      // the referenced document changed, the spec's own did not: reloaded; the new spec no longer refers to it
      state.schemas = "s2"
      state.urls = [SPEC_URL]
      yield* TestClock.adjust("60 seconds")
      yield* settle
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.builds, 1)
      // from now on only the spec's own document is looked at
      const schemaFetches = state.schemaFetches
      state.schemas = "s3"
      yield* TestClock.adjust("60 seconds")
      yield* settle
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.schemaFetches, schemaFetches)
      assert.strictEqual(state.builds, 1)
    }).pipe(Effect.scoped))

  it.effect("over HTTP, reloads on SIGHUP whatever the content, and looks at nothing otherwise without --watch", () =>
    Effect.gen(function*() {
      const { state, watch } = harness({ transport: "http" })
      yield* Layer.build(watch)
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.strictEqual(state.fetches, 0)
      process.emit("SIGHUP")
      yield* settle
      yield* TestClock.adjust("300 millis")
      yield* settle
      assert.strictEqual(state.builds, 1)
      assert.deepStrictEqual(state.replaced, ["v1"])
    }).pipe(Effect.scoped))
})
