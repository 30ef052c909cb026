/**
 * Mutual TLS to the upstream API, against a real HTTPS server that requires a client certificate signed by its
 * CA (certificates made with openssl): the certificate and key from files, references and an encrypted key,
 * combined with a scheme's token; and what a misconfiguration tells the model and the operator.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { createServer, type Server } from "node:https"
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connectHttp, connectStdio, fixture, runCli, startHttpServer, textOf, waitFor } from "../support/processes.ts"
import { makePki } from "../support/pki.ts"

const SPEC = fixture("mtls.yaml") // whoAmI: security clientCert (mutualTLS); withCertAndToken: clientCert + token

describe("mutual TLS to the upstream API", () => {
  const pki = makePki()
  let api: Server
  let base: string
  let connections = 0
  beforeAll(async () => {
    api = createServer({
      key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert), ca: readFileSync(pki.ca),
      requestCert: true, rejectUnauthorized: true
    }, (req, res) => {
      const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate()
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ client: peer.subject?.CN, authorization: req.headers.authorization ?? null }))
    })
    api.on("connection", () => connections++)
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
    base = `https://127.0.0.1:${(api.address() as { port: number }).port}`
  })
  afterAll(() => {
    api.closeAllConnections()
    api.close()
  })

  /** The API's CA is trusted the standard Node.js way. */
  const trusted = { NODE_EXTRA_CA_CERTS: pki.ca }

  it("presents the client certificate the API asks for; the start log names it, never the key", async () => {
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", base, "--auth-client-cert", pki.client.cert, "--auth-client-key", pki.client.key], trusted)
    try {
      const result = await mcp.client.callTool({ name: "whoAmI", arguments: {} })
      assert.deepStrictEqual(result.structuredContent, { client: "omcp-test-client", authorization: null }, textOf(result))
      assert.include(mcp.stderr(), "calls present the client certificate for omcp-test-client when the API asks for one")
      assert.notInclude(mcp.stderr(), "PRIVATE KEY")
    } finally {
      await mcp.close()
    }
  })

  it("reads them from references, an encrypted key with its passphrase, and sends a scheme's token beside the certificate", async () => {
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", base], {
      ...trusted,
      AUTH_CLIENT_CERT: `file:${pki.client.cert}`,
      AUTH_CLIENT_KEY: "env:CLIENT_KEY_PEM",
      CLIENT_KEY_PEM: pki.read(pki.encryptedKey),
      AUTH_CLIENT_KEY_PASSPHRASE: pki.passphrase,
      AUTH_SCHEME_TOKEN: "t0k3n"
    })
    try {
      const result = await mcp.client.callTool({ name: "withCertAndToken", arguments: {} })
      assert.deepStrictEqual(result.structuredContent, { client: "omcp-test-client", authorization: "Bearer t0k3n" }, textOf(result))
    } finally {
      await mcp.close()
    }
  })

  it("without a client certificate: a tool error that says what to set", async () => {
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", base, "--retry-max-attempts", "1"], trusted)
    try {
      const result = await mcp.client.callTool({ name: "whoAmI", arguments: {} })
      assert.isTrue(result.isError)
      assert.include(textOf(result), "asks for a client certificate (mutual TLS)")
      assert.include(textOf(result), "AUTH_CLIENT_CERT and AUTH_CLIENT_KEY")
    } finally {
      await mcp.close()
    }
  })

  it("an API certificate no trusted CA signed: one attempt, and a tool error pointing to NODE_EXTRA_CA_CERTS", async () => {
    const mcp = await connectStdio(["--spec", SPEC, "--base-url", base, "--auth-client-cert", pki.client.cert, "--auth-client-key", pki.client.key])
    try {
      const before = connections
      const result = await mcp.client.callTool({ name: "whoAmI", arguments: {} })
      assert.isTrue(result.isError)
      assert.include(textOf(result), "TLS certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN)")
      assert.include(textOf(result), "NODE_EXTRA_CA_CERTS")
      assert.strictEqual((result.structuredContent as { error: string }).error, "tls")
      assert.strictEqual(connections - before, 1, "not retried")
    } finally {
      await mcp.close()
    }
  })

  it("presents a renewed certificate after SIGHUP (HTTP), keeping the client's session", async () => {
    const dir = mkdtempSync(join(tmpdir(), "client-cert-"))
    const [cert, key] = [join(dir, "tls.crt"), join(dir, "tls.key")]
    copyFileSync(pki.client.cert, cert)
    copyFileSync(pki.client.key, key)
    const server = await startHttpServer(["--spec", SPEC, "--base-url", base, "--auth-client-cert", cert, "--auth-client-key", key], trusted)
    try {
      const { client } = await connectHttp(server.base)
      assert.deepInclude((await client.callTool({ name: "whoAmI", arguments: {} })).structuredContent as object, { client: "omcp-test-client" })
      // as cert-manager renews a mounted secret: new files, then a SIGHUP
      copyFileSync(pki.other.cert, cert)
      copyFileSync(pki.other.key, key)
      server.child.kill("SIGHUP")
      await waitFor(async () => server.stderr().includes("SIGHUP: spec reloaded"), "the SIGHUP reload", 15_000)
      assert.deepInclude((await client.callTool({ name: "whoAmI", arguments: {} })).structuredContent as object, { client: "someone-else" })
      await client.close()
    } finally {
      await server.stop()
    }
  })

  it("refuses to start with a key that is not the certificate's, or a wrong passphrase, naming the setting and not the secret", async () => {
    const mismatched = await runCli(["--spec", SPEC, "--auth-client-cert", pki.client.cert, "--auth-client-key", pki.other.key])
    assert.strictEqual(mismatched.code, 1)
    assert.include(mismatched.stderr, "the private key in AUTH_CLIENT_KEY (--auth-client-key) is not the key of the certificate in AUTH_CLIENT_CERT")
    const wrong = await runCli(["--spec", SPEC, "--auth-client-cert", pki.client.cert, "--auth-client-key", pki.encryptedKey], {
      AUTH_CLIENT_KEY_PASSPHRASE: "battery staple"
    })
    assert.strictEqual(wrong.code, 1)
    assert.include(wrong.stderr, "cannot be decrypted with AUTH_CLIENT_KEY_PASSPHRASE")
    assert.notInclude(wrong.stderr, "battery staple")
  })
})
