/**
 * Additive table evolution: a table spec (columns with types, declared defaults, nullability, a
 * primary key) compared with the table in the database, and the table brought up to it by
 * additions only — `ALTER TABLE … ADD COLUMN … DEFAULT …`, so existing rows get the declared
 * default rather than NULL. Anything else — a dropped column, a renamed one, a changed type — is
 * refused with a {@link TableChangeRefused} naming each change: declare a new table version
 * instead (`VersionedTable`), which is created, backfilled and switched to atomically.
 *
 * **When to use**
 *
 * In a migration (`Migrations.run`) or at start-up, to evolve a table before loads; the
 * contract-governed sink (`TableContract`) runs the same {@link plan} inside the load transaction.
 *
 * **Details**
 *
 * The SQL is generated from the spec: identifiers are validated (`Table.validateColumns`) and quoted,
 * and a default is quoted by the server (`quote_literal`) and cast to the column's type. A column a
 * contract added (`evolve` of an undeclared field) is marked with a column comment; it may stay
 * undeclared. Any other column of the table that the spec does not declare is a drop, and is refused.
 *
 * **Gotchas**
 *
 * - `ADD COLUMN` takes an `ACCESS EXCLUSIVE` lock on the table until the transaction ends: in a
 *   load transaction that is the whole load. Evolve at start-up to keep loads and readers apart.
 * - Nullability of existing columns is not compared: only names and types are.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import * as Catalog from "./internal/catalog.ts"
import { needsEscaping } from "./internal/textEscape.ts"
import * as Table from "./Table.ts"

/**
 * A column of a table spec.
 *
 * @since 0.1.0
 * @category models
 */
export interface ColumnSpec extends Table.Column {
  /**
   * The declared default: what rows get when the column is added to a table that has rows, and
   * what a sink writes when a record has no value for it. `null` (or absent): no default.
   */
  readonly default?: unknown
  /** `true` by default. */
  readonly nullable?: boolean | undefined
  /**
   * The column's name in the previous version of the table. A rename is not additive: it is
   * refused by {@link evolve} and carried out by a new table version (`VersionedTable`).
   */
  readonly renamedFrom?: string | undefined
}

/**
 * A table spec.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec {
  /** `table` or `schema.table`. */
  readonly table: string
  readonly columns: ReadonlyArray<ColumnSpec>
  /** Used when the table is created. */
  readonly primaryKey?: ReadonlyArray<string> | undefined
}

/**
 * The kinds of change that are not additive.
 *
 * @since 0.1.0
 * @category models
 */
export const RefusedChange = Schema.Literals([
  "drop",
  "rename",
  "type_change",
  "not_null",
  "not_a_table",
  "older_version",
  "dependent_views",
  "lossy_cast",
  "backfill_failed",
  "missing_version",
  "version_exists"
])

/**
 * @since 0.1.0
 * @category models
 */
export type RefusedChange = typeof RefusedChange.Type

/**
 * A change of a table that is not additive (a drop, a rename, a type change, a new NOT NULL column
 * without default), refused: the table is left as it was. `VersionedTable` refuses with it too: a
 * switch to a version that does not exist (`missing_version`), a deploy of a version whose table
 * exists already (`version_exists`), an older version, a lossy cast, a failed backfill…
 *
 * @since 0.1.0
 * @category errors
 */
export class TableChangeRefused
  extends Schema.TaggedError<TableChangeRefused>("@sluice/sql/TableEvolution/TableChangeRefused")(
    "TableChangeRefused",
    {
      table: Schema.String,
      changes: Schema.Array(Schema.Struct({
        column: Schema.String,
        change: RefusedChange,
        detail: Schema.String,
        /** For a `lossy_cast`: the column's type in the current version (as the server spells it). */
        from: Schema.optionalKey(Schema.String),
        /** For a `lossy_cast`: its type in the new version. */
        to: Schema.optionalKey(Schema.String)
      }))
    }
  )
{
  override get message(): string {
    const additive = this.changes.some((c) => notAdditive.has(c.change))
    return `${this.table}: ${
      this.changes.map((c) => `${c.change.replace("_", " ")} of ${c.column} (${c.detail})`).join("; ")
    }${additive ? " — not additive; declare a new table version instead" : ""}`
  }
}

/** The changes a new table version makes possible (the others are refusals of a deploy itself). */
const notAdditive: ReadonlySet<RefusedChange> = new Set(["drop", "rename", "type_change", "not_null"])

