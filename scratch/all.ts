import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { readFileSync } from "node:fs"
import { SpecLoader } from "../src/SpecLoader.ts"
import { mapSpec } from "../src/ToolCatalog/Mapping.ts"
import { validatorFor } from "../src/Invoker/Validation.ts"
const index = JSON.parse(readFileSync("../shared/specs/index.json", "utf8"))
const L = SpecLoader.layerNoDeps.pipe(Layer.provide(Layer.merge(NodeServices.layer, FetchHttpClient.layer)))
for (const s of index.specs) {
  const t0 = performance.now()
  const r = await Effect.runPromise(Effect.result(SpecLoader.use((l) => l.load(`../shared/specs/${s.file}`)).pipe(Effect.provide(L))))
  if (r._tag === "Failure") { console.log(s.file, "LOAD FAIL", r.failure.message); continue }
  const t1 = performance.now()
  const m = mapSpec(r.success, { baseUrl: "http://127.0.0.1:9", includeTags: [], excludeTags: [], includeOperations: [], excludeOperations: [], toolNameMaxLength: 64, descriptionMaxLength: 1024 })
  const t2 = performance.now()
  let bad = 0
  for (const t of m.tools) { try { validatorFor(t) } catch (e) { bad++; if (bad < 3) console.log("  ajv", t.name, (e as Error).message.slice(0, 200)) } }
  const size = JSON.stringify(m.tools.map(t => ({name: t.name, description: t.description, inputSchema: t.inputSchema}))).length
  console.log(s.file, `ops=${m.operations} tools=${m.tools.length} skipped=${m.skipped.length} ajvBad=${bad} load=${(t1-t0)|0}ms map=${(t2-t1)|0}ms size=${size}`)
  for (const p of m.skipped.slice(0, 3)) console.log("   skip", p.location, p.message.slice(0, 200))
}
