/**
 * The tool catalog of a single-file spec, kept on disk between starts (CATALOG_CACHE_DIR). An entry is
 * found by a SHA-256 of the spec's bytes, its URL, the mapping settings and the build of this server, so a
 * changed spec, setting or server never reuses an old catalog. A restart with a hit skips parsing and
 * mapping the spec (most of the start-up of a big one, and most of its memory). Reading and writing are
 * best effort: a missing, unreadable or corrupt entry means the catalog is built as without the cache. The
 * directory keeps the 20 most recently written catalogs.
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import { homedir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { asciiJson, parseJsonBytes } from "../SpecLoader/JsonText.ts"
import type { Problem, Tool } from "../domain/Tool.ts"
import type { MappingOptions } from "./Mapping.ts"

/** What a start needs from a built catalog, besides the spec document itself. */
export interface CatalogEntry {
  readonly key: string
  readonly specVersion: string
  readonly title: string | undefined
  readonly version: string | undefined
  readonly tagDescriptions: Readonly<Record<string, string>>
  readonly tools: ReadonlyArray<Tool>
  readonly skipped: ReadonlyArray<Problem>
  readonly operations: number
  readonly filteredOut: number
}

/** The cache directory for a CATALOG_CACHE_DIR setting, or undefined when the cache is off. */
export const cacheDirFor = (setting: string, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined => {
  const value = setting.trim()
  if (value === "off" || value === "none" || value === "false" || value === "") return undefined
  if (value !== "auto") return value
  const base = env["XDG_CACHE_HOME"] || join(homedir(), ".cache")
  return join(base, "openapi-mcp-server")
}

/**
 * This build of the server. In the bundle, the code is in a chunk named by a hash of its content (and so of
 * the chunks it imports): that name and size, wherever the server is installed, so a catalog made ahead in
 * one place (an image build, a package) is found in another. Otherwise the file holding this code, with its
 * size and time, so a rebuild changes it.
 */
let build: Promise<string> | undefined
const buildId = () =>
  build ??= stat(fileURLToPath(import.meta.url)).then(
    (info) => {
      const chunk = /\/([A-Za-z0-9_]+-[A-Za-z0-9_-]{8}\.js)$/.exec(import.meta.url)?.[1]
      return chunk !== undefined ? `bundle:${chunk}:${info.size}` : `${import.meta.url}:${info.size}:${info.mtimeMs}`
    },
    () => `${import.meta.url}:unknown`
  )

export const entryKey = (bytes: Uint8Array, url: string, options: MappingOptions): Effect.Effect<string> =>
  Effect.promise(() => buildId()).pipe(Effect.map((build) =>
    createHash("sha256")
      .update(build).update("\u0000")
      .update(url).update("\u0000")
      .update(JSON.stringify(options)).update("\u0000")
      .update(bytes)
      .digest("hex")))

const fileOf = (dir: string, key: string) => join(dir, `catalog-${key.slice(0, 32)}.json`)

/** The entry for `key`, if one is there and whole. */
export const readEntry = (dir: string, key: string): Effect.Effect<CatalogEntry | undefined> =>
  Effect.promise(async () => {
    try {
      // parsed from the bytes as a one-byte text (SpecLoader/JsonText.ts); a corrupt entry throws below
      const bytes = await readFile(fileOf(dir, key))
      const entry = (parseJsonBytes(bytes) ?? JSON.parse(bytes.toString("utf8"))) as CatalogEntry
      return entry.key === key && Array.isArray(entry.tools) ? entry : undefined
    } catch {
      return undefined
    }
  })

/** How many catalogs the directory keeps: writing one more removes the least recently written. */
const MAX_ENTRIES = 20

/** Removes all but the `keep` most recently written catalogs (a spec edited often leaves one per version). */
const prune = async (dir: string, keep: number) => {
  const names = (await readdir(dir)).filter((n) => /^catalog-[0-9a-f]{32}\.json$/.test(n))
  if (names.length <= keep) return
  const dated = await Promise.all(names.map(async (n) => ({ n, at: (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })))
  dated.sort((a, b) => b.at - a.at)
  await Promise.all(dated.slice(keep).map(({ n }) => rm(join(dir, n), { force: true }).catch(() => undefined)))
}

/** Writes the entry (readable by this user only), atomically: a reader never sees half a file. */
export const writeEntry = (dir: string, entry: CatalogEntry, keep = MAX_ENTRIES): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const file = fileOf(dir, entry.key)
    const temp = `${file}.${process.pid}.${Date.now()}.tmp`
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      // ASCII only, so that reading it back needs no search for non-ASCII bytes
      await writeFile(temp, asciiJson(JSON.stringify(entry)), { mode: 0o600 })
      await rename(temp, file)
      await prune(dir, keep).catch(() => undefined)
      return true
    } catch {
      await rm(temp, { force: true }).catch(() => undefined)
      return false
    }
  })
