/**
 * HttpApp: the HTTP service on Effect's Node HTTP server. `/mcp` speaks MCP Streamable HTTP with sessions
 * (`Mcp-Session-Id`; POST for messages, GET for the server's stream, DELETE to end a session); `/healthz`
 * answers 200 while the process is up.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { AppConfig } from "./AppConfig.ts"
import { McpServer } from "./McpServer.ts"

const jsonRpcError = (status: number, code: number, message: string) =>
  HttpServerResponse.jsonUnsafe({ jsonrpc: "2.0", error: { code, message }, id: null }, { status })

/** The `/mcp` route: one SDK transport and server per session, kept in a map until the session ends. */
const McpRoute = HttpRouter.use(Effect.fn(function*(router) {
  const mcp = yield* McpServer
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => Promise.allSettled([...sessions.values()].map((t) => t.close()))).pipe(Effect.asVoid)
  )

  const handle = (request: HttpServerRequest.HttpServerRequest) => Effect.gen(function*() {
    const req = NodeHttpServerRequest.toIncomingMessage(request) as IncomingMessage
    const res = NodeHttpServerRequest.toServerResponse(request) as ServerResponse
    let body: unknown = undefined
    if (request.method === "POST") {
      const parsed = yield* Effect.result(request.json)
      if (parsed._tag === "Failure") return jsonRpcError(400, -32700, "Parse error: the request body is not valid JSON")
      body = parsed.success
    }
    const sessionId = request.headers["mcp-session-id"]
    let transport: StreamableHTTPServerTransport | undefined
    if (sessionId !== undefined) {
      transport = sessions.get(sessionId)
      if (transport === undefined) return jsonRpcError(404, -32001, "Session not found: it ended or never existed; initialize a new one")
    } else if (request.method === "POST" && isInitializeRequest(body)) {
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        onsessioninitialized: (id) => {
          sessions.set(id, created)
        },
        onsessionclosed: (id) => {
          sessions.delete(id)
        }
      })
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId)
      }
      yield* Effect.promise(() => mcp.create().connect(created))
      transport = created
    } else {
      return jsonRpcError(400, -32000, "Bad request: no Mcp-Session-Id header; start with an initialize request")
    }
    const t = transport
    yield* Effect.promise(() => t.handleRequest(req, res, body))
    // The SDK writes the response itself (possibly an SSE stream): wait until it is done.
    yield* Effect.callback<void>((resume) => {
      if (res.writableEnded) resume(Effect.void)
      else res.once("close", () => resume(Effect.void))
    })
    return HttpServerResponse.empty()
  })

  yield* router.add("*", "/mcp", handle)
  yield* router.add("GET", "/healthz", HttpServerResponse.jsonUnsafe({ status: "ok" }))
}))

export const HttpApp = {
  /** The HTTP service listening on SERVER_HOST:SERVER_PORT. */
  layer: Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    return HttpRouter.serve(McpRoute, { disableLogger: true }).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
    )
  }))
}
