/**
 * McpServer: the MCP SDK's low-level `Server` bound to the ToolCatalog and the Invoker. One SDK server is
 * made per connection (stdio, or each Streamable HTTP session); they share the catalog, whose `tools/list`
 * answer is precomputed. Also runs the stdio transport, where stdout carries MCP messages and nothing else.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Layer } from "effect"
import { Invoker } from "./Invoker.ts"
import { ToolCatalog } from "./ToolCatalog.ts"

export const PACKAGE_VERSION = "0.1.0"

export class McpServer extends Context.Service<McpServer, {
  /** A new SDK server wired to the catalog and invoker, ready to connect to one transport. */
  readonly create: () => Server
  /** Serves MCP over this process's stdin/stdout until stdin ends or the client disconnects. */
  readonly serveStdio: Effect.Effect<void>
}>()("openapi-mcp/McpServer") {
  static readonly layerNoDeps = Layer.effect(McpServer, Effect.gen(function*() {
    const catalog = yield* ToolCatalog
    const invoker = yield* Invoker
    // Handlers run outside any fiber: run them with this layer's context (logger, tracer, services).
    const runPromise = Effect.runPromiseWith(yield* Effect.context<never>())
    const listResult = { tools: catalog.listing as Array<never> }
    const instructions = `Tools for the ${catalog.serverName} HTTP API. Each tool is one API operation; ` +
      `its description names the HTTP method and path. Failed calls return an error result that says why.`

    const create = () => {
      const server = new Server(
        { name: catalog.serverName, version: catalog.serverVersion, title: catalog.serverName },
        { capabilities: { tools: { listChanged: false } }, instructions }
      )
      server.setRequestHandler(ListToolsRequestSchema, () => listResult)
      server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
        runPromise(
          invoker.call(request.params.name, request.params.arguments).pipe(
            Effect.catchTag("UnknownTool", (e) =>
              Effect.die(new McpError(ErrorCode.InvalidParams, `Unknown tool: ${e.name}`)))
          ),
          { signal: extra.signal }
        ).catch((e: unknown) => {
          // Effect wraps defects; surface the McpError itself so the client gets the protocol error.
          const cause = e instanceof McpError ? e : (e as { cause?: unknown })?.cause
          throw cause instanceof McpError ? cause : e
        }))
      return server
    }

    const serveStdio = Effect.callback<void>((resume) => {
      const server = create()
      const transport = new StdioServerTransport()
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

    return McpServer.of({ create, serveStdio })
  }))
}
