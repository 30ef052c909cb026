/**
 * SpecLoader: reads an OpenAPI document from a file or an http(s) URL (JSON or YAML), loads every file its
 * relative `$ref`s reach, converts Swagger 2.0 to OpenAPI 3.0, and hands back the documents with a resolver.
 * A source that cannot be read or is not an OpenAPI document fails the load; a broken reference only
 * surfaces when an operation uses it (that operation is then skipped with a warning).
 */
import { Context, Effect, FileSystem, Layer, Schema } from "effect"
import { cached } from "./ResponseCache.ts"
import { fetchGuarded, SpecSourcePolicy } from "./Security/SsrfGuard.ts"
import { checkFile, MAX_DEPTH } from "./SpecLoader/Guard.ts"
import { parseJsonBytes } from "./SpecLoader/JsonText.ts"
import { takePrefetched } from "./SpecLoader/Prefetch.ts"
import { inlineBodyParameters, requireFormBodies } from "./SpecLoader/Swagger2.ts"
import { isAbsolute, resolve as resolvePath } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { isObject, type Json, type JsonObject, RefResolver, splitRef } from "./SpecLoader/Refs.ts"

export class SpecLoadError extends Schema.TaggedError<SpecLoadError>()("SpecLoadError", {
  source: Schema.String,
  message: Schema.String
}) {}

export interface LoadedSpec {
  /** What the user passed (path or URL). */
  readonly source: string
  /** Absolute URL of the entry document (`file://` for files). */
  readonly url: string
  readonly version: "2.0" | "3.0" | "3.1" | "3.2"
  /** The entry document as OpenAPI 3.x (Swagger 2.0 already converted). */
  readonly document: JsonObject
  readonly refs: RefResolver
  /** Number of documents loaded, the entry included. */
  readonly files: number
  /** The URLs of every document the spec is made of: those loaded, the entry included, and those that could not be. */
  readonly documentUrls: ReadonlyArray<string>
  /** Paths that could not be converted from Swagger 2.0, with why: their operations are skipped. */
  readonly pathProblems: ReadonlyMap<string, string>
  /**
   * YAML lines (1-based, by document URL) that continue a `[...]`, `{...}` or quoted value with less indentation
   * than YAML allows, read as other parsers read them (SpecLoader/Yaml.ts); each document's are logged as a warning.
   */
  readonly mendedYaml: ReadonlyMap<string, ReadonlyArray<number>>
}

/**
 * Swagger 2.0 → OpenAPI 3.0. The converter changes what it is given, and the loaded document is not used once
 * converted, so the first attempt converts it in place (a copy of a 1 MB document costs about 30 ms). When the
 * whole document does not convert, each path is converted on its own, from a fresh copy of the text (`fresh`)
 * as the failed attempt may have changed the document half-way, so that one malformed operation costs only its
 * own path, not the whole spec.
 */
/**
 * The server of a Swagger 2.0 document with Azure's `x-ms-parameterized-host` (data-plane APIs: a host such as
 * `{accountName}.blob.core.windows.net` or `{Endpoint}/text/analytics/v3.0`), as an OpenAPI 3 server whose
 * variables are the template's parameters, with their defaults when they have one (SERVER_VARIABLES gives the
 * others). Undefined for any other document.
 */
