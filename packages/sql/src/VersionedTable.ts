/**
 * Versioned tables: the way to make a change that is not additive (drop, rename or retype a
 * column). Version N of table `t` is the table `t_vN`; `t` itself is a view over the current
 * version. {@link deploy} of a new version creates `t_vN`, backfills it from the current version
 * and switches the view to it — all in one transaction, so readers of `t` see the old version or
 * the new one, never a missing `t` nor a half-filled one.
 *
 * **Details**
 *
 * - A plain table `t` is version 1: the first deploy of a later version renames it `t_v1` and
 *   creates the view `t` in the same transaction.
 * - The backfill is generated from the spec: each column of the new version is filled from the
 *   column of the previous version named by its `renamedFrom`, else from the column of the same
 *   name, cast to its type (`old::new_type`); a column without a source gets its declared default.
 *   A value that does not cast (e.g. `'abc'::int`) fails the deploy with a `backfill_failed`
 *   refusal carrying the server's message, and nothing changes.
 * - A cast that can lose data — `numeric` to `int`/`bigint` (fractions are rounded),
 *   `bigint` to `int`, a number to `bool`, `bigint`/`numeric` to `double precision`, a
 *   timestamp to `date`… (see {@link lossOf}) — is refused as `lossy_cast`, naming the column and
 *   both types, unless the version lists the column in `allowLossy`.
 * - Deploying the current version again only evolves it additively (`TableEvolution.plan`);
 *   deploying an older one is refused (`older_version`), and so is deploying a newer one whose
 *   table exists already, e.g. after a switch back (`version_exists`, naming what differs).
 * - {@link switchTo} a version whose table does not exist is refused (`missing_version`).
 * - Concurrent deploys of one table serialize on a transaction-level advisory lock.
 *
 * **Readers during the switch**
 *
 * The switch takes an `ACCESS EXCLUSIVE` lock on `t` (the rename, or the `DROP VIEW`): it waits
 * for queries already reading `t`, and queries arriving meanwhile wait for the commit — then
 * PostgreSQL resolves the name `t` again and they read the new version. On PGlite (one session)
 * the switch's transaction holds the only connection: other queries run before or after it.
 *
 * **Gotchas**
 *
 * - `TableContract` sinks write the current version's table itself. A view over one table is
 *   updatable, so `INSERT` and `DELETE` through `t` reach the current version too, but `COPY`
 *   cannot target a view: point other bulk loads at {@link current}'s relation.
 * - Old versions are kept (for audit, or to go back by hand); drop them when no longer needed.
 * - Views reading `t` would silently keep reading the old version: a deploy is refused while any exist.
 * - Secondary indexes are created from `indexes`; those of the old version are not copied.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import * as Catalog from "./internal/catalog.ts"
import { describe as describeSqlError, isUnavailable } from "./internal/sinkError.ts"
import * as Table from "./Table.ts"
import * as TableEvolution from "./TableEvolution.ts"

/**
 * A version of a table.
 *
 * @since 0.1.0
 * @category models
 */
export interface Version extends TableEvolution.Spec {
  /** 1, 2, …; the table of version N is `<table>_v<N>`. */
  readonly version: number
  /** Secondary indexes of the version's table, each a list of columns. */
  readonly indexes?: ReadonlyArray<ReadonlyArray<string>> | undefined
  /**
   * Columns (by their name in this version) whose cast from the previous version may lose data
   * (see {@link lossOf}), and is wanted anyway. Without it such a deploy is refused (`lossy_cast`).
   */
  readonly allowLossy?: ReadonlyArray<string> | undefined
}

/**
 * What a deploy did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Deployed {
  readonly table: string
  /** The version before the deploy (`undefined`: the table did not exist). */
  readonly from: number | undefined
  readonly to: number
  /** The version's table, `<table>_v<to>`, or `<table>` itself for a plain table kept at version 1. */
  readonly relation: string
  /** Rows copied from the previous version (0 when the version did not change). */
  readonly backfilled: number
  /** Columns added to the current version by an additive redeploy. */
  readonly added: ReadonlyArray<string>
}

