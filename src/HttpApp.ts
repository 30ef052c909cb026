/**
 * HttpApp: the HTTP service on Effect's Node HTTP server. `/mcp` (answered on Node's own request and
 * response, ahead of Effect's request handling) speaks MCP Streamable HTTP with sessions
 * (`Mcp-Session-Id`; POST for messages, GET for the server's stream, DELETE to end a session); `/healthz`
 * answers 200 while the process is up; `/metrics` is the Prometheus scrape endpoint. `/mcp` is guarded by
 * Security/Inbound.ts (Origin allow-list, optional bearer token or OAuth JWT, body size, session limits and
 * idle expiry); `/.well-known/oauth-protected-resource` serves the RFC 9728 metadata in OAuth mode.
 * `/sse` and `/messages` serve the older HTTP+SSE transport (HttpApp/LegacySse.ts), under the same guard.
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
import { closeAnswered } from "./McpServer/Dispatch.ts"
import { ResponseCache } from "./ResponseCache.ts"
import { Secrets } from "./Auth/Secrets.ts"
import { type Admission, makeInboundGuard, originAllowed, SessionLimits, sweepIdleSessions, writeDenial, writeError } from "./Security/Inbound.ts"
import { Telemetry } from "./Telemetry.ts"
import { LEGACY_MESSAGES_PATH, LEGACY_STREAM_PATH, LegacySseTransport } from "./HttpApp/LegacySse.ts"
import { HttpSessionTransport } from "./HttpApp/SessionTransport.ts"

/**
 * Readiness and graceful shutdown. When the server is told to stop (SIGTERM), /readyz answers 503 so the load
 * balancer stops sending, new sessions are refused, and calls in flight get SHUTDOWN_GRACE_MS to finish
 * before the sessions close and the process exits (with its spans and metrics flushed by the layers below).
 */
