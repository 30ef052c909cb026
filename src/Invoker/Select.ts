/**
 * `_select` (RESPONSE_SELECT): an optional argument of every tool, a JMESPath expression applied to the JSON
 * answer so that only what the model asked for comes back (`items[].{id: id, name: name}`, `length(items)`):
 * a list of a hundred repositories becomes a hundred names instead of half a megabyte of objects. The
 * expression is checked before the request is sent; the upstream answer (and the cached one) stays whole, and
 * what is selected goes through the same size cap as any answer.
 *
 * JMESPath is the query language of the AWS CLI's `--query`: models know it, it cannot run code, and its
 * functions are a fixed set. The library is loaded on the first call that selects.
 */
import { Effect } from "effect"
import type { UpstreamResponse } from "../Upstream.ts"
import { isJsonType, mediaTypeOf } from "../Upstream/Transport.ts"

export const SELECT_ARGUMENT = "_select"
const MAX_EXPRESSION = 1000

/** The argument as tools list it. */
export const SELECT_PROPERTY = {
  type: "string",
  maxLength: MAX_EXPRESSION,
  description: "Optional: a JMESPath expression applied to the JSON answer; only its result is returned " +
    "(e.g. items[].{id: id, name: name}, or length(items)). Use it to keep large answers small."
} as const

/** What `_select` adds to each listed tool (`,"_select":{…}`), in characters of `tools/list` (the token budget counts it). */
export const SELECT_LISTED_CHARS = JSON.stringify({ [SELECT_ARGUMENT]: SELECT_PROPERTY }).length - 1

interface Jmespath {
  readonly compile: (expression: string) => unknown
  readonly search: (data: unknown, expression: string) => unknown
}

let loaded: Jmespath | undefined
// (its type declarations leave out `compile`, which the library has)
const jmespath = Effect.promise(async (): Promise<Jmespath> => {
  if (loaded === undefined) {
    const m = await import("jmespath") as unknown as { readonly default?: Jmespath } & Jmespath
    loaded = m.default ?? m
  }
  return loaded
})

/** The expression of a call's arguments, checked: its text, or why it cannot be used. */
export const checkSelect = (value: unknown): Effect.Effect<{ readonly expression: string } | { readonly problem: string }> => {
  if (typeof value !== "string" || value.trim() === "") return Effect.succeed({ problem: `${SELECT_ARGUMENT} must be a JMESPath expression (text)` })
  if (value.length > MAX_EXPRESSION) return Effect.succeed({ problem: `${SELECT_ARGUMENT} is longer than ${MAX_EXPRESSION} characters` })
  return Effect.map(jmespath, (jp) => {
    try {
      jp.compile(value)
      return { expression: value }
    } catch (e) {
      return { problem: `${SELECT_ARGUMENT} is not a valid JMESPath expression: ${(e as Error).message}` }
    }
  })
}

/** Top-level keys of a JSON value, to say what an expression that matched nothing could have named. */
const keysOf = (value: unknown) =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? ` (its top-level keys: ${Object.keys(value).slice(0, 20).join(", ")})`
    : Array.isArray(value) ? " (it is a list)" : ""

/**
 * A 2xx JSON answer with only what `expression` selects of it, or a note saying why it is returned as it came
 * (not JSON, cut before its end), or the evaluation's error (a function given the wrong type, say).
 */
export const applySelect = (
  res: UpstreamResponse,
  expression: string
): Effect.Effect<{ readonly res: UpstreamResponse; readonly note?: string } | { readonly error: string }> => {
  if (res.status < 200 || res.status >= 300 || res.body.byteLength === 0) return Effect.succeed({ res })
  const mt = mediaTypeOf(res.headers)
  if (mt !== "" && !isJsonType(mt)) {
    return Effect.succeed({ res, note: `${SELECT_ARGUMENT} was not applied: the answer is ${mt}, not JSON.` })
  }
  if (res.bodyCut === true) {
    return Effect.succeed({ res, note: `${SELECT_ARGUMENT} was not applied: the answer is too long to read whole.` })
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength).toString("utf8"))
  } catch {
    return Effect.succeed({ res, note: `${SELECT_ARGUMENT} was not applied: the answer is not valid JSON.` })
  }
  return Effect.map(jmespath, (jp) => {
    let selected: unknown
    try {
      selected = jp.search(value, expression)
    } catch (e) {
      return { error: `${SELECT_ARGUMENT} ${JSON.stringify(expression)} failed on the answer: ${(e as Error).message}${keysOf(value)}` }
    }
    const body = Buffer.from(JSON.stringify(selected ?? null))
    return {
      res: { ...res, body, headers: { ...res.headers, "content-type": "application/json", "content-length": String(body.byteLength) } },
      ...(selected === null || selected === undefined ? { note: `${SELECT_ARGUMENT} ${JSON.stringify(expression)} matched nothing in the answer${keysOf(value)}.` } : {})
    }
  })
}
