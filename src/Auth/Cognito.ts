/**
 * Amazon Cognito, as the AWS Labs server does it, plus refresh:
 * - client-credentials flow (client id + secret + hosted domain): the OAuth2 token endpoint
 *   https://{domain}.auth.{region}.amazoncognito.com/oauth2/token, Basic client auth; the access token is sent;
 * - user-password flow (client id + username + password): `InitiateAuth` USER_PASSWORD_AUTH against
 *   cognito-idp; the ID token is sent, and renewed before expiry with REFRESH_TOKEN_AUTH (falling back to
 *   the password when the refresh token is refused). With an app client secret, SECRET_HASH is sent.
 * InitiateAuth needs no AWS credentials: it is a plain JSON POST, made with the same HTTP client as OAuth2.
 */
import { Effect, Option, Redacted } from "effect"
import { type HttpClient, HttpClientRequest } from "effect/http"
import { createHmac } from "node:crypto"
import type { CognitoSettings } from "./Settings.ts"
import { type AuthError, badResponse, rejected } from "./Errors.ts"
import { clientCredentials, endpointOf, lifetimeOf, postForJson } from "./OAuth2.ts"
import { scrub } from "./Secrets.ts"
import type { Token } from "./Token.ts"

/** The region: explicit, else the user pool id's prefix (`eu-west-1_AbC`), else us-east-1. */
export const cognitoRegion = (s: Pick<CognitoSettings, "region" | "userPoolId">): string =>
  Option.getOrUndefined(s.region) ?? Option.getOrUndefined(s.userPoolId)?.split("_")[0] ?? "us-east-1"

export const hostedTokenUrl = (domain: string, region: string) =>
  `https://${domain}.auth.${region}.amazoncognito.com/oauth2/token`

export const idpEndpoint = (region: string) => `https://cognito-idp.${region}.amazonaws.com/`

/** Base64(HMAC-SHA256(client secret, username + client id)), as Cognito requires for clients with a secret. */
export const secretHash = (username: string, clientId: string, clientSecret: Redacted.Redacted): string =>
  createHmac("sha256", Redacted.value(clientSecret)).update(username + clientId).digest("base64")

export interface PasswordFlow {
  readonly endpoint: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted | undefined
  readonly username: string
  readonly password: Redacted.Redacted
}

interface AuthenticationResult {
  readonly IdToken?: string
  readonly AccessToken?: string
  readonly RefreshToken?: string
  readonly ExpiresIn?: number
}

/** One InitiateAuth call; the AuthenticationResult, or a typed failure naming Cognito's error type. */
const initiateAuth = (
  flow: PasswordFlow,
  authFlow: "USER_PASSWORD_AUTH" | "REFRESH_TOKEN_AUTH",
  parameters: Record<string, string>
): Effect.Effect<AuthenticationResult, AuthError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const endpoint = endpointOf(flow.endpoint)
    const request = HttpClientRequest.post(flow.endpoint, {
      headers: { "x-amz-target": "AWSCognitoIdentityProviderService.InitiateAuth" }
    }).pipe(HttpClientRequest.bodyText(
      JSON.stringify({ AuthFlow: authFlow, ClientId: flow.clientId, AuthParameters: parameters }),
      "application/x-amz-json-1.1"
    ))
    const { status, body } = yield* postForJson(request, endpoint)
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>
    if (status < 200 || status >= 300) {
      const type = typeof b["__type"] === "string" ? b["__type"].split("#").pop()! : ""
      const message = typeof b["message"] === "string" ? b["message"] : ""
      const secrets = [flow.password, ...(flow.clientSecret ? [flow.clientSecret] : [])]
      return yield* rejected(endpoint, status, scrub([type, message].filter((x) => x !== "").join(": "), secrets).slice(0, 300))
    }
    if (typeof b["ChallengeName"] === "string") {
      return yield* rejected(endpoint, status,
        `Cognito asks for the ${b["ChallengeName"]} challenge, which this server cannot answer; complete it for this user first`)
    }
    const result = b["AuthenticationResult"]
    if (typeof result !== "object" || result === null) return yield* badResponse(endpoint, "no AuthenticationResult in the answer")
    return result as AuthenticationResult
  })

/**
 * The user-password flow as a token fetch: the first call signs in with the password; later ones use the
 * refresh token, and sign in again when it is refused or expired.
 */
export const passwordFlow = (flow: PasswordFlow): Effect.Effect<Token, AuthError, HttpClient.HttpClient> => {
  let refreshToken: Redacted.Redacted | undefined
  const hash = (): Record<string, string> =>
    flow.clientSecret === undefined ? {} : { SECRET_HASH: secretHash(flow.username, flow.clientId, flow.clientSecret) }
  const toToken = (r: AuthenticationResult): Effect.Effect<Token, AuthError> =>
    typeof r.IdToken === "string" && r.IdToken !== ""
      ? Effect.succeed({ value: Redacted.make(r.IdToken), lifetimeMs: lifetimeOf(r.ExpiresIn) })
      : Effect.fail(badResponse(endpointOf(flow.endpoint), "no IdToken in the AuthenticationResult"))
  const signIn = initiateAuth(flow, "USER_PASSWORD_AUTH", {
    USERNAME: flow.username, PASSWORD: Redacted.value(flow.password), ...hash()
  }).pipe(
    Effect.tap((r) => Effect.sync(() => {
      refreshToken = typeof r.RefreshToken === "string" ? Redacted.make(r.RefreshToken) : undefined
    })),
    Effect.flatMap(toToken),
    Effect.tap(() => Effect.logDebug("cognito: signed in with the password (USER_PASSWORD_AUTH)"))
  )
  return Effect.suspend(() => {
    const current = refreshToken
    if (current === undefined) return signIn
    return initiateAuth(flow, "REFRESH_TOKEN_AUTH", { REFRESH_TOKEN: Redacted.value(current), ...hash() }).pipe(
      Effect.flatMap(toToken),
      Effect.tap(() => Effect.logDebug("cognito: token renewed with the refresh token (REFRESH_TOKEN_AUTH)")),
      Effect.catch((e) =>
        Effect.logInfo(`cognito: refresh token not accepted (${e.reason._tag}); signing in with the password again`).pipe(
          Effect.andThen(Effect.sync(() => {
            refreshToken = undefined
          })),
          Effect.andThen(signIn)
        )
      )
    )
  })
}

export interface CognitoClientCredentials {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted
  readonly scopes: ReadonlyArray<string>
}

/** The client-credentials flow against the hosted domain's token endpoint (Basic client auth). */
export const cognitoClientCredentials = (c: CognitoClientCredentials) =>
  clientCredentials({
    tokenUrl: c.tokenUrl, clientId: c.clientId, clientSecret: c.clientSecret, clientAuth: "basic", scopes: c.scopes, extra: {}
  })
