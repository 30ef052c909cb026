/**
 * Process and Node.js runtime metrics, read only when Prometheus scrapes: CPU seconds, resident memory,
 * heap, event-loop delay, start time and version. A hand-rolled OpenTelemetry `MetricProducer` handed to the
 * Prometheus exporter, so nothing runs between scrapes except Node's own event-loop delay sampler.
 */
import { ValueType } from "@opentelemetry/api"
import { emptyResource } from "@opentelemetry/resources"
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks"

type HrTime = [number, number]

const hrNow = (): HrTime => {
  const ms = Date.now()
  return [Math.floor(ms / 1000), (ms % 1000) * 1_000_000]
}

const gauge = (name: string, description: string, value: number, now: HrTime, attributes: Record<string, string> = {}): MetricData => ({
  descriptor: { name, description, unit: "", valueType: ValueType.DOUBLE },
  aggregationTemporality: AggregationTemporality.CUMULATIVE,
  dataPointType: DataPointType.GAUGE,
  dataPoints: [{ startTime: now, endTime: now, attributes, value }]
})

const counter = (name: string, description: string, value: number, start: HrTime, now: HrTime): MetricData => ({
  descriptor: { name, description, unit: "", valueType: ValueType.DOUBLE },
  aggregationTemporality: AggregationTemporality.CUMULATIVE,
  dataPointType: DataPointType.SUM,
  isMonotonic: true,
  dataPoints: [{ startTime: start, endTime: now, attributes: {}, value }]
})

/** A producer of the process metrics; `close` stops the event-loop delay sampler. */
export interface ProcessMetrics extends MetricProducer {
  readonly close: () => void
}

export const makeProcessMetrics = (): ProcessMetrics => {
  const startSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000)
  const start: HrTime = [startSeconds, 0]
  let loop: IntervalHistogram | undefined = monitorEventLoopDelay({ resolution: 20 })
  loop.enable()
  const collect = (): Promise<CollectionResult> => {
    const now = hrNow()
    const cpu = process.cpuUsage()
    const mem = process.memoryUsage()
    const metrics: Array<MetricData> = [
      counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds", (cpu.user + cpu.system) / 1e6, start, now),
      gauge("process_resident_memory_bytes", "Resident memory size, in bytes", mem.rss, now),
      gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds", startSeconds, now),
      gauge("nodejs_heap_size_used_bytes", "V8 heap in use, in bytes", mem.heapUsed, now),
      gauge("nodejs_heap_size_total_bytes", "V8 heap allocated, in bytes", mem.heapTotal, now),
      gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript, in bytes", mem.external, now),
      gauge("nodejs_version_info", "Node.js version", 1, now, { version: process.version })
    ]
    if (loop !== undefined && loop.count > 0) {
      // delays since the previous scrape, in seconds (the histogram records nanoseconds)
      metrics.push(
        gauge("nodejs_eventloop_lag_mean_seconds", "Mean event-loop delay since the previous scrape, in seconds", loop.mean / 1e9, now),
        gauge("nodejs_eventloop_lag_p99_seconds", "99th percentile event-loop delay since the previous scrape, in seconds", loop.percentile(99) / 1e9, now),
        gauge("nodejs_eventloop_lag_max_seconds", "Longest event-loop delay since the previous scrape, in seconds", loop.max / 1e9, now)
      )
      loop.reset()
    }
    return Promise.resolve({
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: "openapi-mcp-server/process" }, metrics }] },
      errors: []
    })
  }
  return {
    collect,
    close: () => {
      loop?.disable()
      loop = undefined
    }
  }
}
