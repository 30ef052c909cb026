#!/usr/bin/env node
/**
 * `npm run demo`: the whole thing, offline. Starts the bundled example pet store API, starts
 * openapi-mcp-server on it (Streamable HTTP), proves it works with a real MCP client (list tools, call
 * a few), then prints how to connect your own client and keeps running until Ctrl-C.
 * `--once` exits after the self-check (used by the tests).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { startExampleApi } from "../demo/ExampleApi.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "../..")
const specPath = resolve(root, "examples/petstore.yaml")
const cli = resolve(here, "../bundle/cli.js")
const once = process.argv.includes("--once")
const API_KEY = "demo-key"

const portFree = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const s = createServer().once("error", () => res(false)).listen(port, "127.0.0.1", () => s.close(() => res(true)))
  })
const pickPort = async (preferred: number): Promise<number> => {
  if (await portFree(preferred)) return preferred
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

const log = (s: string) => process.stdout.write(`${s}\n`)

const main = async () => {
  const api = await startExampleApi({ port: await pickPort(8081), apiKey: API_KEY })
  const port = await pickPort(8000)
  const args = [
    cli, "--spec", specPath, "--base-url", api.url, "--transport", "http", "--host", "127.0.0.1", "--port", String(port),
    "--auth-type", "api_key", "--auth-api-key-name", "X-API-Key", "--auth-api-key", API_KEY, "--log-level", "warning"
  ]
  const server = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] })
  const stop = async (code: number) => {
    server.kill("SIGTERM")
    await api.close()
    process.exit(code)
  }
  process.on("SIGINT", () => void stop(0))
  process.on("SIGTERM", () => void stop(0))
  server.on("exit", (code) => {
    if (code !== 0 && code !== null) {
      log(`openapi-mcp-server exited with code ${code}`)
      void api.close().then(() => process.exit(1))
    }
  })

  const endpoint = `http://127.0.0.1:${port}/mcp`
  const client = new Client({ name: "demo-client", version: "1.0.0" })
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)))
      break
    } catch (e) {
      if (attempt > 100) throw e
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  log(`Example API:        ${api.url} (spec: examples/petstore.yaml, needs header X-API-Key: ${API_KEY})`)
  log(`openapi-mcp-server: ${endpoint} (Streamable HTTP)\n`)
  const { tools } = await client.listTools()
  log(`tools/list → ${tools.length} tools: ${tools.map((t) => t.name).join(", ")}\n`)
  const show = async (name: string, args: Record<string, unknown>) => {
    const result = await client.callTool({ name, arguments: args })
    const text = (result.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? `[${c.type}]`).join(" ")
    log(`tools/call ${name} ${JSON.stringify(args)}\n  → ${result.isError ? "error: " : ""}${text.replace(/\n/g, "\n    ")}\n`)
    return result
  }
  await show("listPets", { status: "available" })
  const created = await show("createPet", { name: "Bella", status: "available", tags: ["dog"] })
  const id = (created.structuredContent as { id?: number } | undefined)?.id
  await show("getPet", { petId: id ?? 1 })
  await show("getPet", { petId: "not-a-number" })
  await show("getPet", { petId: 999 })
  await client.close()

  log("Connect your own MCP client:")
  log(`  Streamable HTTP: ${endpoint}`)
  log("  stdio (e.g. Claude Desktop's claude_desktop_config.json):")
  log(JSON.stringify({
    mcpServers: {
      petstore: {
        command: "npx",
        args: ["openapi-mcp-server", "--spec", specPath, "--base-url", api.url],
        env: { AUTH_TYPE: "api_key", AUTH_API_KEY_NAME: "X-API-Key", AUTH_API_KEY: API_KEY }
      }
    }
  }, null, 2).replace(/^/gm, "  "))
  if (once) return stop(0)
  log("\nRunning. Press Ctrl-C to stop.")
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
