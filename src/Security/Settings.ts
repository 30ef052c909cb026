/**
 * Settings of the safety rules: where specs may come from (SSRF guard, size cap) and how the HTTP transport
 * treats its clients (Origin allow-list, bearer token or OAuth 2.1 resource-server mode, limits). Read by
 * AppConfig; kept here beside the code that enforces them.
 */
import { Config, Option, type Redacted } from "effect"
import { DEFAULT_SPEC_MAX_BYTES } from "../AppConfig/SpecOption.ts"

export interface SpecSourceSettings {
  /** http:// spec URLs (and their `$ref` files) are allowed. */
  readonly allowInsecureHttp: boolean
  /** Spec URLs may resolve to loopback, private, link-local and other non-public addresses. */
  readonly allowPrivateNetworks: boolean
  /** Spec files (and their `$ref` files) must lie inside one of these directories; empty: anywhere. */
  readonly allowedDirs: ReadonlyArray<string>
  /** Largest spec document (each file or URL), in bytes. */
  readonly maxBytes: number
}

export interface InboundSettings {
  /** Origins (scheme://host[:port]) allowed besides localhost ones; `*` allows every origin. */
  readonly allowedOrigins: ReadonlyArray<string>
  /** Static bearer token clients must send. */
  readonly authToken: Option.Option<Redacted.Redacted>
  readonly oauth: {
    readonly jwksUrl: Option.Option<string>
    readonly issuer: Option.Option<string>
    readonly audience: ReadonlyArray<string>
    readonly scopes: ReadonlyArray<string>
    /** The resource URI announced in the protected-resource metadata; default: the first audience that is a URL. */
    readonly resource: Option.Option<string>
  }
  readonly maxBodyBytes: number
  readonly maxSessions: number
  readonly maxSessionsPerClient: number
  readonly sessionIdleSeconds: number
  /**
   * How long the requests of a session's event stream that broke off keep running for the client to resume it
   * (GET with Last-Event-ID); 0: a broken stream cancels them at once.
   */
  readonly streamResumeSeconds: number
  /** Headers of a client's request sent on to the API with its tool calls (MCP_FORWARD_HEADERS). */
  readonly forwardHeaders: ReadonlyArray<ForwardedHeader>
  /** Tool calls a client may make per minute (MCP_MAX_CALLS_PER_MINUTE); 0: no limit. */
  readonly maxCallsPerMinute: number
}

/** A client's header `from` sent to the API as `to` (both lower-case): `X-Api-Key`, or `X-Upstream-Token=Authorization`. */
export interface ForwardedHeader {
  readonly from: string
  readonly to: string
}

/** A header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Set by the connection or the body, never by a setting. */
export const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "content-type", "accept-encoding"])
/** Headers of a client's request that are about its exchange with this server, not about the API. */
const OWN_HEADERS = new Set([...RESERVED_HEADERS, "accept", "origin", "mcp-session-id", "mcp-protocol-version", "last-event-id"])

const list = (key: string) =>
  Config.String(key).pipe(
    Config.map((s) => s.split(/[,\s]+/).map((x) => x.trim()).filter((x) => x.length > 0)),
    Config.withDefault([] as ReadonlyArray<string>)
  )
const text = (key: string) => Config.String(key).pipe(Config.option)
const int = (key: string, dflt: number) => Config.Int(key).pipe(Config.withDefault(dflt))
const flag = (key: string) => Config.Boolean(key).pipe(Config.withDefault(false))

export const specSourceConfig = Config.all({
  allowInsecureHttp: flag("ALLOW_INSECURE_HTTP"),
  allowPrivateNetworks: flag("ALLOW_PRIVATE_NETWORKS"),
  allowedDirs: list("ALLOWED_SPEC_DIRS"),
  maxBytes: int("SPEC_MAX_BYTES", DEFAULT_SPEC_MAX_BYTES)
})

export const inboundConfig = Config.all({
  allowedOrigins: list("MCP_ALLOWED_ORIGINS"),
  authToken: Config.Redacted("MCP_AUTH_TOKEN").pipe(Config.option),
  oauth: Config.all({
    jwksUrl: text("MCP_OAUTH_JWKS_URL"),
    issuer: text("MCP_OAUTH_ISSUER"),
    audience: list("MCP_OAUTH_AUDIENCE"),
    scopes: list("MCP_OAUTH_SCOPES"),
    resource: text("MCP_OAUTH_RESOURCE")
  }),
  maxBodyBytes: int("MCP_MAX_BODY_BYTES", 4_194_304),
  maxSessions: int("MCP_MAX_SESSIONS", 1000),
  maxSessionsPerClient: int("MCP_MAX_SESSIONS_PER_CLIENT", 100),
  sessionIdleSeconds: int("MCP_SESSION_IDLE_SECONDS", 1800),
  streamResumeSeconds: int("MCP_STREAM_RESUME_SECONDS", 30),
  maxCallsPerMinute: int("MCP_MAX_CALLS_PER_MINUTE", 0),
  forwardHeaders: list("MCP_FORWARD_HEADERS").pipe(Config.map((items) =>
    items.map((item): ForwardedHeader => {
      const [from = "", to = from] = item.toLowerCase().split("=")
      return { from, to }
    })
  ))
})

