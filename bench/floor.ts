/**
 * The bench's floor: the least a Node.js MCP server can do for the bench's tool call, to show how much of a
 * cell's cost is the platform's (process wake-ups, socket writes, the SDK client) and not the server's.
 * It answers `initialize` and `tools/call` for one tool, with one undici request to a fixed upstream path
 * per call and the body passed through as text: no argument checks, no tool catalog, no response mapping,
 * no timeouts, retries, cache, telemetry or inbound security. Never a server to use; only a reference row.
 *
 *   node bench/floor.ts --base-url <upstream> --path /pets/1 [--transport http --host 127.0.0.1 --port N]
 *
 * Over stdio: newline-delimited JSON-RPC on stdin/stdout. Over HTTP: POST /mcp answered with JSON (one
 * session id handed out at initialize, never checked), GET /mcp 405, DELETE /mcp 200, GET /healthz 200.
 * Other arguments (the server's own flags, which the bench passes to both) are ignored.
 */
import { createServer, type ServerResponse } from "node:http"
import { Pool } from "undici"

const argument = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}
const base = new URL(argument("--base-url") ?? "")
const path = `${base.pathname.replace(/\/$/, "")}${argument("--path") ?? "/"}`
const pool = new Pool(base.origin, { connections: 128 })

type Message = { readonly id?: string | number; readonly method?: string; readonly params?: { readonly protocolVersion?: string } }

/** The JSON-RPC answer to `message`, or undefined for a notification. */
const answer = async (message: Message): Promise<string | undefined> => {
  if (message.id === undefined) return undefined
  if (message.method === "initialize") {
    return JSON.stringify({
      jsonrpc: "2.0",
      id: message.id,
      result: { protocolVersion: message.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "floor", version: "0" } }
    })
  }
  if (message.method !== "tools/call") return JSON.stringify({ jsonrpc: "2.0", id: message.id, result: {} })
  const response = await pool.request({ method: "GET", path, headers: { accept: "application/json" } })
  const text = await response.body.text()
  return JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { content: [{ type: "text", text }], isError: response.statusCode >= 400 } })
}

if (argument("--transport") === "http") {
  const reply = (res: ServerResponse, status: number, body?: string, headers: Record<string, string> = {}) => {
    if (body === undefined) return void res.writeHead(status).end()
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...headers }).end(body)
  }
  createServer((req, res) => {
    if (req.url === "/healthz") return reply(res, 200, "{}")
    if (req.method === "GET") return reply(res, 405)
    if (req.method !== "POST") return reply(res, 200)
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk)).on("end", () => {
      const message = JSON.parse(Buffer.concat(chunks).toString()) as Message
      void answer(message).then((body) => reply(res, body === undefined ? 202 : 200, body, { "mcp-session-id": "floor" }))
    })
  }).listen(Number(argument("--port")), argument("--host") ?? "127.0.0.1")
} else {
  let pending = ""
  process.stdin.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      const line = pending.slice(0, end)
      pending = pending.slice(end + 1)
      void answer(JSON.parse(line) as Message).then((body) => body !== undefined && process.stdout.write(`${body}\n`))
    }
  }).on("end", () => process.exit(0))
}
