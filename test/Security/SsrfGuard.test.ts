/**
 * The SSRF guard and the bounds on hostile specs: every non-public address in every notation is refused
 * with a message naming why, names are resolved once and the connection is pinned to the checked address,
 * redirects and oversized documents are refused, and "billion laughs" / deeply nested documents stop at
 * once with a clear error; upstream connections to base URLs a spec read from a URL chose are checked when
 * made, and only those. Resolvers
 * are fakes, except the system's for `localhost`: nothing here leaves 127.0.0.1.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  checkUrl, fetchGuarded, nonPublicReason, proxyChooser, refusedBaseUrl, type ResolvedAddress, type Resolver, SpecSourcePolicy
} from "../../src/Security/SsrfGuard.ts"
import { AppConfig, defaults, type Settings } from "../../src/AppConfig.ts"
import { Auth } from "../../src/Auth.ts"
import { Invoker } from "../../src/Invoker.ts"
import { layerMemoryStore, ResponseCache } from "../../src/ResponseCache.ts"
import type { OutgoingRequest } from "../../src/Invoker/RequestBuilder.ts"
import { specSourceDefaults } from "../../src/Security/Settings.ts"
import { SpecLoader } from "../../src/SpecLoader.ts"
import { ToolCatalog } from "../../src/ToolCatalog.ts"
import { type CallPolicy, Upstream, type WireRequest } from "../../src/Upstream.ts"
import { UpstreamTransport } from "../../src/Upstream/Transport.ts"
import { EXAMPLE_SPEC, fixture } from "../support/processes.ts"

const secure = (resolver: Resolver = async () => []): SpecSourcePolicy => ({ ...SpecSourcePolicy.defaultValue(), resolver })
const relaxed = (resolver: Resolver = async () => []): SpecSourcePolicy =>
  ({ ...secure(resolver), allowInsecureHttp: true, allowPrivateNetworks: true })

const v4 = (address: string): ResolvedAddress => ({ address, family: 4 })
const v6 = (address: string): ResolvedAddress => ({ address, family: 6 })

/** A fake DNS: fixed answers per name. */
const dns = (answers: Record<string, ReadonlyArray<ResolvedAddress>>): Resolver => async (host) => {
  const a = answers[host]
  if (a === undefined) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" })
  return a
}

const serve = (handler: Parameters<typeof createServer>[1]) =>
  Effect.acquireRelease(
    Effect.promise(() => new Promise<{ server: Server; port: number }>((res) => {
      const server = createServer(handler)
      server.listen(0, "127.0.0.1", () => res({ server, port: (server.address() as { port: number }).port }))
    })),
    ({ server }) => Effect.promise(() => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }))
  )

const loaderWith = (policy: SpecSourcePolicy) =>
  SpecLoader.layerNoDeps.pipe(Layer.provide(Layer.mergeAll(NodeServices.layer, Layer.succeed(SpecSourcePolicy, policy))))

const loadError = (source: string, policy: SpecSourcePolicy) =>
  SpecLoader.use((l) => l.load(source)).pipe(Effect.flip, Effect.provide(loaderWith(policy)))

const SPEC = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\nservers: [{ url: 'https://api.example.com' }]\npaths: {}\n"

