/**
 * OAuth 2.0 client-credentials grant (RFC 6749 §4.4): one POST of a form to the token endpoint, the client
 * authenticated with HTTP Basic (§2.3.1, id and secret form-encoded first) or with form fields. Used for
 * `--auth-type oauth2` and Cognito's client-credentials flow.
 */
import { Duration, Effect, Redacted } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { badResponse, rejected, unreachable, type AuthError } from "./Errors.ts"
import { scrub } from "./Secrets.ts"
import { DEFAULT_LIFETIME_MS, type Token } from "./Token.ts"

export interface ClientCredentialsRequest {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted | undefined
  readonly clientAuth: "basic" | "post"
  readonly scopes: ReadonlyArray<string>
  /** Extra form fields (e.g. `audience`). */
  readonly extra: Readonly<Record<string, string>>
}

export const TOKEN_TIMEOUT = Duration.seconds(10)

/** Where a URL points, for messages: origin and path, never a query. */
export const endpointOf = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return "the token endpoint"
  }
}

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")

/** The first error code in a cause chain (ECONNREFUSED…), never a message that could hold a URL or secret. */
export const causeCode = (cause: unknown): string => {
  let c: unknown = cause
  for (let i = 0; i < 5 && typeof c === "object" && c !== null; i++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === "string") return code
    c = (c as { cause?: unknown }).cause
  }
  return "connection failed"
}

/** Text of an OAuth error answer (`error`, `error_description`), scrubbed of the secrets sent. */
export const oauthErrorText = (body: unknown, secrets: ReadonlyArray<Redacted.Redacted>): string => {
  if (typeof body !== "object" || body === null) return ""
  const b = body as Record<string, unknown>
  const parts = [b["error"], b["error_description"]].filter((x): x is string => typeof x === "string" && x !== "")
  return scrub(parts.join(": "), secrets).slice(0, 300)
}

/** Runs a POST to an identity provider with a timeout; transport failures and 5xx become AuthUnreachable. */
export const postForJson = (
  request: HttpClientRequest.HttpClientRequest,
  endpoint: string
): Effect.Effect<{ readonly status: number; readonly body: unknown }, AuthError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(request).pipe(
      Effect.mapError((e) => unreachable(endpoint, causeCode(e.reason)))
    )
    const text = yield* response.text.pipe(Effect.mapError(() => unreachable(endpoint, "the answer could not be read")))
    if (response.status >= 500) return yield* unreachable(endpoint, `HTTP ${response.status}`)
    let body: unknown
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: response.status, body }
  }).pipe(
    Effect.timeoutOrElse({ duration: TOKEN_TIMEOUT, orElse: () => Effect.fail(unreachable(endpoint, "no answer within 10 s")) })
  )

/** Fetches one access token with the client-credentials grant. */
export const clientCredentials = (req: ClientCredentialsRequest): Effect.Effect<Token, AuthError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const endpoint = endpointOf(req.tokenUrl)
    const secret = req.clientSecret === undefined ? undefined : Redacted.value(req.clientSecret)
    const form: Record<string, string> = { grant_type: "client_credentials", ...req.extra }
    if (req.scopes.length > 0) form["scope"] = req.scopes.join(" ")
    const headers: Record<string, string> = { accept: "application/json" }
    if (req.clientAuth === "basic" && secret !== undefined) {
      headers["authorization"] = `Basic ${Buffer.from(`${formEncode(req.clientId)}:${formEncode(secret)}`).toString("base64")}`
    } else {
      form["client_id"] = req.clientId
      if (secret !== undefined) form["client_secret"] = secret
    }
    const request = HttpClientRequest.post(req.tokenUrl, { headers }).pipe(HttpClientRequest.bodyUrlParams(form))
    const { status, body } = yield* postForJson(request, endpoint)
    const secrets = req.clientSecret ? [req.clientSecret] : []
    if (status < 200 || status >= 300) return yield* rejected(endpoint, status, oauthErrorText(body, secrets))
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>
    const accessToken = b["access_token"]
    if (typeof accessToken !== "string" || accessToken === "") return yield* badResponse(endpoint, "no access_token in the answer")
    const tokenType = typeof b["token_type"] === "string" ? b["token_type"].toLowerCase() : "bearer"
    if (tokenType !== "bearer") return yield* badResponse(endpoint, `token_type '${tokenType}' is not supported (only Bearer)`)
    return { value: Redacted.make(accessToken), lifetimeMs: lifetimeOf(b["expires_in"]) }
  })

/** `expires_in` (seconds, number or numeric string) in milliseconds; the default when missing or nonsense. */
export const lifetimeOf = (expiresIn: unknown): number => {
  const n = typeof expiresIn === "number" ? expiresIn : typeof expiresIn === "string" ? Number(expiresIn) : NaN
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : DEFAULT_LIFETIME_MS
}
