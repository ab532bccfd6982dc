import { assert, describe, it, layer } from "@effect/vitest"
import { PartitionLock } from "@sluice/core"
import { Database, SqlPartitionLock, Testing } from "@sluice/sql"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Schedule, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { backends, day, suiteOptions, unique, withSluice, withTestClock } from "./fixtures.ts"

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

/** Takes the lock in a scope of its own, released by closing it. */
const hold = Effect.fnUntraced(function*(
  lock: PartitionLock.PartitionLock["Service"],
  pipeline: string,
  partition = day(0)
) {
  const scope = yield* Scope.make()
  yield* Scope.provide(lock.acquire(pipeline, partition), scope).pipe(
    Effect.onError(() => Scope.close(scope, Exit.void))
  )
  return scope
})

/** Tries the lock and releases it at once: `true` when it was free. */
const isFree = (lock: PartitionLock.PartitionLock["Service"], pipeline: string, partition = day(0)) =>
  Effect.scoped(lock.acquire(pipeline, partition)).pipe(
    Effect.as(true),
    Effect.catchTag("PartitionLocked", (error) => {
      assert.deepStrictEqual([error.pipeline, error.partition], [pipeline, partition])
      return Effect.succeed(false)
    })
  )

/** Advisory locks granted in this suite's database (other suites run at the same time on others). */
const advisoryLocks = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ readonly n: number }>`
      SELECT count(*)::int AS n FROM pg_locks
      WHERE locktype = 'advisory' AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0)
    )
)

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`SqlPartitionLock [${backend.name}]`, (it) => {
    it.effect("a held partition cannot be taken again; other partitions and pipelines are free", () =>
      Effect.gen(function*() {
        const lock = yield* PartitionLock.PartitionLock
        const pipeline = unique("lock")
        const scope = yield* hold(lock, pipeline)
        assert.isFalse(yield* isFree(lock, pipeline))
        assert.isTrue(yield* isFree(lock, pipeline, day(1)))
        assert.isTrue(yield* isFree(lock, unique("lock_other")))
        yield* Scope.close(scope, Exit.void)
        assert.isTrue(yield* isFree(lock, pipeline), "released when its scope closes")
      }))

    it.effect("isHeld is true while the lock is held, for that pipeline and partition only", () =>
      Effect.gen(function*() {
        const lock = yield* PartitionLock.PartitionLock
        const pipeline = unique("lock_held")
        assert.isFalse(yield* lock.isHeld(pipeline, day(0)))
        const scope = yield* hold(lock, pipeline)
        assert.isTrue(yield* lock.isHeld(pipeline, day(0)))
        assert.isFalse(yield* lock.isHeld(pipeline, day(1)))
        assert.isFalse(yield* lock.isHeld(unique("lock_held_other"), day(0)))
        yield* Scope.close(scope, Exit.void)
        assert.isFalse(yield* lock.isHeld(pipeline, day(0)), "free once released")
      }))

    it.effect("is released when the work holding it fails or dies", () =>
      Effect.gen(function*() {
        const lock = yield* PartitionLock.PartitionLock
        const pipeline = unique("lock_fail")
        const failed = yield* Effect.exit(Effect.scoped(Effect.andThen(lock.acquire(pipeline, day(0)), new Boom())))
        assert.isTrue(Exit.isFailure(failed))
        assert.isTrue(yield* isFree(lock, pipeline))
        const died = yield* Effect.exit(
          Effect.scoped(Effect.andThen(lock.acquire(pipeline, day(0)), Effect.die("bug")))
        )
        assert.isTrue(Exit.isFailure(died))
        assert.isTrue(yield* isFree(lock, pipeline))
      }))

    it.effect("is released when the fiber holding it is interrupted", () =>
      Effect.gen(function*() {
        const lock = yield* PartitionLock.PartitionLock
        const pipeline = unique("lock_interrupt")
        const held = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
          yield* lock.acquire(pipeline, day(0))
          yield* Deferred.succeed(held, undefined)
          return yield* Effect.never
        })))
        yield* Deferred.await(held)
        assert.isFalse(yield* isFree(lock, pipeline))
        yield* Fiber.interrupt(fiber)
        assert.isTrue(yield* isFree(lock, pipeline))
      }))

    if (backend.name === "pglite") {
      it.effect("on PGlite it is an in-process lock only: no advisory lock, separate instances do not see each other", () =>
        Effect.gen(function*() {
          // PGlite is one session in one process (its data directory is locked against other processes, see
          // Database.test.ts), so the lock is the layer's set of held keys; the module documents one layer per process.
          assert.strictEqual(yield* Database.Backend, "pglite")
          const lock = yield* PartitionLock.PartitionLock
          const pipeline = unique("lock_pglite")
          const scope = yield* hold(lock, pipeline)
          assert.strictEqual(yield* advisoryLocks, 0)
          const second = yield* SqlPartitionLock.make
          assert.isTrue(yield* isFree(second, pipeline), "a second instance in the same process is not excluded")
          yield* Scope.close(scope, Exit.void)
        }))
    } else {
      it.effect("on PostgreSQL it also takes a session advisory lock, so separate instances exclude each other", () =>
        Effect.gen(function*() {
          const lock = yield* PartitionLock.PartitionLock
          const pipeline = unique("lock_pg")
          const before = yield* advisoryLocks
          const scope = yield* hold(lock, pipeline)
          assert.strictEqual(yield* advisoryLocks, before + 1)
          const second = yield* SqlPartitionLock.make
          assert.isTrue(yield* second.isHeld(pipeline, day(0)), "another instance sees the advisory lock")
          assert.isFalse(yield* second.isHeld(pipeline, day(1)))
          assert.isFalse(yield* isFree(second, pipeline))
          assert.isTrue(yield* isFree(second, pipeline, day(1)))
          yield* Scope.close(scope, Exit.void)
          assert.strictEqual(yield* advisoryLocks, before, "unlocked on release")
          assert.isFalse(yield* second.isHeld(pipeline, day(0)))
          assert.isTrue(yield* isFree(second, pipeline))
        }))
    }
  })
}

const postgresUrl = Testing.postgresUrl()

/**
 * Two connection pools on one database, as two processes running the same pipeline would have.
 * Each pool has its own `SqlPartitionLock`, so only the advisory lock can keep them apart.
 */
const twoProcessesWith = (options: SqlPartitionLock.Options) =>
  Effect.gen(function*() {
    const url = yield* Testing.freshDatabase(postgresUrl!)
    const processA = yield* Layer.build(Database.layerPostgres(url, { maxConnections: 3 }))
    const processB = yield* Layer.build(Database.layerPostgres(url, { maxConnections: 3 }))
    const lockA = yield* Effect.provideContext(SqlPartitionLock.makeWith(options), processA)
    const lockB = yield* Effect.provideContext(SqlPartitionLock.make, processB)
    const sqlA = Context.get(processA, SqlClient.SqlClient)
    const sqlB = Context.get(processB, SqlClient.SqlClient)
    return { lockA, lockB, sqlA, sqlB }
  })
const twoProcesses = twoProcessesWith({})

/** The backend pid of the session holding the advisory lock of (pipeline, partition), if any. */
const lockSession = (sql: SqlClient.SqlClient, pipeline: string, partition: string) =>
  sql<{ readonly pid: number }>`
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND classid = hashtext(${pipeline})::oid AND objid = hashtext(${partition})::oid`.pipe(
    Effect.map((rows) => rows[0]?.pid)
  )

/** Repeats `self` until `until` holds, for 5 s at most. */
const poll = <A, E, R>(self: Effect.Effect<A, E, R>, until: (a: A) => boolean) =>
  Effect.repeat(self, { until, schedule: Schedule.spaced("20 millis"), times: 250 })

/** {@link poll} on the real clock, in a test on a TestClock. */
const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, until: (a: A) => boolean) =>
  TestClock.withLive(poll(self, until))

/**
 * A holder of the lock of ("orders", `partition`) in `lock`, working (under `PartitionLock.guard`) until
 * `done` is completed; returns once the lock is held.
 */
const holder = Effect.fnUntraced(function*(
  lock: PartitionLock.PartitionLock["Service"],
  partition: ReturnType<typeof day>,
  done: Deferred.Deferred<string>
) {
  const taken = yield* Deferred.make<void>()
  const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
    const held = yield* lock.acquire("orders", partition)
    yield* Deferred.succeed(taken, undefined)
    return yield* Deferred.await(done).pipe(PartitionLock.guard(held))
  })))
  yield* Deferred.await(taken)
  return fiber
})

describe.skipIf(postgresUrl === undefined)("SqlPartitionLock [postgres, two pools on one database]", () => {
  it.live("a partition held by one pool fails fast with PartitionLocked in the other; other partitions are free", () =>
    Effect.gen(function*() {
      const { lockA, lockB } = yield* twoProcesses
      const scope = yield* hold(lockA, "orders")
      assert.isFalse(yield* isFree(lockB, "orders"))
      assert.isTrue(yield* isFree(lockB, "orders", day(1)))
      assert.isTrue(yield* isFree(lockB, "payments"))
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* isFree(lockB, "orders"))
      // and the other way round
      const scopeB = yield* hold(lockB, "orders")
      assert.isFalse(yield* isFree(lockA, "orders"))
      yield* Scope.close(scopeB, Exit.void)
      assert.isTrue(yield* isFree(lockA, "orders"))
    }))

  it.live("is released for the other pool when the holder fails or is interrupted", () =>
    Effect.gen(function*() {
      const { lockA, lockB } = yield* twoProcesses
      yield* Effect.exit(Effect.scoped(Effect.andThen(lockA.acquire("orders", day(0)), new Boom())))
      assert.isTrue(yield* isFree(lockB, "orders"))
      const held = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(Effect.scoped(
        Effect.andThen(lockA.acquire("orders", day(0)), Effect.andThen(Deferred.succeed(held, undefined), Effect.never))
      ))
      yield* Deferred.await(held)
      assert.isFalse(yield* isFree(lockB, "orders"))
      yield* Fiber.interrupt(fiber)
      assert.isTrue(yield* isFree(lockB, "orders"))
    }))

  it.live("is released when the holder's connection dies (a crashed process), and the holder recovers", () =>
    Effect.gen(function*() {
      // the session is not watched here (not until an hour has passed): the process is as good as dead
      const { lockA, lockB, sqlB } = yield* twoProcessesWith({ checkEvery: "1 hour" })
      const scope = yield* hold(lockA, "orders")
      assert.isFalse(yield* isFree(lockB, "orders"))
      assert.isTrue(yield* lockB.isHeld("orders", day(0)), "held by a live session of the other pool")
      // only this test's database: other suites running at the same time hold advisory locks too
      const killed = yield* sqlB<{ readonly killed: boolean }>`
        SELECT pg_terminate_backend(pid) AS killed FROM pg_locks
        WHERE locktype = 'advisory' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
      assert.deepStrictEqual(killed, [{ killed: true }])
      // the server releases the lock once the terminated backend has exited
      const free = yield* isFree(lockB, "orders").pipe(
        Effect.repeat({ until: (free) => free, schedule: Schedule.spaced("10 millis"), times: 500 })
      )
      assert.isTrue(free)
      assert.isFalse(yield* lockB.isHeld("orders", day(0)), "a dead session holds nothing")
      // releasing on the dead connection fails quietly; the pool replaces the connection
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* isFree(lockA, "orders"))
    }))

  it.live("a lost lock session is replaced within a check and every held lock taken again: the holders go on", () =>
    withTestClock(Effect.gen(function*() {
      const { lockA, lockB, sqlB } = yield* twoProcessesWith({ checkEvery: "1 second" })
      const done = yield* Deferred.make<string>()
      const first = yield* holder(lockA, day(0), done)
      const second = yield* holder(lockA, day(1), done)
      const session = yield* lockSession(sqlB, "orders", day(0))
      assert.isDefined(session)
      assert.strictEqual(yield* lockSession(sqlB, "orders", day(1)), session, "one session holds every lock")
      // an administrator (or a restart, or a network cut) ends the session
      yield* sqlB`SELECT pg_terminate_backend(${session!})`
      assert.isUndefined(yield* eventually(lockSession(sqlB, "orders", day(0)), (pid) => pid === undefined))
      // the next check finds the session lost, reserves a new one and takes both locks again on it
      yield* TestClock.adjust("1 second")
      const retaken = yield* eventually(lockSession(sqlB, "orders", day(0)), (pid) => pid !== undefined)
      assert.isDefined(retaken)
      assert.notStrictEqual(retaken, session)
      assert.strictEqual(yield* lockSession(sqlB, "orders", day(1)), retaken)
      assert.isFalse(yield* isFree(lockB, "orders"), "excluded again from the other process")
      assert.isFalse(yield* isFree(lockB, "orders", day(1)))
      assert.isUndefined(first.pollUnsafe(), "the holders go on")
      assert.isUndefined(second.pollUnsafe())
      yield* Deferred.succeed(done, "done")
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], ["done", "done"])
      assert.isTrue(yield* isFree(lockB, "orders"), "released from the new session")
      assert.isTrue(yield* isFree(lockB, "orders", day(1)))
    })))

  it.live("on the real clock, a terminated session found lost at once: its locks are taken again at once", () =>
    Effect.gen(function*() {
      // checked every millisecond, with idle connections in the pool for the new session: the old session can be
      // found lost (the server reports the termination) before its backend has exited and released its locks, and
      // the new session waits for that rather than lose the locks to its own dying backend
      const { lockA, lockB, sqlA, sqlB } = yield* twoProcessesWith({ checkEvery: "1 millis" })
      for (let round = 0; round < 20; round++) {
        yield* Effect.all([sqlA`SELECT pg_sleep(0.01)`, sqlA`SELECT pg_sleep(0.01)`], { concurrency: 2 })
        const done = yield* Deferred.make<string>()
        const fiber = yield* holder(lockA, day(round), done)
        const session = yield* lockSession(sqlB, "orders", day(round))
        yield* sqlB`SELECT pg_terminate_backend(${session!})`
        const retaken = yield* poll(
          lockSession(sqlB, "orders", day(round)),
          (pid) => pid !== undefined && pid !== session
        )
        assert.notStrictEqual(retaken, session)
        assert.isUndefined(fiber.pollUnsafe(), "the holder goes on")
        assert.isFalse(yield* isFree(lockB, "orders", day(round)))
        yield* Deferred.succeed(done, "done")
        assert.strictEqual(yield* Fiber.join(fiber), "done")
      }
    }))

  it.live("a lock another session took before it could be taken again stops its holder with LockLost", () =>
    withTestClock(Effect.gen(function*() {
      const { lockA, lockB, sqlB } = yield* twoProcessesWith({ checkEvery: "1 second" })
      const done = yield* Deferred.make<string>()
      const stolen = yield* holder(lockA, day(0), done)
      const kept = yield* holder(lockA, day(1), done)
      const session = yield* lockSession(sqlB, "orders", day(0))
      yield* sqlB`SELECT pg_terminate_backend(${session!})`
      // the other process takes day 0 once the server has released it, before process A checks its session
      const scopeB = yield* eventually(
        Effect.option(hold(lockB, "orders")),
        (scope) => scope._tag === "Some"
      ).pipe(Effect.map(Option.getOrThrow))
      const otherSession = yield* lockSession(sqlB, "orders", day(0))
      yield* TestClock.adjust("1 second")
      const exit = yield* TestClock.withLive(Effect.timeout(Fiber.await(stolen), "10 seconds"))
      assert.deepStrictEqual(exit, Exit.fail(new PartitionLock.LockLost({ pipeline: "orders", partition: day(0) })))
      assert.strictEqual(yield* lockSession(sqlB, "orders", day(0)), otherSession, "the other process keeps it")
      // day 1, which nobody took, is held again and its holder goes on
      const retaken = yield* eventually(lockSession(sqlB, "orders", day(1)), (pid) => pid !== undefined)
      assert.isDefined(retaken)
      assert.notStrictEqual(retaken, session)
      assert.isUndefined(kept.pollUnsafe())
      yield* Deferred.succeed(done, "done")
      assert.strictEqual(yield* Fiber.join(kept), "done")
      // the lost holder released nothing of the other's
      assert.isFalse(yield* isFree(lockA, "orders"))
      yield* Scope.close(scopeB, Exit.void)
      assert.isTrue(yield* isFree(lockA, "orders"))
    })))
})
