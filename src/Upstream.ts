/**
 * Upstream: sends one request to the upstream API over a pooled keep-alive HTTP client (undici) and reads
 * the answer. Every request has a deadline; when it fires the request is aborted (no orphaned sockets).
 * Errors never carry the request URL: it may hold an API key in its query.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Duration, Effect, Layer, Schema } from "effect"
import { HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import { AppConfig } from "./AppConfig.ts"
import type { OutgoingRequest } from "./Invoker/RequestBuilder.ts"

export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", {
  afterMs: Schema.Number
}) {
  readonly retryable = true
}
export class UpstreamConnect extends Schema.TaggedError<UpstreamConnect>()("UpstreamConnect", {
  detail: Schema.String
}) {
  readonly retryable = true
}
export class UpstreamInvalidRequest extends Schema.TaggedError<UpstreamInvalidRequest>()("UpstreamInvalidRequest", {
  detail: Schema.String
}) {
  readonly retryable = false
}
export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  reason: Schema.Union([UpstreamTimeout, UpstreamConnect, UpstreamInvalidRequest])
}) {}

export interface UpstreamResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/** The first error code in a cause chain (ECONNREFUSED, UND_ERR_SOCKET…), never a message that could hold a URL. */
const errorCode = (cause: unknown): string => {
  let c: unknown = cause
  for (let i = 0; i < 5 && typeof c === "object" && c !== null; i++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === "string") return code
    c = (c as { cause?: unknown }).cause
  }
  return typeof cause === "object" && cause !== null && "name" in cause ? String((cause as { name: unknown }).name) : "unknown error"
}

export const toHttpRequest = (req: OutgoingRequest): HttpClientRequest.HttpClientRequest => {
  const url = req.query.length > 0 ? `${req.url}?${req.query.join("&")}` : req.url
  const headers: Record<string, string> = { ...req.headers }
  if (req.cookies.length > 0) headers["cookie"] = req.cookies.map(([k, v]) => `${k}=${v}`).join("; ")
  const body = req.body === undefined
    ? HttpBody.empty
    : req.body.data instanceof FormData
    ? HttpBody.formData(req.body.data)
    : HttpBody.uint8Array(req.body.data, req.body.contentType)
  return HttpClientRequest.make(req.method)(url, { headers, body })
}

export class Upstream extends Context.Service<Upstream, {
  /** Sends the request; any HTTP status is a success here (mapping statuses is the caller's job). */
  readonly execute: (request: OutgoingRequest) => Effect.Effect<UpstreamResponse, UpstreamError>
}>()("openapi-mcp/Upstream") {
  static readonly layerNoDeps = Layer.effect(Upstream, Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* HttpClient.HttpClient
    const timeoutMs = config.http.timeoutMs

    const execute = Effect.fn("Upstream.execute")(function*(request: OutgoingRequest) {
      const response = yield* client.execute(toHttpRequest(request))
      const body = new Uint8Array(yield* response.arrayBuffer)
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(response.headers)) if (typeof v === "string") headers[k] = v
      return { status: response.status, headers, body }
    }, Effect.timeoutOrElse({
      duration: Duration.millis(timeoutMs),
      orElse: () => Effect.fail(new UpstreamError({ reason: new UpstreamTimeout({ afterMs: timeoutMs }) }))
    }), Effect.catchTag("HttpClientError", (e) => {
      const reason = e.reason
      switch (reason._tag) {
        case "InvalidUrlError":
        case "EncodeError":
          return Effect.fail(new UpstreamError({ reason: new UpstreamInvalidRequest({ detail: reason._tag === "InvalidUrlError" ? "the request URL is invalid" : "the request body could not be encoded" }) }))
        default:
          return Effect.fail(new UpstreamError({ reason: new UpstreamConnect({ detail: errorCode(reason.cause) }) }))
      }
    }))

    return Upstream.of({ execute })
  }))

  /** Pooled keep-alive undici client sized from HTTP_MAX_CONNECTIONS / HTTP_CONNECT_TIMEOUT. */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    return Upstream.layerNoDeps.pipe(Layer.provide(NodeHttpClient.layerUndiciOptions({
      connections: config.http.maxConnections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: config.http.connectTimeoutMs }
    })))
  }))
}
