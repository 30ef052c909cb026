/**
 * HttpApp: the HTTP service on Effect's Node HTTP server. `/mcp` speaks MCP Streamable HTTP with sessions
 * (`Mcp-Session-Id`; POST for messages, GET for the server's stream, DELETE to end a session); `/healthz`
 * answers 200 while the process is up; `/metrics` is the Prometheus scrape endpoint.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { AppConfig } from "./AppConfig.ts"
import { McpServer } from "./McpServer.ts"
import { makeInboundGuard, SessionLimits, sweepIdleSessions } from "./Security/Inbound.ts"
import { Telemetry } from "./Telemetry.ts"

const jsonRpcError = (status: number, code: number, message: string) =>
  HttpServerResponse.jsonUnsafe({ jsonrpc: "2.0", error: { code, message }, id: null }, { status })

/** The `/mcp` route: one SDK transport and server per session, kept in a map until the session ends. */
const McpRoute = HttpRouter.use(Effect.fn(function*(router) {
  const mcp = yield* McpServer
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => Promise.allSettled([...sessions.values()].map((t) => t.close()))).pipe(Effect.asVoid)
  )
  // inbound security (Security/Inbound.ts): Origin, client auth, body size, session limits and idle expiry
  const { inbound } = yield* AppConfig
  const guard = makeInboundGuard(inbound)
  const limits = new SessionLimits(inbound)
  const clock = yield* Clock.Clock
  yield* sweepIdleSessions(limits, inbound.sessionIdleSeconds, (id) => Effect.promise(async () => sessions.get(id)?.close()))

  const handle = (request: HttpServerRequest.HttpServerRequest) => Effect.gen(function*() {
    const req = NodeHttpServerRequest.toIncomingMessage(request) as IncomingMessage
    const res = NodeHttpServerRequest.toServerResponse(request) as ServerResponse
    const admission = yield* guard.admit(request)
    if (admission._tag === "Denied") return admission.response
    let body: unknown = undefined
    if (request.method === "POST") {
      const read = yield* guard.readJson(request)
      if (read._tag === "Denied") return read.response
      body = read.body
    }
    const sessionId = request.headers["mcp-session-id"]
    let transport: StreamableHTTPServerTransport | undefined
    if (sessionId !== undefined) {
      transport = sessions.get(sessionId)
      const owner = limits.ownerOf(sessionId)
      // a session opened with one OAuth identity is not usable with another
      if (owner !== undefined && owner.startsWith("sub:") && owner !== admission.client) transport = undefined
      if (transport === undefined && limits.wasExpired(sessionId)) {
        return jsonRpcError(404, -32001, `Session expired: no request for ${inbound.sessionIdleSeconds} s (MCP_SESSION_IDLE_SECONDS); initialize a new one`)
      }
      if (transport === undefined) return jsonRpcError(404, -32001, "Session not found: it ended or never existed; initialize a new one")
    } else if (request.method === "POST" && isInitializeRequest(body)) {
      const refused = limits.refuse(admission.client)
      if (refused !== undefined) return refused
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        onsessioninitialized: (id) => {
          sessions.set(id, created)
          limits.opened(id, admission.client, clock.currentTimeMillisUnsafe())
        },
        onsessionclosed: (id) => {
          sessions.delete(id)
          limits.closed(id)
        }
      })
      created.onclose = () => {
        if (created.sessionId !== undefined) {
          sessions.delete(created.sessionId)
          limits.closed(created.sessionId)
        }
      }
      yield* Effect.promise(() => mcp.create().connect(created))
      transport = created
    } else {
      return jsonRpcError(400, -32000, "Bad request: no Mcp-Session-Id header; start with an initialize request")
    }
    const t = transport
    // an open request (an event stream too) keeps the session from idling out
    if (sessionId !== undefined) limits.begin(sessionId, clock.currentTimeMillisUnsafe())
    yield* Effect.promise(() => t.handleRequest(req, res, body))
    // The SDK writes the response itself (possibly an SSE stream): wait until it is done.
    yield* Effect.callback<void>((resume) => {
      if (res.writableEnded) resume(Effect.void)
      else res.once("close", () => resume(Effect.void))
    }).pipe(Effect.ensuring(Effect.sync(() => {
      if (sessionId !== undefined) limits.end(sessionId, clock.currentTimeMillisUnsafe())
    })))
    return HttpServerResponse.empty()
  })

  yield* router.add("*", "/mcp", handle)
  yield* router.add("GET", "/healthz", HttpServerResponse.jsonUnsafe({ status: "ok" }))
  // RFC 9728 protected-resource metadata (OAuth resource-server mode; 404 otherwise)
  const resourceMetadata = (request: HttpServerRequest.HttpServerRequest) => {
    const doc = guard.metadata(request)
    return Effect.succeed(doc === undefined
      ? HttpServerResponse.jsonUnsafe({ error: "not_found" }, { status: 404 })
      : HttpServerResponse.jsonUnsafe(doc, { headers: { "access-control-allow-origin": "*", "cache-control": "max-age=300" } }))
  }
  // (the wildcard also matches the bare path)
  yield* router.add("GET", "/.well-known/oauth-protected-resource/*", resourceMetadata)
}))

/** `GET /metrics`: the Prometheus text exposition, written by the exporter on the raw Node response. */
const MetricsRoute = HttpRouter.use(Effect.fn(function*(router) {
  const telemetry = yield* Telemetry
  yield* router.add("GET", "/metrics", (request) =>
    Effect.callback<HttpServerResponse.HttpServerResponse>((resume) => {
      const res = NodeHttpServerRequest.toServerResponse(request) as ServerResponse
      res.once("close", () => resume(Effect.succeed(HttpServerResponse.empty())))
      telemetry.serveMetrics(NodeHttpServerRequest.toIncomingMessage(request) as IncomingMessage, res)
    }))
}))

export const HttpApp = {
  /** The HTTP service listening on SERVER_HOST:SERVER_PORT. */
  layer: Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    return HttpRouter.serve(Layer.merge(McpRoute, MetricsRoute), { disableLogger: true }).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
    )
  }))
}
