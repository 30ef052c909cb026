/**
 * ToolCatalog: the spec's operations as MCP tools, built once at start (names, input schemas, descriptions,
 * annotations, filters). `tools/list` answers from the precomputed listing; nothing is rebuilt per request.
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { AppConfig } from "./AppConfig.ts"
import type { Problem, Tool } from "./domain/Tool.ts"
import { refusedBaseUrl, systemResolver } from "./Security/SsrfGuard.ts"
import { SpecLoader } from "./SpecLoader.ts"
import { isObject } from "./SpecLoader/Refs.ts"
import { mapSpec } from "./ToolCatalog/Mapping.ts"

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
  readonly tools: ReadonlyArray<Tool>
  readonly listing: ReadonlyArray<ListedTool>
  readonly skipped: ReadonlyArray<Problem>
  /** The spec's `tags` descriptions, by tag name. */
  readonly tagDescriptions: Readonly<Record<string, string>>
  /** The tool with this name, if any. */
  readonly lookup: (name: string) => Tool | undefined
}

export const toListed = (tool: Tool): ListedTool => ({
  name: tool.name,
  ...(tool.title ? { title: tool.title } : {}),
  description: tool.description,
  inputSchema: tool.inputSchema,
  annotations: tool.annotations
})

export class ToolCatalog extends Context.Service<ToolCatalog, CatalogShape>()("openapi-mcp/ToolCatalog") {
  static readonly layerNoDeps = Layer.effect(ToolCatalog, Effect.gen(function*() {
    const config = yield* AppConfig
    const spec = yield* (yield* SpecLoader).load(config.spec)
    const result = mapSpec(spec, {
      baseUrl: Option.getOrUndefined(config.baseUrl),
      ...config.filters,
      toolNameMaxLength: config.toolNameMaxLength,
      descriptionMaxLength: config.descriptionMaxLength
    })
    for (const problem of result.skipped) {
      yield* Effect.logWarning(`skipped operation: ${problem.location}: ${problem.message}`)
    }
    // SSRF guard: a spec read from a URL may not aim calls at non-public addresses (--base-url is the operator's choice)
    if (Option.isNone(config.baseUrl) && /^https?:/i.test(spec.url)) {
      const refused = yield* refusedBaseUrl(result.tools.map((t) => t.baseUrl), { ...config.specSource, resolver: systemResolver })
      if (refused !== undefined) return yield* new CatalogError({ message: refused })
    }
    const noBase = result.skipped.filter((p) => p.message.startsWith("no base URL"))
    if (noBase.length > 0 && result.tools.length === 0) {
      return yield* new CatalogError({
        message: `no base URL for the upstream API: the spec's 'servers' list is missing or relative; pass --base-url <url> (or API_BASE_URL)`
      })
    }
    const info = isObject(spec.document["info"]) ? spec.document["info"] : {}
    const serverName = Option.getOrUndefined(config.name) ??
      (typeof info["title"] === "string" && info["title"].trim() !== "" ? info["title"].trim() : "openapi-mcp-server")
    const serverVersion = typeof info["version"] === "string" ? info["version"] : "0.0.0"
    const byName = new Map(result.tools.map((t) => [t.name, t]))
    const tagDescriptions: Record<string, string> = {}
    for (const tag of Array.isArray(spec.document["tags"]) ? spec.document["tags"] : []) {
      if (isObject(tag) && typeof tag["name"] === "string" && typeof tag["description"] === "string") {
        tagDescriptions[tag["name"]] = tag["description"].trim()
      }
    }
    yield* Effect.logInfo(
      `loaded ${spec.source}: OpenAPI ${spec.version}, ${result.operations} operations, ${result.tools.length} tools` +
        (result.filteredOut > 0 ? `, ${result.filteredOut} filtered out` : "") +
        (result.skipped.length > 0 ? `, ${result.skipped.length} skipped` : "") +
        (spec.files > 1 ? `, ${spec.files} files` : "")
    )
    return ToolCatalog.of({
      serverName,
      serverVersion,
      specUrl: spec.url,
      specVersion: spec.version,
      tools: result.tools,
      listing: result.tools.map(toListed),
      skipped: result.skipped,
      tagDescriptions,
      lookup: (name) => byName.get(name)
    })
  }))
}
