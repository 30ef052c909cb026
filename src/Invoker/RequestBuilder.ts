/**
 * Tool arguments → the HTTP request, by the OpenAPI serialization rules: path/query/header/cookie `style`
 * and `explode` (simple, label, matrix, form, spaceDelimited, pipeDelimited, deepObject), `allowReserved`,
 * and bodies by media type (JSON, form-urlencoded, multipart with files, text, binary).
 */
import { Effect } from "effect"
import type { ParamBinding, Tool } from "../domain/Tool.ts"
import type { ClientTls } from "../Auth/ClientCert.ts"

export interface OutgoingBody {
  readonly contentType: string | undefined
  readonly data: Uint8Array | FormData
}

/** A request before auth is applied. Query items and cookies are already encoded. */
export interface OutgoingRequest {
  readonly method: Tool["method"]
  /** Base URL + expanded path, without query. */
  readonly url: string
  readonly query: Array<string>
  readonly headers: Record<string, string>
  readonly cookies: Array<readonly [string, string]>
  readonly body: OutgoingBody | undefined
  /** The client certificate its connection presents (mutual TLS; set by Auth when configured). */
  readonly tls?: ClientTls
}

export class BuildError extends Error {}

/** A file read from disk for an upload (Invoker/LocalFiles.ts): its bytes, its name, the media type of its extension. */
export class LocalFile {
  readonly bytes: Uint8Array
  readonly name: string
  readonly mediaType: string | undefined
  constructor(bytes: Uint8Array, name: string, mediaType: string | undefined) {
    this.bytes = bytes
    this.name = name
    this.mediaType = mediaType
  }
}

/** Percent-encodes everything but RFC 3986 unreserved characters. */
export const encodeStrict = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/** Like encodeStrict but leaves RFC 3986 reserved characters as they are (`allowReserved: true`). */
const encodeReserved = (s: string): string =>
  encodeURI(s).replace(/%5B/gi, "[").replace(/%5D/gi, "]").replace(/[#]/g, "%23")

const scalar = (v: unknown): string =>
  typeof v === "string" ? v : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const expandPath = (p: ParamBinding, value: unknown): string => {
  const enc = encodeStrict
  const explode = p.explode
  if (p.json) return enc(JSON.stringify(value))
  if (Array.isArray(value)) {
    const items = value.map((v) => enc(scalar(v)))
    switch (p.style) {
      case "label": return `.${items.join(explode ? "." : ",")}`
      case "matrix": return explode ? items.map((i) => `;${p.name}=${i}`).join("") : `;${p.name}=${items.join(",")}`
      default: return items.join(",")
    }
  }
  if (isPlainObject(value)) {
    const pairs = Object.entries(value).filter(([, v]) => v !== undefined && v !== null)
    const kv = (sep: string) => pairs.map(([k, v]) => `${enc(k)}${sep}${enc(scalar(v))}`)
    switch (p.style) {
      case "label": return `.${explode ? kv("=").join(".") : kv(",").join(",")}`
      case "matrix": return explode ? kv("=").map((x) => `;${x}`).join("") : `;${p.name}=${kv(",").join(",")}`
      default: return explode ? kv("=").join(",") : kv(",").join(",")
    }
  }
  const v = enc(scalar(value))
  switch (p.style) {
    case "label": return `.${v}`
    case "matrix": return `;${p.name}=${v}`
    default: return v
  }
}

const queryItems = (p: ParamBinding, value: unknown): Array<string> => {
  const enc = p.allowReserved ? encodeReserved : encodeStrict
  const name = encodeStrict(p.name)
  if (p.json) return [`${name}=${enc(JSON.stringify(value))}`]
  if (Array.isArray(value)) {
    const items = value.filter((v) => v !== null && v !== undefined).map((v) => enc(scalar(v)))
    if (p.style === "deepObject") return items.map((i, n) => `${name}[${n}]=${i}`)
    if (p.explode) return items.map((i) => `${name}=${i}`)
    const sep = p.style === "spaceDelimited" ? "%20" : p.style === "pipeDelimited" ? "|" : ","
    return [`${name}=${items.join(sep)}`]
  }
  if (isPlainObject(value)) {
    if (p.style === "deepObject") {
      const out: Array<string> = []
      const walk = (prefix: string, v: unknown) => {
        if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) walk(`${prefix}[${encodeStrict(k)}]`, x)
        else if (Array.isArray(v)) v.forEach((x, i) => walk(`${prefix}[${i}]`, x))
        else if (v !== undefined && v !== null) out.push(`${prefix}=${enc(scalar(v))}`)
      }
      walk(name, value)
      return out
    }
    const pairs = Object.entries(value).filter(([, v]) => v !== undefined && v !== null)
    if (p.explode) return pairs.map(([k, v]) => `${encodeStrict(k)}=${enc(scalar(v))}`)
    const sep = p.style === "spaceDelimited" ? "%20" : p.style === "pipeDelimited" ? "|" : ","
    return [`${name}=${pairs.map(([k, v]) => `${enc(k)}${sep}${enc(scalar(v))}`).join(sep)}`]
  }
  return [`${name}=${enc(scalar(value))}`]
}

/**
 * An `in: querystring` parameter (OpenAPI 3.2): the whole query string. Its JSON media type sends the value as
 * percent-encoded JSON text; otherwise it is form-encoded: an object's properties as `name=value` pairs (a list
 * as one pair per item, an object as JSON text), a string as it is, with what cannot stand in a query escaped.
 */
const querystringItems = (p: ParamBinding, value: unknown): Array<string> => {
  if (p.json) return [encodeStrict(JSON.stringify(value))]
  if (typeof value === "string") return [value.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g, (c) => encodeURIComponent(c))]
  if (!isPlainObject(value)) return [encodeStrict(scalar(value))]
  const pairs: Array<string> = []
  for (const [k, v] of Object.entries(value)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item === undefined || item === null) continue
      pairs.push(`${encodeStrict(k)}=${encodeStrict(typeof item === "object" ? JSON.stringify(item) : scalar(item))}`)
    }
  }
  return pairs
}

