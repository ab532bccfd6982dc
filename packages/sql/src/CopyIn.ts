/**
 * Bulk loading with `COPY … FROM STDIN`, on the connection and in the transaction of the load:
 * the fast path of the write strategies. A batch is sent as one COPY instead of one `INSERT …
 * SELECT * FROM unnest(…)`; PostgreSQL parses it with the table's input functions, without
 * planning a statement or building arrays, which is how `psql \copy` loads.
 *
 * **Details**
 *
 * Rows are sent in COPY's text format (tab-separated, `\N` for NULL, backslash escapes), so each
 * value reaches its column's input function as `INSERT` would send it: a `text` spec column
 * loads into `varchar(n)`, an `int` into `bigint`, a `numeric` into `numeric(12,2)`. Values are
 * checked by the same rules as {@link Table.toColumnArrays}.
 *
 * The COPY runs on the transaction's own connection, so it commits or rolls back with
 * everything else the load does (the partition delete, dead letters, derived tables, the run
 * ledger). On PGlite the in-process link carries it too (see `Database.layerPglite`).
 *
 * **Gotchas**
 *
 * `@effect/sql-pg` has no COPY; this module adds one on top of the driver's connection (see the
 * module `internal/pgCopy.ts`). With a `SqlClient` from another driver, {@link make}'s copier
 * succeeds with `Option.none()` and copies nothing: callers then insert another way.
 *
 * @since 0.1.0
 */
import { SinkError } from "@sluice/core"
import { Effect, Option, Stream } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import * as CopyText from "./internal/copyText.ts"
import * as PgCopy from "./internal/pgCopy.ts"
import { fromSqlError } from "./internal/sinkError.ts"
import * as Table from "./Table.ts"

/**
 * Copies a batch of rows; succeeds with the number of rows copied, or `Option.none()` when the
 * client cannot COPY. `validate` sees each row's values and returns a message to reject the
 * batch.
 *
 * @since 0.1.0
 * @category models
 */
export type Copier<A> = (
  rows: ReadonlyArray<A>,
  validate?: ((values: ReadonlyArray<unknown>) => string | undefined) | undefined
) => Effect.Effect<Option.Option<number>, SinkError.SinkError, SqlClient.SqlClient>

const quote = (name: string): string => name.split(".").map((part) => `"${part}"`).join(".")

/**
 * The statement of a copy into `table` (validated names, quoted as the `sql` template quotes them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const statement = (table: string, columns: ReadonlyArray<Table.Column>): string => {
  Table.validateColumns(table, columns)
  return `COPY ${quote(table)} (${columns.map((column) => quote(column.name)).join(", ")}) FROM STDIN`
}

/** What a copier is made of. */
interface Spec<A> {
  readonly table: string
  readonly columns: ReadonlyArray<Table.Column>
  readonly toRow: (row: A) => ReadonlyArray<unknown>
  /** The operation named by a `SinkError`; `copy into <table>` by default. */
  readonly operation?: string | undefined
}

type Validate = (values: ReadonlyArray<unknown>) => string | undefined

/** The pieces both copiers share: the statement, the batch encoder, the way to the connection. */
const prepare = <A>(spec: Spec<A>) => {
  const sql = statement(spec.table, spec.columns)
  const operation = spec.operation ?? `copy into ${spec.table}`
  /** A batch as `CopyData` frames, or a `SinkError` naming its row (counted from `first`). */
  const encode = (rows: ReadonlyArray<A>, validate: Validate | undefined, first = 0) =>
    Effect.try({
      try: () =>
        CopyText.encode({
          columns: spec.columns,
          rows,
          toRow: spec.toRow,
          check: validate === undefined ? undefined : (values, row) => {
            const message = validate(values)
            if (message !== undefined) throw new TypeError(`row ${first + row}: ${message}`)
          }
        }),
      catch: (error) =>
        new SinkError.SinkError({
          operation,
          message: error instanceof Error ? error.message : String(error),
          retryable: false,
          cause: error
        })
    })
  /** The COPY's own failures as the sink's. */
  const mapCopyError = <E>(error: SqlError.SqlError | E) =>
    SqlError.isSqlError(error) ? fromSqlError(operation)(error) : error
  /**
   * Runs `copy` on the current transaction's session (in a transaction of its own when there is
   * none); `Option.none()` when the client cannot COPY.
   */
  const onSession = <E, R>(
    copy: (target: PgCopy.Target) => Effect.Effect<number, SinkError.SinkError | E, R>
  ): Effect.Effect<Option.Option<number>, SinkError.SinkError | E, SqlClient.SqlClient | R> =>
    Effect.flatMap(SqlClient.SqlClient, (client) => {
      const run: Effect.Effect<Option.Option<number>, SinkError.SinkError | E, SqlClient.SqlClient | R> = Effect
        .flatMap(
          Effect.serviceOption(client.transactionService),
          (current) => {
            if (Option.isNone(current)) {
              return client.withTransaction(run).pipe(
                Effect.mapError((error) => SqlError.isSqlError(error) ? fromSqlError("transaction")(error) : error)
              )
            }
            const target = PgCopy.targetOf(current.value[0])
            return target === undefined ? Effect.succeed(Option.none()) : Effect.map(copy(target), Option.some)
          }
        )
      return run
    })
  return { sql, encode, mapCopyError, onSession }
}

