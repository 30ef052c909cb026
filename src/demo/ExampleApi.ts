/**
 * The example upstream API that `examples/petstore.yaml` describes: a small in-memory pet store on
 * node:http with keep-alive. Used by `npm run demo`, the end-to-end tests and the benchmark, offline.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface ExampleApi {
  /** Base URL including the `/v1` prefix, e.g. `http://127.0.0.1:8081/v1`. */
  readonly url: string
  readonly port: number
  readonly close: () => Promise<void>
}

interface Pet {
  id: number
  name: string
  status: "available" | "pending" | "sold"
  tags: Array<string>
  createdAt: string
}

const STATUSES = new Set(["available", "pending", "sold"])

const send = (res: ServerResponse, status: number, body?: unknown) => {
  if (body === undefined) {
    res.writeHead(status).end()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text)
}

const readJson = (req: IncomingMessage): Promise<unknown> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      try {
        resolve(chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString("utf8")))
      } catch {
        resolve(Symbol.for("invalid"))
      }
    })
  })

const validPet = (body: unknown, partial: boolean): string | undefined => {
  if (typeof body !== "object" || body === null) return "body must be a JSON object"
  const b = body as Record<string, unknown>
  if (!partial && (typeof b["name"] !== "string" || b["name"] === "")) return "name is required"
  if (b["name"] !== undefined && typeof b["name"] !== "string") return "name must be a string"
  if (b["status"] !== undefined && !STATUSES.has(String(b["status"]))) return "status must be available, pending or sold"
  if (b["tags"] !== undefined && (!Array.isArray(b["tags"]) || b["tags"].some((t) => typeof t !== "string"))) {
    return "tags must be a list of strings"
  }
  return undefined
}

export const startExampleApi = (options: { port?: number; host?: string; apiKey?: string } = {}): Promise<ExampleApi> => {
  const pets = new Map<number, Pet>()
  let nextId = 1
  const add = (name: string, status: Pet["status"], tags: Array<string>) => {
    const pet: Pet = { id: nextId++, name, status, tags, createdAt: new Date(Date.UTC(2026, 0, nextId)).toISOString() }
    pets.set(pet.id, pet)
    return pet
  }
  add("Rex", "available", ["dog", "friendly"])
  add("Tom", "pending", ["cat"])
  add("Nemo", "sold", ["fish"])

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost")
    if (options.apiKey !== undefined && req.headers["x-api-key"] !== options.apiKey) {
      return send(res, 401, { error: "missing or wrong X-API-Key header" })
    }
    const path = url.pathname.replace(/^\/v1/, "")
    const idMatch = /^\/pets\/([^/]+)$/.exec(path)
    if (path === "/pets" && req.method === "GET") {
      const status = url.searchParams.get("status")
      const tags = url.searchParams.get("tags")?.split(",").filter((t) => t !== "") ?? []
      const limit = Number(url.searchParams.get("limit") ?? 20)
      const items = [...pets.values()].reverse()
        .filter((p) => status === null || p.status === status)
        .filter((p) => tags.every((t) => p.tags.includes(t)))
      return send(res, 200, { items: items.slice(0, limit), total: items.length })
    }
    if (path === "/pets" && req.method === "POST") {
      const body = await readJson(req)
      const problem = validPet(body, false)
      if (problem) return send(res, 400, { error: problem })
      const b = body as { name: string; status?: Pet["status"]; tags?: Array<string> }
      return send(res, 201, add(b.name, b.status ?? "available", b.tags ?? []))
    }
    if (idMatch) {
      const pet = pets.get(Number(idMatch[1]))
      if (pet === undefined) return send(res, 404, { error: `no pet with id ${idMatch[1]}` })
      if (req.method === "GET") return send(res, 200, pet)
      if (req.method === "DELETE") {
        pets.delete(pet.id)
        return send(res, 204)
      }
      if (req.method === "PATCH") {
        const body = await readJson(req)
        const problem = validPet(body, true)
        if (problem) return send(res, 400, { error: problem })
        Object.assign(pet, body)
        return send(res, 200, pet)
      }
    }
    if (path === "/store/inventory" && req.method === "GET") {
      const counts: Record<string, number> = { available: 0, pending: 0, sold: 0 }
      for (const p of pets.values()) counts[p.status] = (counts[p.status] ?? 0) + 1
      return send(res, 200, counts)
    }
    return send(res, 404, { error: `no route for ${req.method} ${url.pathname}` })
  })
  server.keepAliveTimeout = 60_000
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://${options.host ?? "127.0.0.1"}:${port}/v1`,
        port,
        close: () => new Promise((r) => {
          server.closeAllConnections()
          server.close(() => r())
        })
      })
    })
  })
}
