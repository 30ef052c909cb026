/**
 * Settings of the refreshed and signed outbound credentials (OAuth2 client credentials, Amazon Cognito, AWS
 * SigV4) and of the spec-driven per-scheme credentials. Read by AppConfig; kept here so the auth feature's
 * settings live beside it.
 */
import { Config, Option, type Redacted } from "effect"

export interface OAuth2Settings {
  readonly tokenUrl: Option.Option<string>
  readonly clientId: Option.Option<string>
  readonly clientSecret: Option.Option<Redacted.Redacted>
  readonly scopes: ReadonlyArray<string>
  readonly audience: Option.Option<string>
  /** How the client authenticates at the token endpoint: HTTP Basic (RFC 6749 default) or form fields. */
  readonly clientAuth: "basic" | "post" | "private_key_jwt"
  /** private_key_jwt: the client's private key (a PEM path or reference) and its key id. */
  readonly clientKey: Option.Option<Redacted.Redacted>
  readonly clientKeyId: Option.Option<string>
  /** A refresh token: access tokens come from the refresh-token grant (the user's), not client credentials. */
  readonly refreshToken: Option.Option<Redacted.Redacted>
  /**
   * How access tokens are got: the client-credentials grant (or the refresh-token grant, with a refresh token), or
   * by exchanging the token each MCP client sends (RFC 8693 token exchange, or Entra ID's on-behalf-of flow).
   */
  readonly grant: OAuth2Grant
}

export type OAuth2Grant = "client_credentials" | "token_exchange" | "on_behalf_of"

/** The grants that exchange the token of the client's request: the API is called as the client's user. */
export const exchangesCallerToken = (auth: { readonly type: string; readonly oauth2: OAuth2Settings }): boolean =>
  auth.type === "oauth2" && auth.oauth2.grant !== "client_credentials"

export interface CognitoSettings {
  readonly clientId: Option.Option<string>
  readonly clientSecret: Option.Option<Redacted.Redacted>
  readonly username: Option.Option<string>
  readonly password: Option.Option<Redacted.Redacted>
  readonly userPoolId: Option.Option<string>
  /** Explicit region; else the user pool id's prefix; else us-east-1. */
  readonly region: Option.Option<string>
  readonly domain: Option.Option<string>
  readonly scopes: ReadonlyArray<string>
  /** Overrides https://{domain}.auth.{region}.amazoncognito.com/oauth2/token (tests, custom domains). */
  readonly tokenUrl: Option.Option<string>
  /** Overrides https://cognito-idp.{region}.amazonaws.com/ (tests, VPC endpoints). */
  readonly endpoint: Option.Option<string>
}

export interface SigV4Settings {
  readonly service: string
  /** Explicit region; else AWS_REGION / AWS_DEFAULT_REGION. */
  readonly region: Option.Option<string>
}

const list = (key: string) =>
  Config.String(key).pipe(
    Config.map((s) => s.split(/[,\s]+/).map((x) => x.trim()).filter((x) => x.length > 0)),
    Config.withDefault([] as ReadonlyArray<string>)
  )
const text = (key: string) => Config.String(key).pipe(Config.option)
const secret = (key: string) => Config.Redacted(key).pipe(Config.option)

export const oauth2Config = Config.all({
  tokenUrl: text("AUTH_OAUTH2_TOKEN_URL"),
  clientId: text("AUTH_OAUTH2_CLIENT_ID"),
  clientSecret: secret("AUTH_OAUTH2_CLIENT_SECRET"),
  scopes: list("AUTH_OAUTH2_SCOPES"),
  audience: text("AUTH_OAUTH2_AUDIENCE"),
  clientAuth: Config.Literals(["basic", "post", "private_key_jwt"], "AUTH_OAUTH2_CLIENT_AUTH").pipe(Config.withDefault("basic" as const)),
  clientKey: secret("AUTH_OAUTH2_CLIENT_KEY"),
  clientKeyId: text("AUTH_OAUTH2_CLIENT_KEY_ID"),
  refreshToken: secret("AUTH_OAUTH2_REFRESH_TOKEN"),
  grant: Config.Literals(["client_credentials", "token_exchange", "on_behalf_of"], "AUTH_OAUTH2_GRANT").pipe(
    Config.withDefault("client_credentials" as const)
  )
})