describe("SSRF guard: addresses", () => {
  it("classifies every non-public range, IPv4 hidden in IPv6 included, and passes public addresses", () => {
    const blocked: ReadonlyArray<readonly [string, string]> = [
      ["127.0.0.1", "loopback"], ["127.255.255.254", "loopback"], ["::1", "loopback"],
      ["0.0.0.0", "unspecified"], ["::", "unspecified"],
      ["10.0.0.1", "private"], ["172.16.0.1", "private"], ["172.31.255.255", "private"], ["192.168.1.1", "private"],
      ["100.64.0.1", "carrier-grade NAT"],
      ["169.254.169.254", "link-local"], ["fe80::1", "link-local"], ["fe80::1%eth0", "link-local"],
      ["fc00::1", "unique-local"], ["fd12:3456::1", "unique-local"], ["fec0::1", "site-local"],
      ["224.0.0.1", "multicast"], ["ff02::1", "multicast"],
      ["192.0.2.1", "documentation"], ["2001:db8::1", "documentation"],
      ["240.0.0.1", "reserved"], ["255.255.255.255", "reserved"], ["198.18.0.1", "reserved"], ["192.0.0.8", "reserved"],
      ["::ffff:127.0.0.1", "loopback"], ["::ffff:7f00:1", "loopback"], ["::ffff:169.254.169.254", "link-local"],
      ["::ffff:10.1.1.1", "private"], ["64:ff9b::a9fe:a9fe", "link-local"], ["2002:7f00:1::", "loopback"],
      ["::127.0.0.1", "reserved"], ["2001::1", "reserved"]
    ]
    for (const [ip, why] of blocked) assert.include(nonPublicReason(ip) ?? "PUBLIC", why, ip)
    for (const ip of ["93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8"]) {
      assert.isUndefined(nonPublicReason(ip), ip)
    }
  })

  it.effect("refuses 100% of a matrix of URLs to non-public hosts, in every notation, naming the reason and the flag", () =>
    Effect.gen(function*() {
      const resolver = dns({
        "localhost": [v4("127.0.0.1"), v6("::1")],
        "metadata.google.internal": [v4("169.254.169.254")],
        "internal.example": [v4("10.1.2.3")],
        "rebind.example": [v4("93.184.216.34"), v4("127.0.0.1")],
        "v6only.example": [v6("::1")],
        "mapped.example": [v6("::ffff:192.168.0.10")],
        "nat64.example": [v6("64:ff9b::7f00:1")]
      })
      const matrix: ReadonlyArray<readonly [string, string]> = [
        ["https://127.0.0.1/openapi.json", "127.0.0.1 is a loopback address"],
        ["https://127.1/openapi.json", "loopback"],
        ["https://2130706433/openapi.json", "loopback"], // decimal
        ["https://0x7f000001/openapi.json", "loopback"], // hex
        ["https://0177.0.0.1/openapi.json", "loopback"], // octal
        ["https://017700000001/openapi.json", "loopback"], // octal, one number
        ["https://0x7f.0.0.1/openapi.json", "loopback"], // mixed
        ["https://0/openapi.json", "unspecified"],
        ["https://0.0.0.0/openapi.json", "unspecified"],
        ["https://10.0.0.1/openapi.json", "private"],
        ["https://172.16.5.4/openapi.json", "private"],
        ["https://192.168.1.1:8443/openapi.json", "private"],
        ["https://169.254.169.254/latest/meta-data/", "link-local"],
        ["https://0xa9fea9fe/", "link-local"],
        ["https://100.64.0.1/", "carrier-grade NAT"],
        ["https://[::1]/openapi.json", "loopback"],
        ["https://[::]/openapi.json", "unspecified"],
        ["https://[::ffff:127.0.0.1]/openapi.json", "loopback"],
        ["https://[::ffff:7f00:1]/openapi.json", "loopback"],
        ["https://[::ffff:169.254.169.254]/", "link-local"],
        ["https://[0:0:0:0:0:ffff:a9fe:a9fe]/", "link-local"],
        ["https://[fe80::1]/", "link-local"],
        ["https://[fc00::1]/", "unique-local"],
        ["https://[fd00:ec2::254]/", "unique-local"], // AWS IMDS over IPv6
        ["https://[64:ff9b::a9fe:a9fe]/", "link-local"],
        ["https://[2002:a9fe:a9fe::]/", "link-local"],
        ["https://224.0.0.1/", "multicast"],
        ["https://[ff02::1]/", "multicast"],
        ["https://255.255.255.255/", "reserved"],
        ["https://localhost/openapi.json", "localhost resolves to 127.0.0.1, which is a loopback address"],
        ["https://LOCALHOST./openapi.json", "cannot resolve"], // not a name the fake DNS knows: refused, never fetched
        ["https://metadata.google.internal/computeMetadata/v1/", "resolves to 169.254.169.254"],
        ["https://internal.example/spec.yaml", "resolves to 10.1.2.3, which is a private"],
        ["https://rebind.example/spec.yaml", "resolves to 127.0.0.1"], // one bad answer among good ones is enough
        ["https://v6only.example/spec.yaml", "loopback"],
        ["https://mapped.example/spec.yaml", "private (RFC 1918), inside an IPv6 address"],
        ["https://nat64.example/spec.yaml", "loopback, inside an IPv6 address"],
        ["http://api.example.com/openapi.json", "http:// URLs are refused"],
        ["ftp://example.com/openapi.json", "ftp: URLs are not supported"],
        ["gopher://127.0.0.1:6379/_INFO", "gopher: URLs are not supported"],
        ["file:///etc/passwd", "file: URLs are not supported"],
        ["https://unknown.example/spec.yaml", "cannot resolve unknown.example (ENOTFOUND)"]
      ]
      for (const [url, why] of matrix) {
        const error = yield* Effect.flip(checkUrl(url, secure(resolver)))
        assert.include(error, why, url)
        if (why.includes("address")) assert.include(error, "--allow-private-networks", url)
      }
      // …and through the loader, as the user sees it
      const e = yield* loadError("https://169.254.169.254/latest/meta-data/", secure(resolver))
      assert.strictEqual(e.message,
        "cannot read the spec: 169.254.169.254 is a link-local (includes the cloud metadata address 169.254.169.254) address; only public addresses are allowed (pass --allow-private-networks / ALLOW_PRIVATE_NETWORKS=true to allow it)")
      const insecure = yield* loadError("http://127.0.0.1:1/openapi.yaml", secure(resolver))
      assert.include(insecure.message, "http:// URLs are refused (use https://, or pass --allow-insecure-http")
    }))

  it.effect("resolves a name once and connects to the checked address, whatever DNS answers afterwards (DNS rebinding)", () =>
    Effect.gen(function*() {
      const { port } = yield* serve((_req, res) => res.writeHead(200, { "content-type": "application/yaml" }).end(SPEC))
      let calls = 0
      // first answer: where the spec server is; every later answer: an address where nothing listens
      const rebinding: Resolver = async () => (calls++ === 0 ? [v4("127.0.0.1")] : [v4("127.0.0.2")])
      const bytes = yield* fetchGuarded(`http://spec.test:${port}/openapi.yaml`, relaxed(rebinding))
      assert.strictEqual(Buffer.from(bytes).toString("utf8"), SPEC)
      assert.strictEqual(calls, 1)
    }))

  it.effect("refuses redirects, naming where they point", () =>
    Effect.gen(function*() {
      const { port } = yield* serve((_req, res) => res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end())
      const e = yield* loadError(`http://127.0.0.1:${port}/openapi.yaml`, relaxed())
      assert.strictEqual(e.message,
        "cannot read the spec: HTTP 302: the server redirects to http://169.254.169.254/latest/meta-data/, and redirects are not followed (give the final URL)")
    }))

  it.effect("stops reading a document past SPEC_MAX_BYTES, declared or streamed", () =>
    Effect.gen(function*() {
      const big = "x".repeat(5000)
      const declared = yield* serve((_req, res) => res.writeHead(200, { "content-length": String(big.length) }).end(big))
      const streamed = yield* serve((_req, res) => {
        res.writeHead(200)
        res.write(big)
        res.end(big)
      })
      const policy = { ...relaxed(), maxBytes: 4096 }
      assert.include((yield* loadError(`http://127.0.0.1:${declared.port}/a.yaml`, policy)).message, "the document is 5000 bytes, more than SPEC_MAX_BYTES (4096)")
      assert.include((yield* loadError(`http://127.0.0.1:${streamed.port}/a.yaml`, policy)).message, "larger than SPEC_MAX_BYTES (4096 bytes)")
      const file = join(mkdtempSync(join(tmpdir(), "big-")), "big.yaml")
      writeFileSync(file, `${SPEC}# ${big}\n`)
      assert.include((yield* loadError(file, policy)).message, "more than SPEC_MAX_BYTES (4096)")
    }))

  it.live("times out a server that never answers", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(() => {})
      const e = yield* loadError(`http://127.0.0.1:${port}/a.yaml`, { ...relaxed(), timeoutMs: 300 })
      assert.include(e.message, "timed out after 0.3 s")
    }))
})

