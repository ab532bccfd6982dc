/**
 * The metrics every pipeline run reports, with effect's `Metric`, labelled by `pipeline`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/** @since 0.1.0 @category metrics */
export const recordsRead = Metric.counter("sluice_records_read_total", {
  description: "Records read from sources",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const recordsLoaded = Metric.counter("sluice_records_loaded_total", {
  description: "Records loaded into sinks",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const recordsDeadLettered = Metric.counter("sluice_records_dead_lettered_total", {
  description: "Records sent to the dead letter queue",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const retries = Metric.counter("sluice_retries_total", {
  description: "Retries of transient failures",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const failureRateAlerts = Metric.counter("sluice_failure_rate_alerts_total", {
  description: "Partitions whose dead-letter rate exceeded the threshold",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const runsFailed = Metric.counter("sluice_runs_failed_total", {
  description: "Runs that failed",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const runDuration = Metric.timer("sluice_run_duration", { description: "Duration of pipeline runs" })

/**
 * Labels a metric with its pipeline.
 *
 * @since 0.1.0
 * @category combinators
 */
export const forPipeline = <M extends Metric.Metric<any, any>>(metric: M, pipeline: string): M =>
  Metric.withAttributes(metric, { pipeline }) as M
