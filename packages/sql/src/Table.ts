/**
 * What every write strategy shares: the column types of a table spec, the validation of its
 * identifiers, and the batch insert through `unnest` of typed arrays.
 *
 * **Details**
 *
 * A batch is bound as one typed array parameter per column (`$1::text[]`, `$2::numeric[]`, …),
 * in binary, whatever the batch size: PostgreSQL caps a statement at 65,535 parameters, which a
 * multi-row `VALUES` reaches at a few thousand rows. Table and column names are validated when a
 * strategy is made and quoted by the driver; values are always parameters.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { RecordError, SinkError } from "@sluice/core"
import { Effect, Schema } from "effect"
import type { SqlClient, Statement } from "effect/sql"
import { needsEscaping } from "./internal/textEscape.ts"
import { typedArray } from "./internal/typedArray.ts"

/**
 * The column types a Sluice-written table may use.
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

export const validateTable = (table: string): void => {
  const parts = table.split(".")
  if (parts.length > 2 || !parts.every((part) => identifierPattern.test(part))) {
    throw new InvalidTableSpec({ table, reason: "expected `table` or `schema.table` made of [A-Za-z0-9_]" })
  }
}

export const validateColumn = (table: string, column: string): void => {
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
 * Validates a table name and its columns; throws {@link InvalidTableSpec} (a programming error,
 * raised when a strategy is made).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateColumns = (table: string, columns: ReadonlyArray<Column>): void => {
  validateTable(table)
  if (columns.length === 0) throw new InvalidTableSpec({ table, reason: "no columns" })
  const seen = new Set<string>()
  for (const column of columns) {
    validateColumn(table, column.name)
    if (!Object.hasOwn(elementOid, column.type)) {
      throw new InvalidTableSpec({ table, reason: `unsupported column type ${String(column.type)}` })
    }
    if (seen.has(column.name)) throw new InvalidTableSpec({ table, reason: `duplicate column ${column.name}` })
    seen.add(column.name)
  }
}

/**
 * Requires `name` to be one of `columns`; returns its index.
 *
 * @since 0.1.0
 * @category validation
 */
export const requireColumn = (table: string, columns: ReadonlyArray<Column>, name: string, role: string): number => {
  validateColumn(table, name)
  const index = columns.findIndex((column) => column.name === name)
  if (index < 0) throw new InvalidTableSpec({ table, reason: `${role} ${name} is not a column` })
  return index
}

/**
 * Turns rows into one array per column, normalizing every value to its column's type. Fails with
 * a non-retryable `SinkError` naming the bad row and column.
 *
 * @since 0.1.0
 * @category batches
 */
export const toColumnArrays = <A>(options: {
  readonly table: string
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<A>
  readonly toRow: (row: A) => ReadonlyArray<unknown>
}): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SinkError.SinkError> =>
  Effect.try({
    try: () => {
      const { columns, rows } = options
      const arrays = columns.map(() => Array.from<unknown>({ length: rows.length }))
      for (let r = 0; r < rows.length; r++) {
        const values = options.toRow(rows[r] as A)
        if (values.length !== columns.length) {
          throw new TypeError(`row ${r}: expected ${columns.length} values, got ${values.length}`)
        }
        for (let c = 0; c < columns.length; c++) {
          const column = columns[c]!
          try {
            ;(arrays[c] as Array<unknown>)[r] = normalize(column.type, values[c])
          } catch (error) {
            throw new TypeError(`row ${r}, column ${column.name}: ${(error as Error).message}`, { cause: error })
          }
        }
      }
      return arrays
    },
    catch: (error) =>
      new SinkError.SinkError({
        operation: `insert into ${options.table}`,
        message: error instanceof Error ? error.message : String(error),
        retryable: false,
        cause: error
      })
  })

