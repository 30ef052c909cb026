/**
 * The application's metrics as Effect `Metric`s, named as Prometheus scrapes them (the OpenTelemetry SDK
 * reads them through a MetricProducer). OpenTelemetry semantic-convention names where they exist, and
 * `openapi_mcp_*` for the rest.
 *
 * Labels have bounded cardinality: tool and operation names come from the spec, statuses and outcomes
 * from small sets, upstreams are origins of configured base URLs. Never a URL with ids, an argument value
 * or anything else a caller sends: a tool name the catalog does not know is not used as a label.
 *
 * Each label set is one `Metric` value made once and reused. Effect keys a series by its attributes and a
 * Metric value caches its key, so a reused value costs one registry lookup per update and no allocation.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Metric } from "effect"
import type { Tool } from "../domain/Tool.ts"

/** How a tool call ended, as the `outcome` label of `openapi_mcp_tool_calls_total`. */
export type ToolOutcome = "ok" | "tool_error" | "upstream_error" | "timeout" | "circuit_open" | "invalid_args"
export const TOOL_OUTCOMES: ReadonlyArray<ToolOutcome> = ["ok", "tool_error", "upstream_error", "timeout", "circuit_open", "invalid_args"]

/** How a response-cache lookup went, as the `result` label of `openapi_mcp_cache_requests_total`. */
export type CacheResult = "hit" | "miss" | "stale" | "bypass"

/** OpenTelemetry MCP semantic conventions' advice for `mcp.server.operation.duration`, in seconds. */
export const MCP_DURATION_BUCKETS: ReadonlyArray<number> = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
/** OpenTelemetry HTTP semantic conventions' advice for `http.client.request.duration`, in seconds. */
export const HTTP_DURATION_BUCKETS: ReadonlyArray<number> = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export const METRIC_NAMES = {
  mcpOperationDuration: "mcp_server_operation_duration_seconds",
  httpClientDuration: "http_client_request_duration_seconds",
  toolCalls: "openapi_mcp_tool_calls_total",
  upstreamRetries: "openapi_mcp_upstream_retries_total",
  circuitBreakerState: "openapi_mcp_circuit_breaker_state",
  cacheRequests: "openapi_mcp_cache_requests_total",
  specOperations: "openapi_mcp_spec_operations"
} as const

/** Attributes without the empty ones: an absent label, not `label=""`. */
const labels = (attributes: Record<string, string | undefined>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined && v !== "") out[k] = v
  return out
}

const mcpDuration = (attributes: Record<string, string | undefined>) =>
  Metric.histogram(METRIC_NAMES.mcpOperationDuration, {
    description: "Duration of MCP requests as the server handled them, in seconds",
    boundaries: MCP_DURATION_BUCKETS,
    attributes: labels(attributes)
  })

const httpDuration = (attributes: Record<string, string | undefined>) =>
  Metric.histogram(METRIC_NAMES.httpClientDuration, {
    description: "Duration of HTTP requests to the upstream API, one per attempt, in seconds",
    boundaries: HTTP_DURATION_BUCKETS,
    attributes: labels(attributes)
  })

const toolCalls = (tool: string, outcome: ToolOutcome) =>
  Metric.counter(METRIC_NAMES.toolCalls, {
    description: "Tool calls by tool and outcome (ok, tool_error, upstream_error, timeout, circuit_open, invalid_args)",
    incremental: true,
    attributes: { tool, outcome }
  })

const retries = (operation: string | undefined, reason: string) =>
  Metric.counter(METRIC_NAMES.upstreamRetries, {
    description: "Upstream requests sent again, by operation and what made the previous attempt fail",
    incremental: true,
    attributes: labels({ operation, reason })
  })

const memo = <V>(make: (key: string) => V) => {
  const cache = new Map<string, V>()
  return (key: string): V => {
    let v = cache.get(key)
    if (v === undefined) {
      v = make(key)
      cache.set(key, v)
    }
    return v
  }
}

const hostAndPort = (url: string): { readonly address: string | undefined; readonly port: number | undefined } => {
  try {
    const u = new URL(url)
    const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname
    const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" ? 443 : u.protocol === "http:" ? 80 : undefined
    return { address: host === "" ? undefined : host, port }
  } catch {
    return { address: undefined, port: undefined }
  }
}

