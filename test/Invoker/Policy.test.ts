import { assert, describe, it } from "@effect/vitest"
import type { Tool } from "../../src/domain/Tool.ts"
import { policyFor } from "../../src/Invoker.ts"
import type { CallPolicy } from "../../src/Upstream.ts"

const base: CallPolicy = { attemptTimeoutMs: 30_000, deadlineMs: 60_000, maxAttempts: 3, idempotencyKeyHeader: undefined, circuitBreaker: true, guardConnections: false }
const tool = (operationId: string, tags: Array<string>) => ({ operationId, name: operationId, tags }) as unknown as Tool

describe("call policy per tool", () => {
  it("applies tag overrides, then the operation's own", () => {
    const overrides = {
      "tag:pets": { timeout: 5, circuit_breaker: false },
      createPet: { timeout: 2, idempotency_key_header: "Idempotency-Key" }
    }
    assert.deepStrictEqual(policyFor(tool("createPet", ["pets"]), base, overrides), {
      ...base, attemptTimeoutMs: 2000, circuitBreaker: false, idempotencyKeyHeader: "Idempotency-Key"
    })
    assert.deepStrictEqual(policyFor(tool("listPets", ["pets"]), base, overrides), { ...base, attemptTimeoutMs: 5000, circuitBreaker: false })
    assert.deepStrictEqual(policyFor(tool("getInventory", ["store"]), base, overrides), base)
  })
})
