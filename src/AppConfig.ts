/**
 * AppConfig: every setting, from defaults < config file < environment < CLI flags, validated once at start.
 * Secrets are `Redacted` from the moment they are read. A bad value stops the start with one message naming
 * the setting (flag and env var), the value and what is allowed.
 */
import { Config, ConfigProvider, Context, Effect, Layer, Option, Redacted, Result, Schema } from "effect"
import type { LogLevel } from "effect/LogLevel"
import { readFile } from "node:fs/promises"
import { canonicalKey, OPTIONS, optionForKey } from "./AppConfig/Options.ts"
import {
  type CognitoSettings, cognitoConfig, cognitoDefaults, type OAuth2Settings, oauth2Config, oauth2Defaults, schemeReferences,
  type SigV4Settings, sigv4Config, sigv4Defaults
} from "./Auth/Settings.ts"
import {
  HEADER_NAME, type InboundSettings, inboundConfig, inboundDefaults, RESERVED_HEADERS, securityChecks, type SpecSourceSettings, specSourceConfig,
  specSourceDefaults
} from "./Security/Settings.ts"
import { MAX_DEPTH } from "./SpecLoader/Guard.ts"

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", { message: Schema.String }) {}

/** What the config file's `operations:` section may set for an operationId or a `tag:<name>`. */
export const OperationOverride = Schema.Struct({
  timeout: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThan(0))),
  max_attempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 }))),
  idempotency_key_header: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9-]+$/))),
  circuit_breaker: Schema.optionalKey(Schema.Boolean),
  cache: Schema.optionalKey(Schema.Boolean),
  cache_ttl: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))),
  /** The operation's tool name instead of the one made from its operationId. */
  tool_name: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))),
  /** What the tool's description says instead of the operation's summary and description. */
  description: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1))),
  /** Argument values the server always sends; the model neither sees nor sets them. */
  arguments: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
})
export type OperationOverride = typeof OperationOverride.Type

export interface AdditionalSpec {
  /** Namespace of its tools (`<name>_<tool>`); from the spec's title when not given. */
  readonly name: string | undefined
  readonly spec: string
  readonly baseUrl: Option.Option<string>
  /** Its own credentials, or undefined to use the main spec's. */
  readonly auth: Settings["auth"] | undefined
}

/** Reads ADDITIONAL_SPECS (awslabs format); each bad entry is skipped with a reason. */
const additionalSpecs = (
  json: string | undefined
): Effect.Effect<{ readonly specs: ReadonlyArray<AdditionalSpec>; readonly problems: ReadonlyArray<string> }> =>
  Effect.gen(function*() {
    const specs: Array<AdditionalSpec> = []
    const problems: Array<string> = []
    if (json === undefined || json.trim() === "") return { specs, problems }
    let entries: unknown
    try {
      entries = JSON.parse(json)
    } catch (e) {
      return { specs, problems: [`ADDITIONAL_SPECS is not valid JSON (${(e as Error).message}); no additional spec is served`] }
    }
    for (const [i, entry] of (Array.isArray(entries) ? entries : [entries]).entries()) {
      const where = `ADDITIONAL_SPECS[${i}]`
      if (typeof entry !== "object" || entry === null) {
        problems.push(`${where} skipped: not an object`)
        continue
      }
      const e = entry as Record<string, unknown>
      const spec = e["spec_url"] ?? e["spec_path"] ?? e["spec"]
      if (typeof spec !== "string" || spec === "") {
        problems.push(`${where} skipped: it needs spec_path or spec_url`)
        continue
      }
      const name = typeof e["name"] === "string" && e["name"].trim() !== "" ? e["name"].trim() : undefined
      let auth: Settings["auth"] | undefined
      const authKeys = Object.keys(e).filter((k) => k.startsWith("auth_"))
      if (authKeys.length > 0 || e["headers"] !== undefined) {
        // its own credentials and headers (the main spec's must not go to another API)
        const env: Record<string, string> = { API_SPEC_URL: spec }
        for (const k of authKeys) env[k.toUpperCase()] = String(e[k])
        if (e["headers"] !== undefined) env["API_HEADERS"] = typeof e["headers"] === "string" ? e["headers"] : JSON.stringify(e["headers"])
        const own: Result.Result<Settings, ConfigInvalid> = yield* Effect.result(AppConfig.load({}, env))
        if (own._tag === "Failure") {
          problems.push(`${where} (${name ?? spec}) skipped: ${own.failure.message}`)
          continue
        }
        auth = own.success.auth
      }
      specs.push({ name, spec, baseUrl: typeof e["base_url"] === "string" ? Option.some(e["base_url"]) : Option.none(), auth })
    }
    return { specs, problems }
  })


/**
 * API_HEADERS: a JSON object (`{"Notion-Version": "2022-06-28"}`) or `Name: value` pairs separated by commas.
 * Returns the headers, or a message naming the problem (never a value: they may be secrets).
 */
