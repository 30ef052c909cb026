/**
 * OpenAPI Schema Object (2.0-converted, 3.0, 3.1 or 3.2) → self-contained JSON Schema (2020-12) for a tool input.
 * `$ref`s are inlined; a schema that refers back to itself is expanded once and then cut with a note, and
 * nesting is capped, so a circular or enormous spec never hangs or blows up. 3.0 idioms (`nullable`, boolean
 * `exclusiveMinimum`) become their 3.1 forms; `readOnly` properties are left out of inputs.
 */
import { isObject, type Json, type JsonObject, MappingProblem, type RefResolver } from "../SpecLoader/Refs.ts"

export type Schema = Record<string, unknown> | boolean

/** How many `$ref`s deep one input schema may inline. */
export const MAX_REF_DEPTH = 12
/**
 * How many `$ref`s one input schema may inline in all. Densely interlinked schemas would otherwise grow
 * exponentially when inlined (every path copied out); past the budget, references are cut with a note.
 */
export const MAX_REF_EXPANSIONS = 400

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "array", "object", "null"])

const COPY = [
  "title", "description", "format", "default", "const", "multipleOf", "minLength", "maxLength",
  "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "contentMediaType", "contentEncoding"
] as const

const BOUNDS = [["exclusiveMinimum", "minimum"], ["exclusiveMaximum", "maximum"]] as const

export interface SchemaContext {
  readonly refs: RefResolver
  /** Ids of the `$ref` targets being expanded, outermost first. */
  readonly stack: Array<string>
  /** `$ref`s inlined so far for this tool (see MAX_REF_EXPANSIONS). */
  expansions: number
}

/** Patterns already checked (a spec repeats its patterns in every operation using the same schema). */
const patternChecks = new Map<string, boolean>()

const validPattern = (p: unknown): p is string => {
  if (typeof p !== "string") return false
  let ok = patternChecks.get(p)
  if (ok === undefined) {
    try {
      new RegExp(p, "u")
      ok = true
    } catch {
      ok = false
    }
    if (patternChecks.size < 10_000) patternChecks.set(p, ok)
  }
  return ok
}

/** Converts one schema node found in the document at `url`. Throws MappingProblem for unresolvable refs. */
export const toJsonSchema = (node: Json | undefined, url: string, ctx: SchemaContext, where: string): Schema => {
  if (node === undefined || node === null) return {}
  if (typeof node === "boolean") return node
  if (!isObject(node)) return {}
  if (typeof node["$ref"] === "string") {
    const target = ctx.refs.resolve(node["$ref"], url, where)
    const overrides = typeof node["description"] === "string" ? { description: node["description"] } : {}
    if (ctx.stack.includes(target.id)) {
      return { ...overrides, description: note(overrides.description, `recursive '${target.name}' structure, not expanded further here`) }
    }
    if (ctx.stack.length >= MAX_REF_DEPTH) {
      return { ...overrides, description: note(overrides.description, `nested '${target.name}' structure, not expanded (nesting limit ${MAX_REF_DEPTH})`) }
    }
    if (ctx.expansions >= MAX_REF_EXPANSIONS) {
      return { ...overrides, description: note(overrides.description, `'${target.name}' structure not expanded (schema size limit)`) }
    }
    ctx.expansions++
    ctx.stack.push(target.id)
    try {
      const inner = toJsonSchema(target.value, target.url, ctx, where)
      return typeof inner === "boolean" ? inner : { ...inner, ...overrides }
    } finally {
      ctx.stack.pop()
    }
  }
  return convertObject(node, url, ctx, where)
}

/** A converted schema's `type` as a list (one name or several), or undefined when it has none. */
export const typesOf = (schema: unknown): ReadonlyArray<unknown> | undefined => {
  const type = typeof schema === "object" && schema !== null ? (schema as { type?: unknown }).type : undefined
  return type === undefined ? undefined : Array.isArray(type) ? type : [type]
}