class Drain extends Context.Service<Drain, {
  readonly draining: boolean
  /** The sessions' transports (Streamable HTTP and legacy SSE), closed at shutdown once the calls in flight are done. */
  readonly sessions: Map<string, HttpSessionTransport | LegacySseTransport>
  /** A call began / ended: a shutdown waits for the calls in flight. */
  readonly begin: () => void
  readonly end: () => void
  readonly readiness: Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** Stops admitting sessions, waits up to SHUTDOWN_GRACE_MS for calls in flight, then closes the sessions. */
  readonly shutdown: Effect.Effect<void>
}>()("openapi-mcp/HttpApp/Drain") {
  static readonly layer = Layer.effect(Drain, Effect.gen(function*() {
    const config = yield* AppConfig
    const mcp = yield* McpServer
    const cache = yield* ResponseCache
    const state = { draining: false, inFlight: 0 }
    const sessions = new Map<string, HttpSessionTransport | LegacySseTransport>()
    const closeSessions = Effect.promise(() => Promise.allSettled([...sessions.values()].map((t) => t.close()))).pipe(Effect.asVoid)
    // whatever happens, no session outlives the server
    yield* Effect.addFinalizer(() => closeSessions)
    return Drain.of({
      get draining() {
        return state.draining
      },
      sessions,
      begin: () => {
        state.inFlight++
      },
      end: () => {
        state.inFlight--
      },
      readiness: Effect.suspend(() => {
        if (state.draining) return Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "draining" }, { status: 503 }))
        const ready = HttpServerResponse.jsonUnsafe({ status: "ready", tools: mcp.catalog().tools.length, cache: cache.store.name })
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

/**
 * CORS for browser clients on allowed origins (localhost, MCP_ALLOWED_ORIGINS): the preflight's answer (no
 * credentials needed for it; the request headers it allows are those asked for, else these), and the response
 * headers a page may read (the session id, the auth challenge).
 */
const CORS_PREFLIGHT = {
  "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id",
  "access-control-max-age": "600"
}
const CORS_EXPOSED = "mcp-session-id, mcp-protocol-version, www-authenticate, retry-after"

/** The MCP endpoints: Streamable HTTP, and the legacy HTTP+SSE transport's stream and messages. */
type Endpoint = "mcp" | "stream" | "messages"

const endpointOf = (url: string): Endpoint | undefined => {
  const query = url.indexOf("?")
  const path = query < 0 ? url : url.slice(0, query)
  return path === "/mcp" ? "mcp" : path === LEGACY_STREAM_PATH ? "stream" : path === LEGACY_MESSAGES_PATH ? "messages" : undefined
}

/**
 * `/mcp` on Node's own request and response (Effect's HTTP server only sees the other routes: on this path
 * its request and response wrapping would cost more than the rest of a call). One session transport and SDK
 * server per session, kept in a map until the session ends.
 */
const makeMcpHandler = Effect.gen(function*() {
  const mcp = yield* McpServer
  // inbound security (Security/Inbound.ts): Origin, client auth, body size, session limits and idle expiry
  const config = yield* AppConfig
  const { inbound } = config
  const drain = yield* Drain
  const sessions = drain.sessions
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const guard = yield* makeInboundGuard(inbound, (message) => void runFork(Effect.logWarning(message)))
  const limits = new SessionLimits(inbound)
  const clock = yield* Clock.Clock
  yield* sweepIdleSessions(limits, inbound.sessionIdleSeconds, (id) => Effect.promise(async () => sessions.get(id)?.close()))

  /** Serves the request on a transport (which counts the calls in flight for the drain) until its response is written. */
  const serve = (
    transport: HttpSessionTransport, req: IncomingMessage, res: ServerResponse, body: unknown, sessionId: string | undefined, client: string
  ) => {
    // an open request (an event stream too) keeps the session from idling out
    if (sessionId !== undefined) {
      limits.begin(sessionId, clock.currentTimeMillisUnsafe())
      res.once("close", () => limits.end(sessionId, clock.currentTimeMillisUnsafe()))
    }
    transport.handle(req, res, body, client)
  }

  /** The open session with this id (either transport), unless an OAuth identity other than `client` opened it. */
  const sessionOf = (id: string, client: string) => {
    const owner = limits.ownerOf(id)
    // a session opened with one OAuth identity is not usable with another
    return owner !== undefined && owner.startsWith("sub:") && owner !== client ? undefined : sessions.get(id)
  }

  /** --stateless: a fresh SDK server per POST, no session; GET and DELETE have nothing to do. */
  const stateless = (req: IncomingMessage, res: ServerResponse, client: string, body: unknown) => {
    if (req.method !== "POST") {
      return writeError(res, 405, -32000, "Method not allowed: this server is stateless; send JSON-RPC messages with POST", { allow: "POST" })
    }
    const server = mcp.create()
    const transport = new HttpSessionTransport({ begin: drain.begin, end: drain.end, compress: true })
    res.once("close", () => closeAnswered(server))
    return server.connect(transport).then(() => serve(transport, req, res, body, undefined, client))
  }

  const routed = (req: IncomingMessage, res: ServerResponse, client: string, body: unknown) => {
    if (config.stateless) return stateless(req, res, client, body)
    const sessionId = req.headers["mcp-session-id"]
    if (typeof sessionId === "string") {
      const found = sessionOf(sessionId, client)
      const transport = found instanceof HttpSessionTransport ? found : undefined
      if (transport === undefined && limits.wasExpired(sessionId)) {
        return writeError(res, 404, -32001, `Session expired: no request for ${inbound.sessionIdleSeconds} s (MCP_SESSION_IDLE_SECONDS); initialize a new one`)
      }
      if (transport === undefined) return writeError(res, 404, -32001, "Session not found: it ended or never existed; initialize a new one")
      return serve(transport, req, res, body, sessionId, client)
    }
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return writeError(res, 400, -32000, "Bad request: no Mcp-Session-Id header; start with an initialize request")
    }
    if (drain.draining) return writeError(res, 503, -32000, "The server is shutting down: connect to another instance")
    const refused = limits.refuse(client)
    if (refused !== undefined) return writeDenial(res, refused)
    const created: HttpSessionTransport = new HttpSessionTransport({
      sessionIdGenerator: randomUUID,
      resumeMs: inbound.streamResumeSeconds * 1000,
      begin: drain.begin,
      end: drain.end,
      compress: true,
      onsessioninitialized: (id) => {
        sessions.set(id, created)
        limits.opened(id, client, clock.currentTimeMillisUnsafe())
      },
      onsessionclosed: (id) => {
        sessions.delete(id)
        limits.closed(id)
      }
    })
    return mcp.create().connect(created).then(() => serve(created, req, res, body, undefined, client))
  }

  /** `GET /sse` (legacy HTTP+SSE transport): a new session whose event stream this response is. */
  const legacyStream = (req: IncomingMessage, res: ServerResponse, client: string) => {
    if (req.method !== "GET") return writeError(res, 405, -32000, "Method not allowed: GET /sse opens the event stream; messages go to /messages", { allow: "GET" })
    if (config.stateless) {
      return writeError(res, 404, -32000, "Not found: the legacy SSE transport needs sessions, and this server is stateless (--stateless); use Streamable HTTP at /mcp")
    }
    if (drain.draining) return writeError(res, 503, -32000, "The server is shutting down: connect to another instance")
    const refused = limits.refuse(client)
    if (refused !== undefined) return writeDenial(res, refused)
    const id = randomUUID()
    const transport = new LegacySseTransport(id, res, {
      client,
      begin: drain.begin,
      end: drain.end,
      onsessionclosed: () => {
        sessions.delete(id)
        limits.closed(id)
      }
    })
    sessions.set(id, transport)
    limits.opened(id, client, clock.currentTimeMillisUnsafe())
    limits.begin(id, clock.currentTimeMillisUnsafe()) // an open stream keeps the session from idling out
    return mcp.create().connect(transport)
  }

  /** `POST /messages?sessionId=…` (legacy HTTP+SSE transport): a message for that session. */
  const legacyMessage = (req: IncomingMessage, res: ServerResponse, client: string, body: unknown) => {
    const id = new URL(req.url ?? "", "http://localhost").searchParams.get("sessionId") ?? ""
    const transport = sessionOf(id, client)
    if (!(transport instanceof LegacySseTransport)) {
      return writeError(res, 404, -32001, "Session not found: its event stream is closed or it never existed; open a new one with GET /sse")
    }
    transport.handlePost(req, res, body)
  }

  const afterAdmission = (req: IncomingMessage, res: ServerResponse, admission: Admission, endpoint: Endpoint) => {
    if (admission._tag === "Denied") return writeDenial(res, admission.denial)
    if (endpoint === "stream") return legacyStream(req, res, admission.client)
    if (req.method !== "POST") {
      if (endpoint === "messages") return writeError(res, 405, -32000, "Method not allowed: POST messages here", { allow: "POST" })
      return routed(req, res, admission.client, undefined)
    }
    return guard.readJson(req).then((read) =>
      read._tag === "Denied"
        ? writeDenial(res, read.denial)
        : endpoint === "messages"
        ? legacyMessage(req, res, admission.client, read.body)
        : routed(req, res, admission.client, read.body)
    )
  }

  /** A bug, not a client's mistake: logged, answered 500 (or the stream cut), and the server goes on. */
  const failed = (res: ServerResponse) => (e: unknown) => {
    runFork(Effect.logError("MCP HTTP request failed", e instanceof Error ? e.stack ?? e.message : String(e)))
    if (!res.headersSent) writeError(res, 500, -32603, "Internal error")
    else res.destroy()
  }

  const handle = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint): void => {
    try {
      // a browser page of an allowed origin may call (CORS); the rest is refused by the guard below
      const origin = req.headers.origin
      if (origin !== undefined && originAllowed(origin, inbound.allowedOrigins)) {
        res.setHeader("access-control-allow-origin", origin)
        res.setHeader("vary", "Origin")
        res.setHeader("access-control-expose-headers", CORS_EXPOSED)
        if (req.method === "OPTIONS") {
          // the headers the page asks to send (an allowed origin's: forwarded ones too, MCP_FORWARD_HEADERS)
          const asked = req.headers["access-control-request-headers"]
          return void res.writeHead(204, asked === undefined ? CORS_PREFLIGHT : { ...CORS_PREFLIGHT, "access-control-allow-headers": asked }).end()
        }
      }
      const admission = guard.admit(req)
      const done = admission instanceof Promise
        ? admission.then((a) => afterAdmission(req, res, a, endpoint))
        : afterAdmission(req, res, admission, endpoint)
      if (done instanceof Promise) done.catch(failed(res))
    } catch (e) {
      failed(res)(e)
    }
  }
  return { handle, metadata: guard.metadata }
})

/** The Effect routes: health, readiness and the RFC 9728 metadata (OAuth resource-server mode; 404 otherwise). */
const routes = (metadata: (host: string | undefined) => Record<string, unknown> | undefined) =>
  HttpRouter.use(Effect.fn(function*(router) {
    const drain = yield* Drain
    yield* router.add("GET", "/healthz", HttpServerResponse.jsonUnsafe({ status: "ok" }))
    yield* router.add("GET", "/readyz", drain.readiness)
    const resourceMetadata = (request: HttpServerRequest.HttpServerRequest) => {
      const doc = metadata(request.headers["host"])
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
    // `/mcp` is answered before Effect's request handling (see makeMcpHandler); the rest goes to the router
    let mcpHandler: ((req: IncomingMessage, res: ServerResponse, endpoint: Endpoint) => void) | undefined
    const createMcpServer = () => {
      const server = createServer()
      const emit = server.emit.bind(server) as (event: string, ...args: Array<unknown>) => boolean
      server.emit = ((event: string, ...args: Array<unknown>) => {
        if (event === "request") {
          const req = args[0] as IncomingMessage
          const res = args[1] as ServerResponse
          const endpoint = endpointOf(req.url ?? "")
          if (mcpHandler !== undefined && endpoint !== undefined) {
            mcpHandler(req, res, endpoint)
            return true
          }
          // listening, but the routes are not installed yet: say so instead of leaving the request hanging
          if (mcpHandler === undefined || server.listenerCount("request") === 0) {
            res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" }).end("starting\n")
            return true
          }
        }
        return emit(event, ...args)
      }) as typeof server.emit
      return server
    }
    const mcpRoute = Layer.unwrap(Effect.map(makeMcpHandler, ({ handle, metadata }) => {
      mcpHandler = handle
      return Layer.merge(routes(metadata), MetricsRoute)
    }))
    const serve = HttpRouter.serve(mcpRoute, { disableLogger: true }).pipe(
      Layer.provide(Secrets.layer),
      Layer.provide(NodeHttpServer.layer(createMcpServer, {
        port: config.port, host: config.host, gracefulShutdownTimeout: Duration.seconds(2)
      }))
    )
    return Drain.onShutdown.pipe(Layer.provideMerge(serve), Layer.provideMerge(Drain.layer))
  }))
}
