#!/usr/bin/env node
/**
 * The `openapi-mcp-server` command. Checks the Node.js version before loading anything that needs a newer
 * one, so an old Node gets one clear line instead of a stack trace.
 */
import { prefetchSpec } from "../SpecLoader/Prefetch.ts"

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `openapi-mcp-server: Node.js >= 22.19 is required; this is ${process.versions.node} (${process.execPath})\n`
  )
  process.exit(1)
}
// Node's on-disk compile cache makes every start after the first one faster. (Required, not imported: the
// ESM facade of node:module would load its every lazy part, source maps included.)
process.getBuiltinModule("node:module").enableCompileCache?.()
// the spec file is read while the modules below load
prefetchSpec(process.argv.slice(2), process.env)
// The MCP SDK's zod schemas parse without generating code (zod's `jitless`, set before zod loads): generating a
// parser costs 2-3 ms on the first message of each kind, and a tool call, the message that repeats, is checked
// without zod (McpServer/Dispatch.ts).
;(globalThis as { __zod_globalConfig?: object }).__zod_globalConfig = { jitless: true }
await import("./run.ts")
