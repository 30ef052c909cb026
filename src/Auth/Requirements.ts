/**
 * An operation's security requirements, read from the spec: `op.security ?? document.security`, each
 * scheme name resolved in `components.securitySchemes`. Never throws: a scheme that cannot be used becomes
 * `unsupported` with why, so the operation stays callable through its other alternatives.
 */
import type { SecurityRequirement, SecurityRequirementEntry, SecurityScheme } from "../domain/Tool.ts"
import type { LoadedSpec } from "../SpecLoader.ts"
import { isObject, type Json, type JsonObject } from "../SpecLoader/Refs.ts"

const schemeOf = (spec: LoadedSpec, name: string): SecurityScheme => {
  const components = spec.document["components"]
  const schemes = isObject(components) ? components["securitySchemes"] : undefined
  const raw = isObject(schemes) && Object.hasOwn(schemes, name) ? schemes[name] : undefined
  if (raw === undefined) return { type: "unsupported", detail: `'${name}' is not defined in components.securitySchemes` }
  let node: Json
  try {
    node = spec.refs.deref(raw, spec.url, `components.securitySchemes.${name}`).value
  } catch (e) {
    return { type: "unsupported", detail: (e as Error).message }
  }
  if (!isObject(node)) return { type: "unsupported", detail: `components.securitySchemes.${name} is not an object` }
  switch (node["type"]) {
    case "apiKey": {
      const where = node["in"]
      const keyName = node["name"]
      if ((where !== "header" && where !== "query" && where !== "cookie") || typeof keyName !== "string" || keyName === "") {
        return { type: "unsupported", detail: `apiKey scheme '${name}' needs 'name' and 'in' (header, query or cookie)` }
      }
      return { type: "apiKey", name: keyName, in: where }
    }
    case "http":
      return typeof node["scheme"] === "string" && node["scheme"] !== ""
        ? { type: "http", scheme: node["scheme"].toLowerCase() }
        : { type: "unsupported", detail: `http scheme '${name}' has no 'scheme'` }
    case "oauth2":
    case "openIdConnect":
    case "mutualTLS":
      return { type: node["type"] }
    default:
      return { type: "unsupported", detail: `scheme '${name}' has unknown type '${String(node["type"])}'` }
  }
}

const requirementsOf = (spec: LoadedSpec, list: Json): ReadonlyArray<SecurityRequirement> | undefined => {
  if (!Array.isArray(list)) return undefined
  return (list as ReadonlyArray<Json>).filter(isObject).map((alternative: JsonObject) =>
    Object.entries(alternative).map(([scheme, scopes]) => ({
      scheme,
      scopes: Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === "string") : [],
      definition: schemeOf(spec, scheme)
    }))
  )
}

/** The security requirements of an operation: its own, else the document's; undefined when neither has any. */
export const securityOf = (spec: LoadedSpec, op: JsonObject): ReadonlyArray<SecurityRequirement> | undefined =>
  op["security"] !== undefined ? requirementsOf(spec, op["security"]) : spec.document["security"] !== undefined
  ? requirementsOf(spec, spec.document["security"])
  : undefined

/** What a scheme is, for people: `API key in header 'X-API-Key'`, `HTTP bearer`, `oauth2`. */
export const describeScheme = (d: SecurityScheme): string =>
  d.type === "apiKey" ? `API key in ${d.in} '${d.name}'` : d.type === "http" ? `HTTP ${d.scheme}` : d.type === "unsupported" ? `unusable: ${d.detail}` : d.type

const describeEntry = (e: SecurityRequirementEntry): string =>
  `${e.scheme} (${describeScheme(e.definition)}${e.scopes.length > 0 ? `, scopes ${e.scopes.join(" ")}` : ""})`

/** An operation's requirements for people: alternatives joined by `|`, the schemes of one by `+`. */
export const describeRequirements = (security: ReadonlyArray<SecurityRequirement>): string =>
  security.map((alt) => alt.map(describeEntry).join(" + ")).join(" | ")
