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
import { Effect, Result, Schema } from "effect"
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
export type ColumnType = (typeof columnTypes)[number]

/**
 * Every {@link ColumnType}.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/sql"
 *
 * Table.columnTypes.includes("numeric") // true
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const columnTypes = [
  "text",
  "int",
  "bigint",
  "numeric",
  "date",
  "timestamptz",
  "bool",
  "jsonb",
  "double precision"
] as const

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

/** The system columns of every PostgreSQL table: a user column cannot take their names. */
const systemColumns: ReadonlySet<string> = new Set(["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"])

/**
 * Why `name` cannot be the name of a new column, or `undefined` if it can: a column name is a
 * plain SQL name (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters — PostgreSQL truncates longer
 * identifiers, so two long names could become one column) and not the name of a system column.
 * Names are always quoted, so case is kept: `Amount` and `amount` are two columns.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/sql"
 *
 * Table.columnNameProblem("order_id") // undefined
 * Table.columnNameProblem("order id") // "it is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*)"
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const columnNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "it is empty"
  if (name.length > 63 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    return `it is ${name.length} characters long, and PostgreSQL truncates identifiers at 63`
  }
  if (!identifierPattern.test(name)) return "it is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*)"
  if (systemColumns.has(name)) return "it is the name of a PostgreSQL system column"
  return undefined
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

const INT4_MIN = -2147483648
const INT4_MAX = 2147483647
const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n
/** PostgreSQL's `numeric`: at most 131,072 digits before the point, 16,383 after (and, bound in binary, in all). */
const NUMERIC_MAX_INTEGER_DIGITS = 131072
const NUMERIC_MAX_SCALE = 16383
const NUMERIC_MAX_EXPONENT = 1000
/** The decimal strings the binary `numeric` codec reads (no spaces; an exponent is fine). */
const numericPattern = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const int8Pattern = /^-?\d+$/
/** `timestamptz` bounds in epoch milliseconds: PostgreSQL's first instant (4713-11-24 BC), JavaScript's last. */
const TIMESTAMP_MIN_MS = -210866803200000
const TIMESTAMP_MAX_MS = 8.64e15

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
const monthLengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Why a decimal string is not a `numeric` PostgreSQL stores, or `undefined`. */
/**
 * Is `text` a plain decimal of at most 1,000 characters (`-12.50`, `+3`, `.5`): an optional sign,
 * digits and at most one point, no exponent? Such a value always fits a `numeric`: the fast path of
 * {@link unstorableNumeric}, which every amount of a load takes (no regular expression, no
 * allocation).
 */
const isPlainDecimal = (text: string): boolean => {
  const length = text.length
  if (length === 0 || length > 1000) return false
  const first = text.charCodeAt(0)
  let i = first === 45 || first === 43 ? 1 : 0
  let digits = 0
  let point = false
  for (; i < length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) digits++
    else if (c === 46 && !point) point = true
    else return false
  }
  return digits > 0
}

/**
 * Is `text` an integer of 1 to 18 digits, with an optional `-`? It always fits a `bigint` (2^63 has
 * 19 digits): the fast path of a `bigint` given as text, no regular expression, no `BigInt`.
 */
const isShortInteger = (text: string): boolean => {
  const from = text.charCodeAt(0) === 45 ? 1 : 0
  return text.length > from && text.length - from <= 18 && digitsAt(text, from, text.length) >= 0
}

