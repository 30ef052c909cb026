/**
 * `$ref` resolution over a set of already-loaded documents (the entry file plus every file its relative
 * `$ref`s reach). Resolution is synchronous and lazy: only what an operation uses is ever looked at, and a
 * broken reference costs only the operation that uses it.
 */

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }
export type JsonObject = { readonly [k: string]: Json }

export const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v)

/** A problem found while mapping, thrown inside the pure mapping code and caught at the operation boundary. */
export class MappingProblem extends Error {
  readonly pointer: string
  readonly detail: string
  constructor(pointer: string, detail: string) {
    super(`${pointer}: ${detail}`)
    this.pointer = pointer
    this.detail = detail
  }
}

export interface Resolved {
  readonly value: Json
  /** The document the value lives in: relative `$ref`s inside it resolve against this URL. */
  readonly url: string
  /** Canonical identity of the target (`url#pointer`), used for cycle detection. */
  readonly id: string
  /** Last path segment of the target pointer (a schema's component name), for notes. */
  readonly name: string
}

/** Splits a `$ref` into its document URL (absolute) and its JSON pointer. */
export const splitRef = (ref: string, baseUrl: string): { readonly url: string; readonly pointer: string } => {
  const hash = ref.indexOf("#")
  const file = hash === -1 ? ref : ref.slice(0, hash)
  const pointer = hash === -1 ? "" : ref.slice(hash + 1)
  const url = file === "" ? baseUrl : new URL(file, baseUrl).href
  return { url, pointer }
}

const decodeSegment = (segment: string): string => {
  let s = segment
  try {
    s = decodeURIComponent(segment)
  } catch {
    // a literal '%' that is not an escape: use the segment as written
  }
  return s.replace(/~1/g, "/").replace(/~0/g, "~")
}

export const pointerGet = (doc: Json, pointer: string): Json | undefined => {
  if (pointer === "" || pointer === "/") return doc
  if (!pointer.startsWith("/")) return undefined
  let current: Json | undefined = doc
  for (const raw of pointer.slice(1).split("/")) {
    const key = decodeSegment(raw)
    if (Array.isArray(current)) current = (current as ReadonlyArray<Json>)[Number(key)]
    else if (isObject(current)) current = Object.hasOwn(current, key) ? current[key] : undefined
    else return undefined
    if (current === undefined) return undefined
  }
  return current
}

/** Escapes one JSON pointer segment. */
export const escapeSegment = (s: string | number): string => String(s).replace(/~/g, "~0").replace(/\//g, "~1")

/** Readable location: `paths./pets/{id}.get.parameters[2]` for JSON pointer `/paths/~1pets~1{id}/get/parameters/2`. */
export const readablePointer = (segments: ReadonlyArray<string | number>): string =>
  segments.reduce<string>((acc, s) => typeof s === "number" ? `${acc}[${s}]` : acc === "" ? s : `${acc}.${s}`, "")

export class RefResolver {
  readonly documents: ReadonlyMap<string, Json>
  /** Documents that could not be loaded, with why, keyed by absolute URL. */
  readonly failures: ReadonlyMap<string, string>
  constructor(documents: ReadonlyMap<string, Json>, failures: ReadonlyMap<string, string>) {
    this.documents = documents
    this.failures = failures
  }

  /** Targets already resolved, by base URL and `$ref` (documents do not change; a spec repeats its refs a lot). */
  private readonly resolved = new Map<string, Resolved>()

  /** Resolves `ref` found in the document at `baseUrl`, following `$ref` chains. Throws MappingProblem. */
  resolve(ref: string, baseUrl: string, where: string): Resolved {
    const key = `${baseUrl}\u0000${ref}`
    let found = this.resolved.get(key)
    if (found === undefined) {
      found = this.resolveUncached(ref, baseUrl, where)
      this.resolved.set(key, found)
    }
    return found
  }

  private resolveUncached(ref: string, baseUrl: string, where: string): Resolved {
    let currentRef = ref
    let currentBase = baseUrl
    const seen = new Set<string>()
    for (;;) {
      const { url, pointer } = splitRef(currentRef, currentBase)
      const id = `${url}#${pointer}`
      if (seen.has(id)) throw new MappingProblem(where, `$ref '${ref}' is a loop of references to itself`)
      seen.add(id)
      const doc = this.documents.get(url)
      if (doc === undefined) {
        const why = this.failures.get(url) ?? "the document was not loaded"
        throw new MappingProblem(where, `$ref '${ref}' cannot be resolved: ${why}`)
      }
      const value = pointerGet(doc, pointer)
      if (value === undefined) {
        throw new MappingProblem(where, `$ref '${ref}' not found`)
      }
      if (isObject(value) && typeof value["$ref"] === "string") {
        currentRef = value["$ref"]
        currentBase = url
        continue
      }
      const segments = pointer.split("/")
      return { value, url, id, name: decodeSegment(segments[segments.length - 1] ?? "") }
    }
  }

  /** Dereferences one level: returns the value itself when it is not a `$ref`. */
  deref(value: Json, baseUrl: string, where: string): { readonly value: Json; readonly url: string } {
    if (isObject(value) && typeof value["$ref"] === "string") {
      const r = this.resolve(value["$ref"], baseUrl, where)
      return { value: r.value, url: r.url }
    }
    return { value, url: baseUrl }
  }
}
