/**
 * McpServer: the MCP SDK's low-level `Server` bound to the ToolCatalog and the Invoker. One SDK server is
 * made per connection (stdio, or each Streamable HTTP session); they share the catalog, whose `tools/list`
 * answer is precomputed. Also runs the stdio transport, where stdout carries MCP messages and nothing else.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv"
import type { jsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/types.js"
import {
  type CallToolRequest, type CallToolResult, CompleteRequestSchema, ErrorCode, GetPromptRequestSchema, ListPromptsRequestSchema,
  ListResourcesRequestSchema, ListResourceTemplatesRequestSchema, ListToolsRequestSchema, LoggingLevelSchema, McpError,
  ReadResourceRequestSchema, type RequestId, type ServerNotification, SetLevelRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import { Cause, Context, Effect, Exit, Layer, Metric, Option } from "effect"
import { AppConfig } from "./AppConfig.ts"
import { CallerToken } from "./Auth.ts"
import { exchangesCallerToken } from "./Auth/Settings.ts"
import { CALL, DESCRIBE, Discovery, SEARCH } from "./Discovery.ts"
import { ForwardedHeaders, toolError, type UnknownTool } from "./Invoker.ts"
import { buildPrompts, buildResources, buildResourceTemplates, fromTemplate, RESOURCE_SCHEME, type TemplateEntry } from "./Prompts.ts"
import {
  circuitBreakerState, type ClientLogSink, outcomeOf, serveRequest, serveToolCall, specOperations, ToolTelemetry, unknownToolTelemetry
} from "./Telemetry.ts"
import { type CatalogShape, type ListedTool, ToolCatalog } from "./ToolCatalog.ts"
import { usable } from "./ToolCatalog/Mapping.ts"
import { closeNames } from "./ToolCatalog/Search.ts"
import { dispatchPlainRequests, inFlightCalls, setToolCallHandler, type ToolCallExtra } from "./McpServer/Dispatch.ts"
import { CallLimit } from "./McpServer/CallLimit.ts"
import { StdioTransport } from "./McpServer/StdioTransport.ts"
import { originOf } from "./Upstream.ts"

/** MCP log levels, least severe first. */
const LOG_LEVELS: ReadonlyArray<string> = LoggingLevelSchema.options

export const PACKAGE_VERSION = "0.1.0"

/**
 * One JSON Schema validator (Ajv) for every SDK Server of the process, made when first needed (the SDK uses
 * it only to check elicitation answers): by default each Server makes its own, a few ms at start and
 * about a millisecond per Streamable HTTP session.
 */
let ajv: AjvJsonSchemaValidator | undefined
const sharedValidator: jsonSchemaValidator = { getValidator: (schema) => (ajv ??= new AjvJsonSchemaValidator()).getValidator(schema) }

/**
 * A tools/call naming no tool is the client's mistake: the protocol error InvalidParams, not a tool result,
 * naming the tools it may have meant.
 */
const unknownTool = (names: () => ReadonlyArray<string>) => (e: UnknownTool) => {
  const close = closeNames(e.name, names())
  const shown = e.name.length > 100 ? `${e.name.slice(0, 100)}…` : e.name
  return Effect.die(new McpError(ErrorCode.InvalidParams, `Unknown tool: ${shown}${close.length > 0 ? ` (did you mean ${close.join(", ")}?)` : ""}`))
}

/** What the server serves from one load of the spec; a reload (--watch) replaces it as a whole. */
interface Generation {
  readonly catalog: CatalogShape
  readonly discovery: Discovery["Service"]
  readonly listResult: { readonly tools: Array<never> }
  readonly unknownToolOf: (e: UnknownTool) => Effect.Effect<never>
  /** The telemetry a call counts and traces as (call_operation: the operation it calls, when that is a catalog tool). */
  readonly telemetryFor: (name: string, args: unknown) => ToolTelemetry
  readonly promptsOf: () => ReturnType<typeof buildPrompts>
  readonly resourcesOf: () => ReturnType<typeof buildResources>
  readonly templatesOf: () => ReadonlyArray<TemplateEntry>
}