/** The text of a value of `type`, for `quote_literal(…)::type`; undefined if the value does not fit. */
const literalText = (type: Table.ColumnType, value: unknown): string | undefined => {
  switch (type) {
    case "text":
      return typeof value === "string" && !needsEscaping(value) ? value : undefined
    case "int":
      return typeof value === "number" && Number.isInteger(value) && Math.abs(value) <= 2_147_483_647
        ? String(value)
        : undefined
    case "bigint":
      return typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value))
        ? String(value)
        : undefined
    case "numeric":
      return typeof value === "number" && Number.isFinite(value)
        ? String(value)
        : typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value)
        ? value
        : undefined
    case "double precision":
      return typeof value === "number" ? String(value) : undefined
    case "bool":
      return typeof value === "boolean" ? String(value) : undefined
    case "date":
      return typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : undefined
    case "timestamptz":
      return value instanceof Date
        ? value.toISOString()
        : typeof value === "number" && Number.isFinite(value)
        ? new Date(value).toISOString()
        : undefined
    case "jsonb": {
      const text = JSON.stringify(value)
      return text === undefined || needsEscaping(text) ? undefined : text
    }
  }
}

const hasDefault = (column: ColumnSpec): boolean => column.default !== undefined && column.default !== null

/**
 * Validates a spec; throws `Table.InvalidTableSpec` (a programming error, raised when a sink or a
 * version is defined): identifiers, types, defaults that fit their type, a primary key of columns.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (spec: Spec): void => {
  Table.validateColumns(spec.table, spec.columns)
  for (const column of spec.columns) {
    if (hasDefault(column) && literalText(column.type, column.default) === undefined) {
      throw new Table.InvalidTableSpec({
        table: spec.table,
        reason: `the default of ${column.name} is not a ${column.type} value`
      })
    }
    if (column.renamedFrom !== undefined) Table.validateColumn(spec.table, column.renamedFrom)
  }
  for (const key of spec.primaryKey ?? []) Table.requireColumn(spec.table, spec.columns, key, "primary key column")
}

/**
 * A column as the database has it (see {@link describe}).
 *
 * @since 0.1.0
 * @category models
 */
export type ActualColumn = Catalog.ActualColumn

/**
 * What bringing a table up to a spec takes: the columns to add, and the changes refused.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly additions: ReadonlyArray<ColumnSpec>
  readonly refused: ReadonlyArray<TableChangeRefused["changes"][number]>
}

/**
 * Compares a spec with a table's actual columns. Pure.
 *
 * - a declared column the table lacks: an addition (refused when NOT NULL without a default);
 * - a declared column of another type: a type change (refused);
 * - a declared `renamedFrom` column the table still has under its old name: a rename (refused);
 * - a column of the table the spec does not declare, unless a contract evolved it: a drop (refused).
 *
 * @example
 * ```ts
 * import { TableEvolution } from "@sluice/sql"
 *
 * const plan = TableEvolution.plan(
 *   { table: "raw.orders", columns: [{ name: "id", type: "text" }, { name: "points", type: "int", default: 0 }] },
 *   [{ name: "id", sqlType: "text", type: "text", nullable: false, evolved: false }]
 * )
 * plan.additions.map((c) => c.name) // ["points"]
 * plan.refused // []
 * ```
 *
 * @since 0.1.0
 * @category planning
 */
export const plan = (spec: Spec, actual: ReadonlyArray<ActualColumn>): Plan => {
  const byName = new Map(actual.map((column) => [column.name, column]))
  const declared = new Set(spec.columns.map((column) => column.name))
  const additions: Array<ColumnSpec> = []
  const refused: Array<Plan["refused"][number]> = []
  const renamedAway = new Set<string>()
  for (const column of spec.columns) {
    const existing = byName.get(column.name)
    if (existing === undefined) {
      if (column.renamedFrom !== undefined && byName.has(column.renamedFrom)) {
        renamedAway.add(column.renamedFrom)
        refused.push({ column: column.name, change: "rename", detail: `from ${column.renamedFrom}` })
      } else if (column.nullable === false && !hasDefault(column)) {
        refused.push({ column: column.name, change: "not_null", detail: "a new NOT NULL column needs a default" })
      } else {
        additions.push(column)
      }
    } else if (existing.type !== column.type) {
      refused.push({
        column: column.name,
        change: "type_change",
        detail: `${existing.sqlType} to ${Table.sqlTypeOf(column.type)}`
      })
    }
  }
  for (const column of actual) {
    if (!declared.has(column.name) && !column.evolved && !renamedAway.has(column.name)) {
      refused.push({ column: column.name, change: "drop", detail: "the spec no longer declares it" })
    }
  }
  return { additions, refused }
}

/**
 * The table as the database has it: a plain table, or a versioned table's view (described through
 * its current version); `undefined` when it does not exist.
 *
 * @since 0.1.0
 * @category catalog
 */
