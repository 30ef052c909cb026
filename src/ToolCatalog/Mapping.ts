/**
 * Operations → tools, by DESIGN.md's mapping rules. Pure and deterministic: the same spec and options give
 * the same tools in the same order. An operation that cannot be mapped becomes a Problem and is skipped.
 */
import type { LoadedSpec } from "../SpecLoader.ts"
import { isObject, type Json, type JsonObject, MappingProblem, readablePointer } from "../SpecLoader/Refs.ts"
import {
  type BodyBinding, type BodyField, type BodyKind, type HttpMethod, type ParamBinding, type ParamLocation, type Problem, SAFE_METHODS,
  type Tool
} from "../domain/Tool.ts"
import { coerceScalar, fittingExamples, note, objectShape, type Schema, type SchemaContext, toJsonSchema, typesOf } from "./Schema.ts"
import { securityOf } from "../Auth/Requirements.ts"
import { isTextType } from "../Upstream/Transport.ts"

export interface MappingOptions {
  readonly baseUrl: string | undefined
  readonly includeTags: ReadonlyArray<string>
  readonly excludeTags: ReadonlyArray<string>
  readonly includeOperations: ReadonlyArray<string>
  readonly excludeOperations: ReadonlyArray<string>
  /** Path templates whose operations are kept / dropped (`*` one segment, `**` any number of them). */
  readonly includePaths?: ReadonlyArray<string>
  readonly excludePaths?: ReadonlyArray<string>
  /** Only GET, HEAD and OPTIONS operations. */
  readonly readOnly?: boolean
  /** Leave out operations marked `deprecated: true`. */
  readonly excludeDeprecated?: boolean
  readonly toolNameMaxLength: number
  readonly descriptionMaxLength: number
  /** Namespace of an additional spec: its tools are named `<prefix>_<name>` and carry `spec: <prefix>`. */
  readonly namePrefix?: string
  /** Header parameters the operator sets for every request (API_HEADERS) or clients send (MCP_FORWARD_HEADERS), lower-cased: not arguments. */
  readonly fixedHeaders?: ReadonlyArray<string>
  /** Values for the spec's server URL variables (SERVER_VARIABLES), over their defaults. */
  readonly serverVariables?: Readonly<Record<string, string>>
  /** The operator's tool names, descriptions and fixed arguments (the config file's `operations:` entries), by operationId. */
  readonly toolOverrides?: Readonly<Record<string, {
    readonly tool_name?: string
    readonly description?: string
    readonly arguments?: Readonly<Record<string, unknown>>
  }>>
  /** Argument values always sent, for every operation (FIXED_ARGUMENTS) and per tag (`operations: tag:<name>: arguments`). */
  readonly fixedArguments?: Readonly<Record<string, unknown>>
  readonly tagArguments?: Readonly<Record<string, Readonly<Record<string, unknown>>>>
}

export interface MappingResult {
  /** With `lazy`, each tool's schemas and bindings are built when first read (see `problemOf`). */
  readonly tools: ReadonlyArray<Tool>
  readonly skipped: ReadonlyArray<Problem>
  /** Operations present in the spec, filtered out or not. */
  readonly operations: number
  readonly filteredOut: number
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace", "query"] as const

/** An HTTP method name (RFC 9110 token), as `additionalOperations` (OpenAPI 3.2) keys must be. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * The operations of a path item: its method fields (QUERY included), then its `additionalOperations` (OpenAPI 3.2:
 * other methods, sent as written there, such as LINK or PURGE). `at`: the JSON pointer segments of each.
 */
const operationsOf = (path: string, item: Json): Array<{ readonly method: string; readonly raw: Json; readonly at: Array<string> }> => {
  if (!isObject(item)) return []
  const found = METHODS.filter((m) => item[m] !== undefined).map((m) => ({ method: m.toUpperCase(), raw: item[m] as Json, at: ["paths", path, m] }))
  const more = item["additionalOperations"]
  if (isObject(more)) {
    for (const [method, raw] of Object.entries(more)) found.push({ method, raw, at: ["paths", path, "additionalOperations", method] })
  }
  return found
}

/**
 * A path template pattern as a test of a spec's path: `*` is one segment (or part of one), `/**` any number of
 * segments, none included; the rest matches itself. `/repos/**` keeps `/repos`, `/repos/{owner}/{repo}` and
 * everything under them.
 */
export const pathPattern = (pattern: string): ((path: string) => boolean) => {
  const source = pattern.replace(/\/+$/, "").split(/(\/\*\*|\*\*|\*)/).map((part) =>
    part === "/**" ? "(?:/.*)?" : part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
  ).join("")
  const re = new RegExp(`^${source}/?$`)
  return (path) => re.test(path)
}

const IGNORED_HEADERS = new Set(["accept", "content-type", "authorization"])
const ARG_NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** 32-bit FNV-1a, as 8 hex digits: a short stable suffix for cut names. */
export const shortHash = (s: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(16).padStart(8, "0")
}

export const sanitizeName = (raw: string): string =>
  raw.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/_{2,}/g, "_").replace(/^[_-]+|[_-]+$/g, "")

