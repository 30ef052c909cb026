/**
 * The spec file read ahead by the entry point while the modules load: which file it guesses, that the loader
 * takes the bytes only for the same unchanged file and after its own checks, and that a path which is not a
 * regular file is never read ahead (a named pipe must not hang the start).
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { SpecSourcePolicy } from "../../src/Security/SsrfGuard.ts"
import { SpecLoader } from "../../src/SpecLoader.ts"
import { prefetchSpec, specArgument, takePrefetched } from "../../src/SpecLoader/Prefetch.ts"

const specText = (title: string) => JSON.stringify({ openapi: "3.0.3", info: { title, version: "1" }, paths: {} })

const tempSpec = (title = "First") => {
  const dir = mkdtempSync(join(tmpdir(), "prefetch-"))
  const file = join(dir, "spec.json")
  writeFileSync(file, specText(title))
  return { dir, file }
}

const loadWith = (source: string, policy: Partial<SpecSourcePolicy> = {}) =>
  SpecLoader.use((l) => l.load(source)).pipe(
    Effect.provide(SpecLoader.layerNoDeps.pipe(Layer.provide(Layer.merge(
      NodeServices.layer,
      Layer.succeed(SpecSourcePolicy, { ...SpecSourcePolicy.defaultValue(), ...policy })
    ))))
  )

describe("specArgument", () => {
  it("takes the first --spec flag in any of its spellings, else API_SPEC_URL, else API_SPEC_PATH", () => {
    assert.strictEqual(specArgument(["--port", "1", "--spec", "a.yaml", "--spec", "b.yaml"], {}), "a.yaml")
    assert.strictEqual(specArgument(["--spec-path=a.json"], { API_SPEC_URL: "x" }), "a.json")
    assert.strictEqual(specArgument(["serve", "--spec-url", "https://h/a.json"], {}), "https://h/a.json")
    assert.strictEqual(specArgument([], { API_SPEC_URL: "", API_SPEC_PATH: "p.yaml" }), "p.yaml")
    assert.strictEqual(specArgument([], { API_SPEC_URL: "u.yaml", API_SPEC_PATH: "p.yaml" }), "u.yaml")
    assert.isUndefined(specArgument(["--", "--spec", "a.yaml"], {}))
    assert.isUndefined(specArgument(["--config", "c.yaml"], {}))
  })
})

describe("prefetchSpec", () => {
  it("reads the named file ahead; the first read of that file takes the bytes, once", async () => {
    const { file } = tempSpec()
    prefetchSpec(["--spec", file], {})
    const bytes = await takePrefetched(file)
    assert.isDefined(bytes)
    assert.strictEqual(Buffer.from(bytes!).toString("utf8"), readFileSync(file, "utf8"))
    assert.isUndefined(await takePrefetched(file))
  })

  it("gives nothing for another path, and drops what it read", async () => {
    const { dir, file } = tempSpec()
    prefetchSpec([`--spec=${pathToFileURL(file).href}`], {})
    assert.isUndefined(await takePrefetched(join(dir, "other.json")))
    assert.isUndefined(await takePrefetched(file))
  })

  it("never reads ahead what is not a regular file: a named pipe gives nothing, and does not block", async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), "prefetch-")), "spec.fifo")
    execFileSync("mkfifo", [fifo])
    await prefetchSpec(["--spec", fifo], {}) // a blocking open would wait here for a writer, forever
    assert.isUndefined(await takePrefetched(fifo))
  })
})

describe("SpecLoader with a prefetched spec", () => {
  it.effect("loads the file as it is now when it changed after the prefetch", () =>
    Effect.gen(function*() {
      const { file } = tempSpec("Before")
      yield* Effect.promise(() => prefetchSpec(["--spec", file], {}))
      writeFileSync(file, specText("After, and longer"))
      const loaded = yield* loadWith(file)
      assert.deepStrictEqual(loaded.document["info"], { title: "After, and longer", version: "1" })
    }))

  it.effect("still applies ALLOWED_SPEC_DIRS and reports a file deleted after the prefetch", () =>
    Effect.gen(function*() {
      const outside = tempSpec()
      const allowed = mkdtempSync(join(tmpdir(), "prefetch-allowed-"))
      prefetchSpec(["--spec", outside.file], {})
      const refused = yield* Effect.flip(loadWith(outside.file, { allowedDirs: [allowed] }))
      assert.include(refused.message, "is outside the allowed spec directories")

      const gone = tempSpec()
      prefetchSpec(["--spec", gone.file], {})
      rmSync(gone.file)
      const missing = yield* Effect.flip(loadWith(gone.file))
      assert.include(missing.message, "file not found")
    }))

  it.effect("loads the prefetched spec", () =>
    Effect.gen(function*() {
      const { file } = tempSpec("Prefetched")
      prefetchSpec(["--spec", file], {})
      const loaded = yield* loadWith(file)
      assert.deepStrictEqual(loaded.document["info"], { title: "Prefetched", version: "1" })
    }))
})
