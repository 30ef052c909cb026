/**
 * Auth: adds the upstream credential to each outgoing request.
 *
 * - Global (`--auth-type`): none, basic, bearer, api_key (header, query or cookie), oauth2 (client
 *   credentials, token refreshed before expiry), cognito (client-credentials or user-password flow, refreshed)
 *   and sigv4 (AWS Signature V4 with the standard credential chain).
 * - Spec-driven: credentials configured per `components.securitySchemes` entry (config file
 *   `security_schemes:` or `AUTH_SCHEME_<NAME>`) are sent as the operation's `security` requirement says:
 *   the first alternative whose schemes all have a credential. When no scheme credential was sent, the global
 *   credential is. An operation that needs a scheme nobody configured fails with a clear tool error (only
 *   when scheme credentials are configured at all; otherwise the request goes as it is and the API decides).
 *
 * Secrets are resolved once at start (`env:`, `file:`, `secretsmanager:` references or literals) and stay
 * `Redacted` until written into a request; they never reach logs, errors or tool results.
 */
import { Clock, Context, Duration, Effect, Exit, Layer, Option, Redacted } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { AppConfig, type Settings } from "./AppConfig.ts"
import { cognitoClientCredentials, cognitoRegion, hostedTokenUrl, idpEndpoint, passwordFlow } from "./Auth/Cognito.ts"
import { loadClientTls, pemReference } from "./Auth/ClientCert.ts"
import { AuthConfigError, type AuthError, missing } from "./Auth/Errors.ts"
import {
  type AssertionKey, assertionKeyOf, clientCredentials, endpointOf, exchangeToken, keptRefreshToken, refreshTokenGrant
} from "./Auth/OAuth2.ts"
import { parseSecretRef, type Secret, Secrets } from "./Auth/Secrets.ts"
import { describeRequirements } from "./Auth/Requirements.ts"
import { schemeKey } from "./Auth/Settings.ts"
import { AwsCredentials, loadSigner, signRequest } from "./Auth/SigV4.ts"
import { makeTokenSource, refreshMarginMs, type Token } from "./Auth/Token.ts"
import type { SecurityRequirement, SecurityRequirementEntry, Tool } from "./domain/Tool.ts"
import { encodeStrict, type OutgoingRequest } from "./Invoker/RequestBuilder.ts"
import { cached } from "./ResponseCache.ts"
import { ToolCatalog } from "./ToolCatalog.ts"

export { AuthConfigError, AuthError } from "./Auth/Errors.ts"

/** One way of adding a credential, and of renewing it after the upstream refused it. */
interface Credential {
  readonly apply: (request: OutgoingRequest, tool: Tool) => Effect.Effect<OutgoingRequest, AuthError>
  /** The upstream answered 401 to `sent`: true when renewing made sending again worthwhile. */
  readonly refresh: (sent: OutgoingRequest) => Effect.Effect<boolean>
}

export const withHeader = (r: OutgoingRequest, name: string, value: string): OutgoingRequest =>
  ({ ...r, headers: { ...r.headers, [name.toLowerCase()]: value } })
const withQuery = (r: OutgoingRequest, name: string, value: string): OutgoingRequest =>
  ({ ...r, query: [...r.query, `${encodeStrict(name)}=${encodeStrict(value)}`] })
const withCookie = (r: OutgoingRequest, name: string, value: string): OutgoingRequest =>
  ({ ...r, cookies: [...r.cookies, [name, encodeStrict(value)] as const] })
const placeApiKey = (r: OutgoingRequest, place: ApiKeyPlace, value: string): OutgoingRequest =>
  place.in === "header" ? withHeader(r, place.name, value) : place.in === "query" ? withQuery(r, place.name, value) : withCookie(r, place.name, value)
const basic = (userColonPassword: string) => `Basic ${Buffer.from(userColonPassword).toString("base64")}`

interface ApiKeyPlace {
  readonly name: string
  readonly in: "header" | "query" | "cookie"
}

const specPlaces = new WeakMap<Tool, ApiKeyPlace | null>()
/**
 * Where the operation's security requirement puts an API key: its first alternative that is one apiKey scheme
 * (an alternative of two keys, or of a key and a token, needs credentials of its own). Null when it has none.
 */
