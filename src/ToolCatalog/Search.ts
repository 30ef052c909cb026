/**
 * Local ranked text search over a catalog's operations (names, paths, tags, summaries, descriptions),
 * for discovery mode. No external service: a small TF-IDF index built once at start.
 */
import type { Tool } from "../domain/Tool.ts"

const STOP = new Set([
  "a", "an", "the", "of", "to", "for", "by", "in", "on", "at", "and", "or", "with", "from", "is", "are", "be",
  "this", "that", "it", "as", "api", "me", "my", "i", "you", "your", "all", "can", "how", "do", "does"
])

/** Words of a text: camelCase and snake_case split, lower-cased, naive plural stemming. */
export const words = (text: string): Array<string> =>
  text
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0 && !STOP.has(w))
    .map(stem)

const stem = (w: string): string =>
  w.length > 4 && w.endsWith("ies") ? `${w.slice(0, -3)}y`
  : w.length > 3 && w.endsWith("s") && !w.endsWith("ss") ? w.slice(0, -1)
  : w

interface Doc {
  readonly tool: Tool
  /** Each word's weight: that of the most important field it appears in (name 3, path/tags/summary 2, text 1). */
  readonly weights: Map<string, number>
  /** The words of the tool's name: a query covering all of them is most likely asking for this tool. */
  readonly nameWords: ReadonlyArray<string>
}

export interface SearchHit {
  readonly tool: Tool
  readonly score: number
}

export interface SearchIndex {
  readonly search: (query: string, options?: { readonly limit?: number; readonly tag?: string }) => ReadonlyArray<SearchHit>
}

/**
 * Builds a search index a few tools at a time (`step` until a deadline; true once every tool is in it), so a
 * big API's index (0.05-0.15 s for a thousand operations) can be made in the background; `index` completes
 * whatever is left.
 */
export interface IndexBuilder {
  readonly step: (until: number) => boolean
  readonly index: () => SearchIndex
}

const docOf = (tool: Tool): Doc => {
  const weights = new Map<string, number>()
  const add = (text: string | undefined, weight: number) => {
    if (!text) return
    for (const w of words(text)) weights.set(w, Math.max(weights.get(w) ?? 0, weight))
  }
  add(tool.name, 3)
  if (tool.operationId !== tool.name) add(tool.operationId, 2)
  add(tool.path.replace(/\{[^}]*\}/g, " "), 2)
  for (const tag of tool.tags) add(tag, 2)
  add(tool.title, 2)
  add(tool.description.slice(0, 400), 1)
  add(tool.method, 0.5)
  return { tool, weights, nameWords: [...new Set(words(tool.name))] }
}

export const buildIndex = (tools: ReadonlyArray<Tool>): SearchIndex => indexBuilder(tools).index()

export const indexBuilder = (tools: ReadonlyArray<Tool>): IndexBuilder => {
  const docs: Array<Doc> = []
  const step = (until: number) => {
    while (docs.length < tools.length && performance.now() < until) docs.push(docOf(tools[docs.length]!))
    return docs.length === tools.length
  }
  let built: SearchIndex | undefined
  return { step, index: () => built ??= (step(Infinity), searchOver(docs)) }
}

const searchOver = (docs: ReadonlyArray<Doc>): SearchIndex => {
  const df = new Map<string, number>()
  for (const d of docs) for (const w of d.weights.keys()) df.set(w, (df.get(w) ?? 0) + 1)
  const vocabulary = [...df.keys()]
  const idf = (w: string) => Math.log(1 + docs.length / (df.get(w) ?? docs.length))

  const search: SearchIndex["search"] = (query, options = {}) => {
    const terms = [...new Set(words(query))]
    if (terms.length === 0) return []
    // a query word also matches longer words it starts (repo → repository), at half weight
    const expanded = terms.map((t) => ({
      exact: t,
      prefixed: t.length >= 3 ? vocabulary.filter((v) => v !== t && v.startsWith(t)) : []
    }))
    const tag = options.tag?.toLowerCase()
    const hits: Array<SearchHit> = []
    for (const d of docs) {
      if (tag !== undefined && !d.tool.tags.some((t) => t.toLowerCase() === tag)) continue
      let score = 0
      let matched = 0
      for (const { exact, prefixed } of expanded) {
        let s = (d.weights.get(exact) ?? 0) * idf(exact)
        for (const p of prefixed) s += 0.5 * (d.weights.get(p) ?? 0) * idf(p)
        if (s > 0) matched++
        score += s
      }
      if (score === 0) continue
      // operations matching more of the query's words rank first, and more so when the query names the tool
      const covered = d.nameWords.filter((w) => terms.includes(w)).length / Math.max(1, d.nameWords.length)
      hits.push({ tool: d.tool, score: score * (matched / expanded.length) ** 2 * (1 + covered) })
    }
    hits.sort((a, b) => b.score - a.score || a.tool.name.localeCompare(b.tool.name))
    return hits.slice(0, Math.max(1, Math.min(options.limit ?? 10, 50)))
  }
  return { search }
}

const normalized = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, "")

/** Whether two strings are at most `max` insertions, deletions or substitutions apart. */
const withinEdits = (a: string, b: string, max: number): boolean => {
  if (Math.abs(a.length - b.length) > max) return false
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    let best = i
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      best = Math.min(best, row[j]!)
    }
    if (best > max) return false
    previous = row
  }
  return previous[b.length]! <= max
}

/**
 * The names a mistyped tool name may have meant: those equal to it but for case and separators
 * (`get_pet` for `getPet`), else those at most two edits from it; three at most.
 */
export const closeNames = (name: string, names: ReadonlyArray<string>): Array<string> => {
  const wanted = normalized(name)
  if (wanted.length === 0 || name.length > 128) return []
  const same = names.filter((n) => normalized(n) === wanted)
  return (same.length > 0 ? same : names.filter((n) => withinEdits(normalized(n), wanted, 2))).slice(0, 3)
}
