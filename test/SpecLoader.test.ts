import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { createServer, type Server } from "node:http"
import { dirname, extname, join, normalize, relative, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { SpecSourcePolicy } from "../src/Security/SsrfGuard.ts"
import { UNDESCRIBED_FIELD } from "../src/ToolCatalog/Schema.ts"
import { SpecLoader } from "../src/SpecLoader.ts"
import { isObject } from "../src/SpecLoader/Refs.ts"
import { mapSpec } from "../src/ToolCatalog/Mapping.ts"
import { loadSpec, MAPPING } from "./support/specs.ts"
import type { Tool } from "../src/domain/Tool.ts"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const spec = (name: string) => resolve(ROOT, "../shared/specs", name)
const fixture = (name: string) => resolve(ROOT, "test/fixtures/spec-loader", name)

// specs served from 127.0.0.1 over http: allowed here as --allow-insecure-http --allow-private-networks would
const LoopbackPolicy = Layer.succeed(SpecSourcePolicy, { ...SpecSourcePolicy.defaultValue(), allowInsecureHttp: true, allowPrivateNetworks: true })
const TestLayer = SpecLoader.layerNoDeps.pipe(Layer.provide(Layer.merge(NodeServices.layer, LoopbackPolicy)))

const load = loadSpec
const OPTIONS = MAPPING

const byOperation = (tools: ReadonlyArray<Tool>, operationId: string): Tool => {
  const tool = tools.find((t) => t.operationId === operationId)
  assert.isDefined(tool, `no tool for operation ${operationId}`)
  return tool!
}

/** A static file server on a free 127.0.0.1 port, closed with the test's scope. Counts requests per path. */
const serveDirectory = (root: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly server: Server; readonly baseUrl: string; readonly hits: Map<string, number> }>((res, rej) => {
        const hits = new Map<string, number>()
        const server = createServer((req, response) => {
          const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname))
          hits.set(path, (hits.get(path) ?? 0) + 1)
          const type = extname(path) === ".json" ? "application/json" : "application/yaml"
          readFile(join(root, path)).then(
            (body) => response.writeHead(200, { "content-type": type }).end(body),
            () => response.writeHead(404, { "content-type": "text/plain" }).end("not found")
          )
        })
        server.once("error", rej).listen(0, "127.0.0.1", () => {
          const address = server.address()
          if (address === null || typeof address === "string") return rej(new Error("no port"))
          res({ server, baseUrl: `http://127.0.0.1:${address.port}`, hits })
        })
      })
    ),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((res) => {
          server.closeAllConnections()
          server.close(() => res())
        })
      )
  )

