/**
 * Partition replacement: the write strategy that makes a load idempotent. Inside the load
 * transaction the partition is deleted (`prepare`), the new rows are inserted in batches
 * (`write`), and derived tables are rebuilt for the partition (`complete`). Re-running a
 * partition leaves exactly the rows of the last run; other partitions are never touched.
 *
 * **Details**
 *
 * A batch is loaded with `COPY … FROM STDIN` on the load transaction's connection (see
 * {@link CopyIn}), PostgreSQL's bulk-load path; a pipeline hands the sink whole streams of batches
 * (`writeBatches`), each loaded by one COPY that the server reads while the next batches are
 * still being decoded, as `psql \copy` loads a file. With `load: "unnest"` (or a client that cannot
 * COPY) it is inserted with one statement, `INSERT INTO t (...) SELECT * FROM unnest($1::text[],
 * $2::numeric[], ...)`: one typed array parameter per column, bound in binary, whatever the batch
 * size (PostgreSQL caps a statement at 65,535 parameters; a multi-row `VALUES` reaches it at a few
 * thousand rows). Table and column names are validated when the sink is made and quoted by the
 * driver; values are always parameters.
 *
 * @since 0.1.0
 */
import type { Partition, Sink } from "@sluice/core"
import { SinkError } from "@sluice/core"
import { Effect, Option, Stream } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import * as CopyIn from "./CopyIn.ts"
import { mapSqlError } from "./internal/sinkError.ts"
import * as Table from "./Table.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type ColumnType = Table.ColumnType

/**
 * @since 0.1.0
 * @category models
 */
export type Column = Table.Column

/**
 * @since 0.1.0
 * @category errors
 */
export const InvalidTableSpec = Table.InvalidTableSpec

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidTableSpec = Table.InvalidTableSpec

/**
 * A step run by `complete`, in the load transaction, after every batch is written.
 *
 * @since 0.1.0
 * @category models
 */
export interface DerivedStep {
  readonly target: string
  /**
   * Runs in `prepare`, before the partition's old rows are deleted: the place to remember what
   * the old rows touched (e.g. the keys a merge must recompute), in a temporary table.
   */
  readonly before?:
    | ((partition: Partition.PartitionDate) => Effect.Effect<void, SinkError.SinkError, SqlClient.SqlClient>)
    | undefined
  readonly run: (partition: Partition.PartitionDate) => Effect.Effect<void, SinkError.SinkError, SqlClient.SqlClient>
}

/**
 * A table written by partition replacement.
 *
 * @since 0.1.0
 * @category models
 */
export interface TableSpec<A> {
  /** `table` or `schema.table`. */
  readonly table: string
  /** The `date` column holding the partition. */
  readonly partitionColumn: string
  readonly columns: ReadonlyArray<Column>
  /** One value per column, in the order of `columns`. */
  readonly toRow: (row: A) => ReadonlyArray<unknown>
  /** Derived tables rebuilt for the partition by `complete` (see {@link rebuild}). */
  readonly derived?: ReadonlyArray<DerivedStep> | undefined
  /**
   * How batches are written: `"copy"` (the default; `COPY … FROM STDIN`, see {@link CopyIn}) or
   * `"unnest"` (`INSERT … SELECT * FROM unnest(…)`). A client that cannot COPY uses `unnest`.
   */
  readonly load?: "copy" | "unnest" | undefined
}

