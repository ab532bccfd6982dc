/**
 * Partition replacement: the write strategy that makes a load idempotent. Inside the load
 * transaction the partition is deleted (`prepare`), the new rows are inserted in batches
 * (`write`), and derived tables are rebuilt for the partition (`complete`). Re-running a
 * partition leaves exactly the rows of the last run; other partitions are never touched.
 *
 * **Details**
 *
 * A batch is inserted with one statement, `INSERT INTO t (...) SELECT * FROM unnest($1::text[],
 * $2::numeric[], ...)`: one typed array parameter per column, bound in binary, whatever the batch
 * size (PostgreSQL caps a statement at 65,535 parameters; a multi-row `VALUES` reaches it at a few
 * thousand rows). Table and column names are validated when the sink is made and quoted by the
 * driver; values are always parameters.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import type { Partition, Sink } from "@sluice/core"
import { SinkError } from "@sluice/core"
import { Effect, Schema } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import { mapSqlError } from "./internal/sinkError.ts"
import { typedArray } from "./internal/typedArray.ts"

/**
 * The column types a partition-replaced table may use.
 *
 * | type | JavaScript value |
 * | --- | --- |
 * | `text` | string |
 * | `int` | integer number |
 * | `bigint` | bigint, or integer number / string |
 * | `numeric` | decimal string (exact), or number |
 * | `date` | `YYYY-MM-DD` string |
 * | `timestamptz` | `Date` or epoch milliseconds |
 * | `bool` | boolean |
 * | `jsonb` | any JSON value |
 * | `double precision` | number |
 *
 * `null` (or `undefined`) is SQL NULL for every type.
 *
 * @since 0.1.0
 * @category models
 */
export type ColumnType =
  | "text"
  | "int"
  | "bigint"
  | "numeric"
  | "date"
  | "timestamptz"
  | "bool"
  | "jsonb"
  | "double precision"

/**
 * @since 0.1.0
 * @category models
 */
export interface Column {
  readonly name: string
  readonly type: ColumnType
}

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
}