const specApiKeyPlace = (tool: Tool): ApiKeyPlace | null => {
  let place = specPlaces.get(tool)
  if (place === undefined) {
    const definition = tool.security?.find((alt) => alt.length === 1 && alt[0]!.definition.type === "apiKey")?.[0]!.definition
    place = definition?.type === "apiKey" ? { name: definition.name, in: definition.in } : null
    specPlaces.set(tool, place)
  }
  return place
}

/** A secret value that can be read again when the upstream refuses it (rotated file or Secrets Manager secret). */
const rotating = (secret: Secret, setting: string) => {
  let value = secret.value
  return {
    current: () => Redacted.value(value),
    reread: (): Effect.Effect<boolean> =>
      secret.reread === undefined ? Effect.succeed(false) : secret.reread().pipe(
        Effect.map((next) => {
          const changed = Redacted.value(next) !== Redacted.value(value)
          value = next
          return changed
        }),
        Effect.tap((changed) => changed ? Effect.logInfo(`${setting}: the secret changed (rotated); using the new value`) : Effect.void),
        Effect.catch((e) => Effect.logWarning(`${setting}: ${e.message}`).pipe(Effect.as(false)))
      )
  }
}
type Rotating = ReturnType<typeof rotating>

/**
 * The OAuth token of the MCP client's request, for a call (over HTTP with client OAuth, when a grant exchanges it);
 * undefined otherwise.
 */
export const CallerToken = Context.Reference<string | undefined>("openapi-mcp/Auth/CallerToken", { defaultValue: () => undefined })

/**
 * A credential sent as `Authorization: Bearer <token>`, the token got in exchange for the caller's (`exchange`):
 * one exchange per caller token until the token got expires (up to 1,000 callers kept); after a 401 that caller's
 * token is exchanged again.
 */
const exchangedBearer = (exchange: (subject: Redacted.Redacted) => Effect.Effect<Token, AuthError>): Effect.Effect<Credential> =>
  Effect.gen(function*() {
    // a refused token is left behind by moving its caller to a new key
    const renewed = new Map<string, number>()
    const keyOf = (caller: string) => `${renewed.get(caller) ?? 0} ${caller}`
    const lookup = yield* cached((key: string) => exchange(Redacted.make(key.slice(key.indexOf(" ") + 1))), {
      capacity: 1000,
      timeToLive: (exit) =>
        Exit.isSuccess(exit) ? Duration.millis(Math.max(0, exit.value.lifetimeMs - refreshMarginMs(exit.value.lifetimeMs))) : Duration.zero
    })
    const noCaller = missing("this server exchanges the OAuth token of the client's request for one to the API (AUTH_OAUTH2_GRANT), and this call came without one")
    return {
      apply: (r) =>
        Effect.withFiber((fiber) => {
          const caller = fiber.getRef(CallerToken)
          return caller === undefined
            ? Effect.fail(noCaller)
            : Effect.map(lookup(keyOf(caller)), (token) => withHeader(r, "authorization", `Bearer ${Redacted.value(token.value)}`))
        }),
      refresh: () =>
        Effect.withFiber((fiber) => {
          const caller = fiber.getRef(CallerToken)
          if (caller === undefined) return Effect.succeed(false)
          if (renewed.size >= 1000) renewed.clear()
          renewed.set(caller, (renewed.get(caller) ?? 0) + 1)
          return Effect.succeed(true)
        })
    }
  })

/** A credential sent as `Authorization: Bearer <token>` from a refreshed token source. */
const bearerFromTokens = (fetch: Effect.Effect<Token, AuthError>): Effect.Effect<Credential> =>
  Effect.map(makeTokenSource(fetch), (source) => ({
    apply: (r) => Effect.map(source.get, (token) => withHeader(r, "authorization", `Bearer ${Redacted.value(token)}`)),
    refresh: (sent) => source.refused((sent.headers["authorization"] ?? "").replace(/^Bearer /, ""))
  }))

