/**
 * Inbound security of the HTTP transport (clients → this server), as the MCP specification asks:
 *
 * - Origin: a request with an `Origin` header is served only when the origin is a localhost one
 *   (http(s)://localhost, 127.0.0.1, [::1], any port) or listed in MCP_ALLOWED_ORIGINS; others get 403.
 *   This stops DNS-rebinding pages from driving a local server. Requests without Origin (non-browser
 *   clients) pass.
 * - Client authentication, optional: a static bearer token (MCP_AUTH_TOKEN, compared in constant time), or
 *   OAuth 2.1 resource-server mode: a JWT signed by a key of MCP_OAUTH_JWKS_URL, with issuer
 *   MCP_OAUTH_ISSUER, an audience in MCP_OAUTH_AUDIENCE and the scopes in MCP_OAUTH_SCOPES. Failures get 401
 *   (403 for missing scopes) with `WWW-Authenticate: Bearer resource_metadata="…"` pointing at the
 *   RFC 9728 protected-resource metadata served under /.well-known/oauth-protected-resource.
 * - Limits: body size (413), sessions in all (503) and per client (429), idle expiry (then 404).
 *
 * Inbound credentials are never forwarded upstream: the Invoker never sees inbound headers.
 */
import { Clock, Duration, Effect, Option, Redacted, Schedule, type Scope } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import type { IncomingMessage } from "node:http"
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from "jose"
import { AuthConfigError } from "../Auth/Errors.ts"
import { Secrets } from "../Auth/Secrets.ts"
import type { InboundSettings } from "./Settings.ts"

/** An answer that refuses the request: a JSON-RPC error without an id, with its HTTP status and headers. */
export interface Denial {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly code: number
  readonly message: string
}

export const denial = (status: number, code: number, message: string, headers: Record<string, string> = {}): Denial =>
  ({ status, headers, code, message })

/**
 * What the MCP transport writes to a response: Node's ServerResponse, or the Lambda handler's buffered
 * result (Lambda.ts).
 */
export interface ResponseLike {
  writeHead(status: number, headers?: Record<string, string>): unknown
  write(chunk: string): unknown
  end(chunk?: string | Uint8Array): unknown
  once(event: "close", listener: () => void): unknown
  flushHeaders(): void
}

export const writeDenial = (res: Pick<ResponseLike, "writeHead" | "end">, d: Denial): void => {
  res.writeHead(d.status, { "content-type": "application/json", ...d.headers })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: d.code, message: d.message }, id: null }))
}

/** Answers with a JSON-RPC error without an id (a refusal of the HTTP request itself). */
export const writeError = (res: Pick<ResponseLike, "writeHead" | "end">, status: number, code: number, message: string, headers: Record<string, string> = {}): void =>
  writeDenial(res, denial(status, code, message, headers))

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"])

/** True when a request with this Origin header (or none) may be served. */
export const originAllowed = (origin: string | undefined, allowed: ReadonlyArray<string>): boolean => {
  if (origin === undefined) return true
  if (allowed.includes("*")) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false // "null" (sandboxed frames, file: pages) and garbage
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false
  if (LOCAL_HOSTS.has(url.hostname)) return true
  return allowed.some((a) => {
    try {
      return new URL(a).origin === url.origin
    } catch {
      return false
    }
  })
}

/** Who a request comes from, for per-client limits: the token subject, else the peer address. */
export type Admission =
  | { readonly _tag: "Admitted"; readonly client: string }
  | { readonly _tag: "Denied"; readonly denial: Denial }

const sha256 = (s: string) => createHash("sha256").update(s).digest()

const bearerOf = (request: IncomingMessage): string | undefined => {
  const header = request.headers["authorization"]
  const m = header === undefined ? null : /^Bearer[ ]+([^\s]+)\s*$/i.exec(header)
  return m?.[1]
}

