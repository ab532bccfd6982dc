/**
 * Core's `Transactor` as a database transaction: a load's rows, dead letters, derived tables and
 * ledger updates commit together, or roll back together on failure or interruption.
 *
 * @since 0.1.0
 */
import type { SinkError } from "@sluice/core"
import { Transactor } from "@sluice/core"
import { Cause, Effect, Layer } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { fromSqlError, isUnavailable } from "./internal/sinkError.ts"

/** Carries the wrapped effect's own failures past the mapping of the transaction's SqlErrors. */
class Inner<E> {
  readonly error: E
  constructor(error: E) {
    this.error = error
  }
}

/**
 * The connection died inside the transaction: the wrapped effect failed (a lost connection) and then
 * the ROLLBACK failed on the dead connection. effect turns a failed ROLLBACK into a defect and, when a
 * finalizer fails, every failure of the cause into a defect too. The server rolls back the
 * transaction of a session that is gone, so both are failures again: the wrapped effect's own, and a
 * retryable `SinkError` for the ROLLBACK. Any other defect stays a defect.
 */
const recoverLostConnection = (cause: Cause.Cause<unknown>): Cause.Cause<unknown> =>
  Cause.fromReasons(cause.reasons.map((reason) => {
    if (Cause.isFailReason(reason)) {
      return reason.error instanceof Inner
        ? Cause.makeFailReason(reason.error.error)
        : SqlError.isSqlError(reason.error)
        ? Cause.makeFailReason(fromSqlError("transaction")(reason.error))
        : reason
    }
    if (!Cause.isDieReason(reason)) return reason
    if (reason.defect instanceof Inner) return Cause.makeFailReason(reason.defect.error)
    return SqlError.isSqlError(reason.defect) &&
        (reason.defect.reason._tag === "ConnectionError" || isUnavailable(reason.defect))
      ? Cause.makeFailReason(fromSqlError("rollback")(reason.defect))
      : reason
  }))

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
        Effect.catchCause((cause) =>
          Effect.failCause(recoverLostConnection(cause) as Cause.Cause<E | SinkError.SinkError>)
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