/** The number written by the decimal digits of `text` from `from` to `to`, or -1 if one is not a digit. */
const digitsAt = (text: string, from: number, to: number): number => {
  let n = 0
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

const unstorableNumeric = (text: string): string | undefined => {
  if (isPlainDecimal(text)) return undefined
  if (text === "NaN" || text === "Infinity" || text === "-Infinity") return "not a finite number"
  const match = numericPattern.exec(text)
  const integer = match?.[2] ?? ""
  const fraction = match?.[3] ?? ""
  if (match === null || integer + fraction === "") return "not a decimal number"
  // PostgreSQL's text input (COPY) takes exponents up to ±1000 (its NUMERIC_MAX_PRECISION)
  const exponentText = match[4] ?? "0"
  if (exponentText.replace(/^[+-]?0*/, "").length > 4 || Math.abs(Number(exponentText)) > NUMERIC_MAX_EXPONENT) {
    return `an exponent beyond ±${NUMERIC_MAX_EXPONENT}`
  }
  const exponent = Number(exponentText)
  const scale = fraction.length - exponent
  if (scale > NUMERIC_MAX_SCALE) return `more than ${NUMERIC_MAX_SCALE} digits after the decimal point`
  const digits = integer + fraction
  let first = 0
  while (first < digits.length && digits.charCodeAt(first) === 48) first++
  const significant = digits.length - first
  if (significant === 0) return undefined
  const integerDigits = significant - scale
  if (integerDigits > NUMERIC_MAX_INTEGER_DIGITS) {
    return `more than ${NUMERIC_MAX_INTEGER_DIGITS} digits before the decimal point`
  }
  if (integerDigits + Math.max(scale, 0) > NUMERIC_MAX_INTEGER_DIGITS) {
    return `more than ${NUMERIC_MAX_INTEGER_DIGITS} digits`
  }
  return undefined
}

/** Why a string is not a `date` PostgreSQL stores, or `undefined`: a valid `YYYY-MM-DD` (or `±infinity`). */
const unstorableDate = (text: string): string | undefined => {
  if (text === "infinity" || text === "-infinity") return undefined
  if (text.length !== 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return "not a YYYY-MM-DD date"
  const year = digitsAt(text, 0, 4)
  const month = digitsAt(text, 5, 7)
  const day = digitsAt(text, 8, 10)
  if (year < 0 || month < 0 || day < 0) return "not a YYYY-MM-DD date"
  if (year === 0 || month < 1 || month > 12) return "not a valid date"
  const length = month === 2 && isLeapYear(year) ? 29 : monthLengths[month - 1]!
  return day >= 1 && day <= length ? undefined : "not a valid date"
}

/** Why an integer is out of its column's range, or `undefined` (also for a value of the wrong kind). */
const unstorableInteger = (value: unknown, type: "int" | "bigint"): string | undefined => {
  if (type === "int") {
    if (typeof value !== "number" || !Number.isInteger(value)) return undefined
    return value >= INT4_MIN && value <= INT4_MAX ? undefined : "out of the range of int (-2^31 to 2^31-1)"
  }
  let n: bigint
  if (typeof value === "bigint") n = value
  else if (typeof value === "number") {
    if (!Number.isInteger(value)) return undefined
    if (!Number.isSafeInteger(value)) return "an integer beyond 2^53, not exact as a number"
    n = BigInt(value)
  } else if (typeof value === "string" && int8Pattern.test(value)) {
    // more than 19 digits is out of range: no need to parse a long string
    if (value.replace(/^-?0*/, "").length > 19) return "out of the range of bigint (-2^63 to 2^63-1)"
    n = BigInt(value)
  } else return undefined
  return n >= INT8_MIN && n <= INT8_MAX ? undefined : "out of the range of bigint (-2^63 to 2^63-1)"
}

/**
 * Why PostgreSQL cannot store `value` in a column of `type`, or `undefined` when it can: a value
 * of the wrong kind, an integer out of `int`/`bigint` range, a `numeric` that is `NaN`, infinite,
 * not a decimal string or has too many digits, a `date` that is not a valid `YYYY-MM-DD`, an
 * invalid or out-of-range `timestamptz`, a `jsonb` value with no JSON form. (Text PostgreSQL
 * cannot store exactly, a NUL or a lone surrogate, is {@link storable}'s `storable_text`.)
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/sql"
 *
 * Table.unstorable("int", 3e10) // "out of the range of int (-2^31 to 2^31-1)"
 * Table.unstorable("date", "2024-02-30") // "not a valid date"
 * Table.unstorable("numeric", "19.99") // undefined
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const unstorable = (type: ColumnType, value: unknown): string | undefined => {
  if (value === null || value === undefined) return undefined
  switch (type) {
    case "int":
    case "bigint":
      if (type === "bigint" && typeof value === "string" && isShortInteger(value)) return undefined
      return unstorableInteger(value, type) ?? wrongKind(type, value)
    case "numeric":
      if (typeof value === "number" && !Number.isFinite(value)) return "not a finite number"
      return wrongKind(type, value) ?? (typeof value === "string" ? unstorableNumeric(value) : undefined)
    case "date":
      return wrongKind(type, value) ?? unstorableDate(value as string)
    case "timestamptz": {
      const kind = wrongKind(type, value)
      if (kind !== undefined) return kind
      const ms = value instanceof Date ? value.getTime() : (value as number)
      if (Number.isNaN(ms)) return "not a valid timestamp"
      if (ms === Infinity || ms === -Infinity) return undefined
      return ms >= TIMESTAMP_MIN_MS && ms <= TIMESTAMP_MAX_MS ? undefined : "out of the range of timestamptz"
    }
    case "jsonb":
      return jsonProblem(value, 0)
    default:
      return wrongKind(type, value)
  }
}

/** Does {@link normalize} take the value (without throwing)? */
const accepts: Record<ColumnType, (value: unknown) => boolean> = {
  text: (value) => typeof value === "string",
  int: (value) => typeof value === "number" && Number.isInteger(value),
  bigint: (value) =>
    typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value)) ||
    (typeof value === "string" && int8Pattern.test(value)),
  numeric: (value) =>
    typeof value === "string" || (typeof value === "number" && Number.isFinite(value)) || typeof value === "bigint",
  date: (value) => typeof value === "string",
  timestamptz: (value) => value instanceof Date || typeof value === "number",
  bool: (value) => typeof value === "boolean",
  jsonb: () => true,
  "double precision": (value) => typeof value === "number"
}