const validateVersion = (spec: Version): void => {
  TableEvolution.validate(spec)
  if (!Number.isInteger(spec.version) || spec.version < 1) {
    throw new Table.InvalidTableSpec({
      table: spec.table,
      reason: `version must be a positive integer, got ${spec.version}`
    })
  }
  Table.validateTable(Catalog.versionName(spec.table, spec.version))
  for (const index of spec.indexes ?? []) {
    for (const column of index) Table.requireColumn(spec.table, spec.columns, column, "index column")
  }
}

const refused = (table: string, column: string, change: TableEvolution.RefusedChange, detail: string) =>
  new TableEvolution.TableChangeRefused({ table, changes: [{ column, change, detail }] })

/** The kind of relation `name` is (`r` a table, `p` a partitioned one, `v` a view…), if it exists. */
const relationKind = (sql: SqlClient.SqlClient, name: string) =>
  Effect.map(
    sql<{ readonly kind: string }>`
      SELECT c.relkind::text AS kind FROM pg_class c WHERE c.oid = to_regclass(${Catalog.quoted(name)})`,
    (rows) => rows[0]?.kind
  )

const isTable = (kind: string | undefined) => kind === "r" || kind === "p"

/** The versions of `table` whose tables exist, ascending (a plain table `<table>` is version 1). */
const versionsOf = Effect.fnUntraced(function*(sql: SqlClient.SqlClient, table: string) {
  const schema = Catalog.schemaOf(table)
  const name = Catalog.nameOf(table)
  const rows = yield* sql<{ readonly name: string; readonly kind: string }>`
    SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema === undefined ? sql`current_schema()` : sql`${schema}`}
      AND c.relname LIKE ${`${name.replace(/_/g, "\\_")}%`} AND c.relkind IN ('r', 'p')`
  const versions = new Set<number>()
  for (const row of rows) {
    if (row.name === name) versions.add(1)
    const match = row.name.startsWith(`${name}_v`) ? /^[1-9]\d*$/.exec(row.name.slice(name.length + 2)) : null
    if (match !== null) versions.add(Number(match[0]))
  }
  return [...versions].sort((a, b) => a - b)
})

/**
 * Refuses a deploy of a version whose table exists already (a version deployed before and switched
 * away from, or one `createNext` left), saying whether the spec matches it.
 */
const existingVersion = Effect.fnUntraced(function*(sql: SqlClient.SqlClient, spec: Version, target: string) {
  const kind = yield* relationKind(sql, target)
  if (kind === undefined) return
  if (!isTable(kind)) {
    return yield* refused(spec.table, "*", "version_exists", `${target} already exists and is not a table`)
  }
  const actual = yield* Catalog.columns(sql, target)
  const { additions, refused: changes } = TableEvolution.plan(
    { ...spec, columns: spec.columns.map((column) => ({ ...column, renamedFrom: undefined })) },
    actual
  )
  const differences = [
    ...changes.map((c) =>
      `${c.change.replace("_", " ")} of ${c.column}${c.change === "type_change" ? `: ${c.detail}` : ""}`
    ),
    ...additions.map((c) => `new column ${c.name}`)
  ]
  return yield* refused(
    spec.table,
    "*",
    "version_exists",
    differences.length === 0
      ? `${target} already exists, with this definition: switch readers to it with switchTo, or discard it first ` +
        "to deploy it afresh"
      : `${target} already exists, with another definition (${
        differences.join("; ")
      }): deploy it as a later version, or discard it first`
  )
})

/** The family of a SQL type as `format_type` spells it (`numeric(12,2)`, `character varying(20)`…). */
const familyOf = (sqlType: string) => {
  const base = sqlType.replace(/\(.*\)/, "").replace(/\[\]$/, "").trim()
  switch (base) {
    case "smallint":
    case "integer":
    case "bigint":
    case "numeric":
    case "real":
    case "double precision":
    case "date":
    case "boolean":
      return base
    case "timestamp with time zone":
    case "timestamp without time zone":
      return "timestamp"
    default:
      return "other"
  }
}