/** Whether a JSON value is of one of `types` (an integer is a number too). */
export const hasType = (value: unknown, types: ReadonlyArray<unknown>): boolean => {
  const t = value === null ? "null" : Array.isArray(value) ? "array" : typeof value === "number" && Number.isInteger(value) ? "integer" : typeof value
  return types.includes(t) || (t === "integer" && types.includes("number"))
}

const INTEGER = /^-?\d+$/
const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/

/** The value as the schema's scalar type when it reads as one, else the value itself. */
export const coerceScalar = (value: unknown, types: ReadonlyArray<unknown> | undefined): unknown => {
  if (types === undefined || hasType(value, types)) return value
  if (typeof value === "string") {
    if (types.includes("integer") && INTEGER.test(value)) return Number(value)
    if (types.includes("number") && NUMBER.test(value)) return Number(value)
    if (types.includes("boolean") && (value === "true" || value === "false")) return value === "true"
    return value
  }
  // a number is turned into text only where no number is allowed (1.5 for an integer stays for validation)
  const numeric = types.includes("integer") || types.includes("number")
  if (types.includes("string") && (typeof value === "boolean" || (typeof value === "number" && !numeric))) return String(value)
  return value
}

/** The string formats whose shape is exact enough to judge an example by (RFC 4122, RFC 3339). */
const FORMAT_SHAPES: Readonly<Record<string, RegExp>> = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  date: /^\d{4}-\d{2}-\d{2}$/,
  "date-time": /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/
}

/**
 * The examples that fit the schema's `type`, `enum`, `pattern` and (for uuid, date and date-time) `format`,
 * as converted here. Some specs give an example that does not: the value as sent (Twitter's array `ids` has
 * the example "1,2,3"), quoted (GitHub's `vcs`, of enum git/…, has "\"git\""), or mistyped (Train Travel's
 * uuid `trip_id` has a 7-digit first group). Shown to a model, it teaches a wrong argument, so it is left out.
 */
export const fittingExamples = (examples: ReadonlyArray<unknown>, schema: Readonly<Record<string, unknown>>): Array<unknown> => {
  const types = typesOf(schema)
  const values = Array.isArray(schema["enum"]) ? schema["enum"] : undefined
  const pattern = validPattern(schema["pattern"]) ? new RegExp(schema["pattern"], "u") : undefined
  const shape = typeof schema["format"] === "string" ? FORMAT_SHAPES[schema["format"]] : undefined
  return examples.filter((e) => {
    if (types !== undefined && !hasType(e, types)) return false
    if (values !== undefined && !values.some((v) => v === e || (typeof v === "object" && JSON.stringify(v) === JSON.stringify(e)))) return false
    if (typeof e !== "string") return true
    return (pattern === undefined || pattern.test(e)) && (shape === undefined || shape.test(e))
  })
}

/** A description with a note in brackets after it (or only the note). */
export const note = (description: string | undefined, text: string): string =>
  description ? `${description} (${text})` : `(${text})`

