import { assert, describe, it } from "@effect/vitest"
import { PassThrough } from "node:stream"
import { StdioTransport } from "../../src/McpServer/StdioTransport.ts"

describe("StdioTransport", () => {
  it("delivers one message per line across chunk borders and CRLF, reports bad lines and goes on", async () => {
    const input = new PassThrough()
    const output = new PassThrough()
    const transport = new StdioTransport(input, output)
    const messages: Array<unknown> = []
    const errors: Array<string> = []
    transport.onmessage = (m) => messages.push(m)
    transport.onerror = (e) => errors.push(e.message)
    await transport.start()
    input.write("{\"jsonrpc\":\"2.0\",\"id\":1,\"meth")
    input.write("od\":\"ping\"}\r\n\n not json\n{\"id\":2}\n")
    input.write("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
    await new Promise((r) => setImmediate(r))
    assert.deepStrictEqual(messages, [
      { jsonrpc: "2.0", id: 1, method: "ping" },
      { jsonrpc: "2.0", method: "notifications/initialized" }
    ])
    assert.strictEqual(errors.length, 2)
    assert.include(errors[0]!, "not JSON")
    assert.include(errors[1]!, "not a JSON-RPC 2.0 message")

    await transport.send({ jsonrpc: "2.0", id: 1, result: {} })
    assert.strictEqual(output.read().toString(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n")
    let closed = false
    transport.onclose = () => (closed = true)
    await transport.close()
    input.write("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\n")
    await new Promise((r) => setImmediate(r))
    assert.isTrue(closed)
    assert.strictEqual(messages.length, 2)
  })
})
