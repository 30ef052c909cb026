/**
 * Response caching through the real CLI: HTTP cache semantics against a counting upstream, and a real
 * redis-server shared by two server processes, killed and restarted mid-test.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import { connectStdio, fixture, startRedis, textOf } from "../support/processes.ts"

const SPEC = fixture("cache.yaml")

/** An upstream whose answer's caching headers depend on the path's mode; counts requests per mode. */
const startCountingUpstream = async () => {
  const hits: Record<string, number> = {}
  const headers: Record<string, Record<string, string>> = {
    plain: {},
    maxage: { "cache-control": "max-age=60" },
    nostore: { "cache-control": "no-store" },
    etag: { "cache-control": "no-cache", etag: "\"v1\"" }
  }
  const server = createServer((req, res) => {
    req.resume()
    const mode = (req.url ?? "").split("/")[2] ?? ""
    hits[mode] = (hits[mode] ?? 0) + 1
    if (req.method === "GET" && mode === "etag" && req.headers["if-none-match"] === "\"v1\"") {
      return void res.writeHead(304, { etag: "\"v1\"" }).end()
    }
    const key = String(req.headers["x-api-key"] ?? "")
    res.writeHead(200, { "content-type": "application/json", ...headers[mode] })
      .end(JSON.stringify({ mode, n: hits[mode], key }))
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hits,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

const cacheStatus = (result: unknown) =>
  ((result as { _meta?: Record<string, { status: string }> })._meta?.["openapi-mcp-server/cache"])?.status

describe("HTTP cache semantics through the server", () => {
  let up: Awaited<ReturnType<typeof startCountingUpstream>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    up = await startCountingUpstream()
    mcp = await connectStdio(["--spec", SPEC, "--base-url", up.url])
  })
  afterAll(async () => {
    await mcp?.close()
    await up?.close()
  })
  const call = (mode: string) => mcp.client.callTool({ name: "getItem", arguments: { mode } })

  it("caches a plain answer for CACHE_TTL and says so in _meta", async () => {
    assert.strictEqual(cacheStatus(await call("plain")), "miss")
    const again = await call("plain")
    assert.strictEqual(cacheStatus(again), "hit")
    assert.deepStrictEqual(again.structuredContent, { mode: "plain", n: 1, key: "" })
    assert.strictEqual(up.hits["plain"], 1)
  })

  it("caches max-age answers and never no-store ones", async () => {
    await call("maxage")
    await call("maxage")
    assert.strictEqual(up.hits["maxage"], 1)
    await call("nostore")
    assert.strictEqual(cacheStatus(await call("nostore")), "miss")
    assert.strictEqual(up.hits["nostore"], 2)
  })

  it("revalidates no-cache answers with their ETag", async () => {
    await call("etag")
    const again = await call("etag")
    assert.strictEqual(cacheStatus(again), "revalidated")
    assert.deepStrictEqual(again.structuredContent, { mode: "etag", n: 1, key: "" })
    assert.strictEqual(up.hits["etag"], 2)
  })

  it("drops the cached GET after a successful PUT to the same path", async () => {
    await call("maxage")
    await mcp.client.callTool({ name: "putItem", arguments: { mode: "maxage", body: { a: 1 } } })
    const after = await call("maxage")
    assert.strictEqual(cacheStatus(after), "miss")
    assert.strictEqual(up.hits["maxage"], 3) // GET, PUT, GET
  })
})

describe("Redis shared by two server processes", () => {
  let up: Awaited<ReturnType<typeof startCountingUpstream>>
  let redis: Awaited<ReturnType<typeof startRedis>>
  beforeAll(async () => {
    up = await startCountingUpstream()
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
    await up?.close()
  })

  it("shares entries, keeps working while Redis is down, and resumes caching when it is back", async () => {
    const env = { CACHE_BACKEND: "redis", REDIS_URL: redis.url }
    const a = await connectStdio(["--spec", SPEC, "--base-url", up.url], env)
    const b = await connectStdio(["--spec", SPEC, "--base-url", up.url], env)
    try {
      assert.strictEqual(cacheStatus(await a.client.callTool({ name: "getItem", arguments: { mode: "maxage" } })), "miss")
      const fromB = await b.client.callTool({ name: "getItem", arguments: { mode: "maxage" } })
      assert.strictEqual(cacheStatus(fromB), "hit", textOf(fromB))
      assert.strictEqual(up.hits["maxage"], 1)

      await redis.stop()
      for (let i = 0; i < 3; i++) {
        const r = await a.client.callTool({ name: "getItem", arguments: { mode: "plain" } })
        assert.isUndefined(r.isError, textOf(r))
        assert.strictEqual(cacheStatus(r), "bypass")
      }
      assert.strictEqual(up.hits["plain"], 3)
      const warnings = a.stderr().split("\n").filter((l) => l.includes("cache store (redis) unavailable"))
      assert.strictEqual(warnings.length, 1, "the outage is logged once")

      redis = await startRedis(redis.port)
      let status: string | undefined
      for (let i = 0; i < 50 && status !== "hit"; i++) {
        await new Promise((r) => setTimeout(r, 100))
        status = cacheStatus(await a.client.callTool({ name: "getItem", arguments: { mode: "plain" } }))
      }
      assert.strictEqual(status, "hit", "caching resumed after Redis came back")
      assert.include(a.stderr(), "cache store (redis) reachable again")
    } finally {
      await a.close()
      await b.close()
    }
  })

  it("never serves one credential's entry to another", async () => {
    const env = (key: string) => ({
      CACHE_BACKEND: "redis", REDIS_URL: redis.url, AUTH_TYPE: "api_key", AUTH_API_KEY: key, AUTH_API_KEY_NAME: "X-Api-Key"
    })
    const alice = await connectStdio(["--spec", SPEC, "--base-url", up.url], env("alice"))
    const bob = await connectStdio(["--spec", SPEC, "--base-url", up.url], env("bob"))
    try {
      const before = up.hits["maxage"] ?? 0
      const ra = await alice.client.callTool({ name: "getItem", arguments: { mode: "maxage" } })
      const rb = await bob.client.callTool({ name: "getItem", arguments: { mode: "maxage" } })
      assert.strictEqual((ra.structuredContent as { key: string }).key, "alice")
      assert.strictEqual((rb.structuredContent as { key: string }).key, "bob")
      assert.strictEqual(up.hits["maxage"], before + 2)
      assert.strictEqual(cacheStatus(await bob.client.callTool({ name: "getItem", arguments: { mode: "maxage" } })), "hit")
    } finally {
      await alice.close()
      await bob.close()
    }
  })
})
