/**
 * Sinks: where a partition's good records are written.
 *
 * A sink works inside the load transaction in three steps: `prepare` (e.g. delete the partition),
 * `write` (a batch of records, called many times) and `complete` (e.g. rebuild derived tables for
 * the partition). `@sluice/sql` provides partition replacement; later strategies follow the same shape.
 *
 * @since 0.1.0
 */
import { Effect, Ref } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { RecordError } from "./RecordError.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Sink<in A, R = never> {
  /** What is written, e.g. a table name; it names the sink in errors. */
  readonly target: string
  readonly prepare: (partition: PartitionDate) => Effect.Effect<void, SinkError, R>
  readonly write: (partition: PartitionDate, rows: ReadonlyArray<A>) => Effect.Effect<void, SinkError, R>
  readonly complete: (partition: PartitionDate) => Effect.Effect<void, SinkError, R>
  /**
   * A per-record check the strategy needs before it can write a record (e.g. a non-null merge
   * key). The runner applies it to every decoded record; a record it rejects is dead-lettered
   * (stage `load`) like any other bad record, so loaded + dead-lettered = read still holds.
   */
  readonly check?: ((record: A) => RecordError | undefined) | undefined
}

/**
 * An in-memory partition-replacing sink, for tests: `rows` maps each partition to its rows.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sink } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const { sink, rows } = yield* Sink.memory<number>()
 *   return sink
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const memory = <A>() =>
  Effect.map(Ref.make<ReadonlyMap<PartitionDate, ReadonlyArray<A>>>(new Map()), (rows) => {
    const sink: Sink<A> = {
      target: "memory",
      prepare: (partition) =>
        Ref.update(rows, (m) => {
          const next = new Map(m)
          next.set(partition, [])
          return next
        }),
      write: (partition, batch) =>
        Ref.update(rows, (m) => {
          const next = new Map(m)
          next.set(partition, [...(m.get(partition) ?? []), ...batch])
          return next
        }),
      complete: () => Effect.void
    }
    return { sink, rows }
  })
