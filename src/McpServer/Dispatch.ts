/**
 * A cheaper first step for incoming MCP requests. The SDK's Protocol classifies every message it receives
 * with up to three zod parses of the whole message (result? error? request?) before dispatching it: about
 * 7 % of a tool call's server CPU. A message that is plainly a well-formed request (the same rules as the
 * SDK's JSONRPCRequestSchema, checked by hand) goes straight to the Protocol's request dispatch, and a plain
 * tools/call request skips the second parse by CallToolRequestSchema and, once the server's tool calls
 * can be cancelled without it (InFlightCalls), the request dispatch too (`answerToolCall`); anything else
 * (responses, notifications, task metadata, malformed messages) takes the SDK's own path unchanged.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { Protocol, type RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  type CallToolRequest, CallToolRequestSchema, type CallToolResult, ErrorCode, type JSONRPCMessage, type JSONRPCRequest,
  JSONRPCRequestSchema, McpError, type MessageExtraInfo, type RequestId, type ServerNotification, type ServerRequest
} from "@modelcontextprotocol/sdk/types.js"
import type { Exit, Fiber } from "effect"

const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"])
const CALL_PARAMS_KEYS = new Set(["name", "arguments", "_meta"])
const META_KEYS = new Set(["progressToken", "traceparent", "tracestate"])

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

const isId = (v: unknown): boolean => typeof v === "string" || (typeof v === "number" && Number.isInteger(v))

const isPlainMeta = (meta: unknown): boolean => {
  if (meta === undefined) return true
  if (!isPlainObject(meta)) return false
  for (const key in meta) if (!META_KEYS.has(key)) return false
  const token = meta["progressToken"]
  return token === undefined || isId(token)
}

/** True only for what the SDK's JSONRPCRequestSchema accepts too (it may accept more: those take its path). */
export const isPlainRequest = (message: unknown): message is JSONRPCRequest => {
  if (!isPlainObject(message) || message["jsonrpc"] !== "2.0" || typeof message["method"] !== "string" || !isId(message["id"])) {
    return false
  }
  for (const key in message) if (!REQUEST_KEYS.has(key)) return false
  const params = message["params"]
  return params === undefined || (isPlainObject(params) && isPlainMeta(params["_meta"]))
}

/** True only for tool calls whose params the SDK's CallToolRequestSchema accepts too and would leave as they are. */
export const isPlainToolCall = (request: unknown): request is CallToolRequest => {
  if (!isPlainObject(request) || request["method"] !== "tools/call") return false
  const params = request["params"]
  if (!isPlainObject(params) || typeof params["name"] !== "string") return false
  for (const key in params) if (!CALL_PARAMS_KEYS.has(key)) return false
  const args = params["arguments"]
  return (args === undefined || isPlainObject(args)) && isPlainMeta(params["_meta"])
}

/**
 * What a tool call's handler gets of the SDK's request context: over the Protocol's dispatch all of it; when
 * answered directly (`answerToolCall`), no abort signal (its cancellation goes through InFlightCalls).
 */
export interface ToolCallExtra {
  readonly requestId: RequestId
  readonly sessionId?: string | undefined
  readonly requestInfo?: MessageExtraInfo["requestInfo"]
  /** Who the HTTP layer admitted (`clientId`), when it says. */
  readonly authInfo?: MessageExtraInfo["authInfo"]
  readonly sendNotification: (notification: ServerNotification) => Promise<void>
  readonly signal?: AbortSignal | undefined
}

type ToolCallHandler = (request: CallToolRequest, extra: ToolCallExtra) => Promise<CallToolResult>

/**
 * Registers the tools/call handler. On the Protocol base: the SDK Server's own registration parses every
 * request a second time and every result against CallToolResultSchema (the whole structured body); our
 * results are built to that schema (checked by the SDK client in the e2e tests). Then a plain call reaches
 * `handle` without the Protocol's parse either (CallToolRequestSchema, which copies it); others take it.
 */
export const setToolCallHandler = (server: Server, handle: ToolCallHandler): void => {
  Protocol.prototype.setRequestHandler.call(server, CallToolRequestSchema, handle)
  type Handler = (request: JSONRPCRequest, extra: RequestHandlerExtra<ServerRequest, ServerNotification>) => Promise<unknown>
  const handlers = (server as unknown as { _requestHandlers?: Map<string, Handler> })._requestHandlers
  const sdkPath = handlers?.get("tools/call")
  if (handlers === undefined || sdkPath === undefined) return
  handlers.set("tools/call", (request, extra) => isPlainToolCall(request) ? handle(request, extra) : sdkPath(request, extra))
}

