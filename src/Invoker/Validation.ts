/**
 * Argument validation against a tool's input schema with Ajv (JSON Schema 2020-12). Each tool's validator is
 * compiled on its first call and kept, so a call never recompiles and a 1,000-tool spec starts fast.
 * Formats are hints for the model, not enforced: the upstream is the judge of them.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js"
import type { Tool } from "../domain/Tool.ts"
import { coerceScalar, typesOf } from "../ToolCatalog/Schema.ts"

/** Made at the first validation, not at start (Ajv's set-up is a few milliseconds a start does not need). */
let ajv: Ajv2020 | undefined
const compiler = () => ajv ??= new Ajv2020({
  strict: false,
  allErrors: true,
  validateFormats: false,
  logger: false
})

const compiled = new WeakMap<Tool, ValidateFunction>()

/** Compiles (once) the validator of a tool. Exposed for tests that check every schema compiles. */
export const validatorFor = (tool: Tool): ValidateFunction => {
  let v = compiled.get(tool)
  if (v === undefined) {
    v = compiler().compile(tool.inputSchema)
    compiled.set(tool, v)
  }
  return v
}

const argPath = (e: ErrorObject): string => {
  const segments = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
  if (e.keyword === "required") segments.push(String(e.params["missingProperty"]))
  if (e.keyword === "additionalProperties") segments.push(String(e.params["additionalProperty"]))
  return segments.reduce((acc, s) => /^\d+$/.test(s) ? `${acc}[${s}]` : acc === "" ? s : `${acc}.${s}`, "")
}

const shown = (v: unknown): string => {
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const valueAt = (args: unknown, instancePath: string): unknown =>
  instancePath.split("/").slice(1).reduce<unknown>(
    (v, k) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined),
    args
  )

const explain = (e: ErrorObject, args: unknown, tool: Tool): string => {
  const at = argPath(e)
  const got = valueAt(args, e.instancePath)
  switch (e.keyword) {
    case "required":
      return `'${at}' is required`
    case "additionalProperties": {
      const known = e.instancePath === "" ? Object.keys(tool.inputSchema.properties) : []
      const lower = at.toLowerCase()
      const close = known.find((k) => k.toLowerCase() === lower || k.toLowerCase().replace(/[_-]/g, "") === lower.replace(/[_-]/g, ""))
      return `'${at}' is not an argument of this tool${close ? ` (did you mean '${close}'?)` : known.length > 0 ? ` (arguments: ${known.slice(0, 30).join(", ")})` : ""}`
    }
    case "enum":
      return `'${at}' must be one of ${shown(e.params["allowedValues"])} (got ${shown(got)})`
    case "type":
      return `'${at}' must be of type ${String(e.params["type"])} (got ${shown(got)})`
    case "const":
      return `'${at}' must be ${shown(e.params["allowedValue"])} (got ${shown(got)})`
    default:
      return `'${at || "arguments"}' ${e.message ?? "is invalid"}${got !== undefined && typeof got !== "object" ? ` (got ${shown(got)})` : ""}`
  }
}

/**
 * Parameters and form fields go on the wire as text, so `7` given for a string parameter, or `"7"` for an
 * integer one, makes the same request: it is converted rather than refused (models often quote numbers or
 * leave ids unquoted; each refusal costs them a turn). JSON bodies keep their types: there they matter.
 * Returns `args` itself when nothing was converted.
 */
export const coerceTextArguments = (tool: Tool, args: Record<string, unknown>): Record<string, unknown> => {
  let out: Record<string, unknown> | undefined
  const visit = (arg: string) => {
    const value = args[arg]
    if (value === undefined || value === null) return
    const schema = tool.inputSchema.properties[arg]
    let converted: unknown
    if (Array.isArray(value)) {
      const items = typeof schema === "object" && schema !== null ? (schema as { items?: unknown }).items : undefined
      const types = typesOf(items)
      const mapped = value.map((v) => coerceScalar(v, types))
      converted = mapped.some((v, i) => v !== value[i]) ? mapped : value
    } else converted = coerceScalar(value, typesOf(schema))
    if (converted !== value) (out ??= { ...args })[arg] = converted
  }
  for (const p of tool.params) if (!p.json) visit(p.arg)
  if (tool.body?.kind === "form" && tool.body.fields !== undefined) for (const f of tool.body.fields) visit(f.arg)
  return out ?? args
}

/** Deepest nesting of arguments taken; deeper ones would overflow the stack of the code that walks them. */
export const MAX_ARGUMENT_DEPTH = 64

/** Whether `value` has objects or arrays nested more than `levels` deep (it looks no deeper than that). */
export const nestedDeeper = (value: unknown, levels: number): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (levels === 0) return true
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeper(v, levels - 1)) return true
  }
  return false
}

/** Validates arguments; returns a readable list of problems, empty when valid. */
export const validate = (tool: Tool, args: Record<string, unknown>): ReadonlyArray<string> => {
  const v = validatorFor(tool)
  if (v(args)) return []
  const errors = v.errors ?? []
  // the required fields of an optional request body (ToolCatalog/Mapping.ts; only there, at the top level):
  // one line per missing field, naming the body fields given
  const givenFor = new Map<string, Array<string>>()
  for (const e of errors) {
    if (e.keyword !== "dependentRequired") continue
    const missing = String(e.params["missingProperty"])
    givenFor.set(missing, [...givenFor.get(missing) ?? [], `'${String(e.params["property"])}'`])
  }
  const bodyMessages = [...givenFor].map(([missing, given]) =>
    `'${missing}' is required when any request body field is given (given: ${given.slice(0, 5).join(", ")}${given.length > 5 ? ` and ${given.length - 5} more` : ""})`
  )
  // anyOf branches each add errors; keep the summary line and skip the branch noise when it repeats
  const messages = errors
    .filter((e) => e.keyword !== "dependentRequired" && (e.keyword !== "anyOf" || errors.length === 1))
    .map((e) => explain(e, args, tool))
  return [...new Set([...messages, ...bodyMessages])].slice(0, 20)
}
