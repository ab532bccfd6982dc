/**
 * Mapping of effect's `SqlError` to core's `SinkError`.
 *
 * @internal
 */
import { SinkError } from "@sluice/core"
import { Effect } from "effect"
import type { SqlError } from "effect/sql"

/** @internal */
/** @internal */
export const describe = (error: SqlError.SqlError): string => {
  // The driver's own message ("PgConnection: Query failed") says nothing; the server's is in the cause.
  const cause = error.reason.cause as { readonly message?: unknown; readonly code?: unknown } | undefined
  const server = typeof cause?.message === "string" && cause.message.length > 0 ? cause.message : undefined
  const code = typeof cause?.code === "string" ? ` [${cause.code}]` : ""
  const message = server === undefined ? error.message : `${server}${code}`
  return message.split("\n")[0] ?? message
}

/**
 * The database is (momentarily) unreachable: a connection exception (class 08), an operator
 * intervention (57P01–57P03: terminated, shutting down, starting up) or a database that does not
 * accept connections now. Retrying later can succeed, whatever the driver classified.
 *
 * @internal
 */
export const isUnavailable = (error: SqlError.SqlError): boolean => {
  const cause = error.reason.cause as { readonly message?: unknown; readonly code?: unknown } | undefined
  const code = typeof cause?.code === "string" ? cause.code : ""
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" ||
    (code === "55000" && typeof cause?.message === "string" && cause.message.includes("accepting connections"))
}

/** @internal */
export const fromSqlError = (operation: string) => (error: SqlError.SqlError): SinkError.SinkError =>
  new SinkError.SinkError({
    operation,
    message: describe(error),
    retryable: error.isRetryable || isUnavailable(error),
    cause: error
  })

/** @internal */
export const mapSqlError = (operation: string) => <A, R>(self: Effect.Effect<A, SqlError.SqlError, R>) =>
  Effect.mapError(self, fromSqlError(operation))
