/**
 * SSRF guard for documents fetched over the network (spec URLs and their `$ref` files):
 *
 * - `https:` only, unless `--allow-insecure-http`; no other schemes;
 * - every address the host resolves to must be public (not loopback, private, link-local incl. the cloud
 *   metadata address 169.254.169.254, CGNAT, unique-local, multicast, reserved, documentation, or an IPv4
 *   address hidden in IPv6), unless `--allow-private-networks`. IP literals in any notation (decimal,
 *   octal, hex, IPv4-mapped IPv6) are normalized by the URL parser first and checked the same way;
 * - DNS is resolved once and the connection is pinned to the checked address (so a resolver that answers
 *   differently the second time, DNS rebinding, cannot redirect it); TLS still verifies the host name;
 * - redirects are refused, bodies are capped at SPEC_MAX_BYTES, and a fetch has 30 s in all.
 *
 * The upstream API a spec read from a URL names is held to the same address rule: its base URLs at start
 * (`refusedBaseUrl`), and each new connection to it (`guardedLookup`).
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { lookup as dnsLookup } from "node:dns/promises"
import type { IncomingMessage } from "node:http"
import { BlockList, isIP, type LookupFunction } from "node:net"
import { AppConfig } from "../AppConfig.ts"
import { type SpecSourceSettings, specSourceDefaults } from "./Settings.ts"

export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
}

/** Name resolution (the system's getaddrinfo in production; tests swap it to play DNS tricks). */
export type Resolver = (hostname: string) => Promise<ReadonlyArray<ResolvedAddress>>

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))

