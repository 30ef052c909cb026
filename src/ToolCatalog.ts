/**
 * ToolCatalog: the spec's operations as MCP tools (names, input schemas, descriptions, annotations,
 * filters), mapped once. Unless every tool is listed, a freshly mapped tool's schemas are built on first use
 * or in the background soon after start-up (Mapping.ts `lazy`); nothing is rebuilt per request.
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { fileURLToPath } from "node:url"
import { AppConfig, type Settings } from "./AppConfig.ts"
import { SELECT_LISTED_CHARS } from "./Invoker/Select.ts"
import type { Problem, Tool } from "./domain/Tool.ts"
import { refusedBaseUrl, systemResolver } from "./Security/SsrfGuard.ts"
import { SpecLoader } from "./SpecLoader.ts"
import { isObject } from "./SpecLoader/Refs.ts"
import { cacheDirFor, type CatalogEntry, entryKey, readEntry, writeEntry } from "./ToolCatalog/CatalogCache.ts"
import { mapSpec, type MappingOptions, type MappingResult, NO_INPUT, problemOf, sanitizeName, settle } from "./ToolCatalog/Mapping.ts"

export class CatalogError extends Schema.TaggedError<CatalogError>()("CatalogError", { message: Schema.String }) {}

/** A tool as `tools/list` returns it. */
export interface ListedTool {
  readonly name: string
  readonly title?: string
  readonly description: string
  readonly inputSchema: Tool["inputSchema"]
  readonly annotations: Tool["annotations"]
}

export interface CatalogShape {
  readonly serverName: string
  readonly serverVersion: string
  readonly specUrl: string
  readonly specVersion: string
  /**
   * In spec order. Unless the tool mode is "all", a tool of a freshly mapped spec may be built on first read;
   * `problemOf` says whether it turned out unusable (its operation cannot be mapped).
   */
  readonly tools: ReadonlyArray<Tool>
  /** Operations skipped at start (some found unmappable only later are logged then). */
  readonly skipped: ReadonlyArray<Problem>
  /**
   * Tools whose base URL a spec read from a URL chose (main or additional, without an operator's base URL):
   * their calls have every new connection's addresses checked (CallPolicy.guardConnections).
   */
  readonly specChosenUpstream: ReadonlySet<Tool>
  /** Credentials of additional specs that have their own, by namespace (their tools' `spec`). */
  readonly specCredentials: ReadonlyMap<string, Settings["auth"]>
  /** The spec's `tags` descriptions, by tag name. */
  readonly tagDescriptions: Readonly<Record<string, string>>
  /** The tool with this name, if any. */
  readonly lookup: (name: string) => Tool | undefined
  /**
   * The local files the catalog was built from: every document of each spec read from a file, and files they
   * refer to that could not be read (creating one changes the spec). What `--watch` watches.
   */
  readonly sourceFiles: ReadonlyArray<string>
  /** The same for specs read from URLs: every document of each (the spec's own and those it refers to). */
  readonly sourceUrls: ReadonlyArray<string>
}

/** The local file paths among documents' URLs. */
const localFiles = (urls: ReadonlyArray<string>) => urls.flatMap((u) => u.startsWith("file:") ? [fileURLToPath(u)] : [])

const listedWith = (tool: Tool, inputSchema: Tool["inputSchema"]): ListedTool => ({
  name: tool.name,
  ...(tool.title ? { title: tool.title } : {}),
  description: tool.description,
  inputSchema,
  annotations: tool.annotations
})

export const toListed = (tool: Tool): ListedTool => listedWith(tool, tool.inputSchema)

/** Rough token count of a listing: about four characters per token. */
export const estimateTokens = (listing: ReadonlyArray<ListedTool>): number => Math.ceil(JSON.stringify(listing).length / 4)

/**
 * Whether listing these tools would exceed the budget (estimated tokens), serializing only as many tools as
 * that takes. Without their input schemas first: a lower bound that builds no lazily mapped tool and settles
 * a big API at once (it counts operations later found unmappable too); then, if need be, in full.
 */