/**
 * A table spec with an identifier that is not a plain SQL name. Thrown when the sink or step is
 * made: it is a programming error, not a runtime condition.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTableSpec extends Schema.TaggedError<InvalidTableSpec>("@sluice/sql/InvalidTableSpec")(
  "InvalidTableSpec",
  { table: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `invalid table spec ${JSON.stringify(this.table)}: ${this.reason}`
  }
}

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

const validateTable = (table: string): void => {
  const parts = table.split(".")
  if (parts.length > 2 || !parts.every((part) => identifierPattern.test(part))) {
    throw new InvalidTableSpec({ table, reason: "expected `table` or `schema.table` made of [A-Za-z0-9_]" })
  }
}

const validateColumn = (table: string, column: string): void => {
  if (!identifierPattern.test(column)) {
    throw new InvalidTableSpec({ table, reason: `invalid column name ${JSON.stringify(column)}` })
  }
}

const elementOid: Record<ColumnType, number> = {
  text: PgTypes.OID.text,
  int: PgTypes.OID.int4,
  bigint: PgTypes.OID.int8,
  numeric: PgTypes.OID.numeric,
  date: PgTypes.OID.date,
  timestamptz: PgTypes.OID.timestamptz,
  bool: PgTypes.OID.bool,
  jsonb: PgTypes.OID.jsonb,
  "double precision": PgTypes.OID.float8
}

const sqlType: Record<ColumnType, string> = {
  text: "text[]",
  int: "int4[]",
  bigint: "int8[]",
  numeric: "numeric[]",
  date: "date[]",
  timestamptz: "timestamptz[]",
  bool: "bool[]",
  jsonb: "jsonb[]",
  "double precision": "float8[]"
}

/** Normalizes a value to what the binary codec of the column's type expects, or explains why not. */
const normalize = (type: ColumnType, value: unknown): unknown => {
  if (value === null || value === undefined) return null
  switch (type) {
    case "text":
      if (typeof value === "string") return value
      break
    case "int":
      if (typeof value === "number" && Number.isInteger(value)) return value
      break
    case "bigint":
      if (typeof value === "bigint") return value
      if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value)
      if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value)
      break
    case "numeric":
      if (typeof value === "string") return value
      if (typeof value === "number" && Number.isFinite(value)) return String(value)
      if (typeof value === "bigint") return value.toString()
      break
    case "date":
      if (typeof value === "string") return value
      break
    case "timestamptz":
      if (value instanceof Date || typeof value === "number") return value
      break
    case "bool":
      if (typeof value === "boolean") return value
      break
    case "jsonb":
      return value
    case "double precision":
      if (typeof value === "number") return value
      break
  }
  throw new TypeError(
    `expected a ${type} value, got ${typeof value === "string" ? JSON.stringify(value) : typeof value}`
  )
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
  validateTable(spec.table)
  validateColumn(spec.table, spec.partitionColumn)
  if (spec.columns.length === 0) throw new InvalidTableSpec({ table: spec.table, reason: "no columns" })
  for (const column of spec.columns) {
    validateColumn(spec.table, column.name)
    if (!Object.hasOwn(elementOid, column.type)) {
      throw new InvalidTableSpec({ table: spec.table, reason: `unsupported column type ${String(column.type)}` })
    }
  }
  if (!spec.columns.some((column) => column.name === spec.partitionColumn)) {
    throw new InvalidTableSpec({
      table: spec.table,
      reason: `partition column ${spec.partitionColumn} is not a column`
    })
  }
  const partitionIndex = spec.columns.findIndex((column) => column.name === spec.partitionColumn)
  const derived = spec.derived ?? []

  const prepare = (partition: Partition.PartitionDate) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`DELETE FROM ${sql(spec.table)} WHERE ${sql(spec.partitionColumn)} = ${PgTypes.date(partition)}`
    )
      .pipe(Effect.asVoid, mapSqlError(`delete partition of ${spec.table}`))

  /** One array per column; fails with a non-retryable SinkError naming the bad row and column. */
  const toColumns = (partition: Partition.PartitionDate, rows: ReadonlyArray<A>) =>
    Effect.try({
      try: () => {
        const arrays = spec.columns.map(() => Array.from<unknown>({ length: rows.length }))
        for (let r = 0; r < rows.length; r++) {
          const values = spec.toRow(rows[r] as A)
          if (values.length !== spec.columns.length) {
            throw new TypeError(`row ${r}: expected ${spec.columns.length} values, got ${values.length}`)
          }
          for (let c = 0; c < spec.columns.length; c++) {
            const column = spec.columns[c]!
            try {
              ;(arrays[c] as Array<unknown>)[r] = normalize(column.type, values[c])
            } catch (error) {
              throw new TypeError(`row ${r}, column ${column.name}: ${(error as Error).message}`, { cause: error })
            }
          }
          if (arrays[partitionIndex]![r] !== partition) {
            throw new TypeError(
              `row ${r}: ${spec.partitionColumn} is ${
                String(arrays[partitionIndex]?.[r])
              }, not the partition ${partition}`
            )
          }
        }
        return arrays
      },
      catch: (error) =>
        new SinkError.SinkError({
          operation: `insert into ${spec.table}`,
          message: error instanceof Error ? error.message : String(error),
          retryable: false,
          cause: error
        })
    })

  const write = (partition: Partition.PartitionDate, rows: ReadonlyArray<A>) => {
    if (rows.length === 0) return Effect.void
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const arrays = yield* toColumns(partition, rows)
      const unnestArgs = sql.csv(
        spec.columns.map((column, c) =>
          sql`${typedArray(arrays[c]!, elementOid[column.type])}::${sql.literal(sqlType[column.type])}`
        )
      )
      const columnList = sql.csv(spec.columns.map((column) => sql`${sql(column.name)}`))
      yield* sql`INSERT INTO ${sql(spec.table)} (${columnList}) SELECT * FROM unnest(${unnestArgs})`.pipe(
        mapSqlError(`insert into ${spec.table}`)
      )
    }).pipe(Effect.withSpan("PartitionReplace.write", { attributes: { table: spec.table, rows: rows.length } }))
  }

  const complete = (partition: Partition.PartitionDate) =>
    Effect.forEach(derived, (step) => step.run(partition), { discard: true })

  return {
    target: spec.table,
    prepare: (partition) =>
      Effect.forEach(derived, (step) => step.before === undefined ? Effect.void : step.before(partition), {
        discard: true
      }).pipe(Effect.andThen(prepare(partition)), Effect.withSpan("PartitionReplace.prepare")),
    write,
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
  validateTable(options.table)
  validateColumn(options.table, options.partitionColumn)
  for (const column of options.columns ?? []) validateColumn(options.table, column)
  const columns = options.columns
  return {
    target: options.table,
    run: (partition) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM ${sql(options.table)} WHERE ${sql(options.partitionColumn)} = ${PgTypes.date(partition)}`
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
