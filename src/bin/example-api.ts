#!/usr/bin/env node
/** Runs the bundled example pet store API alone (for docker/compose.yaml): PORT (8081), HOST (0.0.0.0), API_KEY (none). */
import { startExampleApi } from "../demo/ExampleApi.ts"

const api = await startExampleApi({
  port: Number(process.env["PORT"] ?? 8081),
  host: process.env["HOST"] ?? "0.0.0.0",
  ...(process.env["API_KEY"] ? { apiKey: process.env["API_KEY"] } : {})
})
process.stderr.write(`example API listening on ${api.url}\n`)
const stop = () => void api.close().then(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
