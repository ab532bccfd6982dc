/**
 * Dead letters: records that could not be loaded, kept with their original payload and typed error.
 *
 * The {@link DeadLetterStore} contract is implemented in memory here (for tests) and in SQL by
 * `@sluice/sql` (table `sluice.dead_letters`). A partition's dead letters are replaced — not
 * appended — in the same transaction as its data, so re-runs never pile them up.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Ref } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { RecordError } from "./RecordError.ts"
import type { SinkError } from "./SinkError.ts"
import type { RawRecord } from "./Source.ts"

/**
 * A dead letter as written by a run.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly stage: string
  readonly position: number
  /** The raw payload, even when it is not valid JSON. */
  readonly originalRecord: string
  /** The error's tag, e.g. `InvalidJson`, `SchemaMismatch`, `RuleViolation`. */
  readonly errorType: string
  readonly error: string
  readonly failedAt: number
  readonly runId: string
}

/**
 * Builds the dead letter of a record that failed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromRecordError = (options: {
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly stage: string
  readonly runId: string
  readonly failedAt: number
  readonly record: RawRecord
  readonly error: RecordError
}): DeadLetter => ({
  pipeline: options.pipeline,
  partition: options.partition,
  stage: options.stage,
  position: options.record.position,
  originalRecord: options.record.payload,
  errorType: options.error.errorType,
  error: options.error.message,
  failedAt: options.failedAt,
  runId: options.runId
})

/**
 * A stored dead letter.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredDeadLetter extends DeadLetter {
  readonly id: string
}

/**
 * Storage of dead letters. `clearPartition` and `write` are called inside the load transaction.
 *
 * @since 0.1.0
 * @category services
 */
export class DeadLetterStore extends Context.Service<DeadLetterStore, {
  readonly clearPartition: (pipeline: string, partition: PartitionDate) => Effect.Effect<void, SinkError>
  readonly write: (deadLetters: ReadonlyArray<DeadLetter>) => Effect.Effect<void, SinkError>
  readonly list: (
    pipeline: string,
    options?: { readonly partition?: PartitionDate | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<StoredDeadLetter>, SinkError>
  readonly countByType: (
    pipeline: string,
    options?: { readonly partition?: PartitionDate | undefined }
  ) => Effect.Effect<ReadonlyArray<{ readonly errorType: string; readonly count: number }>, SinkError>
}>()("@sluice/core/DeadLetterStore") {
  /**
   * An in-memory store, for tests of pipelines that need no database.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory = Layer.effect(
    DeadLetterStore,
    Effect.gen(function*() {
      const ref = yield* Ref.make<ReadonlyArray<StoredDeadLetter>>([])
      let nextId = 1
      const select = (pipeline: string, partition: PartitionDate | undefined) =>
        Effect.map(
          Ref.get(ref),
          (all) => all.filter((d) => d.pipeline === pipeline && (partition === undefined || d.partition === partition))
        )
      return DeadLetterStore.of({
        clearPartition: (pipeline, partition) =>
          Ref.update(ref, (all) => all.filter((d) => !(d.pipeline === pipeline && d.partition === partition))),
        write: (deadLetters) =>
          Ref.update(ref, (all) => [...all, ...deadLetters.map((d) => ({ ...d, id: String(nextId++) }))]),
        list: (pipeline, options) =>
          Effect.map(select(pipeline, options?.partition), (ds) => ds.slice(0, options?.limit ?? ds.length)),
        countByType: (pipeline, options) =>
          Effect.map(select(pipeline, options?.partition), (ds) => {
            const counts = new Map<string, number>()
            for (const d of ds) counts.set(d.errorType, (counts.get(d.errorType) ?? 0) + 1)
            return [...counts].map(([errorType, count]) => ({ errorType, count }))
              .sort((a, b) => b.count - a.count || a.errorType.localeCompare(b.errorType))
          })
      })
    })
  )
}
