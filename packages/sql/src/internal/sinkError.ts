/**
 * Mapping of effect's `SqlError` to core's `SinkError`.
 *
 * @internal
 */
import { SinkError } from "@sluice/core"
import { Effect } from "effect"
import type { SqlError } from "effect/sql"

/** @internal */
export const fromSqlError = (operation: string) => (error: SqlError.SqlError): SinkError.SinkError =>
  new SinkError.SinkError({
    operation,
    message: error.message.split("\n")[0] ?? error.message,
    retryable: error.isRetryable,
    cause: error
  })

/** @internal */
export const mapSqlError = (operation: string) => <A, R>(self: Effect.Effect<A, SqlError.SqlError, R>) =>
  Effect.mapError(self, fromSqlError(operation))