/**
 * Span attributes that every span of one kind from one tool carries (the tool, its operation, the upstream
 * server), kept once per tool instead of set on each span: an exporter encodes them on first use, in the slot
 * of its encoding, and copies that into every span after.
 */
export class FixedAttributes {
  readonly entries: ReadonlyArray<readonly [key: string, value: unknown]>
  /** The KeyValues in protobuf (repeated `Span.attributes` fields), once written. */
  protobuf: Uint8Array | undefined = undefined
  /** The KeyValues in OTLP/JSON, comma-separated, once written. */
  json: string | undefined = undefined

  constructor(entries: ReadonlyArray<readonly [key: string, value: unknown]>) {
    this.entries = entries.filter(([, value]) => value !== undefined)
  }
}

/** The name and fixed attributes of the CLIENT span of an upstream attempt. */
export interface ClientSpanShape {
  readonly name: string
  readonly attributes: FixedAttributes
}

/**
 * The instruments and span names of one tool (or, for upstream calls made outside a tool call, of one
 * method and origin), with every label set made on first use and kept.
 */
export class ToolTelemetry {
  /** `tools/call <tool>`: the MCP server span's name. */
  readonly spanName: string
  /** The catalog's tool name; undefined for a name the catalog does not know. */
  readonly tool: string | undefined
  readonly operationId: string | undefined
  readonly method: string | undefined
  /** The operation's path template (`/pets/{petId}`), for span names: never the filled-in path. */
  readonly pathTemplate: string | undefined
  readonly serverAddress: string | undefined
  readonly serverPort: number | undefined
  readonly #calls = new Map<ToolOutcome, Metric.Counter<number>>()
  readonly #durations = new Map<string, Metric.Histogram<number>>()
  readonly #http = new Map<number, Metric.Histogram<number>>()
  readonly #retries = new Map<string, Metric.Counter<number>>()
  #serverAttributes: FixedAttributes | undefined
  #clientSpan: (ClientSpanShape & { readonly method: string }) | undefined

  constructor(
    tool: string | undefined,
    operationId: string | undefined,
    method: string | undefined,
    pathTemplate: string | undefined,
    baseUrl: string | undefined
  ) {
    this.tool = tool
    this.operationId = operationId
    this.method = method
    this.pathTemplate = pathTemplate
    this.spanName = tool === undefined ? "tools/call" : `tools/call ${tool}`
    const { address, port } = baseUrl === undefined ? { address: undefined, port: undefined } : hostAndPort(baseUrl)
    this.serverAddress = address
    this.serverPort = port
  }

  static forTool(tool: Tool): ToolTelemetry {
    return new ToolTelemetry(tool.name, tool.operationId, tool.method, tool.path, tool.baseUrl)
  }

  /** The fixed attributes of the tools/call SERVER span. */
  get serverAttributes(): FixedAttributes {
    return this.#serverAttributes ??= new FixedAttributes([
      ["mcp.method.name", "tools/call"],
      ["gen_ai.operation.name", "execute_tool"],
      ["gen_ai.tool.name", this.tool],
      ["openapi.operation_id", this.operationId]
    ])
  }

  /** The CLIENT span of an upstream attempt with `method`: `GET /pets/{petId}`, and its fixed attributes. */
  clientSpan(method: string): ClientSpanShape {
    const cached = this.#clientSpan
    if (cached?.method === method) return cached
    const shape = {
      method,
      name: this.pathTemplate !== undefined ? `${method} ${this.pathTemplate}` : method,
      attributes: new FixedAttributes([
        ["http.request.method", method],
        ["url.template", this.pathTemplate],
        ["server.address", this.serverAddress],
        ["server.port", this.serverPort],
        ["gen_ai.tool.name", this.tool],
        ["openapi.operation_id", this.operationId]
      ])
    }
    // a tool's operation has one method; another (not expected) is made each time rather than cached over it
    if (cached === undefined) this.#clientSpan = shape
    return shape
  }

  /** `openapi_mcp_tool_calls_total{tool, outcome}`; only for catalog tools. */
  toolCalls(outcome: ToolOutcome): Metric.Counter<number> | undefined {
    if (this.tool === undefined) return undefined
    let m = this.#calls.get(outcome)
    if (m === undefined) {
      m = toolCalls(this.tool, outcome)
      this.#calls.set(outcome, m)
    }
    return m
  }

  /** `mcp_server_operation_duration_seconds{mcp_method_name="tools/call", gen_ai_tool_name, error_type}`. */
  callDuration(errorType: string | undefined): Metric.Histogram<number> {
    const key = errorType ?? ""
    let m = this.#durations.get(key)
    if (m === undefined) {
      m = mcpDuration({ mcp_method_name: "tools/call", gen_ai_tool_name: this.tool, error_type: errorType })
      this.#durations.set(key, m)
    }
    return m
  }

  /** `http_client_request_duration_seconds{http_request_method, http_response_status_code, server_address, openapi_operation_id}`. */
  httpDuration(status: number | undefined): Metric.Histogram<number> {
    const key = status ?? 0
    let m = this.#http.get(key)
    if (m === undefined) {
      m = httpDuration({
        http_request_method: this.method,
        http_response_status_code: status === undefined ? undefined : String(status),
        server_address: this.serverAddress,
        openapi_operation_id: this.operationId
      })
      this.#http.set(key, m)
    }
    return m
  }

  /** `openapi_mcp_upstream_retries_total{operation, reason}`. */
  retries(reason: string): Metric.Counter<number> {
    let m = this.#retries.get(reason)
    if (m === undefined) {
      m = retries(this.operationId, reason)
      this.#retries.set(reason, m)
    }
    return m
  }
}