const parameterizedServer = (doc: JsonObject): JsonObject | undefined => {
  const x = doc["x-ms-parameterized-host"]
  if (!isObject(x) || typeof x["hostTemplate"] !== "string") return undefined
  const scheme = Array.isArray(doc["schemes"]) && typeof doc["schemes"][0] === "string" ? doc["schemes"][0] : "https"
  const basePath = typeof doc["basePath"] === "string" ? doc["basePath"].replace(/\/+$/, "") : ""
  const shared = isObject(doc["parameters"]) ? doc["parameters"] : {}
  const variables: Record<string, Json> = {}
  for (const entry of Array.isArray(x["parameters"]) ? x["parameters"] : []) {
    const ref = isObject(entry) && typeof entry["$ref"] === "string" ? /^#\/parameters\/(.+)$/.exec(entry["$ref"])?.[1] : undefined
    const param = ref !== undefined ? shared[ref] : entry
    if (!isObject(param) || typeof param["name"] !== "string") continue
    const fallback = param["default"]
    variables[param["name"]] = {
      ...(typeof fallback === "string" || typeof fallback === "number" ? { default: String(fallback) } : {}),
      ...(typeof param["description"] === "string" ? { description: param["description"] } : {})
    }
  }
  return { url: `${x["useSchemePrefix"] === false ? "" : `${scheme}://`}${x["hostTemplate"]}${basePath}`, variables }
}

const upgradeSwagger = (
  upgrade: typeof import("@scalar/openapi-upgrader").upgrade,
  doc: JsonObject,
  fresh: () => JsonObject
): { readonly document: JsonObject; readonly pathProblems: Map<string, string> } => {
  const pathProblems = new Map<string, string>()
  const convert = (d: JsonObject) => {
    const parameterized = parameterizedServer(d)
    const requiredForms = inlineBodyParameters(d)
    const converted = upgrade(d as never, "3.0") as unknown as JsonObject
    requireFormBodies(converted, requiredForms)
    return parameterized === undefined ? converted : { ...converted, servers: [parameterized] }
  }
  try {
    return { document: convert(doc), pathProblems }
  } catch {
    const { paths, ...rest } = fresh()
    const base = convert(structuredClone({ ...rest, paths: {} }))
    const converted: Record<string, Json> = {}
    for (const [path, item] of Object.entries(isObject(paths) ? paths : {})) {
      try {
        const one = convert(structuredClone({ ...rest, paths: { [path]: item } }))
        converted[path] = (one["paths"] as JsonObject)[path]!
      } catch (e) {
        pathProblems.set(path, `cannot convert this Swagger 2.0 path to OpenAPI 3: ${(e as Error).message}`)
        converted[path] = item // kept unconverted so its operations are reported as skipped
      }
    }
    return { document: { ...base, paths: converted }, pathProblems }
  }
}

const asText = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8")

/** Resolves a user-given source to an absolute URL. */
export const sourceUrl = (source: string): string =>
  /^https?:\/\//i.test(source) || source.startsWith("file://")
    ? source
    : pathToFileURL(isAbsolute(source) ? source : resolvePath(source)).href

// The YAML parser and the Swagger 2.0 converter are loaded when a document needs them: a JSON OpenAPI 3 spec,
// and any restart from the catalog cache, start without loading either.
let yaml: typeof import("./SpecLoader/Yaml.ts") | undefined
const loadYaml = Effect.promise(async () => {
  yaml ??= await import("./SpecLoader/Yaml.ts")
})

/** Thrown by parseDocument when the text is YAML and the YAML parser is not loaded yet (see parseLoaded). */
class NeedsYaml extends Error {}

/** Told the lines of a YAML text that were read with more indentation than they have (Yaml.ts, mendIndentation). */
type OnMended = (lines: ReadonlyArray<number>) => void

/** YAML as specs are written: a duplicate key keeps its last value (as JSON.parse does). */
const parseYaml = (text: string, onMended?: OnMended) => {
  if (yaml === undefined) throw new NeedsYaml()
  return yaml.parseYaml(text, { duplicateKeys: "last", maxDepth: MAX_DEPTH, ...(onMended ? { onMended } : {}) })
}

/** A document as read: JSON bytes through their one-byte text (SpecLoader/JsonText.ts), else parseDocument. */
const parseData = (data: Uint8Array, onMended?: OnMended): unknown => parseJsonBytes(data) ?? parseDocument(asText(data), onMended)

/** parseData, loading the YAML parser first when the text needs it; fails with the parse error. */
const parseLoaded = (data: Uint8Array, onMended?: OnMended): Effect.Effect<unknown, Error> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(parseData(data, onMended))
    } catch (e) {
      if (!(e instanceof NeedsYaml)) return Effect.fail(e as Error)
    }
    return Effect.flatMap(loadYaml, () => Effect.try({ try: () => parseData(data, onMended), catch: (e) => e as Error }))
  })

/** A document's URL as shown to people: a file's path. */
export const shownUrl = (url: string) => url.startsWith("file:") ? fileURLToPath(url) : url

/** What was mended in a YAML document: its lines read with more indentation than they have (LoadedSpec.mendedYaml). */
export const mendedYamlDetail = (lines: ReadonlyArray<number>) =>
  `YAML line${lines.length > 1 ? "s" : ""} ${lines.join(", ")} continue a [...] list, {...} map or quoted text with less ` +
  "indentation than YAML allows; read as PyYAML and go-yaml read them (indent them further to silence this)"

/**
 * Parses JSON or YAML text. Throws an Error whose message says where the syntax broke, or that the YAML
 * expands too many aliases or nests too deeply (JSON nesting is bounded by `externalRefs`, which walks every
 * document loaded before anything else does).
 */