/** What a cast to each new type loses, by the family of the old type. */
const losses: Partial<Record<Table.ColumnType, Partial<Record<ReturnType<typeof familyOf>, string>>>> = {
  int: {
    bigint: "values beyond int's range do not fit",
    numeric: "fractions are rounded away, and values beyond int's range do not fit",
    real: "fractions are rounded away",
    "double precision": "fractions are rounded away"
  },
  bigint: {
    numeric: "fractions are rounded away, and values beyond bigint's range do not fit",
    real: "fractions are rounded away",
    "double precision": "fractions are rounded away"
  },
  "double precision": {
    bigint: "integers beyond 2^53 are rounded",
    numeric: "digits beyond 15 significant ones are rounded"
  },
  date: { timestamp: "the time of day is dropped" },
  bool: {
    smallint: "every number but 0 becomes true",
    integer: "every number but 0 becomes true",
    bigint: "every number but 0 becomes true"
  }
}

/**
 * What casting a column of SQL type `from` (as the server spells it, e.g. `numeric(12,2)`) to the
 * Sluice type `to` can lose, or `undefined` when the cast keeps every value (it may still fail on
 * a value that does not parse, e.g. `'abc'::int`: that fails the backfill).
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * VersionedTable.lossOf("numeric", "int") // "fractions are rounded away, and values beyond int's range do not fit"
 * VersionedTable.lossOf("integer", "bigint") // undefined
 * ```
 *
 * @since 0.1.0
 * @category deploying
 */
export const lossOf = (from: string, to: Table.ColumnType): string | undefined => losses[to]?.[familyOf(from)]

/**
 * The current version of a table and the table holding its rows; `undefined` when it does not exist.
 *
 * @since 0.1.0
 * @category catalog
 */
export const current = Effect.fnUntraced(function*(
  table: string
): Effect.fn.Return<
  { readonly version: number; readonly relation: string } | undefined,
  TableEvolution.TableChangeRefused | SqlError.SqlError,
  SqlClient.SqlClient
> {
  const relation = yield* TableEvolution.describe(table)
  return relation === undefined ? undefined : { version: relation.version, relation: relation.base }
})

/** A plain table becomes its version 1, `<table>_v1`: refused when a relation has that name already. */
const renameToVersion1 = Effect.fnUntraced(function*(sql: SqlClient.SqlClient, table: string) {
  const v1 = Catalog.versionName(table, 1)
  if ((yield* relationKind(sql, v1)) !== undefined) {
    return yield* refused(
      table,
      "*",
      "version_exists",
      `${table} is a plain table (version 1), and ${v1} exists already: it cannot become version 1`
    )
  }
  yield* sql`ALTER TABLE ${sql(table)} RENAME TO ${sql(Catalog.nameOf(v1))}`
})

/**
 * Deploys a version of a table, in one transaction (see the module documentation): creates and
 * backfills `<table>_v<N>` and switches the view `<table>` to it when N is newer than the current
 * version; evolves the current version additively when N is the current one; refuses an older N.
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * // version 2 of shop.orders: amount becomes exact cents, note is dropped, ts is renamed ordered_at
 * const program = VersionedTable.deploy({
 *   table: "shop.orders",
 *   version: 2,
 *   columns: [
 *     { name: "order_id", type: "text", nullable: false },
 *     { name: "amount", type: "bigint" },
 *     { name: "ordered_at", type: "timestamptz", renamedFrom: "ts" },
 *     { name: "currency", type: "text", default: "USD" }
 *   ],
 *   primaryKey: ["order_id"]
 * })
 * ```
 *
 * @since 0.1.0
 * @category deploying
 */
