/**
 * YAML into plain JSON values, with js-yaml and its YAML 1.2 core schema: no custom tags, no timestamps, no
 * merge keys (`<<` is an ordinary key, as YAML 1.2 has it), one document per text, nesting capped (`maxDepth`).
 * Loaded only when a text is YAML (a JSON spec, and a restart from the catalog cache, do without it); it imports
 * nothing of the application, so loading it loads js-yaml and no more.
 *
 * js-yaml gives an aliased node (`*name`) as the very object of its anchor instead of a copy, so a "billion
 * laughs" document parses small but would expand without end in whatever walks it later; each document is
 * walked once here, and refused when its aliases would make it more than `maxNodes` collections (far more than
 * any document without aliases has) or deeper than `maxDepth`.
 */
import { loadAll, YAMLException } from "js-yaml"

/** Collections a document may expand to through its aliases: the larger of this and twice its length. */
const MIN_NODE_BUDGET = 1_000_000

const describe = (e: unknown, maxDepth: number): string => {
  if (e instanceof YAMLException) {
    const where = e.mark === undefined ? "" : ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}`
    return e.reason.startsWith("nesting exceeded maxDepth")
      ? `the document is nested more than ${maxDepth} levels deep${where}`
      : `${e.reason}${where}`
  }
  // (not a stack overflow: the parser and the walk below both stop at `maxDepth`)
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!
}

/** Throws when walking `doc` would visit more than `maxNodes` collections or go deeper than `maxDepth`. */
const checkExpansion = (doc: unknown, maxNodes: number, maxDepth: number): void => {
  let nodes = 0
  const walk = (value: unknown, depth: number): void => {
    if (typeof value !== "object" || value === null) return
    if (depth > maxDepth) throw new Error(`through its aliases (*name) the document nests more than ${maxDepth} levels deep`)
    if (++nodes > maxNodes) {
      throw new Error(`its aliases (*name) expand it to more than ${maxNodes} collections, as a resource exhaustion ("billion laughs") attack would`)
    }
    if (Array.isArray(value)) for (const item of value) walk(item, depth + 1)
    else for (const key in value) walk((value as Record<string, unknown>)[key], depth + 1)
  }
  walk(doc, 1)
}

/**
 * The most under-indented lines mended in one text, and the most text parsed again for them in all: each costs
 * a parse of the whole text (a large spec with many such lines fails as before, rather than taking minutes).
 */
const MAX_MENDED_LINES = 50
const MAX_REPARSED_CHARS = 32 * 1024 * 1024

const indentOf = (line: string) => line.length - line.trimStart().length

/**
 * YAML wants the lines that continue a flow collection (`[a, b,` … `c]`) or a quoted text indented more than the
 * key they belong to. PyYAML and go-yaml read them when they are not, and specs written for those have such
 * lines (the Pouch engine's Swagger file, with a `required: [...]` list over five lines). Where js-yaml stops at
 * one ("deficient indentation", which it says of nothing else), that line is indented two spaces more than the
 * line above it, which changes no value (leading space on such a line is not part of it), and the text is
 * parsed again. The documents, and the mended lines (1-based), or undefined when that does not make it parse.
 */
const mendIndentation = (text: string, error: unknown, parse: (text: string) => Array<unknown>) => {
  const lines = text.split("\n")
  const mended: Array<number> = []
  const budget = Math.min(MAX_MENDED_LINES, Math.floor(MAX_REPARSED_CHARS / Math.max(1, text.length)))
  while (error instanceof YAMLException && error.reason === "deficient indentation" && error.mark !== undefined && mended.length < budget) {
    const at = error.mark.line
    let above = at - 1
    while (above >= 0 && lines[above]!.trim() === "") above--
    const wanted = above < 0 ? 0 : indentOf(lines[above]!) + 2
    if (at >= lines.length || indentOf(lines[at]!) >= wanted) return undefined
    lines[at] = " ".repeat(wanted - indentOf(lines[at]!)) + lines[at]
    mended.push(at + 1)
    try {
      return { docs: parse(lines.join("\n")), mended }
    } catch (e) {
      error = e
    }
  }
  return undefined
}

/**
 * Parses one YAML document (null when the text holds none: empty, or only comments). Duplicate keys either
 * keep the last value (as JSON.parse does; specs in the wild have them) or are an error. Lines that continue a
 * `[...]`, `{...}` or quoted value with too little indentation are read as other YAML parsers read them, and
 * reported to `onMended` (see mendIndentation). Throws an Error whose message says what is wrong and where
 * (line and column), without the parser's source snippet.
 */
export const parseYaml = (
  text: string,
  options: {
    readonly duplicateKeys: "last" | "error"
    readonly maxDepth: number
    readonly onMended?: (lines: ReadonlyArray<number>) => void
  }
): unknown => {
  const parse = (t: string) => loadAll(t, { json: options.duplicateKeys === "last", maxDepth: options.maxDepth })
  let docs: Array<unknown>
  try {
    docs = parse(text)
  } catch (e) {
    const mended = mendIndentation(text, e, parse)
    if (mended === undefined) throw new Error(describe(e, options.maxDepth))
    docs = mended.docs
    options.onMended?.(mended.mended)
  }
  if (docs.length > 1) throw new Error(`the text holds ${docs.length} YAML documents (separated by '---'); expected one`)
  const doc = docs[0] ?? null
  checkExpansion(doc, Math.max(MIN_NODE_BUDGET, 2 * text.length), options.maxDepth)
  return doc
}
