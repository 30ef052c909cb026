/**
 * What the Swagger 2.0 converter (@scalar/openapi-upgrader) misses about request bodies, put right before it
 * runs: it turns an operation's `in: body` / `in: formData` parameters into a `requestBody`, but
 *
 * - not one it reaches through a `$ref` to the document's `parameters` (go-swagger and Azure specs share their
 *   bodies that way): the reference is left among the parameters, pointing at a request body, and the
 *   operation could not be mapped;
 * - not a body declared beside the operations, in the path item's `parameters` (Kubernetes declares every
 *   body there), unless `parameters` happens to come before the operations in the path item.
 *
 * So such parameters are written out in each operation's own list first: the referenced ones copied in place
 * of their `$ref`, the path item's ones added to every operation that has no body or form field of its own (a
 * form field of the same name replaces the shared one; a body and form fields exclude each other).
 *
 * It also leaves the request body of required form fields optional (Slack's `token`, `channel`…: the fields
 * are required inside a body that may be left out). The operations that have one are returned, for
 * `requireFormBodies` to mark after the conversion.
 */
import { isObject, type Json, type JsonObject, pointerGet } from "./Refs.ts"

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch"] as const

type Mutable = Record<string, Json>

const isBodyLike = (p: Json): p is JsonObject => isObject(p) && (p["in"] === "body" || p["in"] === "formData")

/** Changes `doc` (a Swagger 2.0 document) in place; returns the operations with a required form field. */
export const inlineBodyParameters = (doc: JsonObject): ReadonlyArray<readonly [string, string]> => {
  const requiredForms: Array<readonly [string, string]> = []
  const inline = (p: Json): Json => {
    if (!isObject(p) || typeof p["$ref"] !== "string" || !p["$ref"].startsWith("#/parameters/")) return p
    const target = pointerGet(doc, p["$ref"].slice(1))
    return target !== undefined && isBodyLike(target) ? structuredClone(target) : p
  }
  const paths = isObject(doc["paths"]) ? doc["paths"] : {}
  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) continue
    const shared = Array.isArray(item["parameters"]) ? (item["parameters"] as ReadonlyArray<Json>).map(inline) : []
    const sharedBodies = shared.filter(isBodyLike)
    if (sharedBodies.length > 0) (item as Mutable)["parameters"] = shared.filter((p) => !isBodyLike(p))
    for (const method of METHODS) {
      const op = item[method]
      if (!isObject(op)) continue
      const own = Array.isArray(op["parameters"]) ? (op["parameters"] as ReadonlyArray<Json>).map(inline) : []
      const ownBodies = own.filter(isBodyLike)
      const inherited = sharedBodies.filter((p) =>
        p["in"] === "body"
          ? ownBodies.length === 0
          : !ownBodies.some((o) => o["in"] === "body" || o["name"] === p["name"])
      )
      if (own.length > 0 || inherited.length > 0) (op as Mutable)["parameters"] = [...own, ...inherited.map((p) => structuredClone(p))]
      if ([...ownBodies, ...inherited].some((p) => p["in"] === "formData" && p["required"] === true)) requiredForms.push([path, method])
    }
  }
  return requiredForms
}

/** After the conversion: the request bodies of the operations `inlineBodyParameters` returned are required. */
export const requireFormBodies = (doc: JsonObject, operations: ReadonlyArray<readonly [string, string]>): void => {
  const paths = isObject(doc["paths"]) ? doc["paths"] : {}
  for (const [path, method] of operations) {
    const item = paths[path]
    const op = isObject(item) ? item[method] : undefined
    const body = isObject(op) ? op["requestBody"] : undefined
    if (isObject(body) && body["$ref"] === undefined) (body as Mutable)["required"] = true
  }
}
