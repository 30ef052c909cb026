/**
 * AWS Signature Version 4 for APIs behind API Gateway (or Lambda function URLs) with IAM auth, signed by
 * AWS's own signer (`@smithy/signature-v4` with `@aws-crypto/sha256-js`); credentials come from the
 * standard AWS chain (environment, shared config/credentials files and SSO, web identity, ECS/EKS container
 * credentials, EC2 instance metadata), refreshed by the chain before they expire.
 *
 * What is signed is exactly what is sent:
 * - the query is re-encoded in SigV4's canonical form (RFC 3986, `%20`, uppercase hex), which servers decode
 *   to the same values, so the canonical query the upstream computes matches;
 * - a multipart (FormData) body is serialized here, once, and its bytes (with their boundary) are hashed
 *   and sent, rather than UNSIGNED-PAYLOAD, which API Gateway does not accept;
 * - headers signed: host, the request's own headers, x-amz-date, x-amz-content-sha256 and
 *   x-amz-security-token. Cookies and the body's content type are sent unsigned.
 */
import { Context, Effect, Layer } from "effect"
import { encodeStrict, type OutgoingRequest, serializeBody } from "../Invoker/RequestBuilder.ts"
import { type AuthError, missing } from "./Errors.ts"

export interface AwsCredentialsValue {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

/** Where SigV4 gets its credentials. The live layer is the AWS SDK's default provider chain. */
export class AwsCredentials extends Context.Service<AwsCredentials, {
  readonly get: Effect.Effect<AwsCredentialsValue, AuthError>
}>()("openapi-mcp/AwsCredentials") {
  /** The standard chain, loaded on first use and memoized (it refreshes expiring credentials itself). */
  static readonly layer = Layer.sync(AwsCredentials, () => {
    let provider: Promise<() => Promise<AwsCredentialsValue>> | undefined
    const load = () =>
      (provider ??= import("@aws-sdk/credential-provider-node").then(({ defaultProvider }) => defaultProvider()))
    return AwsCredentials.of({
      get: Effect.tryPromise({
        try: () => load().then((p) => p()),
        catch: (e) =>
          missing(
            "no AWS credentials for SigV4 signing were found in the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
              `AWS_PROFILE and ~/.aws files, SSO, web identity, ECS/EKS container credentials, EC2 instance metadata): ${(e as Error).name}`
          )
      })
    })
  })

  static readonly layerTest = (credentials: AwsCredentialsValue) =>
    Layer.succeed(AwsCredentials, AwsCredentials.of({ get: Effect.succeed(credentials) }))
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Query items (`k=v`, already encoded) as decoded pairs, in order. */
export const queryPairs = (items: ReadonlyArray<string>): Array<readonly [string, string]> =>
  items.map((item) => {
    const eq = item.indexOf("=")
    return eq === -1 ? [safeDecode(item), ""] as const : [safeDecode(item.slice(0, eq)), safeDecode(item.slice(eq + 1))] as const
  })

export interface SigningOptions {
  readonly service: string
  readonly region: string
  readonly credentials: AwsCredentialsValue
  readonly signingDate: Date
}

let signerModules: Promise<readonly [typeof import("@smithy/signature-v4"), typeof import("@aws-crypto/sha256-js")]> | undefined

/**
 * AWS's signer, loaded when first needed (with its dependencies it is about a tenth of the server's code,
 * which a server without SigV4 need not load at start); `Auth` starts loading it when SigV4 is configured.
 */
export const loadSigner = () =>
  (signerModules ??= Promise.all([import("@smithy/signature-v4"), import("@aws-crypto/sha256-js")]))

/** Signs the request; returns it with the canonical query, the serialized body and the signature headers. */
export const signRequest = (request: OutgoingRequest, options: SigningOptions): Effect.Effect<OutgoingRequest> =>
  Effect.gen(function*() {
    const [{ SignatureV4 }, { Sha256 }] = yield* Effect.promise(loadSigner)
    const r = yield* serializeBody(request)
    const url = new URL(r.url)
    const pairs = queryPairs(r.query)
    const query: Record<string, string | Array<string>> = {}
    for (const [k, v] of pairs) {
      const prev = query[k]
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    const headers: Record<string, string> = { ...r.headers, host: url.host }
    const signer = new SignatureV4({
      service: options.service,
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256
    })
    const signed = yield* Effect.promise(() =>
      signer.sign({
        method: r.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port !== "" ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers,
        body: r.body?.data
      }, { signingDate: options.signingDate })
    )
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== "host") out[k.toLowerCase()] = String(v)
    return {
      ...r,
      url: `${url.origin}${url.pathname}`,
      query: pairs.map(([k, v]) => `${encodeStrict(k)}=${encodeStrict(v)}`),
      headers: out
    }
  })
