/**
 * Local files as upload content (UPLOAD_DIRS): a file argument (a multipart file field, an octet-stream body)
 * may be `file:///absolute/path` instead of base64, and the server reads the file. A model cannot carry a real
 * file through its context as base64, but it can name one. Only regular files inside UPLOAD_DIRS (symbolic
 * links resolved) are read, up to UPLOAD_MAX_BYTES; without UPLOAD_DIRS a `file:` value is refused, saying how
 * to allow it. Whoever steers the model can send any file of those directories to the API: name only
 * directories meant for it.
 */
import { Effect } from "effect"
import { readFile, realpath, stat } from "node:fs/promises"
import { basename, extname } from "node:path"
import { fileURLToPath } from "node:url"
import type { Tool } from "../domain/Tool.ts"
import { insideAny } from "../SpecLoader/Guard.ts"
import { mediaTypeOfExtension } from "./FileTypes.ts"
import { BuildError, LocalFile } from "./RequestBuilder.ts"

export interface UploadSettings {
  readonly dirs: ReadonlyArray<string>
  readonly maxBytes: number
}

/** The arguments of a tool that carry file content: its octet-stream body, or its multipart/form file fields. */
export const fileArguments = (tool: Tool): ReadonlyArray<string> => {
  const b = tool.body
  if (b === undefined) return []
  if (b.kind === "binary") return b.arg === undefined ? [] : [b.arg]
  const files = new Set(b.fileFields)
  return (b.fields ?? []).filter((f) => files.has(f.name)).map((f) => f.arg)
}

const isFileUri = (v: unknown): v is string => typeof v === "string" && /^file:/i.test(v)

/** Whether any of these arguments names a local file. */
export const namesLocalFiles = (args: Record<string, unknown>, names: ReadonlyArray<string>): boolean =>
  names.some((n) => {
    const v = args[n]
    return isFileUri(v) || (Array.isArray(v) && v.some(isFileUri))
  })

/** Reads the file a `file:` URI names, under the settings; fails with what the model can fix. */
const readLocal = async (uri: string, what: string, settings: UploadSettings): Promise<LocalFile> => {
  if (settings.dirs.length === 0) {
    throw new BuildError(`'${what}' names a local file, and this server sends no local files (set UPLOAD_DIRS to the directories it may send from); give the content as base64 or a data: URI`)
  }
  let path: string
  try {
    path = fileURLToPath(uri)
  } catch {
    throw new BuildError(`'${what}' is not a usable file: URI (give file:///absolute/path)`)
  }
  let real: string
  try {
    real = await realpath(path)
  } catch {
    throw new BuildError(`'${what}': ${path} does not exist`)
  }
  if (!(await insideAny(real, settings.dirs))) {
    throw new BuildError(`'${what}': ${path} is outside the directories files may be sent from (UPLOAD_DIRS: ${settings.dirs.join(", ")})`)
  }
  const info = await stat(real)
  if (!info.isFile()) throw new BuildError(`'${what}': ${path} is not a file`)
  if (info.size > settings.maxBytes) {
    throw new BuildError(`'${what}': ${path} is ${info.size} bytes, more than UPLOAD_MAX_BYTES (${settings.maxBytes})`)
  }
  return new LocalFile(await readFile(real), basename(real), mediaTypeOfExtension(extname(real).toLowerCase()))
}

/** The arguments with each `file:` URI among the file arguments replaced by the file it names. */
export const readLocalFiles = (
  args: Record<string, unknown>,
  names: ReadonlyArray<string>,
  settings: UploadSettings
): Effect.Effect<Record<string, unknown>, BuildError> =>
  Effect.tryPromise({
    try: async () => {
      const out = { ...args }
      for (const name of names) {
        const v = out[name]
        if (isFileUri(v)) out[name] = await readLocal(v, name, settings)
        else if (Array.isArray(v)) out[name] = await Promise.all(v.map((item, i) => isFileUri(item) ? readLocal(item, `${name}[${i}]`, settings) : item))
      }
      return out
    },
    catch: (e) => e instanceof BuildError ? e : new BuildError(`a file could not be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  })
