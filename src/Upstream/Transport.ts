/**
 * The wire under Upstream: one HTTP exchange on a pooled keep-alive undici Agent, through undici's
 * dispatch API (no stream or promise per request: the answer is collected in a handler). Upstream's tests
 * put a scripted fake in its place.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { IncomingHttpHeaders } from "node:http"
import type { Dispatcher } from "undici"
import { AppConfig } from "../AppConfig.ts"
import type { ClientTls } from "../Auth/ClientCert.ts"
import { guardedLookup, proxyUrls } from "../Security/SsrfGuard.ts"

export interface UpstreamResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
  /** The body went on past the read limit: `body` is its beginning and the request was aborted. */
  readonly bodyCut?: true
}

/** What goes on the wire: origin and path (with the query) apart, as undici takes them. */
export interface WireRequest {
  readonly method: string
  readonly origin: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array | undefined
  /** Connect only to public addresses (checked at each new connection); see CallPolicy.guardConnections. */
  readonly guarded?: boolean
  /** The client certificate its connection presents (mutual TLS). */
  readonly tls?: ClientTls | undefined
}

/**
 * Sends one request and calls `done` exactly once, with the whole answer or the transport's error (its
 * `code` says what failed: ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT…). Returns a function that aborts it.
 */
export type Send = (request: WireRequest, done: (result: UpstreamResponse | Error) => void) => () => void

const aborted = () => Object.assign(new Error("request aborted"), { code: "UND_ERR_ABORTED" })

/** Response headers as single strings (repeated headers joined with ", "). */
const flatHeaders = (raw: IncomingHttpHeaders): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const k in raw) {
    const v = raw[k]
    if (typeof v === "string") out[k] = v
    else if (Array.isArray(v)) out[k] = v.join(", ")
  }
  return out
}

/**
 * Compressed answers are asked for (a big JSON answer is several times smaller on the wire) and decompressed
 * by undici's interceptor before the body is collected, so the size limit below counts decompressed bytes (a
 * small compressed bomb is cut like any other long answer). Errors' bodies too: their excerpts are shown.
 */
const ACCEPT_ENCODING = "gzip, deflate, br"

