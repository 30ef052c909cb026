/**
 * MCP prompts and resources derived from the catalog, built once at start:
 * - one prompt per operation (how to call it, with its arguments filled in when given; its arguments'
 *   allowed values offered as completions),
 * - one prompt per tag (what that group of operations does, and which tools it has),
 * - with `--resources`, every GET operation without required arguments as a readable resource, and every GET
 *   operation whose required arguments are its path parameters as a resource template
 *   (`openapi-operation://getPet/{petId}`).
 */
import type { GetPromptResult, Prompt, Resource, ResourceTemplate } from "@modelcontextprotocol/sdk/types.js"
import type { Tool } from "./domain/Tool.ts"

export const RESOURCE_SCHEME = "openapi-operation://"

export interface PromptCatalog {
  readonly prompts: ReadonlyArray<Prompt>
  /** The prompt's messages, or undefined for an unknown name. */
  readonly get: (name: string, args: Readonly<Record<string, string>>) => GetPromptResult | undefined
  /** Values for a prompt's argument that begin with `prefix`: its enum (of the list's items), else its examples. */
  readonly complete: (name: string, argument: string, prefix: string) => ReadonlyArray<string>
}

const argumentLines = (tool: Tool): Array<string> => {
  const required = new Set(tool.inputSchema.required ?? [])
  return Object.entries(tool.inputSchema.properties).map(([name, raw]) => {
    const schema = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>
    const type = Array.isArray(schema["type"]) ? schema["type"].join("|") : typeof schema["type"] === "string" ? schema["type"] : "any"
    const desc = typeof schema["description"] === "string" ? ` — ${schema["description"].split("\n")[0]}` : ""
    const values = Array.isArray(schema["enum"]) ? ` (one of ${schema["enum"].map((v) => JSON.stringify(v)).join(", ")})` : ""
    return `- ${name}${required.has(name) ? " (required)" : ""}: ${type}${values}${desc}`
  })
}

export const buildPrompts = (
  tools: ReadonlyArray<Tool>,
  tagDescriptions: Readonly<Record<string, string>>
): PromptCatalog => {
  const byName = new Map(tools.map((t) => [t.name, t]))
  const tags = new Map<string, Array<Tool>>()
  for (const t of tools) for (const tag of t.tags) tags.set(tag, [...(tags.get(tag) ?? []), t])
  const tagPrompt = (tag: string) => `tag_${tag.replace(/[^A-Za-z0-9_-]+/g, "_")}`
  const tagByPrompt = new Map([...tags.keys()].map((tag) => [tagPrompt(tag), tag]))

  const prompts: Array<Prompt> = [
    ...tools.map((t): Prompt => ({
      name: t.name,
      ...(t.title ? { title: t.title } : {}),
      description: `How to call ${t.name} (${t.method} ${t.path})`,
      arguments: (t.inputSchema.required ?? []).map((name) => ({ name, description: `value for ${name}`, required: false }))
    })),
    ...[...tags.entries()].map(([tag, list]): Prompt => ({
      name: tagPrompt(tag),
      title: `${tag} operations`,
      description: tagDescriptions[tag] ?? `The ${list.length} operations tagged '${tag}'`
    }))
  ]

  const get = (name: string, args: Readonly<Record<string, string>>): GetPromptResult | undefined => {
    const tool = byName.get(name)
    if (tool !== undefined) {
      const given = Object.entries(args).filter(([, v]) => v !== undefined && v !== "")
      const text = [
        `Use the tool ${tool.name} to ${tool.title ?? `call ${tool.method} ${tool.path}`}.`,
        "",
        tool.description,
        "",
        "Arguments:",
        ...argumentLines(tool),
        ...(given.length > 0 ? ["", `Call it with: ${JSON.stringify(Object.fromEntries(given))} (and any other arguments needed).`] : [])
      ].join("\n")
      return { description: `How to call ${tool.name}`, messages: [{ role: "user", content: { type: "text", text } }] }
    }
    const tag = tagByPrompt.get(name)
    if (tag !== undefined) {
      const list = tags.get(tag) ?? []
      const text = [
        `The '${tag}' operations of this API${tagDescriptions[tag] ? `: ${tagDescriptions[tag]}` : "."}`,
        "",
        ...list.map((t) => `- ${t.name}: ${t.method} ${t.path}${t.title ? ` — ${t.title}` : ""}`)
      ].join("\n")
      return { description: `What the '${tag}' operations do`, messages: [{ role: "user", content: { type: "text", text } }] }
    }
    return undefined
  }

  const complete = (name: string, argument: string, prefix: string): ReadonlyArray<string> => {
    const raw = byName.get(name)?.inputSchema.properties[argument]
    const schema = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>
    const items = (typeof schema["items"] === "object" && schema["items"] !== null ? schema["items"] : {}) as Record<string, unknown>
    const values = [schema["enum"], items["enum"], schema["examples"]].find(Array.isArray) as Array<unknown> | undefined ??
      (schema["type"] === "boolean" ? [true, false] : [])
    const wanted = prefix.toLowerCase()
    return [...new Set(values.map((v) => typeof v === "string" ? v : JSON.stringify(v)))].filter((v) => v.toLowerCase().startsWith(wanted))
  }
  return { prompts, get, complete }
}

