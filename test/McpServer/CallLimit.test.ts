import { assert, describe, it } from "@effect/vitest"
import { CallLimit } from "../../src/McpServer/CallLimit.ts"

describe("CallLimit (MCP_MAX_CALLS_PER_MINUTE)", () => {
  it("lets a client make a minute's calls at once, then one more as each share of the minute passes; clients apart", () => {
    const limit = new CallLimit(3)
    assert.deepStrictEqual([0, 1, 2].map((ms) => limit.take("a", ms)), [undefined, undefined, undefined])
    assert.strictEqual(limit.take("a", 3), 19_997) // the next call's share: 20 s after the bucket was empty
    assert.isUndefined(limit.take("b", 3))
    assert.strictEqual(limit.take("a", 10_003), 9_997)
    assert.isUndefined(limit.take("a", 20_003))
    assert.isDefined(limit.take("a", 20_004))
    // a quiet minute fills the bucket again, not beyond
    assert.deepStrictEqual([0, 1, 2, 3].map((i) => limit.take("a", 200_000 + i) === undefined), [true, true, true, false])
  })
})