const convertObject = (node: JsonObject, url: string, ctx: SchemaContext, where: string): Schema => {
  // (no `delete` on `out`: it would turn the object into a slow dictionary for everything that reads it later)
  const out: Record<string, unknown> = {}
  for (const key of COPY) {
    const value = node[key]
    if (value !== undefined) out[key] = value
  }
  if (node["deprecated"] === true) out["deprecated"] = true
  if (validPattern(node["pattern"])) out["pattern"] = node["pattern"]

  // type: a string or (3.1) an array; unknown names (Swagger's "file") are dropped.
  const rawType = node["type"]
  let types: Array<string> | undefined = Array.isArray(rawType)
    ? rawType.filter((t): t is string => typeof t === "string" && JSON_TYPES.has(t))
    : typeof rawType === "string" && JSON_TYPES.has(rawType) ? [rawType] : undefined
  if (typeof rawType === "string" && rawType === "file") {
    types = ["string"]
    out["contentEncoding"] = "base64"
  }
  if (node["format"] === "binary" && (types === undefined || types.includes("string"))) out["contentEncoding"] = "base64"
  const nullable = node["nullable"] === true || node["x-nullable"] === true
  if (types !== undefined && types.length > 0) {
    if (nullable && !types.includes("null")) types.push("null")
    out["type"] = types.length === 1 ? types[0] : types
  }
  if (Array.isArray(node["enum"])) {
    const values = [...node["enum"]]
    if (nullable && !values.includes(null)) values.push(null)
    out["enum"] = values
  }
  // 3.0: boolean exclusiveMinimum/Maximum make minimum/maximum exclusive; 3.1: they are numbers.
  for (const [ex, bound] of BOUNDS) {
    const v = node[ex]
    const b = node[bound]
    if (v === true && typeof b === "number") out[ex] = b
    else {
      if (b !== undefined) out[bound] = b
      if (typeof v === "number") out[ex] = v
    }
  }
  const examples = fittingExamples(Array.isArray(node["examples"]) ? node["examples"] : node["example"] !== undefined ? [node["example"]] : [], out)
  if (examples.length > 0) out["examples"] = examples

  const properties = propertiesOf(node, url, ctx, where)
  if (properties !== undefined) {
    const props: Record<string, Schema> = {}
    const dropped = new Set<string>()
    for (const [name, sub] of Object.entries(properties.map)) {
      if (isReadOnly(sub, properties.url, ctx, where)) {
        dropped.add(name)
        continue
      }
      props[name] = toJsonSchema(sub, properties.url, ctx, where)
    }
    out["properties"] = props
    if (Array.isArray(node["required"])) {
      const required = node["required"].filter((r): r is string => typeof r === "string" && !dropped.has(r))
      if (required.length > 0) out["required"] = [...new Set(required)]
    }
  } else if (Array.isArray(node["required"])) {
    const required = node["required"].filter((r): r is string => typeof r === "string")
    if (required.length > 0) out["required"] = [...new Set(required)]
  }
  const additional = node["additionalProperties"]
  if (typeof additional === "boolean") out["additionalProperties"] = additional
  else if (isObject(additional)) out["additionalProperties"] = toJsonSchema(additional, url, ctx, where)
  if (isObject(node["patternProperties"])) {
    const pp: Record<string, Schema> = {}
    for (const [p, sub] of Object.entries(node["patternProperties"])) {
      if (validPattern(p)) pp[p] = toJsonSchema(sub, url, ctx, where)
    }
    out["patternProperties"] = pp
  }
  if (node["items"] !== undefined) {
    const items = node["items"]
    out["items"] = Array.isArray(items)
      ? {} // Draft-4 tuple form: accept any item rather than mis-validate
      : toJsonSchema(items as Json, url, ctx, where)
  }
  if (Array.isArray(node["prefixItems"])) out["prefixItems"] = node["prefixItems"].map((s) => toJsonSchema(s, url, ctx, where))
  // oneOf becomes anyOf: real APIs' alternatives often overlap, and "exactly one" would reject valid calls.
  const anyOf = node["anyOf"]
  const oneOf = node["oneOf"]
  if (Array.isArray(anyOf) || Array.isArray(oneOf)) {
    const alternatives = [...(Array.isArray(anyOf) ? anyOf : []), ...(Array.isArray(oneOf) ? oneOf : [])]
    if (alternatives.length > 0) out["anyOf"] = alternatives.map((s) => toJsonSchema(s, url, ctx, where))
  }
  if (Array.isArray(node["allOf"])) out["allOf"] = node["allOf"].map((s) => toJsonSchema(s, url, ctx, where))
  if (node["not"] !== undefined && (isObject(node["not"]) || typeof node["not"] === "boolean")) {
    out["not"] = toJsonSchema(node["not"], url, ctx, where)
  }
  return out
}

