import { assert, describe, it } from "@effect/vitest"
import { PipelineMetrics } from "@sluice/core"
import { Duration, Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"

/** The sample lines of `metric` for `pipeline` in the exposition: `name{labels}` → value. */
const samplesOf = (text: string, metric: string, pipeline: string) =>
  new Map(
    text.split("\n")
      .filter((line) => line.startsWith(metric) && line.includes(`pipeline="${pipeline}"`))
      .map((line) => {
        const at = line.lastIndexOf(" ")
        return [line.slice(0, at), Number(line.slice(at + 1))] as const
      })
  )

describe("PipelineMetrics", () => {
  it.effect("run durations are a histogram in seconds, sluice_run_duration_seconds", () =>
    Effect.gen(function*() {
      const pipeline = "metrics_duration"
      const duration = PipelineMetrics.forPipeline(PipelineMetrics.runDuration, pipeline)
      yield* Metric.update(duration, Duration.millis(2_500))
      yield* Metric.update(duration, Duration.millis(40))
      const text = yield* PrometheusMetrics.format()
      assert.include(text, "# TYPE sluice_run_duration_seconds histogram")
      assert.notInclude(text, "sluice_run_duration{")
      const samples = samplesOf(text, "sluice_run_duration_seconds", pipeline)
      const labels = `pipeline="${pipeline}"`
      assert.strictEqual(samples.get(`sluice_run_duration_seconds_sum{${labels}}`), 2.54, text)
      assert.strictEqual(samples.get(`sluice_run_duration_seconds_count{${labels}}`), 2, text)
      // buckets in seconds: 0.04 s is under 0.08 s, 2.5 s is under 2.56 s and over 1.28 s
      assert.strictEqual(samples.get(`sluice_run_duration_seconds_bucket{${labels},le="0.08"}`), 1, text)
      assert.strictEqual(samples.get(`sluice_run_duration_seconds_bucket{${labels},le="1.28"}`), 1, text)
      assert.strictEqual(samples.get(`sluice_run_duration_seconds_bucket{${labels},le="2.56"}`), 2, text)
    }))
})
