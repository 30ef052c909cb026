/**
 * The command-line contract: every flag, its aliases, the environment variable(s) it maps to and its default.
 * One table drives `--help`, argv parsing and the README, so they cannot drift apart.
 * Precedence (lowest first): defaults < config file < environment < flags.
 */
import { DEFAULT_SPEC_MAX_BYTES, SPEC_OPTION } from "./SpecOption.ts"

export interface OptionSpec {
  /** Long flag without the leading dashes. */
  readonly flag: string
  readonly aliases?: ReadonlyArray<string>
  /** Environment variables, first one canonical; all are read (the first set one wins). */
  readonly env: ReadonlyArray<string>
  readonly kind: "string" | "boolean"
  readonly defaultText?: string
  readonly values?: ReadonlyArray<string>
  readonly secret?: boolean
  readonly group: string
  readonly help: string
}

const o = (spec: OptionSpec): OptionSpec => spec

export const OPTIONS: ReadonlyArray<OptionSpec> = [
  // Spec and upstream
  o({ ...SPEC_OPTION, kind: "string", group: "Spec", help: "OpenAPI/Swagger document: file path or http(s) URL, JSON or YAML (required; give it again to serve more specs)" }),
  o({ flag: "base-url", aliases: ["api-url"], env: ["API_BASE_URL"], kind: "string", defaultText: "the spec's first servers URL", group: "Spec", help: "Base URL of the upstream API for every call" }),
  o({ flag: "server-variables", env: ["SERVER_VARIABLES"], kind: "string", group: "Spec", help: "Values for the spec's server URL variables, name=value pairs separated by commas (https://{subdomain}.example.com: subdomain=acme)" }),
  o({ flag: "fixed-arguments", env: ["FIXED_ARGUMENTS"], kind: "string", group: "Spec", help: "Argument values the server always sends, for every operation that has the argument (name=value pairs separated by commas, or a JSON object): the argument leaves the tool's schema, so the model can neither see nor change it (owner=acme keeps an agent in one organisation)" }),
  o({ flag: "name", aliases: ["api-name"], env: ["API_NAME"], kind: "string", defaultText: "spec info.title", group: "Spec", help: "Server name announced to MCP clients" }),
  o({ flag: "include-tags", env: ["INCLUDE_TAGS"], kind: "string", group: "Spec", help: "Comma list: keep only operations having one of these tags" }),
  o({ flag: "exclude-tags", env: ["EXCLUDE_TAGS"], kind: "string", group: "Spec", help: "Comma list: drop operations having one of these tags (wins over include)" }),
  o({ flag: "include-operations", env: ["INCLUDE_OPERATIONS"], kind: "string", group: "Spec", help: "Comma list of operationIds or tool names to keep" }),
  o({ flag: "exclude-operations", env: ["EXCLUDE_OPERATIONS"], kind: "string", group: "Spec", help: "Comma list of operationIds or tool names to drop (wins over include)" }),
  o({ flag: "include-paths", env: ["INCLUDE_PATHS"], kind: "string", group: "Spec", help: "Comma list of path templates whose operations to keep: * is one path segment, /** any number of them (/repos/**, /pets/*)" }),
  o({ flag: "exclude-paths", env: ["EXCLUDE_PATHS"], kind: "string", group: "Spec", help: "Comma list of path templates whose operations to drop (wins over include)" }),
  o({ flag: "exclude-deprecated", env: ["EXCLUDE_DEPRECATED"], kind: "boolean", defaultText: "false", group: "Spec", help: "Leave out the operations the spec marks deprecated" }),
  o({ flag: "read-only", env: ["READ_ONLY"], kind: "boolean", defaultText: "false", group: "Spec", help: "Only operations that read (GET, HEAD, OPTIONS) become tools: nothing the agent calls can change the API's data" }),
  o({ flag: "tool-name-max-length", env: ["TOOL_NAME_MAX_LENGTH"], kind: "string", defaultText: "64", group: "Spec", help: "Longest tool name; longer names are cut and end in a stable hash" }),
  o({ flag: "description-max-length", env: ["TOOL_DESCRIPTION_MAX_LENGTH"], kind: "string", defaultText: "1024", group: "Spec", help: "Longest tool description, in characters" }),
  o({ flag: "tool-mode", env: ["TOOL_MODE"], kind: "string", defaultText: "auto", values: ["all", "discover", "auto"], group: "Spec", help: "List every operation as a tool, or search/describe/call meta-tools (auto: meta-tools when the full list exceeds the token budget)" }),
  o({ flag: "tool-budget-tokens", env: ["TOOL_BUDGET_TOKENS"], kind: "string", defaultText: "20000", group: "Spec", help: "Largest tools/list (about 4 characters per token) listed in full in auto mode" }),
  o({ flag: "prompts", env: ["ENABLE_OPERATION_PROMPTS"], kind: "boolean", defaultText: "true", group: "Spec", help: "Offer an MCP prompt per operation and per tag (ENABLE_OPERATION_PROMPTS=false turns them off)" }),
  o({ flag: "resources", env: ["ENABLE_RESOURCES"], kind: "boolean", defaultText: "false", group: "Spec", help: "Expose GET operations without required arguments as MCP resources, and those needing only path parameters as resource templates" }),
  o({ flag: "confirm-destructive", env: ["CONFIRM_DESTRUCTIVE"], kind: "boolean", defaultText: "false", group: "Spec", help: "Ask the user (MCP elicitation) before any DELETE is sent" }),
  o({ flag: "watch", env: ["SPEC_WATCH"], kind: "boolean", defaultText: "false", group: "Spec", help: "Reload the spec when it changes (its files, or a spec URL's documents, fetched every SPEC_WATCH_INTERVAL): the tools are rebuilt, and clients get tools/list_changed; a spec that fails to load keeps the previous tools" }),
  o({ flag: "watch-interval", env: ["SPEC_WATCH_INTERVAL"], kind: "string", defaultText: "60", group: "Spec", help: "With --watch, how often (seconds) a spec from a URL (and the documents it refers to) is fetched again to see whether it changed" }),
  o({ flag: "pin-operations", env: ["PIN_OPERATIONS"], kind: "string", group: "Spec", help: "Comma list of operationIds or tool names always listed as tools in discovery mode" }),
  o({ flag: "response-select", env: ["RESPONSE_SELECT"], kind: "boolean", defaultText: "false", group: "Spec", help: "Give every tool an optional _select argument: a JMESPath expression applied to the JSON answer, so only what it selects is returned" }),
  o({ flag: "upload-dirs", env: ["UPLOAD_DIRS"], kind: "string", group: "Spec", help: "Comma list of directories whose files a file argument may name as file:///path (read and sent by the server); default: none, file: values are refused" }),
  o({ flag: "upload-max-bytes", env: ["UPLOAD_MAX_BYTES"], kind: "string", defaultText: "52428800", group: "Spec", help: "Largest local file sent for a file: argument" }),
  o({ flag: "download-dir", env: ["DOWNLOAD_DIR"], kind: "string", group: "Spec", help: "Save binary answers (PDFs, archives, exports; images and audio too big to return) as files in this directory, created if need be, and return where (a resource_link)" }),
  o({ flag: "download-max-bytes", env: ["DOWNLOAD_MAX_BYTES"], kind: "string", defaultText: "104857600", group: "Spec", help: "Largest binary answer saved to DOWNLOAD_DIR" }),
  o({ flag: "max-response-bytes", env: ["MAX_RESPONSE_BYTES"], kind: "string", defaultText: "1048576", group: "Spec", help: "Largest upstream body returned to the model; the rest is cut with a note, and a body is not downloaded past this (or CACHE_MAX_ENTRY_BYTES, if larger)" }),
  o({ flag: "catalog-cache-dir", env: ["CATALOG_CACHE_DIR"], kind: "string", defaultText: "auto", group: "Spec", help: "Where the tool catalog of a single-file spec is kept between starts, keyed by the spec's content and these settings, so a restart skips parsing and mapping (auto: $XDG_CACHE_HOME or ~/.cache, under openapi-mcp-server; off: never)" }),
  o({ flag: "config", env: ["OPENAPI_MCP_CONFIG"], kind: "string", group: "Spec", help: "YAML or JSON file with any of these settings (keys: flag or env names)" }),
  o({ flag: "allow-insecure-http", env: ["ALLOW_INSECURE_HTTP"], kind: "boolean", defaultText: "false", group: "Spec", help: "Allow http:// spec URLs (default: https only)" }),
  o({ flag: "allow-private-networks", env: ["ALLOW_PRIVATE_NETWORKS"], kind: "boolean", defaultText: "false", group: "Spec", help: "Allow spec URLs that resolve to loopback, private, link-local or other non-public addresses" }),
  o({ flag: "allowed-spec-dirs", env: ["ALLOWED_SPEC_DIRS"], kind: "string", group: "Spec", help: "Comma list of directories spec files (and their $ref files) must lie in (default: anywhere)" }),
  o({ flag: "spec-max-bytes", env: ["SPEC_MAX_BYTES"], kind: "string", defaultText: String(DEFAULT_SPEC_MAX_BYTES), group: "Spec", help: "Largest spec document (each file or URL) read, in bytes" }),
  // Transport
  o({ flag: "transport", env: ["SERVER_TRANSPORT"], kind: "string", defaultText: "stdio", values: ["stdio", "http"], group: "Transport", help: "stdio, or Streamable HTTP on /mcp" }),
  o({ flag: "host", env: ["SERVER_HOST"], kind: "string", defaultText: "127.0.0.1", group: "Transport", help: "HTTP bind address" }),
  o({ flag: "port", env: ["SERVER_PORT"], kind: "string", defaultText: "8000", group: "Transport", help: "HTTP port (0 picks a free one)" }),
  o({ flag: "stateless", env: ["STATELESS"], kind: "boolean", defaultText: "false", group: "Transport", help: "HTTP without sessions or the GET event stream: any replica can answer any request" }),
  o({ flag: "shutdown-grace-ms", env: ["SHUTDOWN_GRACE_MS"], kind: "string", defaultText: "10000", group: "Transport", help: "On SIGTERM: how long in-flight calls may finish while /readyz fails and new sessions are refused" }),
  o({ flag: "mcp-allowed-origins", env: ["MCP_ALLOWED_ORIGINS"], kind: "string", group: "Transport", help: "Comma list of browser origins allowed besides http(s)://localhost and 127.0.0.1 ones (* allows all); others get 403" }),
  o({ flag: "mcp-auth-token", env: ["MCP_AUTH_TOKEN"], kind: "string", secret: true, group: "Transport", help: "Bearer token HTTP clients must send (Authorization: Bearer <token>)" }),
  o({ flag: "mcp-oauth-jwks-url", env: ["MCP_OAUTH_JWKS_URL"], kind: "string", group: "Transport", help: "OAuth 2.1 resource-server mode: JWKS URL of the authorization server; clients must send a JWT it signed" }),
  o({ flag: "mcp-oauth-issuer", env: ["MCP_OAUTH_ISSUER"], kind: "string", group: "Transport", help: "OAuth mode: required token issuer (iss), announced as the authorization server" }),
  o({ flag: "mcp-oauth-audience", env: ["MCP_OAUTH_AUDIENCE"], kind: "string", group: "Transport", help: "OAuth mode: comma list of accepted audiences (aud): this server's resource URI" }),
  o({ flag: "mcp-oauth-scopes", env: ["MCP_OAUTH_SCOPES"], kind: "string", group: "Transport", help: "OAuth mode: comma list of scopes every token must carry" }),
  o({ flag: "mcp-oauth-resource", env: ["MCP_OAUTH_RESOURCE"], kind: "string", defaultText: "the first audience that is a URL", group: "Transport", help: "OAuth mode: resource URI announced at /.well-known/oauth-protected-resource" }),
  o({ flag: "mcp-max-body-bytes", env: ["MCP_MAX_BODY_BYTES"], kind: "string", defaultText: "4194304", group: "Transport", help: "Largest request body; larger ones get 413" }),
  o({ flag: "mcp-max-sessions", env: ["MCP_MAX_SESSIONS"], kind: "string", defaultText: "1000", group: "Transport", help: "Open sessions in all; more get 503" }),
  o({ flag: "mcp-max-sessions-per-client", env: ["MCP_MAX_SESSIONS_PER_CLIENT"], kind: "string", defaultText: "100", group: "Transport", help: "Open sessions per client (token subject, else address); more get 429" }),
  o({ flag: "mcp-session-idle-seconds", env: ["MCP_SESSION_IDLE_SECONDS"], kind: "string", defaultText: "1800", group: "Transport", help: "A session with no request for this long is closed; its id then gets 404" }),
  o({ flag: "mcp-stream-resume-seconds", env: ["MCP_STREAM_RESUME_SECONDS"], kind: "string", defaultText: "30", group: "Transport", help: "How long the calls of an event stream that broke off keep running for the client to reconnect (Last-Event-ID) and get what it missed; 0 cancels them at once" }),
  o({ flag: "mcp-max-calls-per-minute", env: ["MCP_MAX_CALLS_PER_MINUTE"], kind: "string", defaultText: "0 (no limit)", group: "Transport", help: "Tool calls each client may make per minute (token subject, else address; over stdio, the one client); more are tool errors (rate_limited) and never reach the API: a runaway agent cannot spend the API's quota" }),
  o({ flag: "mcp-forward-headers", env: ["MCP_FORWARD_HEADERS"], kind: "string", group: "Transport", help: "Headers of a client's HTTP request sent on to the API with its tool calls (comma list; <client header>=<API header> renames one); never Authorization while clients authenticate to this server" }),
  // Outbound auth
  o({ flag: "auth-type", env: ["AUTH_TYPE"], kind: "string", defaultText: "none", values: ["none", "basic", "bearer", "api_key", "oauth2", "cognito", "sigv4"], group: "Auth", help: "How calls authenticate to the upstream API" }),
  o({ flag: "auth-username", env: ["AUTH_USERNAME"], kind: "string", group: "Auth", help: "basic: user name" }),
  o({ flag: "auth-password", env: ["AUTH_PASSWORD"], kind: "string", secret: true, group: "Auth", help: "basic: password" }),
  o({ flag: "auth-token", env: ["AUTH_TOKEN"], kind: "string", secret: true, group: "Auth", help: "bearer: token sent as 'Authorization: Bearer <token>'" }),
  o({ flag: "headers", env: ["API_HEADERS"], kind: "string", secret: true, group: "Auth", help: "Headers sent with every upstream request: a JSON object {\"Name\": \"value\"} or Name: value pairs separated by commas; values may be env:/file:/secretsmanager: references" }),
  o({ flag: "auth-api-key", env: ["AUTH_API_KEY"], kind: "string", secret: true, group: "Auth", help: "api_key: the key" }),
  o({ flag: "auth-api-key-name", env: ["AUTH_API_KEY_NAME"], kind: "string", defaultText: "the operation's apiKey scheme's, else api_key", group: "Auth", help: "api_key: header, query parameter or cookie name" }),
  o({ flag: "auth-api-key-in", env: ["AUTH_API_KEY_IN"], kind: "string", defaultText: "the operation's apiKey scheme's, else header", values: ["header", "query", "cookie"], group: "Auth", help: "api_key: where the key goes" }),
  o({ flag: "auth-cognito-client-id", env: ["AUTH_COGNITO_CLIENT_ID"], kind: "string", group: "Auth", help: "cognito: app client id" }),
  o({ flag: "auth-cognito-client-secret", env: ["AUTH_COGNITO_CLIENT_SECRET"], kind: "string", secret: true, group: "Auth", help: "cognito: app client secret (client-credentials flow)" }),
  o({ flag: "auth-cognito-username", env: ["AUTH_COGNITO_USERNAME"], kind: "string", group: "Auth", help: "cognito: user name (user-password flow)" }),
  o({ flag: "auth-cognito-password", env: ["AUTH_COGNITO_PASSWORD"], kind: "string", secret: true, group: "Auth", help: "cognito: password (user-password flow)" }),
  o({ flag: "auth-cognito-user-pool-id", env: ["AUTH_COGNITO_USER_POOL_ID"], kind: "string", group: "Auth", help: "cognito: user pool id" }),
  o({ flag: "auth-cognito-region", env: ["AUTH_COGNITO_REGION"], kind: "string", defaultText: "us-east-1", group: "Auth", help: "cognito: AWS region" }),
  o({ flag: "auth-cognito-domain", env: ["AUTH_COGNITO_DOMAIN"], kind: "string", group: "Auth", help: "cognito: hosted UI domain prefix" }),
  o({ flag: "auth-cognito-scopes", env: ["AUTH_COGNITO_SCOPES"], kind: "string", group: "Auth", help: "cognito: comma list of scopes" }),
  o({ flag: "auth-cognito-token-url", env: ["AUTH_COGNITO_TOKEN_URL"], kind: "string", defaultText: "https://{domain}.auth.{region}.amazoncognito.com/oauth2/token", group: "Auth", help: "cognito: token endpoint of the client-credentials flow (custom domains, tests)" }),
  o({ flag: "auth-cognito-endpoint", env: ["AUTH_COGNITO_ENDPOINT"], kind: "string", defaultText: "https://cognito-idp.{region}.amazonaws.com/", group: "Auth", help: "cognito: Cognito API endpoint of the user-password flow (VPC endpoints, tests)" }),
  o({ flag: "auth-oauth2-token-url", env: ["AUTH_OAUTH2_TOKEN_URL"], kind: "string", group: "Auth", help: "oauth2: token endpoint (client-credentials grant)" }),
  o({ flag: "auth-oauth2-client-id", env: ["AUTH_OAUTH2_CLIENT_ID"], kind: "string", group: "Auth", help: "oauth2: client id" }),
  o({ flag: "auth-oauth2-client-secret", env: ["AUTH_OAUTH2_CLIENT_SECRET"], kind: "string", secret: true, group: "Auth", help: "oauth2: client secret" }),
  o({ flag: "auth-oauth2-scopes", env: ["AUTH_OAUTH2_SCOPES"], kind: "string", group: "Auth", help: "oauth2: comma or space list of scopes to request" }),
  o({ flag: "auth-oauth2-audience", env: ["AUTH_OAUTH2_AUDIENCE"], kind: "string", group: "Auth", help: "oauth2: audience parameter sent to the token endpoint (Auth0 and similar)" }),
  o({ flag: "auth-oauth2-client-auth", env: ["AUTH_OAUTH2_CLIENT_AUTH"], kind: "string", defaultText: "basic", values: ["basic", "post", "private_key_jwt"], group: "Auth", help: "oauth2: client credentials in an HTTP Basic header or in the form body, or a JWT signed with the client's private key (RFC 7523, no secret)" }),
  o({ flag: "auth-oauth2-client-key", env: ["AUTH_OAUTH2_CLIENT_KEY"], kind: "string", secret: true, group: "Auth", help: "oauth2 private_key_jwt: the client's private key (PEM: RSA, EC or Ed25519), a file path or an env:/file:/secretsmanager: reference" }),
  o({ flag: "auth-oauth2-client-key-id", env: ["AUTH_OAUTH2_CLIENT_KEY_ID"], kind: "string", group: "Auth", help: "oauth2 private_key_jwt: the key's id (kid) as registered with the identity provider" }),
  o({ flag: "auth-oauth2-grant", env: ["AUTH_OAUTH2_GRANT"], kind: "string", defaultText: "client_credentials", values: ["client_credentials", "token_exchange", "on_behalf_of"], group: "Auth", help: "oauth2: token_exchange (RFC 8693) or on_behalf_of (Entra ID) exchange the OAuth token each MCP client sends (MCP_OAUTH_JWKS_URL) for an API token of its user, cached per user" }),
  o({ flag: "auth-oauth2-refresh-token", env: ["AUTH_OAUTH2_REFRESH_TOKEN"], kind: "string", secret: true, group: "Auth", help: "oauth2: a refresh token from the user's consent: access tokens come from the refresh_token grant, on the user's behalf, instead of client credentials (the client secret is then optional); a rotated refresh token replaces it, and is written back to a file: reference" }),
  o({ flag: "auth-sigv4-service", env: ["AUTH_SIGV4_SERVICE"], kind: "string", defaultText: "execute-api", group: "Auth", help: "sigv4: signing service name (execute-api for API Gateway, lambda for function URLs)" }),
  o({ flag: "auth-sigv4-region", env: ["AUTH_SIGV4_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"], kind: "string", group: "Auth", help: "sigv4: signing region (the standard AWS_REGION / AWS_DEFAULT_REGION are read too)" }),
  o({ flag: "auth-client-cert", env: ["AUTH_CLIENT_CERT"], kind: "string", secret: true, group: "Auth", help: "Mutual TLS: the client certificate (PEM; its chain may follow) presented to the API when it asks for one: a file path, or an env:/file:/secretsmanager: reference; with any --auth-type" }),
  o({ flag: "auth-client-key", env: ["AUTH_CLIENT_KEY"], kind: "string", secret: true, defaultText: "the key in AUTH_CLIENT_CERT's file", group: "Auth", help: "Mutual TLS: the certificate's private key (PEM), as AUTH_CLIENT_CERT" }),
  o({ flag: "auth-client-key-passphrase", env: ["AUTH_CLIENT_KEY_PASSPHRASE"], kind: "string", secret: true, group: "Auth", help: "Mutual TLS: the passphrase of an encrypted private key" }),
  // Upstream HTTP client
  o({ flag: "http-timeout", env: ["HTTP_TIMEOUT"], kind: "string", defaultText: "30", group: "Upstream", help: "Seconds one upstream request may take" }),
  o({ flag: "http-connect-timeout", env: ["HTTP_CONNECT_TIMEOUT"], kind: "string", defaultText: "5", group: "Upstream", help: "Seconds to open a connection" }),
  o({ flag: "http-max-connections", env: ["HTTP_MAX_CONNECTIONS"], kind: "string", defaultText: "100", group: "Upstream", help: "Connections per upstream origin" }),
  o({ flag: "http-max-keepalive", env: ["HTTP_MAX_KEEPALIVE"], kind: "string", defaultText: "20", group: "Upstream", help: "Accepted for compatibility; idle pooled connections close after their keep-alive timeout (30 s), not by count" }),
  o({ flag: "https-proxy", env: ["HTTPS_PROXY", "https_proxy"], kind: "string", secret: true, group: "Upstream", help: "Proxy for calls to https APIs and token endpoints: http://[user:password@]host:port (loopback addresses always go direct)" }),
  o({ flag: "http-proxy", env: ["HTTP_PROXY", "http_proxy"], kind: "string", secret: true, group: "Upstream", help: "Proxy for calls to http APIs, and to https ones when HTTPS_PROXY is not set" }),
  o({ flag: "no-proxy", env: ["NO_PROXY", "no_proxy"], kind: "string", group: "Upstream", help: "Hosts reached without the proxy: a comma list of names, .domain suffixes, host:port pairs, or * for all" }),
  o({ flag: "http-max-queue", env: ["HTTP_MAX_QUEUE"], kind: "string", defaultText: "100", group: "Upstream", help: "Calls that may wait for a connection slot per origin; more fail at once" }),
  o({ flag: "call-timeout", env: ["CALL_TIMEOUT"], kind: "string", defaultText: "60", group: "Resilience", help: "Seconds one tool call may take in all, retries and waits included" }),
  o({ flag: "retry-max-attempts", env: ["RETRY_MAX_ATTEMPTS"], kind: "string", defaultText: "3", group: "Resilience", help: "Attempts per call, the first included (1 turns retries off)" }),
  o({ flag: "retry-base-delay-ms", env: ["RETRY_BASE_DELAY_MS"], kind: "string", defaultText: "200", group: "Resilience", help: "Delay before the first retry; doubles each time, jittered ±20%" }),
  o({ flag: "retry-max-delay-ms", env: ["RETRY_MAX_DELAY_MS"], kind: "string", defaultText: "10000", group: "Resilience", help: "Longest delay between two attempts" }),
  o({ flag: "circuit-breaker-failure-threshold", env: ["CIRCUIT_BREAKER_FAILURE_THRESHOLD"], kind: "string", defaultText: "5", group: "Resilience", help: "Consecutive failed attempts that open an origin's breaker (0 turns it off)" }),
  o({ flag: "circuit-breaker-reset-timeout-ms", env: ["CIRCUIT_BREAKER_RESET_TIMEOUT_MS"], kind: "string", defaultText: "30000", group: "Resilience", help: "How long an open breaker fails calls fast before one probe call is let through" }),
  o({ flag: "circuit-breaker-backend", env: ["CIRCUIT_BREAKER_BACKEND"], kind: "string", defaultText: "memory", values: ["memory", "redis"], group: "Resilience", help: "redis: a breaker that opens (or closes after its probe) does so in every replica sharing REDIS_URL, not only in this process; an operation paused by a used-up rate limit is paused in all of them" }),
  o({ flag: "cache-backend", env: ["CACHE_BACKEND"], kind: "string", defaultText: "memory", values: ["memory", "redis", "none"], group: "Cache", help: "Where GET responses are cached (none turns caching off)" }),
  o({ flag: "cache-ttl", env: ["CACHE_TTL"], kind: "string", defaultText: "300", group: "Cache", help: "Seconds a response stays fresh when the upstream sends no Cache-Control/Expires (0: only what the upstream allows)" }),
  o({ flag: "cache-maxsize", env: ["CACHE_MAXSIZE"], kind: "string", defaultText: "1000", group: "Cache", help: "Responses kept in memory; the least recently used go first" }),
  o({ flag: "cache-stale-if-error", env: ["CACHE_STALE_IF_ERROR"], kind: "string", defaultText: "300", group: "Cache", help: "Seconds past freshness a cached response may still be served when the upstream fails" }),
  o({ flag: "cache-max-entry-bytes", env: ["CACHE_MAX_ENTRY_BYTES"], kind: "string", defaultText: "1048576", group: "Cache", help: "Larger responses are not cached" }),
  o({ flag: "redis-url", env: ["REDIS_URL"], kind: "string", secret: true, defaultText: "redis://localhost:6379", group: "Cache", help: "Redis for CACHE_BACKEND=redis (entries shared by replicas) and CIRCUIT_BREAKER_BACKEND=redis" }),
  // Observability
  o({ flag: "log-level", env: ["LOG_LEVEL"], kind: "string", defaultText: "info", values: ["trace", "debug", "info", "warning", "warn", "error", "critical", "fatal", "none"], group: "Observability", help: "JSON log level on stderr (case-insensitive)" }),
  o({ flag: "audit-log", env: ["AUDIT_LOG"], kind: "boolean", defaultText: "false", group: "Observability", help: "One info log line per tool call, 'tool call': the tool, the client (token subject, else address; stdio), the outcome and the duration; never arguments or answers" }),
  o({ flag: "enable-prometheus", env: ["ENABLE_PROMETHEUS"], kind: "boolean", defaultText: "false", group: "Observability", help: "Serve Prometheus metrics on PROMETHEUS_HOST:PROMETHEUS_PORT/metrics (the way to get metrics in stdio mode; --transport http always serves /metrics on its own port)" }),
  o({ flag: "prometheus-host", env: ["PROMETHEUS_HOST"], kind: "string", defaultText: "127.0.0.1", group: "Observability", help: "Bind address of the metrics endpoint" }),
  o({ flag: "prometheus-port", env: ["PROMETHEUS_PORT"], kind: "string", defaultText: "9090", group: "Observability", help: "Port of the metrics endpoint (0 picks a free one)" }),
  o({ flag: "otel-exporter-otlp-endpoint", env: ["OTEL_EXPORTER_OTLP_ENDPOINT"], kind: "string", defaultText: "none: tracing off", group: "Observability", help: "OTLP/HTTP collector base URL (spans go to its /v1/traces, as OTLP protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL=http/json); setting it turns tracing on" }),
  o({ flag: "otel-exporter-otlp-traces-endpoint", env: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], kind: "string", group: "Observability", help: "Full OTLP/HTTP traces URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT and also turns tracing on" }),
  o({ flag: "otel-service-name", env: ["OTEL_SERVICE_NAME"], kind: "string", defaultText: "openapi-mcp-server", group: "Observability", help: "service.name of the spans and metrics" }),
  o({ flag: "otel-traces-sampler", env: ["OTEL_TRACES_SAMPLER"], kind: "string", defaultText: "parentbased_always_on", values: ["parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio", "always_on", "always_off", "traceidratio"], group: "Observability", help: "Which traces are recorded; the parentbased ones follow the caller's sampling decision" }),
  o({ flag: "otel-traces-sampler-arg", env: ["OTEL_TRACES_SAMPLER_ARG"], kind: "string", defaultText: "1", group: "Observability", help: "Sampling ratio of the traceidratio and parentbased_traceidratio samplers, from 0 to 1" }),
  // check
  o({ flag: "format", env: ["CHECK_FORMAT"], kind: "string", defaultText: "text", values: ["text", "json"], group: "Check", help: "Report format of the check command" }),
  // awslabs compatibility
  o({ flag: "no-validate-output", env: ["VALIDATE_OUTPUT"], kind: "boolean", group: "Compatibility", help: "Accepted for awslabs compatibility; outputs are never rejected against the spec here" }),
  o({ flag: "additional-specs", env: ["ADDITIONAL_SPECS"], kind: "string", group: "Compatibility", help: "More specs, as a JSON list of {name, spec_path or spec_url, base_url, auth_type, auth_*} (awslabs format); their tools are named <name>_<tool>. --spec given again adds one too" })
]