export interface SpecSourcePolicy extends SpecSourceSettings {
  readonly resolver: Resolver
  /** Time one fetch may take in all. */
  readonly timeoutMs: number
  /** The forward proxy (its URL) a document's URL is fetched through, if any (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
  readonly proxyFor?: (url: URL) => string | undefined
}

/** Hosts never reached through a proxy, whatever NO_PROXY says (local sidecars, test servers). */
const ALWAYS_DIRECT = "localhost,127.0.0.1,::1"

/**
 * The proxy settings (HTTP_PROXY, HTTPS_PROXY, their URLs unwrapped: they may hold a password) with the hosts
 * that go direct (NO_PROXY and the loopback ones), or undefined when no proxy is set.
 */
export const proxyUrls = (
  proxy: AppConfig["Service"]["http"]["proxy"]
): { readonly http: string | undefined; readonly https: string | undefined; readonly noProxy: string } | undefined => {
  const http = Option.getOrUndefined(Option.map(proxy.http, Redacted.value))
  const https = Option.getOrUndefined(Option.map(proxy.https, Redacted.value))
  if (http === undefined && https === undefined) return undefined
  return { http, https, noProxy: proxy.noProxy.trim() === "" ? ALWAYS_DIRECT : `${proxy.noProxy},${ALWAYS_DIRECT}` }
}

/**
 * The proxy for a URL as undici's EnvHttpProxyAgent picks it for the calls: HTTPS_PROXY for https URLs, else
 * HTTP_PROXY; none for hosts NO_PROXY names (`*`, a host, `.example.com` or `example.com` for it and its
 * subdomains, optionally with `:port`) or for loopback ones. Undefined when no proxy is set.
 */
export const proxyChooser = (proxy: AppConfig["Service"]["http"]["proxy"]): ((url: URL) => string | undefined) | undefined => {
  const urls = proxyUrls(proxy)
  if (urls === undefined) return undefined
  const { http, https } = urls
  const bypass = urls.noProxy.split(/[,\s]+/).map((e) => e.trim().toLowerCase()).filter((e) => e !== "")
  return (url) => {
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase()
    const port = url.port || (url.protocol === "https:" ? "443" : "80")
    const direct = bypass.some((entry) => {
      if (entry === "*") return true
      // host, host:port, [v6]:port, or a bare IPv6 address (colons, no port)
      const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(entry)
      const [rawName, entryPort] = bracketed !== null
        ? [bracketed[1]!, bracketed[2]]
        : entry.split(":").length > 2 ? [entry, undefined] : [entry.split(":")[0]!, entry.split(":")[1]]
      const name = rawName.replace(/^\*?\./, "")
      return (entryPort === undefined || entryPort === port) && (host === name || host.endsWith(`.${name}`))
    })
    return direct ? undefined : url.protocol === "https:" ? https ?? http : http
  }
}

/** The policy the SpecLoader applies; secure by default (https, public addresses, 32 MiB). */
export const SpecSourcePolicy = Context.Reference<SpecSourcePolicy>("openapi-mcp/SpecSourcePolicy", {
  defaultValue: () => ({ ...specSourceDefaults, resolver: systemResolver, timeoutMs: 30_000 })
})

/** The policy from the settings (ALLOW_INSECURE_HTTP, ALLOW_PRIVATE_NETWORKS, ALLOWED_SPEC_DIRS, SPEC_MAX_BYTES). */
export const specSourcePolicyLayer = Layer.effect(SpecSourcePolicy, Effect.gen(function*() {
  const config = yield* AppConfig
  const proxyFor = proxyChooser(config.http.proxy)
  return { ...config.specSource, resolver: systemResolver, timeoutMs: 30_000, ...(proxyFor !== undefined ? { proxyFor } : {}) }
}))

const categories: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, number, "ipv4" | "ipv6"]>]> = [
  ["unspecified", [["0.0.0.0", 8, "ipv4"], ["::", 128, "ipv6"]]],
  ["loopback", [["127.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"]]],
  ["private (RFC 1918)", [["10.0.0.0", 8, "ipv4"], ["172.16.0.0", 12, "ipv4"], ["192.168.0.0", 16, "ipv4"]]],
  ["carrier-grade NAT", [["100.64.0.0", 10, "ipv4"]]],
  ["link-local (includes the cloud metadata address 169.254.169.254)", [["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]]],
  ["unique-local (private IPv6)", [["fc00::", 7, "ipv6"]]],
  ["site-local", [["fec0::", 10, "ipv6"]]],
  ["multicast", [["224.0.0.0", 4, "ipv4"], ["ff00::", 8, "ipv6"]]],
  ["documentation", [["192.0.2.0", 24, "ipv4"], ["198.51.100.0", 24, "ipv4"], ["203.0.113.0", 24, "ipv4"], ["2001:db8::", 32, "ipv6"]]],
  ["reserved", [
    ["192.0.0.0", 24, "ipv4"], ["192.88.99.0", 24, "ipv4"], ["198.18.0.0", 15, "ipv4"], ["240.0.0.0", 4, "ipv4"],
    ["100::", 64, "ipv6"], ["2001::", 23, "ipv6"], ["::", 96, "ipv6"]
  ]]
]

const lists = categories.map(([name, subnets]) => {
  const list = new BlockList()
  for (const [net, prefix, type] of subnets) list.addSubnet(net, prefix, type)
  return [name, list] as const
})

/** The 16 bytes of an IPv6 address (with an optional trailing dotted quad), or undefined. */
const ipv6Bytes = (ip: string): Array<number> | undefined => {
  let text = ip
  const tail: Array<number> = []
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (quad) {
    tail.push(...quad[1]!.split(".").map(Number))
    text = `${text.slice(0, -quad[1]!.length)}0:0`
  }
  const [head = "", rest] = text.split("::")
  const h = head === "" ? [] : head.split(":")
  const r = rest === undefined || rest === "" ? [] : rest.split(":")
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill("0"), ...r]
  if (groups.length !== 8) return undefined
  const bytes = groups.flatMap((g) => {
    const n = parseInt(g, 16)
    return [(n >> 8) & 0xff, n & 0xff]
  })
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes
}

/** The IPv4 address carried inside an IPv6 one (mapped, NAT64 64:ff9b::/96, 6to4 2002::/16), if any. */
const embeddedIpv4 = (ip: string): string | undefined => {
  const b = ipv6Bytes(ip)
  if (b === undefined) return undefined
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0)
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12, 16).join(".")
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return b.slice(12, 16).join(".")
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6).join(".")
  return undefined
}

/** Why an IP address is not a public one, or undefined when it is public. */
export const nonPublicReason = (ip: string): string | undefined => {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "")
  const family = isIP(bare)
  if (family === 0) return "not an IP address"
  if (family === 6) {
    const v4 = embeddedIpv4(bare)
    if (v4 !== undefined) {
      const inner = nonPublicReason(v4)
      if (inner !== undefined) return `${inner}, inside an IPv6 address`
    }
  }
  for (const [name, list] of lists) if (list.check(bare, family === 6 ? "ipv6" : "ipv4")) return name
  return undefined
}

/** The error code of a connection a guarded lookup refused (the host resolved to a non-public address). */
export const NON_PUBLIC_ADDRESS = "ERR_NON_PUBLIC_ADDRESS"