/** GET operations with no required arguments, as resources read by calling them. */
export const buildResources = (tools: ReadonlyArray<Tool>): ReadonlyArray<Resource> =>
  tools
    .filter((t) => t.method === "GET" && (t.inputSchema.required ?? []).length === 0)
    .map((t) => ({
      uri: `${RESOURCE_SCHEME}${t.name}`,
      name: t.name,
      ...(t.title ? { title: t.title } : {}),
      description: `${t.method} ${t.path}${t.title ? `: ${t.title}` : ""}`,
      mimeType: "application/json"
    }))

export interface TemplateEntry {
  readonly template: ResourceTemplate
  readonly tool: Tool
  /** The tool's arguments that the template's segments fill, in order. */
  readonly args: ReadonlyArray<string>
}

/** GET operations whose required arguments are exactly their path parameters, one URI segment each. */
export const buildResourceTemplates = (tools: ReadonlyArray<Tool>): ReadonlyArray<TemplateEntry> =>
  tools.flatMap((t) => {
    const required = t.inputSchema.required ?? []
    const args = t.params.filter((p) => p.in === "path").map((p) => p.arg)
    if (t.method !== "GET" || args.length === 0 || required.length !== args.length || !required.every((r) => args.includes(r))) return []
    // RFC 6570 variable names: letters, digits and _ (the segments are read by position)
    const vars = args.map((a, i) => `{${a.replace(/[^A-Za-z0-9_]/g, "_") || `arg${i}`}}`)
    return [{
      tool: t,
      args,
      template: {
        uriTemplate: `${RESOURCE_SCHEME}${t.name}/${vars.join("/")}`,
        name: t.name,
        ...(t.title ? { title: t.title } : {}),
        description: `${t.method} ${t.path}${t.title ? `: ${t.title}` : ""}`,
        mimeType: "application/json"
      }
    }]
  })

/** The tool and arguments a URI made from one of the templates names, if any (segments percent-decoded). */
export const fromTemplate = (entries: ReadonlyArray<TemplateEntry>, uri: string): { readonly tool: Tool; readonly args: Record<string, string> } | undefined => {
  if (!uri.startsWith(RESOURCE_SCHEME)) return undefined
  const [name, ...values] = uri.slice(RESOURCE_SCHEME.length).split("/")
  const entry = entries.find((e) => e.tool.name === name && e.args.length === values.length)
  if (entry === undefined || values.some((v) => v === "")) return undefined
  try {
    return { tool: entry.tool, args: Object.fromEntries(entry.args.map((a, i) => [a, decodeURIComponent(values[i]!)])) }
  } catch {
    return undefined // a malformed escape
  }
}
