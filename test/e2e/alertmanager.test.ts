/**
 * A real API end to end: Prometheus Alertmanager (Debian package prometheus-alertmanager) served through the
 * built server from its own Swagger 2.0 spec, by the SDK client over stdio. Alerts are posted, listed, silenced
 * and unsilenced; the API's own refusal comes back as a tool error the model can read.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { connectStdio, spec, startAlertmanager, textOf, waitFor } from "../support/processes.ts"

type Alert = { labels: Record<string, string>; status: { state: string; silencedBy: Array<string> } }

describe("Prometheus Alertmanager through the server", () => {
  let am: Awaited<ReturnType<typeof startAlertmanager>>
  let mcp: Awaited<ReturnType<typeof connectStdio>>
  beforeAll(async () => {
    am = await startAlertmanager()
    mcp = await connectStdio(["--spec", spec("alertmanager_v2_swagger.json"), "--base-url", `${am.url}/api/v2`, "--cache-backend", "none"])
  })
  afterAll(async () => {
    await mcp?.close()
    await am?.stop()
  })
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    const result = await mcp.client.callTool({ name, arguments: args })
    return { result, content: result.structuredContent as Record<string, unknown> & { result?: unknown } }
  }
  const diskFull = async () => {
    const { result, content } = await call("getAlerts", { filter: ["alertname=DiskFull"] })
    assert.isUndefined(result.isError, textOf(result))
    return (content.result as Array<Alert>)[0]
  }

  it("maps every operation, and reads the server's status", async () => {
    const { tools } = await mcp.client.listTools()
    assert.sameMembers(tools.map((t) => t.name), [
      "getStatus", "getReceivers", "getSilences", "postSilences", "getSilence", "deleteSilence", "getAlerts", "postAlerts", "getAlertGroups"
    ])
    const { content } = await call("getStatus")
    assert.strictEqual((content["cluster"] as { status: string }).status, "disabled")
    assert.deepStrictEqual((await call("getReceivers")).content.result, [{ name: "null" }])
  })

  it("posts an alert, silences it, and expires the silence", async () => {
    const now = Date.now()
    const posted = await call("postAlerts", {
      body: [{ labels: { alertname: "DiskFull", severity: "page" }, annotations: { summary: "disk 95% full" }, startsAt: new Date(now).toISOString() }]
    })
    assert.isUndefined(posted.result.isError, textOf(posted.result))
    await waitFor(async () => (await diskFull())?.status.state === "active", "the alert to be active")
    assert.deepStrictEqual((await diskFull())!.labels, { alertname: "DiskFull", severity: "page" })

    const silenced = await call("postSilences", {
      matchers: [{ name: "alertname", value: "DiskFull", isRegex: false }],
      startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
      createdBy: "openapi-mcp-server test", comment: "disk is being replaced"
    })
    const silenceID = silenced.content["silenceID"] as string
    assert.match(silenceID, /^[0-9a-f-]{36}$/)
    assert.strictEqual(((await call("getSilence", { silenceID })).content["status"] as { state: string }).state, "active")
    await waitFor(async () => (await diskFull())?.status.state === "suppressed", "the alert to be silenced")
    assert.deepStrictEqual((await diskFull())!.status.silencedBy, [silenceID])

    const deleted = await call("deleteSilence", { silenceID })
    assert.isUndefined(deleted.result.isError, textOf(deleted.result))
    assert.strictEqual(((await call("getSilence", { silenceID })).content["status"] as { state: string }).state, "expired")
    await waitFor(async () => (await diskFull())?.status.state === "active", "the alert to be active again")
  })

  it("gives the API's own refusal back as a tool error", async () => {
    const now = Date.now()
    const { result } = await call("postSilences", {
      matchers: [{ name: "alertname", value: "DiskFull", isRegex: false }],
      startsAt: new Date(now).toISOString(), endsAt: new Date(now - 60_000).toISOString(),
      createdBy: "openapi-mcp-server test", comment: "ends before it starts"
    })
    assert.isTrue(result.isError)
    assert.include(textOf(result), "400")
    assert.include(textOf(result), "end time")
  })
})
