/**
 * Failure-rate alerts as log lines: a pipeline run above its failure threshold, or a stream whose
 * bad-record rate trips its breaker, logs a warning beginning with `ALERT` (and counts it in
 * `PipelineMetrics.failureRateAlerts`). A caller that tells its user about alerts itself, as the
 * CLI does from a run's report or a stream's events, sets {@link Reported} so that the user is not
 * told twice; the metrics count either way.
 *
 * @since 0.1.0
 */
import { Context, Effect } from "effect"

/**
 * Whether the caller reports alerts to its user itself: when `true`, {@link log} logs nothing.
 * `false` by default.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Alert } from "@sluice/core"
 *
 * // a CLI printing the report's alert itself
 * const quiet = <A, E, R>(run: Effect.Effect<A, E, R>) => Effect.provideService(run, Alert.Reported, true)
 * ```
 *
 * @since 0.1.0
 * @category references
 */
export const Reported = Context.Reference<boolean>("@sluice/core/Alert/Reported", { defaultValue: () => false })

/**
 * Logs `message` (which should begin with `ALERT`) as a warning, unless the caller reports alerts
 * itself ({@link Reported}).
 *
 * @example
 * ```ts
 * import { Alert } from "@sluice/core"
 *
 * const alert = Alert.log("ALERT daily-revenue 2024-03-01: 7.00% of records dead-lettered")
 * ```
 *
 * @since 0.1.0
 * @category logging
 */
export const log = (message: string): Effect.Effect<void> =>
  Reported.use((reported) => reported ? Effect.void : Effect.logWarning(message))
