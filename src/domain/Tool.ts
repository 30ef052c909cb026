/**
 * A tool: one OpenAPI operation as the model sees it (name, description, input schema) and as the Invoker
 * needs it (where each argument goes on the wire).
 */

/** `querystring` (OpenAPI 3.2): one parameter that is the whole query string. */
export type ParamLocation = "path" | "query" | "querystring" | "header" | "cookie"

export interface ParamBinding {
  /** Property name in the tool's input. */
  readonly arg: string
  /** Name on the wire. */
  readonly name: string
  readonly in: ParamLocation
  readonly style: string
  readonly explode: boolean
  readonly allowReserved: boolean
  /** Declared with `content: application/json`: the value is sent as JSON text. */
  readonly json: boolean
}

export type BodyKind = "json" | "form" | "multipart" | "text" | "binary"

export interface BodyField {
  readonly arg: string
  readonly name: string
}

export interface BodyBinding {
  readonly mediaType: string
  readonly kind: BodyKind
  readonly required: boolean
  /** Flattened body: each top-level body property is its own argument. */
  readonly fields: ReadonlyArray<BodyField> | undefined
  /** Whole body as one argument (when not flattened). */
  readonly arg: string | undefined
  /** multipart/form: wire names of properties that carry file content (base64 or data: URI). */
  readonly fileFields: ReadonlyArray<string>
  /** multipart: per-property content type from the spec's `encoding`. */
  readonly partTypes: Readonly<Record<string, string>>
}

/** The methods of a path item, QUERY (OpenAPI 3.2) among them, or one of its `additionalOperations` (LINK, PURGE…). */
export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE" | "OPTIONS" | "HEAD" | "PATCH" | "TRACE" | "QUERY" | (string & {})

/** Methods that only read (safe in RFC 9110's sense, QUERY too): read-only tools (READ_ONLY), no cache invalidation. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "QUERY"])

export interface JsonSchemaObject {
  readonly type: "object"
  readonly properties: Record<string, unknown>
  readonly required?: ReadonlyArray<string>
  /** Arguments that need others when given: the required fields of an optional, flattened request body. */
  readonly dependentRequired?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly additionalProperties: false
}

export interface ToolAnnotations {
  readonly title?: string
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  readonly openWorldHint: boolean
}

export interface Tool {
  readonly name: string
  /** The namespace of an additional spec this tool comes from (undefined for the main spec). */
  readonly spec?: string
  /** The spec's operationId, or `method_path` when it has none. */
  readonly operationId: string
  readonly method: HttpMethod
  /** Path template as in the spec, e.g. `/pets/{petId}`. */
  readonly path: string
  readonly baseUrl: string
  readonly title: string | undefined
  readonly description: string
  readonly tags: ReadonlyArray<string>
  readonly inputSchema: JsonSchemaObject
  readonly annotations: ToolAnnotations
  readonly params: ReadonlyArray<ParamBinding>
  readonly body: BodyBinding | undefined
  /**
   * The operation's `security` (else the document's), schemes resolved: alternatives (OR) of schemes that
   * all apply (AND). `[]`: explicitly no credential; undefined: the spec says nothing.
   */
  readonly security?: ReadonlyArray<SecurityRequirement> | undefined
  /**
   * The operation documents a 3xx response: a redirect (GitHub's downloads answer 302 with the file's address,
   * a renamed repository 301 with its new one) or 304 Not Modified. Such a status is then its answer, not a
   * failure. Absent: a 3xx is an error.
   */
  readonly redirects?: true
  /** Argument values the operator fixed (FIXED_ARGUMENTS, the config file): sent with every call, not in inputSchema. */
  readonly fixedArguments?: Readonly<Record<string, unknown>> | undefined
}

/** A security scheme from `components.securitySchemes`, as far as a call needs it. */
export type SecurityScheme =
  | { readonly type: "apiKey"; readonly name: string; readonly in: "header" | "query" | "cookie" }
  | { readonly type: "http"; readonly scheme: string }
  | { readonly type: "oauth2" | "openIdConnect" | "mutualTLS" }
  | { readonly type: "unsupported"; readonly detail: string }

export interface SecurityRequirementEntry {
  /** The scheme's name in `components.securitySchemes`. */
  readonly scheme: string
  readonly scopes: ReadonlyArray<string>
  readonly definition: SecurityScheme
}

/** One alternative: every entry must be satisfied; an empty one means no credential is needed. */
export type SecurityRequirement = ReadonlyArray<SecurityRequirementEntry>

/** Something in the spec that could not be used, with where it is. */
export interface Problem {
  readonly location: string
  readonly message: string
}
