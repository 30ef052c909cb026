/**
 * Resilience through the real CLI and the MCP SDK client, against a local fault-injecting upstream:
 * 503s, resets, 429 + Retry-After, a dead port, hangs, slowness. Every wait here is short and bounded.
 */
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connectHttp, connectStdio, fixture, freePort, startHttpServer, startRedis, textOf } from "../support/processes.ts"

const SPEC = fixture("faults.yaml")

interface Seen { path: string; headers: IncomingMessage["headers"]; closedEarly: boolean }

/** Path → handler(n = how many times this path was hit, 1-based). */
const startFaulty = async () => {
  /** Whether /switch answers 200 (else 500). */
  const state = { healthy: true }
  const seen: Array<Seen> = []
  const hits = new Map<string, number>()
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body))
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]!
    const n = (hits.get(path) ?? 0) + 1
    hits.set(path, n)
    const entry: Seen = { path, headers: req.headers, closedEarly: false }
    seen.push(entry)
    res.on("close", () => {
      if (!res.writableEnded) entry.closedEarly = true
    })
    req.resume()
    req.on("end", () => {
      switch (path) {
        case "/flaky": return n <= 2 ? json(res, 503, { error: "busy" }) : json(res, 200, { ok: true, n })
        case "/reset": return n === 1 ? req.socket.destroy() : json(res, 200, { ok: true, n })
        case "/limited": return n === 1 ? json(res, 429, { error: "slow down" }, { "retry-after": "1" }) : json(res, 200, { ok: true, n })
        // GitHub's way of saying the rate limit is used up: 403, nothing remaining, the reset as epoch seconds
        case "/quota": return json(res, 403, { message: "API rate limit exceeded" }, {
          "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600)
        })
        case "/orders": return json(res, 503, { error: "busy" })
        case "/payments": return n <= 2 ? json(res, 503, { error: "busy" }) : json(res, 201, { paid: true })
        case "/down": return json(res, 500, { error: "broken" })
        case "/switch": return state.healthy ? json(res, 200, { ok: true }) : json(res, 500, { error: "broken" })
        case "/slow": return void setTimeout(() => json(res, 200, { ok: true }), 1500)
        case "/hang": return // never answers
        default: return json(res, 404, {})
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    seen,
    count: (path: string) => seen.filter((s) => s.path === path).length,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}

const configFile = (text: string) => {
  const file = join(mkdtempSync(join(tmpdir(), "faults-")), "config.yaml")
  writeFileSync(file, text)
  return file
}

const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return check()
}

describe("retries through the real server", () => {
  let up: Awaited<ReturnType<typeof startFaulty>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    up = await startFaulty()
    const config = configFile(
      "operations:\n  createPayment: { idempotency_key_header: Idempotency-Key, tool_name: pay, description: Pays. Safe to retry. }\n"
    )
    mcp = await connectStdio(["--spec", SPEC, "--base-url", up.url, "--config", config], { RETRY_BASE_DELAY_MS: "20" })
  })
  afterAll(async () => {
    await mcp?.close()
    await up?.close()
  })

  it("recovers a GET after two 503s", async () => {
    const result = await mcp.client.callTool({ name: "getFlaky", arguments: {} })
    assert.isUndefined(result.isError, textOf(result))
    assert.deepStrictEqual(result.structuredContent, { ok: true, n: 3 })
    assert.strictEqual(up.count("/flaky"), 3)
  })

  it("recovers a GET after a connection reset", async () => {
    const result = await mcp.client.callTool({ name: "getReset", arguments: {} })
    assert.isUndefined(result.isError, textOf(result))
    assert.strictEqual(up.count("/reset"), 2)
  })

  it("waits for Retry-After on a 429, then succeeds", async () => {
    const started = Date.now()
    const result = await mcp.client.callTool({ name: "getLimited", arguments: {} })
    assert.isUndefined(result.isError, textOf(result))
    assert.isAtLeast(Date.now() - started, 950)
    assert.strictEqual(up.count("/limited"), 2)
  })

  it("does not send an operation's calls again until the rate limit its last answer said is used up resets", async () => {
    const first = await mcp.client.callTool({ name: "getQuota", arguments: {} })
    assert.isTrue(first.isError)
    assert.include(textOf(first), "rate limit is used up; it resets in")
    const second = await mcp.client.callTool({ name: "getQuota", arguments: {} })
    assert.isTrue(second.isError)
    assert.include(textOf(second), "not sent: the API's last answer to GET /quota said its rate limit is used up")
    const wait = (second.structuredContent as { error: string; retry_after_seconds: number })
    assert.strictEqual(wait.error, "rate_limited")
    assert.approximately(wait.retry_after_seconds, 3600, 5)
    assert.strictEqual(up.count("/quota"), 1)
  })

  it("sends a POST exactly once, even on 503", async () => {
    const result = await mcp.client.callTool({ name: "createOrder", arguments: { item: "x" } })
    assert.isTrue(result.isError)
    assert.include(textOf(result), "HTTP 503")
    assert.strictEqual(up.count("/orders"), 1)
  })

  it("retries a POST configured with an idempotency key, with one key on every attempt (the tool named and described by the config file)", async () => {
    const listed = (await mcp.client.listTools()).tools.find((t) => t.name === "pay")
    assert.isTrue(listed?.description?.startsWith("Pays. Safe to retry."), listed?.description)
    const result = await mcp.client.callTool({ name: "pay", arguments: { amount: 5 } })
    assert.isUndefined(result.isError, textOf(result))
    const keys = up.seen.filter((s) => s.path === "/payments").map((s) => s.headers["idempotency-key"])
    assert.strictEqual(keys.length, 3)
    assert.strictEqual(new Set(keys).size, 1)
    assert.isString(keys[0])
  })

  it("cancels the upstream request when the client cancels the call", async () => {
    const controller = new AbortController()
    const call = mcp.client.callTool({ name: "getHang", arguments: {} }, undefined, { signal: controller.signal }).catch((e: unknown) => e)
    assert.isTrue(await until(() => up.count("/hang") === 1))
    controller.abort()
    await call
    const hang = up.seen.find((s) => s.path === "/hang")!
    assert.isTrue(await until(() => hang.closedEarly), "the upstream saw its request closed")
  })
})

