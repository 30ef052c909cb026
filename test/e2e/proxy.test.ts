/** HTTP(S)_PROXY and NO_PROXY: upstream calls through a forward proxy (a local node:http one), loopback direct. */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer as createHttpServer, type IncomingMessage, request, type RequestListener } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import { type AddressInfo, connect, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connectStdio, EXAMPLE_SPEC, runCli, startLocalServer, textOf } from "../support/processes.ts"

describe("a forward proxy", () => {
  const seen: Array<{ method: string; url: string; auth: string | undefined }> = []
  let upstreamCalls = 0
  let lastAuthorization: string | undefined
  // the API, and the identity provider's token endpoint
  const upstreamHandler: RequestListener = (req, res) => {
    upstreamCalls++
    if (req.url === "/specs/petstore.yaml") return void res.writeHead(200, { "content-type": "application/yaml" }).end(readFileSync(EXAMPLE_SPEC))
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

  it("fetches a spec URL through the proxy too, unless NO_PROXY names its host", async () => {
    const spec = "http://specs.example.test/specs/petstore.yaml"
    const args = ["--spec", spec, "--allow-insecure-http", "--base-url", "http://pets.example.test:8080/v1", "--catalog-cache-dir", "off"]
    const mcp = await connectStdio(args, { HTTP_PROXY: `http://proxy-user:proxy-s3cret@127.0.0.1:${proxyPort}` })
    try {
      assert.include((await mcp.client.listTools()).tools.map((t) => t.name), "getPet")
      assert.deepInclude(seen, { method: "GET", url: spec, auth: `Basic ${Buffer.from("proxy-user:proxy-s3cret").toString("base64")}` })
      assert.notInclude(mcp.stderr(), "proxy-s3cret")
    } finally {
      await mcp.close()
    }
    // a host NO_PROXY names goes direct: here a name only the proxy's network knows
    const before = seen.length
    const direct = await runCli(args, { HTTP_PROXY: `http://127.0.0.1:${proxyPort}`, NO_PROXY: ".example.test" })
    assert.strictEqual(direct.code, 1)
    assert.include(direct.stderr, "cannot resolve specs.example.test")
    assert.strictEqual(seen.length, before)
  })

  it("tunnels an https spec URL through the proxy (CONNECT), checking the server's certificate", async () => {
    // a certificate for the spec's host name, made now (openssl), and a TLS server with it on 127.0.0.1
    const dir = mkdtempSync(join(tmpdir(), "tls-"))
    const [key, cert] = [join(dir, "key.pem"), join(dir, "cert.pem")]
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
      "-subj", "/CN=specs.example.test", "-addext", "subjectAltName=DNS:specs.example.test"
    ], { stdio: "ignore" })
    const tls = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => {
      res.writeHead(200, { "content-type": "application/yaml" }).end(readFileSync(EXAMPLE_SPEC))
    })
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", () => r()))
    // a proxy that answers CONNECT by opening a tunnel to that server, whatever host was asked for
    const tunnels: Array<string> = []
    const connectProxy = createHttpServer()
    connectProxy.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      tunnels.push(req.url ?? "")
      const upstream = connect((tls.address() as AddressInfo).port, "127.0.0.1", () => {
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n")
        upstream.write(head)
        upstream.pipe(socket)
        socket.pipe(upstream)
      })
      upstream.on("error", () => socket.destroy())
      socket.on("error", () => upstream.destroy())
    })
    await new Promise<void>((r) => connectProxy.listen(0, "127.0.0.1", () => r()))
    const env = { HTTPS_PROXY: `http://127.0.0.1:${(connectProxy.address() as AddressInfo).port}` }
    const args = ["--spec", "https://specs.example.test/openapi.yaml", "--base-url", "http://pets.example.test:8080/v1", "--catalog-cache-dir", "off"]
    try {
      const mcp = await connectStdio(args, { ...env, NODE_EXTRA_CA_CERTS: cert })
      try {
        assert.include((await mcp.client.listTools()).tools.map((t) => t.name), "getPet")
        assert.deepStrictEqual(tunnels, ["specs.example.test:443"])
      } finally {
        await mcp.close()
      }
      // a certificate the server does not trust stops the start, saying so
      const untrusted = await runCli(args, env)
      assert.strictEqual(untrusted.code, 1)
      assert.include(untrusted.stderr, "cannot read the spec")
      assert.match(untrusted.stderr, /CERT|certificate/i)
    } finally {
      connectProxy.closeAllConnections()
      await new Promise((r) => connectProxy.close(r))
      tls.closeAllConnections()
      await new Promise((r) => tls.close(r))
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("refuses a proxy setting that is not an http(s) URL, without showing it", async () => {
    const r = await runCli(["--spec", EXAMPLE_SPEC], { HTTPS_PROXY: "socks9://user:hunter2@proxy" })
    assert.strictEqual(r.code, 1)
    assert.include(r.stderr, "--https-proxy (HTTPS_PROXY): expected an http(s) URL such as http://proxy.example.com:3128")
    assert.notInclude(r.stderr, "hunter2")
  })
})