export const deploy = Effect.fn("VersionedTable.deploy")(function*(
  spec: Version
): Effect.fn.Return<Deployed, TableEvolution.TableChangeRefused | SqlError.SqlError, SqlClient.SqlClient> {
  validateVersion(spec)
  const sql = yield* SqlClient.SqlClient
  const { table, version } = spec
  const target = Catalog.versionName(table, version)
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.version ${table}`}, 0))`
    const relation = yield* TableEvolution.describe(table)

    const createTarget = Effect.gen(function*() {
      yield* TableEvolution.create({ ...spec, table: target })
      for (const index of spec.indexes ?? []) {
        yield* sql`CREATE INDEX ON ${sql(target)} (${Table.columnList(sql, index)})`
      }
    })
    const createView = sql`CREATE VIEW ${sql(table)} AS SELECT ${
      Table.columnList(sql, spec.columns.map((column) => column.name))
    } FROM ${sql(target)}`

    if (relation === undefined) {
      yield* existingVersion(sql, spec, target)
      yield* createTarget
      yield* createView
      return { table, from: undefined, to: version, relation: target, backfilled: 0, added: [] }
    }
    if (relation.version > version) {
      return yield* refused(
        table,
        "*",
        "older_version",
        `version ${version} is older than the current ${relation.version}`
      )
    }
    if (relation.version === version) {
      const { additions, refused: changes } = TableEvolution.plan(spec, relation.columns)
      if (changes.length > 0) return yield* new TableEvolution.TableChangeRefused({ table, changes })
      yield* TableEvolution.addColumns(relation, additions, { evolved: false })
      return {
        table,
        from: version,
        to: version,
        relation: relation.base,
        backfilled: 0,
        added: additions.map((column) => column.name)
      }
    }

    const readers = yield* Catalog.dependents(sql, table)
    if (readers.length > 0) {
      return yield* refused(
        table,
        "*",
        "dependent_views",
        `views ${readers.join(", ")} read it and would keep the old version`
      )
    }
    const old = new Set(relation.columns.map((column) => column.name))
    const sourceOf = (column: TableEvolution.ColumnSpec) =>
      column.renamedFrom !== undefined && old.has(column.renamedFrom)
        ? column.renamedFrom
        : old.has(column.name)
        ? column.name
        : undefined
    const unfilled = spec.columns.filter((column) =>
      sourceOf(column) === undefined && column.nullable === false &&
      (column.default === undefined || column.default === null)
    )
    if (unfilled.length > 0) {
      return yield* new TableEvolution.TableChangeRefused({
        table,
        changes: unfilled.map((column) => ({
          column: column.name,
          change: "not_null" as const,
          detail: "a NOT NULL column with no source column needs a default"
        }))
      })
    }
    const allowed = new Set(spec.allowLossy ?? [])
    const lossy = spec.columns.flatMap((column) => {
      const from = sourceOf(column)
      const actual = relation.columns.find((c) => c.name === from)
      const loss = actual === undefined || allowed.has(column.name) ? undefined : lossOf(actual.sqlType, column.type)
      return loss === undefined ? [] : [{
        column: column.name,
        change: "lossy_cast" as const,
        detail: `${from === column.name ? "" : `from ${from}, `}${actual!.sqlType} → ${
          Table.sqlTypeOf(column.type)
        }: ${loss}; list it in allowLossy to cast anyway`,
        from: actual!.sqlType,
        to: Table.sqlTypeOf(column.type)
      }]
    })
    if (lossy.length > 0) return yield* new TableEvolution.TableChangeRefused({ table, changes: lossy })
    yield* existingVersion(sql, spec, target)
    let source = relation.base
    if (relation.kind === "table") {
      source = Catalog.versionName(table, 1)
      Table.validateTable(source)
      yield* renameToVersion1(sql, table)
    }
    yield* createTarget

    const copied = spec.columns.flatMap((column) => {
      const from = sourceOf(column)
      return from === undefined ? [] : [{ column, from }]
    })
    if (copied.length > 0) {
      yield* sql`INSERT INTO ${sql(target)} (${Table.columnList(sql, copied.map((c) => c.column.name))})
        SELECT ${
        sql.csv(copied.map((c) => sql`${sql(c.from)}::${sql.literal(Table.sqlTypeOf(c.column.type))}`))
      } FROM ${sql(source)}`.pipe(
        // a value that does not cast or fit: the server's message says which and why
        Effect.catchTag(
          "SqlError",
          (error): Effect.Effect<never, SqlError.SqlError | TableEvolution.TableChangeRefused> =>
            isUnavailable(error)
              ? Effect.fail(error)
              : Effect.fail(
                refused(
                  table,
                  "*",
                  "backfill_failed",
                  `backfill of ${target} from ${source}: ${describeSqlError(error)}`
                )
              )
        )
      )
    }
    const [count] = yield* sql<{ readonly n: number }>`SELECT count(*)::float8 AS n FROM ${sql(target)}`
    if (relation.kind === "view") yield* sql`DROP VIEW ${sql(table)}`
    yield* createView
    return { table, from: relation.version, to: version, relation: target, backfilled: count?.n ?? 0, added: [] }
  }))
})

/** The comment of a version {@link createNext} made for an owner, until {@link switchTo} makes it current. */
const ownerMarker = "sluice:rebuild "

