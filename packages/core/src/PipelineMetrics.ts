/**
 * The metrics every pipeline run reports, with effect's `Metric`, labelled by `pipeline`.
 *
 * @since 0.1.0
 */
import { Duration, Metric } from "effect"

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
/**
 * Batches a streaming run's bad-record-rate breaker gave up on after `badRecords.maxPauses` pauses,
 * labelled by `pipeline` and `action` (`dead_letter`: committed with their bad messages
 * dead-lettered; `fail`: the run failed).
 *
 * @since 0.1.0
 * @category metrics
 */
export const badRecordRateGaveUp = Metric.counter("sluice_bad_record_rate_gave_up_total", {
  description: "Batches the bad-record-rate breaker gave up on after its pauses (dead-lettered or failed)",
  incremental: true
})
/** @since 0.1.0 @category metrics */
export const runsFailed = Metric.counter("sluice_runs_failed_total", {
  description: "Runs that failed",
  incremental: true
})
/**
 * The duration of pipeline runs, in seconds (Prometheus's base unit): a histogram whose buckets go from
 * 10 ms to about 3 days, doubling. Takes a `Duration`. (effect's `Metric.timer` records milliseconds.)
 *
 * @since 0.1.0
 * @category metrics
 */
export const runDuration: Metric.Metric<Duration.Duration, Metric.HistogramState> = Metric.mapInput(
  Metric.histogram("sluice_run_duration_seconds", {
    description: "Duration of pipeline runs, in seconds",
    boundaries: Metric.exponentialBoundaries({ start: 0.01, factor: 2, count: 26 })
  }),
  (duration: Duration.Duration) => Duration.toSeconds(duration)
)

/**
 * The state of a circuit breaker, labelled by `pipeline` and `breaker` (`commit`: the breaker around a
 * streaming run's commits): 0 closed, 1 half-open (probing), 2 open (not pulling).
 *
 * @since 0.1.0
 * @category metrics
 */
export const circuitBreakerState = Metric.gauge("sluice_circuit_breaker_state", {
  description: "State of a circuit breaker: 0 closed, 1 half-open, 2 open"
})

/**
 * The value of {@link circuitBreakerState} for a breaker's state.
 *
 * @since 0.1.0
 * @category metrics
 */
export const circuitBreakerStateValue = (state: "Closed" | "HalfOpen" | "Open"): number =>
  state === "Closed" ? 0 : state === "HalfOpen" ? 1 : 2

/**
 * Labels a metric with its pipeline.
 *
 * @since 0.1.0
 * @category combinators
 */
export const forPipeline = <M extends Metric.Metric<any, any>>(metric: M, pipeline: string): M =>
  Metric.withAttributes(metric, { pipeline }) as M
