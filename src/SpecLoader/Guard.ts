/**
 * Bounds on what a spec may make the loader do: files only from ALLOWED_SPEC_DIRS (when set) and no larger
 * than SPEC_MAX_BYTES; documents nested no deeper than MAX_DEPTH (a hostile document must not overflow
 * the stack of the code that walks it). YAML alias expansion is capped as the document is parsed
 * (SpecLoader/Yaml.ts), which stops "billion laughs" documents at once; remote documents go through the SSRF
 * guard.
 */
import { Effect } from "effect"
import { realpath, stat } from "node:fs/promises"
import { sep } from "node:path"
import { fileURLToPath } from "node:url"
import type { SpecSourcePolicy } from "../Security/SsrfGuard.ts"

/** Deepest nesting of objects and arrays accepted in a document (checked by SpecLoader's walk for `$ref`s). */
export const MAX_DEPTH = 256

const inside = (file: string, dir: string) => file === dir || file.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`)

/** Whether the real path `file` lies in one of `dirs` (their symbolic links resolved too). */
export const insideAny = async (file: string, dirs: ReadonlyArray<string>): Promise<boolean> =>
  (await Promise.all(dirs.map((d) => realpath(d).catch(() => d)))).some((d) => inside(file, d))

/** Checks a spec file against ALLOWED_SPEC_DIRS (symlinks resolved) and SPEC_MAX_BYTES; fails with why. */
export const checkFile = (url: string, policy: SpecSourcePolicy): Effect.Effect<void, string> =>
  Effect.tryPromise({
    try: async () => {
      const path = fileURLToPath(url)
      let real: string
      try {
        real = await realpath(path)
      } catch {
        return undefined // a missing file is reported by the read
      }
      if (policy.allowedDirs.length > 0 && !(await insideAny(real, policy.allowedDirs))) {
        return `${path} is outside the allowed spec directories (ALLOWED_SPEC_DIRS: ${policy.allowedDirs.join(", ")})`
      }
      const size = (await stat(real)).size
      if (size > policy.maxBytes) return `the file is ${size} bytes, more than SPEC_MAX_BYTES (${policy.maxBytes})`
      return undefined
    },
    catch: (e) => (e as NodeJS.ErrnoException).code ?? "unreadable"
  }).pipe(Effect.flatMap((why) => why === undefined ? Effect.void : Effect.fail(why)))