/**
 * A sink that replaces a partition of a table in the load transaction.
 *
 * @example
 * ```ts
 * import { PartitionReplace } from "@sluice/sql"
 *
 * interface Order {
 *   readonly date: string
 *   readonly id: string
 *   readonly amount: string
 * }
 *
 * const orders = PartitionReplace.make<Order>({
 *   table: "raw.orders",
 *   partitionColumn: "order_date",
 *   columns: [
 *     { name: "order_date", type: "date" },
 *     { name: "order_id", type: "text" },
 *     { name: "amount", type: "numeric" }
 *   ],
 *   toRow: (o) => [o.date, o.id, o.amount]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(spec: TableSpec<A>): Sink.Sink<A, SqlClient.SqlClient> => {
  Table.validateColumns(spec.table, spec.columns)
  const partitionIndex = Table.requireColumn(spec.table, spec.columns, spec.partitionColumn, "partition column")
  const derived = spec.derived ?? []
  const names = spec.columns.map((column) => column.name)
  const copy = spec.load === "unnest" ? undefined : CopyIn.make({ ...spec, operation: `insert into ${spec.table}` })
  const copyStream = spec.load === "unnest"
    ? undefined
    : CopyIn.makeStream({ ...spec, operation: `insert into ${spec.table}` })

  const prepare = (partition: Partition.PartitionDate) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`DELETE FROM ${sql(spec.table)} WHERE ${sql(spec.partitionColumn)} = ${Table.date(partition)}`
    )
      .pipe(Effect.asVoid, mapSqlError(`delete partition of ${spec.table}`))

  /** Every row must belong to the partition being replaced, or a re-run would not remove it. */
  const checkPartition = (partition: Partition.PartitionDate, arrays: ReadonlyArray<ReadonlyArray<unknown>>) => {
    const values = arrays[partitionIndex]!
    const bad = values.findIndex((value) => value !== partition)
    return bad < 0 ? Effect.void : Effect.fail(
      new SinkError.SinkError({
        operation: `insert into ${spec.table}`,
        message: `row ${bad}: ${spec.partitionColumn} is ${String(values[bad])}, not the partition ${partition}`,
        retryable: false
      })
    )
  }

  /** A row's check for COPY: its partition column holds the partition being replaced. */
  const inPartition = (partition: Partition.PartitionDate) => (values: ReadonlyArray<unknown>) => {
    const value = values[partitionIndex]
    return value === partition
      ? undefined
      : `${spec.partitionColumn} is ${String(value)}, not the partition ${partition}`
  }

  const write = (partition: Partition.PartitionDate, rows: ReadonlyArray<A>) => {
    if (rows.length === 0) return Effect.void
    return Effect.gen(function*() {
      if (copy !== undefined) {
        const copied = yield* copy(rows, inPartition(partition))
        if (Option.isSome(copied)) return
      }
      const sql = yield* SqlClient.SqlClient
      const arrays = yield* Table.toColumnArrays({ table: spec.table, columns: spec.columns, rows, toRow: spec.toRow })
      yield* checkPartition(partition, arrays)
      yield* sql`INSERT INTO ${sql(spec.table)} (${Table.columnList(sql, names)}) ${
        Table.unnest(sql, spec.columns, arrays)
      }`.pipe(mapSqlError(`insert into ${spec.table}`))
    }).pipe(Effect.withSpan("PartitionReplace.write", { attributes: { table: spec.table, rows: rows.length } }))
  }

  const complete = (partition: Partition.PartitionDate) =>
    Effect.forEach(derived, (step) => step.run(partition), { discard: true })

  return {
    target: spec.table,
    check: Table.storable(spec.table, spec.columns, spec.toRow),
    prepare: (partition) =>
      Effect.forEach(derived, (step) => step.before === undefined ? Effect.void : step.before(partition), {
        discard: true
      }).pipe(Effect.andThen(prepare(partition)), Effect.withSpan("PartitionReplace.prepare")),
    write,
    writeBatches: copyStream === undefined ? undefined : <E>(
      partition: Partition.PartitionDate,
      batches: Stream.Stream<ReadonlyArray<A>, E>
    ) =>
      Effect.flatMap(
        copyStream(batches, inPartition(partition)),
        (copied) => Option.isSome(copied) ? Effect.void : Stream.runForEach(batches, (rows) => write(partition, rows))
      ).pipe(Effect.withSpan("PartitionReplace.writeBatches", { attributes: { table: spec.table } })),
    complete: (partition) => complete(partition).pipe(Effect.withSpan("PartitionReplace.complete"))
  }
}

/**
 * A derived step that rebuilds one partition of a derived table from a SELECT: it deletes the
 * partition, then `INSERT INTO table (columns) <select>`.
 *
 * **Details**
 *
 * `select` receives the client and the partition and returns a statement built with the `sql`
 * template, so the partition (and any other value) is a parameter. `columns` names the target
 * columns in the order the SELECT produces them; without it the SELECT must match the table's
 * column order.
 *
 * @example
 * ```ts
 * import { PartitionReplace } from "@sluice/sql"
 *
 * const dailyRevenue = PartitionReplace.rebuild({
 *   table: "analytics.daily_revenue",
 *   partitionColumn: "date",
 *   columns: ["date", "category", "revenue", "order_count"],
 *   select: (sql, partition) =>
 *     sql`SELECT order_date, product_category, sum(amount), count(*)::int
 *         FROM raw.orders WHERE order_date = ${partition}::date
 *         GROUP BY order_date, product_category`
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const rebuild = (options: {
  readonly table: string
  readonly partitionColumn: string
  readonly columns?: ReadonlyArray<string> | undefined
  readonly select: (sql: SqlClient.SqlClient, partition: Partition.PartitionDate) => Statement.Fragment
}): DerivedStep => {
  Table.validateTable(options.table)
  Table.validateColumn(options.table, options.partitionColumn)
  for (const column of options.columns ?? []) Table.validateColumn(options.table, column)
  const columns = options.columns
  return {
    target: options.table,
    run: (partition) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM ${sql(options.table)} WHERE ${sql(options.partitionColumn)} = ${Table.date(partition)}`
        const target = columns === undefined || columns.length === 0
          ? sql`${sql(options.table)}`
          : sql`${sql(options.table)} (${sql.csv(columns.map((column) => sql`${sql(column)}`))})`
        yield* sql`INSERT INTO ${target} ${options.select(sql, partition)}`
      }).pipe(
        mapSqlError(`rebuild ${options.table}`),
        Effect.withSpan("PartitionReplace.rebuild", { attributes: { table: options.table, partition } })
      )
  }
}
