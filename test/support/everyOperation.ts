/**
 * Every operation of a real spec called once, with the plainest arguments its tool's schema accepts (the
 * required ones: examples, defaults, enum values, values of their type and format), through the built server
 * over stdio, against Prism, which checks each request against the spec: a path, parameter, body or content
 * type built wrong shows up as a refusal in its log. Prism's own limits (answers it cannot serialize, specs
 * that document only a 401) are not refusals of the request, so the check is its log, not the status.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { ChildProcess } from "node:child_process"
import { minimalArguments } from "./minimalArguments.ts"
import { connectStdio, spec, startPrism, stop, textOf } from "./processes.ts"

/**
 * A suite calling every operation of `file` (its number checked) with these scheme credentials. `prismLimit`:
 * refusals Prism makes of requests the spec allows (matched against its log's error lines).
 */
export const everyOperation = (file: string, operations: number, credentials: Record<string, string>, prismLimit?: RegExp) =>
  describe(`every operation of ${file} against Prism`, () => {
    const ctx = {} as { prism: Awaited<ReturnType<typeof startPrism>>; mcp: Awaited<ReturnType<typeof connectStdio>> }
    beforeAll(async () => {
      ctx.prism = await startPrism(spec(file))
      ctx.mcp = await connectStdio([
        "--spec", spec(file), "--base-url", ctx.prism.url, "--tool-mode", "all", "--cache-backend", "none",
        "--retry-max-attempts", "1", "--circuit-breaker-failure-threshold", "0"
      ], credentials)
    })
    afterAll(async () => {
      await ctx.mcp?.close()
      if (ctx.prism) await stop(ctx.prism.child as ChildProcess)
    })

    it(`sends ${operations} requests that Prism finds valid, with the credentials in their places`, async () => {
      const { tools } = await ctx.mcp.client.listTools()
      assert.strictEqual(tools.length, operations)
      const failures: Array<string> = []
      for (const tool of tools) {
        const args = minimalArguments(tool.inputSchema as Record<string, unknown>)
        const result = await ctx.mcp.client.callTool({ name: tool.name, arguments: args })
        const text = textOf(result)
        // our own validator accepts them, and every call reaches the API (an HTTP answer, whatever its status)
        if (result.isError === true && !/ failed: HTTP \d{3} /.test(text)) failures.push(`${tool.name} ${JSON.stringify(args)}: ${text.slice(0, 300)}`)
      }
      assert.deepStrictEqual(failures, [])
      // what Prism refused, from its log's error lines: a request that did not match the spec, or a missing
      // credential (Prism also checks its own made-up answers against the spec: "Violation: response…")
      const refusals = ctx.prism.log().split("\n")
        .filter((l) => /\[VALIDATOR\] ✖ +error +(?! |Violation: response)/.test(l) && (prismLimit === undefined || !prismLimit.test(l)))
      assert.deepStrictEqual(refusals, [])
    }, 120_000)
  })
