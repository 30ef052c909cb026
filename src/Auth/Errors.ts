/**
 * Auth's errors. `AuthConfigError` stops the start (bad or missing settings, unreadable secrets);
 * `AuthError` fails one call (token endpoint down, credentials refused, no credential for the operation)
 * and becomes an `isError` tool result. Messages never hold a secret or a token.
 */
import { Schema } from "effect"

export class AuthConfigError extends Schema.TaggedError<AuthConfigError>()("AuthConfigError", { message: Schema.String }) {}

/** The token endpoint (or Cognito, or the AWS credential chain) could not be reached or answered 5xx. */
export class AuthUnreachable extends Schema.TaggedError<AuthUnreachable>()("AuthUnreachable", {
  endpoint: Schema.String,
  detail: Schema.String
}) {}

/** The identity provider refused the credentials (4xx), or asked for something this server cannot give. */
export class AuthRejected extends Schema.TaggedError<AuthRejected>()("AuthRejected", {
  endpoint: Schema.String,
  status: Schema.Number,
  detail: Schema.String
}) {}

/** The identity provider answered, but not with a usable token. */
export class AuthBadResponse extends Schema.TaggedError<AuthBadResponse>()("AuthBadResponse", {
  endpoint: Schema.String,
  detail: Schema.String
}) {}

/** No credential is configured (or found) for what the operation needs. */
export class AuthMissing extends Schema.TaggedError<AuthMissing>()("AuthMissing", { detail: Schema.String }) {}

export type AuthReason = AuthUnreachable | AuthRejected | AuthBadResponse | AuthMissing

export class AuthError extends Schema.TaggedError<AuthError>()("AuthError", {
  reason: Schema.Union([AuthUnreachable, AuthRejected, AuthBadResponse, AuthMissing])
}) {
  /** One sentence for the model and the operator: what failed, where, what to do. */
  get text(): string {
    const r = this.reason
    switch (r._tag) {
      case "AuthUnreachable":
        return `could not get a credential: ${r.endpoint} could not be reached (${r.detail}); the API was not called. Try again later.`
      case "AuthRejected":
        return `could not get a credential: ${r.endpoint} refused the configured credentials (HTTP ${r.status}${r.detail ? `: ${r.detail}` : ""}); the API was not called. The server's auth settings need fixing.`
      case "AuthBadResponse":
        return `could not get a credential: ${r.endpoint} answered without a usable token (${r.detail}); the API was not called.`
      case "AuthMissing":
        return `no credential for this operation: ${r.detail}; the API was not called.`
    }
  }
}

export const unreachable = (endpoint: string, detail: string) => new AuthError({ reason: new AuthUnreachable({ endpoint, detail }) })
export const rejected = (endpoint: string, status: number, detail: string) =>
  new AuthError({ reason: new AuthRejected({ endpoint, status, detail }) })
export const badResponse = (endpoint: string, detail: string) => new AuthError({ reason: new AuthBadResponse({ endpoint, detail }) })
export const missing = (detail: string) => new AuthError({ reason: new AuthMissing({ detail }) })
