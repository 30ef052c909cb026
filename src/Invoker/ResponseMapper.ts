/**
 * Upstream answer → MCP tool result. 2xx JSON becomes `structuredContent` plus its text; other text stays
 * text; images and audio become MCP image/audio content; other binaries an embedded blob resource. Anything
 * over the size cap is cut with a note saying how much. Non-2xx answers are `isError` results naming the
 * status, the operation and an excerpt of the body, so the model can act on them.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import type { Tool } from "../domain/Tool.ts"
import type { UpstreamResponse } from "../Upstream.ts"
import { rateLimited, retryAfterSeconds } from "../Upstream/RetryAfter.ts"
import { isJsonType, isTextType, mediaTypeOf } from "../Upstream/Transport.ts"
import { closeJsonPrefix, cutList, type JsonPrefix } from "./JsonPrefix.ts"

// required when first needed, not imported: an ESM import of node:http also loads Node's bundled undici (tens
// of ms), and even requiring it costs a stdio server ~6 ms at start
let statusCodes: Readonly<Record<number, string | undefined>> | undefined
const statusText = (status: number) => (statusCodes ??= process.getBuiltinModule("node:http").STATUS_CODES)[status]

const ERROR_EXCERPT = 2000

const utf8 = new TextDecoder("utf-8", { fatal: false })

/** How big the body was: its length, or for a body cut while read, what the API declared or "more than". */
const sizeOf = (res: Pick<UpstreamResponse, "body" | "bodyCut" | "headers">): { readonly bytes: number; readonly exact: boolean } => {
  if (res.bodyCut !== true) return { bytes: res.body.byteLength, exact: true }
  const declared = Number(res.headers["content-length"])
  return Number.isSafeInteger(declared) && declared > res.body.byteLength ? { bytes: declared, exact: true } : { bytes: res.body.byteLength, exact: false }
}

const cutNote = (shown: number, size: { readonly bytes: number; readonly exact: boolean }, more = "") =>
  size.exact
    ? `[truncated: showing ${shown} of ${size.bytes} bytes; ${size.bytes - shown} bytes cut${more}]`
    : `[truncated: showing ${shown} of more than ${size.bytes} bytes${more}]`

/** At most `max` bytes decoded as text, and the note saying what was cut when the body was longer. */
const capped = (
  res: Pick<UpstreamResponse, "body" | "bodyCut" | "headers">,
  max: number
): { readonly text: string; readonly note: string | undefined } => {
  const body = res.body
  if (body.byteLength <= max && res.bodyCut !== true) return { text: utf8.decode(body), note: undefined }
  const shown = Math.min(max, body.byteLength)
  return { text: utf8.decode(body.subarray(0, shown)).replace(/\uFFFD$/, ""), note: cutNote(shown, sizeOf(res)) }
}

/** At most `max` bytes as text, the note after it when the body was longer. */
const cappedText = (res: Pick<UpstreamResponse, "body" | "bodyCut" | "headers">, max: number): string => {
  const { text, note } = capped(res, max)
  return note === undefined ? text : `${text}\n\n${note}`
}

const NEXT_KEYS = ["next_cursor", "nextCursor", "next_page_token", "nextPageToken", "next_token", "nextToken", "next_page", "nextPage", "next"]
const CURSOR_ARG = /cursor|token|after|page|offset|start|marker|continuation|skip/i

/** The `rel="next"` URL of a Link header. */
const linkNext = (link: string | undefined): string | undefined =>
  link?.split(",").map((part) => /<([^>]+)>\s*;[^,]*rel="?next"?/i.exec(part)?.[1]).find((u) => u !== undefined)

/**
 * When an answer has more pages (a Link rel="next" header, or a next/cursor/token field), the arguments
 * for calling the same tool again for the next page, matched to the tool's own query parameters.
 */