describe("timeouts, breaker, bulkhead and a dead upstream", () => {
  it("times out each attempt after HTTP_TIMEOUT, closing the request, and says so", async () => {
    const up = await startFaulty()
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", up.url], { HTTP_TIMEOUT: "0.3", RETRY_MAX_ATTEMPTS: "2", RETRY_BASE_DELAY_MS: "10" })
    try {
      const result = await mcp.client.callTool({ name: "getHang", arguments: {} })
      assert.isTrue(result.isError)
      assert.include(textOf(result), "did not answer within 0.3 s (request timeout, HTTP_TIMEOUT)")
      assert.include(textOf(result), "after 2 attempts")
      assert.strictEqual(up.count("/hang"), 2)
      assert.isTrue(await until(() => up.seen.every((s) => s.closedEarly)))
    } finally {
      await mcp.close()
      await up.close()
    }
  })

  it("opens the breaker after consecutive failures and fails fast without calling the upstream", async () => {
    const up = await startFaulty()
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", up.url], {
      CIRCUIT_BREAKER_FAILURE_THRESHOLD: "2", CIRCUIT_BREAKER_RESET_TIMEOUT_MS: "60000", RETRY_MAX_ATTEMPTS: "1"
    })
    try {
      for (let i = 0; i < 2; i++) assert.include(textOf(await mcp.client.callTool({ name: "getDown", arguments: {} })), "HTTP 500")
      const open = await mcp.client.callTool({ name: "getFlaky", arguments: {} })
      assert.isTrue(open.isError)
      assert.include(textOf(open), "circuit breaker open")
      assert.strictEqual((open.structuredContent as { retry_after_seconds: number }).retry_after_seconds, 60)
      assert.strictEqual(up.seen.length, 2)
    } finally {
      await mcp.close()
      await up.close()
    }
  })

  it("answers overflow of the per-origin bulkhead at once", async () => {
    const up = await startFaulty()
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", up.url], { HTTP_MAX_CONNECTIONS: "1", HTTP_MAX_QUEUE: "0" })
    try {
      const slow = mcp.client.callTool({ name: "getSlow", arguments: {} })
      assert.isTrue(await until(() => up.count("/slow") === 1))
      const started = Date.now()
      const refused = await mcp.client.callTool({ name: "getFlaky", arguments: {} })
      assert.isBelow(Date.now() - started, 1000)
      assert.isTrue(refused.isError)
      assert.include(textOf(refused), "too many calls")
      assert.isUndefined((await slow).isError)
      assert.strictEqual(up.count("/flaky"), 0)
    } finally {
      await mcp.close()
      await up.close()
    }
  })

  it("reports an unreachable upstream after its retries", async () => {
    const port = await freePort()
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", `http://127.0.0.1:${port}`], { RETRY_BASE_DELAY_MS: "10" })
    try {
      const result = await mcp.client.callTool({ name: "getFlaky", arguments: {} })
      assert.isTrue(result.isError)
      assert.include(textOf(result), `could not reach the upstream API at http://127.0.0.1:${port} (ECONNREFUSED) (after 3 attempts)`)
    } finally {
      await mcp.close()
    }
  })

  it("interrupts the in-flight upstream request when the HTTP session ends", async () => {
    const up = await startFaulty()
    const server = await startHttpServer(["--spec", SPEC, "--base-url", up.url])
    try {
      const { client, transport } = await connectHttp(server.base)
      const call = client.callTool({ name: "getHang", arguments: {} }).catch((e: unknown) => e)
      assert.isTrue(await until(() => up.count("/hang") === 1))
      await transport.terminateSession()
      const hang = up.seen.find((s) => s.path === "/hang")!
      assert.isTrue(await until(() => hang.closedEarly), "the upstream saw its request closed")
      await client.close()
      await call
    } finally {
      await server.stop()
      await up.close()
    }
  })
})

