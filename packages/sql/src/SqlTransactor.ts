/**
 * Core's `Transactor` as a database transaction: a load's rows, dead letters, derived tables and
 * ledger updates commit together, or roll back together on failure or interruption.
 *
 * @since 0.1.0
 */
import { Transactor } from "@sluice/core"
import { Effect, Layer } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { fromSqlError } from "./internal/sinkError.ts"

/** Carries the wrapped effect's own failures past the mapping of the transaction's SqlErrors. */
class Inner<E> {
  readonly error: E
  constructor(error: E) {
    this.error = error
  }
}

/**
 * Builds the transactor over the current `SqlClient`.
 *
 * **Details**
 *
 * Failures of the transaction itself (`BEGIN`, `COMMIT`, `ROLLBACK`, a lost connection) become a
 * `SinkError` whose `retryable` is `SqlError.isRetryable`; the wrapped effect's own failures,
 * `SqlError`s included, pass through unchanged. Nested calls use savepoints.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.map(SqlClient.SqlClient, (sql) =>
  Transactor.Transactor.of({
    withTransaction: <A, E, R>(self: Effect.Effect<A, E, R>) =>
      sql.withTransaction(Effect.mapError(self, (error) => new Inner(error))).pipe(
        Effect.mapError((error) =>
          error instanceof Inner
            ? error.error as E
            : SqlError.isSqlError(error)
            ? fromSqlError("transaction")(error)
            : error as never
        ),
        Effect.withSpan("SqlTransactor.withTransaction")
      )
  }))

/**
 * Core's `Transactor` on the current `SqlClient`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Transactor } from "@sluice/core"
 * import { Database, SqlTransactor } from "@sluice/sql"
 *
 * const program = Effect.gen(function*() {
 *   const transactor = yield* Transactor.Transactor
 *   yield* transactor.withTransaction(Effect.log("inside one transaction"))
 * }).pipe(Effect.provide(SqlTransactor.layer), Effect.provide(Database.layerPglite({})))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Transactor.Transactor, never, SqlClient.SqlClient> = Layer.effect(
  Transactor.Transactor,
  make
)
