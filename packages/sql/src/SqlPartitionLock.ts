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
 * **A lost session** (PostgreSQL restarted, `pg_terminate_backend`, a network cut) silently releases every
 * advisory lock it held. While the session holds any, it is watched: `SELECT 1` every `checkEvery` (default
 * 1 second, on an effect `Schedule`; unanswered within `checkTimeout`, 5 seconds, it counts as lost). A
 * session found lost, by the watch or by the next lock operation, is replaced at once, and the new session
 * takes every held lock again in one statement, once the lost session's backend (which reports its end
 * before it releases its locks) holds none, or after `checkTimeout`. A lock another session took in between is lost: the
 * `PartitionLock.Held` that `acquire` returned fails its `lost` with `PartitionLock.LockLost`, so a holder
 * running under `PartitionLock.guard` stops. Between the loss and the next check another process can take
 * a lock: the watch bounds that window, it does not close it. If no new session can be had, the next
 * check tries again. On PGlite locks are never lost.
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
import { Cause, Deferred, Duration, Effect, Exit, Layer, Schedule, Schema, Scope, Semaphore } from "effect"
import { SqlClient, type SqlConnection, type SqlError } from "effect/sql"
import * as Database from "./Database.ts"
import { mapSqlError } from "./internal/sinkError.ts"

/**
 * How the lock session is watched while it holds advisory locks (PostgreSQL only).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often the session holding advisory locks is checked while it holds any (default 1 second). */
  readonly checkEvery?: Duration.Input | undefined
  /** How long a check may take before the session is given up as lost (default 5 seconds). */
  readonly checkTimeout?: Duration.Input | undefined
}

/** The lock session did not answer a check in time: given up as lost. */
class Unresponsive extends Schema.TaggedError<Unresponsive>()("Unresponsive", { after: Schema.String }) {
  override get message(): string {
    return `the lock session did not answer within ${this.after}`
  }
}

/** An advisory lock this layer's session holds, and how its holder learns that it was lost. */
interface AdvisoryLock {
  readonly pipeline: string
  readonly partition: Partition.PartitionDate
  readonly lost: Deferred.Deferred<never, PartitionLock.LockLost>
}

const tryLockSql = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked"