/** A Content-Type's media type, lower-case, without parameters. */
export const mediaTypeOf = (headers: Readonly<Record<string, string>>): string =>
  (headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()

export const isJsonType = (mt: string) => mt === "application/json" || mt.endsWith("+json")

/** Sequences of JSON values, one per line or record (JSON Lines, NDJSON, RFC 7464; OpenAPI 3.2's `itemSchema`). */
const JSON_SEQUENCES = new Set(["application/jsonl", "application/x-jsonlines", "application/jsonlines", "application/x-ndjson", "application/ndjson", "application/json-seq"])

export const isTextType = (mt: string) =>
  mt.startsWith("text/") || mt.endsWith("/xml") || mt.endsWith("+xml") || mt === "application/x-www-form-urlencoded" ||
  mt === "application/yaml" || mt === "application/x-yaml" || mt === "application/javascript" || mt === "application/graphql" ||
  JSON_SEQUENCES.has(mt) || mt.endsWith("+jsonl")

/** Whether an answer is binary: by its Content-Type neither JSON nor text (DOWNLOAD_DIR saves such answers). */
export const isBinaryAnswer = (headers: Readonly<Record<string, string>>): boolean => {
  const mt = mediaTypeOf(headers)
  return mt !== "" && !isJsonType(mt) && !isTextType(mt)
}

/**
 * The most of a response body (with these headers) kept in memory; past it the request is aborted and the
 * answer is what came so far, marked `bodyCut` (an API that sends gigabytes cannot exhaust the server's memory).
 */
type BodyLimit = (status: number, headers: Readonly<Record<string, string>>) => number

/**
 * One byte past what could be used: MAX_RESPONSE_BYTES, or CACHE_MAX_ENTRY_BYTES if larger; for a binary answer
 * (2xx) with DOWNLOAD_DIR set, DOWNLOAD_MAX_BYTES if larger still.
 */
const bodyLimit = (config: AppConfig["Service"]): BodyLimit => {
  const base = Math.max(config.maxResponseBytes, config.cache.maxEntryBytes) + 1
  const download = Option.isSome(config.download.dir) ? config.download.maxBytes + 1 : 0
  return download > base ? (status, headers) => status >= 200 && status < 300 && isBinaryAnswer(headers) ? download : base : () => base
}

const undiciSend = (dispatcher: Dispatcher, limitOf: BodyLimit): Send => (request, done) => {
  let controller: Dispatcher.DispatchController | undefined
  let cancelled = false
  let finished = false
  let status = 0
  let headers: Record<string, string> = {}
  let maxBodyBytes = 0
  const chunks: Array<Buffer> = []
  let size = 0
  const finish = (result: UpstreamResponse | Error) => {
    if (finished) return
    finished = true
    done(result)
  }
  try {
    dispatcher.dispatch({
      origin: request.origin,
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers["accept-encoding"] === undefined ? { ...request.headers, "accept-encoding": ACCEPT_ENCODING } : request.headers,
      body: request.body ?? null
    }, {
      onRequestStart(c) {
        controller = c
        if (cancelled) c.abort(aborted())
      },
      onResponseStart(_c, statusCode, raw) {
        status = statusCode
        headers = flatHeaders(raw)
        maxBodyBytes = limitOf(statusCode, headers)
      },
      onResponseData(c, chunk) {
        if (finished) return
        size += chunk.length
        if (size <= maxBodyBytes) return void chunks.push(chunk)
        chunks.push(chunk.subarray(0, chunk.length - (size - maxBodyBytes)))
        finish({ status, headers, body: Buffer.concat(chunks), bodyCut: true })
        c.abort(aborted())
      },
      onResponseEnd() {
        finish({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) })
      },
      onResponseError(_c, error) {
        finish(error)
      }
    })
  } catch (e) {
    finish(e instanceof Error ? e : new Error(String(e)))
  }
  return () => {
    cancelled = true
    controller?.abort(aborted())
  }
}

/**
 * A Send over Agents made on first use: undici is a large package (tens of milliseconds to load), so it is
 * loaded after start-up, when the server is idle (`preloadMs`) or at the first call, whichever comes first.
 * With `guard`, a request marked `guarded` goes through a second Agent whose connections are checked
 * (SsrfGuard.guardedLookup); without, every request goes through the one Agent. A request with a client
 * certificate (mutual TLS) goes through Agents of their own for that certificate, made at its first request.
 */
const lazySend = (
  makeAgent: (undici: typeof import("undici"), lookup: typeof guardedLookup | undefined, tls: ClientTls | undefined) => Dispatcher,
  guard: boolean,
  limitOf: BodyLimit,
  preloadMs: number
) => {
  interface Sends {
    readonly plain: Send
    readonly guarded: Send
  }
  let sends: Sends | undefined
  const agents: Array<Dispatcher> = []
  /** The Sends of each client certificate, by its id. */
  const identities = new Map<string, Sends>()
  let loading: Promise<Sends> | undefined
  let undici: typeof import("undici") | undefined
  const sendsOf = (u: typeof import("undici"), tls: ClientTls | undefined): Sends => {
    const decompress = u.interceptors.decompress({ skipErrorResponses: false })
    const sendOver = (agent: Dispatcher) => (agents.push(agent), undiciSend(agent.compose(decompress), limitOf))
    const plain = sendOver(makeAgent(u, undefined, tls))
    return { plain, guarded: guard ? sendOver(makeAgent(u, guardedLookup, tls)) : plain }
  }
  const load = () =>
    loading ??= import("undici").then((u) => {
      undici = u
      return (sends = sendsOf(u, undefined))
    })
  const preload = setTimeout(() => void load().catch(() => undefined), preloadMs)
  preload.unref()
  const pick = (request: WireRequest, s: Sends) => {
    const tls = request.tls
    let own = tls === undefined ? s : identities.get(tls.id)
    if (own === undefined) identities.set(tls!.id, own = sendsOf(undici!, tls))
    return request.guarded ? own.guarded : own.plain
  }
  const lazy: Send = (request, done) => {
    if (sends !== undefined) return pick(request, sends)(request, done)
    let cancelled = false
    let abort: (() => void) | undefined
    load().then((s) => {
      if (!cancelled) abort = pick(request, s)(request, done)
    }, (e: unknown) => done(e instanceof Error ? e : new Error(String(e))))
    return () => {
      cancelled = true
      abort?.()
    }
  }
  const close = async () => {
    clearTimeout(preload)
    await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)))
  }
  return { send: lazy, close }
}

