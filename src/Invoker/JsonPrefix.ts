/**
 * A valid JSON document that a cut-off JSON text begins with: the text up to a whole value, with the
 * containers still open there closed. A list cut in its 413th entry keeps its first 412; an object cut inside
 * a member keeps the members before it. Used for answers over the size cap, so the model gets JSON it can
 * read rather than text that stops mid-string.
 */

const QUOTE = 34, BACKSLASH = 92, COLON = 58, COMMA = 44
const OPEN_OBJECT = 123, CLOSE_OBJECT = 125, OPEN_ARRAY = 91, CLOSE_ARRAY = 93

/** The beginning of a number or literal (the rest is checked by JSON.parse of the result). */
const SCALAR_START = /^(-?\d|-$|t(r(ue?)?)?$|true|f(a(l(se?)?)?)?$|false|n(u(ll?)?)?$|null)/

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9
const endsScalar = (c: number) => c === COMMA || c === CLOSE_ARRAY || c === CLOSE_OBJECT || isSpace(c)

export interface JsonPrefix {
  /** The complete JSON text, and its value. */
  readonly json: string
  readonly value: unknown
  /** How many containers were open at the cut and closed here. */
  readonly closed: number
  /** The keys and indexes from the top to the innermost of them (one fewer than `closed`). */
  readonly path: ReadonlyArray<string | number>
}

/**
 * The JSON prefix of a cut-off JSON text, or undefined when not even one value is complete, or the text is
 * found not to be JSON (the scan follows the nesting, quotes and scalars, not every rule of the grammar). Of
 * the containers open where the text stops (say the answer object, its `items` list and the entry being
 * cut), it cuts after the last whole member of the outermost one whose cut keeps at least three quarters of
 * the text: after the last whole entry of `items`, not in the middle of an entry, and not before `items`
 * began.
 */
export const closeJsonPrefix = (text: string): JsonPrefix | undefined => {
  // closers of the open containers, innermost first; for each open object, whether a member's value is being read
  let closers = ""
  const inValue: Array<boolean> = []
  // per depth (number of open containers), the end of the last whole value directly inside, and the closers there
  const lastEnd: Array<number> = []
  const lastClosers: Array<string> = []
  const lastEmpty: Array<boolean> = []
  // per depth, the member in progress: a list's index, or where an object's key is in the text (read at the end)
  const at: Array<number> = []
  const keyEnd: Array<number> = []
  const n = text.length
  let i = 0
  /** A value ended just before `end` (it began at `start`): a place to cut, unless it was an object's key. */
  const valueEnded = (end: number, start = end) => {
    if (closers.charCodeAt(0) === CLOSE_OBJECT) {
      if (!inValue[inValue.length - 1]) {
        at[closers.length] = start
        keyEnd[closers.length] = end
        return
      }
      inValue[inValue.length - 1] = false
    } else if (closers.length > 0) {
      at[closers.length]!++
    }
    lastEnd[closers.length] = end
    lastClosers[closers.length] = closers
    lastEmpty[closers.length] = false
  }
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      // the closing quote: the next one not escaped by an odd number of backslashes
      let j = text.indexOf("\"", i + 1)
      while (j > 0) {
        let k = j - 1
        while (text.charCodeAt(k) === BACKSLASH) k--
        if ((j - 1 - k) % 2 === 0) break
        j = text.indexOf("\"", j + 1)
      }
      if (j < 0) break // cut inside the string
      const start = i
      i = j + 1
      valueEnded(i, start)
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      closers = (c === OPEN_OBJECT ? "}" : "]") + closers
      if (c === OPEN_OBJECT) inValue.push(false)
      at[closers.length] = 0
      keyEnd[closers.length] = c === OPEN_OBJECT ? 0 : -1 // -1: a list
      i++
      // cut here, the new container is empty
      lastEnd[closers.length] = i
      lastClosers[closers.length] = closers
      lastEmpty[closers.length] = true
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (closers.charCodeAt(0) !== (c === CLOSE_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return undefined
      closers = closers.slice(1)
      if (c === CLOSE_OBJECT) inValue.pop()
      i++
      valueEnded(i)
    } else if (c === COLON) {
      if (inValue.length === 0) return undefined
      inValue[inValue.length - 1] = true
      i++
    } else if (c === COMMA || isSpace(c)) {
      i++
    } else {
      // a number, true, false or null: whole only when something follows it
      let j = i + 1
      while (j < n && !endsScalar(text.charCodeAt(j))) j++
      if (!SCALAR_START.test(text.slice(i, Math.min(j, i + 6)))) return undefined
      if (j >= n) break
      i = j
      valueEnded(i)
    }
  }
  const open = closers.length
  if (open === 0) return lastEnd[0] === undefined ? undefined : parsed(text.slice(0, lastEnd[0]), 0, () => [])
  // the outermost cut losing at most a quarter; else the innermost that does not end in an empty container
  // (which would read as an entry with nothing in it); else the innermost
  let depth = 1
  while (depth < open && n - lastEnd[depth]! > n / 4) depth++
  if (n - lastEnd[depth]! > n / 4) {
    while (depth > 1 && lastEmpty[depth]) depth--
    if (lastEmpty[depth]) depth = open
  }
  const keys = () => {
    const path: Array<string | number> = []
    for (let d = 1; d < depth; d++) path.push(keyEnd[d] === -1 ? at[d]! : JSON.parse(text.slice(at[d], keyEnd[d])) as string)
    return path
  }
  return parsed(text.slice(0, lastEnd[depth]!) + lastClosers[depth]!, depth, keys)
}

const parsed = (json: string, closed: number, path: () => ReadonlyArray<string | number>): JsonPrefix | undefined => {
  try {
    return { json, value: JSON.parse(json), closed, path: path() }
  } catch {
    return undefined // not JSON after all (the scan only checks the structure)
  }
}

/**
 * Where a closed prefix was cut, for the note: the innermost list among the containers it closed (`path` leads
 * from the top to the innermost) and how many entries it kept, e.g. `items` and 412.
 */
export const cutList = (prefix: Pick<JsonPrefix, "value" | "path">): { readonly path: string; readonly kept: number } | undefined => {
  let found: { path: string; kept: number } | undefined
  let shown = ""
  let v = prefix.value
  for (const key of [...prefix.path, undefined]) {
    if (Array.isArray(v)) found = { path: shown, kept: v.length }
    if (key === undefined || typeof v !== "object" || v === null) break
    shown = typeof key === "number" ? `${shown}[${key}]` : shown === "" ? key : `${shown}.${key}`
    v = (v as Record<string | number, unknown>)[key]
  }
  return found
}