/**
 * A `lookup` for the sockets to upstream APIs a spec read from a URL chose. Their base URLs are checked at
 * start, but a name that did not resolve then, or that resolves elsewhere later (DNS rebinding), could still
 * aim a call at a private address: this checks every address at every new connection and refuses the
 * connection with NON_PUBLIC_ADDRESS.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  process.getBuiltinModule("node:dns").lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, "", 0)
    const refused = addresses.find((a) => nonPublicReason(a.address) !== undefined)
    if (refused !== undefined) {
      const why = `${hostname} resolves to ${refused.address}, a ${nonPublicReason(refused.address)} address`
      return callback(Object.assign(new Error(why), { code: NON_PUBLIC_ADDRESS }), "", 0)
    }
    if (options.all) return callback(null, addresses)
    const first = addresses[0]
    if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0)
    callback(null, first.address, first.family)
  })
}

/**
 * Checks a URL against the policy and resolves its host once: the address to connect to, or why not. Through a
 * proxy (`proxy`) the proxy connects, by name; the addresses are still checked when the name resolves here, and a
 * name only the proxy's network knows is let through (`pinned` undefined).
 */
export const checkUrl = (
  raw: string,
  policy: SpecSourcePolicy
): Effect.Effect<{ readonly url: URL; readonly pinned: ResolvedAddress | undefined; readonly proxy: string | undefined }, string> =>
  Effect.gen(function*() {
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      return yield* Effect.fail("not a valid URL")
    }
    if (url.protocol === "http:" && !policy.allowInsecureHttp) {
      return yield* Effect.fail("http:// URLs are refused (use https://, or pass --allow-insecure-http / ALLOW_INSECURE_HTTP=true)")
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return yield* Effect.fail(`${url.protocol} URLs are not supported`)
    const host = url.hostname.replace(/^\[|\]$/g, "")
    const proxy = policy.proxyFor?.(url)
    let addresses: ReadonlyArray<ResolvedAddress>
    if (isIP(host) !== 0) {
      addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }]
    } else {
      const resolved = yield* Effect.tryPromise({
        try: () => policy.resolver(host),
        catch: (e) => `cannot resolve ${host} (${(e as NodeJS.ErrnoException).code ?? "DNS error"})`
      }).pipe(Effect.result)
      if (resolved._tag === "Failure" && proxy === undefined) return yield* Effect.fail(resolved.failure)
      addresses = resolved._tag === "Success" ? resolved.success : []
      if (addresses.length === 0 && proxy === undefined) return yield* Effect.fail(`cannot resolve ${host} (no addresses)`)
    }
    if (!policy.allowPrivateNetworks) {
      for (const a of addresses) {
        const why = nonPublicReason(a.address)
        if (why !== undefined) {
          return yield* Effect.fail(
            `${host === a.address ? host : `${host} resolves to ${a.address}, which`} is a ${why} address; only public addresses are allowed ` +
              `(pass --allow-private-networks / ALLOW_PRIVATE_NETWORKS=true to allow it)`
          )
        }
      }
    }
    return { url, pinned: addresses[0], proxy }
  })

const SPEC_REQUEST_HEADERS = { accept: "application/json, application/yaml;q=0.9, */*;q=0.5", "user-agent": "openapi-mcp-server" }

/** One GET of the pinned address with the URL's host name (Host header, TLS SNI and certificate check). */
const getPinned = (url: URL, pinned: ResolvedAddress, maxBytes: number): Effect.Effect<Uint8Array, string> =>
  Effect.callback<Uint8Array, string>((resume) => {
    // loaded here, not imported: an ESM import of node:http also loads Node's bundled undici (tens of ms at start)
    const send = url.protocol === "https:" ? process.getBuiltinModule("node:https").request : process.getBuiltinModule("node:http").request
    let done = false
    const finish = (effect: Effect.Effect<Uint8Array, string>) => {
      if (done) return
      done = true
      resume(effect)
    }
    const req = send(url, {
      method: "GET",
      headers: SPEC_REQUEST_HEADERS,
      // the connection goes to the address that was checked, whatever DNS answers now
      lookup: (_host, options, callback) => {
        if (options.all === true) callback(null, [{ address: pinned.address, family: pinned.family }])
        else callback(null, pinned.address, pinned.family)
      }
    }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400) {
        res.resume()
        const to = res.headers.location
        return finish(Effect.fail(`HTTP ${status}: the server redirects${to ? ` to ${to}` : ""}, and redirects are not followed (give the final URL)`))
      }
      if (status < 200 || status >= 300) {
        res.resume()
        return finish(Effect.fail(`HTTP ${status}`))
      }
      const declared = Number(res.headers["content-length"])
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.destroy()
        return finish(Effect.fail(`the document is ${declared} bytes, more than SPEC_MAX_BYTES (${maxBytes})`))
      }
      const chunks: Array<Buffer> = []
      let size = 0
      res.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) {
          res.destroy()
          finish(Effect.fail(`the document is larger than SPEC_MAX_BYTES (${maxBytes} bytes)`))
        } else {
          chunks.push(chunk)
        }
      })
      res.on("end", () => finish(Effect.succeed(Buffer.concat(chunks))))
      res.on("error", (e) => finish(Effect.fail((e as NodeJS.ErrnoException).code ?? "the connection broke")))
    })
    req.on("error", (e) => finish(Effect.fail((e as NodeJS.ErrnoException).code ?? "connection failed")))
    req.end()
    return Effect.sync(() => req.destroy())
  })

