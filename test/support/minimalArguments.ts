/**
 * The plainest arguments a tool's input schema accepts, made the same way every time: the required
 * properties only, each its schema's const, first example, default or first enum value, else a simple value
 * of its type and format (a pattern's string from json-schema-faker, with a fixed seed). What a model sends
 * when it fills in only what it must; used to call every operation of real specs against Prism.
 */
import jsf from "json-schema-faker"

type Schema = Readonly<Record<string, unknown>>

const FORMATS: Readonly<Record<string, string>> = {
  "date-time": "2024-01-02T03:04:05Z",
  date: "2024-01-02",
  time: "03:04:05Z",
  uuid: "3fa85f64-5717-4562-b3fc-2c963f66afa6",
  email: "someone@example.com",
  uri: "https://example.com/x",
  url: "https://example.com/x",
  hostname: "example.com",
  ipv4: "192.0.2.1",
  ipv6: "2001:db8::1",
  byte: "aGVsbG8=",
  binary: "aGVsbG8="
}

/** A small fixed-seed random source, so a pattern always gives the same string. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const fromPattern = (pattern: string): string => {
  jsf.option({ random: seeded(42) })
  return String(jsf.generate({ type: "string", pattern } as never))
}

const typeOf = (s: Schema): string | undefined => {
  const t = s["type"]
  if (Array.isArray(t)) return t.find((x) => x !== "null") as string | undefined
  if (typeof t === "string") return t
  return s["properties"] !== undefined ? "object" : s["items"] !== undefined ? "array" : undefined
}

const bound = (s: Schema, fallback: number): number => {
  const min = typeof s["minimum"] === "number" ? s["minimum"] : typeof s["exclusiveMinimum"] === "number" ? s["exclusiveMinimum"] + 1 : undefined
  const max = typeof s["maximum"] === "number" ? s["maximum"] : typeof s["exclusiveMaximum"] === "number" ? s["exclusiveMaximum"] - 1 : undefined
  return min ?? (max !== undefined ? Math.min(max, fallback) : fallback)
}

/** A schema with `allOf` as one schema: the parts' properties and required names (their own parts too). */
const merged = (s: Schema): Schema => {
  const parts = (s["allOf"] as Array<Schema>).map((p) => Array.isArray(p["allOf"]) ? merged(p) : p)
  return {
    ...s,
    allOf: undefined,
    type: s["type"] ?? parts.map(typeOf).find((t) => t !== undefined),
    properties: Object.assign({}, s["properties"], ...parts.map((p) => p["properties"] ?? {})),
    required: [...(s["required"] as Array<string> | undefined ?? []), ...parts.flatMap((p) => (p["required"] as Array<string> | undefined) ?? [])]
  }
}

export const minimalValue = (s: Schema): unknown => {
  if (s["const"] !== undefined) return s["const"]
  if (Array.isArray(s["examples"]) && s["examples"].length > 0) return s["examples"][0]
  if (s["default"] !== undefined) return s["default"]
  if (Array.isArray(s["enum"]) && s["enum"].length > 0) return s["enum"].find((v) => v !== null) ?? s["enum"][0]
  for (const key of ["anyOf", "oneOf"]) {
    const alternatives = s[key]
    if (Array.isArray(alternatives) && alternatives.length > 0) {
      const first = ((alternatives as Array<Schema>).find((a) => a["type"] !== "null") ?? alternatives[0]) as Schema
      // the alternative within its parent: the parent's properties and required names, and its own
      return minimalValue({
        ...s, [key]: undefined, ...first,
        properties: { ...s["properties"] as Schema | undefined, ...first["properties"] as Schema | undefined },
        required: [...(s["required"] as Array<string> | undefined ?? []), ...(first["required"] as Array<string> | undefined ?? [])]
      })
    }
  }
  if (Array.isArray(s["allOf"])) return minimalValue(merged(s))
  switch (typeOf(s)) {
    case "object": {
      const properties = (s["properties"] ?? {}) as Record<string, Schema>
      const out: Record<string, unknown> = {}
      for (const name of (s["required"] as Array<string> | undefined) ?? []) out[name] = minimalValue(properties[name] ?? {})
      return out
    }
    case "array": {
      const n = typeof s["minItems"] === "number" ? s["minItems"] : 0
      return Array.from({ length: n }, () => minimalValue((s["items"] ?? {}) as Schema))
    }
    case "integer":
      return Math.ceil(bound(s, 1))
    case "number":
      return bound(s, 1)
    case "boolean":
      return true
    case "string": {
      if (s["contentEncoding"] === "base64") return FORMATS["byte"]
      const format = typeof s["format"] === "string" ? FORMATS[s["format"]] : undefined
      if (format !== undefined) return format
      if (typeof s["pattern"] === "string") return fromPattern(s["pattern"])
      const min = typeof s["minLength"] === "number" ? s["minLength"] : 1
      return "x".repeat(Math.max(1, min))
    }
    default:
      return "x"
  }
}

/** A tool's arguments: its input schema's required properties, each given its plainest value. */
export const minimalArguments = (inputSchema: Schema): Record<string, unknown> => minimalValue({ ...inputSchema, type: "object" }) as Record<string, unknown>