const quote = (s: string) => s.replace(/["\\]/g, "")

export interface InboundGuard {
  /**
   * Origin and client authentication; the client's identity, or the answer to send instead. Synchronous
   * except for OAuth access tokens (their signature check may fetch the JWKS).
   */
  readonly admit: (request: IncomingMessage) => Admission | Promise<Admission>
  /** The RFC 9728 metadata document (OAuth mode), or undefined when OAuth mode is off. */
  readonly metadata: (host: string | undefined) => Record<string, unknown> | undefined
  /** Reads the JSON body under MCP_MAX_BODY_BYTES: the value, or the 400/413 answer to send. */
  readonly readJson: (request: IncomingMessage) => Promise<{ readonly _tag: "Body"; readonly body: unknown } | Extract<Admission, { _tag: "Denied" }>>
}

/** Accepted JWS algorithms: asymmetric only (a JWKS holds public keys; never `none` or HMAC). */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

/**
 * The guard for these settings. MCP_AUTH_TOKEN may be a secret reference (`file:`, `secretsmanager:`…),
 * resolved once here; an unreadable one stops the start.
 */
export const makeInboundGuard = (
  settings: InboundSettings,
  /** Where the guard reports trouble the client cannot fix (an unreachable JWKS). */
  warn: (message: string) => void
): Effect.Effect<InboundGuard, AuthConfigError, Secrets> =>
  Effect.gen(function*() {
    const secrets = yield* Secrets
    const authToken = Option.isNone(settings.authToken) ? Option.none<Redacted.Redacted>() : Option.some(
      (yield* secrets.resolve(Redacted.value(settings.authToken.value), "--mcp-auth-token (MCP_AUTH_TOKEN)").pipe(
        Effect.mapError((e) => new AuthConfigError({ message: e.message }))
      )).value
    )
    return guardFor({ ...settings, authToken }, warn)
  })

const guardFor = (settings: InboundSettings, warn: (message: string) => void): InboundGuard => {
  const peer = (request: IncomingMessage) => request.socket.remoteAddress ?? "unknown"
  const oauth = settings.oauth
  const jwksUrl = Option.getOrUndefined(oauth.jwksUrl)
  const jwks = jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })
  const staticToken = Option.map(settings.authToken, (t) => sha256(Redacted.value(t)))

  /** The resource URI: MCP_OAUTH_RESOURCE, else the first audience that is a URL, else this request's /mcp. */
  const resourceOf = (host: string | undefined): string => {
    const configured = Option.getOrUndefined(oauth.resource) ?? oauth.audience.find((a) => /^https?:\/\//i.test(a))
    if (configured !== undefined) return configured
    return `http://${host ?? "localhost"}/mcp`
  }
  /** Where the metadata is: /.well-known/oauth-protected-resource inserted before the resource's path (RFC 9728 §3.1). */
  const metadataUrl = (request: IncomingMessage): string => {
    const resource = new URL(resourceOf(request.headers.host))
    const path = resource.pathname === "/" ? "" : resource.pathname.replace(/\/$/, "")
    return `${resource.origin}/.well-known/oauth-protected-resource${path}`
  }
  const challenge = (request: IncomingMessage, extra: string) =>
    `Bearer ${extra}${extra ? ", " : ""}resource_metadata="${metadataUrl(request)}"`

  const unauthorized = (request: IncomingMessage, message: string, error?: string) =>
    ({
      _tag: "Denied",
      denial: denial(401, -32001, message, {
        "www-authenticate": jwks !== undefined
          ? challenge(request, error ? `error="${error}", error_description="${quote(message)}"` : "")
          : `Bearer realm="openapi-mcp-server"${error ? `, error="${error}"` : ""}`
      })
    }) as const

  const verifyJwt = (request: IncomingMessage, token: string): Promise<Admission> =>
    jwtVerify(token, jwks!, {
      issuer: Option.getOrUndefined(oauth.issuer)!,
      audience: [...oauth.audience],
      algorithms: ALGORITHMS,
      clockTolerance: 30
    }).then(({ payload }): Admission => {
      const granted = new Set([
        ...(typeof payload["scope"] === "string" ? payload["scope"].split(" ") : []),
        ...(Array.isArray(payload["scp"]) ? payload["scp"].filter((s): s is string => typeof s === "string") : []),
        ...(typeof payload["scp"] === "string" ? payload["scp"].split(" ") : [])
      ])
      const missing = oauth.scopes.filter((s) => !granted.has(s))
      if (missing.length > 0) {
        const message = `Forbidden: the access token lacks the scope(s) ${missing.join(" ")}`
        return {
          _tag: "Denied",
          denial: denial(403, -32001, message, {
            "www-authenticate": challenge(request, `error="insufficient_scope", scope="${quote(oauth.scopes.join(" "))}"`)
          })
        }
      }
      const subject = typeof payload.sub === "string" ? payload.sub : typeof payload["client_id"] === "string" ? payload["client_id"] : peer(request)
      return { _tag: "Admitted", client: `sub:${subject}` }
    }, (e: unknown): Admission => {
      if (e instanceof joseErrors.JWKSTimeout || !(e instanceof joseErrors.JOSEError)) {
        warn(`cannot validate access tokens: the JWKS at ${jwksUrl} is unavailable (${(e as Error).name})`)
        return {
          _tag: "Denied",
          denial: denial(503, -32001, "Service unavailable: access tokens cannot be validated right now; try again shortly", { "retry-after": "5" })
        }
      }
      const why = e instanceof joseErrors.JWTExpired
        ? "the access token has expired"
        : e instanceof joseErrors.JWTClaimValidationFailed
        ? `the access token's '${e.claim}' claim is not accepted (${e.reason})`
        : e instanceof joseErrors.JWKSNoMatchingKey
        ? "the access token is not signed by a key of the authorization server"
        : e instanceof joseErrors.JWSSignatureVerificationFailed
        ? "the access token's signature is invalid"
        : "the access token is not a valid JWT"
      return unauthorized(request, `Unauthorized: ${why}`, "invalid_token")
    })

  const admit = (request: IncomingMessage): Admission | Promise<Admission> => {
    const origin = request.headers.origin
    if (!originAllowed(origin, settings.allowedOrigins)) {
      return { _tag: "Denied", denial: denial(403, -32000, `Forbidden: origin ${origin} is not allowed (MCP_ALLOWED_ORIGINS)`) }
    }
    const token = bearerOf(request)
    if (jwks !== undefined) {
      if (token === undefined) return unauthorized(request, "Unauthorized: send an OAuth access token (Authorization: Bearer <token>)")
      return verifyJwt(request, token)
    }
    if (Option.isSome(staticToken)) {
      if (token === undefined) return unauthorized(request, "Unauthorized: send the server's token (Authorization: Bearer <token>)")
      if (!timingSafeEqual(sha256(token), staticToken.value)) return unauthorized(request, "Unauthorized: the token is not valid", "invalid_token")
    }
    return { _tag: "Admitted", client: `addr:${peer(request)}` }
  }

  const metadata = (host: string | undefined) =>
    jwks === undefined ? undefined : {
      resource: resourceOf(host),
      authorization_servers: [Option.getOrUndefined(oauth.issuer)],
      bearer_methods_supported: ["header"],
      ...(oauth.scopes.length > 0 ? { scopes_supported: oauth.scopes } : {}),
      resource_name: "openapi-mcp-server"
    }

  const tooLarge = () =>
    ({
      _tag: "Denied",
      denial: denial(413, -32600, `Payload too large: the request body is over ${settings.maxBodyBytes} bytes (MCP_MAX_BODY_BYTES)`)
    }) as const

  const readJson = (request: IncomingMessage) =>
    new Promise<{ readonly _tag: "Body"; readonly body: unknown } | Extract<Admission, { _tag: "Denied" }>>((resolve) => {
      const declared = Number(request.headers["content-length"])
      if (Number.isFinite(declared) && declared > settings.maxBodyBytes) return resolve(tooLarge())
      const chunks: Array<Buffer> = []
      let size = 0
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > settings.maxBodyBytes) {
          request.off("data", onData)
          request.resume() // drain the rest unread; the answer goes out now
          return resolve(tooLarge())
        }
        chunks.push(chunk)
      }
      request.on("data", onData)
      request.once("error", () => resolve({ _tag: "Denied", denial: denial(400, -32700, "Parse error: the request body could not be read") }))
      request.once("end", () => {
        if (size > settings.maxBodyBytes) return
        try {
          const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
          resolve({ _tag: "Body", body: JSON.parse(text) })
        } catch {
          resolve({ _tag: "Denied", denial: denial(400, -32700, "Parse error: the request body is not valid JSON") })
        }
      })
    })

  return { admit, metadata, readJson }
}

