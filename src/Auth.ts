/**
 * Auth: adds the upstream credential to each outgoing request. Static kinds: none, basic, bearer, and
 * api_key in a header, a query parameter or a cookie (all three really sent). Credentials stay `Redacted`
 * until the moment they are written into the request; they never reach logs, errors or tool results.
 */
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { AppConfig, type Settings } from "./AppConfig.ts"
import { encodeStrict, type OutgoingRequest } from "./Invoker/RequestBuilder.ts"

export class AuthConfigError extends Schema.TaggedError<AuthConfigError>()("AuthConfigError", { message: Schema.String }) {}

export class Auth extends Context.Service<Auth, {
  /** Returns the request with the credential added. */
  readonly apply: (request: OutgoingRequest) => OutgoingRequest
}>()("openapi-mcp/Auth") {
  static readonly make = (auth: Settings["auth"]): Effect.Effect<Auth["Service"], AuthConfigError> => Effect.gen(function*() {
    const need = <A>(value: Option.Option<A>, flag: string, env: string): Effect.Effect<A, AuthConfigError> =>
      Option.match(value, {
        onNone: () => Effect.fail(new AuthConfigError({ message: `--auth-type ${auth.type} needs --${flag} (or ${env})` })),
        onSome: Effect.succeed
      })
    switch (auth.type) {
      case "none":
        return { apply: (r) => r }
      case "basic": {
        const user = yield* need(auth.username, "auth-username", "AUTH_USERNAME")
        const password = yield* need(auth.password, "auth-password", "AUTH_PASSWORD")
        const header = Redacted.make(`Basic ${Buffer.from(`${user}:${Redacted.value(password)}`).toString("base64")}`)
        return { apply: (r) => ({ ...r, headers: { ...r.headers, authorization: Redacted.value(header) } }) }
      }
      case "bearer": {
        const token = yield* need(auth.token, "auth-token", "AUTH_TOKEN")
        return { apply: (r) => ({ ...r, headers: { ...r.headers, authorization: `Bearer ${Redacted.value(token)}` } }) }
      }
      case "api_key": {
        const key = yield* need(auth.apiKey, "auth-api-key", "AUTH_API_KEY")
        const name = auth.apiKeyName
        switch (auth.apiKeyIn) {
          case "header":
            return { apply: (r) => ({ ...r, headers: { ...r.headers, [name.toLowerCase()]: Redacted.value(key) } }) }
          case "query":
            return { apply: (r) => ({ ...r, query: [...r.query, `${encodeStrict(name)}=${encodeStrict(Redacted.value(key))}`] }) }
          case "cookie":
            return { apply: (r) => ({ ...r, cookies: [...r.cookies, [name, encodeStrict(Redacted.value(key))] as const] }) }
        }
      }
      // falls through only for the kinds below
      case "oauth2":
      case "cognito":
      case "sigv4":
        return yield* new AuthConfigError({
          message: `--auth-type ${auth.type} is not available yet in this version; use none, basic, bearer or api_key`
        })
    }
  })

  static readonly layer = Layer.effect(Auth, Effect.gen(function*() {
    return yield* Auth.make((yield* AppConfig).auth)
  }))
}