export const parseHeaders = (raw: string | undefined): Record<string, string> | string => {
  if (raw === undefined || raw.trim() === "") return {}
  let entries: Array<[string, unknown]>
  if (/^\s*[[{]/.test(raw)) {
    const parsed = jsonObjectOf(raw, "API_HEADERS (--headers)", "header names to values", "Name: value pairs")
    if (typeof parsed === "string") return parsed
    entries = Object.entries(parsed)
  } else {
    entries = []
    for (const [i, pair] of raw.split(",").entries()) {
      if (pair.trim() === "") continue
      const colon = pair.indexOf(":")
      if (colon <= 0) return `API_HEADERS (--headers): item ${i + 1} of the list is not a Name: value pair`
      entries.push([pair.slice(0, colon).trim(), pair.slice(colon + 1).trim()])
    }
  }
  const out: Record<string, string> = {}
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) return `API_HEADERS (--headers): ${JSON.stringify(name.slice(0, 60))} is not a valid header name`
    if (RESERVED_HEADERS.has(name.toLowerCase())) return `API_HEADERS (--headers): ${name} is set by the connection or the request body, not by a setting`
    if (typeof value !== "string" || /[\r\n\0]/.test(value)) return `API_HEADERS (--headers): the value of ${name} must be text on one line`
    out[name] = value
  }
  return out
}

/** SERVER_VARIABLES: `name=value` pairs separated by commas; the values, or a message naming the item at fault. */
export const parseServerVariables = (raw: string | undefined): Record<string, string> | string => {
  const out: Record<string, string> = {}
  for (const [i, pair] of (raw ?? "").split(",").entries()) {
    if (pair.trim() === "") continue
    const eq = pair.indexOf("=")
    const name = pair.slice(0, eq).trim()
    if (eq <= 0 || !/^[A-Za-z0-9_.-]+$/.test(name)) {
      return `SERVER_VARIABLES (--server-variables): item ${i + 1} is not a name=value pair (${JSON.stringify(pair.trim().slice(0, 60))})`
    }
    out[name] = pair.slice(eq + 1).trim()
  }
  return out
}

/** A setting's JSON object (`what` it maps), or a message naming the setting and the other form it takes. */
const jsonObjectOf = (raw: string, setting: string, what: string, otherForm: string): Record<string, unknown> | string => {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    return `${setting} is not valid JSON: give a JSON object of ${what}, or ${otherForm} separated by commas`
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return `${setting} must be a JSON object of ${what}`
  return parsed as Record<string, unknown>
}

/** FIXED_ARGUMENTS: a JSON object, or `name=value` pairs separated by commas; the values, or a message naming the fault. */
export const parseFixedArguments = (raw: string | undefined): Record<string, unknown> | string => {
  const text = (raw ?? "").trim()
  if (text.startsWith("{")) return jsonObjectOf(text, "FIXED_ARGUMENTS (--fixed-arguments)", "argument names to values", "name=value pairs")
  const pairs = parseServerVariables(text)
  return typeof pairs === "string" ? pairs.replace("SERVER_VARIABLES (--server-variables)", "FIXED_ARGUMENTS (--fixed-arguments)") : pairs
}

export type AuthType = "none" | "basic" | "bearer" | "api_key" | "oauth2" | "cognito" | "sigv4"

/** The standard OTEL_TRACES_SAMPLER values. */
export const TRACES_SAMPLERS = [
  "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio", "always_on", "always_off", "traceidratio"
] as const
export type TracesSampler = typeof TRACES_SAMPLERS[number]

