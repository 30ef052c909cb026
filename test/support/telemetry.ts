/**
 * Real telemetry consumers for tests: an OTLP/HTTP trace receiver (node:http, decoding the exporter's
 * protobuf with protobufjs and the OTLP schema, or its JSON)
 * and a real Prometheus server (the Debian `prometheus` binary) scraping a target. Both on 127.0.0.1 free
 * ports, stopped by PID or by closing the server.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import protobuf from "protobufjs"
import { freePort, stop } from "./processes.ts"

/** One span as received, attributes flattened to plain values. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  readonly status: { readonly code?: number; readonly message?: string }
  readonly resource: Readonly<Record<string, unknown>>
}

interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: number | string
  readonly doubleValue?: number
  readonly boolValue?: boolean
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}

const plain = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue

const attributesOf = (list: ReadonlyArray<KeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, plain(kv.value)]))

const ExportTraceServiceRequest = protobuf.loadSync(join(import.meta.dirname, "otlp-trace.proto"))
  .lookupType("otlp.ExportTraceServiceRequest")

/** Protobuf's decoded message in OTLP/JSON's spelling: ids as hex, small int64s as numbers, status code 0 kept. */
const jsonSpelling = (value: unknown, key = ""): unknown => {
  if (Array.isArray(value)) return value.map((item) => jsonSpelling(item, key))
  if (typeof value === "string") {
    if (key === "traceId" || key === "spanId" || key === "parentSpanId") return Buffer.from(value, "base64").toString("hex")
    if (key === "intValue" && Number.isSafeInteger(Number(value))) return Number(value)
    return value
  }
  if (typeof value !== "object" || value === null) return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = jsonSpelling(v, k)
  if (key === "status" && out["code"] === undefined) out["code"] = 0
  return out
}

/**
 * An OTLP/HTTP trace export's body as the OTLP/JSON document, whichever encoding its content type names:
 * protobuf is decoded by protobufjs against the OTLP schema (test/support/otlp-trace.proto).
 */
export const otlpDocument = (body: Buffer, contentType: string | undefined): unknown => {
  if (contentType !== "application/x-protobuf") return JSON.parse(body.toString("utf8"))
  const message = ExportTraceServiceRequest.decode(body)
  return jsonSpelling(ExportTraceServiceRequest.toObject(message, { longs: String, bytes: String, arrays: true }))
}

const bodyOf = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const raw = Buffer.concat(chunks)
      resolve(req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw)
    })
  })

/** An OTLP/HTTP receiver for traces (protobuf or JSON encoding). */
export const startOtlpReceiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const payloads: Array<string> = []
  const contentTypes: Array<string | undefined> = []
  const server = createServer((req, res) => {
    void bodyOf(req).then((body) => {
      if (req.method !== "POST" || req.url !== "/v1/traces") return res.writeHead(404).end()
      payloads.push(body.toString("utf8"))
      contentTypes.push(req.headers["content-type"])
      const doc = otlpDocument(body, req.headers["content-type"]) as {
        resourceSpans?: ReadonlyArray<{
          resource?: { attributes?: ReadonlyArray<KeyValue> }
          scopeSpans?: ReadonlyArray<{ spans?: ReadonlyArray<Record<string, unknown>> }>
        }>
      }
      for (const rs of doc.resourceSpans ?? []) {
        const resource = attributesOf(rs.resource?.attributes)
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const parent = s["parentSpanId"] as string | undefined
            spans.push({
              traceId: s["traceId"] as string,
              spanId: s["spanId"] as string,
              parentSpanId: parent === undefined || parent === "" ? undefined : parent,
              name: s["name"] as string,
              kind: s["kind"] as number,
              attributes: attributesOf(s["attributes"] as ReadonlyArray<KeyValue>),
              status: (s["status"] ?? {}) as ReceivedSpan["status"],
              resource
            })
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as { port: number }).port
  /** Waits (bounded) until `check` holds for the spans received so far. */
  const waitFor = async (check: (spans: ReadonlyArray<ReceivedSpan>) => boolean, what: string, ms = 10_000) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      if (check(spans)) return
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`timed out waiting for ${what}; received: ${spans.map((s) => s.name).join(", ")}`)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    /** Raw request bodies, to check nothing secret was exported. */
    payloads,
    /** The content type of each request (application/x-protobuf or application/json). */
    contentTypes,
    waitFor,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

/** A real Prometheus scraping `target` (host:port, path /metrics) every second, with its HTTP API. */
export const startPrometheus = async (target: string) => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "prometheus-"))
  const config = join(dir, "prometheus.yml")
  writeFileSync(config, [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    "scrape_configs:",
    "  - job_name: openapi-mcp",
    "    scrape_interval: 1s",
    "    scrape_timeout: 1s",
    `    static_configs: [{ targets: ["${target}"] }]`,
    ""
  ].join("\n"))
  const child = spawn("prometheus", [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: ["ignore", "pipe", "pipe"] })
  let log = ""
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()))
  const base = `http://127.0.0.1:${port}`
  const until = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${log}`)
    const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false)
    if (ready) break
    if (Date.now() > until) throw new Error(`prometheus not ready: ${log}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  /** An instant query through the HTTP API: each series' labels and value. */
  const query = async (promql: string): Promise<Array<{ labels: Record<string, string>; value: number }>> => {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`)
    const body = await res.json() as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }
    if (body.status !== "success") throw new Error(`query ${promql} failed: ${body.error}`)
    return body.data!.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }))
  }
  return {
    base,
    query,
    log: () => log,
    stop: async () => {
      await stop(child)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