export class Auth extends Context.Service<Auth, {
  /** Returns the request with the credential the tool's operation needs. */
  readonly apply: (request: OutgoingRequest, tool: Tool) => Effect.Effect<OutgoingRequest, AuthError>
  /**
   * The upstream answered 401 to `sent`: renews what can be renewed (drops a refused token, re-reads a
   * rotated secret). True when applying and sending again may succeed.
   */
  readonly refresh: (sent: OutgoingRequest, tool: Tool) => Effect.Effect<boolean>
  /**
   * For a 401 or 403 the API gave the tool's call: which credential was sent (by setting, never its value),
   * or what the operation needs when none was, so the user learns what to configure.
   */
  readonly refused: (tool: Tool, status: number) => string
}>()("openapi-mcp/Auth") {
  /** Builds the credentials from the settings; fails with AuthConfigError on missing settings or unreadable secrets. */
  /** `callerTokens`: clients send OAuth tokens this server validates (MCP_OAUTH_JWKS_URL), which a grant may exchange. */
  static readonly make = (
    auth: Settings["auth"],
    options: { readonly callerTokens: boolean } = { callerTokens: false }
  ): Effect.Effect<Auth["Service"], AuthConfigError, Secrets | HttpClient.HttpClient | AwsCredentials> =>
    Effect.gen(function*() {
      const secrets = yield* Secrets
      const http = yield* HttpClient.HttpClient
      const aws = yield* AwsCredentials
      const configError = (message: string) => new AuthConfigError({ message })
      const need = <A>(value: Option.Option<A>, flag: string, env: string): Effect.Effect<A, AuthConfigError> =>
        Option.match(value, {
          onNone: () => Effect.fail(configError(`--auth-type ${auth.type} needs --${flag} (or ${env})`)),
          onSome: Effect.succeed
        })
      const resolve = (value: Redacted.Redacted, setting: string) =>
        secrets.resolve(Redacted.value(value), setting).pipe(Effect.mapError((e) => configError(e.message)))
      const needSecret = (value: Option.Option<Redacted.Redacted>, flag: string, env: string) =>
        need(value, flag, env).pipe(Effect.flatMap((v) => resolve(v, `--${flag} (${env})`)))
      const httpUrl = (url: string, flag: string, env: string) =>
        Effect.gen(function*() {
          let ok = false
          try {
            ok = /^https?:$/.test(new URL(url).protocol)
          } catch {
            ok = false
          }
          if (!ok) return yield* configError(`--${flag} (${env}) must be an http(s) URL`)
          return url
        })
      const withHttp = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
        Effect.provideService(effect, HttpClient.HttpClient, http)
      const logged = (what: string, endpoint: string) => (fetch: Effect.Effect<Token, AuthError>) =>
        fetch.pipe(Effect.tap((t) =>
          Effect.logInfo(`${what}: token obtained from ${endpoint}, valid for ${Math.round(t.lifetimeMs / 1000)} s`)
        ))

      const staticCredential = (place: (r: OutgoingRequest, tool: Tool) => OutgoingRequest, secret: Rotating): Credential => ({
        apply: (r, tool) => Effect.succeed(place(r, tool)),
        refresh: () => secret.reread()
      })

      // The global credential (--auth-type)
      let global: Credential | undefined
      switch (auth.type) {
        case "none":
          break
        case "basic": {
          const user = yield* need(auth.username, "auth-username", "AUTH_USERNAME")
          const password = rotating(yield* needSecret(auth.password, "auth-password", "AUTH_PASSWORD"), "AUTH_PASSWORD")
          global = staticCredential((r) => withHeader(r, "authorization", basic(`${user}:${password.current()}`)), password)
          break
        }
        case "bearer": {
          const token = rotating(yield* needSecret(auth.token, "auth-token", "AUTH_TOKEN"), "AUTH_TOKEN")
          global = staticCredential((r) => withHeader(r, "authorization", `Bearer ${token.current()}`), token)
          break
        }
        case "api_key": {
          const key = rotating(yield* needSecret(auth.apiKey, "auth-api-key", "AUTH_API_KEY"), "AUTH_API_KEY")
          const fixed: ApiKeyPlace = { name: Option.getOrElse(auth.apiKeyName, () => "api_key"), in: Option.getOrElse(auth.apiKeyIn, () => "header" as const) }
          // neither name nor place given: where the operation's own apiKey scheme says, else the default
          const placeOf = Option.isSome(auth.apiKeyName) || Option.isSome(auth.apiKeyIn) ? () => fixed : (tool: Tool) => specApiKeyPlace(tool) ?? fixed
          global = staticCredential((r, tool) => placeApiKey(r, placeOf(tool), key.current()), key)
          break
        }
        case "oauth2": {
          const o = auth.oauth2
          const tokenUrl = yield* httpUrl(yield* need(o.tokenUrl, "auth-oauth2-token-url", "AUTH_OAUTH2_TOKEN_URL"), "auth-oauth2-token-url", "AUTH_OAUTH2_TOKEN_URL")
          const clientId = yield* need(o.clientId, "auth-oauth2-client-id", "AUTH_OAUTH2_CLIENT_ID")
          const grant = o.grant
          const signed = o.clientAuth === "private_key_jwt"
          const userGrant = grant !== "client_credentials" || Option.isSome(o.refreshToken)
          // the client-credentials grant needs the client's secret (or key); the others also serve public clients
          const clientSecret = !userGrant && !signed
            ? (yield* needSecret(o.clientSecret, "auth-oauth2-client-secret", "AUTH_OAUTH2_CLIENT_SECRET")).value
            : Option.isSome(o.clientSecret) && !signed
            ? (yield* resolve(o.clientSecret.value, "--auth-oauth2-client-secret (AUTH_OAUTH2_CLIENT_SECRET)")).value
            : undefined
          let assertionKey: AssertionKey | undefined
          if (signed) {
            const pem = yield* needSecret(
              Option.map(o.clientKey, (k) => Redacted.make(pemReference(Redacted.value(k)))), "auth-oauth2-client-key", "AUTH_OAUTH2_CLIENT_KEY"
            )
            const key = assertionKeyOf(Redacted.value(pem.value), Option.getOrUndefined(o.clientKeyId))
            if (typeof key === "string") return yield* configError(key)
            assertionKey = key
          }
          const request = {
            tokenUrl, clientId, clientSecret, clientAuth: o.clientAuth, assertionKey, scopes: o.scopes,
            extra: Option.isSome(o.audience) ? { audience: o.audience.value } : {}
          }
          if (grant !== "client_credentials") {
            if (!options.callerTokens) {
              return yield* configError(
                `AUTH_OAUTH2_GRANT=${grant} exchanges the OAuth token each MCP client sends, so clients must send one: ` +
                  "serve HTTP with client OAuth (MCP_OAUTH_JWKS_URL, MCP_OAUTH_ISSUER, MCP_OAUTH_AUDIENCE)"
              )
            }
            if (Option.isSome(o.refreshToken)) return yield* configError(`AUTH_OAUTH2_GRANT=${grant} and AUTH_OAUTH2_REFRESH_TOKEN exclude each other`)
            global = yield* exchangedBearer((subject) => withHttp(exchangeToken(request, subject, grant)))
            yield* Effect.logInfo(`oauth2 (${grant}): each client's token is exchanged at ${endpointOf(tokenUrl)} for one to the API`)
          } else if (Option.isSome(o.refreshToken)) {
            const refresh = yield* keptRefreshToken(
              (yield* resolve(o.refreshToken.value, "--auth-oauth2-refresh-token (AUTH_OAUTH2_REFRESH_TOKEN)")).value,
              parseSecretRef(Redacted.value(o.refreshToken.value))
            )
            global = yield* bearerFromTokens(withHttp(Effect.suspend(() => refreshTokenGrant(request, refresh.current()))).pipe(
              Effect.tap(({ rotated }) => rotated === undefined ? Effect.void : refresh.replace(rotated)),
              Effect.map(({ token }) => token),
              logged("oauth2 (refresh token)", endpointOf(tokenUrl))
            ))
          } else {
            global = yield* bearerFromTokens(withHttp(clientCredentials(request)).pipe(logged("oauth2", endpointOf(tokenUrl))))
          }
          break
        }
        case "cognito": {
          const c = auth.cognito
          const region = cognitoRegion(c)
          const clientId = yield* need(c.clientId, "auth-cognito-client-id", "AUTH_COGNITO_CLIENT_ID")
          const clientSecret = Option.isSome(c.clientSecret)
            ? Option.some((yield* resolve(c.clientSecret.value, "--auth-cognito-client-secret (AUTH_COGNITO_CLIENT_SECRET)")).value)
            : Option.none()
          if (Option.isSome(c.username) || Option.isSome(c.password)) {
            const username = yield* need(c.username, "auth-cognito-username", "AUTH_COGNITO_USERNAME")
            const password = yield* needSecret(c.password, "auth-cognito-password", "AUTH_COGNITO_PASSWORD")
            const endpoint = yield* httpUrl(Option.getOrElse(c.endpoint, () => idpEndpoint(region)), "auth-cognito-endpoint", "AUTH_COGNITO_ENDPOINT")
            global = yield* bearerFromTokens(withHttp(passwordFlow({
              endpoint, clientId, clientSecret: Option.getOrUndefined(clientSecret), username, password: password.value
            })).pipe(logged("cognito (user-password flow)", endpointOf(endpoint))))
          } else if (Option.isSome(clientSecret) && (Option.isSome(c.domain) || Option.isSome(c.tokenUrl))) {
            const tokenUrl = yield* httpUrl(
              Option.getOrElse(c.tokenUrl, () => hostedTokenUrl(Option.getOrThrow(c.domain), region)),
              "auth-cognito-token-url", "AUTH_COGNITO_TOKEN_URL"
            )
            global = yield* bearerFromTokens(withHttp(cognitoClientCredentials({
              tokenUrl, clientId, clientSecret: clientSecret.value, scopes: c.scopes
            })).pipe(logged("cognito (client-credentials flow)", endpointOf(tokenUrl))))
          } else {
            return yield* configError(
              "--auth-type cognito needs either --auth-cognito-username and --auth-cognito-password (user-password flow) " +
                "or --auth-cognito-client-secret and --auth-cognito-domain (client-credentials flow), besides --auth-cognito-client-id"
            )
          }
          break
        }
        case "sigv4": {
          const region = yield* need(auth.sigv4.region, "auth-sigv4-region", "AUTH_SIGV4_REGION or AWS_REGION")
          const service = auth.sigv4.service
          void loadSigner() // in the background: the first call should not wait for it
          global = {
            apply: (r) =>
              Effect.gen(function*() {
                const credentials = yield* aws.get
                const now = yield* Clock.currentTimeMillis
                return yield* signRequest(r, { service, region, credentials, signingDate: new Date(now) })
              }),
            // the credential chain renews expiring credentials itself; a 401 means a policy problem
            refresh: () => Effect.succeed(false)
          }
          break
        }
      }

      // Mutual TLS: the client certificate every call's connection presents when the API asks for one
      const identity = yield* loadClientTls(auth, (value, setting) => Effect.map(resolve(value, setting), (s) => Redacted.value(s.value)))

      // Spec-driven scheme credentials, resolved once
      const schemes = new Map<string, Rotating>()
      for (const [key, reference] of Object.entries(auth.schemes)) {
        const setting = `security scheme credential AUTH_SCHEME_${key}`
        const secret = yield* secrets.resolve(reference, setting).pipe(Effect.mapError((e) => configError(e.message)))
        schemes.set(key, rotating(secret, setting))
      }
      if (schemes.size > 0) {
        yield* Effect.logInfo(`credentials configured for security schemes: ${[...schemes.keys()].join(", ")}`)
      }

      // Headers for every request (API_HEADERS), resolved once; sent before the credential, which wins a clash
      const fixed: Array<readonly [string, string]> = []
      for (const [name, reference] of Object.entries(auth.headers)) {
        const secret = yield* secrets.resolve(reference, `header ${name} (API_HEADERS)`).pipe(Effect.mapError((e) => configError(e.message)))
        fixed.push([name.toLowerCase(), Redacted.value(secret.value)])
      }
      if (fixed.length > 0) yield* Effect.logInfo(`headers sent with every request: ${Object.keys(auth.headers).join(", ")}`)
      const withFixed = (r: OutgoingRequest): OutgoingRequest => {
        const headers = { ...r.headers }
        for (const [name, value] of fixed) headers[name] = value
        return { ...r, headers }
      }

      const usable = (e: SecurityRequirementEntry) =>
        e.definition.type === "mutualTLS" ? identity !== undefined : e.definition.type !== "unsupported" && schemes.has(schemeKey(e.scheme))

      /** The alternative whose scheme credentials are sent: the first non-empty one fully configured. */
      const chosen = (tool: Tool): SecurityRequirement | undefined =>
        schemes.size === 0 || tool.security === undefined ? undefined : tool.security.find((alt) => alt.length > 0 && alt.every(usable))

      const place = (r: OutgoingRequest, e: SecurityRequirementEntry): OutgoingRequest => {
        const d = e.definition
        if (d.type === "mutualTLS") return r // the connection's certificate (below)
        const value = schemes.get(schemeKey(e.scheme))!.current()
        switch (d.type) {
          case "apiKey":
            return placeApiKey(r, d, value)
          case "http":
            return withHeader(r, "authorization",
              d.scheme === "basic" ? basic(value) : d.scheme === "bearer" ? `Bearer ${value}` : `${d.scheme[0]!.toUpperCase()}${d.scheme.slice(1)} ${value}`)
          default:
            // oauth2 / openIdConnect with a configured token: sent as a bearer token
            return withHeader(r, "authorization", `Bearer ${value}`)
        }
      }

      // on every tool call: a suspended function rather than a generator, which cost more than the rest
      const apply = (original: OutgoingRequest, tool: Tool): Effect.Effect<OutgoingRequest, AuthError> =>
        Effect.suspend(() => {
          const headed = fixed.length === 0 ? original : withFixed(original)
          const request = identity === undefined ? headed : { ...headed, tls: identity }
          const alternative = chosen(tool)
          if (alternative !== undefined) return Effect.succeed(alternative.reduce(place, request))
          const security = tool.security
          const needsSomething = security !== undefined && security.length > 0 && security.every((alt) => alt.length > 0)
          if (global === undefined && schemes.size > 0 && needsSomething) {
            const names = [...new Set(security.flat().map((e) => e.scheme))]
            return Effect.fail(missing(
              `${tool.operationId} needs one of: ${describeRequirements(security)}. ` +
                `Configure ${names.map((n) => `security_schemes.${n}`).join(" or ")} in the config file ` +
                `(or ${names.map((n) => `AUTH_SCHEME_${schemeKey(n)}`).join(" / ")})` +
                (security.flat().some((e) => e.definition.type === "mutualTLS") ? "; a mutualTLS scheme needs AUTH_CLIENT_CERT and AUTH_CLIENT_KEY" : "")
            ))
          }
          return global === undefined ? Effect.succeed(request) : global.apply(request, tool)
        })

      const refresh = Effect.fn("Auth.refresh")(function*(sent: OutgoingRequest, tool: Tool) {
        const alternative = chosen(tool)
        if (alternative !== undefined) {
          const changed = yield* Effect.forEach(alternative, (e) => schemes.get(schemeKey(e.scheme))!.reread())
          return changed.some((c) => c)
        }
        return global === undefined ? false : yield* global.refresh(sent)
      })

      const refused = (tool: Tool, status: number): string => {
        const alternative = chosen(tool)
        const sent = alternative !== undefined
          ? `the credential${alternative.length > 1 ? "s" : ""} configured for ${alternative.map((e) => `${e.scheme} (AUTH_SCHEME_${schemeKey(e.scheme)})`).join(" and ")}`
          : global !== undefined ? `the --auth-type ${auth.type} credential` : identity !== undefined ? "the client certificate (AUTH_CLIENT_CERT)" : undefined
        const needs = tool.security !== undefined && tool.security.some((alt) => alt.length > 0)
          ? `This operation needs ${describeRequirements(tool.security.filter((alt) => alt.length > 0))}`
          : undefined
        if (sent === undefined) {
          return needs !== undefined
            ? `${needs}; no credential for it is configured (AUTH_SCHEME_<NAME> for a scheme, or --auth-type).`
            : "No credential is configured; if the API needs one, set --auth-type (or AUTH_SCHEME_<NAME> for a scheme of the spec)."
        }
        return `The API refused ${sent}: ${status === 401 ? "it may be wrong or expired" : "it may lack a permission for this operation"}.` +
          (needs !== undefined ? ` ${needs}.` : "")
      }

      return Auth.of({ apply, refresh, refused })
    })

  /** Needs AppConfig, Secrets, an HttpClient (token endpoints) and AwsCredentials. */
  static readonly layerNoDeps = Layer.effect(Auth, Effect.gen(function*() {
    const config = yield* AppConfig
    const options = { callerTokens: Option.isSome(config.inbound.oauth.jwksUrl) }
    const main = yield* Auth.make(config.auth, options)
    const catalog = yield* ToolCatalog
    if (catalog.specCredentials.size === 0) return main
    // additional specs with credentials of their own (ADDITIONAL_SPECS auth_*): their tools use those
    const own = new Map<string, Auth["Service"]>()
    for (const [name, settings] of catalog.specCredentials) own.set(name, yield* Auth.make(settings, options))
    const pick = (tool: Tool) => (tool.spec !== undefined ? own.get(tool.spec) : undefined) ?? main
    return Auth.of({
      apply: (request, tool) => pick(tool).apply(request, tool),
      refresh: (sent, tool) => pick(tool).refresh(sent, tool),
      refused: (tool, status) => pick(tool).refused(tool, status)
    })
  }))

  /** Live: secrets from env/files/Secrets Manager, token endpoints over fetch, the AWS credential chain. */
  static readonly layer = Auth.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(Secrets.layer, FetchHttpClient.layer, AwsCredentials.layer))
  )
}
