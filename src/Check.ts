/**
 * `openapi-mcp-server check`: loads a spec exactly as `serve` would and reports what an agent will get:
 * operations and tools, skipped operations with reasons, renamed tools, cut schemas, unsupported media
 * types, file fields, union bodies, optional bodies with required fields, required fields without a schema,
 * descriptions that read like instructions to a model, the `tools/list` token bill per tool mode, and
 * which credentials the operations ask for and which this configuration gives. Exit code 1 when the spec
 * does not load or operations are skipped, so it works as a CI gate.
 */
import { Effect, Option } from "effect"
import type { Settings } from "./AppConfig.ts"
import { describeScheme } from "./Auth/Requirements.ts"
import { schemeKey } from "./Auth/Settings.ts"
import { metaTools } from "./Discovery.ts"
import type { SecurityScheme, Tool } from "./domain/Tool.ts"
import { mendedYamlDetail, shownUrl, SpecLoader } from "./SpecLoader.ts"
import { isObject, type JsonObject } from "./SpecLoader/Refs.ts"
import { estimateTokens, listedExtra, mappingOptions, toListed } from "./ToolCatalog.ts"
import { fitName, mapSpec, mediaKind, sanitizeName } from "./ToolCatalog/Mapping.ts"
import { UNDESCRIBED_FIELD } from "./ToolCatalog/Schema.ts"

export interface Finding {
  readonly kind: string
  readonly subject: string
  readonly detail: string
}

export interface CheckReport {
  readonly spec: { readonly source: string; readonly version: string; readonly files: number; readonly title: string }
  readonly operations: number
  readonly tools: number
  readonly filteredOut: number
  readonly errors: ReadonlyArray<Finding>
  readonly warnings: ReadonlyArray<Finding>
  readonly notes: ReadonlyArray<Finding>
  readonly tokens: { readonly all: number; readonly discover: number; readonly budget: number; readonly autoMode: "all" | "discover" }
  readonly security: SecuritySummary
}

/** Which credentials the operations ask for, and which of them this configuration gives (never a value). */
export interface SecuritySummary {
  readonly schemes: ReadonlyArray<{
    readonly scheme: string
    readonly kind: string
    /** What its credential is: `the key`, `user:password`, `a token`, `a client certificate`, or `cannot be sent` (this server cannot). */
    readonly credential: string
    /** Operations with the scheme in one of their security alternatives. */
    readonly operations: number
    readonly scopes: ReadonlyArray<string>
    /** The variable that gives it a credential (or `security_schemes.<name>` in the config file). */
    readonly setting: string
    /** An oauth2 scheme's token URL per flow (`clientCredentials`, `authorizationCode`…), as the spec gives them. */
    readonly tokenUrls?: Readonly<Record<string, string>>
    readonly configured: boolean
  }>
  /** Operations that declare no security requirement, or an empty alternative (credential optional). */
  readonly open: number
  /** --auth-type: sent to every operation that gets no scheme credential. */
  readonly authType: Settings["auth"]["type"]
  /** Names of the headers sent with every request (API_HEADERS). */
  readonly headers: ReadonlyArray<string>
  /** Headers of the client's request sent on to the API (MCP_FORWARD_HEADERS): `X-Api-Key`, `authorization (from x-upstream-authorization)`. */
  readonly forwarded: ReadonlyArray<string>
}

/** What a scheme's credential is: the key, user:password, a token. */
const credentialOf = (d: SecurityScheme): string =>
  d.type === "apiKey" ? "the key"
  : d.type === "http" && d.scheme === "basic" ? "user:password"
  : d.type === "mutualTLS" ? "a client certificate"
  : d.type === "unsupported" ? "cannot be sent"
  : "a token"

/** The token URLs of an oauth2 scheme's flows as the document writes them (for the operator's AUTH_OAUTH2_TOKEN_URL). */
const tokenUrlsOf = (document: JsonObject, scheme: string): Record<string, string> => {
  const components = document["components"]
  const schemes = isObject(components) ? components["securitySchemes"] : undefined
  const node = isObject(schemes) ? schemes[scheme] : undefined
  const flows = isObject(node) && isObject(node["flows"]) ? node["flows"] : {}
  const urls: Record<string, string> = {}
  for (const [flow, value] of Object.entries(flows)) {
    if (isObject(value) && typeof value["tokenUrl"] === "string") urls[flow] = value["tokenUrl"]
  }
  return urls
}