const fallbackName = (method: string, path: string): string => sanitizeName(`${method}_${path.replace(/[{}]/g, "")}`)

/** Fits a name into `max` characters; a cut name ends in a hash of the whole name so it stays distinct. */
export const fitName = (name: string, max: number): string =>
  name.length <= max ? name : `${name.slice(0, max - 9).replace(/[_-]+$/, "")}_${shortHash(name)}`

/** An argument name clients accept (`[A-Za-z0-9_.-]{1,64}`), derived from a wire name. */
const argName = (raw: string): string => {
  if (ARG_NAME.test(raw)) return raw
  const cleaned = raw.replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^_+|_+$/g, "") || "arg"
  return fitName(cleaned, 64)
}

const server = (servers: Json | undefined, specUrl: string, given: Readonly<Record<string, string>> = {}): string | undefined => {
  if (!Array.isArray(servers) || servers.length === 0) return undefined
  const first = servers[0]
  if (!isObject(first) || typeof first["url"] !== "string") return undefined
  const vars = isObject(first["variables"]) ? first["variables"] : {}
  const url = first["url"].replace(/\{([^}]+)\}/g, (whole, name: string) => {
    if (Object.hasOwn(given, name)) return given[name]!
    const v = vars[name]
    if (isObject(v)) {
      // (a default that is itself a placeholder, `{your-agent-url}`, is no value: the variable stays unfilled)
      if ((typeof v["default"] === "string" && !/[{}]/.test(v["default"])) || typeof v["default"] === "number") return String(v["default"])
      if (Array.isArray(v["enum"]) && v["enum"].length > 0) return String(v["enum"][0])
    }
    return whole
  })
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url
  // relative server URLs resolve against the spec's own URL when it was fetched over HTTP
  if (/^https?:/i.test(specUrl)) return new URL(url || ".", specUrl).href
  return undefined
}

const str = (v: Json | undefined): string | undefined => typeof v === "string" && v.trim() !== "" ? v.trim() : undefined

const truncate = (s: string, max: number): string => s.length <= max ? s : `${s.slice(0, max - 1).trimEnd()}…`

/** How a media type is sent; undefined when it is not one this server knows how to encode. */
export const mediaKind = (mediaType: string): BodyKind | undefined => {
  const m = mediaType.toLowerCase().split(";")[0]!.trim()
  if (m === "application/json" || m.endsWith("+json") || m === "*/*" || m === "application/*") return "json"
  if (m === "application/x-www-form-urlencoded") return "form"
  if (m.startsWith("multipart/")) return "multipart"
  // (text/*, XML, YAML, JSON Lines and other JSON sequences (Elasticsearch's _bulk takes NDJSON), GraphQL…)
  if (isTextType(m)) return "text"
  if (m === "application/octet-stream" || m.startsWith("image/") || m.startsWith("audio/") || m.startsWith("video/") || m === "application/pdf" || m === "application/zip") return "binary"
  return undefined
}

const KIND_ORDER: ReadonlyArray<BodyKind> = ["json", "form", "multipart", "text", "binary"]

interface Draft {
  readonly baseName: string
  readonly input: OperationInput
}

/** The parts of a tool that take resolving its schemas: most of the mapping work. */
type DetailKey = "inputSchema" | "params" | "body" | "security" | "fixedArguments"
type ToolDetail = Pick<Tool, DetailKey>
type ToolHead = Omit<Tool, DetailKey>