describe("SSRF guard: spec URLs behind a forward proxy", () => {
  const proxy = (noProxy: string) =>
    proxyChooser({ http: Option.some(Redacted.make("http://p:3128")), https: Option.some(Redacted.make("http://s:3128")), noProxy })!

  it("picks HTTPS_PROXY for https, HTTP_PROXY for http, none for NO_PROXY hosts and loopback", () => {
    const pick = proxy("internal.example, .corp.example, *.lab.example, db.example:8443")
    assert.strictEqual(pick(new URL("https://api.example.com/o.json")), "http://s:3128")
    assert.strictEqual(pick(new URL("http://api.example.com/o.json")), "http://p:3128")
    for (const direct of ["https://internal.example/x", "https://a.b.corp.example/x", "https://corp.example/x", "https://x.lab.example/x",
      "https://db.example:8443/x", "http://localhost:8080/x", "http://127.0.0.1/x", "http://[::1]:99/x"]) {
      assert.isUndefined(pick(new URL(direct)), direct)
    }
    assert.strictEqual(pick(new URL("https://db.example/x")), "http://s:3128") // another port
    assert.strictEqual(pick(new URL("https://notinternal.example/x")), "http://s:3128")
    assert.isUndefined(proxy("*")(new URL("https://api.example.com/")))
    assert.isUndefined(proxyChooser({ http: Option.none(), https: Option.none(), noProxy: "" }))
  })

  it.effect("still checks a name that resolves here; lets one only the proxy's network knows through", () =>
    Effect.gen(function*() {
      const policy = { ...secure(dns({ "internal.example": [v4("10.1.2.3")] })), proxyFor: proxy("") }
      const refused = yield* Effect.flip(checkUrl("https://internal.example/spec.yaml", policy))
      assert.include(refused, "resolves to 10.1.2.3, which is a private")
      const unknown = yield* checkUrl("https://only-behind-the-proxy.example/spec.yaml", policy)
      assert.deepStrictEqual([unknown.pinned, unknown.proxy], [undefined, "http://s:3128"])
      // without a proxy that name cannot be fetched at all
      assert.include(yield* Effect.flip(checkUrl("https://only-behind-the-proxy.example/spec.yaml", secure(dns({})))), "cannot resolve")
    }))
})

