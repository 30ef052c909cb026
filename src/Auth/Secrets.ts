/**
 * Secrets: resolves secret references, once at start, into `Redacted` values. A secret setting (any
 * `--auth-*` secret, `MCP_AUTH_TOKEN`, a `security_schemes` value or `AUTH_SCHEME_<NAME>`) may be:
 *
 * - `env:NAME`: the environment variable NAME;
 * - `file:/path`: the file's content (one trailing newline dropped), e.g. a mounted Kubernetes/ECS secret;
 * - `secretsmanager:<arn>` or `secretsmanager:<arn>#<key>`: an AWS Secrets Manager secret (its SecretString,
 *   or one key of a JSON secret), fetched with the standard AWS credential chain;
 * - `literal:<text>`, or any other text: the value itself.
 *
 * File and Secrets Manager values can be read again (`reread`) when the upstream refuses them (rotation).
 * Error messages name the reference and the setting, never the value.
 */
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { readFile } from "node:fs/promises"

export class SecretError extends Schema.TaggedError<SecretError>()("SecretError", { message: Schema.String }) {}

export type SecretSource = "literal" | "env" | "file" | "secretsmanager"

export interface Secret {
  readonly value: Redacted.Redacted
  readonly source: SecretSource
  /**
   * Reads the value again (file and Secrets Manager references); undefined when it cannot change. A
   * function, so that serializing a Secret can never show what an effect holds.
   */
  readonly reread: (() => Effect.Effect<Redacted.Redacted, SecretError>) | undefined
}

export type SecretRef =
  | { readonly _tag: "literal"; readonly value: string }
  | { readonly _tag: "env"; readonly name: string }
  | { readonly _tag: "file"; readonly path: string }
  | { readonly _tag: "secretsmanager"; readonly arn: string; readonly key: string | undefined }

/** Parses a reference; anything without a known prefix is a literal. */
export const parseSecretRef = (text: string): SecretRef => {
  if (text.startsWith("literal:")) return { _tag: "literal", value: text.slice("literal:".length) }
  if (text.startsWith("env:")) return { _tag: "env", name: text.slice("env:".length) }
  if (text.startsWith("file:")) {
    const rest = text.slice("file:".length)
    // file:///abs/path and file:/abs/path both name /abs/path
    return { _tag: "file", path: rest.startsWith("//") ? decodeURIComponent(rest.replace(/^\/\/[^/]*/, "")) : rest }
  }
  if (text.startsWith("secretsmanager:")) {
    const rest = text.slice("secretsmanager:".length)
    const hash = rest.indexOf("#")
    return hash === -1
      ? { _tag: "secretsmanager", arn: rest, key: undefined }
      : { _tag: "secretsmanager", arn: rest.slice(0, hash), key: rest.slice(hash + 1) }
  }
  return { _tag: "literal", value: text }
}

/** Where a reference points, for messages (never the value of a literal). */
export const describeRef = (ref: SecretRef): string => {
  switch (ref._tag) {
    case "literal": return "a literal value"
    case "env": return `env:${ref.name}`
    case "file": return `file:${ref.path}`
    case "secretsmanager": return `secretsmanager:${ref.arn}${ref.key !== undefined ? `#${ref.key}` : ""}`
  }
}

/** The region of a Secrets Manager ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`). */
export const arnRegion = (arn: string): string | undefined => /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(arn)?.[1]