/**
 * Creates the next free version of a table, empty and shaped like the current one (`LIKE … INCLUDING
 * ALL`: columns, defaults, constraints, indexes), without switching readers to it: the target of a
 * rebuild (e.g. a stream replay) that {@link switchTo} later makes current.
 *
 * **Details**
 *
 * The version is the first `N` above the current one whose `<table>_v<N>` does not exist, so a
 * version left behind by a failed rebuild is skipped, not reused.
 *
 * With `options.owner` (the name of the rebuild, e.g. `order-stream@replay-1a2b3c4d`), the version
 * is marked as that owner's (a table comment, `sluice:rebuild <owner>`, written in the same
 * transaction) until {@link switchTo} makes it current: {@link pending} lists such versions, so that
 * what a rebuild that died left behind can be found and dropped ({@link discard}).
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * // e.g. { version: 4, relation: "raw.orders_v4" }, marked as the replay's until it is switched to
 * const program = VersionedTable.createNext("raw.orders", { owner: "order-stream@replay-1a2b3c4d" })
 * ```
 *
 * @since 0.1.0
 * @category deploying
 */
export const createNext = Effect.fn("VersionedTable.createNext")(function*(
  table: string,
  options: { readonly owner?: string | undefined } = {}
): Effect.fn.Return<
  { readonly version: number; readonly relation: string },
  TableEvolution.TableChangeRefused | SqlError.SqlError,
  SqlClient.SqlClient
> {
  Table.validateTable(table)
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.version ${table}`}, 0))`
    const now = yield* current(table)
    if (now === undefined) return yield* refused(table, "*", "older_version", "the table does not exist")
    let version = now.version + 1
    for (;;) {
      const [row] = yield* sql<{ readonly found: boolean }>`
        SELECT to_regclass(${Catalog.quoted(Catalog.versionName(table, version))}) IS NOT NULL AS found`
      if (row?.found !== true) break
      version++
    }
    const relation = Catalog.versionName(table, version)
    Table.validateTable(relation)
    yield* sql`CREATE TABLE ${sql(relation)} (LIKE ${sql(now.relation)} INCLUDING ALL)`
    if (options.owner !== undefined) {
      yield* sql`COMMENT ON TABLE ${sql(relation)} IS ${sql.literal(quoteLiteral(`${ownerMarker}${options.owner}`))}`
    }
    return { version, relation }
  }))
})

/** A string as a SQL literal (`COMMENT ON` takes no parameter). */
const quoteLiteral = (value: string) => `'${value.replaceAll("'", "''")}'`

/**
 * The versions of a table that {@link createNext} made for an owner and that readers were never
 * switched to ({@link switchTo} clears the mark), ascending: the rebuilds in progress, and those a
 * rebuild that failed or died left behind. Whether their owner is still running is the caller's
 * question (e.g. a lock it holds).
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * // e.g. [{ version: 4, relation: "raw.orders_v4", owner: "order-stream@replay-1a2b3c4d" }]
 * const program = VersionedTable.pending("raw.orders")
 * ```
 *
 * @since 0.1.0
 * @category catalog
 */
export const pending = Effect.fn("VersionedTable.pending")(function*(
  table: string
): Effect.fn.Return<
  ReadonlyArray<{ readonly version: number; readonly relation: string; readonly owner: string }>,
  SqlError.SqlError,
  SqlClient.SqlClient
> {
  Table.validateTable(table)
  const sql = yield* SqlClient.SqlClient
  const schema = Catalog.schemaOf(table)
  const name = Catalog.nameOf(table)
  const rows = yield* sql<{ readonly name: string; readonly note: string }>`
    SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS note
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema === undefined ? sql`current_schema()` : sql`${schema}`}
      AND c.relname LIKE ${`${name.replace(/_/g, "\\_")}\\_v%`} AND c.relkind IN ('r', 'p')
      AND starts_with(obj_description(c.oid, 'pg_class'), ${ownerMarker})`
  return rows.flatMap((row) => {
    const match = /^[1-9]\d*$/.exec(row.name.slice(name.length + 2))
    return match === null
      ? []
      : [{
        version: Number(match[0]),
        relation: Catalog.versionName(table, Number(match[0])),
        owner: row.note.slice(ownerMarker.length)
      }]
  }).sort((a, b) => a.version - b.version)
})