export const nextPageArguments = (tool: Tool, headers: Readonly<Record<string, string>>, body: unknown): Record<string, unknown> | undefined => {
  const queryArgs = tool.params.filter((p) => p.in === "query")
  if (queryArgs.length === 0) return undefined // no argument could carry a next page
  const fromUrl = (url: string): Record<string, unknown> | undefined => {
    let params: URLSearchParams
    try {
      params = new URL(url, "http://x").searchParams
    } catch {
      return undefined
    }
    const args: Record<string, unknown> = {}
    for (const p of queryArgs) {
      const v = params.get(p.name)
      if (v !== null) args[p.arg] = /^\d+$/.test(v) ? Number(v) : v
    }
    return Object.keys(args).length > 0 ? args : undefined
  }
  const link = linkNext(headers["link"])
  if (link !== undefined) return fromUrl(link)
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  const containers = [body, ...["meta", "pagination", "paging", "links", "response_metadata", "page_info", "pageInfo"]
    .map((k) => (body as Record<string, unknown>)[k])
    .filter((v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v))] as Array<Record<string, unknown>>
  for (const c of containers) {
    if (c["has_more"] === false || c["hasMore"] === false || c["hasNextPage"] === false) return undefined
    for (const key of NEXT_KEYS) {
      const v = c[key]
      if (v === undefined || v === null || v === "") continue
      if (typeof v === "string" && /^(https?:\/\/|\/|\?)/.test(v)) return fromUrl(v)
      if (typeof v !== "string" && typeof v !== "number") continue
      // a bare cursor/token/page value: the tool's query parameter most like it takes it
      const stem = key.replace(/^next_?/i, "").toLowerCase()
      const target = queryArgs.find((p) => stem !== "" && p.name.toLowerCase().replace(/[_-]/g, "").includes(stem.replace(/[_-]/g, ""))) ??
        queryArgs.find((p) => CURSOR_ARG.test(p.name))
      if (target !== undefined) return { [target.arg]: v }
    }
  }
  return undefined
}

const withNextPage = (tool: Tool, result: CallToolResult, next: Record<string, unknown> | undefined): CallToolResult =>
  next === undefined ? result : {
    ...result,
    content: [...result.content, {
      type: "text",
      text: `More results are available: call ${tool.name} again with the same arguments plus ${JSON.stringify(next)}.`
    }],
    _meta: { ...result._meta, "openapi-mcp-server/next_page": next }
  }

/** A query parameter that sets how many entries a page has. */
const PAGE_SIZE = /^(per_?page|page_?size|limit|max_?results|max_?items|max_?records|count|top|\$top|size|page\[size\]|max)$/i

/**
 * JSON over the size cap, as the valid JSON it begins with (up to its last whole entry), never passed off as
 * whole: no structuredContent, and a note saying what was cut and how to get whole pages instead.
 */
const cutJson = (tool: Tool, res: UpstreamResponse, prefix: JsonPrefix): CallToolResult => {
  const list = cutList(prefix)
  const pageSize = tool.params.find((p) => p.in === "query" && PAGE_SIZE.test(p.name))
  const kept = list === undefined ? "" : list.kept === 0 ? "none of its entries" : list.kept === 1 ? "its first entry" : `its first ${list.kept} entries`
  const more = (list === undefined ? "" : `; the list ${list.path === "" ? "" : `'${list.path}' `}keeps ${kept}`) +
    ", so the JSON above is valid but incomplete" +
    (pageSize === undefined ? "" : `; call ${tool.name} again with a smaller '${pageSize.arg}' to get whole pages`)
  const text = `${prefix.json}\n\n${cutNote(Buffer.byteLength(prefix.json) - prefix.closed, sizeOf(res), more)}`
  return withNextPage(tool, { content: [{ type: "text", text }] }, nextPageArguments(tool, res.headers, prefix.value))
}

const statusLine = (status: number) => {
  const text = statusText(status)
  return `HTTP ${status}${text ? ` ${text}` : ""}`
}

