/**
 * Merge (upsert by key): the write strategy for tables whose rows are identified by a key rather
 * than by a partition. Two forms, both generated from a spec — apps never write strategy SQL:
 *
 * - {@link make}: a record sink. Each batch is deduplicated by key (latest wins by a declared
 *   ordering column, ties to the later arrival), then merged with `MERGE INTO … USING (unnest …)`:
 *   a row is updated only by a version at least as recent as its own — compared by the ordering
 *   column, then by the partition that wrote it (kept in the table's {@link partitionColumn}) — so
 *   re-runs and partitions run in any order converge on the same table. A record with a NULL key is rejected by
 *   the sink's `check` and dead-lettered (`MissingKey`); a declared deleted flag deletes the row.
 *   A pipeline's stream of batches is copied into a temporary table (`COPY … FROM STDIN`, see
 *   {@link CopyIn}) and merged from it at once, with the same statements and the same result.
 * - {@link recompute}: a derived step of a partition-replaced source table that keeps an aggregate
 *   table keyed by some columns of the source (e.g. metrics per customer from orders) by
 *   recomputing every key the load touched from the source — never by adding deltas — so re-runs
 *   and overlapping partitions give the same result.
 *
 * **Details**
 *
 * Every merge into a table takes a transaction-scoped advisory lock on the table's name
 * (`pg_advisory_xact_lock(hashtextextended('sluice.merge <table>', 0))`), so concurrent loads
 * (a backfill) merging into one table apply one after the other: each sees what the previous one
 * committed, and none fails on a key another one inserted meanwhile.
 *
 * @since 0.1.0
 */
import type { Partition, Sink } from "@sluice/core"
import { RecordError, SinkError } from "@sluice/core"
import { Effect, Option, Stream } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import * as CopyIn from "./CopyIn.ts"
import { mapSqlError } from "./internal/sinkError.ts"
import type { DerivedStep } from "./PartitionReplace.ts"
import * as Table from "./Table.ts"

/**
 * A table written by key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<A> {
  /** `table` or `schema.table`. */
  readonly table: string
  /** The key columns (one or more of `columns`): a row per key. */
  readonly key: ReadonlyArray<string>
  /** The batch's columns; every one is written to the table except `deleted`. */
  readonly columns: ReadonlyArray<Table.Column>
  /** One value per column, in the order of `columns`. */
  readonly toRow: (row: A) => ReadonlyArray<unknown>
  /**
   * The column that orders the versions of a key (e.g. `updated_at`): the greatest wins, within a
   * batch and against the row already in the table. Ties go to the later partition (see
   * {@link partitionColumn}), then, within a partition, to the later arrival.
   */
  readonly orderBy: string
  /**
   * A `bool` column of the batch (never written to the table): when true the record deletes its
   * key. Deletions are remembered in a tombstone table (see {@link tombstoneTable}), so that an
   * older version arriving after the delete does not bring the row back.
   */
  readonly deleted?: string | undefined
  /** The tombstone table; `<table>_tombstones` by default. Only used with `deleted`. */
  readonly tombstones?: string | undefined
  /**
   * How a pipeline's streams of batches are merged: `"copy"` (the default; the stream is copied
   * into a temporary table with `COPY … FROM STDIN`, see {@link CopyIn}, and merged from it with one
   * statement) or `"unnest"` (one `MERGE … USING (unnest …)` per batch, as `write` always does). A
   * client that cannot COPY uses `unnest`.
   */
  readonly load?: "copy" | "unnest" | undefined
}

const arrival: Table.Column = { name: "sluice_arrival", type: "int" }

/**
 * The strategy's own column in the merged table and in its tombstone table: the partition whose
 * load wrote the row's version (`date NOT NULL DEFAULT '-infinity'`, added by {@link migrate}). It
 * breaks ties on the ordering column: of two versions with the same ordering value, the one of the
 * later partition wins, so re-running an older partition never undoes a newer one. A row written
 * before the column existed holds `-infinity` and loses every tie.
 *
 * @since 0.1.0
 * @category migrations
 */
export const partitionColumn = "sluice_partition"

interface Plan {
  readonly table: string
  readonly key: ReadonlyArray<string>
  readonly orderBy: string
  readonly deleted: string | undefined
  readonly tombstones: string | undefined
  readonly columns: ReadonlyArray<Table.Column>
  readonly keyIndexes: ReadonlyArray<number>
  readonly orderIndex: number
  readonly deletedIndex: number
  /** The columns written to the table: every column but `deleted`. */
  readonly stored: ReadonlyArray<string>
  /** The key columns and the ordering column: never NULL in a merged row. */
  readonly requiredIndexes: ReadonlyArray<number>
}

