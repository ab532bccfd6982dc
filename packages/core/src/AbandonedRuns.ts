/**
 * Abandoned runs: a run the ledger still shows `running` although no process holds its partition
 * lock. Its process died (killed, crashed, lost its machine) before it could record an outcome, and,
 * the run's writes being one transaction, the partition's previous data is intact.
 *
 * {@link close} marks such runs `failed` with error type `Abandoned`, so that a status shows them
 * failed and a backfill of missing or failed partitions runs them again. A run whose lock is held
 * (a live run, in this process or, where the lock sees them, in another one) is left running.
 *
 * A run's lock is taken before its ledger row is written and released after its outcome is, so a
 * row read as `running` whose lock is free was abandoned, or has just finished: closing only rows
 * still `running` makes the check safe against runs that finish or start meanwhile.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import type { PartitionDate } from "./Partition.ts"
import * as PartitionLock from "./PartitionLock.ts"
import * as RunLedger from "./RunLedger.ts"

/**
 * The error recorded for an abandoned run.
 *
 * @since 0.1.0
 * @category constants
 */
export const error = "abandoned: its process ended without finishing it (nobody holds the partition lock)"

/**
 * Closes the abandoned runs of a pipeline (within a date range when given) and returns them as
 * they were (still `running`).
 *
 * @example
 * ```ts
 * import { AbandonedRuns, RunLedger } from "@sluice/core"
 * import { Effect } from "effect"
 *
 * // before reading the ledger for a status or a backfill plan
 * const latest = Effect.andThen(
 *   AbandonedRuns.close("daily-revenue"),
 *   Effect.flatMap(RunLedger.RunLedger, (ledger) => ledger.latest("daily-revenue"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category closing
 */
export const close = Effect.fn("AbandonedRuns.close")(function*(
  pipeline: string,
  options?: { readonly start?: PartitionDate | undefined; readonly end?: PartitionDate | undefined }
) {
  const ledger = yield* RunLedger.RunLedger
  const locks = yield* PartitionLock.PartitionLock
  const running = (yield* ledger.list(pipeline, options)).filter((r) => r.status === "running")
  const held = new Map<string, boolean>()
  const closed: Array<RunLedger.RunRecord> = []
  for (const run of running) {
    let isHeld = held.get(run.partition)
    if (isHeld === undefined) {
      isHeld = yield* locks.isHeld(pipeline, run.partition)
      held.set(run.partition, isHeld)
    }
    if (isHeld) continue
    const endedAt = yield* Clock.currentTimeMillis
    if (yield* ledger.markAbandoned(run.runId, { endedAt, error })) closed.push(run)
  }
  if (closed.length > 0) {
    yield* Effect.logWarning(
      `${pipeline}: ${closed.length} abandoned run(s) marked failed: ${closed.map((r) => r.partition).join(", ")}`
    )
  }
  return closed
})