describe("SSRF guard: base URLs from a remote spec", () => {
  it.effect("refuses servers URLs that point at non-public addresses, lets unresolvable and public ones through", () =>
    Effect.gen(function*() {
      const resolver = dns({ "imds.example": [v4("169.254.169.254")], "api.example": [v4("93.184.216.34")] })
      const imds = yield* refusedBaseUrl(["https://api.example/v1", "http://imds.example/latest"], secure(resolver))
      assert.strictEqual(imds,
        "the spec, read from a URL, sends calls to http://imds.example/latest, whose host resolves to 169.254.169.254, a link-local (includes the cloud metadata address 169.254.169.254) address; " +
          "pass --base-url <url> to choose the upstream yourself, or --allow-private-networks (ALLOW_PRIVATE_NETWORKS=true) if the spec is trusted")
      assert.include((yield* refusedBaseUrl(["http://[::ffff:10.0.0.1]:8080"], secure(resolver)))!, "private (RFC 1918), inside an IPv6 address")
      assert.isUndefined(yield* refusedBaseUrl(["https://api.example/v1", "https://not-resolvable.example"], secure(resolver)))
      assert.isUndefined(yield* refusedBaseUrl(["http://127.0.0.1:8080"], relaxed(resolver)))
    }))
})

describe("spec files and hostile documents", () => {
  it.effect("reads spec files only from ALLOWED_SPEC_DIRS, symlinks resolved", () =>
    Effect.gen(function*() {
      const root = mkdtempSync(join(tmpdir(), "dirs-"))
      const allowed = join(root, "allowed")
      const other = join(root, "other")
      mkdirSync(allowed)
      mkdirSync(other)
      writeFileSync(join(allowed, "ok.yaml"), SPEC)
      writeFileSync(join(other, "secret.yaml"), SPEC)
      symlinkSync(join(other, "secret.yaml"), join(allowed, "link.yaml"))
      const policy = { ...secure(), allowedDirs: [allowed] }
      const ok = yield* SpecLoader.use((l) => l.load(join(allowed, "ok.yaml"))).pipe(Effect.provide(loaderWith(policy)))
      assert.strictEqual(ok.version, "3.0")
      for (const path of [join(other, "secret.yaml"), join(allowed, "link.yaml"), join(allowed, "../other/secret.yaml")]) {
        const e = yield* loadError(path, policy)
        assert.include(e.message, "is outside the allowed spec directories (ALLOWED_SPEC_DIRS", path)
      }
    }))

  it.effect("stops a billion-laughs YAML document at once with a clear error", () =>
    Effect.gen(function*() {
      let yaml = "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths: {}\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
      for (let i = 1; i < 12; i++) yaml += `x-a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(", ")}]\n`
      const file = join(mkdtempSync(join(tmpdir(), "laughs-")), "laughs.yaml")
      writeFileSync(file, yaml)
      const started = Date.now()
      const e = yield* loadError(file, secure())
      assert.include(e.message, "invalid YAML: its aliases (*name) expand it to more than 1000000 collections")
      assert.isBelow(Date.now() - started, 2000)
    }))

  it.effect("refuses documents nested deeper than 256 levels, JSON or YAML, without overflowing the stack", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "deep-"))
      writeFileSync(join(dir, "deep.json"), `{"openapi":"3.0.3","paths":{},"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`)
      writeFileSync(join(dir, "deep.yaml"), `openapi: 3.0.3\npaths: {}\nx: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`)
      writeFileSync(join(dir, "300.json"), `{"openapi":"3.0.3","paths":{},"x":${"{\"a\":".repeat(300)}1${"}".repeat(300)}}`)
      assert.include((yield* loadError(join(dir, "deep.json"), secure())).message, "the document is nested more than 256 levels deep")
      assert.include((yield* loadError(join(dir, "deep.yaml"), secure())).message, "invalid YAML: the document is nested more than 256 levels deep at line 3")
      assert.include((yield* loadError(join(dir, "300.json"), secure())).message, "nested more than 256 levels deep")
    }))

  it.effect("the secure default still loads ordinary local spec files", () =>
    Effect.gen(function*() {
      const loaded = yield* SpecLoader.use((l) => l.load(fixture("security.yaml"))).pipe(Effect.provide(loaderWith(secure())))
      assert.strictEqual(loaded.version, "3.0")
    }))
})

