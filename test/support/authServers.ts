/**
 * Local identity providers on 127.0.0.1 free ports: an OAuth2 token endpoint, a fake Cognito (hosted-domain
 * token endpoint and the cognito-idp InitiateAuth JSON API) and a JWKS server. Each records what it was sent.
 */
import { Effect } from "effect"
import type { IncomingHttpHeaders } from "node:http"
import { startLocalServer } from "./processes.ts"

export interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

export interface Reply {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}

/** A node:http server answering JSON with `reply`; records every request. */
export const startJsonServer = async (reply: (r: Seen, n: number) => Reply) => {
  const seen: Array<Seen> = []
  const server = await startLocalServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const r = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }
      seen.push(r)
      const out = reply(r, seen.length)
      res.writeHead(out.status, { "content-type": "application/json", ...out.headers }).end(
        typeof out.body === "string" ? out.body : JSON.stringify(out.body)
      )
    })
  })
  return { url: server.url, seen, close: server.close }
}

/** The same, as a scoped resource for `it.effect`. */
export const jsonServer = (reply: (r: Seen, n: number) => Reply) =>
  Effect.acquireRelease(Effect.promise(() => startJsonServer(reply)), (s) => Effect.promise(() => s.close()))

/** The form fields of a recorded urlencoded body. */
export const formOf = (s: Seen): Record<string, string> => Object.fromEntries(new URLSearchParams(s.body))

/** Decodes a recorded `Authorization: Basic` header into [user, password] (form-decoded, RFC 6749 §2.3.1). */
export const basicOf = (s: Seen): readonly [string, string] | undefined => {
  const m = /^Basic (.+)$/.exec(s.headers.authorization ?? "")
  if (!m) return undefined
  const [user = "", password = ""] = Buffer.from(m[1]!, "base64").toString("utf8").split(":")
  const dec = (x: string) => decodeURIComponent(x.replace(/\+/g, " "))
  return [dec(user), dec(password)]
}