/**
 * One GET through a forward proxy (undici's ProxyAgent: CONNECT for https, credentials in the proxy URL sent as
 * Proxy-Authorization), with the same rules as `getPinned`: no redirects, size-capped.
 */
const getViaProxy = (url: URL, proxy: string, maxBytes: number): Effect.Effect<Uint8Array, string> =>
  Effect.tryPromise({
    try: async (signal) => {
      const undici = await import("undici")
      const agent = new undici.ProxyAgent(proxy)
      try {
        const res = await undici.request(url, { dispatcher: agent, method: "GET", headers: SPEC_REQUEST_HEADERS, signal })
        const status = res.statusCode
        if (status < 200 || status >= 300) {
          await res.body.dump()
          const to = res.headers["location"]
          throw new Error(status >= 300 && status < 400
            ? `HTTP ${status}: the server redirects${to ? ` to ${String(to)}` : ""}, and redirects are not followed (give the final URL)`
            : `HTTP ${status}`)
        }
        const declared = Number(res.headers["content-length"])
        if (Number.isFinite(declared) && declared > maxBytes) {
          res.body.destroy()
          throw new Error(`the document is ${declared} bytes, more than SPEC_MAX_BYTES (${maxBytes})`)
        }
        const chunks: Array<Buffer> = []
        let size = 0
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length
          if (size > maxBytes) {
            res.body.destroy()
            throw new Error(`the document is larger than SPEC_MAX_BYTES (${maxBytes} bytes)`)
          }
          chunks.push(chunk as Buffer)
        }
        return Buffer.concat(chunks)
      } finally {
        void agent.close().catch(() => undefined)
      }
    },
    // (never the proxy's URL: it may hold a password)
    catch: (e) => `${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (through the proxy ${new URL(proxy).origin})`
  })

/** Fetches a document under the policy: checked, pinned (or through the proxy), no redirects, size-capped, time-limited. */
export const fetchGuarded = (raw: string, policy: SpecSourcePolicy): Effect.Effect<Uint8Array, string> =>
  checkUrl(raw, policy).pipe(
    Effect.flatMap(({ url, pinned, proxy }) =>
      proxy !== undefined ? getViaProxy(url, proxy, policy.maxBytes) : getPinned(url, pinned!, policy.maxBytes)),
    Effect.timeoutOrElse({
      duration: policy.timeoutMs,
      orElse: () => Effect.fail(`timed out after ${policy.timeoutMs / 1000} s`)
    })
  )

/**
 * For a spec fetched from a URL: the upstream base URLs its `servers` name must not be non-public
 * addresses either (a hostile spec could otherwise aim tool calls at the metadata service or an internal
 * host). Names that do not resolve now are let through (the API may be reachable later); the operator's
 * own `--base-url` is never checked. Returns why a base URL is refused, or undefined.
 */
export const refusedBaseUrl = (
  baseUrls: ReadonlyArray<string>,
  policy: Pick<SpecSourcePolicy, "allowPrivateNetworks" | "resolver">
): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    if (policy.allowPrivateNetworks) return undefined
    for (const base of new Set(baseUrls)) {
      let host: string
      try {
        host = new URL(base).hostname.replace(/^\[|\]$/g, "")
      } catch {
        continue
      }
      const addresses = isIP(host) !== 0
        ? [host]
        : (yield* Effect.promise(() => policy.resolver(host).catch(() => []))).map((a) => a.address)
      for (const address of addresses) {
        const why = nonPublicReason(address)
        if (why !== undefined) {
          return `the spec, read from a URL, sends calls to ${base}, ${host === address ? "" : `whose host resolves to ${address}, `}a ${why} address; ` +
            `pass --base-url <url> to choose the upstream yourself, or --allow-private-networks (ALLOW_PRIVATE_NETWORKS=true) if the spec is trusted`
        }
      }
    }
    return undefined
  })