const headerValue = (p: ParamBinding, value: unknown): string => {
  if (p.json) return JSON.stringify(value)
  if (Array.isArray(value)) return value.filter((v) => v !== null && v !== undefined).map(scalar).join(",")
  if (isPlainObject(value)) {
    return Object.entries(value).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => p.explode ? `${k}=${scalar(v)}` : `${k},${scalar(v)}`).join(",")
  }
  return scalar(value)
}

const cookieValue = (p: ParamBinding, value: unknown): string => {
  if (p.json) return encodeStrict(JSON.stringify(value))
  if (Array.isArray(value)) return value.map((v) => encodeStrict(scalar(v))).join(",")
  if (isPlainObject(value)) return Object.entries(value).map(([k, v]) => `${encodeStrict(k)},${encodeStrict(scalar(v))}`).join(",")
  return encodeStrict(scalar(value))
}

/**
 * Decodes a base64 string or a `data:` URI into bytes and (for data URIs) the media type it names; a file
 * already read from disk is taken as it is.
 */
export const decodeFile = (
  value: unknown,
  what: string
): { readonly bytes: Uint8Array; readonly mediaType: string | undefined; readonly name?: string } => {
  if (value instanceof LocalFile) return value
  if (typeof value !== "string") throw new BuildError(`'${what}' must be base64 text or a data: URI`)
  const m = /^data:([^;,]*)(;[^,]*)?,(.*)$/s.exec(value)
  if (m) {
    const mediaType = m[1] || undefined
    const data = m[3] ?? ""
    if ((m[2] ?? "").includes(";base64")) return { bytes: base64(data, what, "its data: URI payload"), mediaType }
    try {
      return { bytes: Buffer.from(decodeURIComponent(data), "utf8"), mediaType }
    } catch {
      throw new BuildError(`'${what}' is a data: URI with invalid percent-encoding`)
    }
  }
  return { bytes: base64(value, what, "it"), mediaType: undefined }
}

const base64 = (text: string, what: string, subject: string): Uint8Array => {
  const clean = text.replace(/\s+/g, "")
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) {
    throw new BuildError(`'${what}' must be base64 or a data: URI, but ${subject} is not valid base64`)
  }
  return Buffer.from(clean, clean.includes("-") || clean.includes("_") ? "base64url" : "base64")
}

const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+")