export interface Settings {
  readonly spec: string
  readonly baseUrl: Option.Option<string>
  /** Values for the variables of the spec's server URLs (SERVER_VARIABLES), over their defaults. */
  readonly serverVariables: Readonly<Record<string, string>>
  /** Argument values sent with every operation that has such an argument (FIXED_ARGUMENTS); not the model's to set. */
  readonly fixedArguments: Readonly<Record<string, unknown>>
  readonly name: Option.Option<string>
  readonly filters: {
    readonly includeTags: ReadonlyArray<string>
    readonly excludeTags: ReadonlyArray<string>
    readonly includeOperations: ReadonlyArray<string>
    readonly excludeOperations: ReadonlyArray<string>
    /** Path templates (`/pets/*`, `/repos/**`) whose operations are kept / dropped. */
    readonly includePaths: ReadonlyArray<string>
    readonly excludePaths: ReadonlyArray<string>
    /** Only operations that read (GET, HEAD, OPTIONS) become tools. */
    readonly readOnly: boolean
    /** Operations the spec marks `deprecated: true` are left out. */
    readonly excludeDeprecated: boolean
  }
  readonly toolNameMaxLength: number
  readonly descriptionMaxLength: number
  readonly toolMode: "all" | "discover" | "auto"
  readonly toolBudgetTokens: number
  readonly pinOperations: ReadonlyArray<string>
  readonly prompts: boolean
  readonly resources: boolean
  readonly confirmDestructive: boolean
  /** Reload the spec when it changes (--watch). */
  readonly watch: boolean
  /** How often a spec from a URL is fetched again under --watch, in seconds. */
  readonly watchIntervalSeconds: number
  /** Report format of the `check` command. */
  readonly checkFormat: "text" | "json"
  readonly maxResponseBytes: number
  /** Every tool takes `_select`, a JMESPath expression applied to its JSON answer (RESPONSE_SELECT). */
  readonly responseSelect: boolean
  /** Where local files named by `file:` arguments may be read from (UPLOAD_DIRS), and how big they may be. */
  readonly uploads: { readonly dirs: ReadonlyArray<string>; readonly maxBytes: number }
  /** Where binary answers are saved (DOWNLOAD_DIR), and the largest saved. */
  readonly download: { readonly dir: Option.Option<string>; readonly maxBytes: number }
  /** Where built tool catalogs are kept between starts: a directory, "auto" (the user's cache directory) or "off". */
  readonly catalogCache: string
  readonly transport: "stdio" | "http"
  readonly host: string
  readonly port: number
  readonly stateless: boolean
  readonly shutdownGraceMs: number
  readonly auth: {
    readonly type: AuthType
    readonly username: Option.Option<string>
    readonly password: Option.Option<Redacted.Redacted>
    readonly token: Option.Option<Redacted.Redacted>
    readonly apiKey: Option.Option<Redacted.Redacted>
    /** Unset: where the operation's apiKey scheme puts a key, else the header `api_key`. */
    readonly apiKeyName: Option.Option<string>
    readonly apiKeyIn: Option.Option<"header" | "query" | "cookie">
    readonly oauth2: OAuth2Settings
    readonly cognito: CognitoSettings
    readonly sigv4: SigV4Settings
    /** Mutual TLS: the client certificate, its key and the key's passphrase (file paths, PEM or references). */
    readonly clientCert: Option.Option<Redacted.Redacted>
    readonly clientKey: Option.Option<Redacted.Redacted>
    readonly clientKeyPassphrase: Option.Option<Redacted.Redacted>
    /** Spec security scheme credentials: `schemeKey(name)` → reference (`env:`, `file:`, `secretsmanager:` or literal). */
    readonly schemes: Readonly<Record<string, string>>
    /** Headers sent with every request (API_HEADERS): name → value or reference, like scheme credentials. */
    readonly headers: Readonly<Record<string, string>>
  }
  /** Where specs may come from and how large they may be (SSRF guard). */
  readonly specSource: SpecSourceSettings
  /** HTTP transport: Origin allow-list, client authentication, limits. */
  readonly inbound: InboundSettings
  readonly http: {
    readonly timeoutMs: number
    readonly connectTimeoutMs: number
    readonly maxConnections: number
    readonly maxKeepalive: number
    readonly maxQueue: number
    /** HTTP(S)_PROXY and NO_PROXY, for upstream calls and token endpoints (the proxy URLs may hold a password). */
    readonly proxy: {
      readonly http: Option.Option<Redacted.Redacted<string>>
      readonly https: Option.Option<Redacted.Redacted<string>>
      readonly noProxy: string
    }
  }
  /** Overall deadline of one tool call, retries included. */
  readonly callTimeoutMs: number
  readonly retry: { readonly maxAttempts: number; readonly baseDelayMs: number; readonly maxDelayMs: number }
  readonly breaker: {
    readonly failureThreshold: number
    readonly resetTimeoutMs: number
    /** Where breakers open and close: in this process, or also in Redis (REDIS_URL) for every replica. */
    readonly backend: "memory" | "redis"
  }
  readonly cache: {
    readonly backend: "memory" | "redis" | "none"
    readonly ttlSeconds: number
    readonly maxSize: number
    readonly staleIfErrorSeconds: number
    readonly maxEntryBytes: number
    readonly redisUrl: Option.Option<string>
  }
  /** Per-operation overrides from the config file, keyed by operationId or `tag:<name>`. */
  readonly operations: Readonly<Record<string, OperationOverride>>
  readonly logLevel: LogLevel
  /** One log line per tool call: which client called which tool, with what outcome (AUDIT_LOG). */
  readonly auditLog: boolean
  /** Metrics and traces (Telemetry). */
  readonly telemetry: {
    /** Serve /metrics on host:port (the HTTP transport also serves it on its own port). */
    readonly prometheus: { readonly enabled: boolean; readonly host: string; readonly port: number }
    /** OTLP/HTTP traces URL; tracing is off without one. */
    readonly tracesEndpoint: Option.Option<string>
    readonly serviceName: string
    readonly sampler: TracesSampler
    /** Sampling ratio for the `*traceidratio` samplers, 0 to 1. */
    readonly samplerArg: number
  }
  /** More specs to serve beside the main one (ADDITIONAL_SPECS, or --spec given again). */
  readonly additionalSpecs: ReadonlyArray<AdditionalSpec>
  /** ADDITIONAL_SPECS entries that were skipped, with why (logged at start). */
  readonly additionalSpecProblems: ReadonlyArray<string>
}

const list = (key: string) =>
  Config.String(key).pipe(
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x.length > 0)),
    Config.withDefault([] as ReadonlyArray<string>)
  )