/**
 * `SELECT * FROM unnest($1::t1[], $2::t2[], …)`: the rows of a batch as a relation, one typed
 * array parameter per column (see {@link toColumnArrays}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Table } from "@sluice/sql"
 *
 * const columns: ReadonlyArray<Table.Column> = [{ name: "id", type: "text" }, { name: "n", type: "int" }]
 * const insert = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const arrays = yield* Table.toColumnArrays({ table: "t", columns, rows: [["a", 1]], toRow: (r) => r })
 *   yield* sql`INSERT INTO t (id, n) ${Table.unnest(sql, columns, arrays)}`
 * })
 * ```
 *
 * @since 0.1.0
 * @category batches
 */
export const unnest = (
  sql: SqlClient.SqlClient,
  columns: ReadonlyArray<Column>,
  arrays: ReadonlyArray<ReadonlyArray<unknown>>
): Statement.Fragment =>
  sql`SELECT * FROM unnest(${
    sql.csv(
      columns.map((column, c) =>
        sql`${typedArray(arrays[c]!, elementOid[column.type])}::${sql.literal(sqlType[column.type])}`
      )
    )
  })`

/**
 * A comma-separated, quoted list of column names.
 *
 * @since 0.1.0
 * @category batches
 */
export const columnList = (sql: SqlClient.SqlClient, names: ReadonlyArray<string>): Statement.Fragment =>
  sql.csv(names.map((name) => sql`${sql(name)}`))

/**
 * The SQL type of a column, e.g. `numeric` (for casts and `CREATE TABLE`).
 *
 * @since 0.1.0
 * @category models
 */
export const sqlTypeOf = (type: ColumnType): string => sqlType[type].slice(0, -2)

/**
 * A date parameter (a partition).
 *
 * @since 0.1.0
 * @category batches
 */
export const date = (value: string): PgTypes.Parameter => PgTypes.date(value)

/** The first string in a JSON value (keys included) that PostgreSQL cannot store, if any. */
const unstorableInJson = (value: unknown, depth = 0): string | undefined => {
  if (typeof value === "string") return needsEscaping(value) ? value : undefined
  if (depth > 64 || value === null || typeof value !== "object") return undefined
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = unstorableInJson(item, depth + 1)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const [key, item] of Object.entries(value)) {
    if (needsEscaping(key)) return key
    const found = unstorableInJson(item, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * A record check (see core's `Sink.check`) that dead-letters a record whose `text` or `jsonb`
 * values PostgreSQL cannot store exactly: a NUL character (rejected by PostgreSQL) or a lone UTF-16
 * surrogate (it has no UTF-8 form and would be silently replaced by U+FFFD). Without it, one such
 * record would fail the whole load, or be stored altered.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/sql"
 *
 * const check = Table.storable("raw.notes", [{ name: "note", type: "text" }], (n: { note: string }) => [n.note])
 * check({ note: "a\u0000b" })?.errorType // "RuleViolation"
 * check({ note: "fine" }) // undefined
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const storable = <A>(
  table: string,
  columns: ReadonlyArray<Column>,
  toRow: (row: A) => ReadonlyArray<unknown>
): (record: A) => RecordError.RecordError | undefined => {
  const indexes = columns.flatMap((column, i) => column.type === "text" || column.type === "jsonb" ? [i] : [])
  if (indexes.length === 0) return () => undefined
  return (record) => {
    const values = toRow(record)
    for (const i of indexes) {
      const value = values[i]
      const bad = columns[i]!.type === "text"
        ? (typeof value === "string" && needsEscaping(value) ? value : undefined)
        : unstorableInJson(value)
      if (bad !== undefined) {
        return new RecordError.RecordError({
          reason: new RecordError.RuleViolation({
            rule: "storable_text",
            message: `${columns[i]!.name} holds ${
              bad.includes("\u0000") ? "a NUL character" : "a lone UTF-16 surrogate"
            }, which ${table} cannot store exactly`
          })
        })
      }
    }
    return undefined
  }
}
