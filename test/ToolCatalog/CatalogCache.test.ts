import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { cacheDirFor, type CatalogEntry, entryKey, readEntry, writeEntry } from "../../src/ToolCatalog/CatalogCache.ts"

const options = { baseUrl: undefined, includeTags: [], excludeTags: [], includeOperations: [], excludeOperations: [], toolNameMaxLength: 64, descriptionMaxLength: 1024 }
const bytes = (text: string) => new TextEncoder().encode(text)

describe("catalog cache", () => {
  it("finds its directory: off, an explicit one, or the user's cache directory", () => {
    assert.isUndefined(cacheDirFor("off"))
    assert.strictEqual(cacheDirFor("/var/cache/mcp"), "/var/cache/mcp")
    assert.strictEqual(cacheDirFor("auto", { XDG_CACHE_HOME: "/x/cache" }), "/x/cache/openapi-mcp-server")
    assert.match(cacheDirFor("auto", {})!, /\.cache\/openapi-mcp-server$/)
  })

  it.effect("keys an entry by the spec's bytes, its URL and the mapping settings", () => Effect.gen(function*() {
    const base = yield* entryKey(bytes("{}"), "file:///a.json", options)
    assert.match(base, /^[0-9a-f]{64}$/)
    assert.strictEqual(yield* entryKey(bytes("{}"), "file:///a.json", options), base)
    assert.notStrictEqual(yield* entryKey(bytes("{ }"), "file:///a.json", options), base)
    assert.notStrictEqual(yield* entryKey(bytes("{}"), "file:///b.json", options), base)
    assert.notStrictEqual(yield* entryKey(bytes("{}"), "file:///a.json", { ...options, includeTags: ["pets"] }), base)
  }))

  it.effect("reads back what it wrote (owner-only, ASCII-only file), and ignores a corrupt or foreign entry", () => Effect.gen(function*() {
    const dir = join(mkdtempSync(join(tmpdir(), "catalog-test-")), "nested")
    const key = yield* entryKey(bytes("spec text"), "file:///s.yaml", options)
    const entry: CatalogEntry = {
      key, specVersion: "3.0", title: "Café ☕ 😀", version: "1", tagDescriptions: { pets: "Pets – “all” of them…" }, tools: [],
      skipped: [], operations: 0, filteredOut: 0
    }
    assert.isUndefined(yield* readEntry(dir, key))
    assert.isTrue(yield* writeEntry(dir, entry))
    assert.deepStrictEqual(yield* readEntry(dir, key), entry)
    const [file] = readdirSync(dir)
    assert.strictEqual(statSync(join(dir, file!)).mode & 0o777, 0o600)
    // written as ASCII (non-ASCII characters escaped), so that it is read back as a one-byte text at once
    assert.isTrue(readFileSync(join(dir, file!)).every((b) => b < 0x80))
    writeFileSync(join(dir, file!), "{ not json")
    assert.isUndefined(yield* readEntry(dir, key))
    writeFileSync(join(dir, file!), JSON.stringify({ ...entry, key: "0".repeat(64) }))
    assert.isUndefined(yield* readEntry(dir, key))
    // a directory that cannot be made (here: under a file) is not an error, just no cache
    assert.isFalse(yield* writeEntry(join(dir, file!, "sub"), entry))
  }))

  it.effect("keeps only the most recently written catalogs", () => Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "catalog-prune-"))
    const keys: Array<string> = []
    for (let i = 0; i < 5; i++) {
      const key = yield* entryKey(bytes(`spec ${i}`), "file:///s.yaml", options)
      keys.push(key)
      const entry: CatalogEntry = {
        key, specVersion: "3.0", title: undefined, version: undefined, tagDescriptions: {}, tools: [], skipped: [], operations: 0, filteredOut: 0
      }
      assert.isTrue(yield* writeEntry(dir, entry, 3))
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 15))) // distinct modification times
    }
    assert.strictEqual(readdirSync(dir).length, 3)
    assert.isUndefined(yield* readEntry(dir, keys[0]!))
    assert.isUndefined(yield* readEntry(dir, keys[1]!))
    assert.isDefined(yield* readEntry(dir, keys[4]!))
  }))
})
