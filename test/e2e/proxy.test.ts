/** HTTP(S)_PROXY and NO_PROXY: upstream calls through a forward proxy (a local node:http one), loopback direct. */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { request, type RequestListener } from "node:http"
import { connectStdio, EXAMPLE_SPEC, runCli, startLocalServer, textOf } from "../support/processes.ts"

describe("a forward proxy", () => {
  const seen: Array<{ method: string; url: string; auth: string | undefined }> = []
  let upstreamCalls = 0
  let lastAuthorization: string | undefined
  // the API, and the identity provider's token endpoint
  const upstreamHandler: RequestListener = (req, res) => {
    upstreamCalls++
    if (req.url === "/oauth/token") {
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: "t0ken", token_type: "Bearer", expires_in: 3600 }))
    }
    lastAuthorization = req.headers.authorization
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: 1, name: "Rex", path: req.url }))
  }
  // forwards every request, whatever host it names, to the local upstream (no traffic leaves 127.0.0.1)
  const proxyHandler: RequestListener = (req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", auth: req.headers["proxy-authorization"] })
    const target = new URL(req.url ?? "/")
    const forwarded = request({ host: "127.0.0.1", port: upstreamPort, method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    req.pipe(forwarded)
  }
  let upstreamPort = 0
  let proxyPort = 0
  const servers: Array<Awaited<ReturnType<typeof startLocalServer>>> = []
  beforeAll(async () => {
    servers.push(await startLocalServer(upstreamHandler), await startLocalServer(proxyHandler))
    upstreamPort = servers[0]!.port
    proxyPort = servers[1]!.port
  })
  afterAll(() => Promise.all(servers.map((s) => s.close())))

  it("carries calls and token requests to named hosts, with the proxy's credentials, and never logs them", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", "http://pets.example.test:8080/v1", "--cache-backend", "none"], {
      HTTP_PROXY: `http://proxy-user:proxy-s3cret@127.0.0.1:${proxyPort}`,
      AUTH_TYPE: "oauth2",
      AUTH_OAUTH2_TOKEN_URL: "http://idp.example.test/oauth/token",
      AUTH_OAUTH2_CLIENT_ID: "client",
      AUTH_OAUTH2_CLIENT_SECRET: "client-secret"
    })
    try {
      const result = await mcp.client.callTool({ name: "getPet", arguments: { petId: 1 } })
      assert.deepStrictEqual(result.structuredContent, { id: 1, name: "Rex", path: "/v1/pets/1" }, textOf(result))
      const proxyAuth = `Basic ${Buffer.from("proxy-user:proxy-s3cret").toString("base64")}`
      assert.deepStrictEqual(seen.slice(-2), [
        { method: "POST", url: "http://idp.example.test/oauth/token", auth: proxyAuth },
        { method: "GET", url: "http://pets.example.test:8080/v1/pets/1", auth: proxyAuth }
      ])
      assert.strictEqual(lastAuthorization, "Bearer t0ken")
      assert.include(mcp.stderr(), `calls go through the proxy http://127.0.0.1:${proxyPort}`)
      assert.notInclude(mcp.stderr(), "proxy-s3cret")
    } finally {
      await mcp.close()
    }
  })

  it("goes direct to loopback addresses and to NO_PROXY hosts", async () => {
    const before = seen.length
    const calls = upstreamCalls
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", `http://127.0.0.1:${upstreamPort}/v1`, "--cache-backend", "none"], {
      HTTP_PROXY: `http://127.0.0.1:${proxyPort}`,
      NO_PROXY: "internal.example.test"
    })
    try {
      const result = await mcp.client.callTool({ name: "getPet", arguments: { petId: 2 } })
      assert.strictEqual((result.structuredContent as { path: string }).path, "/v1/pets/2")
      assert.strictEqual(upstreamCalls, calls + 1)
      assert.strictEqual(seen.length, before, "the proxy saw the call")
      assert.include(mcp.stderr(), "(direct: internal.example.test,localhost,127.0.0.1,::1)")
    } finally {
      await mcp.close()
    }
  })

  it("refuses a proxy setting that is not an http(s) URL, without showing it", async () => {
    const r = await runCli(["--spec", EXAMPLE_SPEC], { HTTPS_PROXY: "socks9://user:hunter2@proxy" })
    assert.strictEqual(r.code, 1)
    assert.include(r.stderr, "--https-proxy (HTTPS_PROXY): expected an http(s) URL such as http://proxy.example.com:3128")
    assert.notInclude(r.stderr, "hunter2")
  })
})