export const mapResponse = (tool: Tool, res: UpstreamResponse, maxBytes: number, now: number): CallToolResult => {
  const mt = mediaTypeOf(res.headers)
  const redirect = res.status >= 300 && res.status < 400
  if (redirect && tool.redirects === true) {
    // a documented 3xx is the answer: for a redirect, where the resource is (not followed: it may be another
    // origin, which must not get the credential)
    const location = res.headers["location"]
    return {
      content: [{
        type: "text",
        text: location
          ? `${statusLine(res.status)}: the API answers with the address ${location} (a redirect, not followed)`
          : `${statusLine(res.status)}: no content`
      }],
      structuredContent: { status: res.status, ...(location ? { location } : {}) }
    }
  }
  if (res.status < 200 || res.status >= 300) {
    const excerpt = res.body.byteLength === 0 ? "" : cappedText(res, ERROR_EXCERPT)
    const retryAfter = retryAfterSeconds(res.headers, now, res.status)
    const location = redirect && res.headers["location"] ? ` (redirect to ${res.headers["location"]}, not followed)` : ""
    // Retry-After is the API's request; a used-up rate limit without one is told as such, with its reset
    const limit = res.headers["retry-after"] === undefined && rateLimited(res.status, res.headers)
      ? [`The API's rate limit is used up${retryAfter !== undefined ? `; it resets in ${retryAfter} seconds` : ""}.`]
      : retryAfter !== undefined ? [`The API asks to retry after ${retryAfter} seconds.`] : []
    const lines = [
      `${tool.operationId} failed: ${statusLine(res.status)} from ${tool.method} ${tool.path}${location}.`,
      ...limit,
      ...(excerpt ? [`Response body: ${excerpt}`] : [])
    ]
    return {
      isError: true,
      content: [{ type: "text", text: lines.join("\n") }],
      structuredContent: {
        status: res.status,
        ...(retryAfter !== undefined ? { retry_after_seconds: retryAfter } : {})
      }
    }
  }
  if (res.body.byteLength === 0) {
    return { content: [{ type: "text", text: `${statusLine(res.status)}: no content` }] }
  }
  if (isJsonType(mt) || (mt === "" && /^\s*[[{]/.test(utf8.decode(res.body.subarray(0, 64))))) {
    const { text, note } = capped(res, maxBytes)
    if (note === undefined) {
      try {
        const value: unknown = JSON.parse(text)
        const structured = typeof value === "object" && value !== null && !Array.isArray(value)
          ? value as Record<string, unknown>
          : { result: value }
        return withNextPage(tool, { content: [{ type: "text", text }], structuredContent: structured }, nextPageArguments(tool, res.headers, value))
      } catch {
        // not JSON after all: fall through to text
      }
    } else {
      // valid JSON up to the last whole entry, unless that keeps less than half (one huge string, say)
      const prefix = closeJsonPrefix(text)
      if (prefix !== undefined && prefix.json.length - prefix.closed >= text.length / 2) return cutJson(tool, res, prefix)
    }
    return { content: [{ type: "text", text: note === undefined ? text : `${text}\n\n${note}` }] }
  }
  if (isTextType(mt) || mt === "") {
    return { content: [{ type: "text", text: cappedText(res, maxBytes) }] }
  }
  if (res.body.byteLength > maxBytes || res.bodyCut === true) {
    const size = sizeOf(res)
    return {
      content: [{
        type: "text",
        text: `${statusLine(res.status)}: ${mt} response of ${size.exact ? "" : "more than "}${size.bytes} bytes not returned (over the ${maxBytes}-byte limit)`
      }]
    }
  }
  const data = Buffer.from(res.body).toString("base64")
  if (mt.startsWith("image/")) return { content: [{ type: "image", data, mimeType: mt }] }
  if (mt.startsWith("audio/")) return { content: [{ type: "audio", data, mimeType: mt }] }
  return {
    content: [{
      type: "resource",
      resource: { uri: `openapi-mcp://response/${tool.name}`, mimeType: mt || "application/octet-stream", blob: data }
    }]
  }
}
