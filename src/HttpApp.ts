/**
 * HttpApp: the HTTP service on Effect's Node HTTP server. `/mcp` speaks MCP Streamable HTTP with sessions
 * (`Mcp-Session-Id`; POST for messages, GET for the server's stream, DELETE to end a session); `/healthz`
 * answers 200 while the process is up; `/metrics` is the Prometheus scrape endpoint. `/mcp` is guarded by
 * Security/Inbound.ts (Origin allow-list, optional bearer token or OAuth JWT, body size, session limits and
 * idle expiry); `/.well-known/oauth-protected-resource` serves the RFC 9728 metadata in OAuth mode.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { AppConfig } from "./AppConfig.ts"
import { McpServer } from "./McpServer.ts"
import { ResponseCache } from "./ResponseCache.ts"
import { Secrets } from "./Auth/Secrets.ts"
import { makeInboundGuard, SessionLimits, sweepIdleSessions } from "./Security/Inbound.ts"
import { Telemetry } from "./Telemetry.ts"
import { ToolCatalog } from "./ToolCatalog.ts"
import { HttpSessionTransport } from "./HttpApp/SessionTransport.ts"

const jsonRpcError = (status: number, code: number, message: string) =>
  HttpServerResponse.jsonUnsafe({ jsonrpc: "2.0", error: { code, message }, id: null }, { status })

/** The session transport writes the response itself (possibly an event stream): wait until it is done. */
const untilWritten = (res: ServerResponse) =>
  Effect.callback<void>((resume) => {
    if (res.writableEnded) resume(Effect.void)
    else res.once("close", () => resume(Effect.void))
  })

/**
 * Readiness and graceful shutdown. When the server is told to stop (SIGTERM), /readyz answers 503 so the load
 * balancer stops sending, new sessions are refused, and calls in flight get SHUTDOWN_GRACE_MS to finish
 * before the sessions close and the process exits (with its spans and metrics flushed by the layers below).
 */
class Drain extends Context.Service<Drain, {
  readonly draining: boolean
  /** The sessions' transports, closed at shutdown once the calls in flight are done. */
  readonly sessions: Map<string, HttpSessionTransport>
  readonly track: <A, E, R>(counted: boolean, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly readiness: Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** Stops admitting sessions, waits up to SHUTDOWN_GRACE_MS for calls in flight, then closes the sessions. */
  readonly shutdown: Effect.Effect<void>
}>()("openapi-mcp/HttpApp/Drain") {
  static readonly layer = Layer.effect(Drain, Effect.gen(function*() {
    const config = yield* AppConfig
    const catalog = yield* ToolCatalog
    const cache = yield* ResponseCache
    const state = { draining: false, inFlight: 0 }
    const sessions = new Map<string, HttpSessionTransport>()
    const closeSessions = Effect.promise(() => Promise.allSettled([...sessions.values()].map((t) => t.close()))).pipe(Effect.asVoid)
    // whatever happens, no session outlives the server
    yield* Effect.addFinalizer(() => closeSessions)
    return Drain.of({
      get draining() {
        return state.draining
      },
      sessions,
      track: (counted, effect) =>
        counted
          ? Effect.suspend(() => {
            state.inFlight++
            return effect.pipe(Effect.ensuring(Effect.sync(() => state.inFlight--)))
          })
          : effect,
      readiness: Effect.suspend(() => {
        if (state.draining) return Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "draining" }, { status: 503 }))
        const ready = HttpServerResponse.jsonUnsafe({ status: "ready", tools: catalog.tools.length, cache: cache.store.name })
        return config.cache.backend !== "redis" ? Effect.succeed(ready) : cache.store.ping.pipe(
          Effect.as(ready),
          Effect.catch((e) => Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "not ready", redis: e.detail }, { status: 503 })))
        )
      }),
      shutdown: Effect.gen(function*() {
        state.draining = true
        const deadline = Date.now() + config.shutdownGraceMs
        if (state.inFlight > 0) yield* Effect.logInfo(`shutting down: waiting for ${state.inFlight} call(s) in flight`)
        while (state.inFlight > 0 && Date.now() < deadline) yield* Effect.sleep("25 millis")
        if (state.inFlight > 0) yield* Effect.logWarning(`shutting down with ${state.inFlight} call(s) still in flight after SHUTDOWN_GRACE_MS`)
        yield* closeSessions // ends the sessions' event streams, so the listener can close at once
      })
    })
  }))

  /**
   * Built after the HTTP server is serving, so its finalizer (the drain) runs first at shutdown, while
   * requests are still answered (readiness 503, new sessions refused), and before the server closes.
   */
  static readonly onShutdown = Layer.effectDiscard(Effect.gen(function*() {
    const drain = yield* Drain
    yield* Effect.addFinalizer(() => drain.shutdown)
  }))
}