/**
 * Builds the lock over the current `SqlClient`; `Database.Backend` says whether to take advisory
 * locks. `options` tune the watch of the lock session (see the module documentation).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (options: Options = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const backend = yield* Database.Backend
    const held = new Set<string>()
    const keyOf = (pipeline: string, partition: Partition.PartitionDate) => `${pipeline}\u0000${partition}`
    const checkEvery = Duration.fromInputUnsafe(options.checkEvery ?? "1 second")
    const checkTimeout = Duration.fromInputUnsafe(options.checkTimeout ?? "5 seconds")

    const inProcess = (pipeline: string, partition: Partition.PartitionDate) => {
      const key = keyOf(pipeline, partition)
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
    // lifetime, and replaced when it breaks: a new session takes every lock still held again at
    // once (a lost session has released them); a lock another session took meanwhile is lost, and
    // its holder is told so.
    const layerScope = yield* Effect.scope
    // the sessions' scopes are closed after the watch has stopped (a scope closes its last-added first)
    const sessionsScope = yield* Scope.fork(layerScope)
    const session = Semaphore.makeUnsafe(1)
    let lockConnection: SqlConnection.Connection | undefined
    let connectionScope: Scope.Closeable | undefined
    // the advisory locks the session holds (or held, until it is replaced), by key
    const advisoryLocks = new Map<string, AdvisoryLock>()

    const dropSession = Effect.suspend(() => {
      const broken = connectionScope
      lockConnection = undefined
      connectionScope = undefined
      return broken === undefined ? Effect.void : Scope.close(broken, Exit.void)
    })

    // The backend pid of the last session reserved: once it is lost, its backend may still be exiting, and
    // holding its locks, when the new session takes them again.
    let sessionPid: number | undefined

    // Takes every lock of `advisoryLocks` on a new session, in one statement; a lock another session
    // holds now is lost: its holder's `lost` fails, and it is no longer this layer's. First waits (up to
    // `checkTimeout`) for the lost session's backend to be gone, so as not to lose a lock to it.
    const retake = (connection: SqlConnection.Connection, previous: number | undefined) =>
      Effect.gen(function*() {
        const locks = [...advisoryLocks.entries()]
        if (locks.length === 0) return
        yield* Effect.logWarning(
          `partition locks: the session holding ${locks.length} lock(s) was lost; taking them again on a new session`
        )
        if (previous !== undefined) {
          yield* connection.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory') AS holds",
            [previous],
            undefined
          ).pipe(
            Effect.map((rows) => (rows[0] as { readonly holds?: unknown } | undefined)?.holds === true),
            Effect.repeat({ while: (holds) => holds, schedule: Schedule.spaced("20 millis") }),
            Effect.timeoutOrElse({ duration: checkTimeout, orElse: () => Effect.void })
          )
        }
        const rows = yield* connection.execute(
          `SELECT l.n, pg_try_advisory_lock(hashtext(l.pipeline), hashtext(l.partition)) AS locked FROM (VALUES ${
            locks.map((_, i) => `(${i}, $${2 * i + 1}::text, $${2 * i + 2}::text)`).join(", ")
          }) AS l(n, pipeline, partition) ORDER BY l.n`,
          locks.flatMap(([, lock]) => [lock.pipeline, lock.partition]),
          undefined
        )
        const taken = new Set(
          (rows as ReadonlyArray<{ readonly n?: unknown; readonly locked?: unknown }>)
            .filter((row) => row.locked === true).map((row) => Number(row.n))
        )
        for (const [i, [key, lock]] of locks.entries()) {
          if (taken.has(i)) continue
          advisoryLocks.delete(key)
          const error = new PartitionLock.LockLost({ pipeline: lock.pipeline, partition: lock.partition })
          yield* Effect.logError(error.message)
          yield* Deferred.fail(lock.lost, error)
        }
      })

    // Runs `f` on the lock session, reserving one (and taking the held locks again on it) when there is
    // none; a session `f` fails on is dropped, so the next operation replaces it.
    const onSession = <A, E>(
      f: (connection: SqlConnection.Connection) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | SqlError.SqlError> =>
      session.withPermit(Effect.gen(function*() {
        if (lockConnection === undefined) {
          const scope = yield* Scope.fork(sessionsScope)
          const previous = sessionPid
          const connection = yield* sql.reserve.pipe(
            Scope.provide(scope),
            Effect.tap((connection) =>
              connection.execute("SELECT pg_backend_pid() AS pid", [], undefined).pipe(
                Effect.tap((rows) =>
                  Effect.sync(() => {
                    sessionPid = Number((rows[0] as { readonly pid?: unknown } | undefined)?.pid)
                  })
                ),
                Effect.andThen(retake(connection, previous))
              )
            ),
            Effect.onError(() => Scope.close(scope, Exit.void))
          )
          lockConnection = connection
          connectionScope = scope
        }
        return yield* f(lockConnection).pipe(Effect.tapError(() => dropSession))
      }))

    // The watch: while the session holds advisory locks, a cheap query every `checkEvery`. A session found
    // lost is replaced at once (the check runs again on a new one, which takes the locks again); if no new
    // session can be had, the next check tries again.
    const check = onSession((connection) =>
      connection.execute("SELECT 1", [], undefined).pipe(
        Effect.timeoutOrElse({
          duration: checkTimeout,
          orElse: () => Effect.fail(new Unresponsive({ after: Duration.format(checkTimeout) }))
        })
      )
    )
    const watch = Effect.suspend(() =>
      advisoryLocks.size === 0 ? Effect.void : check.pipe(
        Effect.catch(() => check),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause)
            : Effect.logWarning("partition locks: no session to hold them; trying again at the next check", cause)
        )
      )
    ).pipe(Effect.repeat(Schedule.spaced(checkEvery)))
    // started with the first advisory lock, for the layer's lifetime, in the layer's context (its clock,
    // its span), not the first holder's
    const layerContext = yield* Effect.context<never>()
    let watching = false
    const startWatch = Effect.suspend(() => {
      if (watching) return Effect.void
      watching = true
      return Effect.asVoid(Effect.forkIn(Effect.provideContext(watch, layerContext), layerScope))
    })

    const advisory = (pipeline: string, partition: Partition.PartitionDate) =>
      Effect.acquireRelease(
        onSession((connection) =>
          connection.execute(tryLockSql, [pipeline, partition], undefined).pipe(
            Effect.map((rows) => {
              if ((rows[0] as { readonly locked?: unknown } | undefined)?.locked !== true) return undefined
              // recorded under the session's permit, so that a replacement session takes it again
              const lock: AdvisoryLock = { pipeline, partition, lost: Deferred.makeUnsafe() }
              advisoryLocks.set(keyOf(pipeline, partition), lock)
              return lock
            })
          )
        ).pipe(
          mapSqlError("take the partition lock"),
          Effect.flatMap((lock) =>
            lock === undefined
              ? Effect.fail(new PartitionLock.PartitionLocked({ pipeline, partition }))
              : Effect.as(startWatch, lock)
          )
        ),
        (lock) =>
          Effect.suspend(() => {
            const key = keyOf(pipeline, partition)
            // a lost lock is another session's now: nothing to release
            if (advisoryLocks.get(key) !== lock) return Effect.void
            advisoryLocks.delete(key)
            return onSession((connection) =>
              connection.execute(
                "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))",
                [pipeline, partition],
                undefined
              )
            ).pipe(Effect.ignore)
          })
      ).pipe(Effect.map((lock): PartitionLock.Held => ({ lost: Deferred.await(lock.lost) })))

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
        (held.has(keyOf(pipeline, partition))
          ? Effect.succeed(true)
          : backend === "postgres"
          ? advisoryHeld(pipeline, partition)
          : Effect.succeed(false)).pipe(
            Effect.withSpan("SqlPartitionLock.isHeld", { attributes: { pipeline, partition } })
          ),
      acquire: (pipeline, partition) =>
        inProcess(pipeline, partition).pipe(
          Effect.andThen(
            backend === "postgres" ? advisory(pipeline, partition) : Effect.succeed(PartitionLock.neverLost)
          ),
          Effect.withSpan("SqlPartitionLock.acquire", { attributes: { pipeline, partition } })
        )
    })
  })

/**
 * {@link makeWith} with the default watch (a check every second).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = makeWith()

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

/**
 * {@link layer} with its lock session watched as `options` say, e.g. `{ checkEvery: "5 seconds" }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<PartitionLock.PartitionLock, never, SqlClient.SqlClient> =>
  Layer.effect(PartitionLock.PartitionLock, makeWith(options))