const securitySummary = (tools: ReadonlyArray<Tool>, auth: Settings["auth"], inbound: Settings["inbound"], document: JsonObject): SecuritySummary => {
  const schemes = new Map<string, { kind: string; credential: string; operations: number; scopes: Set<string> }>()
  let open = 0
  for (const tool of tools) {
    const security = tool.security ?? []
    if (security.length === 0 || security.some((alt) => alt.length === 0)) open++
    const seen = new Set<string>()
    for (const entry of security.flat()) {
      const s = schemes.get(entry.scheme) ??
        { kind: describeScheme(entry.definition), credential: credentialOf(entry.definition), operations: 0, scopes: new Set<string>() }
      schemes.set(entry.scheme, s)
      for (const scope of entry.scopes) s.scopes.add(scope)
      if (!seen.has(entry.scheme)) {
        seen.add(entry.scheme)
        s.operations++
      }
    }
  }
  return {
    schemes: [...schemes].map(([scheme, s]) => {
      const tokenUrls = s.kind === "oauth2" ? tokenUrlsOf(document, scheme) : {}
      return {
        scheme, kind: s.kind, credential: s.credential, operations: s.operations, scopes: [...s.scopes].sort(),
        ...(Object.keys(tokenUrls).length > 0 ? { tokenUrls } : {}),
        ...(s.credential === "a client certificate"
          ? { setting: "AUTH_CLIENT_CERT", configured: Option.isSome(auth.clientCert) }
          : { setting: `AUTH_SCHEME_${schemeKey(scheme)}`, configured: Object.hasOwn(auth.schemes, schemeKey(scheme)) })
      }
    }),
    open,
    authType: auth.type,
    headers: Object.keys(auth.headers),
    forwarded: inbound.forwardHeaders.map((f) => f.from === f.to ? f.to : `${f.to} (from ${f.from})`)
  }
}

/** Phrases that address a model rather than describe an API: a prompt-injection risk in tool descriptions. */
const INSTRUCTION_LIKE = [
  /ignore (all |any )?(the )?(previous|prior|above|earlier) (instructions|prompts?|messages)/i,
  /disregard (all |any )?(the )?(previous|prior|above|system)/i,
  /\byou are now\b|\bact as (a|an|the)\b/i,
  /\bsystem prompt\b|<\/?(system|assistant|instructions?)>/i,
  /\b(do not|don't|never) (tell|inform|mention (this )?to) the user\b/i,
  /\b(assistant|ai|model|llm)s? (must|should) (always|never)\b/i,
  /\bcall (this|the following) tool (first|before|instead)\b/i
]

const CUT_NOTES: ReadonlyArray<readonly [RegExp, string]> = [
  [/\(recursive '([^']+)' structure/, "recursive schema cut"],
  [/nesting limit \d+\)/, "schema cut at the nesting limit"],
  [/\(schema size limit\)/, "schema cut at the size limit"]
]

