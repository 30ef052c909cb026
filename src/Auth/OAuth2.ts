/**
 * OAuth 2.0 token requests: the client-credentials grant (RFC 6749 §4.4), the refresh-token grant (§6) and the
 * exchange of a client's token (RFC 8693, Entra ID's on-behalf-of), one POST of a form to the token endpoint each,
 * the client authenticated with HTTP Basic (§2.3.1, id and secret form-encoded first), with form fields (a
 * public client: its id alone), or with a JWT it signs with its private key (RFC 7523, `private_key_jwt`). Used for `--auth-type oauth2` and Cognito's client-credentials flow.
 */
import { Duration, Effect, Redacted } from "effect"
import { createPrivateKey, type KeyObject, randomUUID } from "node:crypto"
import { rename, writeFile } from "node:fs/promises"
import { HttpClient, HttpClientRequest } from "effect/http"
import { badResponse, rejected, unreachable, type AuthError } from "./Errors.ts"
import { scrub, type SecretRef } from "./Secrets.ts"
import type { OAuth2Grant } from "./Settings.ts"
import { DEFAULT_LIFETIME_MS, type Token } from "./Token.ts"

export interface ClientCredentialsRequest {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted | undefined
  readonly clientAuth: "basic" | "post" | "private_key_jwt"
  /** private_key_jwt: the key the client's assertions are signed with. */
  readonly assertionKey?: AssertionKey | undefined
  readonly scopes: ReadonlyArray<string>
  /** Extra form fields (e.g. `audience`). */
  readonly extra: Readonly<Record<string, string>>
}

/** A private key for client assertions (RFC 7523), with the JWS algorithm its type calls for. */
export interface AssertionKey {
  readonly key: KeyObject
  readonly alg: string
  readonly kid: string | undefined
}

const EC_ALGORITHMS: Readonly<Record<string, string>> = { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" }

/** The assertion key in `pem`, or why it cannot sign (for the start's error; never the key). */
export const assertionKeyOf = (pem: string, kid: string | undefined): AssertionKey | string => {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    return "AUTH_OAUTH2_CLIENT_KEY (--auth-oauth2-client-key) holds no unencrypted PEM private key"
  }
  const type = key.asymmetricKeyType
  const alg = type === "rsa" ? "RS256"
    : type === "ec" ? EC_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve ?? ""]
    : type === "ed25519" ? "EdDSA"
    : undefined
  if (alg === undefined) return `AUTH_OAUTH2_CLIENT_KEY (--auth-oauth2-client-key) is a ${type ?? "?"} key; private_key_jwt signs with RSA, EC (P-256/384/521) or Ed25519`
  return { key, alg, kid }
}

/** A client assertion (RFC 7523 §3): the client as issuer and subject, the token endpoint as audience, for two minutes. */
const clientAssertion = (key: AssertionKey, clientId: string, tokenUrl: string): Effect.Effect<string> =>
  Effect.promise(async () => {
    const { SignJWT } = await import("jose")
    return new SignJWT({})
      .setProtectedHeader({ alg: key.alg, typ: "JWT", ...(key.kid !== undefined ? { kid: key.kid } : {}) })
      .setIssuer(clientId).setSubject(clientId).setAudience(tokenUrl).setJti(randomUUID()).setIssuedAt().setExpirationTime("2m")
      .sign(key.key)
  })

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

/**
 * One token request of a grant (`grant`: its form fields), the client authenticated as configured; the token, and
 * the whole answer for what else it holds. `secrets`: values sent that an error text quoted back must not show.
 */
const requestToken = (req: ClientCredentialsRequest, grant: Readonly<Record<string, string>>, secrets: ReadonlyArray<Redacted.Redacted>) =>
  Effect.gen(function*() {
    const endpoint = endpointOf(req.tokenUrl)
    const secret = req.clientSecret === undefined ? undefined : Redacted.value(req.clientSecret)
    const form: Record<string, string> = { ...grant, ...req.extra }
    if (req.scopes.length > 0) form["scope"] = req.scopes.join(" ")
    const headers: Record<string, string> = { accept: "application/json" }
    if (req.clientAuth === "private_key_jwt" && req.assertionKey !== undefined) {
      form["client_id"] = req.clientId
      form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
      form["client_assertion"] = yield* clientAssertion(req.assertionKey, req.clientId, req.tokenUrl)
    } else if (req.clientAuth === "basic" && secret !== undefined) {
      headers["authorization"] = `Basic ${Buffer.from(`${formEncode(req.clientId)}:${formEncode(secret)}`).toString("base64")}`
    } else {
      form["client_id"] = req.clientId
      if (secret !== undefined) form["client_secret"] = secret
    }
    const request = HttpClientRequest.post(req.tokenUrl, { headers }).pipe(HttpClientRequest.bodyUrlParams(form))
    const { status, body } = yield* postForJson(request, endpoint)
    const sent = req.clientSecret ? [req.clientSecret, ...secrets] : secrets
    if (status < 200 || status >= 300) return yield* rejected(endpoint, status, oauthErrorText(body, sent))
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>
    const accessToken = b["access_token"]
    if (typeof accessToken !== "string" || accessToken === "") return yield* badResponse(endpoint, "no access_token in the answer")
    const tokenType = typeof b["token_type"] === "string" ? b["token_type"].toLowerCase() : "bearer"
    if (tokenType !== "bearer") return yield* badResponse(endpoint, `token_type '${tokenType}' is not supported (only Bearer)`)
    return { token: { value: Redacted.make(accessToken), lifetimeMs: lifetimeOf(b["expires_in"]) } satisfies Token, answer: b }
  })

