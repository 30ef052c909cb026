/** Start-up as a user meets it: help, bad flags, bad specs, partly broken specs, specs from URLs. */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { createServer } from "node:http"
import { OPTIONS } from "../../src/AppConfig/Options.ts"
import { CLI, connectStdio, EXAMPLE_SPEC, fixture, runCli, spec, textOf } from "../support/processes.ts"

const MULTI_FILE_SPEC = fixture("spec-loader/multi/openapi.yaml")

const lastLine = (s: string) => s.trim().split("\n").pop() ?? ""

describe("start-up", () => {
  it("--help lists every flag with its env var and default, on stdout, exit 0", async () => {
    const r = await runCli(["--help"])
    assert.strictEqual(r.code, 0)
    for (const o of OPTIONS) {
      assert.include(r.stdout, `--${o.flag}`)
      for (const env of o.env) assert.include(r.stdout, env)
      if (o.defaultText) assert.include(r.stdout, `default ${o.defaultText}`)
    }
    assert.strictEqual((await runCli(["--version"])).stdout.trim(), "0.1.0")
  })

  it("refuses an unknown flag with exit code 2 and a pointer to --help", async () => {
    const r = await runCli(["--spec", EXAMPLE_SPEC, "--spec-dir", "x"])
    assert.strictEqual(r.code, 2)
    assert.include(r.stderr, "spec-dir")
    assert.include(r.stderr, "--help")
  })

  it("stops with exit 1 and one clear line for a missing file, a non-spec and broken YAML", async () => {
    const missing = await runCli(["--spec", "/nonexistent/api.yaml"])
    assert.strictEqual(missing.code, 1)
    assert.strictEqual(lastLine(missing.stderr), "openapi-mcp-server: cannot start: spec /nonexistent/api.yaml: cannot read the spec: file not found")
    const notSpec = await runCli(["--spec", fixture("../../package.json")])
    assert.strictEqual(notSpec.code, 1)
    assert.include(notSpec.stderr, "not an OpenAPI document")
    const yaml = await runCli(["--spec", fixture("spec-loader/invalid.yaml")])
    assert.strictEqual(yaml.code, 1)
    assert.strictEqual(lastLine(yaml.stderr), `openapi-mcp-server: cannot start: spec ${fixture("spec-loader/invalid.yaml")}: invalid YAML: bad indentation of a mapping entry at line 12, column 6`)
  })

  it("stops with exit 1 when no base URL can be found, naming the flag to pass", async () => {
    const r = await runCli(["--spec", fixture("relative-server.yaml")])
    assert.strictEqual(r.code, 1)
    assert.include(r.stderr, "no base URL")
    assert.include(r.stderr, "--base-url")
  })

  it("stops with exit 1 on bad auth settings, naming what is missing", async () => {
    const noToken = await runCli(["--spec", EXAMPLE_SPEC, "--auth-type", "bearer"])
    assert.strictEqual(noToken.code, 1)
    assert.include(noToken.stderr, "--auth-type bearer needs --auth-token (or AUTH_TOKEN)")
    const noRegion = await runCli(["--spec", EXAMPLE_SPEC, "--auth-type", "sigv4"])
    assert.strictEqual(noRegion.code, 1)
    assert.include(noRegion.stderr, "--auth-type sigv4 needs --auth-sigv4-region")
    const noTokenUrl = await runCli(["--spec", EXAMPLE_SPEC, "--auth-type", "oauth2"])
    assert.strictEqual(noTokenUrl.code, 1)
    assert.include(noTokenUrl.stderr, "--auth-type oauth2 needs --auth-oauth2-token-url (or AUTH_OAUTH2_TOKEN_URL)")
  })

  it("skips a broken operation with one warning naming where and why, and serves the rest", async () => {
    const mcp = await connectStdio(["--spec", fixture("startup-broken.yaml")])
    try {
      const { tools } = await mcp.client.listTools()
      assert.deepStrictEqual(tools.map((t) => t.name), ["listPets"])
      const warnings = mcp.stderr().trim().split("\n").map((l) => JSON.parse(l) as { level: string; message: string })
        .filter((e) => e.level === "warn")
      assert.strictEqual(warnings.length, 1)
      assert.strictEqual(
        warnings[0]!.message,
        "skipped operation: paths./pets/{id}.get.parameters[2]: $ref '#/components/parameters/Nope' not found"
      )
    } finally {
      await mcp.close()
    }
  })

  it("loads a spec from an http URL and resolves its relative server URL against it", async () => {
    const text = readFileSync(fixture("relative-server.yaml"), "utf8")
    const seen: Array<string> = []
    const specServer = createServer((req, res) => {
      seen.push(req.url ?? "")
      if (req.url === "/specs/api.yaml") res.writeHead(200, { "content-type": "application/yaml" }).end(text)
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => specServer.listen(0, "127.0.0.1", () => r()))
    const port = (specServer.address() as { port: number }).port
    // a loopback http:// spec URL is refused by default (SSRF guard): these flags allow it
    const mcp = await connectStdio(["--spec", `http://127.0.0.1:${port}/specs/api.yaml`, "--allow-insecure-http", "--allow-private-networks"])
    try {
      const { tools } = await mcp.client.listTools()
      assert.deepStrictEqual(tools.map((t) => t.name), ["ping"])
      // the relative server URL /api/v2 resolves against the spec's own URL: the call goes to the spec server
      const result = await mcp.client.callTool({ name: "ping", arguments: {} })
      assert.include(textOf(result), "HTTP 404")
      assert.include(textOf(result), "GET /ping")
      assert.deepStrictEqual(seen, ["/specs/api.yaml", "/api/v2/ping"])
    } finally {
      await mcp.close()
      specServer.close()
    }
  })
})

describe("catalog cache across restarts", () => {
  it("writes a new catalog shortly after start-up, while the server keeps running", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-later-"))
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--catalog-cache-dir", dir])
    try {
      await mcp.client.listTools()
      // not on the start-up path, but not left for the stop either
      for (let i = 0; i < 100 && readdirSync(dir).filter((n) => n.endsWith(".json")).length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.strictEqual(readdirSync(dir).filter((n) => /^catalog-[0-9a-f]{32}\.json$/.test(n)).length, 1)
    } finally {
      await mcp.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("uses a catalog made ahead by a run with stdin at its end, also from a copy of the server installed elsewhere", () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-ahead-"))
    const cache = join(dir, "cache")
    // the same build in another place, its files with new times (as a package unpacked elsewhere)
    cpSync(resolve(CLI, ".."), join(dir, "moved", "bundle"), { recursive: true })
    symlinkSync(resolve(CLI, "../../../node_modules"), join(dir, "moved", "node_modules"))
    const run = (cli: string) =>
      spawnSync(process.execPath, [cli, "--spec", EXAMPLE_SPEC, "--catalog-cache-dir", cache, "--log-level", "debug"], {
        input: "", encoding: "utf8", timeout: 30_000
      })
    try {
      const ahead = run(CLI)
      assert.strictEqual(ahead.status, 0, ahead.stderr)
      assert.strictEqual(readdirSync(cache).length, 1)
      const moved = run(join(dir, "moved", "bundle", "cli.js"))
      assert.strictEqual(moved.status, 0, moved.stderr)
      assert.include(moved.stderr, "read from the catalog cache")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("finishes a big lazily mapped catalog in the background while the server sits idle, and caches it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-idle-"))
    const mcp = await connectStdio(["--spec", spec("github_api.github.com.json"), "--base-url", "http://127.0.0.1:9", "--catalog-cache-dir", dir])
    try {
      assert.strictEqual((await mcp.client.listTools()).tools.length, 3) // discovery mode: mapped lazily
      // no request arrives meanwhile: the background mapping must not wait for one
      for (let i = 0; i < 200 && readdirSync(dir).length === 0; i++) await new Promise((r) => setTimeout(r, 50))
      assert.strictEqual(readdirSync(dir).length, 1)
    } finally {
      await mcp.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("in discovery mode, says why an operation that cannot be mapped is unusable, and skips it once the catalog is finished", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-lazy-"))
    const args = ["--spec", fixture("startup-broken.yaml"), "--tool-mode", "discover", "--catalog-cache-dir", dir]
    const warnings = (stderr: string) =>
      stderr.trim().split("\n").map((l) => JSON.parse(l) as { level: string; message: string })
        .filter((e) => e.level === "warn").map((e) => e.message)
    const expected = "skipped operation: paths./pets/{id}.get.parameters[2]: $ref '#/components/parameters/Nope' not found"
    const first = await connectStdio(args)
    try {
      // mapped lazily: the operation is found by name, and using it says what is wrong in the spec
      for (const call of [
        { name: "describe_operation", arguments: { name: "getPet" } },
        { name: "call_operation", arguments: { name: "getPet", arguments: { id: 1 } } }
      ]) {
        const result = await first.client.callTool(call)
        assert.isTrue(result.isError)
        assert.include(textOf(result), "getPet cannot be used")
        assert.include(textOf(result), "paths./pets/{id}.get.parameters[2]: $ref '#/components/parameters/Nope' not found")
      }
      const fine = await first.client.callTool({ name: "describe_operation", arguments: { name: "listPets" } })
      assert.isUndefined(fine.isError, textOf(fine))
      // finished shortly after start-up: the problem is logged once, and the catalog cache written without the operation
      for (let i = 0; i < 100 && (readdirSync(dir).length === 0 || !first.stderr().includes(expected)); i++) {
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.strictEqual(readdirSync(dir).length, 1)
      assert.deepStrictEqual(warnings(first.stderr()), [expected])
    } finally {
      await first.close()
    }
    const again = await connectStdio(args)
    try {
      await again.client.listTools()
      assert.deepStrictEqual(warnings(again.stderr()), [expected])
      const gone = await again.client.callTool({ name: "describe_operation", arguments: { name: "getPet" } })
      assert.include(textOf(gone), "No operation named \"getPet\"")
    } finally {
      await again.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("serves the same tools from the cached catalog, rebuilds it when the spec changes, and never caches a multi-file spec", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-e2e-"))
    const cache = join(dir, "cache")
    const specFile = join(dir, "api.yaml")
    writeFileSync(specFile, readFileSync(EXAMPLE_SPEC, "utf8"))
    const listed = async (file: string) => {
      const mcp = await connectStdio(["--spec", file, "--catalog-cache-dir", cache, "--log-level", "debug"])
      try {
        const { tools } = await mcp.client.listTools()
        const fromCache = mcp.stderr().includes("read from the catalog cache")
        const warnings = mcp.stderr().trim().split("\n").map((l) => JSON.parse(l) as { level: string; message: string })
          .filter((e) => e.level === "warn").map((e) => e.message)
        return { tools, fromCache, warnings }
      } finally {
        await mcp.close()
      }
    }
    try {
      const first = await listed(specFile)
      assert.isFalse(first.fromCache)
      assert.strictEqual(readdirSync(cache).length, 1)
      const second = await listed(specFile)
      assert.isTrue(second.fromCache)
      assert.deepStrictEqual(second.tools, first.tools)

      writeFileSync(specFile, readFileSync(EXAMPLE_SPEC, "utf8").replace("operationId: getPet", "operationId: fetchPet"))
      const changed = await listed(specFile)
      assert.isFalse(changed.fromCache)
      assert.include(changed.tools.map((t) => t.name), "fetchPet")
      assert.notInclude(changed.tools.map((t) => t.name), "getPet")

      // a broken operation's warning is repeated on a cached start too
      const broken = await listed(fixture("startup-broken.yaml"))
      const again = await listed(fixture("startup-broken.yaml"))
      assert.isTrue(again.fromCache)
      assert.strictEqual(again.warnings.length, 1)
      assert.deepStrictEqual(again.warnings, broken.warnings)

      // a spec in several files is never cached: its other files could change under the same main file
      const entries = readdirSync(cache).length
      await listed(MULTI_FILE_SPEC)
      const multi = await listed(MULTI_FILE_SPEC)
      assert.isFalse(multi.fromCache)
      assert.strictEqual(readdirSync(cache).length, entries)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
