/**
 * The benchmark's upstream: the bundled example pet store API (node:http, keep-alive) on a free 127.0.0.1
 * port, in its own process so its CPU is accounted apart; with `--otlp-sink`, an OTLP/HTTP endpoint that
 * accepts and drops span batches instead (so the bench client does not do that work). Prints one JSON line `{"url", "pid"}` on stdout,
 * then serves until SIGTERM, SIGINT or the end of stdin (the parent went away). A `count` line on stdin is
 * answered with `{"requests": n}`, the number of HTTP requests received so far (to check that each tool
 * call really reached the upstream, and was not answered from a cache).
 */
import { subscribe } from "node:diagnostics_channel"
import { createInterface } from "node:readline"
import { createServer } from "node:http"
import { startExampleApi } from "../src/demo/ExampleApi.ts"

/** Answers every request with 200 `{}` once its body is read (an OTLP/HTTP collector that keeps nothing). */
const startSink = () =>
  new Promise<{ url: string; close: () => Promise<void> }>((resolve) => {
    const server = createServer((req, res) => req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}")))
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        close: () => new Promise<void>((r) => server.close(() => r()))
      }))
  })

let requests = 0
subscribe("http.server.request.start", () => {
  requests++
})
const api = process.argv.includes("--otlp-sink") ? await startSink() : await startExampleApi({ port: 0, host: "127.0.0.1" })
process.stdout.write(`${JSON.stringify({ url: api.url, pid: process.pid })}\n`)
let stopping = false
const stop = () => {
  if (stopping) return
  stopping = true
  void api.close().finally(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
const lines = createInterface({ input: process.stdin })
lines.on("line", (line) => {
  if (line.trim() === "count") process.stdout.write(`${JSON.stringify({ requests })}\n`)
})
lines.on("close", stop)