const toolFindings = (tool: Tool, maxName: number) => {
  const warnings: Array<Finding> = []
  const notes: Array<Finding> = []
  const base = sanitizeName(tool.operationId)
  if (/^(get|put|post|delete|options|head|patch|trace)_\//.test(tool.operationId)) {
    notes.push({ kind: "no-operation-id", subject: tool.operationId.replace("_", " "), detail: `named '${tool.name}'` })
  } else if (base !== tool.operationId) {
    notes.push({ kind: "name-sanitised", subject: tool.operationId, detail: `tool name '${tool.name}'` })
  }
  if (fitName(base, maxName) !== base) {
    warnings.push({ kind: "name-truncated", subject: tool.operationId, detail: `cut to '${tool.name}' (${base.length} > ${maxName} characters)` })
  } else if (tool.name !== fitName(base, maxName) && base !== "") {
    warnings.push({ kind: "name-deduplicated", subject: tool.operationId, detail: `renamed '${tool.name}' (another operation has the name '${base}')` })
  }
  const schemaText = JSON.stringify(tool.inputSchema)
  for (const [pattern, label] of CUT_NOTES) {
    const m = pattern.exec(schemaText)
    if (m) notes.push({ kind: "schema-cut", subject: tool.name, detail: m[1] ? `${label} at '${m[1]}'` : label })
  }
  const body = tool.body
  if (body !== undefined) {
    if (mediaKind(body.mediaType) === undefined) {
      warnings.push({ kind: "unsupported-media-type", subject: tool.name, detail: `request body ${body.mediaType} is sent as text` })
    }
    if (body.kind === "binary" || body.fileFields.length > 0) {
      notes.push({ kind: "binary-fields", subject: tool.name, detail: body.kind === "binary" ? `${body.mediaType} body (base64 or data: URI)` : `file fields: ${body.fileFields.join(", ")}` })
    }
    const dependent = tool.inputSchema.dependentRequired
    if (dependent !== undefined) {
      const needed = [...new Set(Object.values(dependent).flat())]
      notes.push({ kind: "optional-body-with-required-fields", subject: tool.name, detail: `the spec leaves the body optional; when sent it needs ${needed.join(", ")}` })
    }
    for (const [arg, schema] of Object.entries(tool.inputSchema.properties)) {
      if (isObject(schema as never) && (schema as { description?: unknown }).description === UNDESCRIBED_FIELD) {
        warnings.push({ kind: "undescribed-required-field", subject: tool.name, detail: `body field '${arg}' is required but has no schema: any value is accepted` })
      }
    }
    const bodySchema = body.arg !== undefined ? tool.inputSchema.properties[body.arg] : undefined
    if (isObject(bodySchema as never) && Array.isArray((bodySchema as Record<string, unknown>)["anyOf"])) {
      notes.push({ kind: "union-body", subject: tool.name, detail: `alternatives kept inside the '${body.arg}' argument` })
    }
  }
  const text = `${tool.description}\n${schemaText}`
  for (const pattern of INSTRUCTION_LIKE) {
    const m = pattern.exec(text)
    if (m) {
      warnings.push({ kind: "instruction-like-text", subject: tool.name, detail: `description contains "${m[0]}": text aimed at the model, a prompt-injection risk` })
      break
    }
  }
  return { warnings, notes }
}

/** Builds the report; fails only when the spec cannot be loaded. */
export const buildReport = (settings: Settings) =>
  Effect.gen(function*() {
    const spec = yield* (yield* SpecLoader).load(settings.spec)
    const placeholder = "http://base-url.invalid"
    const mapped = mapSpec(spec, mappingOptions(settings, Option.getOrUndefined(settings.baseUrl)))
    const errors: Array<Finding> = []
    const warnings: Array<Finding> = []
    const notes: Array<Finding> = []
    let tools = mapped.tools
    const noBase = mapped.skipped.filter((p) => p.message.startsWith("no base URL"))
    if (noBase.length > 0) {
      // report the missing base URL once, and check the rest as if one were given
      warnings.push({ kind: "no-base-url", subject: spec.source, detail: `${noBase.length} operations have no absolute servers URL: --base-url will be required` })
      const again = mapSpec(spec, mappingOptions(settings, placeholder))
      tools = again.tools
      for (const p of again.skipped) errors.push({ kind: "skipped-operation", subject: p.location, detail: p.message })
    } else {
      for (const p of mapped.skipped) errors.push({ kind: "skipped-operation", subject: p.location, detail: p.message })
    }
    for (const [url, lines] of spec.mendedYaml) {
      warnings.push({ kind: "yaml-indentation", subject: shownUrl(url), detail: mendedYamlDetail(lines) })
    }
    for (const tool of tools) {
      const f = toolFindings(tool, settings.toolNameMaxLength)
      warnings.push(...f.warnings)
      notes.push(...f.notes)
    }
    const listing = tools.map(toListed)
    const info = isObject(spec.document["info"]) ? spec.document["info"] : {}
    const title = typeof info["title"] === "string" ? info["title"] : spec.source
    const pins = new Set(settings.pinOperations)
    const pinned = tools.filter((t) => pins.has(t.name) || pins.has(t.operationId)).map(toListed)
    const all = estimateTokens(listing) + Math.ceil(tools.length * listedExtra(settings) / 4)
    const discover = estimateTokens([...metaTools(tools.length, title), ...pinned])
    return {
      spec: { source: spec.source, version: spec.version, files: spec.files, title },
      operations: mapped.operations,
      tools: tools.length,
      filteredOut: mapped.filteredOut,
      errors,
      warnings,
      notes,
      tokens: { all, discover, budget: settings.toolBudgetTokens, autoMode: all <= settings.toolBudgetTokens ? "all" : "discover" },
      security: securitySummary(tools, settings.auth, settings.inbound, spec.document)
    } satisfies CheckReport
  })

