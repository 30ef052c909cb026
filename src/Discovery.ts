/**
 * Discovery: what `tools/list` shows and how `tools/call` names are routed. With few operations every
 * operation is a tool ("all"). When the full listing would cost more than TOOL_BUDGET_TOKENS, the server
 * lists three meta-tools instead ("discover"): search the operations, describe one (its full input schema),
 * and call one by name with arguments validated exactly like a normal tool. Pinned operations stay listed
 * as normal tools, and every operation stays callable by its own name too.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "./AppConfig.ts"
import type { Tool } from "./domain/Tool.ts"
import { Invoker, type UnknownTool, unusable } from "./Invoker.ts"
import { fileArguments } from "./Invoker/LocalFiles.ts"
import { SELECT_ARGUMENT, SELECT_PROPERTY } from "./Invoker/Select.ts"
import { estimateTokens, exceedsBudget, inSlices, listedExtra, type ListedTool, ToolCatalog, toListed } from "./ToolCatalog.ts"
import { usable } from "./ToolCatalog/Mapping.ts"
import { isObject } from "./SpecLoader/Refs.ts"
import { indexBuilder, type SearchIndex } from "./ToolCatalog/Search.ts"

export const SEARCH = "search_operations"
export const DESCRIBE = "describe_operation"
export const CALL = "call_operation"

/** A tool as listed with `_select` (RESPONSE_SELECT) among its arguments. */
const selectable = (tool: ListedTool): ListedTool => ({
  ...tool,
  inputSchema: { ...tool.inputSchema, properties: { ...tool.inputSchema.properties, [SELECT_ARGUMENT]: SELECT_PROPERTY } }
})

const FILE_HINT = "Or file:///absolute/path of a local file, which the server reads and sends"

/** A tool as listed with its file arguments (the ones the Invoker reads local files for) saying they take local files too (UPLOAD_DIRS). */
const takesLocalFiles = (tool: Tool, listed: ListedTool): ListedTool => {
  const files = fileArguments(tool).filter((name) => isObject(listed.inputSchema.properties[name]))
  if (files.length === 0) return listed
  const properties = { ...listed.inputSchema.properties }
  for (const name of files) {
    const schema = properties[name] as Record<string, unknown>
    const described = schema["description"]
    properties[name] = { ...schema, description: typeof described === "string" ? `${described.replace(/[.\s]*$/, "")}. ${FILE_HINT}` : FILE_HINT }
  }
  return { ...listed, inputSchema: { ...listed.inputSchema, properties } }
}

export const metaTools = (operations: number, apiName: string, select = false): ReadonlyArray<ListedTool> => [
  {
    name: SEARCH,
    title: "Search API operations",
    description: `Find operations of the ${apiName} API (${operations} in all) by what they do. ` +
      `Returns the best matches with their tool name, HTTP method, path, summary and required arguments. ` +
      `Then use ${DESCRIBE} for an operation's full arguments and ${CALL} to call it.`,
    inputSchema: {
      type: "object",
      properties: {
        query: { type: "string", description: "Words describing the operation, e.g. 'create issue' or 'list pets by status'" },
        tag: { type: "string", description: "Only operations with this tag (optional)" },
        limit: { type: "integer", minimum: 1, maximum: 50, default: 10, description: "How many results (default 10)" }
      },
      required: ["query"],
      additionalProperties: false
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }
  },
  {
    name: DESCRIBE,
    title: "Describe an API operation",
    description: `Full description and JSON Schema of an operation's arguments, by the tool name ${SEARCH} returned.`,
    inputSchema: {
      type: "object",
      properties: { name: { type: "string", description: "The operation's tool name" } },
      required: ["name"],
      additionalProperties: false
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }
  },
  {
    name: CALL,
    title: "Call an API operation",
    description: `Call an operation by its tool name with its arguments (see ${DESCRIBE}). ` +
      `The arguments are checked against the operation's schema before the request is sent.`,
    inputSchema: {
      type: "object",
      properties: {
        name: { type: "string", description: "The operation's tool name" },
        arguments: { type: "object", description: "The operation's arguments", additionalProperties: true },
        ...(select ? { select: SELECT_PROPERTY } : {})
      },
      required: ["name"],
      additionalProperties: false
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true }
  }
]

const text = (value: unknown, summary: string): CallToolResult => ({
  content: [{ type: "text", text: summary }],
  structuredContent: value as Record<string, unknown>
})

const required = (t: Tool) => t.inputSchema.required ?? []

const isTool = (x: Tool | CallToolResult): x is Tool => "operationId" in x && "inputSchema" in x