const generation = (catalog: CatalogShape, discovery: Discovery["Service"]): Generation => {
  // metric label sets and span names: per discovery meta-tool now, per catalog tool at its first call
  const telemetry = new Map<string, ToolTelemetry>()
  for (const t of discovery.listing) {
    if (catalog.lookup(t.name) === undefined) telemetry.set(t.name, new ToolTelemetry(t.name, undefined, undefined, undefined, undefined))
  }
  /** A known name's telemetry (a name the catalog does not know gets none: it is no metric label). */
  const known = (name: string): ToolTelemetry | undefined => {
    let found = telemetry.get(name)
    if (found === undefined) {
      const tool = catalog.lookup(name)
      if (tool !== undefined) telemetry.set(name, found = ToolTelemetry.forTool(tool))
    }
    return found
  }
  // built on first use: they read every tool's arguments (a lazily mapped catalog builds them on first read;
  // an operation that turns out unmappable is left out, as from the tool list)
  let prompts: ReturnType<typeof buildPrompts> | undefined
  let resources: ReturnType<typeof buildResources> | undefined
  let templates: ReadonlyArray<TemplateEntry> | undefined
  return {
    catalog,
    discovery,
    listResult: { tools: discovery.listing as Array<never> },
    unknownToolOf: unknownTool(() => [...new Set([...discovery.listing.map((t) => t.name), ...catalog.tools.map((t) => t.name)])]),
    telemetryFor: (name, args) => {
      const target = name === CALL && typeof args === "object" && args !== null ? (args as Record<string, unknown>)["name"] : undefined
      return (typeof target === "string" ? known(target) : undefined) ?? known(name) ?? unknownToolTelemetry
    },
    promptsOf: () => prompts ??= buildPrompts(usable(catalog.tools), catalog.tagDescriptions),
    resourcesOf: () => resources ??= buildResources(usable(catalog.tools)),
    templatesOf: () => templates ??= buildResourceTemplates(usable(catalog.tools))
  }
}

/** The spec's size and upstreams, as gauges: operations, and a closed circuit breaker per origin not in `seen`. */
const specGauges = (catalog: CatalogShape, seen: Set<string>) =>
  Effect.gen(function*() {
    yield* Metric.update(specOperations, catalog.tools.length)
    for (const origin of new Set([...new Set(catalog.tools.map((t) => t.baseUrl))].map(originOf))) {
      if (seen.has(origin)) continue
      seen.add(origin)
      yield* Metric.update(circuitBreakerState(origin), 0)
    }
  })

