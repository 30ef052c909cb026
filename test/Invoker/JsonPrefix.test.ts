import { assert, describe, it } from "@effect/vitest"
import { closeJsonPrefix, cutList } from "../../src/Invoker/JsonPrefix.ts"

/** `kept` is what `original` begins with: whole entries, then at most one entry that is itself such a prefix. */
const isPrefixOf = (kept: unknown, original: unknown): boolean => {
  if (Array.isArray(kept)) {
    if (!Array.isArray(original) || kept.length > original.length) return false
    return kept.every((v, i) => i < kept.length - 1 ? JSON.stringify(v) === JSON.stringify(original[i]) : isPrefixOf(v, original[i]))
  }
  if (typeof kept === "object" && kept !== null) {
    if (typeof original !== "object" || original === null || Array.isArray(original)) return false
    const keys = Object.keys(kept)
    const all = Object.keys(original)
    return keys.every((k, i) =>
      all[i] === k &&
      (i < keys.length - 1
        ? JSON.stringify((kept as Record<string, unknown>)[k]) === JSON.stringify((original as Record<string, unknown>)[k])
        : isPrefixOf((kept as Record<string, unknown>)[k], (original as Record<string, unknown>)[k]))
    )
  }
  return kept === original
}

const document = {
  total_count: 3,
  incomplete_results: false,
  items: [
    { id: 1, name: "a \"quoted\" name", path: "C:\\dir\\", tags: ["x", "y"], score: -1.5e3, owner: null, private: true },
    { id: 2, name: "ünïcødé ✓ 😀", nested: { deep: [[1, 2], [3, { four: "4" }]], empty: {}, none: [] }, flag: false },
    { id: 3, name: "\\\"", text: "line\nbreak\ttab", list: [] }
  ],
  next: "https://api.example.com/items?page=2"
}

describe("closeJsonPrefix", () => {
  it("gives, for every cut of a document, valid JSON that the document begins with", () => {
    for (const text of [JSON.stringify(document), JSON.stringify(document, null, 2)]) {
      let lastKept = 0
      for (let cut = 1; cut < text.length; cut++) {
        const prefix = closeJsonPrefix(text.slice(0, cut))
        if (prefix === undefined) {
          assert.isBelow(cut, 30, `nothing kept of ${cut} characters`)
          continue
        }
        assert.isTrue(isPrefixOf(prefix.value, document), `cut at ${cut}: ${prefix.json}`)
        assert.isTrue(text.startsWith(prefix.json.slice(0, prefix.json.length - prefix.closed)))
        lastKept = Math.max(lastKept, prefix.json.length)
      }
      assert.isAbove(lastKept, text.length * 0.9)
    }
  })

  it("cuts after the last whole entry of the list being cut, not inside an entry, nor before the list", () => {
    const text = JSON.stringify(document).slice(0, JSON.stringify(document).indexOf("\"text\""))
    const prefix = closeJsonPrefix(text)!
    assert.deepStrictEqual(prefix.value, { total_count: 3, incomplete_results: false, items: document.items.slice(0, 2) })
    assert.deepStrictEqual(cutList(prefix), { path: "items", kept: 2 })
    // a list of lists: the outermost list loses the partial entry
    assert.deepStrictEqual(closeJsonPrefix("[[1,2,3],[4,5,6],[7,8,9],[10,11")?.value, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
  })

  it("goes inside the last entry when cutting after the whole ones would lose more than a quarter", () => {
    const text = JSON.stringify([{ id: 1 }, { id: 2, big: Array.from({ length: 40 }, (_, i) => i) }]).slice(0, -20)
    const prefix = closeJsonPrefix(text)!
    const value = prefix.value as Array<{ big: Array<number> }>
    assert.strictEqual(value.length, 2)
    assert.isAbove(value[1]!.big.length, 20)
    assert.deepStrictEqual(cutList(prefix), { path: "[1].big", kept: value[1]!.big.length })
  })

  it("names the list by the keys the cut ran along, integer-like keys too (which objects put first)", () => {
    const text = JSON.stringify({ b: 1, "10": { items: Array.from({ length: 40 }, (_, i) => ({ id: i })) } }).slice(0, -30)
    const prefix = closeJsonPrefix(text)!
    const list = cutList(prefix)!
    assert.strictEqual(list.path, "10.items")
    assert.strictEqual(list.kept, ((prefix.value as Record<string, { items: Array<unknown> }>)["10"]!.items).length)
    assert.deepStrictEqual(cutList(closeJsonPrefix("[[1,2],[3,4],[5,")!), { path: "", kept: 2 })
  })

  it("gives nothing for a text with no whole value, or found not to be JSON", () => {
    for (const text of ["\"abc", "12", "{\"a\": xyz", "[1, 2, nope", "{\"a\":1}}", "]"]) {
      assert.isUndefined(closeJsonPrefix(text), text)
    }
    // an escape JSON does not have, in a key on the way to the cut
    assert.isUndefined(closeJsonPrefix('{"a\\x": [1, 2, 3, 4, 5, 6'))
    assert.deepStrictEqual(closeJsonPrefix("[1, 2, tr")?.value, [1, 2])
    assert.deepStrictEqual(closeJsonPrefix("{\"a\": \"x\\\"")?.value, {})
  })
})