describe("upstream connections of a spec read from a URL", () => {
  const get = (url: string): OutgoingRequest => ({ method: "GET", url, query: [], headers: {}, cookies: [], body: undefined })
  const POLICY: CallPolicy = {
    attemptTimeoutMs: 5_000, deadlineMs: 10_000, maxAttempts: 3, idempotencyKeyHeader: undefined, circuitBreaker: false, guardConnections: false
  }
  /** GET http://localhost:<port>/pets with the real Upstream and transport, under these settings. */
  const call = (port: number, guardConnections: boolean, settings: Partial<Settings> = {}) =>
    Upstream.use((u) => u.execute(get(`http://localhost:${port}/pets`), { ...POLICY, guardConnections })).pipe(
      Effect.provide(Upstream.layer.pipe(Layer.provide(AppConfig.layerTest({ spec: "x", ...settings })))),
      Effect.scoped
    )

  it.effect("are checked at connect time: a host that resolves to a private address is refused, unless private networks are allowed", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const api = createServer((req, res) => (seen.push(req.url ?? ""), res.writeHead(200, { "content-type": "application/json" }).end("[]")))
      yield* Effect.promise(() => new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r())))
      const port = (api.address() as { port: number }).port
      try {
        // the spec chose the upstream: 'localhost' (which its servers might name, or a name rebound later) is refused
        const refused = yield* Effect.flip(call(port, true))
        assert.strictEqual(refused.reason._tag, "UpstreamInvalidRequest")
        assert.strictEqual(refused.attempts, 1)
        const detail = (refused.reason as { detail: string }).detail
        assert.include(detail, "localhost resolves to 127.0.0.1, a loopback address")
        assert.include(detail, "--allow-private-networks")
        assert.deepStrictEqual(seen, [])
        // the operator chose it (a spec file, --base-url), or allowed private networks; the same host, other calls
        assert.strictEqual((yield* call(port, false)).status, 200)
        assert.strictEqual((yield* call(port, true, { specSource: { ...specSourceDefaults, allowPrivateNetworks: true } })).status, 200)
        assert.strictEqual(seen.length, 2)
      } finally {
        api.close()
      }
    }))

  it.effect("are guarded for exactly the tools whose base URL a spec read from a URL chose, main or additional", () =>
    Effect.gen(function*() {
      // the example spec served over HTTP; loading it from 127.0.0.1 needs the relaxed policy, which would also
      // turn the real transport's check off: a fake transport records which requests ask for it
      const text = readFileSync(EXAMPLE_SPEC, "utf8")
      const { port } = yield* serve((_req, res) => res.writeHead(200, { "content-type": "application/yaml" }).end(text))
      const specUrl = `http://127.0.0.1:${port}/petstore.yaml`
      const guardedOf = (settings: Partial<Settings>) =>
        Effect.gen(function*() {
          const sent: Array<WireRequest> = []
          const transport = Layer.succeed(UpstreamTransport, UpstreamTransport.of({
            send: (req, done) => {
              sent.push(req)
              done({ status: 200, headers: { "content-type": "application/json" }, body: new TextEncoder().encode("{}") })
              return () => undefined
            }
          }))
          const catalog = ToolCatalog.layerNoDeps.pipe(Layer.provide(loaderWith(relaxed())))
          const layer = Invoker.layerNoDeps.pipe(
            Layer.provide(Layer.mergeAll(
              catalog, Auth.layer.pipe(Layer.provide(catalog)), Upstream.layerNoDeps.pipe(Layer.provide(transport)),
              ResponseCache.layerNoDeps.pipe(Layer.provide(layerMemoryStore))
            )),
            Layer.provide(AppConfig.layerTest({
              spec: specUrl, specSource: { ...specSourceDefaults, ...relaxed() }, cache: { ...defaults.cache, backend: "none" }, ...settings
            }))
          )
          return yield* Effect.gen(function*() {
            const invoker = yield* Invoker
            const result: Record<string, boolean> = {}
            for (const name of ["getPet", "more_getPet", "other_getPet"]) {
              if ((yield* Effect.result(invoker.call(name, { petId: 1 })))._tag === "Success") result[name] = sent.pop()?.guarded === true
            }
            return result
          }).pipe(Effect.provide(layer))
        })
      const extra = (name: string, spec: string, baseUrl?: string) =>
        ({ name, spec, baseUrl: baseUrl === undefined ? Option.none() : Option.some(baseUrl), auth: undefined })

      assert.deepStrictEqual(yield* guardedOf({}), { getPet: true })
      assert.deepStrictEqual(yield* guardedOf({ baseUrl: Option.some("http://127.0.0.1:1/v1") }), { getPet: false })
      // the same base URL (the same spec text) from a file and from a URL: only the latter's tools are guarded
      assert.deepStrictEqual(
        yield* guardedOf({
          spec: EXAMPLE_SPEC,
          additionalSpecs: [extra("more", specUrl), extra("other", specUrl, "http://127.0.0.2:1/v1")]
        }),
        { getPet: false, more_getPet: true, other_getPet: false }
      )
    }))
})