/**
 * A refusal by the token endpoint (AuthRejected), with what it means for this grant said after the endpoint's own
 * words; only when those start with `error` (an OAuth error code), if given.
 */
const withHint = (hint: string, error?: string) => (e: AuthError): AuthError =>
  e.reason._tag === "AuthRejected" && (error === undefined || e.reason.detail.startsWith(error))
    ? rejected(e.reason.endpoint, e.reason.status, `${e.reason.detail}${e.reason.detail ? "; " : ""}${hint}`)
    : e

/** Fetches one access token with the client-credentials grant. */
export const clientCredentials = (req: ClientCredentialsRequest): Effect.Effect<Token, AuthError, HttpClient.HttpClient> =>
  Effect.map(requestToken(req, { grant_type: "client_credentials" }, []), (r) => r.token)

/**
 * Fetches one access token with the refresh-token grant (RFC 6749 §6), on the behalf of the user who consented
 * when the refresh token was issued; `rotated` is the new refresh token when the provider issued one (it then
 * replaces the one sent, which a provider with reuse detection no longer accepts).
 */
export const refreshTokenGrant = (
  req: ClientCredentialsRequest,
  refreshToken: Redacted.Redacted
): Effect.Effect<{ readonly token: Token; readonly rotated: Redacted.Redacted | undefined }, AuthError, HttpClient.HttpClient> =>
  requestToken(req, { grant_type: "refresh_token", refresh_token: Redacted.value(refreshToken) }, [refreshToken]).pipe(
    Effect.map(({ answer, token }) => {
      const next = answer["refresh_token"]
      return { token, rotated: typeof next === "string" && next !== "" && next !== Redacted.value(refreshToken) ? Redacted.make(next) : undefined }
    }),
    Effect.mapError(withHint("the refresh token (AUTH_OAUTH2_REFRESH_TOKEN) is expired, revoked or used up: get a new one", "invalid_grant"))
  )

/**
 * Exchanges the OAuth token an MCP client sent for an access token to the API, of the same user: RFC 8693 token
 * exchange, or Entra ID's on-behalf-of flow (a JWT-bearer grant). The audience and scopes are the configured ones.
 */
export const exchangeToken = (
  req: ClientCredentialsRequest,
  subjectToken: Redacted.Redacted,
  grant: Exclude<OAuth2Grant, "client_credentials">
): Effect.Effect<Token, AuthError, HttpClient.HttpClient> =>
  requestToken(req, grant === "token_exchange"
    ? {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: Redacted.value(subjectToken),
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      requested_token_type: "urn:ietf:params:oauth:token-type:access_token"
    }
    : {
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: Redacted.value(subjectToken),
      requested_token_use: "on_behalf_of"
    }, [subjectToken]).pipe(
    Effect.map((r) => r.token),
    Effect.mapError(withHint(`the token this client sent could not be exchanged for one to the API (AUTH_OAUTH2_GRANT=${grant})`))
  )

/**
 * The refresh token in use: the configured one until the provider rotates it. A rotated token is written back to a
 * `file:` reference (the next start then uses it: a provider with reuse detection refuses the old one); another
 * reference cannot be written, which is said once.
 */
export const keptRefreshToken = (initial: Redacted.Redacted, reference: SecretRef) =>
  Effect.sync(() => {
    let current = initial
    let warned = false
    const replace = (next: Redacted.Redacted): Effect.Effect<void> => {
      current = next
      if (reference._tag !== "file") {
        if (warned) return Effect.void
        warned = true
        return Effect.logWarning(
          "the token endpoint rotated the refresh token; the new one is kept in memory only, and a restart sends " +
            "AUTH_OAUTH2_REFRESH_TOKEN's again, which some providers refuse: give it as a file: reference to have it written back"
        )
      }
      const path = reference.path
      return Effect.tryPromise(async () => {
        const temporary = `${path}.${process.pid}.tmp`
        await writeFile(temporary, `${Redacted.value(next)}\n`, { mode: 0o600 })
        await rename(temporary, path)
      }).pipe(
        Effect.andThen(Effect.logInfo(`the token endpoint rotated the refresh token; the new one was written to ${path}`)),
        Effect.catch((e) =>
          Effect.logWarning(`the token endpoint rotated the refresh token, and writing it to ${path} failed (${(e.cause as NodeJS.ErrnoException)?.code ?? "error"}); it is kept in memory`)
        )
      )
    }
    return { current: () => current, replace }
  })

/** `expires_in` (seconds, number or numeric string) in milliseconds; the default when missing or nonsense. */
export const lifetimeOf = (expiresIn: unknown): number => {
  const n = typeof expiresIn === "number" ? expiresIn : typeof expiresIn === "string" ? Number(expiresIn) : NaN
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : DEFAULT_LIFETIME_MS
}