const group = (findings: ReadonlyArray<Finding>): Array<string> => {
  const lines: Array<string> = []
  const byKind = new Map<string, Array<Finding>>()
  for (const f of findings) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f])
  for (const [kind, list] of byKind) {
    lines.push(`  ${kind} (${list.length}):`)
    for (const f of list.slice(0, 25)) lines.push(`    - ${f.subject}: ${f.detail}`)
    if (list.length > 25) lines.push(`    … and ${list.length - 25} more (use --format json for all)`)
  }
  return lines
}

export const formatText = (r: CheckReport): string => {
  const n = (x: number) => x.toLocaleString("en-US")
  const lines = [
    `Spec: ${r.spec.title} (${r.spec.source}; OpenAPI ${r.spec.version}${r.spec.files > 1 ? `, ${r.spec.files} files` : ""})`,
    `Operations: ${r.operations}; tools: ${r.tools}; filtered out: ${r.filteredOut}; skipped: ${r.errors.filter((e) => e.kind === "skipped-operation").length}`,
    `tools/list size: ~${n(r.tokens.all)} tokens with every operation listed; ~${n(r.tokens.discover)} tokens in discovery mode;` +
      ` auto mode (budget ${n(r.tokens.budget)}) lists ${r.tokens.autoMode === "all" ? "every operation" : "the discovery meta-tools"}`
  ]
  const sec = r.security
  if (sec.schemes.length > 0 || sec.authType !== "none" || sec.headers.length > 0) {
    lines.push("", "Authentication (credentials are never shown):")
    for (const s of sec.schemes) {
      lines.push(`  - ${s.scheme} (${s.kind}${s.scopes.length > 0 ? `; scopes ${s.scopes.join(" ")}` : ""}): ${n(s.operations)} operation${s.operations === 1 ? "" : "s"}; ` +
        (s.credential === "cannot be sent" ? "this server cannot send it"
          : `${s.setting} (${s.credential}) ${s.configured ? "is set" : "is not set"}`) +
        (s.tokenUrls !== undefined
          ? `; or --auth-type oauth2 with AUTH_OAUTH2_TOKEN_URL, the spec's ${Object.entries(s.tokenUrls).map(([flow, url]) => `${url} (${flow})`).join(", ")}`
          : ""))
    }
    if (sec.open > 0) lines.push(`  - ${n(sec.open)} operation${sec.open === 1 ? "" : "s"} need no credential`)
    lines.push(sec.authType === "none"
      ? "  --auth-type: none (operations whose scheme has no credential are sent without one)"
      : `  --auth-type ${sec.authType}: sent to every operation that gets no scheme credential`)
    if (sec.headers.length > 0) lines.push(`  headers sent with every request (API_HEADERS): ${sec.headers.join(", ")}`)
    if (sec.forwarded.length > 0) lines.push(`  headers of the client's request sent on to the API (MCP_FORWARD_HEADERS): ${sec.forwarded.join(", ")}`)
  }
  if (r.errors.length > 0) lines.push("", `Errors (${r.errors.length}):`, ...group(r.errors))
  if (r.warnings.length > 0) lines.push("", `Warnings (${r.warnings.length}):`, ...group(r.warnings))
  if (r.notes.length > 0) lines.push("", `Notes (${r.notes.length}):`, ...group(r.notes))
  lines.push("", r.errors.length > 0 ? "Result: errors found" : "Result: OK")
  return `${lines.join("\n")}\n`
}
