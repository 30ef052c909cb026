/**
 * The spec file, read while the server's modules load. Loading them keeps the main thread busy for about
 * 120 ms; a file read issued before that runs meanwhile on libuv's thread pool, so the spec's bytes (13 MB for
 * the GitHub spec, about 20 ms to read) are there when the loader asks for them.
 *
 * This is a guess made before the configuration is read: the spec named by the first `--spec` flag, else by
 * the environment. The loader takes the bytes only for the same path, after its own checks (allowed
 * directories, size cap), and only if the file has not changed since (same device, inode, size and time);
 * otherwise it reads the file itself. Only regular files up to the default size cap are read, and the bytes
 * are kept only until the loader reads its first file.
 *
 * Imports only the spec option's names (AppConfig/SpecOption.ts, which imports nothing): the entry point loads
 * it before the version check and the rest of the server.
 */
import { DEFAULT_SPEC_MAX_BYTES, SPEC_OPTION } from "../AppConfig/SpecOption.ts"

interface Prefetch {
  readonly path: string
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly bytes: Promise<Uint8Array | undefined>
}

let pending: Prefetch | undefined

const SPEC_FLAGS = [SPEC_OPTION.flag, ...SPEC_OPTION.aliases].map((flag) => `--${flag}`)

/** What the first `--spec` flag names, else the environment; undefined when neither does. */
export const specArgument = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): string | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") break
    for (const flag of SPEC_FLAGS) {
      if (arg === flag) return argv[i + 1]
      if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1)
    }
  }
  // as AppConfig reads them: the first one set and not empty
  return SPEC_OPTION.env.map((name) => env[name]).find((value) => value !== undefined && value !== "")
}

/**
 * Starts reading the spec file `argv` and `env` name, if it is a local regular file of at most
 * DEFAULT_SPEC_MAX_BYTES (a larger one is left to the loader).
 * Returns when the read ends (the entry point does not wait for it).
 */
export const prefetchSpec = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): Promise<unknown> => {
  const spec = specArgument(argv, env)
  if (spec === undefined || /^https?:\/\//i.test(spec)) return Promise.resolve()
  const fs = process.getBuiltinModule("node:fs")
  let fd: number | undefined
  let path: string
  let info: import("node:fs").Stats
  try {
    path = spec.startsWith("file://")
      ? process.getBuiltinModule("node:url").fileURLToPath(spec)
      : process.getBuiltinModule("node:path").resolve(spec)
    // non-blocking, so that opening a named pipe cannot hang the start
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    info = fs.fstatSync(fd)
    if (!info.isFile() || info.size > DEFAULT_SPEC_MAX_BYTES) throw new Error("not prefetched")
  } catch {
    if (fd !== undefined) fs.closeSync(fd)
    return Promise.resolve() // the loader reports what is wrong
  }
  const file = fd
  const bytes = Buffer.allocUnsafe(info.size)
  const read = new Promise<Uint8Array | undefined>((resolve) => {
    const done = (result: Uint8Array | undefined) => fs.close(file, () => resolve(result))
    const readFrom = (offset: number): void => {
      if (offset === bytes.length) return done(bytes)
      // one read of the rest: a single job on the thread pool, whatever the main thread is doing
      fs.read(file, bytes, offset, bytes.length - offset, offset, (error, n) => {
        if (error !== null || n === 0) done(undefined)
        else readFrom(offset + n)
      })
    }
    readFrom(0)
  })
  pending = { path, dev: info.dev, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs, bytes: read }
  return read
}

/**
 * The prefetched bytes of the file at `path` (absolute), if it was prefetched and has not changed since;
 * undefined otherwise. The prefetch ends here either way.
 */
export const takePrefetched = async (path: string): Promise<Uint8Array | undefined> => {
  const taken = pending
  pending = undefined
  if (taken === undefined || taken.path !== path) return undefined
  const bytes = await taken.bytes
  // stat once the read has ended (not the loader's check before it), so a write during the read is seen too
  try {
    const now = await process.getBuiltinModule("node:fs/promises").stat(path)
    const same = now.dev === taken.dev && now.ino === taken.ino && now.size === taken.size && now.mtimeMs === taken.mtimeMs
    return same ? bytes : undefined
  } catch {
    return undefined
  }
}
