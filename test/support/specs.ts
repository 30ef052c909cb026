/** Loading and mapping specs in-process, shared by the SpecLoader, mapping, search and corpus tests. */
import { NodeServices } from "@effect/platform-node"
import { Layer } from "effect"
import { SpecLoader } from "../../src/SpecLoader.ts"
import type { MappingOptions } from "../../src/ToolCatalog/Mapping.ts"

/** The real loader on the real file system (default spec-source policy). */
export const SpecLoaderTest = SpecLoader.layerNoDeps.pipe(Layer.provide(NodeServices.layer))

export const loadSpec = (source: string) => SpecLoader.use((loader) => loader.load(source))

/** Mapping options as the CLI's defaults give them (no --base-url, no filters). */
export const MAPPING: MappingOptions = {
  baseUrl: undefined,
  includeTags: [],
  excludeTags: [],
  includeOperations: [],
  excludeOperations: [],
  toolNameMaxLength: 64,
  descriptionMaxLength: 1024
}
