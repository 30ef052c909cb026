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

  it("writes the answer to the only open request at once, and answers ready together in one write", async () => {
    const input = new PassThrough()
    const output = new PassThrough()
    const writes: Array<string> = []
    const write = output.write.bind(output)
    output.write = ((chunk: string) => (writes.push(chunk), write(chunk))) as typeof output.write
    const transport = new StdioTransport(input, output)
    transport.onmessage = () => undefined
    await transport.start()
    const request = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"t"}}\n`
    const answer = (id: number) => ({ jsonrpc: "2.0" as const, id, result: {} })

    input.write(request(1))
    await new Promise((r) => setImmediate(r))
    void transport.send(answer(1))
    assert.deepStrictEqual(writes, ["{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n"]) // not held back

    input.write(request(2) + request(3) + request(4))
    await new Promise((r) => setImmediate(r))
    void transport.send(answer(3))
    void transport.send({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } })
    void transport.send(answer(2))
    assert.strictEqual(writes.length, 1) // request 4 is still open: held back
    void transport.send(answer(4)) // the last open request: written at once, with what waits before it
    assert.strictEqual(writes.length, 2)
    const ids = (chunk: string) => chunk.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).id ?? "progress")
    assert.deepStrictEqual(ids(writes[1]!), [3, "progress", 2, 4])

    input.write(request(5) + request(6))
    await new Promise((r) => setImmediate(r))
    const fifth = transport.send(answer(5))
    assert.strictEqual(writes.length, 2)
    await fifth // written at the end of the event loop's turn, request 6 still open
    assert.deepStrictEqual(writes.slice(2).map(ids), [[5]])
    void transport.send(answer(6))

    // a cancelled request gets no answer: it no longer holds the next one back
    input.write(request(7) + request(8) + `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}\n`)
    await new Promise((r) => setImmediate(r))
    void transport.send(answer(8))
    assert.deepStrictEqual(writes.slice(3).map(ids), [[6], [8]])

    input.write(request(9) + request(10))
    await new Promise((r) => setImmediate(r))
    void transport.send(answer(9))
    await transport.close() // an answer still held back is written when the transport closes
    assert.deepStrictEqual(writes.slice(5).map(ids), [[9]])
  })
})