const buildBody = (tool: Tool, args: Record<string, unknown>): OutgoingBody | undefined => {
  const b = tool.body
  if (b === undefined) return undefined
  let value: unknown
  if (b.fields !== undefined) {
    const obj: Record<string, unknown> = {}
    for (const f of b.fields) if (args[f.arg] !== undefined) obj[f.name] = args[f.arg]
    if (Object.keys(obj).length === 0 && !b.required) return undefined
    value = obj
  } else {
    value = args[b.arg!]
    if (value === undefined) return undefined
  }
  switch (b.kind) {
    case "json":
      return { contentType: b.mediaType, data: Buffer.from(JSON.stringify(value), "utf8") }
    case "text":
      return { contentType: b.mediaType, data: Buffer.from(typeof value === "string" ? value : JSON.stringify(value), "utf8") }
    case "binary": {
      const file = decodeFile(value, b.arg ?? "body")
      return { contentType: b.mediaType.includes("*") ? file.mediaType ?? "application/octet-stream" : b.mediaType, data: file.bytes }
    }
    case "form": {
      const parts: Array<string> = []
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined || v === null) continue
        if (Array.isArray(v)) for (const item of v) parts.push(`${formEncode(k)}=${formEncode(scalar(item))}`)
        else parts.push(`${formEncode(k)}=${formEncode(scalar(v))}`)
      }
      return { contentType: b.mediaType, data: Buffer.from(parts.join("&"), "utf8") }
    }
    case "multipart": {
      const form = new FormData()
      const files = new Set(b.fileFields)
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined || v === null) continue
        const partType = b.partTypes[k]
        if (files.has(k)) {
          // a list of files is one part per file, all with the field's name
          const list = Array.isArray(v) ? v : [v]
          list.forEach((item, i) => {
            const file = decodeFile(item, Array.isArray(v) ? `${k}[${i}]` : k)
            const concrete = partType && !partType.includes("*") && !partType.includes(",") ? partType : undefined
            // a data: URI's own type wins; a local file's type is only guessed from its extension
            const type = (item instanceof LocalFile ? concrete ?? file.mediaType : file.mediaType ?? concrete) ?? "application/octet-stream"
            form.append(k, new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type }), file.name ?? k)
          })
        } else if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) {
          for (const item of v) form.append(k, scalar(item))
        } else if (typeof v === "object" && partType !== undefined) {
          // the spec names a content type for this part: send a typed part (FormData gives it a filename)
          form.append(k, new Blob([JSON.stringify(v)], { type: partType }), k)
        } else if (typeof v === "object") {
          // a plain field holding JSON text: a typed part would carry a filename and look like an upload
          form.append(k, JSON.stringify(v))
        } else {
          form.append(k, scalar(v))
        }
      }
      // the boundary is chosen by the HTTP client when it serializes the FormData
      return { contentType: undefined, data: form }
    }
  }
}

/** Builds the request of a call whose arguments already passed validation. Throws BuildError. */
export const buildRequest = (tool: Tool, args: Record<string, unknown>): OutgoingRequest => {
  let path = tool.path
  const query: Array<string> = []
  const headers: Record<string, string> = {}
  const cookies: Array<readonly [string, string]> = []
  for (const p of tool.params) {
    const value = args[p.arg]
    if (value === undefined || value === null) {
      if (p.in === "path") throw new BuildError(`'${p.arg}' is required (path parameter)`)
      continue
    }
    switch (p.in) {
      case "path": {
        const segment = expandPath(p, value)
        // URL parsing resolves `.`/`..` segments (even as %2E): such a value would escape the operation's path
        if (/^(?:\.|%2e){1,2}$/i.test(segment)) {
          throw new BuildError(`'${p.arg}' cannot be '.' or '..' (it is a path segment)`)
        }
        path = path.split(`{${p.name}}`).join(segment)
        break
      }
      case "query":
        query.push(...queryItems(p, value))
        break
      case "querystring":
        query.push(...querystringItems(p, value))
        break
      case "header": {
        const h = headerValue(p, value)
        if (/[\r\n\0]/.test(h)) throw new BuildError(`'${p.arg}' cannot contain line breaks (it is sent as the ${p.name} header)`)
        headers[p.name.toLowerCase()] = h
        break
      }
      case "cookie":
        cookies.push([p.name, cookieValue(p, value)])
        break
    }
  }
  // values side by side (`/{a}{b}`) could still make a `.`/`..` segment together
  const templateSegments = tool.path.split("/")
  for (const [i, segment] of path.split("/").entries()) {
    if (/^(?:\.|%2e){1,2}$/i.test(segment) && templateSegments[i] !== segment) {
      throw new BuildError("the path parameters together form a '.' or '..' path segment, which is refused")
    }
  }
  const base = tool.baseUrl.endsWith("/") ? tool.baseUrl.slice(0, -1) : tool.baseUrl
  return { method: tool.method, url: `${base}${path}`, query, headers, cookies, body: buildBody(tool, args) }
}

/** A multipart body as bytes with its boundary (what is sent, and what SigV4 hashes). */
export const serializeBody = (request: OutgoingRequest): Effect.Effect<OutgoingRequest> => {
  const body = request.body
  if (body === undefined || !(body.data instanceof FormData)) return Effect.succeed(request)
  const form = body.data
  return Effect.promise(async () => {
    const encoded = new Response(form)
    const contentType = encoded.headers.get("content-type") ?? undefined
    const data = new Uint8Array(await encoded.arrayBuffer())
    return { ...request, body: { contentType, data } }
  })
}
