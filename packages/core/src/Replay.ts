/**
 * Replaying dead letters: re-decode a pipeline's dead letters with the current code and load those
 * that now pass, through the same idempotent path as any run.
 *
 * **Details**
 *
 * For each partition with selected (`new`) dead letters:
 *
 * 1. each selected dead letter is re-decoded with the pipeline's current transform;
 * 2. when none passes, nothing is loaded: each gets its new error and `attempts + 1`;
 * 3. when at least one passes, the partition is rebuilt from its source by {@link Pipeline.run}
 *    (no lookback), in one transaction like any run. This — not merging recovered records into the
 *    partition — keeps totals right: the run ledger records the partition's read, loaded and
 *    dead-lettered counts as one run (loaded + dead-lettered = read is checked), derived tables are
 *    rebuilt by the sink, and duplicate-key and load checks apply as on the first run. The store
 *    keeps each dead letter's id across the rebuild (see {@link DeadLetter.DeadLetterStore}): a record
 *    that now loads becomes `replayed`, one that still fails stays `new` with the new error and
 *    `attempts + 1`.
 *
 * An `InvalidEncoding` dead letter (bytes that are not valid UTF-8) is not re-decoded: no code can
 * read those bytes, only a fixed source can. Its partition is always rebuilt from its source: once
 * the file (or feed) is fixed, the record loads and the dead letter becomes `replayed`; until then
 * the rebuild dead-letters it again (`new`, `attempts + 1`).
 *
 * **Gotchas**
 *
 * A rebuild re-runs the whole partition: its other dead letters (not selected, e.g. of another error
 * type) are re-tried too, so they also get `attempts + 1` or become `replayed`. A rebuild that fails
 * (e.g. the source is gone) rolls back and changes nothing; it is reported in the partition's outcome.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Result } from "effect"
import * as DeadLetter from "./DeadLetter.ts"
import type { PartitionDate } from "./Partition.ts"
import * as Pipeline from "./Pipeline.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * What a replay did to one partition.
 *
 * @since 0.1.0
 * @category models
 */
export interface PartitionReplay {
  readonly partition: PartitionDate
  /** Selected dead letters of the partition. */
  readonly selected: number
  /** Selected dead letters loaded (now `replayed`). */
  readonly replayed: number
  /** Selected dead letters that still fail (new error, attempts + 1). */
  readonly stillFailing: number
  /** The partition was rebuilt (some selected record passed the current transform). */
  readonly rebuilt: boolean
  /** The report of the rebuild, when it ran and succeeded. */
  readonly run: Pipeline.RunReport | undefined
  /** Why the rebuild failed, when it did (then nothing changed). */
  readonly failure: { readonly errorType: string; readonly error: string } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReplayReport {
  readonly pipeline: string
  readonly partitions: ReadonlyArray<PartitionReplay>
  readonly selected: number
  readonly replayed: number
  readonly stillFailing: number
  readonly failed: number
}

const describe = (error: Pipeline.RunError) => ({
  errorType: "reason" in error ? `${error._tag}.${error.reason._tag}` : error._tag,
  error: error.message
})

/**
 * Replays the selected `new` dead letters of a pipeline, partition by partition in date order. See
 * the module documentation.
 *
 * @example
 * ```ts
 * import { Partition, Replay } from "@sluice/core"
 * import type { Pipeline } from "@sluice/core"
 *
 * declare const pipeline: Pipeline.Pipeline<unknown>
 * const program = Replay.run(pipeline, { partition: Partition.makeUnsafe("2024-03-05"), errorType: "SchemaMismatch" })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("Replay.run")(function*<A, R>(
  pipeline: Pipeline.Pipeline<A, R>,
  selection: Omit<DeadLetter.Selection, "status">
): Effect.fn.Return<ReplayReport, SinkError, R | Pipeline.Services> {
  const store = yield* DeadLetter.DeadLetterStore
  const selected = yield* store.list(pipeline.name, { ...selection, status: ["new"] })
  const byPartition = new Map<PartitionDate, Array<DeadLetter.StoredDeadLetter>>()
  for (const d of selected) {
    const group = byPartition.get(d.partition)
    if (group === undefined) byPartition.set(d.partition, [d])
    else group.push(d)
  }
  const partitions: Array<PartitionReplay> = []
  for (const [partition, letters] of [...byPartition].sort(([a], [b]) => a.localeCompare(b))) {
    const now = yield* Clock.currentTimeMillis
    const failing: Array<DeadLetter.Attempt> = []
    let fixableAtSource = false
    for (const d of letters) {
      if (d.errorType === "InvalidEncoding") {
        fixableAtSource = true
        continue
      }
      const result = pipeline.transform({ payload: d.originalRecord, position: d.position }, partition)
      if (Result.isFailure(result)) {
        failing.push({ id: d.id, errorType: result.failure.errorType, error: result.failure.message, failedAt: now })
      }
    }
    if (!fixableAtSource && failing.length === letters.length) {
      yield* store.recordAttempts(pipeline.name, failing)
      partitions.push({
        partition,
        selected: letters.length,
        replayed: 0,
        stillFailing: letters.length,
        rebuilt: false,
        run: undefined,
        failure: undefined
      })
      continue
    }
    const outcome = yield* Effect.result(Pipeline.run(pipeline, partition, { lookback: [] }))
    const ids = letters.map((d) => d.id)
    const after = yield* store.list(pipeline.name, { partition, ids, status: DeadLetter.statuses })
    const replayed = after.filter((d) => d.status === "replayed").length
    partitions.push({
      partition,
      selected: letters.length,
      replayed,
      stillFailing: letters.length - replayed,
      rebuilt: Result.isSuccess(outcome),
      run: Result.isSuccess(outcome) ? outcome.success : undefined,
      failure: Result.isFailure(outcome) ? describe(outcome.failure) : undefined
    })
  }
  const sum = (f: (p: PartitionReplay) => number) => partitions.reduce((n, p) => n + f(p), 0)
  return {
    pipeline: pipeline.name,
    partitions,
    selected: selected.length,
    replayed: sum((p) => p.replayed),
    stillFailing: sum((p) => p.stillFailing),
    failed: partitions.filter((p) => p.failure !== undefined).length
  }
})
