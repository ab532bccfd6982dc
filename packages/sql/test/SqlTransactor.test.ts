import { assert, layer } from "@effect/vitest"
import { SinkError, Transactor } from "@sluice/core"
import { Cause, Deferred, Effect, Exit, Fiber, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { backends, countRows, suiteOptions, unique, withSluice } from "./fixtures.ts"

class Boom extends Schema.TaggedError<Boom>()("Boom", { n: Schema.Number }) {}

const createTable = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY)`)

const insert = (table: string, id: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO ${sql(table)} (id) VALUES (${id})`)

const ids = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly id: number }>`SELECT id FROM ${sql(table)} ORDER BY id`.pipe(
        Effect.map((rows) => rows.map((r) => r.id))
      )
  )

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`SqlTransactor [${backend.name}]`, (it) => {
    it.effect("commits the writes of an effect that succeeds, and returns its value", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_commit")
        yield* createTable(table)
        const value = yield* transactor.withTransaction(
          Effect.andThen(Effect.andThen(insert(table, 1), insert(table, 2)), Effect.succeed("done"))
        )
        assert.strictEqual(value, "done")
        assert.deepStrictEqual(yield* ids(table), [1, 2])
      }))

    it.effect("rolls back on failure and passes the effect's own error through unchanged", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_fail")
        yield* createTable(table)
        yield* insert(table, 1)
        const error = yield* Effect.flip(transactor.withTransaction(
          Effect.andThen(insert(table, 2), Effect.fail(new Boom({ n: 7 })))
        ))
        assert.instanceOf(error, Boom)
        assert.strictEqual((error as Boom).n, 7)
        assert.deepStrictEqual(yield* ids(table), [1])
      }))

    it.effect("passes a SqlError of the effect through as a SqlError (not a SinkError), and rolls back", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_sqlerror")
        yield* createTable(table)
        const error = yield* Effect.flip(transactor.withTransaction(
          Effect.andThen(insert(table, 1), insert(table, 1))
        ))
        assert.strictEqual(error._tag, "SqlError")
        assert.deepStrictEqual(yield* ids(table), [])
      }))

    it.effect("rolls back on a defect", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_die")
        yield* createTable(table)
        const exit = yield* Effect.exit(transactor.withTransaction(Effect.andThen(insert(table, 1), Effect.die("bug"))))
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        assert.deepStrictEqual(yield* ids(table), [])
      }))

    it.effect("rolls back when the fiber is interrupted inside the transaction, and the database stays usable", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_interrupt")
        yield* createTable(table)
        yield* insert(table, 1)
        const inside = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(transactor.withTransaction(Effect.gen(function*() {
          yield* insert(table, 2)
          yield* insert(table, 3)
          yield* Deferred.succeed(inside, undefined)
          return yield* Effect.never
        })))
        yield* Deferred.await(inside)
        const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
        assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
        assert.deepStrictEqual(yield* ids(table), [1])
        // the session is not left inside the aborted transaction: the next one commits normally
        yield* transactor.withTransaction(insert(table, 4))
        assert.deepStrictEqual(yield* ids(table), [1, 4])
      }))

    if (backend.name === "postgres") {
      /** The other backends running a statement that mentions `marker`. */
      const runningWith = (sql: SqlClient.SqlClient, marker: string) =>
        sql<{ readonly pid: number }>`
          SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE ${`%${marker}%`}
            AND pid <> pg_backend_pid()`

      // PGlite cannot cancel a statement: it runs each to completion, so there is no running statement to interrupt.
      it.effect("an interrupt during a running statement cancels it on the server and rolls back", () =>
        Effect.gen(function*() {
          const transactor = yield* Transactor.Transactor
          const sql = yield* SqlClient.SqlClient
          const table = unique("tx_cancel")
          yield* createTable(table)
          const marker = `sluice_cancel_${table}`
          const sleeping = Effect.map(runningWith(sql, marker), (rows) => rows.length)
          const fiber = yield* Effect.forkChild(transactor.withTransaction(
            Effect.andThen(insert(table, 1), sql.unsafe(`SELECT pg_sleep(30) AS ${marker}`))
          ))
          yield* Effect.repeat(sleeping, { until: (n) => n === 1, schedule: Schedule.spaced("5 millis") })
          const started = performance.now()
          yield* Fiber.interrupt(fiber)
          assert.isBelow(performance.now() - started, 5_000, "the statement was cancelled, not waited for")
          assert.deepStrictEqual(yield* ids(table), [])
          assert.strictEqual(yield* sleeping, 0, "nothing is left running on the server")
        }))

      it.effect("a connection lost inside the transaction is a failure (retryable), not a defect", () =>
        Effect.gen(function*() {
          const transactor = yield* Transactor.Transactor
          const sql = yield* SqlClient.SqlClient
          const table = unique("tx_lost")
          yield* createTable(table)
          const marker = `sluice_lost_${table}`
          const sleeping = runningWith(sql, marker)
          const fiber = yield* Effect.forkChild(Effect.exit(transactor.withTransaction(
            Effect.andThen(insert(table, 1), sql.unsafe(`SELECT pg_sleep(30) AS ${marker}`)).pipe(
              Effect.mapError((e) =>
                new SinkError.SinkError({ operation: "sleep", message: e.message, retryable: true })
              )
            )
          )))
          const rows = yield* Effect.repeat(sleeping, {
            until: (rows) => rows.length === 1,
            schedule: Schedule.spaced("5 millis")
          })
          yield* sql`SELECT pg_terminate_backend(${rows[0]!.pid})`
          const exit = yield* Fiber.join(fiber)
          assert.isTrue(
            Exit.isFailure(exit) && !Cause.hasDies(exit.cause),
            Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
          )
          const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
          assert.isTrue(
            error !== undefined && error._tag === "Some" && SinkError.isSinkError(error.value) && error.value.retryable
          )
          assert.deepStrictEqual(yield* ids(table), [])
        }))
    }

    it.effect("nested transactions are savepoints: an inner failure rolls back only the inner writes", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const table = unique("tx_nested")
        yield* createTable(table)
        yield* transactor.withTransaction(Effect.gen(function*() {
          yield* insert(table, 1)
          const inner = yield* Effect.exit(
            transactor.withTransaction(Effect.andThen(insert(table, 2), Effect.fail(new Boom({ n: 1 }))))
          )
          assert.isTrue(Exit.isFailure(inner))
          yield* insert(table, 3)
        }))
        assert.deepStrictEqual(yield* ids(table), [1, 3])
      }))

    it.effect("a COMMIT that fails becomes a non-retryable SinkError, and nothing is committed", () =>
      Effect.gen(function*() {
        const transactor = yield* Transactor.Transactor
        const sql = yield* SqlClient.SqlClient
        const table = unique("tx_commit_fails")
        // a deferred unique constraint is checked by COMMIT, not by the INSERT
        yield* sql`CREATE TABLE ${sql(table)} (id int, CONSTRAINT ${
          sql(`${table}_unique`)
        } UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`
        const error = yield* Effect.flip(transactor.withTransaction(Effect.andThen(insert(table, 1), insert(table, 1))))
        assert.instanceOf(error, SinkError.SinkError)
        assert.strictEqual((error as SinkError.SinkError).operation, "transaction")
        assert.isFalse((error as SinkError.SinkError).isRetryable)
        assert.strictEqual(yield* countRows(table), 0)
      }))
  })
}