/**
 * Switches the view `<table>` to the existing version `<table>_v<version>`, in one transaction:
 * readers see the old version or the new one, never a missing `<table>` (see the module
 * documentation). A plain table `<table>` is renamed `<table>_v1` first. The old version is kept,
 * so switching back to it is a rollback.
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * // readers of raw.orders now read raw.orders_v3
 * const program = VersionedTable.switchTo("raw.orders", 3)
 * ```
 *
 * @since 0.1.0
 * @category deploying
 */
export const switchTo = Effect.fn("VersionedTable.switchTo")(function*(
  table: string,
  version: number
): Effect.fn.Return<
  { readonly table: string; readonly from: number | undefined; readonly to: number },
  TableEvolution.TableChangeRefused | SqlError.SqlError,
  SqlClient.SqlClient
> {
  Table.validateTable(table)
  if (!Number.isSafeInteger(version) || version < 1) {
    return yield* refused(table, "*", "missing_version", `version must be a positive integer, got ${version}`)
  }
  const target = Catalog.versionName(table, version)
  if (Catalog.nameOf(target).length > 63) {
    return yield* refused(
      table,
      "*",
      "missing_version",
      `${target} is longer than 63 characters: no table has that name`
    )
  }
  Table.validateTable(target)
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.version ${table}`}, 0))`
    const relation = yield* TableEvolution.describe(table)
    // a plain table is version 1, and stays where it is
    if (relation?.kind === "table" && version === 1) return { table, from: 1, to: 1 }
    const kind = yield* relationKind(sql, target)
    if (kind === undefined) {
      const versions = relation === undefined ? [] : yield* versionsOf(sql, table)
      return yield* refused(
        table,
        "*",
        "missing_version",
        `${target} does not exist (${
          relation === undefined ? `${table} does not exist` : `its versions: ${versions.join(", ")}`
        })`
      )
    }
    if (!isTable(kind)) return yield* refused(table, "*", "missing_version", `${target} is not a table`)
    if (relation !== undefined) {
      const readers = yield* Catalog.dependents(sql, table)
      if (readers.length > 0) {
        return yield* refused(
          table,
          "*",
          "dependent_views",
          `views ${readers.join(", ")} read it and would keep the old version`
        )
      }
      if (relation.kind === "table") {
        yield* renameToVersion1(sql, table)
      } else {
        yield* sql`DROP VIEW ${sql(table)}`
      }
    }
    yield* sql`CREATE VIEW ${sql(table)} AS SELECT * FROM ${sql(target)}`
    // a version readers were switched to is the table's, no longer its rebuild's (see createNext)
    const [note] = yield* sql<{ readonly marked: boolean }>`
      SELECT coalesce(starts_with(obj_description(to_regclass(${Catalog.quoted(target)}), 'pg_class'), ${ownerMarker}),
                      false) AS marked`
    if (note?.marked === true) yield* sql`COMMENT ON TABLE ${sql(target)} IS NULL`
    return { table, from: relation?.version, to: version }
  }))
})

/**
 * Drops `<table>_v<version>`, a version readers are not on: e.g. the fresh version of a rebuild that
 * failed before {@link switchTo}. Does nothing (and returns `false`) when it is the current version,
 * a view reads it, or it does not exist.
 *
 * @example
 * ```ts
 * import { VersionedTable } from "@sluice/sql"
 *
 * const program = VersionedTable.discard("raw.orders", 4)
 * ```
 *
 * @since 0.1.0
 * @category deploying
 */
export const discard = Effect.fn("VersionedTable.discard")(function*(
  table: string,
  version: number
): Effect.fn.Return<boolean, TableEvolution.TableChangeRefused | SqlError.SqlError, SqlClient.SqlClient> {
  Table.validateTable(table)
  const target = Catalog.versionName(table, version)
  Table.validateTable(target)
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.version ${table}`}, 0))`
    const now = yield* current(table)
    if (now?.relation === target) return false
    const [row] = yield* sql<{ readonly found: boolean }>`
      SELECT to_regclass(${Catalog.quoted(target)}) IS NOT NULL AS found`
    if (row?.found !== true) return false
    if ((yield* Catalog.dependents(sql, target)).length > 0) return false
    yield* sql`DROP TABLE ${sql(target)}`
    return true
  }))
})