const plan = (spec: Omit<Spec<never>, "toRow">): Plan => {
  const { table, columns } = spec
  Table.validateColumns(table, columns)
  if (spec.key.length === 0) throw new Table.InvalidTableSpec({ table, reason: "no key columns" })
  if (new Set(spec.key).size !== spec.key.length) {
    throw new Table.InvalidTableSpec({ table, reason: "duplicate key column" })
  }
  const keyIndexes = spec.key.map((name) => Table.requireColumn(table, columns, name, "key column"))
  const orderIndex = Table.requireColumn(table, columns, spec.orderBy, "ordering column")
  if (spec.key.includes(spec.orderBy)) {
    throw new Table.InvalidTableSpec({ table, reason: `ordering column ${spec.orderBy} is a key column` })
  }
  let deletedIndex = -1
  let tombstones: string | undefined
  if (spec.deleted !== undefined) {
    deletedIndex = Table.requireColumn(table, columns, spec.deleted, "deleted column")
    if (columns[deletedIndex]!.type !== "bool") {
      throw new Table.InvalidTableSpec({ table, reason: `deleted column ${spec.deleted} is not a bool` })
    }
    if (spec.key.includes(spec.deleted) || spec.deleted === spec.orderBy) {
      throw new Table.InvalidTableSpec({ table, reason: `deleted column ${spec.deleted} is a key or ordering column` })
    }
    tombstones = spec.tombstones ?? `${table}_tombstones`
    Table.validateTable(tombstones)
  }
  for (const reserved of [arrival.name, partitionColumn]) {
    if (columns.some((column) => column.name === reserved)) {
      throw new Table.InvalidTableSpec({ table, reason: `${reserved} is reserved` })
    }
  }
  return {
    table,
    key: spec.key,
    orderBy: spec.orderBy,
    deleted: spec.deleted,
    tombstones,
    columns,
    keyIndexes,
    orderIndex,
    deletedIndex,
    stored: columns.filter((_, i) => i !== deletedIndex).map((column) => column.name),
    requiredIndexes: [...keyIndexes, orderIndex]
  }
}

/** `a.k1 = b.k1 AND a.k2 = b.k2` */
const keysEqual = (sql: SqlClient.SqlClient, key: ReadonlyArray<string>, a: string, b: string) =>
  sql.and(key.map((k) => sql`${sql.literal(a)}.${sql(k)} = ${sql.literal(b)}.${sql(k)}`))

const qualified = (sql: SqlClient.SqlClient, alias: string, names: ReadonlyArray<string>) =>
  sql.csv(names.map((name) => sql`${sql.literal(alias)}.${sql(name)}`))

/**
 * Serializes every merge into `table` until the end of the transaction (re-entrant).
 */
const lockTable = (sql: SqlClient.SqlClient, table: string) =>
  sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.merge ${table}`}, 0))`

/**
 * The rows to merge, as a `FROM` item named `batch` with the spec's columns and the arrival order:
 * a batch's column arrays, or the temporary table a stream was copied into.
 */
type Batch = Statement.Fragment

/** A batch's column arrays as a {@link Batch}. */
const unnestBatch = (sql: SqlClient.SqlClient, p: Plan, arrays: ReadonlyArray<ReadonlyArray<unknown>>): Batch => {
  const ordinals = Array.from({ length: arrays[0]?.length ?? 0 }, (_, i) => i)
  return sql`(${Table.unnest(sql, [...p.columns, arrival], [...arrays, ordinals])}) AS batch (${
    Table.columnList(sql, [...p.columns.map((column) => column.name), arrival.name])
  })`
}

/**
 * The batch of `partition` deduplicated by key: per key the row with the greatest ordering value,
 * ties to the later arrival (`DISTINCT ON … ORDER BY key, orderBy DESC, arrival DESC`), with the
 * partition as {@link partitionColumn}.
 */
const winners = (sql: SqlClient.SqlClient, p: Plan, batch: Batch, partition: Partition.PartitionDate) =>
  sql`SELECT DISTINCT ON (${Table.columnList(sql, p.key)}) ${Table.columnList(sql, p.columns.map((c) => c.name))},
      ${Table.date(partition)}::date AS ${sql(partitionColumn)}
    FROM ${batch}
    ORDER BY ${Table.columnList(sql, p.key)}, ${sql(p.orderBy)} DESC, ${sql(arrival.name)} DESC`