export class Discovery extends Context.Service<Discovery, {
  readonly mode: "all" | "discover"
  /** What `tools/list` returns. */
  readonly listing: ReadonlyArray<ListedTool>
  /** A catalog tool as `tools/list` shows it. */
  readonly toListed: (tool: Tool) => ListedTool
  /** Routes a `tools/call`: meta-tools in discovery mode, otherwise the operation's tool. */
  readonly call: (name: string, args: unknown) => Effect.Effect<CallToolResult, UnknownTool>
}>()("openapi-mcp/Discovery") {
  static readonly layerNoDeps = Layer.effect(Discovery, Effect.gen(function*() {
    const config = yield* AppConfig
    const catalog = yield* ToolCatalog
    const invoker = yield* Invoker
    // (listing a tool builds it when it was mapped lazily; one whose operation cannot be mapped is left out)
    const uploads = config.uploads.dirs.length > 0
    const listedTool = !config.responseSelect && !uploads ? toListed : (t: Tool) => {
      const listed = toListed(t)
      const withFiles = uploads ? takesLocalFiles(t, listed) : listed
      return config.responseSelect ? selectable(withFiles) : withFiles
    }
    const listed = (tools: ReadonlyArray<Tool>) => usable(tools).map(listedTool)
    const mode = config.toolMode !== "auto"
      ? config.toolMode
      : exceedsBudget(catalog.tools, config.toolBudgetTokens, listedExtra(config)) ? "discover" : "all"
    if (mode === "all") return Discovery.of({ mode, listing: listed(catalog.tools), toListed: listedTool, call: invoker.call })

    const pins = new Set(config.pinOperations)
    const pinned = listed(catalog.tools.filter((t) => pins.has(t.name) || pins.has(t.operationId)))
    for (const pin of pins) {
      if (!catalog.tools.some((t) => t.name === pin || t.operationId === pin)) {
        yield* Effect.logWarning(`--pin-operations: '${pin}' matches no tool`)
      }
    }
    const listing = [...metaTools(catalog.tools.length, catalog.serverName, config.responseSelect), ...pinned]
    // the search index: not at start (0.05-0.15 s for a thousand operations) but in the background soon
    // after start-up; a search before then completes it
    const builder = indexBuilder(catalog.tools)
    const index = { search: (...args: Parameters<SearchIndex["search"]>) => builder.index().search(...args) }
    const stop = inSlices((until) => builder.step(until) && (builder.index(), true))
    yield* Effect.addFinalizer(() => Effect.sync(stop))
    yield* Effect.logInfo(
      `discovery mode: ${catalog.tools.length} tools behind ${SEARCH}/${DESCRIBE}/${CALL}` +
        (config.toolMode === "auto" ? ` (listing them all would exceed TOOL_BUDGET_TOKENS, ${config.toolBudgetTokens})` : "") +
        (pinned.length > 0 ? ` plus ${pinned.length} pinned` : "") + ` (~${estimateTokens(listing)} tokens listed)`
    )

    const lookup = (name: unknown): Tool | CallToolResult => {
      const tool = typeof name === "string" ? catalog.lookup(name) : undefined
      if (tool !== undefined) return tool
      const suggestions = typeof name === "string" ? index.search(name, { limit: 5 }).map((h) => h.tool.name) : []
      return {
        isError: true,
        content: [{
          type: "text",
          text: `No operation named ${JSON.stringify(name)}.` +
            (suggestions.length > 0 ? ` Similar: ${suggestions.join(", ")}.` : "") + ` Use ${SEARCH} to find one.`
        }]
      }
    }

    const call = (name: string, raw: unknown): Effect.Effect<CallToolResult, UnknownTool> => {
      const args = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>
      switch (name) {
        case SEARCH: {
          if (typeof args["query"] !== "string" || args["query"].trim() === "") {
            return Effect.succeed({ isError: true, content: [{ type: "text", text: `'query' is required: words describing the operation` }] })
          }
          const hits = index.search(args["query"], {
            ...(typeof args["limit"] === "number" ? { limit: args["limit"] } : {}),
            ...(typeof args["tag"] === "string" ? { tag: args["tag"] } : {})
          })
          const results = hits.map(({ tool }) => ({
            name: tool.name, method: tool.method, path: tool.path, summary: tool.title ?? tool.description.split("\n")[0]!,
            required: required(tool)
          }))
          const lines = results.map((r) =>
            `${r.name} — ${r.method} ${r.path} — ${r.summary}${r.required.length > 0 ? ` (required: ${r.required.join(", ")})` : ""}`
          )
          return Effect.succeed(text(
            { results },
            results.length === 0
              ? `No operation matches ${JSON.stringify(args["query"])}; try other words.`
              : `${lines.join("\n")}\n\nUse ${DESCRIBE} for an operation's arguments, then ${CALL}.`
          ))
        }
        case DESCRIBE: {
          const found = lookup(args["name"])
          if (!isTool(found)) return Effect.succeed(found)
          const broken = unusable(found)
          if (broken !== undefined) return Effect.succeed(broken)
          const described = {
            name: found.name, method: found.method, path: found.path, description: found.description,
            inputSchema: listedTool(found).inputSchema, annotations: found.annotations
          }
          return Effect.succeed(text(described, JSON.stringify(described)))
        }
        case CALL: {
          const found = lookup(args["name"])
          if (!isTool(found)) return Effect.succeed(found)
          const given = args["arguments"] ?? {}
          // RESPONSE_SELECT: call_operation's `select` is the operation's `_select`
          const selects = config.responseSelect && args["select"] !== undefined && isObject(given)
          return invoker.call(found.name, selects ? { ...given, [SELECT_ARGUMENT]: args["select"] } : given)
        }
        default:
          return invoker.call(name, raw)
      }
    }
    return Discovery.of({ mode, listing, toListed: listedTool, call })
  }))
}