export class McpServer extends Context.Service<McpServer, {
  /** A new SDK server wired to the catalog and its tool surface (Discovery), ready to connect to one transport. */
  readonly create: () => Server
  /** Serves MCP over this process's stdin/stdout until stdin ends or the client disconnects. */
  readonly serveStdio: Effect.Effect<void>
  /** The catalog being served: the latest the spec was loaded into. */
  readonly catalog: () => CatalogShape
  /**
   * Serves a spec loaded again from now on: requests and connections that come later use it (calls already
   * running finish on the one they started on), and every open connection is told that its tools (and
   * prompts and resources) changed.
   */
  readonly replace: (catalog: CatalogShape, discovery: Discovery["Service"]) => Effect.Effect<void>
}>()("openapi-mcp/McpServer") {
  static readonly layerNoDeps = Layer.effect(McpServer, Effect.gen(function*() {
    const config = yield* AppConfig
    let current = generation(yield* ToolCatalog, yield* Discovery)
    // Handlers run outside any fiber: run them with this layer's context (logger, tracer, services).
    const context = yield* Effect.context<never>()
    const runPromise = Effect.runPromiseWith(context)
    const runPromiseExit = Effect.runPromiseExitWith(context)
    const runFork = Effect.runForkWith(context)
    const runSync = Effect.runSyncWith(context)
    const origins = new Set<string>()
    yield* specGauges(current.catalog, origins)
    const instructions = () => {
      const { catalog, discovery } = current
      return discovery.mode === "all"
        ? `Tools for the ${catalog.serverName} HTTP API. Each tool is one API operation; ` +
          `its description names the HTTP method and path. Failed calls return an error result that says why.`
        : `The ${catalog.serverName} HTTP API has ${catalog.tools.length} operations. Find one with ${SEARCH}, ` +
          `read its arguments with ${DESCRIBE}, call it with ${CALL}. Failed calls return an error result that says why.`
    }
    const forward = config.inbound.forwardHeaders
    // a grant exchanges the OAuth token of the client's request (validated by the HTTP layer) for the API's
    const exchanging = Option.isSome(config.inbound.oauth.jwksUrl) &&
      [config.auth, ...config.additionalSpecs.map((s) => s.auth)].some((auth) => auth !== undefined && exchangesCallerToken(auth))
    /**
     * A call with what of the client's HTTP request goes on to the API: the headers of MCP_FORWARD_HEADERS, and
     * the OAuth token a grant exchanges (AUTH_OAUTH2_GRANT).
     */
    const forwarding = <A, E, R>(call: Effect.Effect<A, E, R>, extra: { readonly requestInfo?: { readonly headers?: unknown } | undefined }) => {
      if (forward.length === 0 && !exchanging) return call
      const headers = (extra.requestInfo?.headers ?? {}) as Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
      const authorization = headers["authorization"]
      const withCaller = exchanging && typeof authorization === "string" && /^bearer /i.test(authorization)
        ? Effect.provideService(call, CallerToken, authorization.slice(7).trim())
        : call
      const forwarded: Record<string, string> = {}
      for (const { from, to } of forward) {
        const value = headers[from]
        if (typeof value === "string") forwarded[to] = value
      }
      return Object.keys(forwarded).length === 0 ? withCaller : Effect.provideService(withCaller, ForwardedHeaders, forwarded)
    }
    const reloadable = config.watch || config.transport === "http"
    /** The SDK servers of open connections, told when a reload changes what they list. */
    const connected = new Set<Server>()

    /**
     * With --confirm-destructive, a destructive operation (DELETE), called directly or through
     * call_operation, is sent only after the user accepts it through MCP elicitation.
     */
    const confirmDestructive = async (
      server: Server,
      name: string,
      args: unknown,
      requestId: string | number
    ): Promise<CallToolResult | undefined> => {
      const target = name === CALL && typeof args === "object" && args !== null ? (args as Record<string, unknown>)["name"] : name
      const tool = typeof target === "string" ? current.catalog.lookup(target) : undefined
      if (tool === undefined || !tool.annotations.destructiveHint) return undefined
      const callArgs = name === CALL ? (args as Record<string, unknown>)["arguments"] ?? {} : args ?? {}
      const refuse = (why: string): CallToolResult => ({ isError: true, content: [{ type: "text", text: `Not sent: ${why}` }] })
      if (server.getClientCapabilities()?.elicitation === undefined) {
        return refuse(`${tool.name} (${tool.method} ${tool.path}) needs the user's confirmation (--confirm-destructive), and this client cannot ask for it.`)
      }
      try {
        const answer = await server.elicitInput({
          message: `Allow ${tool.method} ${tool.path} (${tool.name}) with ${JSON.stringify(callArgs)}? This cannot be undone.`,
          requestedSchema: {
            type: "object",
            properties: { confirm: { type: "boolean", title: "Send this request", description: "Yes to send it" } },
            required: ["confirm"]
          }
        }, { relatedRequestId: requestId }) // over HTTP: on the stream of the call that asks
        if (answer.action === "accept" && answer.content?.["confirm"] === true) return undefined
        return refuse(`the user declined ${tool.name} (${tool.method} ${tool.path}); nothing was changed.`)
      } catch (e) {
        return refuse(`asking the user to confirm ${tool.name} failed (${(e as Error).message}); nothing was sent.`)
      }
    }

    /** While a call runs, one progress notification a second, when the client asked for them. */
    const reportProgress = (
      token: string | number | undefined,
      extra: { sendNotification: (n: ServerNotification) => Promise<void> },
      name: string
    ): (() => void) => {
      if (token === undefined) return () => {}
      let seconds = 0
      const timer = setInterval(() => {
        seconds++
        void extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress: seconds, message: `${name}: waiting for the API (${seconds} s)` }
        }).catch(() => undefined)
      }, 1000)
      return () => clearInterval(timer)
    }

    /** Who a call came from: the client the HTTP layer admitted, else the session, else the one client of stdio. */
    const clientOf = (extra: ToolCallExtra) =>
      extra.authInfo?.clientId ?? (extra.sessionId === undefined ? "stdio" : `session:${extra.sessionId}`)

    /** AUDIT_LOG: one line per call, who called which tool and how it ended (never its arguments or answer). */
    const audit = (tool: string, extra: ToolCallExtra, result: CallToolResult, started: number) =>
      void runFork(Effect.logInfo("tool call").pipe(Effect.annotateLogs({
        tool, client: clientOf(extra), outcome: outcomeOf(result), duration_ms: Math.round((performance.now() - started) * 10) / 10,
        ...(extra.sessionId !== undefined ? { session: extra.sessionId } : {})
      })))

    // MCP_MAX_CALLS_PER_MINUTE, over all of a client's sessions (the one client of stdio: "stdio")
    const perMinute = config.inbound.maxCallsPerMinute
    const limit = perMinute > 0 ? new CallLimit(perMinute) : undefined
    /** The call's work, or at once a tool error when its client made more calls this minute than allowed. */
    const limited = <E, R>(work: Effect.Effect<CallToolResult, E, R>, extra: ToolCallExtra): Effect.Effect<CallToolResult, E, R> => {
      const wait = limit?.take(clientOf(extra), Date.now())
      if (wait === undefined) return work
      const seconds = Math.max(1, Math.ceil(wait / 1000))
      return Effect.succeed(toolError(
        `Not sent: this server allows ${perMinute} tool calls per minute per client (MCP_MAX_CALLS_PER_MINUTE), and this client has made ` +
          `them; call again in about ${seconds} s.`,
        { error: "rate_limited", retry_after_seconds: seconds }
      ))
    }

    const create = () => {
      const { catalog, discovery } = current
      const server = new Server(
        { name: catalog.serverName, version: catalog.serverVersion, title: catalog.serverName },
        {
          capabilities: {
            // in discovery mode, described operations join this connection's tool list; a reload (--watch, or SIGHUP
            // over HTTP) changes them all
            tools: { listChanged: discovery.mode === "discover" || reloadable },
            ...(config.prompts ? { prompts: { listChanged: reloadable }, completions: {} } : {}),
            ...(config.resources ? { resources: { listChanged: reloadable } } : {}),
            // a call's warnings and errors (an unreachable API, a refused credential) reach the client that made it
            logging: {}
          },
          instructions: instructions(),
          jsonSchemaValidator: sharedValidator
        }
      )
      connected.add(server)
      const closed = server.onclose
      server.onclose = () => {
        connected.delete(server)
        closed?.()
      }
      const inFlight = inFlightCalls(server)
      /** The least severe log message this client wants (logging/setLevel); warnings and errors are all that is sent. */
      let minimum = 0
      server.setRequestHandler(SetLevelRequestSchema, (request) => {
        minimum = LOG_LEVELS.indexOf(request.params.level)
        return {}
      })
      /** A call's MCP log: its messages go with the call (on its event stream over HTTP), to this client only. */
      const clientLog = (requestId: RequestId): ClientLogSink => (level, data) => {
        if (LOG_LEVELS.indexOf(level) < minimum) return
        void server.notification({ method: "notifications/message", params: { level, logger: "openapi-mcp-server", data } }, { relatedRequestId: requestId })
          .catch(() => undefined)
      }
      /** Operations described on this connection (discovery mode), listed as tools of their own from then on. */
      let promoted: Array<ListedTool> = []
      let listed = new Set(discovery.listing.map((t) => t.name))
      let promotedFrom = current
      /** After a reload, the operations described before that the new spec still has, as it has them now. */
      const rebase = () => {
        if (promotedFrom === current) return
        const names = promoted.map((t) => t.name)
        promotedFrom = current
        promoted = []
        listed = new Set(current.discovery.listing.map((t) => t.name))
        for (const name of names) promote(name, false)
      }
      /** After describe_operation, the operation becomes a normal tool of this connection (tools/list_changed). */
      const promote = (name: unknown, notify = true) => {
        rebase()
        const tool = typeof name === "string" ? current.catalog.lookup(name) : undefined
        if (tool === undefined || listed.has(tool.name)) return
        listed.add(tool.name)
        promoted.push(current.discovery.toListed(tool))
        if (notify) void server.sendToolListChanged().catch(() => undefined)
      }
      server.setRequestHandler(ListToolsRequestSchema, (request, extra) => {
        rebase()
        const { listResult, discovery } = current
        return runSync(serveRequest("tools/list", {
          meta: request.params?._meta, headers: extra.requestInfo?.headers, requestId: extra.requestId, sessionId: extra.sessionId
        }, Effect.succeed(promoted.length === 0 ? listResult : { tools: [...discovery.listing, ...promoted] as Array<never> })))
      })
      const callTool = async (request: CallToolRequest, extra: ToolCallExtra): Promise<CallToolResult> => {
        if (config.confirmDestructive) {
          const refusal = await confirmDestructive(server, request.params.name, request.params.arguments, extra.requestId)
          if (refusal !== undefined) return refusal
        }
        const stopProgress = reportProgress(request.params._meta?.progressToken, extra, request.params.name)
        const started = config.auditLog ? performance.now() : 0
        const { discovery, telemetryFor, unknownToolOf } = current
        try {
          const call = serveToolCall(
            telemetryFor(request.params.name, request.params.arguments),
            {
              meta: request.params._meta, headers: extra.requestInfo?.headers, requestId: extra.requestId, sessionId: extra.sessionId,
              log: clientLog(extra.requestId)
            },
            Effect.catchTag(forwarding(limited(discovery.call(request.params.name, request.params.arguments), extra), extra), "UnknownTool", unknownToolOf)
          )
          const exit = inFlight !== undefined
            ? await inFlight.run(extra.requestId, runFork(call))
            : await runPromiseExit(call, { signal: extra.signal })
          if (Exit.isFailure(exit)) {
            // Effect wraps defects; surface the McpError itself so the client gets the protocol error.
            const e = Cause.squash(exit.cause)
            const cause = e instanceof McpError ? e : (e as { cause?: unknown })?.cause
            throw cause instanceof McpError ? cause : e
          }
          const result = exit.value
          if (config.auditLog) audit(request.params.name, extra, result, started)
          if (discovery.mode === "discover" && request.params.name === DESCRIBE && !result.isError) {
            promote((request.params.arguments as Record<string, unknown> | undefined)?.["name"])
          }
          return result
        } finally {
          stopProgress()
        }
      }
      setToolCallHandler(server, callTool)
      dispatchPlainRequests(server, inFlight === undefined ? undefined : { handle: callTool, inFlight })
      if (config.prompts) {
        server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: current.promptsOf().prompts as Array<never> }))
        server.setRequestHandler(GetPromptRequestSchema, (request) => {
          const found = current.promptsOf().get(request.params.name, request.params.arguments ?? {})
          if (found === undefined) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`)
          return found
        })
        // values for a prompt's arguments, as the user types them (from the argument's enum or examples)
        server.setRequestHandler(CompleteRequestSchema, (request) => {
          const { ref, argument } = request.params
          const values = ref.type === "ref/prompt" ? current.promptsOf().complete(ref.name, argument.name, argument.value) : []
          return { completion: { values: values.slice(0, 100), total: values.length, hasMore: values.length > 100 } }
        })
      }
      if (config.resources) {
        server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: current.resourcesOf() as Array<never> }))
        server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: current.templatesOf().map((e) => e.template) as Array<never> }))
        server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
          const uri = request.params.uri
          const { discovery, resourcesOf, templatesOf } = current
          const templated = fromTemplate(templatesOf(), uri)
          const target = resourcesOf().some((r) => r.uri === uri)
            ? { name: uri.slice(RESOURCE_SCHEME.length), args: {} }
            : templated === undefined ? undefined : { name: templated.tool.name, args: templated.args }
          if (target === undefined) throw new McpError(ErrorCode.InvalidParams, `Unknown resource: ${uri.length > 200 ? `${uri.slice(0, 200)}…` : uri}`)
          const result = await runPromise(forwarding(discovery.call(target.name, target.args), extra).pipe(Effect.orDie), { signal: extra.signal })
          const text = result.content.map((c) => c.type === "text" ? c.text : "").join("\n")
          if (result.isError) throw new McpError(ErrorCode.InternalError, text)
          return { contents: [{ uri, mimeType: result.structuredContent ? "application/json" : "text/plain", text }] }
        })
      }
      return server
    }

    const serveStdio = Effect.callback<void>((resume) => {
      const server = create()
      const transport = new StdioTransport()
      let done = false
      const finish = () => {
        if (done) return
        done = true
        resume(Effect.void)
      }
      transport.onclose = finish
      process.stdin.once("end", finish)
      process.stdin.once("close", finish)
      void server.connect(transport)
      return Effect.promise(() => server.close())
    }).pipe(Effect.withSpan("McpServer.serveStdio"))

    const replace = (catalog: CatalogShape, discovery: Discovery["Service"]) =>
      Effect.gen(function*() {
        current = generation(catalog, discovery)
        yield* specGauges(catalog, origins)
        for (const server of connected) {
          if (server.getClientVersion() === undefined) continue // not initialized yet: it lists what is current
          void server.sendToolListChanged().catch(() => undefined)
          if (config.prompts) void server.sendPromptListChanged().catch(() => undefined)
          if (config.resources) void server.sendResourceListChanged().catch(() => undefined)
        }
      })

    return McpServer.of({ create, serveStdio, catalog: () => current.catalog, replace })
  }))
}