/**
 * The version of a row of `alias`, as a row value compared with `<=`: the ordering value, then the
 * partition that wrote it (never NULL: the ordering value is required, the partition column is
 * `NOT NULL`).
 */
const versionOf = (sql: SqlClient.SqlClient, p: Plan, alias: string) =>
  sql`(${sql.literal(alias)}.${sql(p.orderBy)}, ${sql.literal(alias)}.${sql(partitionColumn)})`

/** The definition of {@link partitionColumn}, for `CREATE TABLE` and `ADD COLUMN`. */
const partitionColumnDefinition = (sql: SqlClient.SqlClient) =>
  sql`${sql(partitionColumn)} date NOT NULL DEFAULT '-infinity'`

/**
 * The temporary table a stream of batches is copied into: the session's own (named with its
 * schema, `pg_temp`, so that no table of the search path can stand in for it), dropped after the
 * merge.
 */
const staging = "pg_temp.sluice_merge_staging"

/** A non-retryable failure of the batch itself (a programming error upstream of the sink). */
const badBatch = (p: Plan, message: string) =>
  new SinkError.SinkError({ operation: `merge into ${p.table}`, message, retryable: false })

/**
 * The name of the tombstone table of a spec with a `deleted` column (`undefined` without one).
 *
 * @since 0.1.0
 * @category tombstones
 */
export const tombstoneTable = (spec: Omit<Spec<never>, "toRow">): string | undefined => plan(spec).tombstones

/**
 * Creates the tombstone table of a spec with a `deleted` column (idempotent; nothing without one):
 * the key columns and the ordering column of every deleted key, with the types of the spec, and
 * {@link partitionColumn} (added to a tombstone table created without it). {@link migrate} runs it.
 *
 * **Details**
 *
 * A tombstone is the version (ordering value, then partition) at which a key was deleted. It stays
 * until a version at least as recent brings the key back, so a late, older version never resurrects
 * a deleted row. Tombstones are never pruned: one small row per deleted key.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Merge } from "@sluice/sql"
 *
 * const spec = {
 *   table: "raw.customers",
 *   key: ["customer_id"],
 *   orderBy: "updated_at",
 *   deleted: "deleted",
 *   columns: [
 *     { name: "customer_id", type: "bigint" },
 *     { name: "name", type: "text" },
 *     { name: "updated_at", type: "timestamptz" },
 *     { name: "deleted", type: "bool" }
 *   ]
 * } as const
 *
 * const migration = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`CREATE TABLE raw.customers (customer_id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL)`
 *   // raw.customers_tombstones (customer_id, updated_at, sluice_partition)
 *   yield* Merge.createTombstoneTable(spec)
 * })
 * ```
 *
 * @since 0.1.0
 * @category tombstones
 */
export const createTombstoneTable = (spec: Omit<Spec<never>, "toRow">) => {
  const p = plan(spec)
  return Effect.gen(function*() {
    if (p.tombstones === undefined) return
    const sql = yield* SqlClient.SqlClient
    const definitions = [...p.key, p.orderBy].map((name) => {
      const column = p.columns.find((c) => c.name === name)!
      return sql`${sql(name)} ${sql.literal(Table.sqlTypeOf(column.type))} NOT NULL`
    })
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(p.tombstones)} (${
      sql.csv([...definitions, partitionColumnDefinition(sql)])
    }, PRIMARY KEY (${Table.columnList(sql, p.key)}))`
    yield* sql`ALTER TABLE ${sql(p.tombstones)} ADD COLUMN IF NOT EXISTS ${partitionColumnDefinition(sql)}`
  })
}

/**
 * Adds what the strategy keeps beside the app's columns (idempotent): {@link partitionColumn} in
 * the table, and with a `deleted` column the tombstone table ({@link createTombstoneTable}). Run it
 * in the app's migrations, after the table is created.
 *
 * **Details**
 *
 * The column is added with `ADD COLUMN IF NOT EXISTS … DEFAULT '-infinity'`, so a table merged
 * before the column existed is upgraded in place (PostgreSQL stores the default once, it does not
 * rewrite the table): its rows lose every tie against a version a load merges after the upgrade.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Merge } from "@sluice/sql"
 *
 * const spec = {
 *   table: "raw.customers",
 *   key: ["customer_id"],
 *   orderBy: "updated_at",
 *   columns: [
 *     { name: "customer_id", type: "bigint" },
 *     { name: "name", type: "text" },
 *     { name: "updated_at", type: "timestamptz" }
 *   ]
 * } as const
 *
 * const migration = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`CREATE TABLE raw.customers (customer_id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL)`
 *   yield* Merge.migrate(spec) // + sluice_partition
 * })
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (spec: Omit<Spec<never>, "toRow">) => {
  const p = plan(spec)
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE ${sql(p.table)} ADD COLUMN IF NOT EXISTS ${partitionColumnDefinition(sql)}`
    yield* createTombstoneTable(spec)
  })
}

