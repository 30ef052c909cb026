/**
 * A sweep of one spec: every operation called once, through the built server over stdio, against the Prism
 * mock server, which checks each request against the spec (a missing parameter, a body without a required
 * field, a wrong content type come back as 4xx, and Prism's log says why). Arguments are made from each
 * tool's input schema by json-schema-faker (required fields, examples and defaults first), so a refusal
 * points at the mapping or the request builder, at the spec, or at the random arguments. Not a test (the
 * answers depend on the faker's choices); a way to find what a real spec's operations get wrong.
 *
 *   npm run build && node test/sweep.ts <spec in ../shared/specs, or a path> [server args…]
 *
 * The server gets `--base-url <prism> --cache-backend none --tool-mode all`, no retries and no circuit breaker
 * (one spec's Prism 5xx must not pause the calls after it), and the `AUTH_*` variables of
 * this environment (`AUTH_SCHEME_<NAME>=x` gives a scheme a credential). Prints each call that was refused
 * (other than 401/403), then a count by outcome; PRISM_LOG=<file> keeps Prism's log.
 */
import { createWriteStream, existsSync } from "node:fs"
import jsf from "json-schema-faker"
import { connectStdio, spec, startPrism, stop, textOf } from "./support/processes.ts"

const [file, ...serverArgs] = process.argv.slice(2)
if (file === undefined || !existsSync(spec(file))) {
  process.stderr.write(`${file === undefined ? "" : `no spec at ${spec(file)}\n`}usage: node test/sweep.ts <spec> [server args…]\n`)
  process.exit(2)
}

jsf.option({
  useExamplesValue: true,
  useDefaultValue: true,
  alwaysFakeOptionals: false,
  fixedProbabilities: true,
  failOnInvalidTypes: false,
  failOnInvalidFormat: false,
  maxItems: 2
})

const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("AUTH_"))) as Record<string, string>
const { url, child } = await startPrism(spec(file))
const log = process.env["PRISM_LOG"]
if (log !== undefined) {
  const out = createWriteStream(log)
  child.stdout!.pipe(out)
  child.stderr!.pipe(out)
}
try {
  const mcp = await connectStdio(["--spec", spec(file), "--base-url", url, "--cache-backend", "none", "--tool-mode", "all", "--retry-max-attempts", "1", "--circuit-breaker-failure-threshold", "0", ...serverArgs], env)
  try {
    const { tools } = await mcp.client.listTools()
    const outcomes: Record<string, number> = {}
    for (const tool of tools) {
      let args: Record<string, unknown>
      try {
        args = jsf.generate(tool.inputSchema as never) as Record<string, unknown>
      } catch (e) {
        args = {}
        process.stdout.write(`--- ${tool.name}: no arguments made (${(e as Error).message})\n`)
      }
      const result = await mcp.client.callTool({ name: tool.name, arguments: args })
      const text = textOf(result)
      const outcome = result.isError === true ? (/HTTP (\d{3})/.exec(text)?.[1] ?? "tool error") : "ok"
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      if (outcome !== "ok" && outcome !== "401" && outcome !== "403") {
        process.stdout.write(`--- ${tool.name} ${JSON.stringify(args).slice(0, 300)}\n${text.slice(0, 700)}\n`)
      }
    }
    process.stdout.write(`${file}: ${tools.length} tools, ${JSON.stringify(outcomes)}\n`)
  } finally {
    await mcp.close()
  }
} catch (e) {
  process.stderr.write(`sweep of ${file} failed: ${(e as Error).message}\n`)
  process.exitCode = 1
} finally {
  await stop(child)
}
