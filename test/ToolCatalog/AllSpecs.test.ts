/**
 * Every spec of the shared corpus (../shared/specs/index.json) loads and maps into tools that MCP clients
 * accept: the SDK's Tool schema, plain object input schemas without `$ref`s or top-level combinators, argument
 * and tool names in the character sets clients enforce, and an input schema Ajv compiles.
 */
import { ToolSchema } from "@modelcontextprotocol/sdk/types.js"
import { assert, layer } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { validatorFor } from "../../src/Invoker/Validation.ts"
import { SpecLoader } from "../../src/SpecLoader.ts"
import { toListed } from "../../src/ToolCatalog.ts"
import { mapSpec } from "../../src/ToolCatalog/Mapping.ts"
import { MAPPING, SpecLoaderTest } from "../support/specs.ts"

const SPECS = resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/specs")

interface IndexEntry {
  readonly file: string
  /** Path operations (GET/PUT/POST/DELETE/OPTIONS/HEAD/PATCH/TRACE); webhooks are counted apart. */
  readonly operations: number
}
const index = JSON.parse(readFileSync(resolve(SPECS, "index.json"), "utf8")) as { readonly specs: ReadonlyArray<IndexEntry> }

/** A deliberately broken spec (go-openapi validation fixture): its only operation cannot be mapped. */
const DELIBERATELY_BROKEN = "go-openapi_dangling-ref.yaml"

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/
const ARG_NAME = /^[A-Za-z0-9_.-]{1,64}$/

const TestLayer = SpecLoaderTest

layer(TestLayer)("every shared spec", (it) => {
  it("has an index with every spec listed", () => {
    assert.strictEqual(index.specs.length, 32)
  })

  for (const entry of index.specs) {
    it.effect(`${entry.file} maps into tools MCP clients accept`, () =>
      Effect.gen(function*() {
        const loaded = yield* Effect.result(SpecLoader.use((loader) => loader.load(resolve(SPECS, entry.file))))
        if (Result.isFailure(loaded)) return assert.fail(`${entry.file} failed to load: ${loaded.failure.message}`)
        const result = mapSpec(loaded.success, { ...MAPPING, baseUrl: "http://127.0.0.1:9" })
        assert.strictEqual(result.operations, entry.operations, "operations counted vs the index")
        assert.strictEqual(result.filteredOut, 0)
        if (entry.file === DELIBERATELY_BROKEN) {
          assert.strictEqual(result.tools.length, 0)
          assert.deepStrictEqual(result.skipped.map((p) => p.location), ["paths./get_main_object.get"])
        } else {
          assert.deepStrictEqual(result.skipped, [], "no operation skipped")
          assert.strictEqual(result.tools.length, entry.operations)
        }

        const names = new Set<string>()
        for (const tool of result.tools) {
          const listed = toListed(tool)
          const parsed = ToolSchema.safeParse(listed)
          assert.isTrue(parsed.success, `${tool.name}: ${parsed.error?.message ?? ""}`)
          // nothing was stripped or coerced by the SDK's schema
          assert.deepStrictEqual(parsed.data, listed as unknown as typeof parsed.data, tool.name)

          assert.match(tool.name, TOOL_NAME)
          assert.isFalse(names.has(tool.name), `duplicate tool name ${tool.name}`)
          names.add(tool.name)

          const schema = tool.inputSchema as unknown as Record<string, unknown>
          assert.strictEqual(schema["type"], "object", tool.name)
          for (const key of ["oneOf", "anyOf", "allOf"]) assert.notProperty(schema, key, tool.name)
          assert.notInclude(JSON.stringify(schema), "\"$ref\"", tool.name)
          for (const arg of Object.keys(tool.inputSchema.properties)) assert.match(arg, ARG_NAME, tool.name)
          for (const arg of tool.inputSchema.required ?? []) assert.property(tool.inputSchema.properties, arg, tool.name)

          assert.doesNotThrow(() => validatorFor(tool), tool.name)
        }
      }), 60_000)
  }
})
