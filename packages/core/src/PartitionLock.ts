/**
 * Mutual exclusion of runs: two runs of one pipeline over one partition never interleave.
 *
 * The lock is a scoped resource: it is held until the scope closes, whatever the outcome.
 * The in-memory layer excludes runs within one process; `@sluice/sql` adds a PostgreSQL advisory
 * lock so that runs in different processes exclude each other too.
 *
 * **Losing a lock**
 *
 * A lock held by a database session can be lost while its scope is open: the session ends (the
 * server restarted, an administrator terminated it, the network was cut) and another process takes
 * the lock before this one can take it again. `acquire` returns a {@link Held} whose `lost` fails
 * with {@link LockLost} then; work that holds a lock for long runs under {@link guard}, which stops
 * it with `LockLost` instead of letting it run on beside the new holder. An in-process lock is
 * never lost (`lost` never completes).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { dual } from "effect/Function"
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
 * A lock held by this process was lost while its holder ran: its database session ended and another
 * session took the lock before it could be taken again, so another run may be going on. The holder
 * stops (see {@link guard}); what it had not committed is rolled back. Not retried: run it again once
 * the other run is over.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockLost extends Schema.TaggedError<LockLost>("@sluice/core/LockLost")(
  "LockLost",
  { pipeline: Schema.String, partition: Schema.String }
) {
  override get message(): string {
    return `${this.pipeline} ${this.partition}: the lock was lost (its database session ended and another process took it before it could be taken again); stopped so as not to run beside the other holder`
  }
}

/**
 * A lock, as `acquire` returns it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Held {
  /**
   * Never succeeds; fails with {@link LockLost} once the lock is lost (at once if it already is).
   * Never completes for a lock that cannot be lost. See {@link guard}.
   */
  readonly lost: Effect.Effect<never, LockLost>
}

/**
 * The {@link Held} of a lock that is never lost, e.g. an in-process one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const neverLost: Held = { lost: Effect.never }

/**
 * Runs `self` while the lock is held: if the lock is lost first, `self` is interrupted and the result
 * fails with {@link LockLost}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Partition, PartitionLock } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const locks = yield* PartitionLock.PartitionLock
 *   const held = yield* locks.acquire("daily-revenue", Partition.makeUnsafe("2024-01-01"))
 *   // stops with LockLost if another process takes the lock meanwhile
 *   return yield* Effect.sleep("1 minute").pipe(PartitionLock.guard(held))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const guard: {
  (held: Held): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LockLost, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, held: Held): Effect.Effect<A, E | LockLost, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, held: Held): Effect.Effect<A, E | LockLost, R> =>
    held === neverLost ? self : Effect.raceFirst(self, held.lost)
)

/**
 * @since 0.1.0
 * @category services
 */
export class PartitionLock extends Context.Service<PartitionLock, {
  /**
   * Takes the lock until the scope closes, or fails with {@link PartitionLocked} when it is held. The
   * {@link Held} says when the lock is lost while the scope is open (see {@link guard}).
   *
   * @since 0.1.0
   */
  readonly acquire: (
    pipeline: string,
    partition: PartitionDate
  ) => Effect.Effect<Held, PartitionLocked | SinkError, Scope.Scope>
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
   * An in-process lock (a set of held keys), never lost.
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
            return Effect.succeed(neverLost)
          }),
          () => Effect.sync(() => held.delete(key))
        )
      }
    })
  })
}