export const describe = Effect.fnUntraced(function*(
  table: string
): Effect.fn.Return<Catalog.Relation | undefined, TableChangeRefused | SqlError.SqlError, SqlClient.SqlClient> {
  Table.validateTable(table)
  const sql = yield* SqlClient.SqlClient
  const found = yield* Catalog.describe(sql, table)
  if (found === undefined) return undefined
  if (found._tag === "NotVersioned") {
    return yield* new TableChangeRefused({
      table,
      changes: [{
        column: "*",
        change: "not_a_table",
        detail: "a relation that is neither a table nor a versioned table"
      }]
    })
  }
  return found.relation
})

/** ` c type [NOT NULL] [DEFAULT 'x'::type]`, the default quoted by the server. */
const columnDefinition = Effect.fnUntraced(function*(sql: SqlClient.SqlClient, column: ColumnSpec) {
  const type = sql.literal(Table.sqlTypeOf(column.type))
  const notNull = column.nullable === false ? sql.literal(" NOT NULL") : sql.literal("")
  if (!hasDefault(column)) return sql`${sql(column.name)} ${type}${notNull}`
  const [row] = yield* sql<{ readonly literal: string }>`SELECT quote_literal(${literalText(
    column.type,
    column.default
  )!}::text) AS literal`
  return sql`${sql(column.name)} ${type}${notNull} DEFAULT ${sql.literal(row!.literal)}::${type}`
})

/**
 * Adds columns to a described table (its current version, for a versioned table, whose view then
 * shows them too). `evolved` marks them as added by a contract rather than declared.
 *
 * @since 0.1.0
 * @category evolution
 */
export const addColumns = Effect.fnUntraced(function*(
  relation: Catalog.Relation,
  columns: ReadonlyArray<ColumnSpec>,
  options: { readonly evolved: boolean }
): Effect.fn.Return<void, SqlError.SqlError, SqlClient.SqlClient> {
  if (columns.length === 0) return
  const sql = yield* SqlClient.SqlClient
  for (const column of columns) {
    const definition = yield* columnDefinition(sql, column)
    yield* sql`ALTER TABLE ${sql(relation.base)} ADD COLUMN IF NOT EXISTS ${definition}`
    if (options.evolved) {
      yield* sql`COMMENT ON COLUMN ${sql(`${relation.base}.${column.name}`)} IS ${
        sql.literal(`'${Catalog.evolvedMarker}'`)
      }`
    }
  }
  if (relation.kind === "view") {
    const all = yield* Catalog.columns(sql, relation.base)
    yield* sql`CREATE OR REPLACE VIEW ${sql(relation.name)} AS SELECT ${
      Table.columnList(sql, all.map((column) => column.name))
    } FROM ${sql(relation.base)}`
  }
})

/**
 * Creates a table from its spec (columns, NOT NULL, defaults, primary key). Fails if it exists.
 *
 * @since 0.1.0
 * @category evolution
 */
export const create = Effect.fnUntraced(function*(
  spec: Spec
): Effect.fn.Return<void, SqlError.SqlError, SqlClient.SqlClient> {
  validate(spec)
  const sql = yield* SqlClient.SqlClient
  const schema = Catalog.schemaOf(spec.table)
  if (schema !== undefined) yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
  const definitions = []
  for (const column of spec.columns) definitions.push(yield* columnDefinition(sql, column))
  if (spec.primaryKey !== undefined && spec.primaryKey.length > 0) {
    definitions.push(sql`PRIMARY KEY (${Table.columnList(sql, spec.primaryKey)})`)
  }
  yield* sql`CREATE TABLE ${sql(spec.table)} (${sql.csv(definitions)})`
})

/**
 * Brings a table up to its spec by additions only, in one transaction (a savepoint inside one):
 * creates it when it does not exist, adds the columns it lacks with their declared defaults, and
 * refuses — changing nothing — when the spec drops, renames or retypes a column. Returns the names
 * of the columns added. Idempotent.
 *
 * @example
 * ```ts
 * import { TableEvolution } from "@sluice/sql"
 *
 * // in a migration: existing orders get currency 'USD' and loyalty_points NULL
 * const migration = TableEvolution.evolve({
 *   table: "raw.orders",
 *   columns: [
 *     { name: "order_id", type: "text", nullable: false },
 *     { name: "currency", type: "text", default: "USD" },
 *     { name: "loyalty_points", type: "int" }
 *   ]
 * })
 * ```
 *
 * @since 0.1.0
 * @category evolution
 */
export const evolve = Effect.fn("TableEvolution.evolve")(function*(
  spec: Spec
): Effect.fn.Return<ReadonlyArray<string>, TableChangeRefused | SqlError.SqlError, SqlClient.SqlClient> {
  validate(spec)
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    const relation = yield* describe(spec.table)
    if (relation === undefined) {
      yield* create(spec)
      return []
    }
    const { additions, refused } = plan(spec, relation.columns)
    if (refused.length > 0) return yield* new TableChangeRefused({ table: spec.table, changes: refused })
    yield* addColumns(relation, additions, { evolved: false })
    return additions.map((column) => column.name)
  }))
})
