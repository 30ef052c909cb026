/**
 * The spec option's names and SPEC_MAX_BYTES' default, in a module of their own: the option table
 * (Options.ts) and SpecLoader/Prefetch.ts share them, and Prefetch runs before the rest of the server loads.
 * (When Prefetch imported the whole option table, that table became a chunk loaded before everything else,
 * and the GitHub spec's first start peaked 8 MiB higher: measured, cause not found.)
 */
export const SPEC_OPTION = {
  flag: "spec",
  aliases: ["spec-path", "spec-url"],
  /** As AppConfig reads them: the first one set and not empty. */
  env: ["API_SPEC_URL", "API_SPEC_PATH"]
} as const

export const DEFAULT_SPEC_MAX_BYTES = 33_554_432