const asProblem = (e: unknown, where: string): Problem => {
  if (e instanceof MappingProblem) return { location: e.pointer, message: e.detail }
  return { location: where, message: `cannot be mapped: ${(e as Error).message}` }
}

/** An input schema that takes no arguments. */
export const NO_INPUT: Tool["inputSchema"] = { type: "object", properties: {}, additionalProperties: false }

const NO_DETAIL: ToolDetail = {
  inputSchema: NO_INPUT,
  params: [],
  body: undefined,
  security: undefined
}

/**
 * A tool whose schemas and bindings are built on first read (a spec of a thousand operations maps in about
 * 100 ms, which a server in discovery mode need not spend before it answers). An operation that turns out
 * to be unmappable gets an empty schema and a Problem, which `problemOf` returns. Serialises as a plain tool.
 */
interface LazyTool extends ToolHead {}
class LazyTool implements Tool {
  #make: (() => ToolDetail) | undefined
  #detail: ToolDetail | undefined
  #problem: Problem | undefined
  readonly #where: string
  constructor(head: ToolHead, where: string, make: () => ToolDetail) {
    Object.assign(this, head)
    this.#where = where
    this.#make = make
  }
  #built(): ToolDetail {
    if (this.#detail !== undefined) return this.#detail
    try {
      this.#detail = this.#make!()
    } catch (e) {
      this.#problem = asProblem(e, this.#where)
      this.#detail = NO_DETAIL
    }
    this.#make = undefined // the spec document is no longer needed for this tool
    return this.#detail
  }
  get problem(): Problem | undefined {
    this.#built()
    return this.#problem
  }
  get inputSchema() {
    return this.#built().inputSchema
  }
  get params() {
    return this.#built().params
  }
  get body() {
    return this.#built().body
  }
  get security() {
    return this.#built().security
  }
  get fixedArguments() {
    return this.#built().fixedArguments
  }
  toJSON(): Tool {
    return { ...this, ...this.#built() }
  }
}

/** Why a tool mapped lazily cannot be used (building it first, if not yet built); undefined when it can. */
export const problemOf = (tool: Tool): Problem | undefined => tool instanceof LazyTool ? tool.problem : undefined

/** The tools that can be used (building those mapped lazily): without those whose operation cannot be mapped. */
export const usable = (tools: ReadonlyArray<Tool>): ReadonlyArray<Tool> => tools.filter((t) => problemOf(t) === undefined)

/** A mapping with every lazily mapped tool built: those whose operation cannot be mapped move to `skipped`. */
export const settle = (result: MappingResult): MappingResult => {
  const broken = result.tools.flatMap((t) => problemOf(t) ?? [])
  if (broken.length === 0) return result
  return { ...result, tools: usable(result.tools), skipped: [...result.skipped, ...broken] }
}

/**
 * Builds the tools of a loaded spec. With `lazy`, only what names, lists and searches a tool (name,
 * method, path, base URL, title, description, tags, annotations) is mapped now; the rest on first read.
 * Names do not depend on it: an operation whose schemas cannot be mapped still holds its name.
 */
export const mapSpec = (spec: LoadedSpec, options: MappingOptions, lazy = false): MappingResult => {
  const doc = spec.document
  const refs = spec.refs
  const skipped: Array<Problem> = []
  const drafts: Array<Draft> = []
  let operations = 0
  let filteredOut = 0
  const paths = isObject(doc["paths"]) ? doc["paths"] : {}
  const include = new Set(options.includeTags)
  const exclude = new Set(options.excludeTags)
  const includeOps = new Set(options.includeOperations)
  const excludeOps = new Set(options.excludeOperations)
  const includePaths = (options.includePaths ?? []).map(pathPattern)
  const excludePaths = (options.excludePaths ?? []).map(pathPattern)
  /** Whether the path's operations are left out, whatever their method, tags or names. */
  const pathFiltered = (path: string) =>
    (includePaths.length > 0 && !includePaths.some((test) => test(path))) || excludePaths.some((test) => test(path))

  for (const [path, rawItem] of Object.entries(paths)) {
    const broken = spec.pathProblems.get(path)
    if (broken !== undefined) {
      for (const { at } of operationsOf(path, rawItem)) {
        operations++
        skipped.push({ location: readablePointer(at), message: broken })
      }
      continue
    }
    let pathItem: JsonObject
    let itemUrl = spec.url
    try {
      const d = refs.deref(rawItem, spec.url, readablePointer(["paths", path]))
      if (!isObject(d.value)) throw new MappingProblem(readablePointer(["paths", path]), "path item is not an object")
      pathItem = d.value
      itemUrl = d.url
    } catch (e) {
      if (!(e instanceof MappingProblem)) throw e
      operations += operationsOf(path, rawItem).length
      skipped.push({ location: e.pointer, message: e.detail })
      continue
    }
    const leftOut = pathFiltered(path)
    for (const { method, raw: rawOp, at } of operationsOf(path, pathItem)) {
      operations++
      const where = readablePointer(at)
      if (!METHOD_TOKEN.test(method) || (at.length > 3 && METHODS.includes(method.toLowerCase() as (typeof METHODS)[number]))) {
        skipped.push({
          location: where,
          message: METHOD_TOKEN.test(method)
            ? `'${method}' is a method of the path item itself, not one for additionalOperations`
            : `'${method}' is not an HTTP method name`
        })
        continue
      }
      if (leftOut || (options.readOnly === true && !SAFE_METHODS.has(method))) {
        filteredOut++
        continue
      }
      // OpenAPI has no `$ref` for an operation, but specs use one (DigitalOcean keeps each operation in its own
      // file): followed, and the operation's own references are then relative to its file
      let op: Json
      let opUrl = itemUrl
      try {
        const d = refs.deref(rawOp, itemUrl, where)
        op = d.value
        opUrl = d.url
      } catch (e) {
        if (!(e instanceof MappingProblem)) throw e
        skipped.push({ location: e.pointer, message: e.detail })
        continue
      }
      if (!isObject(op)) {
        skipped.push({ location: where, message: "operation is not an object" })
        continue
      }
      const lower = method.toLowerCase()
      const operationId = str(op["operationId"]) ?? `${lower}_${path}`
      const derived = (str(op["operationId"]) && sanitizeName(str(op["operationId"])!)) || fallbackName(lower, path)
      const own = options.toolOverrides?.[operationId] ?? options.toolOverrides?.[derived]
      const baseName = own?.tool_name ?? derived
      const tags = Array.isArray(op["tags"]) ? op["tags"].filter((t): t is string => typeof t === "string") : []
      const keep = !(options.excludeDeprecated === true && op["deprecated"] === true) &&
        (include.size === 0 || tags.some((t) => include.has(t))) &&
        !tags.some((t) => exclude.has(t)) &&
        (includeOps.size === 0 || includeOps.has(operationId) || includeOps.has(derived) || includeOps.has(baseName)) &&
        !excludeOps.has(operationId) && !excludeOps.has(derived) && !excludeOps.has(baseName)
      if (!keep) {
        filteredOut++
        continue
      }
      // the operation's fixed arguments win over its tags', which win over the global ones
      const fixed = Object.assign({}, options.fixedArguments, ...tags.map((t) => options.tagArguments?.[t]), own?.arguments) as Record<string, unknown>
      drafts.push({
        baseName,
        input: { spec, options, path, method, pathItem, itemUrl, op, opUrl, operationId, tags, where, description: own?.description, fixed }
      })
    }
  }

  const tools: Array<Tool> = []
  const taken = new Set<string>()
  const prefix = options.namePrefix
  for (const { baseName, input } of drafts) {
    let mapped: Omit<ToolHead, "name" | "spec">
    try {
      mapped = operationHead(input)
    } catch (e) {
      skipped.push(asProblem(e, input.where))
      continue
    }
    const base = prefix === undefined ? baseName : `${prefix}_${baseName}`
    const head: ToolHead = {
      name: uniqueName(base, options.toolNameMaxLength, taken),
      ...mapped,
      ...(prefix !== undefined ? { spec: prefix } : {})
    }
    if (lazy) {
      tools.push(new LazyTool(head, input.where, () => operationDetail(input)))
      continue
    }
    try {
      tools.push({ ...head, ...operationDetail(input) })
    } catch (e) {
      skipped.push(asProblem(e, input.where))
    }
  }
  return { tools, skipped, operations, filteredOut }
}

/** Deterministic unique name: cut to the limit, then `_2`, `_3`… on (case-insensitive) clashes. */
const uniqueName = (base: string, max: number, taken: Set<string>): string => {
  let name = fitName(base, max)
  for (let n = 2; taken.has(name.toLowerCase()); n++) {
    const suffix = `_${n}`
    name = `${fitName(base, max - suffix.length)}${suffix}`
  }
  taken.add(name.toLowerCase())
  return name
}

interface OperationInput {
  readonly spec: LoadedSpec
  readonly options: MappingOptions
  readonly path: string
  /** As sent: upper case for a path item's own methods, as written for additionalOperations. */
  readonly method: HttpMethod
  readonly pathItem: JsonObject
  readonly itemUrl: string
  readonly op: JsonObject
  /** The URL of the operation's document, which its own `$ref`s are relative to (the path item's, unless it was a `$ref`). */
  readonly opUrl: string
  readonly operationId: string
  readonly tags: ReadonlyArray<string>
  readonly where: string
  /** The operator's description of the operation (config file), said instead of the spec's summary and description. */
  readonly description: string | undefined
  /** Argument values the operator fixes, by argument name (those the operation has are taken out of its schema). */
  readonly fixed: Readonly<Record<string, unknown>>
}

interface RawParam {
  readonly name: string
  readonly in: ParamLocation
  readonly node: JsonObject
  readonly url: string
  readonly where: string
}

/** What names, lists and searches a tool; throws MappingProblem when the operation has no base URL. */
const operationHead = (input: OperationInput): Omit<ToolHead, "name" | "spec"> => {
  const { spec, options, path, method, pathItem, op, where } = input
  const upper = method
  const vars = options.serverVariables
  const baseUrl = options.baseUrl ?? server(op["servers"], spec.url, vars) ?? server(pathItem["servers"], spec.url, vars) ??
    server(spec.document["servers"], spec.url, vars)
  if (baseUrl === undefined) {
    throw new MappingProblem(where, "no base URL: the spec has no absolute 'servers' URL; pass --base-url (API_BASE_URL)")
  }
  // a server URL with no host, or a variable whose default is a placeholder (DigitalOcean's agent inference
  // has `https://{agent_url}`, default "{your-agent-url}"), cannot be called: said now, not at every call
  if (options.baseUrl === undefined && (!URL.canParse(baseUrl) || new URL(baseUrl).hostname === "" || /[{}]/.test(baseUrl))) {
    const unresolved = [...baseUrl.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)
    throw new MappingProblem(where, unresolved.length > 0
      ? `no usable base URL: the spec's server URL '${baseUrl}' needs ${unresolved.map((v) => `{${v}}`).join(", ")}; pass --server-variables ` +
        `${unresolved.map((v) => `${v}=…`).join(",")} (SERVER_VARIABLES), or --base-url (API_BASE_URL)`
      : `no usable base URL: the spec's server URL '${baseUrl}' has no host; pass --base-url (API_BASE_URL)`)
  }
  const summary = str(op["summary"])
  const responses = isObject(op["responses"]) ? Object.keys(op["responses"]) : []
  return {
    ...(responses.some((code) => /^3/.test(code)) ? { redirects: true } : {}),
    operationId: input.operationId,
    method: upper,
    path,
    baseUrl,
    title: summary,
    description: truncate(describe(input, summary, upper), options.descriptionMaxLength),
    tags: input.tags,
    annotations: {
      ...(summary ? { title: truncate(summary, 120) } : {}),
      readOnlyHint: SAFE_METHODS.has(upper),
      destructiveHint: upper === "DELETE",
      idempotentHint: SAFE_METHODS.has(upper) || upper === "PUT" || upper === "DELETE",
      openWorldHint: true
    }
  }
}

/** The input schema and where each argument goes: the schemas resolved and converted. Throws MappingProblem. */
const operationDetail = (input: OperationInput): ToolDetail => {
  const { spec, path, pathItem, itemUrl, op, opUrl, where } = input
  const ctx: SchemaContext = { refs: spec.refs, stack: [], expansions: 0 }
  const fixedHeaders = input.options.fixedHeaders

  // Parameters: path-level first, operation-level overriding by (in, name).
  const collected = new Map<string, RawParam>()
  const gather = (list: Json | undefined, url: string, at: string) => {
    if (list === undefined) return
    if (!Array.isArray(list)) throw new MappingProblem(at, "'parameters' is not a list")
    list.forEach((raw, i) => {
      const w = `${at}.parameters[${i}]`
      const { value, url: pUrl } = spec.refs.deref(raw, url, w)
      if (!isObject(value)) throw new MappingProblem(w, "parameter is not an object")
      const name = value["name"]
      const loc = value["in"]
      if (typeof name !== "string" || name === "") throw new MappingProblem(w, "parameter has no 'name'")
      if (loc !== "path" && loc !== "query" && loc !== "querystring" && loc !== "header" && loc !== "cookie") {
        throw new MappingProblem(w, `parameter '${name}' has unsupported location 'in: ${String(loc)}'`)
      }
      if (loc === "querystring" && !isObject(value["content"])) {
        throw new MappingProblem(w, `parameter '${name}' (in: querystring) needs 'content' with its media type`)
      }
      if (loc === "header" && (IGNORED_HEADERS.has(name.toLowerCase()) || fixedHeaders?.includes(name.toLowerCase()))) return
      collected.set(`${loc}:${name}`, { name, in: loc, node: value, url: pUrl, where: w })
    })
  }
  gather(pathItem["parameters"], itemUrl, readablePointer(["paths", path]))
  gather(op["parameters"], opUrl, where)

  // Every {placeholder} in the path needs a value even when the spec forgot to declare it.
  for (const m of path.matchAll(/\{([^}]+)\}/g)) {
    const name = m[1]!
    if (!collected.has(`path:${name}`)) {
      collected.set(`path:${name}`, {
        name, in: "path", node: { name, in: "path", required: true, schema: { type: "string" }, description: "(path parameter not declared in the spec)" }, url: spec.url, where
      })
    }
  }