const seconds = (key: string, dflt: number) => Config.Number(key).pipe(Config.withDefault(dflt))
const int = (key: string, dflt: number) => Config.Int(key).pipe(Config.withDefault(dflt))
const secret = (key: string) => Config.Redacted(key).pipe(Config.option)
const text = (key: string) => Config.String(key).pipe(Config.option)

const LOG_LEVELS: Record<string, LogLevel> = {
  trace: "Trace", debug: "Debug", info: "Info", warning: "Warn", warn: "Warn", error: "Error", critical: "Fatal",
  fatal: "Fatal", none: "None"
}

const settingsConfig = Config.all({
  spec: Config.String("API_SPEC_URL"),
  baseUrl: text("API_BASE_URL"),
  name: text("API_NAME"),
  filters: Config.all({
    includeTags: list("INCLUDE_TAGS"),
    excludeTags: list("EXCLUDE_TAGS"),
    includeOperations: list("INCLUDE_OPERATIONS"),
    excludeOperations: list("EXCLUDE_OPERATIONS"),
    includePaths: list("INCLUDE_PATHS"),
    excludePaths: list("EXCLUDE_PATHS"),
    readOnly: Config.Boolean("READ_ONLY").pipe(Config.withDefault(false)),
    excludeDeprecated: Config.Boolean("EXCLUDE_DEPRECATED").pipe(Config.withDefault(false))
  }),
  toolNameMaxLength: int("TOOL_NAME_MAX_LENGTH", 64),
  descriptionMaxLength: int("TOOL_DESCRIPTION_MAX_LENGTH", 1024),
  toolMode: Config.Literals(["all", "discover", "auto"], "TOOL_MODE").pipe(Config.withDefault("auto" as const)),
  toolBudgetTokens: int("TOOL_BUDGET_TOKENS", 20_000),
  pinOperations: list("PIN_OPERATIONS"),
  prompts: Config.Boolean("ENABLE_OPERATION_PROMPTS").pipe(Config.withDefault(true)),
  resources: Config.Boolean("ENABLE_RESOURCES").pipe(Config.withDefault(false)),
  confirmDestructive: Config.Boolean("CONFIRM_DESTRUCTIVE").pipe(Config.withDefault(false)),
  watch: Config.Boolean("SPEC_WATCH").pipe(Config.withDefault(false)),
  watchIntervalSeconds: int("SPEC_WATCH_INTERVAL", 60),
  checkFormat: Config.Literals(["text", "json"], "CHECK_FORMAT").pipe(Config.withDefault("text" as const)),
  maxResponseBytes: int("MAX_RESPONSE_BYTES", 1_048_576),
  responseSelect: Config.Boolean("RESPONSE_SELECT").pipe(Config.withDefault(false)),
  uploads: Config.all({ dirs: list("UPLOAD_DIRS"), maxBytes: int("UPLOAD_MAX_BYTES", 52_428_800) }),
  download: Config.all({ dir: Config.String("DOWNLOAD_DIR").pipe(Config.option), maxBytes: int("DOWNLOAD_MAX_BYTES", 104_857_600) }),
  catalogCache: Config.String("CATALOG_CACHE_DIR").pipe(Config.withDefault("auto")),
  transport: Config.Literals(["stdio", "http"], "SERVER_TRANSPORT").pipe(Config.withDefault("stdio" as const)),
  host: Config.String("SERVER_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: int("SERVER_PORT", 8000),
  stateless: Config.Boolean("STATELESS").pipe(Config.withDefault(false)),
  shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 10_000),
  auth: Config.all({
    type: Config.Literals(["none", "basic", "bearer", "api_key", "oauth2", "cognito", "sigv4"], "AUTH_TYPE").pipe(
      Config.withDefault("none" as const)
    ),
    username: text("AUTH_USERNAME"),
    password: secret("AUTH_PASSWORD"),
    token: secret("AUTH_TOKEN"),
    apiKey: secret("AUTH_API_KEY"),
    apiKeyName: text("AUTH_API_KEY_NAME"),
    apiKeyIn: Config.Literals(["header", "query", "cookie"], "AUTH_API_KEY_IN").pipe(Config.option),
    oauth2: oauth2Config,
    cognito: cognitoConfig,
    sigv4: sigv4Config,
    clientCert: secret("AUTH_CLIENT_CERT"),
    clientKey: secret("AUTH_CLIENT_KEY"),
    clientKeyPassphrase: secret("AUTH_CLIENT_KEY_PASSPHRASE")
  }),
  specSource: specSourceConfig,
  inbound: inboundConfig,
  http: Config.all({
    timeoutMs: seconds("HTTP_TIMEOUT", 30),
    connectTimeoutMs: seconds("HTTP_CONNECT_TIMEOUT", 5),
    maxConnections: int("HTTP_MAX_CONNECTIONS", 100),
    maxKeepalive: int("HTTP_MAX_KEEPALIVE", 20),
    maxQueue: int("HTTP_MAX_QUEUE", 100),
    proxy: Config.all({
      http: secret("HTTP_PROXY"),
      https: secret("HTTPS_PROXY"),
      noProxy: Config.String("NO_PROXY").pipe(Config.withDefault(""))
    })
  }),
  callTimeout: seconds("CALL_TIMEOUT", 60),
  retry: Config.all({
    maxAttempts: int("RETRY_MAX_ATTEMPTS", 3),
    baseDelayMs: int("RETRY_BASE_DELAY_MS", 200),
    maxDelayMs: int("RETRY_MAX_DELAY_MS", 10_000)
  }),
  cache: Config.all({
    backend: Config.Literals(["memory", "redis", "none"], "CACHE_BACKEND").pipe(Config.withDefault("memory" as const)),
    ttlSeconds: Config.Number("CACHE_TTL").pipe(Config.withDefault(300)),
    maxSize: int("CACHE_MAXSIZE", 1000),
    staleIfErrorSeconds: Config.Number("CACHE_STALE_IF_ERROR").pipe(Config.withDefault(300)),
    maxEntryBytes: int("CACHE_MAX_ENTRY_BYTES", 1_048_576),
    redisUrl: text("REDIS_URL")
  }),
  breaker: Config.all({
    failureThreshold: int("CIRCUIT_BREAKER_FAILURE_THRESHOLD", 5),
    resetTimeoutMs: int("CIRCUIT_BREAKER_RESET_TIMEOUT_MS", 30_000),
    backend: Config.Literals(["memory", "redis"], "CIRCUIT_BREAKER_BACKEND").pipe(Config.withDefault("memory" as const))
  }),
  logLevel: Config.String("LOG_LEVEL").pipe(Config.withDefault("info")),
  auditLog: Config.Boolean("AUDIT_LOG").pipe(Config.withDefault(false)),
  telemetry: Config.all({
    prometheus: Config.all({
      enabled: Config.Boolean("ENABLE_PROMETHEUS").pipe(Config.withDefault(false)),
      host: Config.String("PROMETHEUS_HOST").pipe(Config.withDefault("127.0.0.1")),
      port: int("PROMETHEUS_PORT", 9090)
    }),
    endpoint: text("OTEL_EXPORTER_OTLP_ENDPOINT"),
    tracesEndpoint: text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    serviceName: Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("openapi-mcp-server")),
    sampler: Config.Literals(TRACES_SAMPLERS, "OTEL_TRACES_SAMPLER").pipe(Config.withDefault("parentbased_always_on" as const)),
    samplerArg: Config.Number("OTEL_TRACES_SAMPLER_ARG").pipe(Config.withDefault(1))
  })
})