const byFlag = new Map<string, OptionSpec>()
for (const spec of OPTIONS) for (const f of [spec.flag, ...(spec.aliases ?? [])]) byFlag.set(f, spec)
const byEnv = new Map<string, OptionSpec>()
for (const spec of OPTIONS) for (const e of spec.env) byEnv.set(e, spec)

/** The canonical env name of a flag, env name or config-file key, or undefined when unknown. */
export const canonicalKey = (key: string): string | undefined => {
  const spec = byFlag.get(key.replace(/^--/, "")) ?? byEnv.get(key) ?? byEnv.get(key.toUpperCase().replace(/-/g, "_"))
  return spec?.env[0]
}

export const optionForKey = (envKey: string): OptionSpec | undefined => byEnv.get(envKey)

export type Command = "serve" | "check" | "help" | "version"

export interface ParsedArgs {
  readonly command: Command
  /** Settings given as flags, keyed by canonical env name. */
  readonly values: Readonly<Record<string, string>>
}

/** Parses argv (without node and script). Throws an Error with a user-facing message on bad usage. */
export const parseArgv = (argv: ReadonlyArray<string>): ParsedArgs => {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" }, version: { type: "boolean" } }
  const multiple = new Set(["spec", "spec-path", "spec-url"])
  for (const spec of OPTIONS) {
    for (const f of [spec.flag, ...(spec.aliases ?? [])]) options[f] = { type: spec.kind, ...(multiple.has(f) ? { multiple: true } : {}) }
  }
  // required, not imported: an ESM import of node:util evaluates every lazy export of it (a few ms at start)
  const { parseArgs } = process.getBuiltinModule("node:util")
  const { values, positionals } = parseArgs({ args: [...argv], options: options as never, allowPositionals: true, strict: true })
  const [sub, ...rest] = positionals
  if (rest.length > 0 || (sub !== undefined && sub !== "serve" && sub !== "check")) {
    throw new Error(`unexpected argument '${rest[0] ?? sub}'. Usage: openapi-mcp-server [serve|check] --spec <file|url> [options]; see --help`)
  }
  if (values["format"] !== undefined && sub !== "check") throw new Error("--format is an option of the check command")
  if (values["help"] === true) return { command: "help", values: {} }
  if (values["version"] === true) return { command: "version", values: {} }
  const out: Record<string, string> = {}
  const extraSpecs: Array<string> = []
  for (const [flag, value] of Object.entries(values)) {
    const spec = byFlag.get(flag)
    if (spec === undefined || value === undefined) continue
    // `--no-validate-output` is the one negative flag: it sets VALIDATE_OUTPUT=false.
    if (Array.isArray(value)) {
      // --spec given several times: the first is the main spec, the others join ADDITIONAL_SPECS
      const [first, ...more] = value as Array<string>
      if (first !== undefined) out[spec.env[0]!] = first
      extraSpecs.push(...more)
      continue
    }
    out[spec.env[0]!] = spec.flag === "no-validate-output" ? "false" : String(value)
  }
  if (extraSpecs.length > 0) {
    let listed: Array<unknown> = []
    try {
      const given = out["ADDITIONAL_SPECS"] === undefined ? [] : JSON.parse(out["ADDITIONAL_SPECS"])
      listed = Array.isArray(given) ? given : [given]
    } catch {
      throw new Error("--additional-specs is not valid JSON (a list of {name, spec_path|spec_url, base_url, auth_*} objects)")
    }
    out["ADDITIONAL_SPECS"] = JSON.stringify([...listed, ...extraSpecs.map((spec_path) => ({ spec_path }))])
  }
  return { command: sub === "check" ? "check" : "serve", values: out }
}

