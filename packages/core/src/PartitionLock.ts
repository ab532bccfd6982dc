/**
 * Mutual exclusion of runs: two runs of one pipeline over one partition never interleave.
 *
 * The lock is a scoped resource: it is held until the scope closes, whatever the outcome.
 * The in-memory layer excludes runs within one process; `@sluice/sql` adds a PostgreSQL advisory
 * lock so that runs in different processes exclude each other too.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * Another run of the same pipeline and partition holds the lock.
 *
 * @since 0.1.0
 * @category errors
 */
export class PartitionLocked extends Schema.TaggedError<PartitionLocked>("@sluice/core/PartitionLocked")(
  "PartitionLocked",
  { pipeline: Schema.String, partition: Schema.String }
) {
  override get message(): string {
    return `${this.pipeline} ${this.partition} is being run by another process; not starting a second run`
  }
}

/**
 * @since 0.1.0
 * @category services
 */
export class PartitionLock extends Context.Service<PartitionLock, {
  readonly acquire: (
    pipeline: string,
    partition: PartitionDate
  ) => Effect.Effect<void, PartitionLocked | SinkError, Scope.Scope>
  /**
   * Whether anyone (this process or, where the implementation sees them, other processes) holds the
   * lock of this pipeline and partition right now. A run marked `running` in the run ledger whose
   * lock nobody holds is abandoned: its process died.
   *
   * @since 0.1.0
   */
  readonly isHeld: (pipeline: string, partition: PartitionDate) => Effect.Effect<boolean, SinkError>
}>()("@sluice/core/PartitionLock") {
  /**
   * An in-process lock (a set of held keys).
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory = Layer.sync(PartitionLock, () => {
    const held = new Set<string>()
    const keyOf = (pipeline: string, partition: PartitionDate) => `${pipeline}\u0000${partition}`
    return PartitionLock.of({
      isHeld: (pipeline, partition) => Effect.sync(() => held.has(keyOf(pipeline, partition))),
      acquire: (pipeline, partition) => {
        const key = keyOf(pipeline, partition)
        return Effect.acquireRelease(
          Effect.suspend(() => {
            if (held.has(key)) return Effect.fail(new PartitionLocked({ pipeline, partition }))
            held.add(key)
            return Effect.void
          }),
          () => Effect.sync(() => held.delete(key))
        )
      }
    })
  })
}
