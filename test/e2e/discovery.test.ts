/**
 * Discovery mode on the GitHub REST spec (1,223 operations) served by Prism: a small listing, search,
 * describe, and calls that reach the upstream; auto mode keeps small specs fully listed.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import type { ChildProcess } from "node:child_process"
import { connectStdio, EXAMPLE_SPEC, spec, startPrism, stop, textOf } from "../support/processes.ts"

const GITHUB = spec("github_api.github.com.json")

describe("discovery mode on the GitHub spec", () => {
  let prism: ChildProcess
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    const started = await startPrism(GITHUB)
    prism = started.child
    mcp = await connectStdio(["--spec", GITHUB, "--base-url", started.url, "--pin-operations", "repos/get"])
  }, 180_000)
  afterAll(async () => {
    await mcp?.close()
    if (prism) await stop(prism)
  })

  it("lists the three meta-tools and the pinned operation in under 5,000 tokens", async () => {
    const { tools } = await mcp.client.listTools()
    assert.deepStrictEqual(tools.map((t) => t.name), ["search_operations", "describe_operation", "call_operation", "repos_get"])
    assert.isBelow(JSON.stringify(tools).length / 4, 5000)
    assert.include(mcp.client.getInstructions() ?? "", "1223 operations")
  })

  it("searches, describes and calls an operation that reaches the upstream", async () => {
    const found = await mcp.client.callTool({ name: "search_operations", arguments: { query: "get an issue", limit: 5 } })
    const results = (found.structuredContent as { results: Array<{ name: string; required: Array<string> }> }).results
    const getIssue = results.find((r) => r.name === "issues_get")
    assert.isDefined(getIssue, textOf(found))
    assert.deepStrictEqual([...getIssue!.required].sort(), ["issue_number", "owner", "repo"])

    const described = await mcp.client.callTool({ name: "describe_operation", arguments: { name: "issues_get" } })
    const schema = (described.structuredContent as { inputSchema: { properties: Record<string, unknown> } }).inputSchema
    assert.includeMembers(Object.keys(schema.properties), ["owner", "repo", "issue_number"])

    const called = await mcp.client.callTool({
      name: "call_operation", arguments: { name: "issues_get", arguments: { owner: "octocat", repo: "hello", issue_number: 1 } }
    })
    assert.isUndefined(called.isError, textOf(called))
    // Prism answers with the spec's example issue
    assert.include(textOf(called), "\"number\":1347")
  })

  it("validates call_operation arguments exactly like a normal tool", async () => {
    const result = await mcp.client.callTool({ name: "call_operation", arguments: { name: "issues_get", arguments: { owner: "octocat" } } })
    assert.isTrue(result.isError)
    assert.include(textOf(result), "'repo' is required")
    const unknown = await mcp.client.callTool({ name: "call_operation", arguments: { name: "issues_gett" } })
    assert.isTrue(unknown.isError)
    assert.include(textOf(unknown), "Similar:")
  })

  it("still lets pinned and unlisted operations be called by their own names", async () => {
    const pinned = await mcp.client.callTool({ name: "repos_get", arguments: { owner: "octocat", repo: "hello" } })
    assert.isUndefined(pinned.isError, textOf(pinned))
    const direct = await mcp.client.callTool({ name: "users_get-authenticated", arguments: {} })
    assert.notInclude(textOf(direct), "Unknown tool")
  })
})

describe("promotion of described operations", () => {
  it("lists a described operation as a normal tool and tells the client the list changed", async () => {
    const mcp = await connectStdio(["--spec", EXAMPLE_SPEC, "--tool-mode", "discover"])
    try {
      let changed = 0
      mcp.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++
      })
      assert.isTrue(mcp.client.getServerCapabilities()?.tools?.listChanged)
      await mcp.client.callTool({ name: "describe_operation", arguments: { name: "getPet" } })
      await mcp.client.callTool({ name: "describe_operation", arguments: { name: "getPet" } }) // once is enough
      await mcp.client.callTool({ name: "describe_operation", arguments: { name: "nope" } }) // unknown: nothing
      const names = (await mcp.client.listTools()).tools.map((t) => t.name)
      assert.deepStrictEqual(names, ["search_operations", "describe_operation", "call_operation", "getPet"])
      assert.strictEqual(changed, 1)
    } finally {
      await mcp.close()
    }
  })
})

describe("tool modes", () => {
  it("lists every operation of a small spec in auto mode, and meta-tools when forced to discover", async () => {
    const auto = await connectStdio(["--spec", EXAMPLE_SPEC])
    const forced = await connectStdio(["--spec", EXAMPLE_SPEC, "--tool-mode", "discover"])
    try {
      assert.strictEqual((await auto.client.listTools()).tools.length, 6)
      assert.deepStrictEqual((await forced.client.listTools()).tools.map((t) => t.name), ["search_operations", "describe_operation", "call_operation"])
    } finally {
      await auto.close()
      await forced.close()
    }
  })
})