describe("circuit breakers and rate-limit pauses shared through Redis (CIRCUIT_BREAKER_BACKEND=redis)", () => {
  it("opens every replica's breaker when one sees the API fail, a replica started meanwhile too, and all call again once it is back", async () => {
    const up = await startFaulty()
    const redis = await startRedis()
    const env = {
      CIRCUIT_BREAKER_BACKEND: "redis", REDIS_URL: redis.url, CIRCUIT_BREAKER_FAILURE_THRESHOLD: "2",
      CIRCUIT_BREAKER_RESET_TIMEOUT_MS: "3000", RETRY_MAX_ATTEMPTS: "1"
    }
    const start = () => connectStdio(["--spec", SPEC, "--base-url", up.url], env)
    const [a, b] = await Promise.all([start(), start()])
    let c: Awaited<ReturnType<typeof start>> | undefined
    const call = (replica: typeof a) => replica.client.callTool({ name: "getSwitch", arguments: {} })
    try {
      up.state.healthy = false
      for (let i = 0; i < 2; i++) assert.include(textOf(await call(a)), "500")
      assert.include(textOf(await call(a)), "circuit breaker open")
      // b never called the API, and refuses at once (once the word has come through Redis)
      await new Promise((r) => setTimeout(r, 500))
      const refused = await call(b)
      assert.include(textOf(refused), "circuit breaker open")
      assert.isAtMost((refused.structuredContent as { retry_after_seconds: number }).retry_after_seconds, 3)
      // a replica that starts while it is open finds it open
      c = await start()
      assert.include(textOf(await call(c)), "circuit breaker open")
      assert.strictEqual(up.count("/switch"), 2)
      // the API is back: after the open time the probes go through, and every replica calls it again
      up.state.healthy = true
      await new Promise((r) => setTimeout(r, 3100))
      for (const replica of [b, a, c]) assert.deepStrictEqual((await call(replica)).structuredContent, { ok: true })
    } finally {
      await Promise.all([a.close(), b.close(), c?.close()])
      await redis.stop()
      await up.close()
    }
  })

  it("pauses an operation in every replica once one learns its rate limit is used up, a replica started meanwhile too", async () => {
    const up = await startFaulty()
    const redis = await startRedis()
    const env = { CIRCUIT_BREAKER_BACKEND: "redis", REDIS_URL: redis.url }
    const start = () => connectStdio(["--spec", SPEC, "--base-url", up.url], env)
    const [a, b] = await Promise.all([start(), start()])
    let c: Awaited<ReturnType<typeof start>> | undefined
    const call = (replica: typeof a) => replica.client.callTool({ name: "getQuota", arguments: {} })
    try {
      assert.include(textOf(await call(a)), "rate limit is used up; it resets in")
      await new Promise((r) => setTimeout(r, 500))
      c = await start()
      for (const replica of [b, c]) {
        const paused = await call(replica)
        assert.include(textOf(paused), "not sent: the API's last answer to GET /quota said its rate limit is used up")
        assert.approximately((paused.structuredContent as { retry_after_seconds: number }).retry_after_seconds, 3600, 5)
      }
      assert.strictEqual(up.count("/quota"), 1)
      // another API's operation of the same name is not paused: the pause is the API's
      const other = await startFaulty()
      const d = await connectStdio(["--spec", SPEC, "--base-url", other.url], env)
      try {
        assert.include(textOf(await call(d)), "rate limit is used up; it resets in")
        assert.strictEqual(other.count("/quota"), 1)
      } finally {
        await d.close()
        await other.close()
      }
    } finally {
      await Promise.all([a.close(), b.close(), c?.close()])
      await redis.stop()
      await up.close()
    }
  })
})

