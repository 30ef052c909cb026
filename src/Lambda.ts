/**
 * AWS Lambda handler: stateless MCP Streamable HTTP (JSON responses, no SSE, no sessions) behind an API
 * Gateway HTTP API (payload v2) or a Lambda Function URL. Settings come from the environment exactly as for
 * the CLI (API_SPEC_PATH or API_SPEC_URL, API_BASE_URL, AUTH_*…). The cold-start work (spec parse, tool
 * catalog, HTTP client pool) is done once per container, when the module loads (Lambda's init phase, before
 * the first invocation), and reused by every invocation.
 *
 *   export { handler } from "openapi-mcp-server/lambda"
 */
import { Effect, Layer, Logger, ManagedRuntime } from "effect"
import type { IncomingHttpHeaders, IncomingMessage } from "node:http"
import { AppConfig } from "./AppConfig.ts"
import { HttpSessionTransport } from "./HttpApp/SessionTransport.ts"
import { AppLayer, jsonStderrLogger, LoggingLayer } from "./Main.ts"
import { McpServer } from "./McpServer.ts"
import { closeAnswered } from "./McpServer/Dispatch.ts"
import { Secrets } from "./Auth/Secrets.ts"
import { type InboundGuard, makeInboundGuard, type ResponseLike, writeDenial, writeError } from "./Security/Inbound.ts"
import { Telemetry } from "./Telemetry.ts"

/** The parts of an API Gateway v2 / Function URL event this handler reads. */
export interface HttpEventV2 {
  readonly rawPath?: string
  readonly rawQueryString?: string
  readonly headers?: Readonly<Record<string, string | undefined>>
  readonly cookies?: ReadonlyArray<string>
  readonly body?: string | null
  readonly isBase64Encoded?: boolean
  readonly requestContext?: { readonly http?: { readonly method?: string; readonly sourceIp?: string } }
}

export interface HttpResultV2 {
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly isBase64Encoded: boolean
}

interface Booted {
  readonly mcp: McpServer["Service"]
  /** The HTTP server's inbound checks: Origin, MCP_AUTH_TOKEN or OAuth (MCP_OAUTH_*), as for `--transport http`. */
  readonly guard: InboundGuard
  /** Exports buffered spans: a frozen Lambda container would otherwise hold them back. */
  readonly flush: () => Promise<void>
}

let booted: Promise<Booted> | undefined

/** Builds the application once per container (the layers stay alive across invocations). */
const boot = (): Promise<Booted> =>
  booted ??= (async () => {
    const config = AppConfig.layerFrom({}, process.env)
    const layer = AppLayer.pipe(
      Layer.provideMerge(Layer.unwrap(Effect.gen(function*() {
        return LoggingLayer((yield* AppConfig).logLevel)
      }))),
      Layer.provideMerge(config)
    )
    const runtime = ManagedRuntime.make(layer)
    return runtime.runPromise(Effect.gen(function*() {
      const telemetry = yield* Telemetry
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const guard = yield* makeInboundGuard((yield* AppConfig).inbound, (message) => void runFork(Effect.logWarning(message))).pipe(
        Effect.provide(Secrets.layer)
      )
      return { mcp: yield* McpServer, guard, flush: () => runtime.runPromise(telemetry.flush) }
    }))
  })().catch((e: unknown) => {
    booted = undefined // let the next invocation retry a failed start
    throw e
  })

const json = (statusCode: number, body: unknown): HttpResultV2 => ({
  statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body), isBase64Encoded: false
})

/** The HTTP answer the MCP transport writes (the same transport as the HTTP server's), kept whole for the result. */
class BufferedResponse implements ResponseLike {
  status = 200
  readonly headers: Record<string, string> = {}
  private body = ""
  private readonly closeListeners: Array<() => void> = []
  private resolve!: (result: HttpResultV2) => void
  readonly result = new Promise<HttpResultV2>((resolve) => (this.resolve = resolve))

  writeHead(status: number, headers: Record<string, string> = {}) {
    this.status = status
    Object.assign(this.headers, headers)
  }
  write(chunk: string) {
    this.body += chunk
  }
  end(chunk?: string) {
    if (chunk !== undefined) this.body += chunk
    this.resolve({ statusCode: this.status, headers: this.headers, body: this.body, isBase64Encoded: false })
    for (const listener of this.closeListeners.splice(0)) listener()
  }
  once(_event: "close", listener: () => void) {
    this.closeListeners.push(listener)
  }
  flushHeaders() {}
}

const headersOf = (event: HttpEventV2): IncomingHttpHeaders => {
  const headers: IncomingHttpHeaders = {}
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v
  return headers
}

export const handler = async (event: HttpEventV2): Promise<HttpResultV2> => {
  const path = event.rawPath ?? "/"
  if (path === "/healthz" || path === "/readyz") {
    try {
      await boot()
      return json(200, { status: "ok" })
    } catch (e) {
      return json(503, { status: "not ready", error: (e as Error).message })
    }
  }
  const method = event.requestContext?.http?.method ?? "GET"
  if (method !== "POST") {
    // stateless: no server-to-client stream to open (GET) and no session to end (DELETE)
    return { ...json(405, { jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: this server is stateless; send JSON-RPC messages with POST" }, id: null }), headers: { "content-type": "application/json", allow: "POST" } }
  }
  let app: Booted
  try {
    app = await boot()
  } catch (e) {
    return json(500, { jsonrpc: "2.0", error: { code: -32603, message: `server failed to start: ${(e as Error).message}` }, id: null })
  }
  const res = new BufferedResponse()
  const headers = headersOf(event)
  // (the peer is the address API Gateway or the Function URL saw, for per-client accounting)
  const admission = await app.guard.admit({ headers, socket: { remoteAddress: event.requestContext?.http?.sourceIp } } as unknown as IncomingMessage)
  if (admission._tag === "Denied") {
    writeDenial(res, admission.denial)
    return res.result
  }
  let body: unknown
  try {
    const text = event.body ?? ""
    body = JSON.parse(event.isBase64Encoded ? Buffer.from(text, "base64").toString("utf8") : text)
  } catch {
    writeError(res, 400, -32700, "Parse error: the request body is not valid JSON")
    return res.result
  }
  // Stateless: a fresh SDK server and transport per request; nothing is kept between invocations but the
  // catalog, clients and caches built at boot.
  const server = app.mcp.create()
  const transport = new HttpSessionTransport({ jsonOnly: true })
  try {
    await server.connect(transport)
    transport.handle({ method, headers }, res, body, admission.client)
    return await res.result
  } finally {
    // closed once the SDK has done its own bookkeeping for the request: a close before that aborts the finished
    // handler (an AbortError, stack trace and all, on every invocation)
    setImmediate(() => closeAnswered(server))
    await app.flush().catch(() => undefined)
  }
}

/**
 * Lambda runs a module's top-level code in its init phase, before the first invocation (with provisioned
 * concurrency, before any request arrives): the application is built then, so the first call does not wait for
 * the spec and catalog. A start that fails here is logged and tried again by the first invocation, which
 * answers with its reason.
 */
await boot().catch((e: unknown) =>
  Effect.runPromise(Effect.logError(`start-up failed in the init phase; the first invocation tries again: ${(e as Error).message}`).pipe(
    Effect.provide(Logger.layer([jsonStderrLogger]))
  ))
)