  const order: Record<ParamLocation, number> = { path: 0, query: 1, querystring: 2, header: 3, cookie: 4 }
  const rawParams = [...collected.values()].sort((a, b) => order[a.in] - order[b.in])
  const properties: Record<string, Schema> = {}
  const required: Array<string> = []
  const usedArgs = new Set<string>()
  const claim = (wire: string, suffix: string): string => {
    let arg = argName(wire)
    if (usedArgs.has(arg)) arg = argName(`${wire}__${suffix}`)
    for (let n = 2; usedArgs.has(arg); n++) arg = argName(`${wire}__${suffix}${n}`)
    usedArgs.add(arg)
    return arg
  }

  const params: Array<ParamBinding> = []
  for (const p of rawParams) {
    const node = p.node
    let schemaNode: Json | undefined = node["schema"]
    let json = false
    if (schemaNode === undefined && isObject(node["content"])) {
      const [mediaType, media] = Object.entries(node["content"])[0] ?? []
      // a querystring parameter is form-encoded unless its media type is JSON
      json = mediaType !== undefined && mediaKind(mediaType) === "json"
      schemaNode = isObject(media) ? media["schema"] : undefined
    }
    const converted = toJsonSchema(schemaNode ?? { type: "string" }, p.url, ctx, p.where)
    const schema: Schema = typeof converted === "boolean" ? {} : { ...converted }
    if (typeof schema !== "boolean") {
      const desc = str(node["description"])
      if (desc) schema["description"] = desc
      if (node["deprecated"] === true) schema["deprecated"] = true
      if (node["example"] !== undefined && schema["examples"] === undefined) {
        const examples = fittingExamples([node["example"]], schema)
        if (examples.length > 0) schema["examples"] = examples
      }
    }
    const arg = claim(p.name, p.in)
    const isRequired = p.in === "path" || node["required"] === true
    properties[arg] = isRequired && !json ? nonEmptyList(schema) : schema
    if (isRequired) required.push(arg)
    const defaultStyle = p.in === "query" || p.in === "querystring" || p.in === "cookie" ? "form" : "simple"
    const style = typeof node["style"] === "string" ? node["style"] : defaultStyle
    params.push({
      arg, name: p.name, in: p.in, style,
      explode: typeof node["explode"] === "boolean" ? node["explode"] : style === "form",
      allowReserved: node["allowReserved"] === true,
      json
    })
  }

