import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mapSpec } from "../../src/ToolCatalog/Mapping.ts"
import { buildIndex, closeNames, indexBuilder, words } from "../../src/ToolCatalog/Search.ts"
import { spec } from "../support/processes.ts"
import { loadSpec, MAPPING, SpecLoaderTest } from "../support/specs.ts"

const load = (file: string) =>
  loadSpec(spec(file)).pipe(
    Effect.provide(SpecLoaderTest),
    Effect.map((s) => mapSpec(s, { ...MAPPING, baseUrl: "http://127.0.0.1:9" }).tools)
  )

describe("operation search", () => {
  it("splits names into words and folds plurals", () => {
    assert.deepStrictEqual(words("listPullRequests"), ["list", "pull", "request"])
    assert.deepStrictEqual(words("repos/get-content"), ["repo", "get", "content"])
    assert.deepStrictEqual(words("categories"), ["category"])
  })

  it.effect("finds the right GitHub operation near the top for everyday requests", () => Effect.gen(function*() {
    const index = buildIndex(yield* load("github_api.github.com.json"))
    const top = (q: string, n: number) => index.search(q, { limit: n }).map((h) => h.tool.name)
    assert.strictEqual(top("create an issue", 1)[0], "issues_create")
    assert.strictEqual(top("get the authenticated user", 1)[0], "users_get-authenticated")
    assert.strictEqual(top("search code", 1)[0], "search_code")
    assert.strictEqual(top("merge pull request", 1)[0], "pulls_merge")
    assert.include(top("list pull requests", 3), "pulls_list")
    assert.include(top("star a repository", 3), "activity_star-repo-for-authenticated-user")
    assert.include(top("list workflow runs", 3), "actions_list-workflow-runs")
    assert.include(top("delete a repository webhook", 3), "repos_delete-webhook")
    // a tag narrows the search
    assert.isTrue(index.search("list", { tag: "gists", limit: 20 }).every((h) => h.tool.tags.includes("gists")))
    assert.deepStrictEqual(index.search("", { limit: 5 }), [])
  }))

  it.effect("built a few tools at a time, answers exactly as built at once", () => Effect.gen(function*() {
    const tools = yield* load("github_api.github.com.json")
    const builder = indexBuilder(tools)
    let steps = 0
    while (!builder.step(performance.now() + 1)) steps++
    assert.isAbove(steps, 1) // 1,223 operations take more than a millisecond
    const whole = buildIndex(tools)
    for (const q of ["create an issue", "list workflow runs", "star a repository", "delete webhook"]) {
      const names = (index: typeof whole) => index.search(q, { limit: 10 }).map((h) => `${h.tool.name} ${h.score}`)
      assert.deepStrictEqual(names(builder.index()), names(whole))
    }
  }))
})

describe("closeNames", () => {
  const names = ["getPet", "listPets", "createPet", "repos_list_for_org", "repos_list_for_user", "repos/get"]
  it("finds the same name but for case and separators, else names at most two edits away", () => {
    assert.deepStrictEqual(closeNames("get_pet", names), ["getPet"])
    assert.deepStrictEqual(closeNames("GETPET", names), ["getPet"])
    assert.deepStrictEqual(closeNames("repos-get", names), ["repos/get"])
    assert.deepStrictEqual(closeNames("listPet", names), ["listPets"])
    assert.deepStrictEqual(closeNames("repos_list_for_orgs", names), ["repos_list_for_org"])
    assert.deepStrictEqual(closeNames("repos_list_for_usr", names), ["repos_list_for_user"])
  })
  it("finds nothing for a name unlike any, an empty one or a huge one", () => {
    assert.deepStrictEqual(closeNames("deleteEverything", names), [])
    assert.deepStrictEqual(closeNames("--", names), [])
    assert.deepStrictEqual(closeNames("getPet".repeat(100), names), [])
  })
})
