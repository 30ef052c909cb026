/**
 * Binary answers saved to disk (DOWNLOAD_DIR): a PDF, an archive or an export is no use to a model as base64
 * in its context, and past --max-response-bytes it was not returned at all. With DOWNLOAD_DIR set, a 2xx answer
 * that is neither JSON nor text is written to that directory (images and audio that fit the response limit
 * still come back inline, for models that see them), and the result says where, with a `resource_link` to the
 * file. Such answers may be up to DOWNLOAD_MAX_BYTES. The file is named after the answer's
 * `Content-Disposition` filename, else after the tool, and never replaces an existing file.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { open } from "node:fs/promises"
import { basename, extname, join } from "node:path"
import { pathToFileURL } from "node:url"
import type { Tool } from "../domain/Tool.ts"
import type { UpstreamResponse } from "../Upstream.ts"
import { isBinaryAnswer, mediaTypeOf } from "../Upstream/Transport.ts"
import { extensionOf } from "./FileTypes.ts"

export interface DownloadSettings {
  readonly dir: string
  readonly maxBytes: number
}

/** The filename the answer suggests (Content-Disposition), reduced to a safe base name. */
const suggestedName = (headers: Readonly<Record<string, string>>): string | undefined => {
  const cd = headers["content-disposition"] ?? ""
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(cd)?.[1]
  let name: string | undefined
  try {
    name = star !== undefined ? decodeURIComponent(star) : /filename\s*=\s*"?([^";]+)"?/.exec(cd)?.[1]
  } catch {
    name = undefined
  }
  // (no directories, no control characters, no hidden or empty names)
  const safe = name === undefined ? "" : basename(name.replace(/\\/g, "/")).replace(/[\u0000-\u001f\u007f]/g, "").replace(/^\.+/, "").slice(0, 200)
  return safe === "" ? undefined : safe
}

/** Writes `data` to a new file in `dir` named `name` (or `name-2.ext`, `-3`…), returning its path. */
const writeNew = async (dir: string, name: string, data: Uint8Array): Promise<string> => {
  const ext = extname(name)
  const stem = name.slice(0, name.length - ext.length)
  for (let n = 1; ; n++) {
    const path = join(dir, n === 1 ? name : `${stem}-${n}${ext}`)
    try {
      const file = await open(path, "wx")
      try {
        await file.writeFile(data)
      } finally {
        await file.close()
      }
      return path
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || n >= 1000) throw e
    }
  }
}

/**
 * The result for a 2xx binary answer saved to the download directory, or undefined when the answer is not one
 * to save (not 2xx, text or JSON, empty, or an image or audio that fits `inlineMax`).
 */
export const saveDownload = (
  tool: Tool,
  res: UpstreamResponse,
  settings: DownloadSettings,
  inlineMax: number,
  now: number
): Effect.Effect<CallToolResult> | undefined => {
  if (res.status < 200 || res.status >= 300 || res.body.byteLength === 0 || !isBinaryAnswer(res.headers)) return undefined
  const mt = mediaTypeOf(res.headers)
  if ((mt.startsWith("image/") || mt.startsWith("audio/")) && res.bodyCut !== true && res.body.byteLength <= inlineMax) return undefined
  if (res.bodyCut === true || res.body.byteLength > settings.maxBytes) {
    return Effect.succeed({
      isError: true,
      content: [{ type: "text", text: `${tool.operationId}: the ${mt} answer is more than ${settings.maxBytes} bytes (DOWNLOAD_MAX_BYTES); it was not saved.` }]
    })
  }
  const name = suggestedName(res.headers) ?? `${tool.name}-${new Date(now).toISOString().replace(/[:.]/g, "-")}${extensionOf(mt)}`
  return Effect.promise(() =>
    writeNew(settings.dir, name, res.body).then(
      (path): CallToolResult => ({
        content: [
          { type: "text", text: `The API answered with ${mt} of ${res.body.byteLength} bytes, saved to ${path}` },
          { type: "resource_link", uri: pathToFileURL(path).href, name: basename(path), mimeType: mt }
        ],
        structuredContent: { saved_to: path, bytes: res.body.byteLength, media_type: mt }
      }),
      (e: NodeJS.ErrnoException): CallToolResult => ({
        isError: true,
        content: [{ type: "text", text: `${tool.operationId}: the ${mt} answer could not be saved in ${settings.dir} (DOWNLOAD_DIR): ${e.code ?? e.message}` }]
      })
    )
  )
}