/** AWS Secrets Manager, as far as this server needs it. Swapped for a fake in tests. */
export class SecretsManager extends Context.Service<SecretsManager, {
  /** The SecretString of the secret with this ARN (or name). */
  readonly getSecretString: (arn: string) => Effect.Effect<string, SecretError>
}>()("openapi-mcp/SecretsManager") {
  /** The AWS SDK client (loaded on first use), one per region, credentials from the standard chain. */
  static readonly layer = Layer.sync(SecretsManager, () => {
    const clients = new Map<string, Promise<{ send: (arn: string) => Promise<string | undefined> }>>()
    const clientFor = (region: string | undefined) => {
      const key = region ?? ""
      let client = clients.get(key)
      if (client === undefined) {
        client = import("@aws-sdk/client-secrets-manager").then(({ GetSecretValueCommand, SecretsManagerClient }) => {
          const sdk = new SecretsManagerClient(region !== undefined ? { region } : {})
          return {
            send: async (arn: string) => {
              const out = await sdk.send(new GetSecretValueCommand({ SecretId: arn }))
              return out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString("utf8") : undefined)
            }
          }
        })
        clients.set(key, client)
      }
      return client
    }
    return SecretsManager.of({
      getSecretString: (arn) =>
        Effect.tryPromise({
          try: () => clientFor(arnRegion(arn)).then((c) => c.send(arn)),
          catch: (e) => new SecretError({ message: `${(e as Error).name}: ${(e as Error).message}` })
        }).pipe(Effect.flatMap((s) =>
          s === undefined ? Effect.fail(new SecretError({ message: "the secret has no value" })) : Effect.succeed(s)
        ))
    })
  })

  /** A fake holding secrets by ARN; unknown ARNs fail as the real service does. */
  static readonly layerTest = (secrets: Readonly<Record<string, string>>) =>
    Layer.succeed(SecretsManager, SecretsManager.of({
      getSecretString: (arn) =>
        Object.hasOwn(secrets, arn)
          ? Effect.succeed(secrets[arn]!)
          : Effect.fail(new SecretError({ message: "ResourceNotFoundException: Secrets Manager can't find the specified secret." }))
    }))
}

export class Secrets extends Context.Service<Secrets, {
  /** Resolves a reference given for `setting` (a flag or variable name, for messages). */
  readonly resolve: (reference: string, setting: string) => Effect.Effect<Secret, SecretError>
}>()("openapi-mcp/Secrets") {
  /** Environment from `env`, files from disk, Secrets Manager from the SecretsManager service. */
  static readonly layerWith = (env: Readonly<Record<string, string | undefined>>) =>
    Layer.effect(Secrets, Effect.gen(function*() {
      const sm = yield* SecretsManager
      const resolve = Effect.fn("Secrets.resolve")(function*(reference: string, setting: string) {
        const ref = parseSecretRef(reference)
        const fail = (why: string) => new SecretError({ message: `cannot read ${describeRef(ref)} (given for ${setting}): ${why}` })
        switch (ref._tag) {
          case "literal":
            return { value: Redacted.make(ref.value), source: "literal" as const, reread: undefined }
          case "env": {
            const value = env[ref.name]
            if (value === undefined || value === "") return yield* fail("the variable is not set")
            return { value: Redacted.make(value), source: "env" as const, reread: undefined }
          }
          case "file": {
            const read = Effect.tryPromise({
              try: () => readFile(ref.path, "utf8"),
              catch: (e) => fail((e as NodeJS.ErrnoException).code ?? "unreadable")
            }).pipe(Effect.map((text) => Redacted.make(text.replace(/\r?\n$/, ""))))
            return { value: yield* read, source: "file" as const, reread: () => read }
          }
          case "secretsmanager": {
            const read = sm.getSecretString(ref.arn).pipe(
              Effect.mapError((e) => fail(e.message)),
              Effect.flatMap((text) => {
                if (ref.key === undefined) return Effect.succeed(Redacted.make(text))
                let doc: unknown
                try {
                  doc = JSON.parse(text)
                } catch {
                  return Effect.fail(fail(`the secret is not JSON, so it has no key '${ref.key}'`))
                }
                const v = typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>)[ref.key] : undefined
                return typeof v === "string" || typeof v === "number"
                  ? Effect.succeed(Redacted.make(String(v)))
                  : Effect.fail(fail(`the secret has no string key '${ref.key}'`))
              })
            )
            return { value: yield* read, source: "secretsmanager" as const, reread: () => read }
          }
        }
      })
      return Secrets.of({ resolve })
    }))

  /** The live resolver: this process's environment, files, and AWS Secrets Manager. */
  static readonly layer = Secrets.layerWith(process.env).pipe(Layer.provide(SecretsManager.layer))
}

/** Replaces every occurrence of the given secret values in `text` (for messages that quote other systems). */
export const scrub = (text: string, secrets: ReadonlyArray<Redacted.Redacted | string>): string => {
  let out = text
  for (const s of secrets) {
    const v = typeof s === "string" ? s : Redacted.value(s)
    if (v.length >= 4) out = out.split(v).join("<redacted>")
  }
  return out
}
