/**
 * The calendar of a pipeline: every partition from its start date to the last complete day, each
 * `done`, `failed`, `running` or `missing`, from the run ledger. What `status` prints, what a
 * catch-up (`backfill --missing`) fills and what a dashboard colours.
 *
 * The last complete day comes from `Clock` (yesterday, UTC), never from the system date, so a
 * `TestClock` drives it in tests.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import * as Partition from "./Partition.ts"
import type { PartitionDate } from "./Partition.ts"
import type { RunRecord } from "./RunLedger.ts"

/**
 * The state of a partition, from its latest run: `done` (succeeded), `failed`, `running`, or
 * `missing` (never run).
 *
 * @since 0.1.0
 * @category models
 */
export type State = "done" | "failed" | "running" | "missing"

/**
 * A partition of the calendar: its state, its latest run (if any) and how many runs it had.
 *
 * @since 0.1.0
 * @category models
 */
export interface Day {
  readonly partition: PartitionDate
  readonly state: State
  readonly latest: RunRecord | undefined
  /**
   * The partition's latest succeeded run: the data in place when the latest run failed or is still
   * running (a run's writes are one transaction, so a failed one changed nothing).
   */
  readonly lastSucceeded: RunRecord | undefined
  readonly runs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly partitions: number
  readonly done: number
  readonly failed: number
  readonly running: number
  readonly missing: number
  readonly read: number
  readonly loaded: number
  readonly deadLettered: number
  /** Dead-lettered / read over the latest runs of the partitions (0 when nothing was read). */
  readonly failureRate: number
  /** Partitions whose latest run raised a failure-rate alert. */
  readonly alerted: number
}

/**
 * The last complete day: yesterday, UTC, by `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lastCompleteDay: Effect.Effect<PartitionDate> = Effect.map(
  Clock.currentTimeMillis,
  (now) => Partition.addDays(Partition.fromEpochMillis(now), -1)
)

/**
 * The partitions of `start`..`end` with their state, from a pipeline's runs (any order, e.g.
 * `RunLedger.list`). Runs outside the range are ignored.
 *
 * @example
 * ```ts
 * import { Calendar, Partition } from "@sluice/core"
 *
 * Calendar.make({
 *   start: Partition.makeUnsafe("2024-03-01"),
 *   end: Partition.makeUnsafe("2024-03-03"),
 *   runs: []
 * }).map((d) => d.state) // ["missing", "missing", "missing"]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly start: PartitionDate
  readonly end: PartitionDate
  readonly runs: ReadonlyArray<RunRecord>
}): Array<Day> => {
  const latest = new Map<string, RunRecord>()
  const succeeded = new Map<string, RunRecord>()
  const counts = new Map<string, number>()
  for (const run of options.runs) {
    counts.set(run.partition, (counts.get(run.partition) ?? 0) + 1)
    const current = latest.get(run.partition)
    if (current === undefined || run.startedAt > current.startedAt) latest.set(run.partition, run)
    const good = succeeded.get(run.partition)
    if (run.status === "succeeded" && (good === undefined || run.startedAt > good.startedAt)) {
      succeeded.set(run.partition, run)
    }
  }
  if (options.end < options.start) return []
  return Partition.range(options.start, options.end).map((partition) => {
    const run = latest.get(partition)
    return {
      partition,
      state: run === undefined ? "missing" : run.status === "succeeded" ? "done" : run.status,
      latest: run,
      lastSucceeded: succeeded.get(partition),
      runs: counts.get(partition) ?? 0
    }
  })
}

/**
 * Totals of a calendar.
 *
 * @since 0.1.0
 * @category constructors
 */
export const summarize = (days: ReadonlyArray<Day>): Summary => {
  const count = (state: State) => days.filter((d) => d.state === state).length
  const sum = (f: (run: RunRecord) => number) =>
    days.reduce((n, d) => n + (d.latest === undefined ? 0 : f(d.latest)), 0)
  const read = sum((r) => r.read)
  const deadLettered = sum((r) => r.deadLettered)
  return {
    partitions: days.length,
    done: count("done"),
    failed: count("failed"),
    running: count("running"),
    missing: count("missing"),
    read,
    loaded: sum((r) => r.loaded),
    deadLettered,
    failureRate: read === 0 ? 0 : deadLettered / read,
    alerted: days.filter((d) => d.latest?.alerted === true).length
  }
}
