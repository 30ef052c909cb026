/**
 * AWS Lambda handler: stateless MCP Streamable HTTP (JSON responses, no SSE, no sessions) behind an API
 * Gateway HTTP API (payload v2) or a Lambda Function URL. Settings come from the environment exactly as for
 * the CLI (API_SPEC_PATH or API_SPEC_URL, API_BASE_URL, AUTH_*…). The cold-start work (spec parse, tool
 * catalog, HTTP client pool) is done once per container and reused by every invocation.
 *
 *   export { handler } from "openapi-mcp-server/lambda"
 */
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import { Effect, Layer, ManagedRuntime } from "effect"
import { AppConfig } from "./AppConfig.ts"
import { AppLayer, LoggingLayer } from "./Main.ts"
import { McpServer } from "./McpServer.ts"
import { Telemetry } from "./Telemetry.ts"

/** The parts of an API Gateway v2 / Function URL event this handler reads. */
export interface HttpEventV2 {
  readonly rawPath?: string
  readonly rawQueryString?: string
  readonly headers?: Readonly<Record<string, string | undefined>>
  readonly cookies?: ReadonlyArray<string>
  readonly body?: string | null
  readonly isBase64Encoded?: boolean
  readonly requestContext?: { readonly http?: { readonly method?: string } }
}

export interface HttpResultV2 {
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly isBase64Encoded: boolean
}

interface Booted {
  readonly mcp: McpServer["Service"]
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
      return { mcp: yield* McpServer, flush: () => runtime.runPromise(telemetry.flush) }
    }))
  })().catch((e: unknown) => {
    booted = undefined // let the next invocation retry a failed start
    throw e
  })

const json = (statusCode: number, body: unknown): HttpResultV2 => ({
  statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body), isBase64Encoded: false
})

const toRequest = (event: HttpEventV2): Request => {
  const method = event.requestContext?.http?.method ?? "GET"
  const headers = new Headers()
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v)
  if (event.cookies && event.cookies.length > 0) headers.set("cookie", event.cookies.join("; "))
  const host = headers.get("host") ?? "lambda.local"
  const url = `https://${host}${event.rawPath ?? "/"}${event.rawQueryString ? `?${event.rawQueryString}` : ""}`
  const body = event.body === undefined || event.body === null || method === "GET" || method === "HEAD"
    ? undefined
    : event.isBase64Encoded ? Buffer.from(event.body, "base64") : event.body
  return new Request(url, { method, headers, ...(body !== undefined ? { body } : {}) })
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
  // Stateless: a fresh SDK server and transport per request; nothing is kept between invocations but the
  // catalog, clients and caches built at boot.
  const server = app.mcp.create()
  const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true })
  try {
    await server.connect(transport)
    const response = await transport.handleRequest(toRequest(event))
    const headers: Record<string, string> = {}
    response.headers.forEach((v, k) => {
      headers[k] = v
    })
    return { statusCode: response.status, headers, body: await response.text(), isBase64Encoded: false }
  } finally {
    await server.close().catch(() => undefined)
    await app.flush().catch(() => undefined)
  }
}