/**
 * Session bookkeeping for the limits: who owns each session, when it was last used, how many requests
 * are in flight on it (an open event stream keeps it alive), and which ids expired (for a clear 404).
 */
export class SessionLimits {
  private readonly owners = new Map<string, string>()
  private readonly lastSeen = new Map<string, number>()
  private readonly inFlight = new Map<string, number>()
  private readonly expired = new Set<string>()
  private readonly settings: InboundSettings
  constructor(settings: InboundSettings) {
    this.settings = settings
  }

  /** Whether `client` may open one more session: undefined, or the 429/503 answer. */
  refuse(client: string): Denial | undefined {
    if (this.owners.size >= this.settings.maxSessions) {
      return denial(503, -32000, `Service unavailable: ${this.settings.maxSessions} sessions are open, the most this server keeps (MCP_MAX_SESSIONS); end one or try again later`, { "retry-after": "30" })
    }
    let mine = 0
    for (const owner of this.owners.values()) if (owner === client) mine++
    if (mine >= this.settings.maxSessionsPerClient) {
      return denial(429, -32000, `Too many sessions: this client has ${mine} open, the most allowed (MCP_MAX_SESSIONS_PER_CLIENT); end one (DELETE /mcp) or reuse it`, { "retry-after": "30" })
    }
    return undefined
  }

