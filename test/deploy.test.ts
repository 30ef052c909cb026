/**
 * The deployment files stay true to the code: every setting they use exists, every file they mount
 * exists, and the image keeps its promises (Node 24, non-root, health check, exec-form entrypoint).
 * (No Docker engine runs here, so the image itself is not built in tests.)
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { resolve } from "node:path"
import { load as parse } from "js-yaml"
import { OPTIONS } from "../src/AppConfig/Options.ts"
import { ROOT } from "./support/processes.ts"

const KNOWN = new Set([...OPTIONS.flatMap((o) => o.env), "NODE_ENV", "PORT", "HOST", "API_KEY"])
const read = (p: string) => readFileSync(resolve(ROOT, p), "utf8")

describe("deployment files", () => {
  it("the Dockerfile builds on Node 24, runs as non-root with a health check and an exec-form entrypoint", () => {
    const docker = read("docker/Dockerfile")
    assert.match(docker, /^FROM node:24-/m)
    assert.match(docker, /^USER node$/m)
    assert.match(docker, /^HEALTHCHECK /m)
    assert.match(docker, /^ENTRYPOINT \["node", "dist\/bundle\/cli.js"\]$/m)
    assert.include(docker, "SERVER_HOST=0.0.0.0")
  })

  it("compose uses only real settings and mounts files that exist", () => {
    const compose = parse(read("docker/compose.yaml")) as { services: Record<string, { environment?: Record<string, unknown>; volumes?: Array<string>; entrypoint?: Array<string> }>; "x-mcp": { environment: Record<string, unknown> } }
    for (const key of Object.keys(compose["x-mcp"].environment)) assert.isTrue(KNOWN.has(key), `unknown setting ${key}`)
    for (const service of Object.values(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0]!
        assert.isTrue(existsSync(resolve(ROOT, "docker", source)), `missing ${source}`)
      }
    }
    assert.isTrue(existsSync(resolve(ROOT, "src/bin/example-api.ts")))
    assert.deepStrictEqual(compose.services["example-api"]!.entrypoint, ["node", "dist/bin/example-api.js"])
  })

  it("the ECS, EKS and Lambda examples use only real settings", () => {
    const ecs = JSON.parse(read("deploy/ecs-task-definition.json")) as { containerDefinitions: Array<{ environment?: Array<{ name: string }>; secrets?: Array<{ name: string }> }> }
    for (const c of ecs.containerDefinitions) {
      for (const e of [...(c.environment ?? []), ...(c.secrets ?? [])]) assert.isTrue(KNOWN.has(e.name), `unknown setting ${e.name}`)
    }
    const eks = read("deploy/eks.yaml").split(/^---$/m).map((doc) => parse(doc) as Record<string, any>)
    const deployment = eks.find((d) => d["kind"] === "Deployment")!
    const container = deployment["spec"]["template"]["spec"]["containers"][0]
    for (const e of container.env as Array<{ name: string }>) assert.isTrue(KNOWN.has(e.name), `unknown setting ${e.name}`)
    assert.strictEqual(container.readinessProbe.httpGet.path, "/readyz")
    assert.strictEqual(JSON.parse(read("deploy/alb-target-group.json")).HealthCheckPath, "/readyz")
    const sam = read("deploy/lambda-template.yaml")
    assert.include(sam, "Handler: dist/bundle/Lambda.handler")
    for (const m of sam.matchAll(/^\s{10}([A-Z_]+):/gm)) assert.isTrue(KNOWN.has(m[1]!), `unknown setting ${m[1]}`)
  })
})
