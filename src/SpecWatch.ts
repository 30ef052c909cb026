/**
 * `--watch`: the spec is loaded again when it changes, and what was built from it (the tools, their
 * credentials, the discovery index) replaces what was served before (McpServer.replace): open connections get
 * `tools/list_changed` and see the new tools at their next list. A spec that no longer loads leaves the
 * previous tools serving; the reason is logged, as at start-up.
 *
 * Local files are watched through their directories, not themselves: editors save by writing a new file and
 * renaming it over the old one, and a watch on the old file sees nothing after that. Changes come in bursts (a
 * save writes, renames and touches; a `git checkout` rewrites several files), so the reload waits until no
 * change has come for DEBOUNCE. A spec from a URL has its documents fetched again every SPEC_WATCH_INTERVAL
 * seconds. Nothing is reloaded unless a file's or document's content changed (a touch, a save without edits).
 *
 * A server on the HTTP transport also reloads on SIGHUP, with or without --watch, and then whether or not the
 * spec changed: credentials are read again too (a rotated `file:` or Secrets Manager secret), and open sessions
 * carry on. Over stdio SIGHUP keeps its usual meaning (the terminal went away: stop).
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Queue, Scope } from "effect"
import { createHash } from "node:crypto"
import { type FSWatcher, watch } from "node:fs"
import { readFile } from "node:fs/promises"
import { basename, dirname } from "node:path"
import { AppConfig } from "./AppConfig.ts"
import { Discovery } from "./Discovery.ts"
import { McpServer } from "./McpServer.ts"
import { SpecLoader } from "./SpecLoader.ts"
import { ToolCatalog } from "./ToolCatalog.ts"

/** How long the files must stay unchanged before the spec is loaded again. */
const DEBOUNCE = Duration.millis(300)

const digest = (data: Uint8Array) => createHash("sha256").update(data).digest("hex")

/** Each file's content hash ("missing" for a file that cannot be read). */
const fileDigests = (files: ReadonlyArray<string>) =>
  Effect.promise(() =>
    Promise.all(files.map(async (file) => {
      try {
        return `${file}\0${digest(await readFile(file))}`
      } catch {
        return `${file}\0missing`
      }
    }))
  )

/** What went wrong in a failed load, as one line (a start-up error's message, naming the spec it is about). */
const reason = (cause: Cause.Cause<unknown>) =>
  Option.match(Cause.findErrorOption(cause), {
    onNone: () => Cause.pretty(cause),
    onSome: (e) => {
      const { source, message } = e as { source?: string; message?: string }
      return `${source !== undefined ? `spec ${source}: ` : ""}${message ?? String(e)}`
    }
  })

