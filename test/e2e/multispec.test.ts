/** Several specs in one server: namespaced tools, each spec with its own base URL and credentials. */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startExampleApi } from "../../src/demo/ExampleApi.ts"
import { connectStdio, EXAMPLE_SPEC, fixture, spec, startRecorder, textOf } from "../support/processes.ts"

describe("additional specs", () => {
  it("serves the tools of every spec, namespaced, each calling its own API with its own credentials", async () => {
    const api = await startExampleApi({ apiKey: "main-key" })
    const recorder = await startRecorder()
    const additional = JSON.stringify([
      {
        name: "wire", spec_path: fixture("wire.yaml"), base_url: `${recorder.url}/api`,
        auth_type: "api_key", auth_api_key: "wire-key", auth_api_key_name: "X-Wire-Key"
      },
      { name: "broken", spec_path: "/nonexistent/spec.yaml" },
      { name: "no-spec" }
    ])
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--base-url", api.url], {
      AUTH_TYPE: "api_key", AUTH_API_KEY: "main-key", AUTH_API_KEY_NAME: "X-API-Key", ADDITIONAL_SPECS: additional
    })
    try {
      const names = (await mcp.client.listTools()).tools.map((t) => t.name)
      assert.includeMembers(names, ["getPet", "listPets", "wire_secure", "wire_postJson", "wire_styles"])
      assert.strictEqual(names.length, 6 + 7)

      const pet = await mcp.client.callTool({ name: "getPet", arguments: { petId: 1 } })
      assert.isUndefined(pet.isError, textOf(pet))
      const secure = await mcp.client.callTool({ name: "wire_secure", arguments: {} })
      assert.isUndefined(secure.isError, textOf(secure))
      assert.strictEqual(recorder.requests.length, 1)
      assert.strictEqual(recorder.requests[0]!.url, "/api/secure")
      assert.strictEqual(recorder.requests[0]!.headers["x-wire-key"], "wire-key")
      assert.isUndefined(recorder.requests[0]!.headers["x-api-key"], "the main spec's key stays with the main spec")

      const warnings = mcp.stderr().split("\n").filter((l) => l.includes("\"level\":\"warn\""))
      assert.isTrue(warnings.some((w) => w.includes("additional spec /nonexistent/spec.yaml skipped")))
      assert.isTrue(warnings.some((w) => w.includes("ADDITIONAL_SPECS[2] skipped: it needs spec_path or spec_url")))
      assert.notInclude(mcp.stderr(), "wire-key")
    } finally {
      await mcp.close()
      await recorder.close()
      await api.close()
    }
  })

  it("in discovery mode maps an additional spec lazily too: its broken operation says why when used, and is logged under its name", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--tool-mode", "discover", "--catalog-cache-dir", "off"], {
      ADDITIONAL_SPECS: JSON.stringify([{ name: "partly", spec_path: fixture("startup-broken.yaml") }])
    })
    const expected = "skipped operation of partly: paths./pets/{id}.get.parameters[2]: $ref '#/components/parameters/Nope' not found"
    try {
      const broken = await mcp.client.callTool({ name: "describe_operation", arguments: { name: "partly_getPet" } })
      assert.isTrue(broken.isError)
      assert.include(textOf(broken), "partly_getPet cannot be used")
      const fine = await mcp.client.callTool({ name: "describe_operation", arguments: { name: "partly_listPets" } })
      assert.isUndefined(fine.isError, textOf(fine))
      // the background mapping, a second after start-up, logs it once
      for (let i = 0; i < 100 && !mcp.stderr().includes(expected); i++) await new Promise((r) => setTimeout(r, 50))
      assert.strictEqual(mcp.stderr().split(expected).length - 1, 1)
    } finally {
      await mcp.close()
    }
  })

  it("reads an additional spec's tools from the catalog cache on the next start, under the same name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catalog-multi-"))
    const start = async () => {
      const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--spec", spec("readme_3.0_parameters-extreme.json"), "--catalog-cache-dir", dir, "--log-level", "debug"])
      try {
        const { tools } = await mcp.client.listTools()
        // written a second after start-up: wait for both entries (main and additional)
        for (let i = 0; i < 100 && readdirSync(dir).length < 2; i++) await new Promise((r) => setTimeout(r, 50))
        return { tools, stderr: mcp.stderr() }
      } finally {
        await mcp.close()
      }
    }
    try {
      const first = await start()
      assert.strictEqual(readdirSync(dir).length, 2)
      assert.notInclude(first.stderr, "(from the catalog cache)")
      const second = await start()
      assert.include(second.stderr, "read from the catalog cache") // the main spec
      assert.match(second.stderr, /loaded additional spec .*readme_3\.0_parameters-extreme\.json as 'Extreme_parameter_cases': 1 tools \(from the catalog cache\)/)
      assert.deepStrictEqual(second.tools, first.tools)
      // the same spec twice: the second is named 'Extreme_parameter_cas_2', so the entry made under the first
      // name is not used for it (and the first keeps its name)
      const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--spec", spec("readme_3.0_parameters-extreme.json"),
        "--spec", spec("readme_3.0_parameters-extreme.json"), "--catalog-cache-dir", dir])
      try {
        const names = (await mcp.client.listTools()).tools.map((t) => t.name)
        assert.strictEqual(names.filter((n) => n.startsWith("Extreme_parameter_cas_2_")).length, 1)
        assert.strictEqual(names.filter((n) => n.startsWith("Extreme_parameter_cases_")).length, 1)
      } finally {
        await mcp.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("takes --spec more than once, naming the extra tools after each spec's title", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--spec", spec("readme_3.0_parameters-extreme.json")])
    try {
      const names = (await mcp.client.listTools()).tools.map((t) => t.name)
      assert.strictEqual(names.length, 7)
      const extra = names.filter((n) => !["listPets", "createPet", "getPet", "deletePet", "updatePet", "getInventory"].includes(n))
      assert.strictEqual(extra.length, 1)
      assert.match(extra[0]!, /^Extreme_parameter_cases_/) // the spec title, sanitised and cut to 24 characters
    } finally {
      await mcp.close()
    }
  })
})
