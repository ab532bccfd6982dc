/**
 * Core's `PartitionLock` for a database: two runs of one pipeline over one partition never
 * overlap, whether they are in one process or in several.
 *
 * - Always: an in-process keyed lock (held keys of this layer).
 * - On a PostgreSQL server: also a session advisory lock,
 *   `pg_try_advisory_lock(hashtext(pipeline), hashtext(partition))`, so other processes are
 *   excluded. Every lock of the process is held by one session, reserved from the pool on first
 *   use: a backfill of any concurrency needs one connection for locks, not one per run.
 * - On PGlite: the in-process lock is enough, because the data directory's lock file already
 *   keeps every other process out (see `Database.layerPglite`).
 *
 * `isHeld` answers from the in-process keys and, on PostgreSQL, from `pg_locks` (any session of the
 * database, so a live run in another process counts; a dead process's session has released its locks).
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
import { Effect, Exit, Layer, Scope, Semaphore } from "effect"
import { SqlClient, type SqlConnection, type SqlError } from "effect/sql"
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

  // One session holds every advisory lock of this process: a lock costs no pool connection, so a
  // backfill as wide as the pool cannot starve its own runs of connections (each run needs one
  // for its ledger and load transaction). The session is reserved on first use, for the layer's
  // lifetime, and replaced if it breaks (a lost session has released its locks anyway).
  const layerScope = yield* Effect.scope
  const session = Semaphore.makeUnsafe(1)
  let lockConnection: SqlConnection.Connection | undefined
  let connectionScope: Scope.Closeable | undefined
  const onSession = <A>(
    operation: string,
    f: (connection: SqlConnection.Connection) => Effect.Effect<A, SqlError.SqlError>
  ) =>
    session.withPermit(Effect.gen(function*() {
      if (lockConnection === undefined) {
        const scope = yield* Scope.fork(layerScope)
        lockConnection = yield* sql.reserve.pipe(
          Scope.provide(scope),
          Effect.onError(() => Scope.close(scope, Exit.void)),
          mapSqlError("reserve a session for partition locks")
        )
        connectionScope = scope
      }
      const connection = lockConnection
      return yield* f(connection).pipe(
        Effect.tapError(() =>
          Effect.suspend(() => {
            const broken = connectionScope
            lockConnection = undefined
            connectionScope = undefined
            return broken === undefined ? Effect.void : Scope.close(broken, Exit.void)
          })
        ),
        mapSqlError(operation)
      )
    }))

  const advisory = (pipeline: string, partition: Partition.PartitionDate) =>
    Effect.acquireRelease(
      onSession("take the partition lock", (connection) =>
        connection.execute(
          "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked",
          [pipeline, partition],
          undefined
        )).pipe(
          Effect.flatMap((rows) =>
            (rows[0] as { readonly locked?: unknown } | undefined)?.locked === true
              ? Effect.void
              : Effect.fail(new PartitionLock.PartitionLocked({ pipeline, partition }))
          )
        ),
      () =>
        onSession("release the partition lock", (connection) =>
          connection.execute("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", [pipeline, partition], undefined))
          .pipe(Effect.ignore)
    )

  // Whether any session of this database holds the advisory lock of (pipeline, partition): the
  // two-key form `pg_try_advisory_lock(int4, int4)` shows in `pg_locks` as classid, objid, objsubid 2.
  const advisoryHeld = (pipeline: string, partition: Partition.PartitionDate) =>
    sql<{ readonly held: boolean }>`
      SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = hashtext(${pipeline})::oid AND objid = hashtext(${partition})::oid
      ) AS held`.pipe(
      Effect.map((rows) => rows[0]?.held === true),
      mapSqlError("check the partition lock")
    )

  return PartitionLock.PartitionLock.of({
    isHeld: (pipeline, partition) =>
      (held.has(`${pipeline}\u0000${partition}`)
        ? Effect.succeed(true)
        : backend === "postgres"
        ? advisoryHeld(pipeline, partition)
        : Effect.succeed(false)).pipe(
          Effect.withSpan("SqlPartitionLock.isHeld", { attributes: { pipeline, partition } })
        ),
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