  opened(id: string, client: string, now: number): void {
    this.owners.set(id, client)
    this.lastSeen.set(id, now)
  }

  closed(id: string): void {
    this.owners.delete(id)
    this.lastSeen.delete(id)
    this.inFlight.delete(id)
  }

  /** The owner of a session, if it is open. */
  ownerOf(id: string): string | undefined {
    return this.owners.get(id)
  }

  wasExpired(id: string): boolean {
    return this.expired.has(id)
  }

  begin(id: string, now: number): void {
    this.lastSeen.set(id, now)
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1)
  }

  end(id: string, now: number): void {
    if (this.owners.has(id)) this.lastSeen.set(id, now)
    const n = (this.inFlight.get(id) ?? 1) - 1
    if (n <= 0) this.inFlight.delete(id)
    else this.inFlight.set(id, n)
  }

  /** Sessions idle for MCP_SESSION_IDLE_SECONDS with nothing in flight; they are marked expired. */
  idle(now: number): ReadonlyArray<string> {
    const limit = this.settings.sessionIdleSeconds * 1000
    const out: Array<string> = []
    for (const [id, seen] of this.lastSeen) {
      if (now - seen >= limit && !this.inFlight.has(id)) out.push(id)
    }
    for (const id of out) {
      this.closed(id)
      this.expired.add(id)
      if (this.expired.size > 10_000) this.expired.delete(this.expired.values().next().value!)
    }
    return out
  }
}

/**
 * Closes the sessions idle for MCP_SESSION_IDLE_SECONDS, checking every half of that (at least every
 * 30 s), until the enclosing scope closes. Their ids then answer 404 "Session expired".
 */
export const sweepIdleSessions = (
  limits: SessionLimits,
  idleSeconds: number,
  close: (id: string) => Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const id of limits.idle(now)) {
      yield* Effect.logInfo(`HTTP session closed after ${idleSeconds} s without requests (MCP_SESSION_IDLE_SECONDS)`)
      yield* close(id)
    }
  }).pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(Math.min(30_000, Math.max(250, idleSeconds * 500))))),
    Effect.forkScoped,
    Effect.asVoid
  )
