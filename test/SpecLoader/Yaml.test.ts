/**
 * The YAML reader of specs and config files: YAML 1.2 core values, duplicate keys as asked, one document,
 * errors that name the line, under-indented continuation lines read as other parsers read them, and aliases
 * that cannot make a document expand or nest without bound.
 */
import { assert, describe, it } from "@effect/vitest"
import { parseYaml } from "../../src/SpecLoader/Yaml.ts"

const last = (text: string) => parseYaml(text, { duplicateKeys: "last", maxDepth: 256 })
const error = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    return (e as Error).message
  }
  return assert.fail("expected an error")
}

describe("parseYaml", () => {
  it("reads YAML 1.2 core values: dates stay text, '<<' is an ordinary key, '__proto__' is an ordinary key", () => {
    const doc = last("d: 2020-01-01\nv: 1.0\nhex: 0x1F\nnone: ~\nyes: yes\nbase: &b {x: 1}\nc:\n  <<: *b\n__proto__: {polluted: 1}\n")
    // (JSON.parse makes "__proto__" an own key, as the YAML reader must; an object literal would set the prototype)
    assert.deepStrictEqual(doc, JSON.parse(
      `{"d":"2020-01-01","v":1,"hex":31,"none":null,"yes":"yes","base":{"x":1},"c":{"<<":{"x":1}},"__proto__":{"polluted":1}}`
    ))
    assert.isUndefined(({} as Record<string, unknown>)["polluted"])
  })

  it("keeps the last of duplicate keys for specs, and refuses them, naming the line, where asked", () => {
    assert.deepStrictEqual(last("a: 1\nb: 2\na: 3\n"), { a: 3, b: 2 })
    assert.strictEqual(error(() => parseYaml("a: 1\nb: 2\na: 3\n", { duplicateKeys: "error", maxDepth: 256 })), "duplicated mapping key at line 3, column 1")
  })

  it("gives null for a text with no document, and refuses more than one", () => {
    assert.isNull(last(""))
    assert.isNull(last("# only a comment\n"))
    assert.include(error(() => last("a: 1\n---\nb: 2\n")), "the text holds 2 YAML documents")
  })

  it("says what broke and where, on one line", () => {
    const message = error(() => last("a:\n  b: [1, 2\n  c: 3\n"))
    assert.match(message, / at line \d+, column \d+$/)
    assert.notInclude(message, "\n")
  })

  it("reads a [...] list or a quoted text continued with too little indentation as PyYAML does, naming the lines", () => {
    const mended: Array<ReadonlyArray<number>> = []
    const lenient = (text: string) => parseYaml(text, { duplicateKeys: "last", maxDepth: 256, onMended: (lines) => mended.push(lines) })
    const doc = lenient("s:\n  required: [a, b,\n  c,\n  d]\n  q: \"one\n  two\"\n  n: 1\n")
    assert.deepStrictEqual(doc, { s: { required: ["a", "b", "c", "d"], q: "one two", n: 1 } })
    assert.deepStrictEqual(mended, [[3, 4, 6]])
    // indented as YAML wants: nothing to mend
    assert.deepStrictEqual(lenient("s:\n  required: [a, b,\n    c]\n"), { s: { required: ["a", "b", "c"] } })
    assert.strictEqual(mended.length, 1)
    // each mended line costs a parse of the whole text: past 50 of them the text fails as YAML says it should
    const many = `s:\n  required: [a0,\n${Array.from({ length: 60 }, (_, i) => `  a${i + 1},`).join("\n")}\n  z]\n`
    assert.include(error(() => lenient(many)), "deficient indentation at line 3")
  })

  it("accepts an anchor used many times, as specs share schemas", () => {
    const doc = last(`shared: &s {type: object, properties: {id: {type: integer}}}\n${Array.from({ length: 200 }, (_, i) => `p${i}: *s`).join("\n")}\n`) as Record<string, unknown>
    assert.deepStrictEqual(doc["p199"], { type: "object", properties: { id: { type: "integer" } } })
  })

  it("refuses aliases that expand a document beyond bounds, or nest it without end", () => {
    let laughs = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for (let i = 1; i < 12; i++) laughs += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(", ")}]\n`
    assert.include(error(() => last(laughs)), "its aliases (*name) expand it to more than 1000000 collections")
    // each anchor nests 200 levels, within the parser's bound; through the alias the whole nests 400
    const deep = (inner: string) => `${"[".repeat(200)}${inner}${"]".repeat(200)}`
    assert.include(error(() => last(`a: &a ${deep("1")}\nb: ${deep("*a")}\n`)), "through its aliases (*name) the document nests more than 256 levels deep")
    // an alias inside its own anchor makes a cycle
    assert.include(error(() => last("a: &x [*x]\n")), "nests more than 256 levels deep")
  })
})