export const cognitoConfig = Config.all({
  clientId: text("AUTH_COGNITO_CLIENT_ID"),
  clientSecret: secret("AUTH_COGNITO_CLIENT_SECRET"),
  username: text("AUTH_COGNITO_USERNAME"),
  password: secret("AUTH_COGNITO_PASSWORD"),
  userPoolId: text("AUTH_COGNITO_USER_POOL_ID"),
  region: text("AUTH_COGNITO_REGION"),
  domain: text("AUTH_COGNITO_DOMAIN"),
  scopes: list("AUTH_COGNITO_SCOPES"),
  tokenUrl: text("AUTH_COGNITO_TOKEN_URL"),
  endpoint: text("AUTH_COGNITO_ENDPOINT")
})

export const sigv4Config = Config.all({
  service: Config.String("AUTH_SIGV4_SERVICE").pipe(Config.withDefault("execute-api")),
  region: text("AUTH_SIGV4_REGION")
})

export const oauth2Defaults: OAuth2Settings = {
  tokenUrl: Option.none(), clientId: Option.none(), clientSecret: Option.none(), scopes: [], audience: Option.none(),
  clientAuth: "basic", clientKey: Option.none(), clientKeyId: Option.none(), refreshToken: Option.none(), grant: "client_credentials"
}
export const cognitoDefaults: CognitoSettings = {
  clientId: Option.none(), clientSecret: Option.none(), username: Option.none(), password: Option.none(),
  userPoolId: Option.none(), region: Option.none(), domain: Option.none(), scopes: [], tokenUrl: Option.none(),
  endpoint: Option.none()
}
export const sigv4Defaults: SigV4Settings = { service: "execute-api", region: Option.none() }

/** The key a security scheme name is matched by: upper case, anything but letters and digits as `_`. */
export const schemeKey = (name: string): string => name.toUpperCase().replace(/[^A-Z0-9]/g, "_")

const SCHEME_ENV = "AUTH_SCHEME_"

/**
 * Scheme credentials from the config file's `security_schemes:` section (name → reference, or name →
 * `{ value: reference }`) and from `AUTH_SCHEME_<NAME>` variables (which win), keyed by `schemeKey`.
 * Returns a message naming the entry when the section is malformed.
 */
export const schemeReferences = (
  fileSection: unknown,
  env: Readonly<Record<string, string | undefined>>,
  path: string
): Record<string, string> | string => {
  const out: Record<string, string> = {}
  if (fileSection !== undefined && fileSection !== null) {
    if (typeof fileSection !== "object" || Array.isArray(fileSection)) {
      return `config file ${path}: 'security_schemes' must map security scheme names to { value: <reference> }`
    }
    for (const [name, entry] of Object.entries(fileSection)) {
      const value = typeof entry === "string"
        ? entry
        : typeof entry === "object" && entry !== null && !Array.isArray(entry) && Object.keys(entry).every((k) => k === "value") &&
            typeof (entry as { value?: unknown }).value === "string"
        ? (entry as { value: string }).value
        : undefined
      if (value === undefined || value === "") {
        return `config file ${path}: security_schemes.${name} must be { value: "env:VAR" | "file:/path" | "secretsmanager:<arn>" | "<literal>" }`
      }
      out[schemeKey(name)] = value
    }
  }
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith(SCHEME_ENV) && key.length > SCHEME_ENV.length && value !== undefined && value !== "") {
      out[schemeKey(key.slice(SCHEME_ENV.length))] = value
    }
  }
  return out
}
