/**
 * What the PostgreSQL catalog says about a table: whether it exists, whether it is a versioned
 * table's view (and over which version), and its columns with their types, nullability, defaults
 * and whether a contract evolved them.
 *
 * @internal
 */
import { Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import type * as Table from "../Table.ts"

/** @internal The comment that marks a column added by a contract's `evolve` (not declared by a spec). */
export const evolvedMarker = "sluice:evolved"

/** @internal */
export interface ActualColumn {
  readonly name: string
  /** As `format_type` spells it, e.g. `timestamp with time zone`, `numeric(12,2)`. */
  readonly sqlType: string
  /** The Sluice column type, when the SQL type is one. */
  readonly type: Table.ColumnType | undefined
  readonly nullable: boolean
  readonly evolved: boolean
}

/** @internal */
export interface Relation {
  /** `table` or `schema.table`, as asked for. */
  readonly name: string
  /** A plain table, or a versioned table's view. */
  readonly kind: "table" | "view"
  /** The table holding the rows: the table itself, or the view's current version (`<table>_v<N>`). */
  readonly base: string
  /** The version of a view (N of `<table>_v<N>`); 1 for a plain table. */
  readonly version: number
  readonly columns: ReadonlyArray<ActualColumn>
}

const formatted: Record<Table.ColumnType, string> = {
  text: "text",
  int: "integer",
  bigint: "bigint",
  numeric: "numeric",
  date: "date",
  timestamptz: "timestamp with time zone",
  bool: "boolean",
  jsonb: "jsonb",
  "double precision": "double precision"
}

const byFormatted = new Map(Object.entries(formatted).map(([type, name]) => [name, type as Table.ColumnType]))

/** @internal The Sluice type of a SQL type as `format_type` spells it (`numeric(p,s)` is `numeric`). */
export const columnTypeOf = (sqlType: string): Table.ColumnType | undefined =>
  byFormatted.get(sqlType.startsWith("numeric(") ? "numeric" : sqlType)

/** @internal `"schema"."table"`: the form `to_regclass` resolves exactly as the driver quotes it. */
export const quoted = (table: string): string => table.split(".").map((part) => `"${part}"`).join(".")

/** @internal The schema of a `schema.table` name, or undefined. */
export const schemaOf = (table: string): string | undefined => {
  const dot = table.indexOf(".")
  return dot < 0 ? undefined : table.slice(0, dot)
}

/** @internal The unqualified name of a `schema.table` name. */
export const nameOf = (table: string): string => table.slice(table.indexOf(".") + 1)

/** @internal `<table>_v<N>`, in the table's schema. */
export const versionName = (table: string, version: number): string => `${table}_v${version}`

const versionPattern = /_v(\d+)$/

/** @internal */
export const columns = (
  sql: SqlClient.SqlClient,
  table: string
): Effect.Effect<ReadonlyArray<ActualColumn>, SqlError.SqlError> =>
  sql<{ readonly name: string; readonly sql_type: string; readonly nullable: boolean; readonly note: string | null }>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, NOT a.attnotnull AS nullable,
           col_description(a.attrelid, a.attnum) AS note
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass(${quoted(table)}) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`.pipe(
    Effect.map((rows) =>
      rows.map((row) => ({
        name: row.name,
        sqlType: row.sql_type,
        type: columnTypeOf(row.sql_type),
        nullable: row.nullable,
        evolved: row.note === evolvedMarker
      }))
    )
  )

/** @internal The views whose definition reads `table`. */
export const dependents = (
  sql: SqlClient.SqlClient,
  table: string
): Effect.Effect<ReadonlyArray<string>, SqlError.SqlError> =>
  sql<{ readonly name: string }>`
    SELECT DISTINCT v.oid::regclass::text AS name
    FROM pg_depend d
    JOIN pg_rewrite r ON r.oid = d.objid
    JOIN pg_class v ON v.oid = r.ev_class
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid = to_regclass(${quoted(table)}) AND r.ev_class <> d.refobjid
    ORDER BY 1`.pipe(Effect.map((rows) => rows.map((row) => row.name)))

/**
 * @internal Describes `table`: undefined when it does not exist. A view is described through the
 * table it reads, which must be one version `<table>_v<N>` in the same schema (a versioned table).
 */
export const describe = Effect.fnUntraced(function*(sql: SqlClient.SqlClient, table: string) {
  const found = yield* sql<{ readonly kind: string }>`
    SELECT c.relkind::text AS kind FROM pg_class c WHERE c.oid = to_regclass(${quoted(table)})`
  const kind = found[0]?.kind
  if (kind === undefined) return undefined
  if (kind === "v") {
    const bases = yield* sql<{ readonly schema: string; readonly name: string }>`
      SELECT DISTINCT n.nspname AS schema, t.relname AS name
      FROM pg_rewrite r
      JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
      JOIN pg_class t ON t.oid = d.refobjid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE r.ev_class = to_regclass(${quoted(table)})`
    const schema = schemaOf(table)
    const base = bases.length === 1 ? bases[0]! : undefined
    const match = base === undefined ? null : versionPattern.exec(base.name)
    if (
      base === undefined || match === null || base.name !== `${nameOf(table)}${match[0]}` ||
      (schema !== undefined && base.schema !== schema)
    ) {
      return { _tag: "NotVersioned" as const, name: table }
    }
    const baseName = schema === undefined ? base.name : `${schema}.${base.name}`
    return {
      _tag: "Found" as const,
      relation: {
        name: table,
        kind: "view",
        base: baseName,
        version: Number(match[1]),
        columns: yield* columns(sql, baseName)
      } satisfies Relation
    }
  }
  if (kind !== "r" && kind !== "p") return { _tag: "NotVersioned" as const, name: table }
  return {
    _tag: "Found" as const,
    relation: {
      name: table,
      kind: "table",
      base: table,
      version: 1,
      columns: yield* columns(sql, table)
    } satisfies Relation
  }
})