/**
 * A sink that merges records into a table by key.
 *
 * **Details**
 *
 * `write` deduplicates the batch by key in SQL (greatest `orderBy` wins, ties to the later
 * arrival — there is never a "MERGE command cannot affect row a second time"), then runs
 *
 * ```sql
 * MERGE INTO table AS target USING (<winners of the batch, with the partition>) AS source ON <key>
 * WHEN MATCHED AND (target.orderBy, target.sluice_partition) <= (source.orderBy, source.sluice_partition)
 *   AND source.deleted THEN DELETE
 * WHEN MATCHED AND (target.orderBy, target.sluice_partition) <= (source.orderBy, source.sluice_partition)
 *   AND <a column or the partition differs> THEN UPDATE SET …
 * WHEN NOT MATCHED AND NOT source.deleted THEN INSERT …
 * ```
 *
 * With `deleted`, a second `MERGE` keeps the tombstones, and a winner older than its key's
 * tombstone is ignored. The outcome is the same as applying every record one by one, in arrival
 * order, with "a version replaces the key's version when it is at least as recent; a deletion is
 * a version too", where a version is the pair (ordering value, partition of the load).
 *
 * Ties on the ordering value are thus broken by a stable order, not by which run came last: the
 * later partition wins, then, within a partition, the later record (a load writes its records in
 * their order, and a batch's duplicates go to the later arrival). Re-running partitions in any
 * order gives the same table; re-running a partition whose source changed lets its new records
 * take the place of its old ones on a tie, as a re-run replaces what the partition wrote.
 * `prepare` and `complete` do nothing.
 *
 * The sink's `check` rejects a record with a NULL key column (`MissingKey`) or a NULL ordering
 * value (`RuleViolation`), so the runner dead-letters it at stage `load`; `write` fails without
 * writing anything if it is given one anyway. A NULL deleted flag means "not deleted".
 *
 * **Gotchas**
 *
 * - A merge never removes a key because a re-run no longer contains it; only a deletion does. Nor
 *   does it go back to an older version: a re-run whose source now has an older version of a key
 *   than the one the partition merged before (a correction dated earlier) leaves the newer one, as
 *   the table keeps no other version to fall back on. So a re-run is exact for the same input, not
 *   for a changed one: correct a key with a newer version or a deletion (or use `Scd`, whose change
 *   log is replaced by partition, where a re-run must undo what the partition's old input did).
 * - The table needs {@link partitionColumn}, and with `deleted` the tombstone table: run
 *   {@link migrate} in the app's migrations.
 * - Give the table a primary key (or unique index) on `key`: the merge looks keys up by it.
 *
 * @example
 * ```ts
 * import { Merge } from "@sluice/sql"
 *
 * interface CustomerChange {
 *   readonly customer_id: number | null
 *   readonly name: string | null
 *   readonly updated_at: number
 *   readonly deleted: boolean
 * }
 *
 * const customers = Merge.make<CustomerChange>({
 *   table: "raw.customers",
 *   key: ["customer_id"],
 *   orderBy: "updated_at",
 *   deleted: "deleted",
 *   columns: [
 *     { name: "customer_id", type: "bigint" },
 *     { name: "name", type: "text" },
 *     { name: "updated_at", type: "timestamptz" },
 *     { name: "deleted", type: "bool" }
 *   ],
 *   toRow: (c) => [c.customer_id, c.name, c.updated_at, c.deleted]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(spec: Spec<A>): Sink.Sink<A, SqlClient.SqlClient> => {
  const p = plan(spec)
  const keyNames = p.key.join(", ")
  /** The columns an update sets: the non-key columns and the partition of the version. */
  const versioned = [...p.stored.filter((name) => !p.key.includes(name)), partitionColumn]
  const inserted = [...p.stored, partitionColumn]

  const storable = Table.storable(p.table, p.columns, spec.toRow)
  const check = (record: A): RecordError.RecordError | undefined => {
    const values = spec.toRow(record)
    const missing = p.keyIndexes.filter((i) => values[i] == null).map((i) => p.columns[i]!.name)
    if (missing.length > 0) {
      return new RecordError.RecordError({
        reason: new RecordError.MissingKey({
          columns: missing,
          message: `${missing.join(", ")} is null or missing: ${p.table} is merged by (${keyNames})`
        })
      })
    }
    if (values[p.orderIndex] == null) {
      return new RecordError.RecordError({
        reason: new RecordError.RuleViolation({
          rule: `${p.orderBy}_not_null`,
          message: `${p.orderBy} is null: the versions of a key in ${p.table} are ordered by it`
        })
      })
    }
    return storable(record)
  }

  /** The checks of `check`, on the column arrays: a record with a NULL key is never written. */
  const requireKeys = (arrays: ReadonlyArray<ReadonlyArray<unknown>>) => {
    for (const i of p.requiredIndexes) {
      const row = arrays[i]!.findIndex((value) => value === null)
      if (row >= 0) return Effect.fail(badBatch(p, `row ${row}: ${p.columns[i]!.name} is null`))
    }
    return Effect.void
  }

  const mergeRows = (sql: SqlClient.SqlClient, batch: Batch, partition: Partition.PartitionDate) => {
    const source = p.tombstones === undefined ?
      winners(sql, p, batch, partition) :
      sql`SELECT * FROM (${winners(sql, p, batch, partition)}) AS w WHERE NOT EXISTS (
        SELECT 1 FROM ${sql(p.tombstones)} AS tomb
        WHERE ${keysEqual(sql, p.key, "tomb", "w")} AND ${versionOf(sql, p, "tomb")} > ${versionOf(sql, p, "w")})`
    const newer = sql`${versionOf(sql, p, "target")} <= ${versionOf(sql, p, "source")}`
    const deleted = p.deleted === undefined ? undefined : sql`source.${sql(p.deleted)}`
    return sql`MERGE INTO ${sql(p.table)} AS target
      USING (${source}) AS source ON ${keysEqual(sql, p.key, "target", "source")}
      ${deleted === undefined ? sql`` : sql`WHEN MATCHED AND ${newer} AND ${deleted} THEN DELETE`}
      WHEN MATCHED AND ${newer} AND (${qualified(sql, "target", versioned)}) IS DISTINCT FROM (${
      qualified(sql, "source", versioned)
    }) THEN UPDATE SET ${sql.csv(versioned.map((name) => sql`${sql(name)} = source.${sql(name)}`))}
      WHEN NOT MATCHED ${deleted === undefined ? sql`` : sql`AND NOT ${deleted}`} THEN INSERT (${
      Table.columnList(sql, inserted)
    }) VALUES (${qualified(sql, "source", inserted)})`
  }

  /**
   * After {@link mergeRows}: a deletion that won leaves (or moves forward) its key's tombstone; an
   * upsert that won removes it. A winner older than the key's live row changes nothing.
   */
  const mergeTombstones = (
    sql: SqlClient.SqlClient,
    tombstones: string,
    deleted: string,
    batch: Batch,
    partition: Partition.PartitionDate
  ) => {
    const version = [p.orderBy, partitionColumn]
    const newer = sql`${versionOf(sql, p, "tomb")} <= ${versionOf(sql, p, "source")}`
    return sql`MERGE INTO ${sql(tombstones)} AS tomb
      USING (SELECT * FROM (${winners(sql, p, batch, partition)}) AS w WHERE NOT EXISTS (
        SELECT 1 FROM ${sql(p.table)} AS live
        WHERE ${keysEqual(sql, p.key, "live", "w")} AND ${versionOf(sql, p, "live")} > ${versionOf(sql, p, "w")}
      )) AS source ON ${keysEqual(sql, p.key, "tomb", "source")}
      WHEN MATCHED AND ${newer} AND source.${sql(deleted)} THEN UPDATE SET ${
      sql.csv(version.map((name) => sql`${sql(name)} = source.${sql(name)}`))
    }
      WHEN MATCHED AND ${newer} THEN DELETE
      WHEN NOT MATCHED AND source.${sql(deleted)} THEN INSERT (${Table.columnList(sql, [...p.key, ...version])})
        VALUES (${qualified(sql, "source", [...p.key, ...version])})`
  }

  // made once, not an `Effect.gen` per batch: a generator made per batch and closing over it made V8
  // promote the batch's records (measured on the runner's stream writer and in a minimal program;
  // see ARCHITECTURE.md, "What the load costs Node")
  const mergeBatch = Effect.fnUntraced(
    function*(sql: SqlClient.SqlClient, batch: Batch, partition: Partition.PartitionDate) {
      yield* lockTable(sql, p.table)
      yield* mergeRows(sql, batch, partition)
      if (p.tombstones !== undefined && p.deleted !== undefined) {
        yield* mergeTombstones(sql, p.tombstones, p.deleted, batch, partition)
      }
    }
  )

  const write = Effect.fn("Merge.write")(function*(partition: Partition.PartitionDate, rows: ReadonlyArray<A>) {
    if (rows.length === 0) return
    yield* Effect.annotateCurrentSpan({ table: p.table, rows: rows.length })
    const sql = yield* SqlClient.SqlClient
    const arrays = yield* Table.toColumnArrays({ table: p.table, columns: p.columns, rows, toRow: spec.toRow })
    yield* requireKeys(arrays)
    const batch = p.deletedIndex < 0
      ? arrays
      : arrays.map((values, i) => i === p.deletedIndex ? values.map((v) => v === true) : values)
    yield* mergeBatch(sql, unnestBatch(sql, p, batch), partition).pipe(mapSqlError(`merge into ${p.table}`))
  })

  /** A row's values as the copy sends them: the deleted flag `true` or `false`, as `write` takes it. */
  const copyRow = p.deletedIndex < 0 ? spec.toRow : (row: A) => {
    const values = spec.toRow(row)
    if (values.length !== p.columns.length) return values
    const out = values.slice()
    out[p.deletedIndex] = out[p.deletedIndex] === true
    return out
  }
  const copy = CopyIn.makeStream<A>({
    table: staging,
    columns: p.columns,
    toRow: copyRow,
    operation: `merge into ${p.table}`
  })
  /** `write`'s refusal of a NULL key or ordering value, row by row. */
  const requireKeysOf = (values: ReadonlyArray<unknown>) => {
    for (const i of p.requiredIndexes) if (values[i] == null) return `${p.columns[i]!.name} is null`
    return undefined
  }

  /**
   * A stream of batches as one merge: copied into a temporary table (the arrival order numbered by
   * an identity column), then deduplicated and merged with the statements of `write`. Merging the
   * batches one by one gives the same table: of a key's versions the greatest wins, ties to the
   * later arrival, whichever batch they came in (all of them are of one partition).
   */
  const writeBatches = <E>(partition: Partition.PartitionDate, batches: Stream.Stream<ReadonlyArray<A>, E>) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const definitions = p.columns.map((column) =>
        sql`${sql(column.name)} ${sql.literal(Table.sqlTypeOf(column.type))}`
      )
      yield* sql`CREATE TEMP TABLE ${sql(staging)} (${
        sql.csv([...definitions, sql`${sql(arrival.name)} bigint GENERATED ALWAYS AS IDENTITY`])
      }) ON COMMIT DROP`.pipe(mapSqlError(`merge into ${p.table}`))
      const copied = yield* copy(batches, requireKeysOf)
      if (Option.isSome(copied)) {
        yield* mergeBatch(sql, sql`${sql(staging)} AS batch`, partition).pipe(mapSqlError(`merge into ${p.table}`))
      }
      yield* sql`DROP TABLE ${sql(staging)}`.pipe(mapSqlError(`merge into ${p.table}`))
      if (Option.isNone(copied)) yield* Stream.runForEach(batches, (rows) => write(partition, rows))
    }).pipe(Effect.withSpan("Merge.writeBatches", { attributes: { table: p.table } }))

  return {
    target: p.table,
    prepare: () => Effect.void,
    write,
    writeBatches: spec.load === "unnest" ? undefined : writeBatches,
    complete: () => Effect.void,
    check
  }
}