/** The description of a body field a schema requires but never describes (the `check` report looks for it). */
export const UNDESCRIBED_FIELD = "Required by the API; its spec does not describe this field"

/**
 * A schema's `properties` and the URL their `$ref`s are relative to. The map itself may be a `$ref` (not in
 * JSON Schema, but DigitalOcean shares property sets that way: `properties: {$ref: 'attributes.yml#/ids'}`).
 */
const propertiesOf = (node: JsonObject, url: string, ctx: SchemaContext, where: string): { readonly map: JsonObject; readonly url: string } | undefined => {
  const props = node["properties"]
  if (!isObject(props)) return undefined
  if (typeof props["$ref"] !== "string") return { map: props, url }
  const target = ctx.refs.resolve(props["$ref"], url, where)
  return isObject(target.value) ? { map: target.value, url: target.url } : undefined
}

/** True when a property schema is `readOnly` (servers reject such input), looking through one `$ref`. */
const isReadOnly = (node: Json, url: string, ctx: SchemaContext, where: string): boolean => {
  if (!isObject(node)) return false
  if (node["readOnly"] === true) return true
  if (typeof node["$ref"] === "string") {
    const target = ctx.refs.resolve(node["$ref"], url, where)
    return isObject(target.value) && target.value["readOnly"] === true
  }
  return false
}

/**
 * The top-level object shape of a body schema, when it has one: its properties (each with the document it
 * lives in) and required names, with `allOf` parts merged. Undefined when the body is not a plain object
 * (an array, a scalar, a union, or free-form), in which case it stays one argument.
 */
export const objectShape = (
  node: Json | undefined,
  url: string,
  ctx: SchemaContext,
  where: string
): { readonly properties: Array<readonly [string, Json, string]>; readonly required: Set<string> } | undefined => {
  const properties: Array<readonly [string, Json, string]> = []
  const required = new Set<string>()
  const readOnly = new Set<string>()
  const seen = new Set<string>()
  const visit = (n: Json | undefined, u: string, depth: number): boolean => {
    if (depth > 8 || !isObject(n)) return false
    let value: Json = n
    let at = u
    if (typeof n["$ref"] === "string") {
      const r = ctx.refs.resolve(n["$ref"], u, where)
      if (seen.has(r.id)) return false
      seen.add(r.id)
      value = r.value
      at = r.url
    }
    if (!isObject(value)) return false
    if (value["oneOf"] !== undefined || value["anyOf"] !== undefined || value["not"] !== undefined) return false
    if (value["type"] !== undefined && value["type"] !== "object") return false
    let any = false
    const own = propertiesOf(value, at, ctx, where)
    if (own !== undefined) {
      for (const [name, sub] of Object.entries(own.map)) {
        if (isReadOnly(sub, own.url, ctx, where)) {
          readOnly.add(name)
          continue
        }
        properties.push([name, sub, own.url])
        any = true
      }
    }
    // (also beside an allOf, naming properties its parts declare: DigitalOcean's update bodies)
    if (Array.isArray(value["required"])) for (const r of value["required"]) if (typeof r === "string") required.add(r)
    if (Array.isArray(value["allOf"])) {
      for (const part of value["allOf"]) {
        if (!visit(part, at, depth + 1)) return false
        any = true
      }
    }
    return any
  }
  if (!visit(node, url, 0)) return undefined
  // a property listed twice (allOf parts overlapping) keeps its last definition
  const byName = new Map(properties.map((p) => [p[0], p] as const))
  // a required property the schema never describes (DigitalOcean's uptime check requires `method`) is still
  // one the API wants: an argument of any type, said so, rather than one the call could never send
  for (const name of required) {
    if (!byName.has(name) && !readOnly.has(name)) {
      byName.set(name, [name, { description: UNDESCRIBED_FIELD }, url])
    }
  }
  return { properties: [...byName.values()], required: new Set([...required].filter((r) => byName.has(r))) }
}

export { MappingProblem }
