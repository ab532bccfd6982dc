/**
 * The events pipeline: the event lines received on day D (`<folder>/D.jsonl`) are decoded and
 * checked, dead-lettered or appended to `raw.events_log`; `analytics.events` shows the latest
 * version of each event. Duplicates, re-sent and corrected events, events arriving days late and
 * retractions need no care at load time: the view sorts them out at read time.
 *
 * **Lookback**: the tracking system sometimes re-delivers a day's file with lines it had held back,
 * up to two days later. The pipeline declares `lookback: 2`, so the run for D also re-reads the
 * files of D-1 and D-2 as they are now and appends them again: held-back lines are picked up, and
 * the lines already loaded change nothing in the view.
 *
 * @since 0.1.0
 */
import { JsonLinesSource, Partition, Pipeline, type RetryPolicy } from "@sluice/core"
import { Migrations } from "@sluice/sql"
import { Effect } from "effect"
import { EventTransform } from "./Event.ts"
import * as Tables from "./Tables.ts"

/**
 * The pipeline's name, as used by the CLI and in `sluice.runs`.
 *
 * @since 0.1.0
 * @category constants
 */
export const name = "events"

/**
 * The first day of the events feed.
 *
 * @since 0.1.0
 * @category constants
 */
export const startDate = Partition.makeUnsafe("2024-03-01")

/**
 * Days re-read by each run: files are re-delivered with held-back lines up to two days late.
 *
 * @since 0.1.0
 * @category constants
 */
export const lookback = 2

/**
 * Defines the pipeline reading a folder of `YYYY-MM-DD.jsonl` files.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 * import { Events } from "@sluice-app/events"
 *
 * // appends the files of 2024-03-03 and 2024-03-04 (if they were loaded before), then 2024-03-05
 * const program = Pipeline.run(Events.make("data/events"), Partition.makeUnsafe("2024-03-05"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  location: string,
  options: {
    readonly retry?: RetryPolicy.RetryPolicy | undefined
    readonly lookback?: number | undefined
  } = {}
) =>
  Pipeline.make({
    name,
    description: "Event lines per day appended to raw.events_log; the latest version of each in analytics.events",
    source: JsonLinesSource.make({ directory: location }),
    transform: EventTransform,
    sink: Tables.events.sink,
    lookback: options.lookback ?? lookback,
    retry: options.retry,
    batchSize: 5_000
  })

/**
 * Creates the app's tables and view (idempotent).
 *
 * @since 0.1.0
 * @category migrations
 */
export const setup = Migrations.run({
  name: "events",
  table: "raw.events_migrations",
  migrations: Tables.migrations
}).pipe(Effect.asVoid)

/**
 * Deletes the log rows superseded by a later version (the view is unchanged); returns how many.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const compact = Tables.events.compact