layer(TestLayer)("SpecLoader", (it) => {
  describe("formats and versions", () => {
    it.effect("loads a YAML OpenAPI 3.0 document", () =>
      Effect.gen(function*() {
        const loaded = yield* load(fixture("petstore.yaml"))
        assert.strictEqual(loaded.version, "3.0")
        assert.strictEqual(loaded.url, pathToFileURL(fixture("petstore.yaml")).href)
        assert.strictEqual(loaded.files, 1)
        assert.strictEqual(loaded.document["openapi"], "3.0.3")
        assert.isTrue(isObject(loaded.document["paths"]))
        assert.deepStrictEqual(Object.keys(loaded.document["paths"] as object), ["/pets"])
      }))

    it.effect("loads a JSON OpenAPI 3.0 document given a relative path", () =>
      Effect.gen(function*() {
        const relativePath = relative(process.cwd(), spec("readme_3.0_petstore.json"))
        const loaded = yield* load(relativePath)
        assert.strictEqual(loaded.source, relativePath)
        assert.strictEqual(loaded.url, pathToFileURL(spec("readme_3.0_petstore.json")).href)
        assert.strictEqual(loaded.version, "3.0")
        assert.strictEqual(loaded.document["openapi"], "3.0.0")
      }))

    it.effect("converts Swagger 2.0 to OpenAPI 3.0 with components", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("quay_swagger.json"))
        assert.strictEqual(loaded.version, "2.0")
        const doc = loaded.document
        assert.isUndefined(doc["swagger"])
        assert.match(String(doc["openapi"]), /^3\.0\./)
        assert.isTrue(isObject(doc["components"]))
        assert.isTrue(isObject((doc["components"] as Record<string, unknown>)["schemas"]))
        assert.isUndefined(doc["definitions"])
        assert.strictEqual(loaded.pathProblems.size, 0)
        // the converted document is what the resolver sees, so its #/components refs resolve
        const mapped = mapSpec(loaded, { ...OPTIONS, baseUrl: "http://127.0.0.1:9" })
        assert.strictEqual(mapped.operations, 99)
        assert.deepStrictEqual(mapped.skipped, [])
      }))

    it.effect("converts the other paths of a Swagger 2.0 document one of whose paths does not convert", () =>
      Effect.gen(function*() {
        const loaded = yield* load(fixture("swagger-one-bad-path.json"))
        assert.deepStrictEqual([...loaded.pathProblems.keys()], ["/bad"])
        assert.include(loaded.pathProblems.get("/bad"), "cannot convert this Swagger 2.0 path to OpenAPI 3")
        // the good path is converted from the document as written, not from what the failed attempt left
        const mapped = mapSpec(loaded, OPTIONS)
        const tool = byOperation(mapped.tools, "makeThing")
        assert.strictEqual(tool.baseUrl, "http://127.0.0.1:9/v1")
        assert.deepStrictEqual(tool.inputSchema.properties, { label: { type: "string" } })
        assert.isTrue(mapped.skipped.some((p) => p.location.startsWith("paths./bad")))
      }))

    it.effect("turns Swagger 2.0 host, basePath and schemes into a server URL", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("go-openapi_petstore_swagger.json"))
        assert.strictEqual(loaded.version, "2.0")
        const servers = loaded.document["servers"]
        assert.isTrue(Array.isArray(servers) && servers.length > 0)
        const mapped = mapSpec(loaded, OPTIONS)
        assert.deepStrictEqual(mapped.skipped, [])
        for (const tool of mapped.tools) assert.match(tool.baseUrl, /^https?:\/\/[^/]+/)
      }))

    it.effect("loads a YAML Swagger 2.0 document", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("clickmeter_swagger.yaml"))
        assert.strictEqual(loaded.version, "2.0")
        assert.match(String(loaded.document["openapi"]), /^3\.0\./)
      }))

    it.effect("keeps OpenAPI 3.1 documents as 3.1", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("readme_3.1_train-travel.json"))
        assert.strictEqual(loaded.version, "3.1")
        assert.strictEqual(loaded.document["openapi"], "3.1.0")
        const mapped = mapSpec(loaded, OPTIONS)
        assert.strictEqual(mapped.operations, 7)
        assert.strictEqual(mapped.tools.length, 7)
      }))

    it.effect("accepts a 3.1 document with only webhooks", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("readme_3.1_webhooks.json"))
        assert.strictEqual(loaded.version, "3.1")
        assert.strictEqual(mapSpec(loaded, OPTIONS).operations, 0)
      }))

    it.effect("takes Azure's x-ms-parameterized-host as the server, its parameters as variables SERVER_VARIABLES fills", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("autorest-testserver/custom-baseUrl-paging.json"))
        assert.deepStrictEqual(loaded.document["servers"], [{
          url: "https://{accountName}{host}",
          variables: {
            accountName: { description: "Account Name" },
            host: { default: "host", description: "A string value that is used as a global part of the parameterized host" }
          }
        }])
        // (the document's own `host`, badhost, is not the server)
        const unset = mapSpec(loaded, OPTIONS)
        assert.strictEqual(unset.tools.length, 0)
        assert.include(unset.skipped[0]!.message, "needs {accountName}; pass --server-variables accountName=…")
        const set = mapSpec(loaded, { ...OPTIONS, serverVariables: { accountName: "acct", host: ".blob.example.com" } })
        assert.deepStrictEqual([...new Set(set.tools.map((t) => t.baseUrl))], ["https://acct.blob.example.com"])
      }))

    it.effect("reads a JSON file that starts with a UTF-8 byte order mark", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("autorest-testserver/body-formdata.json"))
        assert.strictEqual(loaded.version, "2.0")
      }))
  })

  describe("multi-file specs", () => {
    it.effect("follows a relative $ref inside a referenced file", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("kin_refInRefInProperty/openapi.yaml"))
        assert.strictEqual(loaded.files, 3)
        assert.strictEqual(loaded.refs.failures.size, 0)
        for (const url of loaded.refs.documents.keys()) assert.match(url, /^file:\/\/.*kin_refInRefInProperty\//)
        const mapped = mapSpec(loaded, { ...OPTIONS, baseUrl: "http://127.0.0.1:9" })
        assert.deepStrictEqual(mapped.skipped, [])
        assert.strictEqual(mapped.tools.length, 1)
        assert.notInclude(JSON.stringify(mapped.tools[0]!.inputSchema), "$ref")
      }))

    it.effect("loads the DigitalOcean spec from its many files", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("digitalocean_multifile/specification/DigitalOcean-public.v2.yaml"))
        assert.strictEqual(loaded.version, "3.0")
        assert.isAbove(loaded.files, 1000)
        assert.strictEqual(loaded.refs.failures.size, 0, [...loaded.refs.failures.values()].slice(0, 3).join("; "))
        const mapped = mapSpec(loaded, OPTIONS)
        assert.strictEqual(mapped.operations, 659)
        assert.strictEqual(mapped.tools.length, 657)
        // two operations name servers that cannot be called: a placeholder host, and no host at all
        assert.deepStrictEqual(mapped.skipped.map((p) => p.location), ["paths./api/v1/chat/completions.post", "paths./<upload_url>.put"])
        assert.include(mapped.skipped[0]!.message,
          "server URL 'https://{agent_url}' needs {agent_url}; pass --server-variables agent_url=… (SERVER_VARIABLES), or --base-url")
        // given a value, the operation has its server
        const given = mapSpec(loaded, { ...OPTIONS, serverVariables: { agent_url: "agent-7.agents.do-ai.run" } })
        assert.strictEqual(given.tools.length, 658)
        assert.strictEqual(given.tools.find((t) => t.path === "/api/v1/chat/completions")?.baseUrl, "https://agent-7.agents.do-ai.run")
        // the operations' own servers are used (the inference API has its own host)
        const hosts = new Set(mapped.tools.map((t) => t.baseUrl))
        assert.deepStrictEqual([...hosts].sort(), ["https://api.digitalocean.com", "https://inference.do-ai.run"])
        assert.strictEqual(mapped.tools.find((t) => t.name === "inference_create_chat_completion")?.baseUrl, "https://inference.do-ai.run")
        // every operation is a `$ref` to its own file: followed, with its operationId, parameters and body
        assert.deepStrictEqual(mapped.tools.filter((t) => /^(get|post|put|patch|delete|head)_v2_/.test(t.name)).map((t) => t.name), [])
        const bandwidth = mapped.tools.find((t) => t.name === "monitoring_get_dropletBandwidthMetrics")!
        assert.sameMembers([...bandwidth.inputSchema.required ?? []], ["host_id", "interface", "direction", "start", "end"])
        assert.include(bandwidth.description, "Get Droplet Bandwidth Metrics")
        const create = mapped.tools.find((t) => t.name === "droplets_create")!
        assert.strictEqual(create.body?.mediaType, "application/json")
        // a `properties` map that is itself a `$ref` (to a set of attributes in another file)
        const addDroplets = mapped.tools.find((t) => t.name === "loadBalancers_add_droplets")!
        assert.deepStrictEqual(addDroplets.inputSchema.required, ["lb_id", "droplet_ids"])
        assert.strictEqual((addDroplets.inputSchema.properties["droplet_ids"] as { type: string }).type, "array")
        // `required` beside an `allOf` names properties its parts declare
        const updateDefault = mapped.tools.find((t) => t.name === "projects_update_default")!
        assert.sameMembers([...updateDefault.inputSchema.required ?? []], ["name", "description", "purpose", "environment", "is_default"])
        // a required field the spec never describes is still an argument the call can send
        const check = mapped.tools.find((t) => t.name === "uptime_create_check")!
        assert.include([...check.inputSchema.required ?? []], "method")
        assert.deepStrictEqual(check.inputSchema.properties["method"], { description: UNDESCRIBED_FIELD })
      }), 60_000)

    it.effect("does not fetch a remote $ref from a spec read from a file, and says so", () =>
      Effect.gen(function*() {
        const loaded = yield* load(spec("go-openapi_remote-ref-with-id.json"))
        assert.strictEqual(loaded.files, 1)
        const why = loaded.refs.failures.get("http://localhost:1234/tree")
        assert.isDefined(why)
        assert.include(why!, "not followed")
      }))
  })

    it.effect("records a sibling file that does not parse, and skips only the operation that uses it", () =>
      Effect.gen(function*() {
        const loaded = yield* load(fixture("multi/openapi.yaml"))
        const brokenUrl = pathToFileURL(fixture("multi/broken.yaml")).href
        assert.include(loaded.refs.failures.get(brokenUrl) ?? "", "invalid YAML")
        assert.include(loaded.refs.failures.get(brokenUrl) ?? "", "missed comma between flow collection entries at line 4")
        const mapped = mapSpec(loaded, OPTIONS)
        assert.deepStrictEqual(byOperation(mapped.tools, "useGood").inputSchema.properties, { label: { type: "string" } })
        const broken = mapped.skipped.find((p) => p.location.startsWith("paths./broken.post"))
        assert.isDefined(broken)
        assert.include(broken!.message, "./broken.yaml#/Thing")
        assert.include(broken!.message, "invalid YAML")
      }))

        it.effect("loads a file referenced from a schema property named 'examples'", () =>
      Effect.gen(function*() {
        const loaded = yield* load(fixture("multi/openapi.yaml"))
        assert.isTrue(loaded.refs.documents.has(pathToFileURL(fixture("multi/sample-list.yaml")).href))
        const mapped = mapSpec(loaded, OPTIONS)
        const tool = byOperation(mapped.tools, "createSample")
        assert.deepStrictEqual(tool.inputSchema.properties["examples"], { type: "array", items: { type: "string" } })
      }))

  describe("over http", () => {
    it.effect("loads a spec and its sibling file from an http URL, resolving the relative server URL", () =>
      Effect.gen(function*() {
        const { baseUrl, hits } = yield* serveDirectory(fixture("http"))
        const source = `${baseUrl}/specs/../openapi.yaml`
        const loaded = yield* load(source)
        assert.strictEqual(loaded.source, source)
        assert.strictEqual(loaded.version, "3.0")
        assert.strictEqual(loaded.files, 2)
        assert.deepStrictEqual([...loaded.refs.failures], [])
        assert.isTrue(loaded.refs.documents.has(`${baseUrl}/schemas/pet.yaml`))
        assert.strictEqual(hits.get("/schemas/pet.yaml"), 1)

        const mapped = mapSpec(loaded, OPTIONS)
        assert.deepStrictEqual(mapped.skipped, [])
        const tool = mapped.tools[0]!
        assert.strictEqual(tool.name, "createPet")
        assert.strictEqual(tool.baseUrl, `${baseUrl}/api/v2`)
        assert.deepStrictEqual(Object.keys(tool.inputSchema.properties), ["name", "kind"])
        assert.deepStrictEqual(tool.inputSchema.properties["kind"], { type: "string", enum: ["cat", "dog"] })
        assert.deepStrictEqual(tool.inputSchema.required, ["name"])
      }))

    it.effect("names the URL and the status when the server answers 404", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* serveDirectory(fixture("http"))
        const source = `${baseUrl}/nope.yaml`
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error._tag, "SpecLoadError")
        assert.strictEqual(error.source, source)
        assert.include(error.message, "cannot read the spec")
        assert.include(error.message, "404")
      }))
  })

    it.effect("loads a spec from a directory whose name has a space and non-ASCII letters", () =>
    Effect.gen(function*() {
      const dir = join(mkdtempSync(join(tmpdir(), "spec loader ")), "ünïcode dir")
      mkdirSync(dir)
      const file = join(dir, "petstore.yaml")
      copyFileSync(fixture("petstore.yaml"), file)
      const loaded = yield* load(file)
      assert.strictEqual(loaded.version, "3.0")
      assert.strictEqual(loaded.url, pathToFileURL(file).href)
    }))

  describe("errors name the source and say what is wrong", () => {
    it.effect("a missing file", () =>
      Effect.gen(function*() {
        const source = fixture("does-not-exist.yaml")
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error._tag, "SpecLoadError")
        assert.strictEqual(error.source, source)
        assert.strictEqual(error.message, "cannot read the spec: file not found")
      }))

    it.effect("a JSON file that is not an OpenAPI document", () =>
      Effect.gen(function*() {
        const source = fixture("not-a-spec.json")
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error.source, source)
        assert.include(error.message, "not an OpenAPI document")
        assert.include(error.message, "openapi")
      }))

    it.effect("a YAML file that is not an OpenAPI document", () =>
      Effect.gen(function*() {
        const source = fixture("not-a-spec.yaml")
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error.source, source)
        assert.include(error.message, "not an OpenAPI document")
      }))

    it.effect("invalid YAML, naming the line", () =>
      Effect.gen(function*() {
        const source = fixture("invalid.yaml")
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error.source, source)
        assert.strictEqual(error.message, "invalid YAML: bad indentation of a mapping entry at line 12, column 6")
      }))

    it.effect("YAML that other parsers read (a [...] list continued with too little indentation), with a warning naming the lines", () =>
      Effect.gen(function*() {
        const warnings: Array<string> = []
        const logger = Logger.make(({ logLevel, message }) => {
          if (logLevel === "Warn") warnings.push(String(Array.isArray(message) ? message[0] : message))
        })
        const loaded = yield* load(spec("pouch-engine_swagger.yaml")).pipe(Effect.provide(Logger.layer([logger])))
        const resources = (loaded.document["components"] as { schemas: Record<string, { required: Array<string> }> }).schemas["Resources"]!
        assert.strictEqual(resources.required.length, 27)
        assert.includeMembers(resources.required, ["CpuRealtimeRuntime", "MemoryForceEmptyCtl"])
        assert.deepStrictEqual(warnings, [
          `${spec("pouch-engine_swagger.yaml")}: YAML lines 2249, 2250, 2251, 2252 continue a [...] list, {...} map or quoted text ` +
          "with less indentation than YAML allows; read as PyYAML and go-yaml read them (indent them further to silence this)"
        ])
      }))

    it.effect("invalid JSON", () =>
      Effect.gen(function*() {
        const source = fixture("truncated.json")
        const error = yield* Effect.flip(load(source))
        assert.strictEqual(error.source, source)
        assert.match(error.message, /^invalid JSON: /)
      }))

    it.effect("a document whose top level is a list or a scalar", () =>
      Effect.gen(function*() {
        for (const name of ["list.yaml", "scalar.yaml"]) {
          const source = fixture(name)
          const error = yield* Effect.flip(load(source))
          assert.strictEqual(error.source, source)
          assert.strictEqual(error.message, "not an OpenAPI document: the file is not a JSON/YAML mapping")
        }
      }))
  })
})