const isHttpUrl = (u: Option.Option<string>) => {
  if (Option.isNone(u)) return true
  try {
    return /^https?:$/.test(new URL(u.value).protocol)
  } catch {
    return false
  }
}

/** The OTLP traces URL: the signal-specific endpoint as given, else `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`. */
const tracesUrl = (t: { readonly endpoint: Option.Option<string>; readonly tracesEndpoint: Option.Option<string> }) =>
  Option.isSome(t.tracesEndpoint) ? t.tracesEndpoint : Option.map(t.endpoint, (base) => `${base.replace(/\/+$/, "")}/v1/traces`)

const isProxyUrl = (value: Option.Option<Redacted.Redacted<string>>): boolean =>
  Option.isNone(value) || (URL.canParse(Redacted.value(value.value)) && /^https?:$/.test(new URL(Redacted.value(value.value)).protocol))

const PATH_PATTERN = "a comma list of path templates starting with '/', such as /pets/* (one segment) or /repos/** (any depth)"

/** Range checks the types alone cannot express: [env key, value, ok, what is allowed]. */
const rangeChecks = (s: Config.Success<typeof settingsConfig>): ReadonlyArray<readonly [string, unknown, boolean, string]> => [
  ["TOOL_NAME_MAX_LENGTH", s.toolNameMaxLength, s.toolNameMaxLength >= 16 && s.toolNameMaxLength <= 128, "a whole number from 16 to 128"],
  ["TOOL_DESCRIPTION_MAX_LENGTH", s.descriptionMaxLength, s.descriptionMaxLength >= 40, "a whole number of at least 40"],
  ["TOOL_BUDGET_TOKENS", s.toolBudgetTokens, s.toolBudgetTokens >= 0, "a whole number of at least 0"],
  ["DOWNLOAD_MAX_BYTES", s.download.maxBytes, s.download.maxBytes >= 1, "a whole number of bytes, at least 1"],
  ["UPLOAD_MAX_BYTES", s.uploads.maxBytes, s.uploads.maxBytes >= 1, "a whole number of bytes, at least 1"],
  ["SPEC_WATCH_INTERVAL", s.watchIntervalSeconds, s.watchIntervalSeconds >= 1, "a whole number of seconds, at least 1"],
  ["MAX_RESPONSE_BYTES", s.maxResponseBytes, s.maxResponseBytes >= 1024, "a whole number of bytes, at least 1024"],
  ["INCLUDE_PATHS", s.filters.includePaths.join(","), s.filters.includePaths.every((p) => p.startsWith("/")), PATH_PATTERN],
  ["EXCLUDE_PATHS", s.filters.excludePaths.join(","), s.filters.excludePaths.every((p) => p.startsWith("/")), PATH_PATTERN],
  ["SHUTDOWN_GRACE_MS", s.shutdownGraceMs, s.shutdownGraceMs >= 0, "a whole number of milliseconds, at least 0"],
  ["SERVER_PORT", s.port, s.port >= 0 && s.port <= 65535, "a port from 0 to 65535"],
  ["HTTP_TIMEOUT", s.http.timeoutMs, s.http.timeoutMs > 0, "a positive number of seconds"],
  ["HTTP_CONNECT_TIMEOUT", s.http.connectTimeoutMs, s.http.connectTimeoutMs > 0, "a positive number of seconds"],
  ["HTTP_MAX_CONNECTIONS", s.http.maxConnections, s.http.maxConnections >= 1, "a whole number of at least 1"],
  ["HTTP_MAX_KEEPALIVE", s.http.maxKeepalive, s.http.maxKeepalive >= 0, "a whole number of at least 0"],
  ["HTTP_MAX_QUEUE", s.http.maxQueue, s.http.maxQueue >= 0, "a whole number of at least 0"],
  ["HTTP_PROXY", undefined, isProxyUrl(s.http.proxy.http), "an http(s) URL such as http://proxy.example.com:3128"],
  ["HTTPS_PROXY", undefined, isProxyUrl(s.http.proxy.https), "an http(s) URL such as http://proxy.example.com:3128"],
  ["CALL_TIMEOUT", s.callTimeout, s.callTimeout > 0, "a positive number of seconds"],
  ["RETRY_MAX_ATTEMPTS", s.retry.maxAttempts, s.retry.maxAttempts >= 1 && s.retry.maxAttempts <= 20, "a whole number from 1 to 20"],
  ["RETRY_BASE_DELAY_MS", s.retry.baseDelayMs, s.retry.baseDelayMs >= 1, "a whole number of milliseconds, at least 1"],
  ["RETRY_MAX_DELAY_MS", s.retry.maxDelayMs, s.retry.maxDelayMs >= s.retry.baseDelayMs, "a whole number of milliseconds, at least RETRY_BASE_DELAY_MS"],
  ["CACHE_TTL", s.cache.ttlSeconds, s.cache.ttlSeconds >= 0, "a number of seconds, at least 0"],
  ["CACHE_MAXSIZE", s.cache.maxSize, s.cache.maxSize >= 1, "a whole number of at least 1"],
  ["CACHE_STALE_IF_ERROR", s.cache.staleIfErrorSeconds, s.cache.staleIfErrorSeconds >= 0, "a number of seconds, at least 0"],
  ["CACHE_MAX_ENTRY_BYTES", s.cache.maxEntryBytes, s.cache.maxEntryBytes >= 1, "a whole number of bytes, at least 1"],
  ["CIRCUIT_BREAKER_FAILURE_THRESHOLD", s.breaker.failureThreshold, s.breaker.failureThreshold >= 0, "a whole number of at least 0 (0 = off)"],
  ["CIRCUIT_BREAKER_RESET_TIMEOUT_MS", s.breaker.resetTimeoutMs, s.breaker.resetTimeoutMs >= 1, "a whole number of milliseconds, at least 1"],
  ["LOG_LEVEL", s.logLevel, LOG_LEVELS[s.logLevel.toLowerCase()] !== undefined, Object.keys(LOG_LEVELS).join(", ")],
  ["PROMETHEUS_PORT", s.telemetry.prometheus.port, s.telemetry.prometheus.port >= 0 && s.telemetry.prometheus.port <= 65535, "a port from 0 to 65535"],
  ["OTEL_EXPORTER_OTLP_ENDPOINT", Option.getOrUndefined(s.telemetry.endpoint), isHttpUrl(s.telemetry.endpoint), "an http(s) URL"],
  ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Option.getOrUndefined(s.telemetry.tracesEndpoint), isHttpUrl(s.telemetry.tracesEndpoint), "an http(s) URL"],
  ["OTEL_TRACES_SAMPLER_ARG", s.telemetry.samplerArg, s.telemetry.samplerArg >= 0 && s.telemetry.samplerArg <= 1, "a ratio from 0 to 1"],
  ...securityChecks(s.specSource, s.inbound)
]