  const dependentRequired: Record<string, Array<string>> = {}
  const body = mapBody(input, ctx, usedArgs, properties, required, dependentRequired, claim)
  const fixedArguments = fixArguments(input.fixed, properties, required, dependentRequired)
  return {
    inputSchema: {
      type: "object",
      properties,
      ...(required.length > 0 ? { required } : {}),
      ...(Object.keys(dependentRequired).length > 0 ? { dependentRequired } : {}),
      additionalProperties: false
    },
    params,
    body,
    security: securityOf(spec, op),
    ...(fixedArguments !== undefined ? { fixedArguments } : {})
  }
}

/**
 * Takes the fixed arguments the operation has out of its schema (they are always sent, so required fields that
 * depend on one become required) and returns their values, text converted to the argument's type where it is a
 * number, boolean or list; undefined when the operation has none of them.
 */
const fixArguments = (
  fixed: Readonly<Record<string, unknown>>,
  properties: Record<string, Schema>,
  required: Array<string>,
  dependentRequired: Record<string, Array<string>>
): Record<string, unknown> | undefined => {
  let out: Record<string, unknown> | undefined
  for (const [name, value] of Object.entries(fixed)) {
    const schema = properties[name]
    if (schema === undefined) continue
    delete properties[name]
    const at = required.indexOf(name)
    if (at >= 0) required.splice(at, 1)
    for (const other of dependentRequired[name] ?? []) if (!required.includes(other) && properties[other] !== undefined) required.push(other)
    delete dependentRequired[name]
    ;(out ??= {})[name] = typedValue(value, schema)
  }
  return out
}