const parseDocument = (text: string, onMended?: OnMended): unknown => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const first = body.trimStart()[0]
  if (first === "{" || first === "[") {
    try {
      return JSON.parse(body)
    } catch (e) {
      // JSON-looking text that JSON.parse rejects may still be YAML flow style; let YAML report if not.
      try {
        return parseYaml(body, onMended)
      } catch (yamlError) {
        if (yamlError instanceof NeedsYaml) throw yamlError
        throw new Error(`invalid JSON: ${(e as Error).message}`)
      }
    }
  }
  try {
    return parseYaml(body, onMended)
  } catch (e) {
    if (e instanceof NeedsYaml) throw e
    throw new Error(`invalid YAML: ${(e as Error).message}`)
  }
}

/**
 * `$ref`s that point into other documents, not counting those in data (`example`, `examples`) and vendor
 * extensions, except where such a name is a schema property (under `properties`). The same walk is the
 * depth guard: it throws when the document nests deeper than MAX_DEPTH (a hostile document must not
 * overflow the stack of the code that walks it later), before the recursion could.
 */
const externalRefs = (doc: Json, baseUrl: string, out: Set<string>): void => {
  const walk = (node: Json, inProperties: boolean, refs: boolean, depth: number): void => {
    if (depth > MAX_DEPTH) throw new Error(`the document is nested more than ${MAX_DEPTH} levels deep`)
    if (Array.isArray(node)) {
      for (const item of node) if (typeof item === "object" && item !== null) walk(item, false, refs, depth + 1)
    } else if (isObject(node)) {
      for (const key in node) {
        const value = node[key]!
        if (refs && key === "$ref" && typeof value === "string" && !value.startsWith("#")) {
          try {
            out.add(splitRef(value, baseUrl).url)
          } catch {
            // an unparsable URL surfaces when an operation resolves it
          }
        } else if (typeof value === "object" && value !== null) {
          const data = !inProperties && (key === "example" || key === "examples" || key.startsWith("x-"))
          walk(value, !inProperties && (key === "properties" || key === "patternProperties"), refs && !data, depth + 1)
        }
      }
    }
  }
  walk(doc, false, true, 1)
}

const versionOf = (doc: JsonObject): LoadedSpec["version"] | undefined => {
  const swagger = doc["swagger"]
  const openapi = doc["openapi"]
  if (typeof swagger === "string" || typeof swagger === "number") return String(swagger).startsWith("2") ? "2.0" : undefined
  // a 3.x newer than 3.2 is read as 3.2, the newest this server knows
  if (typeof openapi === "string") {
    return openapi.startsWith("3.0") ? "3.0" : openapi.startsWith("3.1") ? "3.1" : openapi.startsWith("3.") ? "3.2" : undefined
  }
  return undefined
}