/**
 * undici's options for HTTP(S)_PROXY and NO_PROXY, or undefined without a proxy; `shown` is the proxy's
 * origin without its credentials, for the log.
 */
const proxySettings = (proxy: AppConfig["Service"]["http"]["proxy"]) => {
  const urls = proxyUrls(proxy)
  if (urls === undefined) return undefined
  const { http, https, noProxy } = urls
  const shown = [...new Set([https, http].filter((u) => u !== undefined).map((u) => new URL(u).origin))].join(", ")
  // as undici reads them: HTTPS_PROXY for https targets, else HTTP_PROXY; HTTP_PROXY alone for http ones
  const options = { ...(http !== undefined ? { httpProxy: http } : {}), ...(https !== undefined ? { httpsProxy: https } : {}), noProxy }
  return { options, shown }
}

export class UpstreamTransport extends Context.Service<UpstreamTransport, { readonly send: Send }>()("openapi-mcp/UpstreamTransport") {
  /**
   * Keep-alive Agents (a pool per origin) sized from HTTP_MAX_CONNECTIONS / HTTP_CONNECT_TIMEOUT, closed with
   * the layer: one for the operator's upstreams, and unless private networks are allowed one whose every new
   * connection is checked to go to a public address (SsrfGuard.guardedLookup), for `guarded` requests (base
   * URLs chosen by a spec read from a URL). Request timeouts are Upstream's (it aborts the request), so
   * undici's own are off. A body is read up to one byte past what could be used (bodyLimit), then cut.
   */
  static readonly layer = Layer.effect(UpstreamTransport, Effect.gen(function*() {
    const config = yield* AppConfig
    const proxy = proxySettings(config.http.proxy)
    if (proxy !== undefined) {
      // token endpoints (OAuth2, Cognito) are reached with fetch, whose dispatcher is this process's global one
      const undici = yield* Effect.promise(() => import("undici"))
      undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent(proxy.options))
      yield* Effect.logInfo(`calls go through the proxy ${proxy.shown} (direct: ${proxy.options.noProxy})`)
    }
    const { send } = yield* Effect.acquireRelease(
      Effect.sync(() =>
        lazySend((undici, lookup, tls) => {
          const certificate = tls === undefined ? {} : { cert: tls.cert, key: tls.key, ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}) }
          const options = {
            connections: config.http.maxConnections,
            pipelining: 1,
            keepAliveTimeout: 30_000,
            headersTimeout: 0,
            bodyTimeout: 0,
            connect: { timeout: config.http.connectTimeoutMs, ...(lookup !== undefined ? { lookup } : {}), ...certificate }
          }
          // connections checked by the SSRF guard go direct: through a proxy, the proxy would choose the address
          return proxy !== undefined && lookup === undefined
            ? new undici.EnvHttpProxyAgent({ ...options, ...proxy.options, connectTimeout: config.http.connectTimeoutMs, requestTls: certificate })
            : new undici.Agent(options)
        }, !config.specSource.allowPrivateNetworks, bodyLimit(config), 1000)
      ),
      (lazy) => Effect.promise(lazy.close)
    )
    return UpstreamTransport.of({ send })
  }))
}
