import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { applySelect, checkSelect } from "../../src/Invoker/Select.ts"
import type { UpstreamResponse } from "../../src/Upstream.ts"

const json = (value: unknown, extra: Partial<UpstreamResponse> = {}): UpstreamResponse => ({
  status: 200,
  headers: { "content-type": "application/json; charset=utf-8" },
  body: Buffer.from(JSON.stringify(value)),
  ...extra
})
const REPOS = { total_count: 2, items: [{ id: 1, full_name: "a/one", owner: { login: "a" } }, { id: 2, full_name: "b/two", owner: { login: "b" } }] }

describe("_select (JMESPath on the answer)", () => {
  it.effect("keeps only what the expression selects, as JSON", () =>
    Effect.gen(function*() {
      const out = yield* applySelect(json(REPOS), "items[].{id: id, name: full_name}")
      assert.isTrue("res" in out)
      if (!("res" in out)) return
      assert.deepStrictEqual(JSON.parse(Buffer.from(out.res.body).toString()), [{ id: 1, name: "a/one" }, { id: 2, name: "b/two" }])
      assert.strictEqual(out.res.headers["content-type"], "application/json")
      assert.strictEqual(out.res.headers["content-length"], String(out.res.body.byteLength))
      assert.isUndefined(out.note)
      const count = yield* applySelect(json(REPOS), "length(items)")
      assert.strictEqual("res" in count && Buffer.from(count.res.body).toString(), "2")
    }))

  it.effect("says when the expression matched nothing, naming the answer's keys", () =>
    Effect.gen(function*() {
      const out = yield* applySelect(json(REPOS), "repos[].name")
      assert.isTrue("res" in out && out.note?.includes("matched nothing in the answer (its top-level keys: total_count, items)"))
    }))

  it.effect("returns an answer that is not JSON, or was cut, as it came, saying why", () =>
    Effect.gen(function*() {
      const html = yield* applySelect({ status: 200, headers: { "content-type": "text/html" }, body: Buffer.from("<p>hi</p>") }, "a")
      assert.isTrue("res" in html && html.note === "_select was not applied: the answer is text/html, not JSON.")
      const cut = yield* applySelect(json(REPOS, { bodyCut: true }), "items")
      assert.isTrue("res" in cut && cut.note?.includes("too long to read whole"))
      const failed = yield* applySelect(json({ error: "x" }, { status: 404 }), "items")
      assert.isTrue("res" in failed && failed.note === undefined && failed.res.status === 404)
    }))

  it.effect("reports an expression that fails on this answer", () =>
    Effect.gen(function*() {
      const out = yield* applySelect(json(REPOS), "length(total_count)")
      assert.isTrue("error" in out && out.error.startsWith('_select "length(total_count)" failed on the answer'))
    }))

  it.effect("checks an expression before anything is sent", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* checkSelect("items[].name"), { expression: "items[].name" })
      const bad = yield* checkSelect("items[.name")
      assert.isTrue("problem" in bad && bad.problem.startsWith("_select is not a valid JMESPath expression"))
      const notText = yield* checkSelect(5)
      assert.isTrue("problem" in notText && notText.problem.includes("must be a JMESPath expression"))
      const long = yield* checkSelect("a".repeat(1001))
      assert.isTrue("problem" in long && long.problem.includes("longer than 1000"))
    }))
})