export const helpText = (version: string): string => {
  const lines = [
    `openapi-mcp-server ${version}`,
    "",
    "Serve an OpenAPI (Swagger 2.0, OpenAPI 3.0/3.1/3.2) API as MCP tools.",
    "",
    "Usage: openapi-mcp-server [serve] --spec <file|url> [options]",
    "       openapi-mcp-server check --spec <file|url> [--format text|json] [options]",
    "       openapi-mcp-server --help | --version",
    "",
    "Every flag can also be set by its environment variable or in the --config file.",
    "Precedence: defaults < config file < environment < flags."
  ]
  let group = ""
  for (const spec of OPTIONS) {
    if (spec.group !== group) {
      group = spec.group
      lines.push("", `${group}:`)
    }
    const flags = [spec.flag, ...(spec.aliases ?? [])].map((f) => `--${f}`).join(", ")
    const arg = spec.kind === "boolean" ? "" : spec.values ? ` <${spec.values.join("|")}>` : " <value>"
    const meta = [`env ${spec.env.join(" or ")}`, spec.defaultText ? `default ${spec.defaultText}` : undefined]
      .filter((x) => x !== undefined).join("; ")
    lines.push(`  ${flags}${arg}`, `      ${spec.help} [${meta}]`)
  }
  lines.push("", "  --help, --version", "")
  return lines.join("\n")
}