/** Reads the `--config` file: a YAML/JSON mapping whose keys are flag or env names. */
const readConfigFile = (path: string) =>
  Effect.tryPromise({
    try: () => Promise.all([readFile(path, "utf8"), import("./SpecLoader/Yaml.ts")]),
    catch: (e) => new ConfigInvalid({ message: `cannot read config file ${path}: ${(e as Error).message}` })
  }).pipe(Effect.flatMap(([text, yaml]) => {
    let doc: unknown
    try {
      doc = yaml.parseYaml(text, { duplicateKeys: "error", maxDepth: MAX_DEPTH })
    } catch (e) {
      return Effect.fail(new ConfigInvalid({ message: `config file ${path} is not valid YAML/JSON: ${(e as Error).message}` }))
    }
    if (doc === null || doc === undefined) return Effect.succeed({ settings: {}, operations: {}, securitySchemes: undefined })
    if (typeof doc !== "object" || Array.isArray(doc)) {
      return Effect.fail(new ConfigInvalid({ message: `config file ${path} must be a mapping of setting names to values` }))
    }
    const out: Record<string, string> = {}
    let operations: Record<string, OperationOverride> = {}
    let securitySchemes: unknown = undefined
    for (const [key, value] of Object.entries(doc)) {
      if (key === "security_schemes") {
        securitySchemes = value
        continue
      }
      if (key === "operations") {
        const decoded = decodeOperations(value, path)
        if (typeof decoded === "string") return Effect.fail(new ConfigInvalid({ message: decoded }))
        operations = decoded
        continue
      }
      const canonical = canonicalKey(key)
      if (canonical === undefined) {
        return Effect.fail(new ConfigInvalid({ message: `config file ${path}: unknown setting '${key}' (use a flag name such as 'base-url' or an env name such as 'API_BASE_URL'; see --help)` }))
      }
      out[canonical] = Array.isArray(value) ? value.map(String).join(",")
        : typeof value === "object" && value !== null ? JSON.stringify(value) // headers: a mapping
        : String(value)
    }
    return Effect.succeed({ settings: out, operations, securitySchemes })
  }))

