/** Lambda events as API Gateway HTTP API (payload v2) and Function URLs deliver them, for the handler tests. */
import type { HttpEventV2 } from "../../src/Lambda.ts"
import { EXAMPLE_SPEC } from "./processes.ts"

/**
 * The handler, loaded as Lambda loads it: its settings from the environment, read once when the module loads
 * (so a test file needing other settings has its own module instance). The example spec against `baseUrl`.
 */
export const loadHandler = async (baseUrl: string, env: Record<string, string> = {}) => {
  Object.assign(process.env, { API_SPEC_PATH: EXAMPLE_SPEC, API_BASE_URL: baseUrl, LOG_LEVEL: "error", ...env })
  return (await import("../../src/Lambda.ts")).handler
}

export const event = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): HttpEventV2 => ({
  version: "2.0",
  routeKey: "$default",
  rawPath: path,
  rawQueryString: "",
  headers: {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    host: "abc123.lambda-url.us-east-1.on.aws",
    "x-forwarded-proto": "https",
    ...headers
  },
  requestContext: {
    accountId: "anonymous", apiId: "abc123", domainName: "abc123.lambda-url.us-east-1.on.aws", domainPrefix: "abc123",
    http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
    requestId: "req-1", routeKey: "$default", stage: "$default", time: "26/Nov/2026:10:00:00 +0000", timeEpoch: 1795687200000
  },
  ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)).toString("base64"), isBase64Encoded: true } : { isBase64Encoded: false })
}) as unknown as HttpEventV2