export class SpecLoader extends Context.Service<SpecLoader, {
  /** Loads and normalises a spec with everything it references. */
  readonly load: (source: string) => Effect.Effect<LoadedSpec, SpecLoadError>
  /** Reads a spec's own document without parsing it: the bytes of the file or of the fetched document. */
  readonly read: (source: string) => Effect.Effect<{ readonly url: string; readonly data: Uint8Array }, SpecLoadError>
  /** `load`, with the spec's own document already read (by `read`). */
  readonly loadText: (source: string, url: string, data: Uint8Array) => Effect.Effect<LoadedSpec, SpecLoadError>
}>()("openapi-mcp/SpecLoader") {
  static readonly layerNoDeps = Layer.effect(SpecLoader, Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    // Where specs may come from (SSRF guard, allowed directories, size cap); secure unless provided
    const policy = yield* SpecSourcePolicy

    /** A document's bytes, from a file or fetched. */
    const readRaw = (url: string): Effect.Effect<Uint8Array, string> =>
      url.startsWith("file:") ? readBytes(url) : fetchCached(url)

    /** A file's bytes, under the policy; the main spec's were usually read already (SpecLoader/Prefetch.ts). */
    const readBytes = (url: string): Effect.Effect<Uint8Array, string> => {
      const path = fileURLToPath(url)
      return checkFile(url, policy).pipe(
        Effect.andThen(Effect.promise(() => takePrefetched(path))),
        Effect.flatMap((prefetched) =>
          prefetched !== undefined ? Effect.succeed(prefetched) : fs.readFile(path).pipe(
            Effect.mapError((e) => e.reason._tag === "NotFound" ? "file not found" : e.message)
          )
        )
      )
    }

    /**
     * Documents fetched over HTTP(S) through the SSRF guard (checked, DNS pinned, no redirects, size-capped),
     * kept five minutes so a spec's shared files are fetched once.
     */
    const fetchCached = yield* cached((url: string) => fetchGuarded(url, policy), { timeToLive: "5 minutes", capacity: 10_000 })

    const read = Effect.fn("SpecLoader.read")(function*(source: string) {
      const fail = (message: string) => Effect.fail(new SpecLoadError({ source, message }))
      let url: string
      try {
        url = sourceUrl(source)
      } catch {
        return yield* fail(`'${source}' is neither a readable file path nor an http(s) URL`)
      }
      const data = yield* readRaw(url).pipe(Effect.catch((why) => fail(`cannot read the spec: ${why}`)))
      return { url, data }
    })

    const loadText = Effect.fn("SpecLoader.parse")(function*(source: string, url: string, data: Uint8Array) {
      const fail = (message: string) => Effect.fail(new SpecLoadError({ source, message }))
      const mendedYaml = new Map<string, ReadonlyArray<number>>()
      const mendedIn = (docUrl: string): OnMended => (lines) => mendedYaml.set(docUrl, lines)
      const parsedOrError = yield* Effect.result(parseLoaded(data, mendedIn(url)))
      if (parsedOrError._tag === "Failure") return yield* fail(parsedOrError.failure.message)
      const parsed = parsedOrError.success
      if (!isObject(parsed)) return yield* fail("not an OpenAPI document: the file is not a JSON/YAML mapping")
      const version = versionOf(parsed)
      if (version === undefined) {
        return yield* fail(
          "not an OpenAPI document: no 'openapi: 3.x' or 'swagger: \"2.0\"' field at the top level"
        )
      }
      if (!isObject(parsed["paths"]) && !isObject(parsed["webhooks"]) && !isObject(parsed["components"])) {
        return yield* fail("not an OpenAPI document: it has no 'paths' object")
      }

      // Load every document reachable through relative $refs, breadth first with bounded concurrency.
      // Remote documents are only followed when the spec itself came from the same origin.
      const documents = new Map<string, Json>([[url, parsed]])
      const failures = new Map<string, string>()
      const origin = url.startsWith("file:") ? "file:" : new URL(url).origin
      let frontier = new Set<string>()
      try {
        externalRefs(parsed, url, frontier)
      } catch (e) {
        return yield* fail((e as Error).message)
      }
      while (frontier.size > 0) {
        const batch = [...frontier].filter((u) => !documents.has(u) && !failures.has(u))
        frontier = new Set()
        yield* Effect.forEach(batch, (docUrl) => {
          const sameOrigin = docUrl.startsWith("file:") ? origin === "file:" : new URL(docUrl).origin === origin
          if (!sameOrigin) {
            failures.set(docUrl, `remote reference to ${docUrl} is not followed (only files beside the spec are)`)
            return Effect.void
          }
          return readRaw(docUrl).pipe(
            // a parse error is a defect here, reported below as "cannot parse" (not "cannot read")
            Effect.flatMap((raw) => Effect.orDie(parseLoaded(raw, mendedIn(docUrl)))),
            Effect.map((doc) => {
              documents.set(docUrl, doc as Json)
              externalRefs(doc as Json, docUrl, frontier)
            }),
            Effect.catchDefect((e) => Effect.sync(() => failures.set(docUrl, `cannot parse ${docUrl}: ${(e as Error).message}`))),
            Effect.catch((why) => Effect.sync(() => failures.set(docUrl, `cannot read ${docUrl}: ${why}`)))
          )
        }, { concurrency: 16, discard: true })
      }

      let document: JsonObject = parsed
      let pathProblems = new Map<string, string>()
      if (version === "2.0") {
        const { upgrade } = yield* Effect.promise(() => import("@scalar/openapi-upgrader"))
        try {
          ;({ document, pathProblems } = upgradeSwagger(upgrade, parsed, () => parseData(data) as JsonObject))
          documents.set(url, document)
        } catch (e) {
          return yield* fail(`cannot convert this Swagger 2.0 document to OpenAPI 3: ${(e as Error).message}`)
        }
      }
      for (const [docUrl, lines] of mendedYaml) yield* Effect.logWarning(`${shownUrl(docUrl)}: ${mendedYamlDetail(lines)}`)
      return {
        source, url, version, document, refs: new RefResolver(documents, failures), files: documents.size, pathProblems,
        documentUrls: [...documents.keys(), ...failures.keys()], mendedYaml
      }
    })

    const load = (source: string) => Effect.flatMap(read(source), ({ data, url }) => loadText(source, url, data))

    return SpecLoader.of({ load, read, loadText })
  }))
}