const wrongKind = (type: ColumnType, value: unknown): string | undefined =>
  accepts[type](value) ? undefined : `not a value of type ${type} (a ${kindOf(value)})`

const kindOf = (value: unknown): string =>
  value instanceof Date ? "Date" : Array.isArray(value) ? "array" : typeof value

/** A value with no JSON form (a bigint, a function, a symbol, a cycle too deep), if any. */
const jsonProblem = (value: unknown, depth: number): string | undefined => {
  if (depth > 256) return "nested too deeply (or circular) for JSON"
  switch (typeof value) {
    case "bigint":
    case "function":
    case "symbol":
      return `no JSON form (holds a ${typeof value})`
    case "object": {
      if (value === null || value instanceof Date) return undefined
      if (Array.isArray(value)) {
        for (const item of value) {
          const found = jsonProblem(item, depth + 1)
          if (found !== undefined) return found
        }
        return undefined
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") return undefined
      for (const item of Object.values(value)) {
        const found = jsonProblem(item, depth + 1)
        if (found !== undefined) return found
      }
      return undefined
    }
    default:
      return undefined
  }
}

/** A short rendering of a bad value for a message: long strings are cut, with their length. */
const preview = (value: unknown): string => {
  const text = value instanceof Date
    ? `Date(${Number.isNaN(value.getTime()) ? "invalid" : value.toISOString()})`
    : typeof value === "string"
    ? JSON.stringify(value)
    : typeof value === "bigint"
    ? `${value}n`
    : typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : Result.getOrElse(Result.try(() => JSON.stringify(value) ?? typeof value), () => typeof value)
  return text.length <= 60 ? text : `${text.slice(0, 40)}… (${text.length} characters)`
}

/**
 * The values every load writes, known storable without {@link unstorable}'s general path: a
 * column's own test, chosen once per column (no switch, no `BigInt`, no regular expression per
 * value). `false` only means "ask {@link unstorable}", and for text, look for a NUL or a lone
 * surrogate. `true` must imply both find nothing: a property test holds them to it.
 */
const plainlyStorable: Record<ColumnType, (value: unknown) => boolean> = {
  text: (value) => typeof value === "string" && !needsEscaping(value),
  jsonb: () => false,
  int: (value) => typeof value === "number" && Number.isInteger(value) && value >= INT4_MIN && value <= INT4_MAX,
  bigint: (value) =>
    typeof value === "number" ? Number.isSafeInteger(value) : typeof value === "string" && isShortInteger(value),
  numeric: (value) =>
    typeof value === "string" ? isPlainDecimal(value) : typeof value === "number" && Number.isFinite(value),
  date: (value) => typeof value === "string" && value.length === 10 && unstorableDate(value) === undefined,
  timestamptz: () => false,
  bool: (value) => typeof value === "boolean",
  "double precision": (value) => typeof value === "number"
}

/**
 * A record check (see core's `Sink.check`) that dead-letters a record with a value its column
 * cannot hold, so that one bad record never fails the whole load (stage `load`, with loaded +
 * dead-lettered = read still true):
 *
 * - `RuleViolation storable_value`: a value PostgreSQL would refuse ({@link unstorable}): an
 *   integer out of `int`/`bigint` range, a `numeric` that is `NaN`/infinite or has too many digits,
 *   a `date` that is not a valid `YYYY-MM-DD`, an invalid `timestamptz`, a value of the wrong kind;
 *   the message names the column and the value;
 * - `RuleViolation storable_text`: `text` or `jsonb` values PostgreSQL cannot store exactly: a NUL
 *   character (rejected by PostgreSQL) or a lone UTF-16 surrogate (it has no UTF-8 form and would
 *   be silently replaced by U+FFFD).
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
  const plain = columns.map((column) => plainlyStorable[column.type])
  const width = columns.length
  return (record) => {
    const values = toRow(record)
    for (let i = 0; i < width; i++) {
      const value = values[i]
      if (value === null || value === undefined || plain[i]!(value)) continue
      const column = columns[i]!
      const problem = unstorable(column.type, value)
      if (problem !== undefined) {
        return new RecordError.RecordError({
          reason: new RecordError.RuleViolation({
            rule: "storable_value",
            message: `${column.name} = ${preview(value)} is ${problem}: ${table} cannot store it in its ${
              sqlTypeOf(column.type)
            } column`
          })
        })
      }
      if (column.type !== "text" && column.type !== "jsonb") continue
      const bad = column.type === "text"
        ? (typeof value === "string" && needsEscaping(value) ? value : undefined)
        : unstorableInJson(value)
      if (bad !== undefined) {
        return new RecordError.RecordError({
          reason: new RecordError.RuleViolation({
            rule: "storable_text",
            message: `${column.name} holds ${
              bad.includes("\u0000") ? "a NUL character" : "a lone UTF-16 surrogate"
            }, which ${table} cannot store exactly`
          })
        })
      }
    }
    return undefined
  }
}