export const exceedsBudget = (tools: ReadonlyArray<Tool>, budget: number, extraPerTool = 0): boolean => {
  const over = (size: (tool: Tool) => number) => {
    let chars = 1 // "[", then each tool and the "," or "]" after it
    for (const tool of tools) {
      chars += size(tool) + extraPerTool
      if (Math.ceil(chars / 4) > budget) return true
    }
    return false
  }
  return over((t) => JSON.stringify(listedWith(t, NO_INPUT)).length + 1) ||
    over((t) => problemOf(t) === undefined ? JSON.stringify(toListed(t)).length + 1 : 0)
}

/** Mapping options from the settings: filters and limits, with the base URL (and namespace) given. */
export const mappingOptions = (
  config: Settings,
  baseUrl: string | undefined,
  namePrefix?: string,
  headers: Settings["auth"]["headers"] = config.auth.headers
): MappingOptions => ({
  baseUrl,
  ...config.filters,
  toolNameMaxLength: config.toolNameMaxLength,
  descriptionMaxLength: config.descriptionMaxLength,
  ...(namePrefix !== undefined ? { namePrefix } : {}),
  ...fixedHeaders([...Object.keys(headers).map((h) => h.toLowerCase()), ...config.inbound.forwardHeaders.map((f) => f.to)]),
  ...toolOverrides(config.operations),
  ...(Object.keys(config.serverVariables).length > 0 ? { serverVariables: config.serverVariables } : {}),
  ...(Object.keys(config.fixedArguments).length > 0 ? { fixedArguments: config.fixedArguments } : {})
})

/** What every listed tool carries besides its own schema: `_select` (RESPONSE_SELECT), in characters. */
export const listedExtra = (config: Settings): number => config.responseSelect ? SELECT_LISTED_CHARS : 0

/** Headers set for every request (API_HEADERS) or by the client (MCP_FORWARD_HEADERS): never arguments. */
const fixedHeaders = (names: ReadonlyArray<string>): Pick<MappingOptions, "fixedHeaders"> =>
  names.length === 0 ? {} : { fixedHeaders: [...new Set(names)] }

/**
 * The `operations:` entries that name or describe a tool or fix its arguments, and the tags' fixed arguments (part
 * of the catalog cache key, as all mapping options).
 */
const toolOverrides = (operations: Settings["operations"]): Pick<MappingOptions, "toolOverrides" | "tagArguments"> => {
  const entries = Object.entries(operations)
  const named = entries.flatMap(([key, o]) =>
    key.startsWith("tag:") || (o.tool_name === undefined && o.description === undefined && o.arguments === undefined) ? [] : [[key, {
      ...(o.tool_name !== undefined ? { tool_name: o.tool_name } : {}),
      ...(o.description !== undefined ? { description: o.description } : {}),
      ...(o.arguments !== undefined ? { arguments: o.arguments } : {})
    }] as const]
  )
  const tags = entries.flatMap(([key, o]) => key.startsWith("tag:") && o.arguments !== undefined ? [[key.slice(4), o.arguments] as const] : [])
  return {
    ...(named.length > 0 ? { toolOverrides: Object.fromEntries(named) } : {}),
    ...(tags.length > 0 ? { tagArguments: Object.fromEntries(tags) } : {})
  }
}

/**
 * The additional specs (ADDITIONAL_SPECS, or --spec given again): each loaded and mapped on its own, its tools
 * named `<name>_<tool>`; one that cannot be loaded is skipped with a warning and the others are served. A
 * spec in one file uses the catalog cache like the main spec; its entry is found by the spec's text, URL and
 * settings, and used when it was mapped under the name this start gives the spec (names depend on the specs
 * before it).
 */
