/**
 * Mutual TLS to the upstream API: the client certificate (and its private key) that a call's connection presents
 * when the API asks for one (AUTH_CLIENT_CERT, AUTH_CLIENT_KEY, AUTH_CLIENT_KEY_PASSPHRASE), as Kubernetes API
 * servers, service meshes and open-banking APIs do. Read and checked once at start: a key that is not the
 * certificate's, an encrypted key without its passphrase, or a file that is not PEM stops the start with a message
 * naming the setting (never a value). Connections are pooled per certificate (Upstream/Transport.ts).
 */
import { Clock, Effect, Option, Redacted } from "effect"
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto"
import type { Settings } from "../AppConfig.ts"
import { AuthConfigError } from "./Errors.ts"

/** What a connection presents: PEM text of the certificate (its chain may follow) and of the key. */
export interface ClientTls {
  /** The same for the same certificate and key: connections are pooled per identity. */
  readonly id: string
  readonly cert: string
  readonly key: string
  readonly passphrase?: string
}

/** A checked client identity, and what the start log and `check` may say of it (no secret). */
export interface ClientIdentity {
  readonly tls: ClientTls
  /** The certificate's subject common name (or whole subject). */
  readonly subject: string
  readonly validTo: Date
  readonly validFrom: Date
}

const PRIVATE_KEY = /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/

/**
 * Where a certificate or key setting's PEM is: a secret reference as any other (`env:`, `file:`,
 * `secretsmanager:`, `literal:`), PEM text itself, or else a file's path.
 */
export const pemReference = (value: string): string =>
  /^(?:env|file|secretsmanager|literal):/.test(value) || value.includes("-----BEGIN") ? value : `file:${value}`

/**
 * Checks the PEM texts and makes the identity; a message naming the setting when they are unusable. The key may
 * be in the certificate's file (one PEM holding both).
 */
export const clientIdentity = (
  cert: string,
  key: string | undefined,
  passphrase: string | undefined
): ClientIdentity | string => {
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch {
    return "AUTH_CLIENT_CERT (--auth-client-cert) holds no PEM certificate (-----BEGIN CERTIFICATE-----); " +
      "convert a .p12/.pfx file with: openssl pkcs12 -in client.p12 -out client.pem -nodes"
  }
  const keyPem = key ?? (PRIVATE_KEY.test(cert) ? cert : undefined)
  const keySetting = key === undefined ? "AUTH_CLIENT_CERT (--auth-client-cert)" : "AUTH_CLIENT_KEY (--auth-client-key)"
  if (keyPem === undefined) {
    return "AUTH_CLIENT_CERT (--auth-client-cert) is set but not its private key: set AUTH_CLIENT_KEY (--auth-client-key), or give one PEM file holding both"
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(passphrase === undefined ? { key: keyPem } : { key: keyPem, passphrase })
  } catch {
    if (!PRIVATE_KEY.test(keyPem)) return `${keySetting} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`
    if (ENCRYPTED.test(keyPem)) {
      return passphrase === undefined
        ? `the private key in ${keySetting} is encrypted: set AUTH_CLIENT_KEY_PASSPHRASE (--auth-client-key-passphrase)`
        : `the private key in ${keySetting} cannot be decrypted with AUTH_CLIENT_KEY_PASSPHRASE (--auth-client-key-passphrase): is it the right passphrase?`
    }
    return `the private key in ${keySetting} cannot be read (not a PEM key OpenSSL knows)`
  }
  if (!x509.checkPrivateKey(privateKey)) {
    return `the private key in ${keySetting} is not the key of the certificate in AUTH_CLIENT_CERT (--auth-client-cert)`
  }
  const id = createHash("sha256").update(cert).update("\0").update(keyPem).digest("base64url").slice(0, 16)
  const cn = /^CN=(.*)$/m.exec(x509.subject)?.[1]
  return {
    tls: passphrase === undefined ? { id, cert, key: keyPem } : { id, cert, key: keyPem, passphrase },
    subject: cn ?? x509.subject.replace(/\n/g, ", "),
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo)
  }
}

/**
 * The client identity the settings configure, read through `read` (a secret reference and the setting's name, to
 * the text) and checked; undefined when none is configured. Logs the certificate's subject and validity.
 */
export const loadClientTls = <E extends { readonly message: string }>(
  auth: Settings["auth"],
  read: (reference: Redacted.Redacted, setting: string) => Effect.Effect<string, E>
): Effect.Effect<ClientTls | undefined, AuthConfigError | E> =>
  Effect.gen(function*() {
    const pem = (value: Option.Option<Redacted.Redacted>, setting: string) =>
      Option.isNone(value) ? Effect.succeed(undefined) : read(Redacted.make(pemReference(Redacted.value(value.value))), setting)
    const cert = yield* pem(auth.clientCert, "--auth-client-cert (AUTH_CLIENT_CERT)")
    const key = yield* pem(auth.clientKey, "--auth-client-key (AUTH_CLIENT_KEY)")
    const passphrase = Option.isNone(auth.clientKeyPassphrase)
      ? undefined
      : yield* read(auth.clientKeyPassphrase.value, "--auth-client-key-passphrase (AUTH_CLIENT_KEY_PASSPHRASE)")
    if (cert === undefined) {
      if (key === undefined && passphrase === undefined) return undefined
      return yield* new AuthConfigError({
        message: "AUTH_CLIENT_KEY (--auth-client-key) and its passphrase need AUTH_CLIENT_CERT (--auth-client-cert), the certificate they belong to"
      })
    }
    const checked = clientIdentity(cert, key, passphrase)
    if (typeof checked === "string") return yield* new AuthConfigError({ message: checked })
    const now = yield* Clock.currentTimeMillis
    const valid = `valid from ${checked.validFrom.toISOString()} to ${checked.validTo.toISOString()}`
    if (checked.validTo.getTime() < now || checked.validFrom.getTime() > now) {
      yield* Effect.logWarning(`the client certificate (AUTH_CLIENT_CERT) for ${checked.subject} is not valid now (${valid}): APIs will refuse it`)
    } else {
      yield* Effect.logInfo(`calls present the client certificate for ${checked.subject} when the API asks for one (mutual TLS; ${valid})`)
    }
    return checked.tls
  })