/** The instruments of a tool name the catalog does not know: no per-name labels. */
export const unknownToolTelemetry = new ToolTelemetry(undefined, undefined, undefined, undefined, undefined)

/** Instruments for upstream requests made outside a tool call, keyed by method and URL origin. */
export const requestTelemetry: (method: string, url: string) => ToolTelemetry = (() => {
  const byKey = memo((key: string) => {
    const space = key.indexOf(" ")
    return new ToolTelemetry(undefined, undefined, key.slice(0, space), undefined, key.slice(space + 1))
  })
  return (method, url) => {
    let origin = url
    try {
      origin = new URL(url).origin
    } catch {
      // keep the raw string: hostAndPort will find no host
    }
    return byKey(`${method} ${origin}`)
  }
})()

/** How a finished tool call is counted: from the result the model gets. */
export const outcomeOf = (result: CallToolResult): ToolOutcome => {
  if (result.isError !== true) return "ok"
  const s = result.structuredContent
  switch (s?.["error"]) {
    case "invalid_arguments":
      return "invalid_args"
    case "timeout":
      return "timeout"
    case "circuit_open":
      return "circuit_open"
    case "connect":
    case "tls":
    case "overloaded":
      return "upstream_error"
    case "invalid_request":
      return "tool_error"
  }
  const status = s?.["status"]
  // a 5xx is the upstream's failure; a 4xx (or an unexpected 1xx/3xx) is the call's
  return typeof status === "number" && status >= 500 ? "upstream_error" : "tool_error"
}

/** `mcp_server_operation_duration_seconds` for MCP methods other than tools/call (label set per method). */
export const methodDuration: (method: string) => Metric.Histogram<number> = memo((method) => mcpDuration({ mcp_method_name: method }))

/** `openapi_mcp_circuit_breaker_state{upstream}`: 0 closed, 1 half-open, 2 open. The upstream is an origin. */
export const circuitBreakerState: (upstream: string) => Metric.Gauge<number> = memo((upstream) =>
  Metric.gauge(METRIC_NAMES.circuitBreakerState, {
    description: "Circuit breaker state per upstream origin: 0 closed, 1 half-open, 2 open",
    attributes: { upstream }
  })
)

export const BREAKER_STATE_VALUE = { Closed: 0, HalfOpen: 1, Open: 2 } as const

const cacheRequestsByKey = memo((key: string) => {
  const sep = key.indexOf("\u0000")
  return Metric.counter(METRIC_NAMES.cacheRequests, {
    description: "Response cache lookups by cache and result (hit, miss, stale, bypass)",
    incremental: true,
    attributes: { cache: key.slice(0, sep), result: key.slice(sep + 1) }
  })
})

/** `openapi_mcp_cache_requests_total{cache, result}`. `cache` names the cache (its backend, say), not a key. */
export const cacheRequests = (cache: string, result: CacheResult): Metric.Counter<number> =>
  cacheRequestsByKey(`${cache}\u0000${result}`)

/** `openapi_mcp_spec_operations`: tools served from the spec. */
export const specOperations = Metric.gauge(METRIC_NAMES.specOperations, {
  description: "Operations of the OpenAPI spec served as tools"
})