const loadAdditionalSpecs = (config: Settings, taken: Set<string>, lazy: boolean, cacheDir: string | undefined) =>
  Effect.gen(function*() {
    const loader = yield* SpecLoader
    const tools: Array<Tool> = []
    const specChosen = new Set<Tool>()
    const skipped: Array<Problem> = []
    const pending: Array<PendingEntry> = []
    const credentials = new Map<string, Settings["auth"]>()
    const documents: Array<string> = []
    for (const problem of config.additionalSpecProblems) yield* Effect.logWarning(problem)
    const names = new Set<string>()
    const nameFor = (entry: Settings["additionalSpecs"][number], title: string) => {
      let name = sanitizeName(entry.name ?? title).slice(0, 24) || "spec"
      for (let n = 2; names.has(name.toLowerCase()); n++) name = `${name.slice(0, 21)}_${n}`
      return name
    }
    for (const entry of config.additionalSpecs) {
      const read = yield* Effect.result(loader.read(entry.spec))
      const baseUrl = Option.getOrUndefined(entry.baseUrl)
      // the headers its requests get: its own, or with no settings of its own, the main spec's
      const headers = (entry.auth ?? config.auth).headers
      const key = cacheDir === undefined || read._tag === "Failure"
        ? undefined
        : yield* entryKey(read.success.data, read.success.url, { ...mappingOptions(config, baseUrl, undefined, headers), namePrefix: entry.name ?? "" })
      const cached = cacheDir === undefined || key === undefined ? undefined : yield* readEntry(cacheDir, key)
      let name = cached === undefined ? "" : nameFor(entry, cached.title ?? "")
      let mapped: Pick<MappingResult, "tools" | "skipped">
      const hit = cached !== undefined && cached.tools.every((t) => t.spec === name)
      if (hit) {
        mapped = cached
        if (read._tag === "Success") documents.push(read.success.url)
      } else {
        const loaded = read._tag === "Failure"
          ? read
          : yield* Effect.result(loader.loadText(entry.spec, read.success.url, read.success.data))
        if (loaded._tag === "Failure") {
          yield* Effect.logWarning(`additional spec ${entry.spec} skipped: ${loaded.failure.message}`)
          continue
        }
        const spec = loaded.success
        documents.push(...spec.documentUrls)
        const info = isObject(spec.document["info"]) ? spec.document["info"] : {}
        const title = typeof info["title"] === "string" ? info["title"] : spec.source.replace(/^.*\//, "").replace(/\.[a-z]+$/i, "")
        name = nameFor(entry, title)
        const result = mapSpec(spec, mappingOptions(config, baseUrl, name, headers), lazy)
        mapped = result
        if (cacheDir !== undefined && key !== undefined && spec.files === 1) {
          pending.push({
            dir: cacheDir,
            entry: {
              key, specVersion: spec.version, title, version: undefined, tagDescriptions: {},
              tools: result.tools, skipped: result.skipped, operations: result.operations, filteredOut: result.filteredOut
            }
          })
        }
      }
      names.add(name.toLowerCase())
      // the same SSRF rule as for the main spec: a spec read from a URL may not aim calls at private addresses
      if (Option.isNone(entry.baseUrl) && /^https?:/i.test(read._tag === "Success" ? read.success.url : "")) {
        const refused = yield* refusedBaseUrl(mapped.tools.map((t) => t.baseUrl), { ...config.specSource, resolver: systemResolver })
        if (refused !== undefined) {
          yield* Effect.logWarning(`additional spec ${entry.spec} skipped: ${refused}`)
          continue
        }
        for (const t of mapped.tools) specChosen.add(t)
      }
      if (entry.auth !== undefined) credentials.set(name, entry.auth)
      for (const problem of mapped.skipped) yield* Effect.logWarning(`skipped operation of ${name}: ${problem.location}: ${problem.message}`)
      // a clash with a tool of an earlier spec (unlikely, with the prefix) keeps the earlier one
      for (const t of mapped.tools) {
        if (taken.has(t.name.toLowerCase())) {
          skipped.push({ location: `${name}: ${t.operationId}`, message: `tool name '${t.name}' is already taken` })
          continue
        }
        taken.add(t.name.toLowerCase())
        tools.push(t)
      }
      skipped.push(...mapped.skipped.map((p) => ({ ...p, location: `${name}: ${p.location}` })))
      yield* Effect.logInfo(`loaded additional spec ${entry.spec} as '${name}': ${mapped.tools.length} tools` + (hit ? " (from the catalog cache)" : ""))
    }
    return { tools, skipped, credentials, pending, specChosen, documents }
  })

/**
 * Runs `step` (work until the deadline it is given; true once all is done) in slices of a few milliseconds
 * from a second after start-up, so requests are served in between; returns a function that stops it. On
 * timers, not immediates: an unref'd immediate waits while the event loop idles (it does not end the poll
 * phase), so an idle server would never get through the work.
 */
export const inSlices = (step: (until: number) => boolean): (() => void) => {
  let timer: NodeJS.Timeout
  const slice = () => {
    if (!step(performance.now() + 5)) timer = setTimeout(slice, 0).unref()
  }
  timer = setTimeout(slice, 1000).unref()
  return () => clearTimeout(timer)
}

/** A catalog-cache entry to write once the catalog is finished. */
interface PendingEntry {
  readonly dir: string
  readonly entry: CatalogEntry
}

const finishLater = (lazy: ReadonlyArray<Tool>, pending: ReadonlyArray<PendingEntry>) =>
  Effect.gen(function*() {
    const runPromise = Effect.runPromiseWith(yield* Effect.context<never>())
    const problems = new Map<Tool, Problem>()
    let next = 0
    const build = (until: number) => {
      for (; next < lazy.length && performance.now() < until; next++) {
        const problem = problemOf(lazy[next]!)
        if (problem !== undefined) problems.set(lazy[next]!, problem)
      }
    }
    let finished: Promise<void> | undefined
    const finish = () =>
      finished ??= runPromise(Effect.gen(function*() {
        build(Infinity)
        for (const [tool, problem] of problems) {
          yield* Effect.logWarning(`skipped operation${tool.spec !== undefined ? ` of ${tool.spec}` : ""}: ${problem.location}: ${problem.message}`)
        }
        for (const { dir, entry } of pending) {
          // an entry holds one spec's tools: without those found unmappable, which it lists as skipped
          const own = entry.tools.flatMap((t) => problems.get(t) ?? [])
          const written = own.length === 0 ? entry : {
            ...entry,
            tools: entry.tools.filter((t) => !problems.has(t)),
            skipped: [...entry.skipped, ...own]
          }
          if (!(yield* writeEntry(dir, written))) {
            yield* Effect.logDebug(`catalog cache: cannot write to ${dir}; the next start builds the catalog again`)
          }
        }
      }))
    const cancel = inSlices((until) => {
      build(until)
      if (next < lazy.length) return false
      void finish()
      return true
    })
    // at a stop before then, the rest is built only to write the cache entry
    yield* Effect.addFinalizer(() => Effect.promise(() => (cancel(), finished ?? (pending.length > 0 ? finish() : Promise.resolve()))))
  })

export class ToolCatalog extends Context.Service<ToolCatalog, CatalogShape>()("openapi-mcp/ToolCatalog") {
  static readonly layerNoDeps = Layer.effect(ToolCatalog, Effect.gen(function*() {
    const config = yield* AppConfig
    const loader = yield* SpecLoader
    const options = mappingOptions(config, Option.getOrUndefined(config.baseUrl))
    const { url, data } = yield* loader.read(config.spec)
    // a catalog built by an earlier start from this very text and these settings (CATALOG_CACHE_DIR)
    const cacheDir = cacheDirFor(config.catalogCache)
    const key = cacheDir === undefined ? undefined : yield* entryKey(data, url, options)
    const cached = cacheDir === undefined || key === undefined ? undefined : yield* readEntry(cacheDir, key)
    let result: CatalogEntry
    let files = 1
    let documents: ReadonlyArray<string> = [url]
    let lazy = false
    if (cached !== undefined) {
      result = cached
      yield* Effect.logDebug(`tool catalog of ${config.spec} read from the catalog cache in ${cacheDir}`)
    } else {
      const spec = yield* loader.loadText(config.spec, url, data)
      // unless every tool is listed, a tool's schemas are built when first needed (or soon after start-up)
      let mapped = mapSpec(spec, options, config.toolMode !== "all")
      lazy = config.toolMode === "discover" || (config.toolMode === "auto" && exceedsBudget(mapped.tools, config.toolBudgetTokens, listedExtra(config)))
      if (!lazy) mapped = settle(mapped)
      const info = isObject(spec.document["info"]) ? spec.document["info"] : {}
      const tagDescriptions: Record<string, string> = {}
      for (const tag of Array.isArray(spec.document["tags"]) ? spec.document["tags"] : []) {
        if (isObject(tag) && typeof tag["name"] === "string" && typeof tag["description"] === "string") {
          tagDescriptions[tag["name"]] = tag["description"].trim()
        }
      }
      files = spec.files
      documents = spec.documentUrls
      result = {
        key: key ?? "",
        specVersion: spec.version,
        title: typeof info["title"] === "string" ? info["title"] : undefined,
        version: typeof info["version"] === "string" ? info["version"] : undefined,
        tagDescriptions,
        tools: mapped.tools,
        skipped: mapped.skipped,
        operations: mapped.operations,
        filteredOut: mapped.filteredOut
      }
    }
    for (const problem of result.skipped) {
      yield* Effect.logWarning(`skipped operation: ${problem.location}: ${problem.message}`)
    }
    // a fixed argument no operation has is most likely misspelt (not checked while tools are mapped lazily)
    if (!lazy) {
      const unused = Object.keys(config.fixedArguments).filter((name) => !result.tools.some((t) => t.fixedArguments?.[name] !== undefined))
      if (unused.length > 0) yield* Effect.logWarning(`FIXED_ARGUMENTS: no operation has an argument named ${unused.join(", ")}; nothing is fixed for it`)
    }
    // SSRF guard: a spec read from a URL may not aim calls at non-public addresses (--base-url is the operator's choice)
    const specChosen = Option.isNone(config.baseUrl) && /^https?:/i.test(url)
    if (specChosen) {
      const refused = yield* refusedBaseUrl(result.tools.map((t) => t.baseUrl), { ...config.specSource, resolver: systemResolver })
      if (refused !== undefined) return yield* new CatalogError({ message: refused })
    }
    const noBase = result.skipped.filter((p) => p.message.startsWith("no base URL"))
    if (noBase.length > 0 && result.tools.length === 0) {
      return yield* new CatalogError({
        message: `no base URL for the upstream API: the spec's 'servers' list is missing or relative; pass --base-url <url> (or API_BASE_URL)`
      })
    }
    const serverName = Option.getOrUndefined(config.name) ??
      (result.title !== undefined && result.title.trim() !== "" ? result.title.trim() : "openapi-mcp-server")
    const serverVersion = result.version ?? "0.0.0"
    const byName = new Map(result.tools.map((t) => [t.name, t]))
    yield* Effect.logInfo(
      `loaded ${config.spec}: OpenAPI ${result.specVersion}, ${result.operations} operations, ${result.tools.length} tools` +
        (result.filteredOut > 0 ? `, ${result.filteredOut} filtered out` : "") +
        (result.skipped.length > 0 ? `, ${result.skipped.length} skipped` : "") +
        (files > 1 ? `, ${files} files` : "")
    )
    // in discovery mode the additional specs are mapped lazily too
    const discovering = config.toolMode === "discover" ||
      (config.toolMode === "auto" && (lazy || (cached !== undefined && exceedsBudget(result.tools, config.toolBudgetTokens, listedExtra(config)))))
    const more = yield* loadAdditionalSpecs(config, new Set(result.tools.map((t) => t.name.toLowerCase())), discovering, cacheDir)
    const tools = [...result.tools, ...more.tools]
    // only a spec in one file: the key covers its whole text (other files could change unseen)
    const pending = [...more.pending]
    if (cached === undefined && cacheDir !== undefined && key !== undefined && files === 1) pending.unshift({ dir: cacheDir, entry: result })
    if (discovering || pending.length > 0) yield* finishLater(discovering ? tools : [], pending)
    for (const t of more.tools) byName.set(t.name, t)
    const sources = [...documents, ...more.documents]
    return ToolCatalog.of({
      serverName,
      serverVersion,
      specUrl: url,
      specVersion: result.specVersion,
      tools,
      skipped: [...result.skipped, ...more.skipped],
      specChosenUpstream: specChosen ? new Set([...result.tools, ...more.specChosen]) : more.specChosen,
      specCredentials: more.credentials,
      tagDescriptions: result.tagDescriptions,
      lookup: (name) => byName.get(name),
      sourceFiles: localFiles(sources),
      sourceUrls: sources.filter((u) => /^https?:/.test(u))
    })
  }))
}
