/**
 * Core's `PartitionLock` for a database: two runs of one pipeline over one partition never
 * overlap, whether they are in one process or in several.
 *
 * - Always: an in-process keyed lock (held keys of this layer).
 * - On a PostgreSQL server: also a session advisory lock,
 *   `pg_try_advisory_lock(hashtext(pipeline), hashtext(partition))`, taken on a connection
 *   reserved from the pool for as long as the lock is held, so other processes are excluded.
 * - On PGlite: the in-process lock is enough, because the data directory's lock file already
 *   keeps every other process out (see `Database.layerPglite`).
 *
 * **Gotchas**
 *
 * Provide one lock layer per process: two instances of the layer in one process do not see each
 * other's in-process keys (on PostgreSQL the advisory lock still excludes them). Advisory-lock
 * keys are 32-bit hashes, so two distinct partitions can collide: the rare effect is a spurious
 * `PartitionLocked`, never a missed exclusion.
 *
 * @since 0.1.0
 */
import { type Partition, PartitionLock } from "@sluice/core"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "./Database.ts"
import { mapSqlError } from "./internal/sinkError.ts"

/**
 * Builds the lock over the current `SqlClient`; `Database.Backend` says whether to take advisory locks.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const backend = yield* Database.Backend
  const held = new Set<string>()

  const inProcess = (pipeline: string, partition: Partition.PartitionDate) => {
    const key = `${pipeline}\u0000${partition}`
    return Effect.acquireRelease(
      Effect.suspend(() => {
        if (held.has(key)) return Effect.fail(new PartitionLock.PartitionLocked({ pipeline, partition }))
        held.add(key)
        return Effect.void
      }),
      () => Effect.sync(() => held.delete(key))
    )
  }

  const advisory = Effect.fnUntraced(function*(pipeline: string, partition: Partition.PartitionDate) {
    const connection = yield* sql.reserve.pipe(mapSqlError("reserve a connection for the partition lock"))
    yield* Effect.acquireRelease(
      connection.execute(
        "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked",
        [pipeline, partition],
        undefined
      ).pipe(
        mapSqlError("take the partition lock"),
        Effect.flatMap((rows) =>
          (rows[0] as { readonly locked?: unknown } | undefined)?.locked === true
            ? Effect.void
            : Effect.fail(new PartitionLock.PartitionLocked({ pipeline, partition }))
        )
      ),
      // Losing the connection releases a session lock too, so a failed unlock needs no retry.
      () =>
        connection.execute("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", [pipeline, partition], undefined)
          .pipe(Effect.ignore)
    )
  })

  return PartitionLock.PartitionLock.of({
    acquire: (pipeline, partition) =>
      inProcess(pipeline, partition).pipe(
        Effect.andThen(backend === "postgres" ? advisory(pipeline, partition) : Effect.void),
        Effect.withSpan("SqlPartitionLock.acquire", { attributes: { pipeline, partition } })
      )
  })
})

/**
 * Core's `PartitionLock` on the current database.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Partition, PartitionLock } from "@sluice/core"
 * import { Database, SqlPartitionLock } from "@sluice/sql"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const lock = yield* PartitionLock.PartitionLock
 *   yield* lock.acquire("daily-revenue", Partition.makeUnsafe("2024-01-01"))
 *   // ... the run, while the lock is held
 * })).pipe(Effect.provide(SqlPartitionLock.layer), Effect.provide(Database.layerPglite({})))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<PartitionLock.PartitionLock, never, SqlClient.SqlClient> = Layer.effect(
  PartitionLock.PartitionLock,
  make
)