/**
 * An aggregate of the source rows of a key, written to one column of the recomputed table.
 * `count` without `of` counts rows; with `of`, non-null values.
 *
 * @since 0.1.0
 * @category models
 */
export interface Measure {
  readonly column: string
  readonly aggregate: "count" | "sum" | "min" | "max"
  /** The source column aggregated; required except for `count`. */
  readonly of?: string | undefined
}

/**
 * A table of aggregates per key, recomputed from a partition-replaced source table.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecomputeSpec {
  /** The aggregate table, e.g. `analytics.customer_metrics`. */
  readonly table: string
  /** The key columns, named alike in the source and the aggregate table. */
  readonly key: ReadonlyArray<string>
  /** The source table and its partition column. */
  readonly from: { readonly table: string; readonly partitionColumn: string }
  readonly measures: ReadonlyArray<Measure>
}

/**
 * A derived step of partition replacement (see `PartitionReplace.make`'s `derived`) that keeps
 * `table` equal to the aggregates of `from` per key, and `all`, an effect that recomputes every key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Recompute extends DerivedStep {
  /** Recomputes every key of the source and of the table (e.g. in the migration creating it). */
  readonly all: Effect.Effect<void, SinkError.SinkError, SqlClient.SqlClient>
}

/** The flag of a touched key left without source rows, in the source of the recompute's MERGE. */
const gone = "sluice_gone"

