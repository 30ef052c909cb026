/**
 * In-process cost of each layer of a tool call, against the bench's example upstream (own process):
 * main-thread CPU per call (process.cpuUsage) for bare undici, Upstream.execute, Invoker.call and a full MCP
 * round trip over the SDK's in-memory transport (client included). Sequential calls (C=1) after warm-up.
 * For finding where the per-call CPU goes while changing the code; the numbers that count are `npm run bench`'s.
 *
 *   node bench/layers.ts [--calls N] [--cache] [--traced]
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { createServer } from "node:http"
import { parseArgs } from "node:util"
import { Agent, request } from "undici"
import { AppConfig, defaults } from "../src/AppConfig.ts"
import { Invoker } from "../src/Invoker.ts"
import { AppLayer } from "../src/Main.ts"
import { McpServer } from "../src/McpServer.ts"
import { Upstream } from "../src/Upstream.ts"
import { EXAMPLE_SPEC, startUpstream } from "./lib.ts"

const { values: flags } = parseArgs({
  options: { calls: { type: "string", default: "5000" }, cache: { type: "boolean" }, traced: { type: "boolean" } }
})
const calls = Number(flags.calls)

const measure = async (name: string, call: () => Promise<unknown>) => {
  for (let i = 0; i < Math.min(2000, calls); i++) await call()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < calls; i++) await call()
  const cpu = process.cpuUsage(cpu0)
  const ms = performance.now() - t0
  process.stdout.write(
    `${name.padEnd(22)} ${((cpu.user + cpu.system) / 1000 / calls).toFixed(3)} ms CPU/call  ${(ms / calls).toFixed(3)} ms/call\n`
  )
}

const upstream = await startUpstream()
const sinkServer = process.argv.includes("--traced")
  ? createServer((req, res) => req.resume().on("end", () => res.writeHead(200).end("{}")))
  : undefined
if (sinkServer !== undefined) await new Promise<void>((r) => sinkServer.listen(0, "127.0.0.1", () => r()))
const sink = sinkServer === undefined ? undefined : `http://127.0.0.1:${(sinkServer.address() as { port: number }).port}`
try {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 })
  await measure("undici", async () => {
    const res = await request(`${upstream.url}/pets/1`, { dispatcher: agent })
    await res.body.arrayBuffer()
  })
  await agent.close()

  const config = AppConfig.layerTest({
    spec: EXAMPLE_SPEC,
    baseUrl: Option.some(upstream.url),
    cache: { ...defaults.cache, backend: process.argv.includes("--cache") ? "memory" : "none" },
    logLevel: "Warn",
    // --traced: every call traced, spans batched to a local sink that drops them
    ...(sink !== undefined ? { telemetry: { ...defaults.telemetry, tracesEndpoint: Option.some(sink) } } : {})
  })
  const runtime = ManagedRuntime.make(AppLayer.pipe(Layer.provideMerge(config)))
  const { invoker, server, up } = await runtime.runPromise(Effect.gen(function*() {
    return { up: yield* Upstream, invoker: yield* Invoker, server: yield* McpServer }
  }))
  const req = { method: "GET" as const, url: `${upstream.url}/pets/1`, query: [], headers: {}, cookies: [], body: undefined }
  await measure("Upstream.execute", () => runtime.runPromise(up.execute(req, up.defaultPolicy)))
  await measure("Invoker.call", () => runtime.runPromise(invoker.call("getPet", { petId: 1 })))
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  await server.create().connect(serverSide)
  const client = new Client({ name: "layers", version: "0" })
  await client.connect(clientSide)
  await measure("MCP in-memory", () => client.callTool({ name: "getPet", arguments: { petId: 1 } }))
  await client.close()
  await runtime.dispose()
} finally {
  sinkServer?.close()
  await upstream.stop()
}
