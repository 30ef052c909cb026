/**
 * CLI entry: parse flags, compose the layers, serve over stdio or Streamable HTTP.
 * In stdio mode stdout belongs to MCP: everything else (logs, start-up errors) goes to stderr.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { AppConfig } from "../AppConfig.ts"
import { helpText, parseArgv } from "../AppConfig/Options.ts"
import { buildReport, formatText } from "../Check.ts"
import { AppLayer, LoggingLayer, SpecLoaderLive } from "../Main.ts"
import { McpServer, PACKAGE_VERSION } from "../McpServer.ts"

const fatal = (message: string, code: number): never => {
  process.stderr.write(`openapi-mcp-server: ${message}\n`)
  process.exit(code)
}

let parsed: ReturnType<typeof parseArgv>
try {
  parsed = parseArgv(process.argv.slice(2))
} catch (e) {
  fatal(`${(e as Error).message}\nRun 'openapi-mcp-server --help' for the list of flags.`, 2)
}

if (parsed!.command === "help") {
  process.stdout.write(helpText(PACKAGE_VERSION))
  process.exit(0)
}
if (parsed!.command === "version") {
  process.stdout.write(`${PACKAGE_VERSION}\n`)
  process.exit(0)
}

const ConfigLayer = AppConfig.layerFrom(parsed!.values, process.env)

/** Start-up failures that are the user's to fix: one plain line on stderr, exit 1. */
const START_ERRORS = new Set(["ConfigInvalid", "SpecLoadError", "AuthConfigError", "CatalogError", "TelemetryError"])

/** `check`: the report on stdout, progress on stderr while a big spec loads; exit 1 on errors. */
const check = Effect.gen(function*() {
  const config = yield* AppConfig
  const started = Date.now()
  const ticker = setInterval(() => {
    process.stderr.write(`checking ${config.spec}: ${Math.round((Date.now() - started) / 1000)} s…\n`)
  }, 1000)
  const report = yield* buildReport(config).pipe(
    Effect.provide(SpecLoaderLive),
    Effect.ensuring(Effect.sync(() => clearInterval(ticker)))
  )
  process.stdout.write(config.checkFormat === "json" ? `${JSON.stringify(report, null, 2)}\n` : formatText(report))
  if (report.errors.length > 0) process.exitCode = 1
})

const serve = Effect.gen(function*() {
  const config = yield* AppConfig
  if (config.transport === "stdio") {
    if (config.inbound.forwardHeaders.length > 0) {
      yield* Effect.logWarning("MCP_FORWARD_HEADERS does nothing over stdio: a stdio client sends no HTTP headers (use --transport http)")
    }
    yield* (yield* McpServer).serveStdio
    return
  }
  // loaded only for the HTTP transport: stdio start-up skips the HTTP server modules
  const { HttpApp } = yield* Effect.promise(() => import("../HttpApp.ts"))
  return yield* Layer.launch(HttpApp.layer)
}).pipe(Effect.provide(AppLayer))

const program = (parsed!.command === "check" ? check : serve).pipe(
  Effect.provide(Layer.unwrap(Effect.gen(function*() {
    return LoggingLayer((yield* AppConfig).logLevel)
  }))),
  Effect.provide(ConfigLayer),
  Effect.tapCause((cause) => {
    const failure = Cause.findErrorOption(cause)
    if (Option.isSome(failure)) {
      const e = failure.value as { _tag?: string; message?: string; source?: string }
      if (e._tag !== undefined && START_ERRORS.has(e._tag)) {
        const where = e._tag === "SpecLoadError" ? `spec ${e.source}: ` : ""
        return Effect.sync(() => process.stderr.write(`openapi-mcp-server: cannot start: ${where}${e.message}\n`))
      }
    }
    return Cause.hasInterruptsOnly(cause)
      ? Effect.void
      : Effect.sync(() => process.stderr.write(`openapi-mcp-server: fatal: ${Cause.pretty(cause)}\n`))
  })
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  // Interrupted by SIGINT/SIGTERM or ended by stdin EOF: a clean stop, exit 0.
  teardown: (exit, onExit) =>
    onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? Number(process.exitCode ?? 0) : 1)
})
