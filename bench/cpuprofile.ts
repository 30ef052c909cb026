/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) as Markdown: where the busy (non-idle) samples are,
 * by package/module (self time), by function (self and inclusive time), and which packages are on the stack.
 *
 *   node bench/cpuprofile.ts <file.cpuprofile> [--skip-ms N] [--top N]
 *
 * `--skip-ms` drops the first N ms of the profile (e.g. the start-up before a load loop).
 */
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { fmt, markdownTable } from "./lib.ts"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
export interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"])

/** The package (node_modules/<pkg>), the project file (dist/…, src/…), a node core area, or a V8 category. */
export const moduleOf = (frame: CallFrame): string => {
  const { url, functionName } = frame
  if (url === "") return SPECIAL.has(functionName) ? functionName : "(native/builtin)"
  const nm = url.lastIndexOf("/node_modules/")
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/")
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/").slice(0, 2).join("/")
  const project = /^.*\/(dist|src|bench)\/(.*)$/.exec(url)
  if (project) return `${project[1]}/${project[2]}`
  return url
}

/** The project's own code (the server's dist/ or src/), as opposed to dependencies and Node. */
const isProject = (frame: CallFrame): boolean =>
  frame.url !== "" && !frame.url.includes("/node_modules/") && !frame.url.startsWith("node:") && /\/(dist|src)\//.test(frame.url)

/** A finer place: the file inside the package (effect/dist/internal/effect.js…). */
export const fileOf = (frame: CallFrame): string => {
  const { url } = frame
  if (url === "") return moduleOf(frame)
  const nm = url.lastIndexOf("/node_modules/")
  if (nm >= 0) return url.slice(nm + "/node_modules/".length)
  const project = /^.*\/(dist|src|bench)\/(.*)$/.exec(url)
  return project ? `${project[1]}/${project[2]}` : url
}

const frameKey = (frame: CallFrame): string =>
  frame.url === ""
    ? frame.functionName || "(anonymous)"
    : `${frame.functionName || "(anonymous)"} ${fileOf(frame)}:${frame.lineNumber + 1}`

export interface Summary {
  readonly totalSamples: number
  readonly busySamples: number
  readonly busyMs: number
  readonly wallMs: number
  readonly selfByModule: Array<[string, number]>
  readonly selfByFile: Array<[string, number]>
  readonly selfByFunction: Array<[string, number]>
  readonly inclusiveByFunction: Array<[string, number]>
  readonly onStackByModule: Array<[string, number]>
  /** samples whose stack holds this project function (dist/, src/) */
  readonly inclusiveProject: Array<[string, number]>
  /** samples with no project function on the stack at all (transport, protocol, runtime resumptions) */
  readonly outsideProject: number
}

export const summarize = (profile: CpuProfile, options: { skipMs?: number } = {}): Summary => {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const c of node.children ?? []) parent.set(c, node.id)
  }
  const skipUs = (options.skipMs ?? 0) * 1000
  const selfModule = new Map<string, number>()
  const selfFile = new Map<string, number>()
  const selfFn = new Map<string, number>()
  const inclFn = new Map<string, number>()
  const onStack = new Map<string, number>()
  const inclProject = new Map<string, number>()
  let outsideProject = 0
  const bump = (m: Map<string, number>, k: string, w: number) => m.set(k, (m.get(k) ?? 0) + w)
  let t = profile.startTime
  let total = 0
  let busy = 0
  let busyUs = 0
  let firstUs: number | undefined
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    if (t - profile.startTime < skipUs) continue
    firstUs ??= t
    // the time a sample stands for: until the next sample
    const weightUs = profile.timeDeltas[i + 1] ?? 0
    total++
    const node = byId.get(profile.samples[i]!)
    if (node === undefined || node.callFrame.functionName === "(idle)") continue
    busy++
    busyUs += weightUs
    bump(selfModule, moduleOf(node.callFrame), 1)
    bump(selfFile, fileOf(node.callFrame), 1)
    bump(selfFn, frameKey(node.callFrame), 1)
    const seenFn = new Set<string>()
    const seenModule = new Set<string>()
    const seenProject = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame
      if (frame.functionName === "(root)") break
      seenFn.add(frameKey(frame))
      seenModule.add(moduleOf(frame))
      if (isProject(frame)) seenProject.add(frameKey(frame))
    }
    for (const k of seenFn) bump(inclFn, k, 1)
    for (const k of seenModule) bump(onStack, k, 1)
    for (const k of seenProject) bump(inclProject, k, 1)
    if (seenProject.size === 0) outsideProject++
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1])
  return {
    totalSamples: total,
    busySamples: busy,
    busyMs: busyUs / 1000,
    wallMs: firstUs === undefined ? 0 : (profile.endTime - firstUs) / 1000,
    selfByModule: sorted(selfModule),
    selfByFile: sorted(selfFile),
    selfByFunction: sorted(selfFn),
    inclusiveByFunction: sorted(inclFn),
    onStackByModule: sorted(onStack),
    inclusiveProject: sorted(inclProject),
    outsideProject
  }
}

export const summaryMarkdown = (title: string, s: Summary, top = 25): string => {
  const pct = (n: number) => `${fmt((100 * n) / Math.max(1, s.busySamples), 1)} %`
  const rows = (xs: Array<[string, number]>, n: number) => xs.slice(0, n).map(([k, v]) => [`\`${k}\``, String(v), pct(v)])
  return [
    `### ${title}`,
    "",
    `${s.busySamples} busy samples of ${s.totalSamples} (${fmt(s.busyMs, 0)} ms CPU on the main thread over ${fmt(s.wallMs, 0)} ms); ` +
      `percentages are of busy samples.`,
    "",
    "Self time by package / module:",
    "",
    markdownTable(["module", "samples", "%"], rows(s.selfByModule, 15)),
    "",
    "Self time by file:",
    "",
    markdownTable(["file", "samples", "%"], rows(s.selfByFile, 15)),
    "",
    "Self time by function:",
    "",
    markdownTable(["function", "samples", "%"], rows(s.selfByFunction, top)),
    "",
    "Inclusive time by function (on the stack):",
    "",
    markdownTable(["function", "samples", "%"], rows(s.inclusiveByFunction, top + 15)),
    "",
    "Packages on the stack (a sample counts once per package):",
    "",
    markdownTable(["module", "samples", "%"], rows(s.onStackByModule, 20)),
    "",
    `The project's own functions on the stack (${pct(s.outsideProject)} of busy samples have none: transport, ` +
      `protocol, GC and Effect fiber resumptions after I/O):`,
    "",
    markdownTable(["function", "samples", "%"], rows(s.inclusiveProject, 20)),
    ""
  ].join("\n")
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { "skip-ms": { type: "string" }, top: { type: "string" } }
  })
  const file = positionals[0]
  if (file === undefined) {
    process.stderr.write("usage: node bench/cpuprofile.ts <file.cpuprofile> [--skip-ms N] [--top N]\n")
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const summary = summarize(profile, { skipMs: Number(values["skip-ms"] ?? 0) })
  process.stdout.write(summaryMarkdown(file, summary, Number(values.top ?? 25)))
}