export const specSourceDefaults: SpecSourceSettings = {
  allowInsecureHttp: false, allowPrivateNetworks: false, allowedDirs: [], maxBytes: DEFAULT_SPEC_MAX_BYTES
}

export const inboundDefaults: InboundSettings = {
  allowedOrigins: [],
  authToken: Option.none(),
  oauth: { jwksUrl: Option.none(), issuer: Option.none(), audience: [], scopes: [], resource: Option.none() },
  maxBodyBytes: 4_194_304,
  maxSessions: 1000,
  maxSessionsPerClient: 100,
  sessionIdleSeconds: 1800,
  streamResumeSeconds: 30,
  maxCallsPerMinute: 0,
  forwardHeaders: []
}

const isUrl = (s: string, protocols: RegExp) => {
  try {
    return protocols.test(new URL(s).protocol)
  } catch {
    return false
  }
}

const ORIGIN = /^https?:\/\/[^/?#\s]+$/i

/** Checks the types cannot express: [env key, value, ok, what is allowed], as AppConfig's range checks. */
const forwardChecks = (inbound: InboundSettings): ReadonlyArray<readonly [string, unknown, boolean, string]> => {
  const forward = inbound.forwardHeaders
  const shown = forward.map((f) => f.from === f.to ? f.from : `${f.from}=${f.to}`).join(",")
  const clientAuth = Option.isSome(inbound.authToken) || Option.isSome(inbound.oauth.jwksUrl)
  return [
    ["MCP_FORWARD_HEADERS", shown, forward.every((f) => HEADER_NAME.test(f.from) && HEADER_NAME.test(f.to)),
      "a comma list of header names, each optionally renamed for the API as <client header>=<API header>"],
    ["MCP_FORWARD_HEADERS", shown, forward.every((f) => !OWN_HEADERS.has(f.from) && !RESERVED_HEADERS.has(f.to)),
      `headers other than ${[...OWN_HEADERS].join(", ")}: those belong to the connection or to MCP`],
    ["MCP_FORWARD_HEADERS", shown, !clientAuth || forward.every((f) => f.from !== "authorization"),
      "not Authorization while clients authenticate to this server (MCP_AUTH_TOKEN or MCP_OAUTH_*): it carries their " +
      "credential for this server, which must not reach the API; have clients send the API's in another header " +
      "(X-Upstream-Authorization=Authorization)"]
  ]
}

export const securityChecks = (
  spec: SpecSourceSettings,
  inbound: InboundSettings
): ReadonlyArray<readonly [string, unknown, boolean, string]> => {
  const jwks = Option.getOrUndefined(inbound.oauth.jwksUrl)
  const oauthOn = jwks !== undefined
  return [
    ["SPEC_MAX_BYTES", spec.maxBytes, spec.maxBytes >= 1024, "a whole number of bytes, at least 1024"],
    ["MCP_ALLOWED_ORIGINS", inbound.allowedOrigins.join(","), inbound.allowedOrigins.every((o) => o === "*" || ORIGIN.test(o)),
      "a comma list of origins such as https://app.example.com (scheme, host and optional port; no path), or *"],
    ["MCP_OAUTH_JWKS_URL", jwks, jwks === undefined || isUrl(jwks, /^https?:$/), "an http(s) URL of the authorization server's JWKS"],
    ["MCP_OAUTH_ISSUER", Option.getOrUndefined(inbound.oauth.issuer), !oauthOn || Option.isSome(inbound.oauth.issuer),
      "the authorization server's issuer URL (required with MCP_OAUTH_JWKS_URL)"],
    ["MCP_OAUTH_AUDIENCE", inbound.oauth.audience.join(","), !oauthOn || inbound.oauth.audience.length > 0,
      "this server's audience / resource URI (required with MCP_OAUTH_JWKS_URL: tokens issued for other services are refused)"],
    ["MCP_AUTH_TOKEN", "<redacted>", !(oauthOn && Option.isSome(inbound.authToken)), "unset when MCP_OAUTH_JWKS_URL is set (choose one client authentication)"],
    ["MCP_MAX_BODY_BYTES", inbound.maxBodyBytes, inbound.maxBodyBytes >= 1024, "a whole number of bytes, at least 1024"],
    ["MCP_MAX_SESSIONS", inbound.maxSessions, inbound.maxSessions >= 1, "a whole number of at least 1"],
    ["MCP_MAX_SESSIONS_PER_CLIENT", inbound.maxSessionsPerClient, inbound.maxSessionsPerClient >= 1, "a whole number of at least 1"],
    ["MCP_SESSION_IDLE_SECONDS", inbound.sessionIdleSeconds, inbound.sessionIdleSeconds >= 1, "a whole number of seconds, at least 1"],
    ["MCP_STREAM_RESUME_SECONDS", inbound.streamResumeSeconds, inbound.streamResumeSeconds >= 0, "a whole number of seconds (0: not resumable)"],
    ["MCP_MAX_CALLS_PER_MINUTE", inbound.maxCallsPerMinute, inbound.maxCallsPerMinute >= 0, "a whole number of at least 0 (0: no limit)"],
    ...forwardChecks(inbound)
  ]
}