/**
 * A copier into `table`: each call copies one batch, in the current transaction (or in a
 * transaction of its own when there is none). Throws `InvalidTableSpec` for a bad table spec.
 *
 * **Details**
 *
 * A value its column cannot take, or a row `validate` rejects, fails the batch with a
 * non-retryable `SinkError` naming the row and column, before anything is sent. A value the
 * database rejects (out of range, a constraint, a duplicate key) fails it with the server's
 * message; the transaction is then aborted and must roll back, as after any failed statement.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { CopyIn } from "@sluice/sql"
 *
 * interface Reading {
 *   readonly sensor: string
 *   readonly value: number
 * }
 *
 * const copy = CopyIn.make<Reading>({
 *   table: "raw.readings",
 *   columns: [{ name: "sensor", type: "text" }, { name: "value", type: "double precision" }],
 *   toRow: (r) => [r.sensor, r.value]
 * })
 *
 * const load = Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *   sql.withTransaction(copy([{ sensor: "a", value: 1.5 }, { sensor: "b", value: -0 }])))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(spec: Spec<A>): Copier<A> => {
  const { encode, mapCopyError, onSession, sql } = prepare(spec)
  return (rows, validate) =>
    onSession((target) =>
      rows.length === 0 ? Effect.succeed(0) : encode(rows, validate).pipe(
        Effect.flatMap((frames) => PgCopy.copyFrom(target, sql, frames)),
        Effect.mapError(mapCopyError)
      )
    ).pipe(Effect.withSpan("CopyIn.copy", { attributes: { table: spec.table, rows: rows.length } }))
}

/**
 * Copies a stream of batches as one COPY; succeeds with the number of rows copied, or
 * `Option.none()` (without pulling the stream) when the client cannot COPY.
 *
 * @since 0.1.0
 * @category models
 */
export type StreamCopier<A> = <E, R>(
  batches: Stream.Stream<ReadonlyArray<A>, E, R>,
  validate?: ((values: ReadonlyArray<unknown>) => string | undefined) | undefined
) => Effect.Effect<Option.Option<number>, SinkError.SinkError | E, SqlClient.SqlClient | R>

/**
 * A copier of whole streams into `table`: one `COPY … FROM STDIN` carries every batch of the
 * stream, each batch encoded and sent as it arrives, so the server never waits for a statement
 * between batches (the way `psql \copy` loads a file). It runs in the current transaction (or
 * a transaction of its own when there is none). Throws `InvalidTableSpec` for a bad table spec.
 *
 * **Details**
 *
 * Nothing else can run on the connection while the COPY is open: the stream must not wait for
 * another statement of the same transaction. A value its column cannot take (or a row `validate`
 * rejects) aborts the COPY with a `SinkError` naming the batch's row and column; so does a
 * failure of the stream itself (its own error is the result), and an interruption: the server
 * discards the COPY, and the transaction rolls back as after any failed statement.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { CopyIn } from "@sluice/sql"
 *
 * const copy = CopyIn.makeStream<number>({
 *   table: "raw.numbers",
 *   columns: [{ name: "n", type: "int" }],
 *   toRow: (n) => [n]
 * })
 *
 * const batches = Stream.range(0, 99).pipe(Stream.map((i) => Array.from({ length: 1000 }, (_, j) => i * 1000 + j)))
 * const load = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(copy(batches)))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStream = <A>(spec: Spec<A>): StreamCopier<A> => {
  const { encode, mapCopyError, onSession, sql } = prepare(spec)
  return <E, R>(batches: Stream.Stream<ReadonlyArray<A>, E, R>, validate?: Validate) =>
    onSession((target) => {
      let first = 0
      const frames = Stream.mapEffect(batches, (rows) => {
        const at = first
        first += rows.length
        return encode(rows, validate, at)
      })
      return PgCopy.copyStream(target, sql, frames).pipe(Effect.mapError(mapCopyError))
    }).pipe(Effect.withSpan("CopyIn.copyStream", { attributes: { table: spec.table } }))
}

/**
 * Whether the current `SqlClient` can COPY (an `@effect/sql-pg` client of the version Sluice is
 * built with).
 *
 * @since 0.1.0
 * @category guards
 */
export const isSupported: Effect.Effect<boolean, SinkError.SinkError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (client) =>
    client.withTransaction(
      Effect.map(
        Effect.serviceOption(client.transactionService),
        (current) => Option.isSome(current) && PgCopy.targetOf(current.value[0]) !== undefined
      )
    ).pipe(Effect.mapError(fromSqlError("transaction")))
)