/** The `/mcp` route: one SDK transport and server per session, kept in a map until the session ends. */
const McpRoute = HttpRouter.use(Effect.fn(function*(router) {
  const mcp = yield* McpServer
  // inbound security (Security/Inbound.ts): Origin, client auth, body size, session limits and idle expiry
  const config = yield* AppConfig
  const { inbound } = config
  const drain = yield* Drain
  const sessions = drain.sessions
  const guard = yield* makeInboundGuard(inbound)
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
    if (config.stateless) return yield* stateless(request.method, req, res, body)
    const sessionId = request.headers["mcp-session-id"]
    let transport: HttpSessionTransport | undefined
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
      if (drain.draining) return jsonRpcError(503, -32000, "The server is shutting down: connect to another instance")
      const refused = limits.refuse(admission.client)
      if (refused !== undefined) return refused
      const created: HttpSessionTransport = new HttpSessionTransport({
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
    // POSTs carry calls: a shutdown waits for them (an event stream GET would never end on its own)
    yield* drain.track(request.method === "POST", Effect.gen(function*() {
      yield* Effect.sync(() => t.handle(req, res, body))
      yield* untilWritten(res)
    })).pipe(Effect.ensuring(Effect.sync(() => {
      if (sessionId !== undefined) limits.end(sessionId, clock.currentTimeMillisUnsafe())
    })))
    return HttpServerResponse.empty()
  })

  /** --stateless: a fresh SDK server per POST, no session; GET and DELETE have nothing to do. */
  const stateless = (method: string, req: IncomingMessage, res: ServerResponse, body: unknown) =>
    Effect.gen(function*() {
      if (method !== "POST") {
        return HttpServerResponse.jsonUnsafe(
          { jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: this server is stateless; send JSON-RPC messages with POST" }, id: null },
          { status: 405, headers: { allow: "POST" } }
        )
      }
      yield* drain.track(true, Effect.acquireUseRelease(
        Effect.sync(() => mcp.create()),
        (server) => Effect.gen(function*() {
          const transport = new HttpSessionTransport()
          yield* Effect.promise(() => server.connect(transport))
          yield* Effect.sync(() => transport.handle(req, res, body))
          yield* untilWritten(res)
        }),
        (server) => Effect.promise(() => server.close().catch(() => undefined))
      ))
      return HttpServerResponse.empty()
    })

  yield* router.add("*", "/mcp", handle)
  yield* router.add("GET", "/healthz", HttpServerResponse.jsonUnsafe({ status: "ok" }))
  yield* router.add("GET", "/readyz", drain.readiness)
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
    const serve = HttpRouter.serve(Layer.merge(McpRoute, MetricsRoute), { disableLogger: true }).pipe(
      Layer.provide(Secrets.layer),
      Layer.provide(NodeHttpServer.layer(createServer, {
        port: config.port, host: config.host, gracefulShutdownTimeout: Duration.seconds(2)
      }))
    )
    return Drain.onShutdown.pipe(Layer.provideMerge(serve), Layer.provideMerge(Drain.layer))
  }))
}