describe("MCP logging: a call's warnings reach the client that made it", () => {
  type Logged = { level: string; logger?: string; data: Record<string, unknown> }
  const listen = (client: Awaited<ReturnType<typeof connectHttp>>["client"]) => {
    const logged: Array<Logged> = []
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logged.push(n.params as Logged))
    return logged
  }

  it("over stdio: the failed call's warning, with its tool and operation, not the server's own; none below the level the client set", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    // the cache's Redis is down too: the server's own trouble, for its log only
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", dead], {
      RETRY_MAX_ATTEMPTS: "1", CACHE_BACKEND: "redis", REDIS_URL: `redis://127.0.0.1:${await freePort()}`
    })
    try {
      const logged = listen(mcp.client)
      assert.isTrue((await mcp.client.callTool({ name: "getFlaky", arguments: {} })).isError)
      assert.deepStrictEqual(logged, [{
        level: "warning", logger: "openapi-mcp-server", data: { message: "upstream call failed: UpstreamConnect", tool: "getFlaky", operation: "getFlaky", attempts: 1 }
      }])
      assert.include(mcp.stderr(), "cache store (redis) unavailable")
      await mcp.client.setLoggingLevel("error")
      const before = logged.length
      assert.isTrue((await mcp.client.callTool({ name: "getFlaky", arguments: {} })).isError)
      assert.strictEqual(logged.length, before)
    } finally {
      await mcp.close()
    }
  })

  it("over Streamable HTTP: on the call's own stream, and never to another client of the server", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const server = await startHttpServer(["--spec", SPEC, "--base-url", dead], { RETRY_MAX_ATTEMPTS: "1" })
    const a = await connectHttp(server.base)
    const b = await connectHttp(server.base)
    try {
      const [toA, toB] = [listen(a.client), listen(b.client)]
      assert.isTrue((await a.client.callTool({ name: "getFlaky", arguments: {} })).isError)
      assert.deepInclude(toA.map((m) => m.data["message"]), "upstream call failed: UpstreamConnect")
      assert.isTrue((await b.client.callTool({ name: "getQuota", arguments: {} })).isError)
      assert.deepStrictEqual(toB.map((m) => m.data["tool"]), ["getQuota"])
      assert.isFalse(toA.some((m) => m.data["tool"] === "getQuota"))
    } finally {
      await a.client.close()
      await b.client.close()
      await server.stop()
    }
  })
})
