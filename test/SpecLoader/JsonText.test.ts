/**
 * JSON specs are parsed from an ASCII copy of their bytes, each non-ASCII character escaped: the values must
 * be exactly those of `JSON.parse` on the UTF-8 text, and anything that is not plain valid JSON must be left
 * to the usual parse (YAML, and the error messages of invalid JSON).
 */
import { assert, describe, it } from "@effect/vitest"
import { parseJsonBytes } from "../../src/SpecLoader/JsonText.ts"

const bytes = (...parts: Array<string | ReadonlyArray<number>>): Uint8Array =>
  Buffer.concat(parts.map((p) => typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p)))

/** A document whose non-ASCII characters are a few among many ASCII ones, as in most specs. */
const sparse = (...parts: Array<string | ReadonlyArray<number>>): Uint8Array =>
  bytes(`{"description": "${"plain text ".repeat(200)}", "doc": `, ...parts, "}")

/** What the plain route gives: the UTF-8 text (byte order mark dropped), JSON-parsed. */
const plain = (b: Uint8Array): unknown => {
  const text = Buffer.from(b).toString("utf8")
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
}

/** A seeded generator, so that a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

describe("parseJsonBytes", () => {
  it("gives JSON.parse's values for non-ASCII text in keys and values: 2-, 3- and 4-byte characters", () => {
    const b = sparse(`{"café": "naïve – “quoted” ✓ 😀", "list": ["日本語", "a\\u00e9b", "\\ud83d\\ude00"], "n": -1.5e3}`)
    const doc = parseJsonBytes(b) as { doc: Record<string, string> }
    assert.deepStrictEqual(doc, plain(b))
    assert.strictEqual(doc.doc["café"], "naïve – “quoted” ✓ 😀")
  })

  it("reads a document with a byte order mark and leading white space, and an all-ASCII one", () => {
    const withBom = bytes([0xef, 0xbb, 0xbf], `\r\n\t [1, "ü", "${"x".repeat(100)}"]`)
    assert.deepStrictEqual(parseJsonBytes(withBom), [1, "ü", "x".repeat(100)])
    assert.deepStrictEqual(parseJsonBytes(bytes(`{"a": {"b": [true, null, "x"]}}`)), { a: { b: [true, null, "x"] } })
  })

  it("turns malformed UTF-8 into U+FFFD exactly as decoding the whole text does", () => {
    // a lone continuation byte, a truncated 3-byte sequence, an overlong form, an encoded surrogate
    const b = sparse(`{"a": "x`, [0x80], `y", "b": "`, [0xe2, 0x82], `", "c": "`, [0xc0, 0xaf], `", "d": "`, [0xed, 0xa0, 0x80], `"}`)
    const doc = parseJsonBytes(b) as { doc: Record<string, string> }
    assert.deepStrictEqual(doc, plain(b))
    assert.strictEqual(doc.doc["a"], "x\ufffdy")
  })

  it("gives the same values on a large random document, non-ASCII runs anywhere", () => {
    const next = random(42)
    const ascii = ["a", "Z", " ", "0", "\\n", "\\\"", "/"]
    const other = ["é", "ß", "€", "中", "😀", "\u{10ffff}", "\u00a0", "\u2028", "é€"]
    const pick = (pool: ReadonlyArray<string>) => pool[Math.floor(next() * pool.length)]
    // one non-ASCII piece in about one string in a hundred, as in real specs
    const text = (n: number) => {
      const chars = Array.from({ length: n }, () => pick(ascii))
      if (n > 0 && next() < 0.01) chars[Math.floor(next() * n)] = pick(other)
      return chars.join("")
    }
    const entries = Array.from({ length: 3000 }, (_, i) => `"${text(3)}${i}": ["${text(Math.floor(next() * 400))}", ${i}]`)
    const b = bytes(`{${entries.join(",\n")}}`)
    const doc = parseJsonBytes(b)
    assert.isDefined(doc)
    assert.deepStrictEqual(doc, plain(b))
  })

  it("leaves YAML, invalid JSON and non-ASCII outside strings to the usual parse", () => {
    assert.isUndefined(parseJsonBytes(bytes("openapi: 3.0.0\npaths: {}\n")))
    assert.isUndefined(parseJsonBytes(bytes("{openapi: 3.0.0, paths: {}}"))) // YAML flow style
    assert.isUndefined(parseJsonBytes(bytes(`{"a": 1,}`)))
    assert.isUndefined(parseJsonBytes(sparse(`{"a": 1 é}`)))
    assert.isUndefined(parseJsonBytes(sparse(`{"a":\u00a01}`))) // no-break space is not JSON white space
    assert.isUndefined(parseJsonBytes(bytes("")))
  })

  it("does not make an invalid escape valid: a backslash before a non-ASCII character", () => {
    // escaped, `"\é"` would read as `"\\u00e9"`, a backslash and "u00e9"
    const b = sparse(`{"a": "x\\é"}`)
    assert.throws(() => plain(b))
    assert.isUndefined(parseJsonBytes(b))
  })

  it("leaves a mostly non-ASCII text, or one with non-ASCII characters all over, to the plain decode", () => {
    assert.isUndefined(parseJsonBytes(bytes(`{"名前": "日本語の説明"}`)))
    const spread = bytes(`[${Array.from({ length: 500 }, (_, i) => `"item ${i} … ${"x".repeat(100)}"`).join(",")}]`)
    assert.isUndefined(parseJsonBytes(spread))
    assert.deepStrictEqual(plain(spread), JSON.parse(Buffer.from(spread).toString("utf8")))
  })
})