/**
 * A fixed argument's value as its schema's type, as a call's text arguments are (coerceScalar): "42" for an
 * integer, "true" for a boolean; text for a list is its items separated by `|`.
 */
const typedValue = (value: unknown, schema: Schema): unknown => {
  const types = typesOf(schema)
  if (typeof value === "string" && types?.includes("array") && !types.includes("string")) {
    const items = typeof schema === "object" ? typesOf(schema["items"]) : undefined
    return value.split("|").map((item) => coerceScalar(item, items))
  }
  return coerceScalar(value, types)
}

/**
 * A required list sent as text (a parameter, a form or multipart field) needs an item: `[]` puts nothing on
 * the wire, as if the argument were left out, and the API would answer that it is missing.
 */
const nonEmptyList = (schema: Schema): Schema => {
  if (typeof schema === "boolean" || schema["minItems"] !== undefined) return schema
  return typesOf(schema)?.includes("array") ? { ...schema, minItems: 1 } : schema
}

const mapBody = (
  input: OperationInput,
  ctx: SchemaContext,
  usedArgs: Set<string>,
  properties: Record<string, Schema>,
  required: Array<string>,
  dependentRequired: Record<string, Array<string>>,
  claim: (wire: string, suffix: string) => string
): BodyBinding | undefined => {
  const { spec, op, where, opUrl } = input
  if (op["requestBody"] === undefined) return undefined
  const w = `${where}.requestBody`
  const { value: rb, url } = spec.refs.deref(op["requestBody"], opUrl, w)
  if (!isObject(rb) || !isObject(rb["content"])) return undefined
  const entries = Object.entries(rb["content"])
  if (entries.length === 0) return undefined
  // by kind, then a concrete media type before a range (`application/*+json`, which is no Content-Type)
  const rank = (mt: string, kind: BodyKind | undefined) => (kind ? KIND_ORDER.indexOf(kind) : 9) * 2 + (mt.includes("*") ? 1 : 0)
  const ranked = entries
    .map(([mt, media]) => ({ mt, media, kind: mediaKind(mt) }))
    .sort((a, b) => rank(a.mt, a.kind) - rank(b.mt, b.kind))
  const chosen = ranked[0]!
  // An unknown media type is sent as text when given a string, else as JSON.
  const kind: BodyKind = chosen.kind ?? "text"
  // a range left as the only choice is sent as its kind's plain type (a binary body takes its file's type)
  const sentAs = !chosen.mt.includes("*") || kind === "binary" ? chosen.mt : kind === "json" ? "application/json" : kind === "text" ? "text/plain" : chosen.mt
  const media = isObject(chosen.media) ? chosen.media : {}
  const schemaNode = media["schema"]
  const bodyRequired = rb["required"] === true
  const mw = `${w}.content.${chosen.mt}.schema`

  const encoding = isObject(media["encoding"]) ? media["encoding"] : {}
  const partTypes: Record<string, string> = {}
  for (const [name, enc] of Object.entries(encoding)) {
    if (isObject(enc) && typeof enc["contentType"] === "string") partTypes[name] = enc["contentType"]
  }

  const fileFields: Array<string> = []
  // a file, or a list of files (several parts of the same name: `files`, `attachments`)
  const isFile = (s: Schema | undefined): boolean =>
    typeof s === "object" &&
    (s["contentEncoding"] === "base64" || s["format"] === "binary" || (s["type"] === "array" && isFile(s["items"] as Schema | undefined)))

  if (kind === "json" || kind === "form" || kind === "multipart") {
    const shape = objectShape(schemaNode, url, ctx, mw)
    const clashes = shape?.properties.some(([name]) => usedArgs.has(argName(name))) ?? true
    if (shape && shape.properties.length > 0 && !clashes) {
      const fields: Array<BodyField> = []
      const needed: Array<string> = []
      for (const [name, sub, subUrl] of shape.properties) {
        const converted = toJsonSchema(sub, subUrl, ctx, `${mw}.properties.${name}`)
        const arg = claim(name, "body")
        properties[arg] = converted
        if (shape.required.has(name)) needed.push(arg)
        fields.push({ arg, name })
        if ((kind === "multipart" || kind === "form") && isFile(converted)) fileFields.push(name)
      }
      if (kind !== "json") for (const arg of needed) properties[arg] = nonEmptyList(properties[arg]!)
      if (bodyRequired) required.push(...needed)
      else if (needed.length > 0) {
        // an optional body (many specs leave `required` off a body they need) is sent once any of its fields
        // is given, and then it needs its required fields: each field brings them (JSON Schema's
        // dependentRequired, checked before the call), and their descriptions say so for the model
        for (const { arg } of fields) {
          const others = needed.filter((n) => n !== arg)
          if (others.length > 0) dependentRequired[arg] = others
        }
        for (const arg of needed) {
          const schema = properties[arg]!
          const described = typeof schema === "boolean" ? undefined : schema["description"]
          properties[arg] = {
            ...(typeof schema === "boolean" ? {} : schema),
            description: note(typeof described === "string" ? described : undefined, "required when any request body field is given")
          }
        }
      }
      return { mediaType: sentAs, kind, required: bodyRequired, fields, arg: undefined, fileFields, partTypes }
    }
  }

  const arg = claim(usedArgs.has("body") ? "requestBody" : "body", "body")
  const converted = toJsonSchema(schemaNode ?? {}, url, ctx, mw)
  const schema: Record<string, unknown> = typeof converted === "boolean" ? {} : { ...converted }
  const hint = kind === "binary"
    ? "File content, base64-encoded (a data: URI is also accepted)"
    : kind === "text" ? `Request body as ${chosen.mt} text` : `Request body (${chosen.mt})`
  if (kind === "binary") {
    schema["type"] = "string"
    schema["contentEncoding"] = "base64"
  }
  const desc = str(rb["description"])
  schema["description"] = desc ? `${desc} (${hint})` : hint
  properties[arg] = schema
  if (bodyRequired) required.push(arg)
  return { mediaType: sentAs, kind, required: bodyRequired, fields: undefined, arg, fileFields, partTypes }
}

const describe = (input: OperationInput, summary: string | undefined, method: HttpMethod): string => {
  const { op } = input
  const parts: Array<string> = []
  const description = str(op["description"])
  if (input.description !== undefined) parts.push(input.description)
  else {
    if (summary) parts.push(summary)
    if (description && description !== summary) parts.push(description)
  }
  const success = successDescription(input)
  parts.push(`${method} ${input.path}${success ? ` → ${success}` : ""}`)
  if (op["deprecated"] === true) parts.push("Deprecated by the API.")
  return parts.join("\n\n")
}

const successDescription = (input: OperationInput): string | undefined => {
  const responses = input.op["responses"]
  if (!isObject(responses)) return undefined
  // the success response, else the redirect that is the answer (GitHub's downloads)
  const code = Object.keys(responses).find((c) => /^2/.test(c)) ?? Object.keys(responses).find((c) => /^3/.test(c))
  if (code === undefined) return undefined
  const r = responses[code]
  const d = isObject(r) ? str(r["description"]) : undefined
  return d ? `${code}: ${truncate(d.split("\n")[0]!, 160)}` : code
}
