/**
 * An independent SigV4 verifier, as a receiving AWS service works: from the request as it arrived on the
 * wire (raw path and query, the headers named in SignedHeaders, the body bytes), recompute the signature
 * with AWS's own signer and compare. The payload hash header must be the SHA-256 of the received body.
 */
import { Sha256 } from "@aws-crypto/sha256-js"
import { SignatureV4 } from "@smithy/signature-v4"
import { createHash } from "node:crypto"
import type { IncomingHttpHeaders } from "node:http"

export interface WireRequest {
  readonly method: string
  /** Path and query exactly as received (`req.url`). */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Uint8Array
}

export interface Verdict {
  readonly ok: boolean
  readonly reason: string
  readonly signedHeaders: ReadonlyArray<string>
  readonly region: string
  readonly service: string
  readonly accessKeyId: string
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/

export const verifySigV4 = async (
  r: WireRequest,
  credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
): Promise<Verdict> => {
  const m = AUTH.exec(String(r.headers.authorization ?? ""))
  if (!m) return { ok: false, reason: `no SigV4 authorization header: ${String(r.headers.authorization)}`, signedHeaders: [], region: "", service: "", accessKeyId: "" }
  const [, accessKeyId, , region, service, signed, signature] = m as unknown as [string, string, string, string, string, string, string]
  const base = { signedHeaders: signed.split(";"), region, service, accessKeyId }
  const amzDate = String(r.headers["x-amz-date"] ?? "")
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (!d) return { ok: false, reason: "no x-amz-date", ...base }
  const signingDate = new Date(Date.UTC(+d[1]!, +d[2]! - 1, +d[3]!, +d[4]!, +d[5]!, +d[6]!))
  const bodyHash = createHash("sha256").update(r.body).digest("hex")
  if (r.headers["x-amz-content-sha256"] !== undefined && r.headers["x-amz-content-sha256"] !== bodyHash) {
    return { ok: false, reason: "x-amz-content-sha256 is not the hash of the received body", ...base }
  }
  const q = r.url.indexOf("?")
  const path = q === -1 ? r.url : r.url.slice(0, q)
  const query: Record<string, string | Array<string>> = {}
  if (q !== -1) {
    for (const item of r.url.slice(q + 1).split("&")) {
      if (item === "") continue
      const eq = item.indexOf("=")
      const k = decodeURIComponent(eq === -1 ? item : item.slice(0, eq))
      const v = eq === -1 ? "" : decodeURIComponent(item.slice(eq + 1))
      const prev = query[k]
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
  }
  const headers: Record<string, string> = {}
  for (const name of base.signedHeaders) {
    const v = r.headers[name]
    if (v === undefined) return { ok: false, reason: `signed header ${name} was not received`, ...base }
    headers[name] = Array.isArray(v) ? v.join(",") : v
  }
  const host = headers["host"] ?? String(r.headers.host)
  const signer = new SignatureV4({ service, region, credentials, sha256: Sha256 })
  const resigned = await signer.sign({
    method: r.method, protocol: "http:", hostname: host.split(":")[0]!, path, query, headers, body: r.body
  }, { signingDate })
  const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers["authorization"]))?.[1]
  return expected === signature
    ? { ok: true, reason: "signature matches", ...base }
    : { ok: false, reason: `signature mismatch (expected ${expected}, got ${signature})`, ...base }
}