/** FNV-1a, 32 bits, as 8 hex digits: a short, stable suffix for generated names. */
const fnv1a = (text: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return (h >>> 0).toString(16).padStart(8, "0")
}

/**
 * A derived step that recomputes, from the source table, the aggregates of every key the load of a
 * partition touched: the keys of the partition's old rows (captured by `before`, in a temporary
 * table, before they are deleted) and of its new rows.
 *
 * **Details**
 *
 * In `run` (the load's `complete`), after locking the table against concurrent merges:
 *
 * ```sql
 * MERGE INTO table AS target
 * USING (<touched keys> LEFT JOIN (SELECT key, aggregates FROM source WHERE key IN touched GROUP BY key)) AS source
 * ON <key>
 * WHEN MATCHED AND <the key has no source rows left> THEN DELETE
 * WHEN MATCHED AND <an aggregate differs> THEN UPDATE SET …
 * WHEN NOT MATCHED AND <the key has source rows> THEN INSERT …
 * ```
 *
 * Keys that were not touched are unchanged by the load, so their rows stay right: re-running a
 * partition, or loading partitions that share keys, in any order, gives the aggregates of the
 * source as it is. Source rows with a NULL key column are ignored.
 *
 * **Gotchas**
 *
 * `before` and `run` must run in one transaction (the load's): the touched keys live in a
 * temporary table dropped at commit.
 *
 * @example
 * ```ts
 * import { Merge, PartitionReplace } from "@sluice/sql"
 *
 * const customerMetrics = Merge.recompute({
 *   table: "analytics.customer_metrics",
 *   key: ["customer_id"],
 *   from: { table: "raw.orders", partitionColumn: "order_date" },
 *   measures: [
 *     { column: "total_orders", aggregate: "count" },
 *     { column: "lifetime_value", aggregate: "sum", of: "amount" },
 *     { column: "last_order_date", aggregate: "max", of: "order_date" }
 *   ]
 * })
 *
 * const orders = PartitionReplace.make<{ readonly date: string; readonly customer: number; readonly amount: string }>({
 *   table: "raw.orders",
 *   partitionColumn: "order_date",
 *   columns: [
 *     { name: "order_date", type: "date" },
 *     { name: "customer_id", type: "bigint" },
 *     { name: "amount", type: "numeric" }
 *   ],
 *   toRow: (o) => [o.date, o.customer, o.amount],
 *   derived: [customerMetrics]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const recompute = (spec: RecomputeSpec): Recompute => {
  const { table, key, measures } = spec
  const source = spec.from.table
  Table.validateTable(table)
  Table.validateTable(source)
  Table.validateColumn(source, spec.from.partitionColumn)
  if (key.length === 0) throw new Table.InvalidTableSpec({ table, reason: "no key columns" })
  if (measures.length === 0) throw new Table.InvalidTableSpec({ table, reason: "no measures" })
  for (const k of key) Table.validateColumn(table, k)
  const targets = new Set<string>(key)
  if (targets.size !== key.length) throw new Table.InvalidTableSpec({ table, reason: "duplicate key column" })
  if (targets.has(gone)) throw new Table.InvalidTableSpec({ table, reason: `${gone} is reserved` })
  for (const m of measures) {
    Table.validateColumn(table, m.column)
    if (targets.has(m.column) || m.column === gone) {
      throw new Table.InvalidTableSpec({ table, reason: `duplicate column ${m.column}` })
    }
    targets.add(m.column)
    if (!["count", "sum", "min", "max"].includes(m.aggregate)) {
      throw new Table.InvalidTableSpec({ table, reason: `unsupported aggregate ${String(m.aggregate)}` })
    }
    if (m.of === undefined && m.aggregate !== "count") {
      throw new Table.InvalidTableSpec({ table, reason: `measure ${m.column}: ${m.aggregate} needs \`of\`` })
    }
    if (m.of !== undefined) Table.validateColumn(source, m.of)
  }
  const columns = measures.map((m) => m.column)
  const touched = `pg_temp.sluice_touched_${table.replace(".", "_").slice(0, 36)}_${fnv1a(table)}`

  const aggregate = (sql: SqlClient.SqlClient, m: Measure) =>
    sql`${sql.literal(m.aggregate)}(${m.of === undefined ? sql.literal("*") : sql`s.${sql(m.of)}`}) AS ${sql(m.column)}`
  const keyList = (sql: SqlClient.SqlClient) => Table.columnList(sql, key)
  const keyNotNull = (sql: SqlClient.SqlClient, alias: string) =>
    sql.and(key.map((k) => sql`${sql.literal(alias)}.${sql(k)} IS NOT NULL`))

  /** Merges the aggregates of the keys `keys` selects (distinct, non-null) into the table. */
  const mergeKeys = (sql: SqlClient.SqlClient, keys: Statement.Fragment) =>
    sql`MERGE INTO ${sql(table)} AS target
      USING (
        SELECT ${qualified(sql, "k", key)}, ${qualified(sql, "agg", columns)}, agg.${sql(key[0]!)} IS NULL AS ${
      sql(gone)
    }
        FROM (${keys}) AS k
        LEFT JOIN (
          SELECT ${qualified(sql, "s", key)}, ${sql.csv(measures.map((m) => aggregate(sql, m)))}
          FROM ${sql(source)} AS s
          WHERE (${qualified(sql, "s", key)}) IN (${keys})
          GROUP BY ${qualified(sql, "s", key)}
        ) AS agg ON ${keysEqual(sql, key, "agg", "k")}
      ) AS source ON ${keysEqual(sql, key, "target", "source")}
      WHEN MATCHED AND source.${sql(gone)} THEN DELETE
      WHEN MATCHED AND (${qualified(sql, "target", columns)}) IS DISTINCT FROM (${
      qualified(sql, "source", columns)
    }) THEN UPDATE SET ${sql.csv(columns.map((c) => sql`${sql(c)} = source.${sql(c)}`))}
      WHEN NOT MATCHED AND NOT source.${sql(gone)} THEN INSERT (${Table.columnList(sql, [...key, ...columns])})
        VALUES (${qualified(sql, "source", [...key, ...columns])})`

  const keysOfPartition = (sql: SqlClient.SqlClient, partition: Partition.PartitionDate) =>
    sql`SELECT DISTINCT ${qualified(sql, "s", key)} FROM ${sql(source)} AS s
      WHERE s.${sql(spec.from.partitionColumn)} = ${Table.date(partition)} AND ${keyNotNull(sql, "s")}`

  const before = Effect.fn("Merge.recompute.before")(function*(partition: Partition.PartitionDate) {
    yield* Effect.annotateCurrentSpan({ table, partition })
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP TABLE IF EXISTS ${sql(touched)}`
    yield* sql`CREATE TEMP TABLE ${sql(touched)} ON COMMIT DROP AS SELECT ${qualified(sql, "s", key)} FROM ${
      sql(source)
    } AS s WITH NO DATA`
    yield* sql`INSERT INTO ${sql(touched)} ${keysOfPartition(sql, partition)}`
  }, mapSqlError(`capture the keys of ${source} touched by the partition, for ${table}`))

  const run = Effect.fn("Merge.recompute.run")(function*(partition: Partition.PartitionDate) {
    yield* Effect.annotateCurrentSpan({ table, partition })
    const sql = yield* SqlClient.SqlClient
    yield* lockTable(sql, table)
    yield* sql`INSERT INTO ${sql(touched)} ${keysOfPartition(sql, partition)}`
    yield* mergeKeys(sql, sql`SELECT DISTINCT ${keyList(sql)} FROM ${sql(touched)}`)
    yield* sql`DROP TABLE ${sql(touched)}`
  }, mapSqlError(`recompute ${table}`))

  const all = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* lockTable(sql, table)
    yield* mergeKeys(
      sql,
      sql`SELECT ${qualified(sql, "s", key)} FROM ${sql(source)} AS s WHERE ${keyNotNull(sql, "s")}
        UNION SELECT ${keyList(sql)} FROM ${sql(table)}`
    )
  }).pipe(mapSqlError(`recompute ${table}`), Effect.withSpan("Merge.recompute.all", { attributes: { table } }))

  return { target: table, before, run, all }
}