/**
 * From each `connect` of `server` on: plain requests go to the Protocol's request dispatch directly, and with
 * `toolCalls`, plain tool calls to their handler directly. Does nothing if the SDK's internals are not what
 * this was written against (the SDK's path stays).
 */
export const dispatchPlainRequests = (
  server: Server,
  toolCalls?: { readonly handle: ToolCallHandler; readonly inFlight: InFlightCalls }
): void => {
  const connect = server.connect.bind(server)
  server.connect = async (transport: Transport) => {
    await connect(transport)
    const sdkPath = transport.onmessage
    const onrequest = (server as unknown as { _onrequest?: (request: JSONRPCRequest, extra?: MessageExtraInfo) => void })._onrequest
    if (sdkPath === undefined || typeof onrequest !== "function") return
    explainInvalidParams(server)
    transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
      if (!isPlainRequest(message)) {
        const refusal = malformedRequest(message)
        if (refusal !== undefined) void transport.send(refusal).catch(() => undefined)
        else sdkPath(message, extra)
      } else if (toolCalls !== undefined && isPlainToolCall(message)) {
        answerToolCall(server, transport, toolCalls, message as CallToolRequest & JSONRPCRequest, extra)
      } else onrequest.call(server, message, extra)
    }
  }
}

/** A zod error's issues as one line: `params.name: Invalid input: expected string, received number`. */
const issuesOf = (error: { readonly issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }> }) =>
  error.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? `${i.path.map(String).join(".")}: ` : ""}${i.message}`).join("; ")

const isZodError = (e: unknown): e is Parameters<typeof issuesOf>[0] =>
  typeof e === "object" && e !== null && /^\$?ZodError$/.test(String((e as { name?: unknown }).name)) && Array.isArray((e as { issues?: unknown }).issues)

/**
 * A message with a method and an id that is not a request the SDK can read (`params` not an object, say):
 * the SDK would drop it without an answer, leaving the client waiting, so it gets an Invalid Request error.
 */
const malformedRequest = (message: unknown): JSONRPCMessage | undefined => {
  if (!isPlainObject(message) || typeof message["method"] !== "string" || !isId(message["id"])) return undefined
  const parsed = JSONRPCRequestSchema.safeParse(message)
  if (parsed.success) return undefined
  return { jsonrpc: "2.0", id: message["id"] as RequestId, error: { code: ErrorCode.InvalidRequest, message: `Invalid Request: ${issuesOf(parsed.error)}` } }
}

const explained = new WeakSet<object>()
/**
 * Params the SDK's schema for a method refuses come back as Invalid params (-32602) with the issues on one
 * line, not as an internal error (-32603) whose message is the schema error's JSON.
 */
const explainInvalidParams = (server: Server): void => {
  type Handler = (request: JSONRPCRequest, extra: unknown) => Promise<unknown>
  const handlers = (server as unknown as { _requestHandlers?: Map<string, Handler> })._requestHandlers
  if (handlers === undefined || explained.has(handlers)) return
  explained.add(handlers)
  for (const [method, handler] of handlers) {
    handlers.set(method, (request, extra) =>
      Promise.resolve().then(() => handler(request, extra)).catch((e: unknown) => {
        throw isZodError(e) ? new McpError(ErrorCode.InvalidParams, `Invalid params for ${method}: ${issuesOf(e)}`) : e
      }))
  }
}

/**
 * A plain tool call answered without the Protocol's request dispatch, which for every request makes an
 * AbortController, parses the params once more with zod (for task metadata, which a plain call has none of),
 * builds a context with closures a tool call does not use, and chains three promises before the handler
 * runs. The answer is the same: the handler's result, or its error as the Protocol writes it (an McpError's
 * code, message and data; else InternalError). As in the Protocol, a call that the client cancelled, or
 * whose connection closed, gets no answer, and sends no more progress notifications.
 */
const answerToolCall = (
  server: Server,
  transport: Transport,
  { handle, inFlight }: { readonly handle: ToolCallHandler; readonly inFlight: InFlightCalls },
  request: CallToolRequest & JSONRPCRequest,
  info: MessageExtraInfo | undefined
): void => {
  const id = request.id
  const call = inFlight.open(id)
  const extra: ToolCallExtra = {
    requestId: id,
    sessionId: transport.sessionId,
    requestInfo: info?.requestInfo,
    authInfo: info?.authInfo,
    sendNotification: (notification) =>
      call.cancelled ? Promise.resolve() : server.notification(notification, { relatedRequestId: id })
  }
  handle(request, extra).then(
    (result): JSONRPCMessage => ({ jsonrpc: "2.0", id, result }),
    (error: { code?: unknown; message?: unknown; data?: unknown } | null | undefined): JSONRPCMessage => ({
      jsonrpc: "2.0",
      id,
      error: {
        code: Number.isSafeInteger(error?.code) ? error!.code as number : ErrorCode.InternalError,
        message: typeof error?.message === "string" ? error.message : "Internal error",
        ...(error?.data !== undefined ? { data: error.data } : {})
      }
    })
  ).then((answer) => {
    call.close()
    return call.cancelled ? undefined : transport.send(answer)
  }).catch((error: unknown) => server.onerror?.(new Error(`Failed to send response: ${String(error)}`)))
}

/** Tool calls in flight on one SDK server, by request id. */
export interface InFlightCalls {
  /** The call's exit once its fiber ends; until then, a cancel naming `id`, or the connection closing, interrupts it. */
  readonly run: <A, E>(id: RequestId, fiber: Fiber.Fiber<A, E>) => Promise<Exit.Exit<A, E>>
  /**
   * A request answered outside the Protocol, from its arrival until `close` (at its answer): `cancelled` once
   * a cancel named it or the connection closed (where the Protocol aborts its own requests' signals).
   */
  readonly open: (id: RequestId) => { readonly cancelled: boolean; readonly close: () => void }
}

/**
 * Cancellation of `server`'s tool calls without an abort listener per call: the Protocol's own cancel and
 * close handling (which abort each request's AbortSignal) first interrupt the fiber of the call they concern.
 * Adding and removing a listener on every call's signal cost about 1 % of a call's CPU. Undefined when the
 * SDK's internals are not what this was written against: callers then listen on the request's signal.
 */
export const inFlightCalls = (server: Server): InFlightCalls | undefined => {
  type Cancelled = { readonly params?: { readonly requestId?: RequestId } }
  const sdk = server as unknown as { _oncancel?: (notification: Cancelled) => Promise<void>; _onclose?: () => void }
  const cancel = sdk._oncancel
  const close = sdk._onclose
  if (typeof cancel !== "function" || typeof close !== "function") return undefined
  const fibers = new Map<RequestId, Fiber.Fiber<unknown, unknown>>()
  const opened = new Map<RequestId, { cancelled: boolean; readonly close: () => void }>()
  sdk._oncancel = (notification) => {
    const id = notification.params?.requestId
    if (id !== undefined) {
      const request = opened.get(id)
      if (request !== undefined) request.cancelled = true
      fibers.get(id)?.interruptUnsafe()
    }
    return cancel.call(server, notification)
  }
  sdk._onclose = () => {
    for (const request of opened.values()) request.cancelled = true
    opened.clear()
    for (const fiber of fibers.values()) fiber.interruptUnsafe()
    fibers.clear()
    close.call(server)
  }
  return {
    open: (id) => {
      const request = {
        cancelled: false,
        close: () => {
          if (opened.get(id) === request) opened.delete(id)
        }
      }
      opened.set(id, request)
      return request
    },
    run: <A, E>(id: RequestId, fiber: Fiber.Fiber<A, E>) =>
      new Promise<Exit.Exit<A, E>>((resolve) => {
        fibers.set(id, fiber as Fiber.Fiber<unknown, unknown>)
        fiber.addObserver((exit) => {
          if (fibers.get(id) === fiber) fibers.delete(id)
          resolve(exit)
        })
      })
  }
}

/**
 * Closes a per-request SDK server (stateless HTTP, Lambda) once its answer is out. The SDK makes a
 * "Connection closed" error at every close for the requests still waiting on the connection (none by then),
 * and capturing that error's stack trace was the largest single cost of a stateless call after the upstream
 * request itself: the error is made without one.
 */
export const closeAnswered = (server: Server): void => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    // the error is made synchronously, inside the transport's close, before the first await
    void server.close().catch(() => undefined)
  } finally {
    Error.stackTraceLimit = limit
  }
}