export const SpecWatch = {
  /**
   * With --watch, reloads `spec` (everything built from the spec) when it changes; `loader` reads specs from
   * URLs (a new one for each look, so nothing cached is taken for the document). Over HTTP, also on SIGHUP.
   */
  layer: <E, R, R2>(spec: Layer.Layer<ToolCatalog | Discovery, E, R>, loader: Layer.Layer<SpecLoader, never, R2>) =>
    Layer.effectDiscard(Effect.gen(function*() {
      const config = yield* AppConfig
      const hangup = config.transport === "http"
      if (!config.watch && !hangup) return
      const mcp = yield* McpServer
      const context = yield* Effect.context<R | R2>()
      const changes = yield* Queue.sliding<void>(1)
      let watchers: Array<FSWatcher> = []
      /** Watches the directories of `files`, for changes to those files. */
      const watchFiles = (files: ReadonlyArray<string>) => {
        for (const w of watchers) w.close()
        const byDir = new Map<string, Set<string>>()
        for (const file of files) byDir.set(dirname(file), (byDir.get(dirname(file)) ?? new Set()).add(basename(file)))
        watchers = [...byDir].flatMap(([dir, names]) => {
          try {
            const watcher = watch(dir, { persistent: false }, (_event, name) => {
              if (name === null || names.has(name)) Queue.offerUnsafe(changes, undefined)
            })
            watcher.on("error", () => undefined) // the directory went away: its files now read as missing
            return [watcher]
          } catch (e) {
            Effect.runFork(Effect.logWarning(`--watch: cannot watch ${dir}: ${(e as Error).message}`).pipe(Effect.provideContext(context)))
            return []
          }
        })
      }

      const configured = [config.spec, ...config.additionalSpecs.map((s) => s.spec)].filter((s) => /^https?:\/\//i.test(s))
      /** The URLs to fetch: every document of the specs read from URLs, and each configured spec URL (one that did not load too). */
      const urlsOf = (catalog: ToolCatalog["Service"]) => {
        const urls = new Set(catalog.sourceUrls)
        for (const source of configured) if (!urls.has(URL.canParse(source) ? new URL(source).href : source)) urls.add(source)
        return [...urls]
      }
      let remote = urlsOf(mcp.catalog())
      /** The last digest of each document fetched: one that cannot be fetched now keeps its last one. */
      const documents = new Map<string, string>()
      /** Documents that could not be fetched at the last look (said once, until they can be again). */
      const unreachable = new Set<string>()
      const remoteDigests = Effect.gen(function*() {
        if (remote.length === 0) return []
        const read = Context.get(yield* Layer.buildWithMemoMap(loader, yield* Layer.makeMemoMap, yield* Effect.scope), SpecLoader).read
        yield* Effect.forEach(remote, (source) =>
          Effect.result(read(source)).pipe(Effect.flatMap((fetched) => {
            if (fetched._tag === "Success") {
              unreachable.delete(source)
              return Effect.sync(() => documents.set(source, digest(fetched.success.data)))
            }
            if (unreachable.has(source)) return Effect.logDebug(`--watch: still cannot fetch ${source}: ${fetched.failure.message}`)
            unreachable.add(source)
            return Effect.logWarning(`--watch: cannot fetch the spec to see whether it changed; trying again every ${config.watchIntervalSeconds} s: ${fetched.failure.message}`)
          })), { concurrency: 8, discard: true })
        return remote.map((source) => `${source}\0${documents.get(source) ?? "unread"}`)
      }).pipe(Effect.scoped, Effect.provideContext(context))
      /** What the spec is made of now: each file's and document's digest. */
      const fingerprint = (files: ReadonlyArray<string>) =>
        Effect.map(Effect.all([fileDigests(files), remoteDigests]), (parts) => parts.flat().join("\n"))

      let files = mcp.catalog().sourceFiles
      // what the spec was made of at start; taken in the background (below), not during start-up. Without --watch
      // nothing is compared: a SIGHUP always reloads
      let seen = ""
      /** A SIGHUP came: the next reload happens whatever the content. */
      let forced = false
      /** The scope of the spec built by the last reload (the one built at start-up lives as long as the server). */
      let loaded: Scope.Closeable | undefined
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          for (const w of watchers) w.close()
          if (loaded !== undefined) yield* Scope.close(loaded, Exit.void)
        })
      )

      const reload = Effect.gen(function*() {
        const force = forced
        forced = false
        const now = config.watch ? yield* fingerprint(files) : ""
        if (now === seen && !force) return yield* Effect.logDebug("--watch: the spec's content has not changed; nothing to reload")
        const previous = seen
        seen = now
        const before = mcp.catalog().tools.length
        const scope = yield* Scope.make()
        const built = yield* Layer.buildWithMemoMap(spec, yield* Layer.makeMemoMap, scope).pipe(Effect.provideContext(context), Effect.exit)
        if (built._tag === "Failure") {
          yield* Scope.close(scope, built)
          // a spec URL is tried again at the next look (what failed may have been the fetch); a file at its next change
          if (remote.length > 0) seen = previous
          return yield* Effect.logError(`${force ? "SIGHUP" : "--watch"}: the spec does not load; still serving the previous ${before} tools: ${reason(built.cause)}`)
        }
        const catalog = Context.get(built.value, ToolCatalog)
        yield* mcp.replace(catalog, Context.get(built.value, Discovery))
        // calls still running on the previous spec's services keep them: closing their scope only stops background work
        if (loaded !== undefined) yield* Scope.close(loaded, built)
        loaded = scope
        // the new spec may be made of other documents: those are what is compared from now on
        const urls = urlsOf(catalog)
        const filesChanged = catalog.sourceFiles.join("\n") !== files.join("\n")
        if (config.watch && (filesChanged || urls.join("\n") !== remote.join("\n"))) {
          if (filesChanged) watchFiles(catalog.sourceFiles)
          files = catalog.sourceFiles
          remote = urls
          seen = yield* fingerprint(files)
        }
        yield* Effect.logInfo(`${force ? "SIGHUP" : "--watch"}: spec reloaded: ${catalog.tools.length} tools (before: ${before}); clients are told the tool list changed`)
      })

      if (hangup) {
        const onHangup = () => {
          forced = true
          Queue.offerUnsafe(changes, undefined)
        }
        process.on("SIGHUP", onHangup)
        yield* Effect.addFinalizer(() => Effect.sync(() => process.off("SIGHUP", onHangup)))
      }
      if (config.watch) {
        watchFiles(files)
        yield* Effect.logInfo(
          `--watch: watching ${[...files, ...remote].join(", ")}` +
            (remote.length > 0 ? ` (a URL fetched again every ${config.watchIntervalSeconds} s)` : "")
        )
      }
      if (config.watch && remote.length > 0) {
        yield* Effect.forkScoped(Effect.forever(
          Effect.andThen(Effect.sleep(Duration.seconds(config.watchIntervalSeconds)), Effect.sync(() => Queue.offerUnsafe(changes, undefined)))
        ))
      }
      const initial = config.watch ? Effect.map(fingerprint(files), (now) => void (seen = now)) : Effect.void
      yield* Effect.forkScoped(Effect.andThen(initial, Effect.forever(Effect.gen(function*() {
        yield* Queue.take(changes)
        // the burst of changes ends first: wait until none has come for DEBOUNCE
        do yield* Effect.sleep(DEBOUNCE)
        while (Option.isSome(yield* Queue.poll(changes)))
        yield* reload.pipe(Effect.catchCause((cause) => Effect.logError(`--watch: reloading the spec failed: ${Cause.pretty(cause)}`)))
      }))))
    }))
}