const decodeOverride = Schema.decodeUnknownResult(OperationOverride)

/** Validates the `operations:` section; returns the overrides or a message naming the entry and the rule. */
const decodeOperations = (value: unknown, path: string): Record<string, OperationOverride> | string => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `config file ${path}: 'operations' must map operationIds (or 'tag:<name>') to settings`
  }
  const out: Record<string, OperationOverride> = {}
  for (const [key, entry] of Object.entries(value)) {
    const result = decodeOverride(entry, { onExcessProperty: "error" })
    if (result._tag === "Failure") {
      return `config file ${path}: operations.${key}: ${String(result.failure.message).split("\n").join("; ")} ` +
        `(allowed: timeout (seconds), max_attempts (1-20), idempotency_key_header, circuit_breaker (true/false), cache (true/false), cache_ttl (seconds), ` +
        `tool_name (letters, digits, _ and -, up to 64), description, arguments (a mapping of argument names to values))`
    }
    if (key.startsWith("tag:") && (result.success.tool_name !== undefined || result.success.description !== undefined)) {
      return `config file ${path}: operations.${key}: tool_name and description belong to one operation, not to a tag's operations`
    }
    out[key] = result.success
  }
  return out
}

/** Turns a ConfigError into a message naming the flag, env var, value and the rule. */
const describeConfigError = (error: Config.ConfigError, merged: Record<string, string>): string => {
  const raw = String(error.message)
  const key = /\["([A-Z0-9_]+)"\]/.exec(raw)?.[1] ?? /path: \[?"?([A-Z0-9_]+)/.exec(raw)?.[1]
  const spec = key ? optionForKey(key) : undefined
  const rule = raw.split("\n")[0]!.replace(/^.*?SchemaError\(|^.*?SourceError\(|\)+$/g, "").trim()
  if (key === "API_SPEC_URL" && merged["API_SPEC_URL"] === undefined) {
    return "no spec given: pass --spec <file|url> (or set API_SPEC_PATH / API_SPEC_URL)"
  }
  if (!spec || !key) return `invalid configuration: ${raw}`
  const value = merged[key]
  const shown = spec.secret ? "<redacted>" : JSON.stringify(value)
  const allowed = spec.values ? `; allowed: ${spec.values.join(", ")}` : ""
  return `invalid value ${shown} for --${spec.flag} (${spec.env.join(" / ")}): ${rule}${allowed}`
}

export class AppConfig extends Context.Service<AppConfig, Settings>()("openapi-mcp/AppConfig") {
  /** Builds the settings from flags (keyed by env name), the process environment and the optional config file. */
  static readonly load = (flags: Readonly<Record<string, string>>, env: Readonly<Record<string, string | undefined>>) =>
    Effect.gen(function*() {
      const fromEnv: Record<string, string> = {}
      for (const spec of OPTIONS) {
        const set = spec.env.find((name) => env[name] !== undefined && env[name] !== "")
        if (set !== undefined) fromEnv[spec.env[0]!] = env[set]!
      }
      const configPath = flags["OPENAPI_MCP_CONFIG"] ?? fromEnv["OPENAPI_MCP_CONFIG"]
      const file = configPath === undefined ? { settings: {}, operations: {}, securitySchemes: undefined } : yield* readConfigFile(configPath)
      const merged: Record<string, string> = { ...file.settings, ...fromEnv, ...flags }
      const settings = yield* settingsConfig.parse(ConfigProvider.fromEnv({ env: merged })).pipe(
        Effect.mapError((e) => new ConfigInvalid({ message: describeConfigError(e, merged) }))
      )
      for (const [key, , ok, allowed] of rangeChecks(settings)) {
        if (!ok) {
          const spec = optionForKey(key)!
          return yield* new ConfigInvalid({
            message: `invalid value ${spec.secret ? "<redacted>" : JSON.stringify(merged[key])} for --${spec.flag} (${key}): expected ${allowed}`
          })
        }
      }
      const schemes = schemeReferences(file.securitySchemes, env, configPath ?? "")
      if (typeof schemes === "string") return yield* new ConfigInvalid({ message: schemes })
      const headers = parseHeaders(merged["API_HEADERS"])
      if (typeof headers === "string") return yield* new ConfigInvalid({ message: headers })
      const serverVariables = parseServerVariables(merged["SERVER_VARIABLES"])
      if (typeof serverVariables === "string") return yield* new ConfigInvalid({ message: serverVariables })
      const fixedArguments = parseFixedArguments(merged["FIXED_ARGUMENTS"])
      if (typeof fixedArguments === "string") return yield* new ConfigInvalid({ message: fixedArguments })
      const more = yield* additionalSpecs(merged["ADDITIONAL_SPECS"])
      return {
        ...settings,
        auth: { ...settings.auth, schemes, headers },
        serverVariables,
        fixedArguments,
        http: {
          ...settings.http,
          timeoutMs: Math.round(settings.http.timeoutMs * 1000),
          connectTimeoutMs: Math.round(settings.http.connectTimeoutMs * 1000)
        },
        callTimeoutMs: Math.round(settings.callTimeout * 1000),
        operations: file.operations,
        logLevel: LOG_LEVELS[settings.logLevel.toLowerCase()]!,
        telemetry: {
          prometheus: settings.telemetry.prometheus,
          tracesEndpoint: tracesUrl(settings.telemetry),
          serviceName: settings.telemetry.serviceName,
          sampler: settings.telemetry.sampler,
          samplerArg: settings.telemetry.samplerArg
        },
        additionalSpecs: more.specs,
        additionalSpecProblems: more.problems
      } satisfies Settings
    })

  static readonly layerFrom = (flags: Readonly<Record<string, string>>, env: Readonly<Record<string, string | undefined>>) =>
    Layer.effect(AppConfig, AppConfig.load(flags, env))

  /** Settings for tests: the defaults, without the on-disk catalog cache unless asked for, then `settings`. */
  static readonly layerTest = (settings: Partial<Settings> & Pick<Settings, "spec">): Layer.Layer<AppConfig> =>
    Layer.succeed(AppConfig, { ...defaults, catalogCache: "off", ...settings })
}

/** Defaults as one value, for tests and embedding. */
export const defaults: Settings = {
  spec: "",
  baseUrl: Option.none(),
  serverVariables: {},
  fixedArguments: {},
  name: Option.none(),
  filters: { includeTags: [], excludeTags: [], includeOperations: [], excludeOperations: [], includePaths: [], excludePaths: [], readOnly: false, excludeDeprecated: false },
  toolNameMaxLength: 64,
  descriptionMaxLength: 1024,
  toolMode: "auto",
  toolBudgetTokens: 20_000,
  pinOperations: [],
  prompts: true,
  resources: false,
  confirmDestructive: false,
  watch: false,
  watchIntervalSeconds: 60,
  checkFormat: "text",
  maxResponseBytes: 1_048_576,
  responseSelect: false,
  uploads: { dirs: [], maxBytes: 52_428_800 },
  download: { dir: Option.none(), maxBytes: 104_857_600 },
  catalogCache: "auto",
  transport: "stdio",
  host: "127.0.0.1",
  port: 8000,
  stateless: false,
  shutdownGraceMs: 10_000,
  auth: {
    type: "none", username: Option.none(), password: Option.none(), token: Option.none(), apiKey: Option.none(),
    apiKeyName: Option.none(), apiKeyIn: Option.none(), oauth2: oauth2Defaults, cognito: cognitoDefaults, sigv4: sigv4Defaults,
    clientCert: Option.none(), clientKey: Option.none(), clientKeyPassphrase: Option.none(),
    schemes: {},
    headers: {}
  },
  specSource: specSourceDefaults,
  inbound: inboundDefaults,
  http: {
    timeoutMs: 30_000, connectTimeoutMs: 5_000, maxConnections: 100, maxKeepalive: 20, maxQueue: 100,
    proxy: { http: Option.none(), https: Option.none(), noProxy: "" }
  },
  callTimeoutMs: 60_000,
  retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 },
  breaker: { failureThreshold: 5, resetTimeoutMs: 30_000, backend: "memory" },
  cache: { backend: "memory", ttlSeconds: 300, maxSize: 1000, staleIfErrorSeconds: 300, maxEntryBytes: 1_048_576, redisUrl: Option.none() },
  operations: {},
  logLevel: "Info",
  auditLog: false,
  telemetry: {
    prometheus: { enabled: false, host: "127.0.0.1", port: 9090 },
    tracesEndpoint: Option.none(),
    serviceName: "openapi-mcp-server",
    sampler: "parentbased_always_on",
    samplerArg: 1
  },
  additionalSpecs: [],
  additionalSpecProblems: []
}
export { Redacted }
