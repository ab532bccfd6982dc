/**
 * Slowly changing dimensions (types 1, 2 and 3) fed by change records, exact under late,
 * out-of-order, duplicated and re-delivered changes, and idempotent under re-runs.
 *
 * **How a load works**
 *
 * A dimension is never patched from the rows of one batch. Instead:
 *
 * 1. The change records of the run's partition are kept in a **change log** (e.g.
 *    `raw.customer_changes`: the partition, an arrival number, the key, the change timestamp, the
 *    attributes and a deleted flag), loaded by partition replacement ({@link PartitionReplace.make}):
 *    a re-run replaces the partition's change records, it never adds to them.
 * 2. Before the partition's old change records are deleted, their keys are captured in a
 *    temporary table; the keys of the new records are added after they are written. These are the
 *    **touched keys**: the only keys whose dimension rows can differ.
 * 3. The dimension rows of the touched keys are **recomputed from the whole change log** in one
 *    SQL statement (window functions: `LAG` finds changes in tracked columns, a running `SUM`
 *    numbers the versions, `LEAD` gives each version its end), into a temporary table.
 * 4. The result is applied to the dimension as a **diff**, by the dimension's key (`key` for types
 *    1 and 3, `(key, effective_start)` for type 2): rows that no longer exist are deleted, rows
 *    whose values changed are updated, new rows are inserted. Unchanged rows are not rewritten.
 *
 * Everything happens in the load's transaction: a failing or interrupted load leaves the change
 * log and the dimension as they were. A transaction-level advisory lock on the dimension
 * serializes the recomputation of concurrent loads of different partitions (on PostgreSQL), so
 * each one sees the other's committed change records.
 *
 * **The ordered change history of a key** (every type starts from it)
 *
 * - A change's timestamp is the record's change timestamp; a record without one changes at the
 *   start (00:00 UTC) of its partition's day. The clock is never read.
 * - Changes are ordered by timestamp. Several changes of one key with the **same timestamp**: the
 *   one that **arrived later** wins and the others are discarded, where arrival is ordered by
 *   partition, then by the position of the record in its partition's load. Exact duplicates
 *   therefore collapse into one change, wherever they are delivered.
 * - A change is either live (it carries the attribute values) or a delete (the declared deleted
 *   flag is set; its attribute values are ignored).
 *
 * **Type 1** (overwrite): one row per key with the values of the key's latest change (by
 * timestamp, whatever the arrival order) and its timestamp (`last_changed_at`). Deletes:
 * `"delete"` (default) removes the row when the latest change is a delete; `"ignore"` drops every
 * delete change as if it had not been sent.
 *
 * **Type 2** (history): one row per version, `effective_start` inclusive, `effective_end`
 * exclusive (`9999-12-31` for the open version), `is_current`. Walking the history:
 *
 * - a live change whose tracked values differ (`IS DISTINCT FROM`) from the previous change's
 *   opens a version; otherwise it extends the current version (changes of untracked columns
 *   never create a version: a version carries the untracked values of its **latest** change);
 * - a version ends where the next one starts, so a key's versions never overlap and leave no gap;
 * - deletes (`deletes` option): `"ignore"` drops them; `"close"` (default) ends the version open
 *   at the delete, leaving the key without a current row (a gap) until a later live change
 *   re-opens it; `"version"` opens a deleted version (`is_deleted = true`, carrying the values of
 *   the version it follows) which is the key's current row until a later live change. A live
 *   change after a delete always opens a version, even with the same values. Deletes before a
 *   key's first live change, and deletes following a delete, change nothing.
 *
 * A late change (older than the current version) thus lands at its place in history, and its
 * neighbours are re-linked; a re-run of the same batch computes the same versions and writes
 * nothing.
 *
 * **Type 3** (previous value): like type 1, plus a column `previous_<c>` per tracked column `c`:
 * over the key's live changes in timestamp order (deletes excluded), the value `c` had just
 * before its most recent change, i.e. `v[j-1].c` for the largest `j` with `v[j].c IS DISTINCT
 * FROM v[j-1].c`; `NULL` when `c` never changed. (`A → B → A` gives `previous = B`.)
 *
 * **Gotchas**
 *
 * - The sink must run inside a transaction, as `Pipeline.run` runs it (with `SqlTransactor`): the
 *   touched keys live in a temporary table from `prepare` to `complete`, on one connection.
 * - Timestamps must be before `9999-12-31T00:00:00Z`, the open end of type 2 versions; records
 *   without a key or with a timestamp out of range are dead-lettered (stage `load`).
 * - Each dimension needs its own change log: a change log is the history of one dimension, and a
 *   re-run of its partition recomputes that dimension only.
 * - Strategy columns have fixed names: `arrival` in the change log; `effective_start`,
 *   `effective_end`, `is_current`, `is_deleted`, `last_changed_at`, `previous_<c>` in dimensions.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline, Source, Transform } from "@sluice/core"
 * import { Scd } from "@sluice/sql"
 * import { Schema, Stream } from "effect"
 *
 * const Change = Schema.Struct({ id: Schema.Int, city: Schema.String, at: Schema.Finite })
 * const cities = Scd.type2<typeof Change.Type>({
 *   changes: "raw.city_changes",
 *   dimension: "analytics.dim_city",
 *   key: { name: "id", type: "int" },
 *   attributes: [{ name: "city", type: "text" }],
 *   tracked: ["city"],
 *   toChange: (c) => ({ key: c.id, changedAt: c.at, values: [c.city] })
 * })
 * // in a migration: cities.createTables
 * const pipeline = Pipeline.make({
 *   name: "cities",
 *   source: Source.make("inline", () => Stream.make({ payload: "{\"id\":1,\"city\":\"Lyon\",\"at\":0}", position: 1 })),
 *   transform: Transform.fromSchema(Change),
 *   sink: cities.sink
 * })
 * const program = Pipeline.run(pipeline, Partition.makeUnsafe("2024-03-01"))
 * ```
 *
 * @since 0.1.0
 */
import type { Partition, Sink } from "@sluice/core"
import { RecordError, SinkError } from "@sluice/core"
import { Effect, Stream } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import { mapSqlError } from "./internal/sinkError.ts"
import * as PartitionReplace from "./PartitionReplace.ts"
import * as Table from "./Table.ts"

/**
 * One change record, as the strategy needs it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Change {
  /** The business key; `null` or `undefined` is dead-lettered as `MissingKey`. */
  readonly key: unknown
  /**
   * When the change happened: a `Date` or epoch milliseconds; absent: the partition's day, 00:00 UTC.
   * Changes are ordered to the millisecond: an app whose source sends finer instants should reject
   * them (as the customers sample does) rather than round them, or two changes a fraction of a
   * millisecond apart tie and go to the later arrival.
   */
  readonly changedAt?: Date | number | undefined
  /** One value per attribute, in the order of `attributes` (ignored for a delete). */
  readonly values: ReadonlyArray<unknown>
  /** The record says the key was deleted at the source. */
  readonly deleted?: boolean | undefined
}

/**
 * What every type needs: the change log, the dimension, the key and the attributes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<A> {
  /** The change-log table, `table` or `schema.table`. */
  readonly changes: string
  /** The change log's partition column (`date`); `"partition_date"` by default. */
  readonly partitionColumn?: string | undefined
  /** The dimension table. */
  readonly dimension: string
  /** The business key column (in both tables). */
  readonly key: Table.Column
  /** The change timestamp column of the change log; `"changed_at"` by default. */
  readonly changedAt?: string | undefined
  /** The deleted flag column of the change log; `"is_deleted"` by default. */
  readonly deleted?: string | undefined
  /** The attribute columns (in both tables; nullable). */
  readonly attributes: ReadonlyArray<Table.Column>
  readonly toChange: (record: A) => Change
  /**
   * How the change log is written: `"copy"` (the default; a pipeline's stream of batches is one
   * `COPY … FROM STDIN`, see {@link PartitionReplace}) or `"unnest"` (`INSERT … SELECT` per batch).
   */
  readonly load?: "copy" | "unnest" | undefined
}

/**
 * What a source delete does to a type 1 or type 3 dimension (see the module documentation).
 *
 * @since 0.1.0
 * @category models
 */
export type OverwriteDeletes = "ignore" | "delete"

/**
 * What a source delete does to a type 2 dimension (see the module documentation).
 *
 * @since 0.1.0
 * @category models
 */
export type HistoryDeletes = "ignore" | "close" | "version"

/**
 * @since 0.1.0
 * @category models
 */
export interface Type1Spec<A> extends Spec<A> {
  /** `"delete"` by default. */
  readonly deletes?: OverwriteDeletes | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Type2Spec<A> extends Spec<A> {
  /** The attributes whose change opens a new version. */
  readonly tracked: ReadonlyArray<string>
  /** `"close"` by default. */
  readonly deletes?: HistoryDeletes | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Type3Spec<A> extends Spec<A> {
  /** The attributes that get a `previous_<name>` column. */
  readonly tracked: ReadonlyArray<string>
  /** `"delete"` by default. */
  readonly deletes?: OverwriteDeletes | undefined
}

/**
 * What applying a recomputation changed in the dimension.
 *
 * @since 0.1.0
 * @category models
 */
export interface Diff {
  readonly deleted: number
  readonly updated: number
  readonly inserted: number
}

/**
 * A slowly changing dimension: its sink, the DDL of its tables and a full rebuild.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scd<A> {
  readonly type: 1 | 2 | 3
  readonly changes: string
  readonly dimension: string
  /** The change log's columns, in table order. */
  readonly changeColumns: ReadonlyArray<Table.Column>
  /** The dimension's columns, in table order. */
  readonly dimensionColumns: ReadonlyArray<Table.Column>
  /** The dimension's primary key: `[key]`, or `[key, "effective_start"]` for type 2. */
  readonly dimensionKey: ReadonlyArray<string>
  /**
   * Loads the change log by partition replacement and brings the dimension up to date for the
   * touched keys, in the load transaction. Dead-letters records without a key or with a change
   * timestamp outside `[0001-01-01, 9999-12-31)` (stage `load`).
   */
  readonly sink: Sink.Sink<A, SqlClient.SqlClient>
  /** Creates both tables and their indexes if they do not exist: use it in a migration. */
  readonly createTables: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>
  /** Recomputes every key of the dimension from the change log, in a transaction (repair). */
  readonly rebuild: Effect.Effect<Diff, SinkError.SinkError, SqlClient.SqlClient>
}

/**
 * `effective_start` of type 2 dimensions.
 *
 * @since 0.1.0
 * @category constants
 */
export const effectiveStart = "effective_start"

/**
 * `effective_end` of type 2 dimensions (exclusive).
 *
 * @since 0.1.0
 * @category constants
 */
export const effectiveEnd = "effective_end"

/**
 * `is_current` of type 2 dimensions.
 *
 * @since 0.1.0
 * @category constants
 */
export const isCurrent = "is_current"

/**
 * `is_deleted` of type 2 dimensions with `deletes: "version"`.
 *
 * @since 0.1.0
 * @category constants
 */
export const isDeleted = "is_deleted"

/**
 * `last_changed_at` of type 1 and type 3 dimensions: the timestamp of the change that gave the row its values.
 *
 * @since 0.1.0
 * @category constants
 */
export const lastChangedAt = "last_changed_at"

/**
 * The change log's arrival column: the record's position in its partition's load (1, 2, …).
 *
 * @since 0.1.0
 * @category constants
 */
export const arrival = "arrival"

/**
 * The `effective_end` of an open version, `9999-12-31T00:00:00Z`, in epoch milliseconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const openEndMillis = Date.UTC(9999, 11, 31)

/**
 * The name of the previous-value column of a tracked column in a type 3 dimension.
 *
 * @since 0.1.0
 * @category constants
 */
export const previousColumn = (column: string): string => `previous_${column}`

/** 0001-01-01T00:00:00Z: PostgreSQL has earlier instants, but no change record does. */
const minMillis = -62_135_596_800_000

/** The range of a change timestamp, as a dead letter names it. */
const changedAtRange = `from ${new Date(minMillis).toISOString()} to before ${new Date(openEndMillis).toISOString()}`

/** A change timestamp as ISO 8601 when it is an instant at all, else as the number it is. */
const showMillis = (millis: number): string => {
  const date = new Date(millis)
  return Number.isNaN(date.getTime()) ? String(millis) : date.toISOString()
}
const openEndLiteral = "'9999-12-31 00:00:00+00'::timestamptz"
const reservedPrefix = "scd__"

interface Resolved<A> {
  readonly spec: Spec<A>
  readonly partitionColumn: string
  readonly changedAt: string
  readonly deleted: string
  readonly attributeNames: ReadonlyArray<string>
  /** The columns of the change log, in table order. */
  readonly changeColumns: ReadonlyArray<Table.Column>
}

const resolve = <A>(spec: Spec<A>, extraDimensionColumns: ReadonlyArray<string>): Resolved<A> => {
  Table.validateTable(spec.changes)
  Table.validateTable(spec.dimension)
  if (spec.changes === spec.dimension) {
    throw new Table.InvalidTableSpec({
      table: spec.dimension,
      reason: "the change log and the dimension are one table"
    })
  }
  const partitionColumn = spec.partitionColumn ?? "partition_date"
  const changedAt = spec.changedAt ?? "changed_at"
  const deleted = spec.deleted ?? "is_deleted"
  const attributeNames = spec.attributes.map((column) => column.name)
  const changeColumns: ReadonlyArray<Table.Column> = [
    { name: partitionColumn, type: "date" },
    { name: arrival, type: "int" },
    spec.key,
    { name: changedAt, type: "timestamptz" },
    ...spec.attributes,
    { name: deleted, type: "bool" }
  ]
  Table.validateColumns(spec.changes, changeColumns)
  Table.validateColumns(spec.dimension, [
    spec.key,
    ...spec.attributes,
    ...extraDimensionColumns.map((name) => ({ name, type: "text" as const }))
  ])
  for (const name of [spec.key.name, ...attributeNames]) {
    if (name.startsWith(reservedPrefix)) {
      throw new Table.InvalidTableSpec({
        table: spec.dimension,
        reason: `column ${name}: ${reservedPrefix}* is reserved`
      })
    }
  }
  return { spec, partitionColumn, changedAt, deleted, attributeNames, changeColumns }
}

const requireTracked = (table: string, attributes: ReadonlyArray<string>, tracked: ReadonlyArray<string>): void => {
  const seen = new Set<string>()
  for (const name of tracked) {
    if (!attributes.includes(name)) {
      throw new Table.InvalidTableSpec({ table, reason: `tracked column ${name} is not an attribute` })
    }
    if (seen.has(name)) throw new Table.InvalidTableSpec({ table, reason: `tracked column ${name} listed twice` })
    seen.add(name)
  }
}

/** A temporary table name of at most 63 characters, stable for a dimension. */
const tempName = (role: string, table: string): string => {
  const base = `sluice_scd_${role}_${table.replaceAll(".", "_")}`
  if (base.length <= 63) return base
  let h = 0x811c9dc5
  for (let i = 0; i < table.length; i++) h = Math.imul(h ^ table.charCodeAt(i), 0x01000193)
  return `${base.slice(0, 54)}_${(h >>> 0).toString(16).padStart(8, "0")}`
}

const partitionStartMillis = (partition: Partition.PartitionDate): number =>
  Date.UTC(Number(partition.slice(0, 4)), Number(partition.slice(5, 7)) - 1, Number(partition.slice(8, 10)))

const millisOf = (changedAt: Date | number | undefined, partition: Partition.PartitionDate | undefined) =>
  changedAt === undefined
    ? partition === undefined ? undefined : partitionStartMillis(partition)
    : changedAt instanceof Date
    ? changedAt.getTime()
    : changedAt

/** How a type computes its rows for the touched keys, and what its dimension looks like. */
interface Strategy {
  readonly type: 1 | 2 | 3
  /** Columns after the key and the attributes. */
  readonly extraColumns: ReadonlyArray<Table.Column>
  /** Those of `extraColumns` that may be NULL. */
  readonly nullable?: ReadonlyArray<string> | undefined
  /** Columns of the dimension's primary key. */
  readonly dimensionKey: ReadonlyArray<string>
  /** A SELECT of every dimension column (in table order) for the keys in `touched`. */
  readonly desired: (sql: SqlClient.SqlClient, touched: string) => Statement.Fragment
  /** Extra DDL after the dimension is created (indexes). */
  readonly dimensionDdl?:
    | ((sql: SqlClient.SqlClient) => ReadonlyArray<Effect.Effect<unknown, SqlError.SqlError>>)
    | undefined
}

const make = <A>(resolved: Resolved<A>, strategy: Strategy): Scd<A> => {
  const { spec, partitionColumn, changedAt, changeColumns } = resolved
  const key = spec.key.name
  const dimensionColumns: ReadonlyArray<Table.Column> = [spec.key, ...spec.attributes, ...strategy.extraColumns]
  const dimensionNames = dimensionColumns.map((column) => column.name)
  const valueNames = dimensionNames.filter((name) => !strategy.dimensionKey.includes(name))
  const touched = tempName("touched", spec.dimension)
  const desired = tempName("desired", spec.dimension)
  const attributeCount = spec.attributes.length

  const storableChange = Table.storable(
    spec.changes,
    [spec.key, ...spec.attributes],
    (change: { readonly key: unknown; readonly values: ReadonlyArray<unknown> }) => [change.key, ...change.values]
  )
  const check = (record: A): RecordError.RecordError | undefined => {
    const change = spec.toChange(record)
    if (change.key === null || change.key === undefined) {
      return new RecordError.RecordError({
        reason: new RecordError.MissingKey({ columns: [key], message: `the change has no ${key}` })
      })
    }
    const millis = millisOf(change.changedAt, undefined)
    if (millis !== undefined && !(Number.isFinite(millis) && millis >= minMillis && millis < openEndMillis)) {
      return new RecordError.RecordError({
        reason: new RecordError.RuleViolation({
          rule: "scd_changed_at_in_range",
          message: `${changedAt} ${showMillis(millis)} is out of range: a change timestamp must be ${changedAtRange}`
        })
      })
    }
    return storableChange(change)
  }

  const lock = (sql: SqlClient.SqlClient) =>
    sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.scd:${spec.dimension}`}, 0))`

  const createTouched = (sql: SqlClient.SqlClient) =>
    Effect.andThen(
      sql`DROP TABLE IF EXISTS pg_temp.${sql(touched)}`,
      sql`CREATE TEMPORARY TABLE ${sql(touched)} (${sql(key)} ${
        sql.literal(Table.sqlTypeOf(spec.key.type))
      } PRIMARY KEY)`
    )

  const addKeys = (sql: SqlClient.SqlClient, partition: Partition.PartitionDate) =>
    sql`INSERT INTO pg_temp.${sql(touched)} (${sql(key)})
        SELECT DISTINCT ${sql(key)} FROM ${sql(spec.changes)} WHERE ${sql(partitionColumn)} = ${Table.date(partition)}
        ON CONFLICT DO NOTHING`

  const matchKey = (left: string, right: string) => (sql: SqlClient.SqlClient) =>
    sql.and(
      strategy.dimensionKey.map((name) => sql`${sql.literal(left)}.${sql(name)} = ${sql.literal(right)}.${sql(name)}`)
    )

  const count = (sql: SqlClient.SqlClient, statement: Statement.Fragment) =>
    Effect.map(
      sql<{ readonly n: number }>`WITH changed AS (${statement} RETURNING 1) SELECT count(*)::int AS n FROM changed`,
      (rows) => rows[0]?.n ?? 0
    )

  /** Recomputes the touched keys into the desired table and applies the diff. */
  const apply = (sql: SqlClient.SqlClient) =>
    Effect.gen(function*() {
      yield* sql`DROP TABLE IF EXISTS pg_temp.${sql(desired)}`
      yield* sql`CREATE TEMPORARY TABLE ${sql(desired)} AS ${strategy.desired(sql, touched)}`
      const deletedRows = yield* count(
        sql,
        sql`DELETE FROM ${sql(spec.dimension)} d USING pg_temp.${sql(touched)} t
            WHERE d.${sql(key)} = t.${sql(key)}
              AND NOT EXISTS (SELECT 1 FROM pg_temp.${sql(desired)} x WHERE ${matchKey("x", "d")(sql)})`
      )
      const updated = valueNames.length === 0 ? 0 : yield* count(
        sql,
        sql`UPDATE ${sql(spec.dimension)} d
            SET ${sql.csv(valueNames.map((name) => sql`${sql(name)} = x.${sql(name)}`))}
            FROM pg_temp.${sql(desired)} x
            WHERE ${matchKey("d", "x")(sql)}
              AND ROW(${sql.csv(valueNames.map((name) => sql`d.${sql(name)}`))})
                  IS DISTINCT FROM ROW(${sql.csv(valueNames.map((name) => sql`x.${sql(name)}`))})`
      )
      const inserted = yield* count(
        sql,
        sql`INSERT INTO ${sql(spec.dimension)} (${Table.columnList(sql, dimensionNames)})
            SELECT ${sql.csv(dimensionNames.map((name) => sql`x.${sql(name)}`))} FROM pg_temp.${sql(desired)} x
            WHERE NOT EXISTS (SELECT 1 FROM ${sql(spec.dimension)} d WHERE ${matchKey("d", "x")(sql)})`
      )
      yield* sql`DROP TABLE pg_temp.${sql(desired)}`
      yield* sql`DROP TABLE pg_temp.${sql(touched)}`
      const diff: Diff = { deleted: deletedRows, updated, inserted }
      yield* Effect.annotateCurrentSpan({ ...diff })
      return diff
    })

  const step: PartitionReplace.DerivedStep = {
    target: spec.dimension,
    before: (partition) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.andThen(createTouched(sql), addKeys(sql, partition))).pipe(
        Effect.asVoid,
        mapSqlError(`capture the keys of ${spec.changes} ${partition}`)
      ),
    run: (partition) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        lock(sql).pipe(
          Effect.andThen(addKeys(sql, partition)),
          Effect.andThen(apply(sql))
        )).pipe(
          Effect.asVoid,
          mapSqlError(`recompute ${spec.dimension}`),
          Effect.withSpan("Scd.recompute", { attributes: { dimension: spec.dimension, partition } })
        )
  }

  const inner = PartitionReplace.make<ReadonlyArray<unknown>>({
    table: spec.changes,
    partitionColumn,
    columns: changeColumns,
    toRow: (row) => row,
    derived: [step],
    load: spec.load
  })

  /** The last arrival number of the partition's change records in the log (0 when it has none). */
  const lastArrival = (sql: SqlClient.SqlClient, partition: Partition.PartitionDate) =>
    sql<{ readonly n: number }>`SELECT coalesce(max(${sql(arrival)}), 0)::int AS n
        FROM ${sql(spec.changes)} WHERE ${sql(partitionColumn)} = ${Table.date(partition)}`.pipe(
      Effect.map(([last]) => last?.n ?? 0),
      mapSqlError(`insert into ${spec.changes}`)
    )

  /** A batch's change records as rows of the change log, numbered from `base + 1`. */
  const changeRows = (partition: Partition.PartitionDate, records: ReadonlyArray<A>, base: number) => {
    const rows: Array<ReadonlyArray<unknown>> = []
    for (let i = 0; i < records.length; i++) {
      const change = spec.toChange(records[i]!)
      if (change.values.length !== attributeCount) {
        return Effect.fail(
          new SinkError.SinkError({
            operation: `insert into ${spec.changes}`,
            message: `row ${i}: expected ${attributeCount} attribute values, got ${change.values.length}`,
            retryable: false
          })
        )
      }
      rows.push([
        partition,
        base + i + 1,
        change.key,
        millisOf(change.changedAt, partition),
        ...change.values,
        change.deleted === true
      ])
    }
    return Effect.succeed(rows)
  }

  // made once, not an `Effect.gen` per batch: a generator made per batch and closing over it made V8
  // promote the batch's records (measured on the runner's stream writer and in a minimal program;
  // see ARCHITECTURE.md, "What the load costs Node")
  const writeBatch = Effect.fnUntraced(function*(partition: Partition.PartitionDate, records: ReadonlyArray<A>) {
    const sql = yield* SqlClient.SqlClient
    const base = yield* lastArrival(sql, partition)
    yield* inner.write(partition, yield* changeRows(partition, records, base))
  })

  const write = (partition: Partition.PartitionDate, records: ReadonlyArray<A>) =>
    records.length === 0 ? Effect.void : writeBatch(partition, records).pipe(
      Effect.withSpan("Scd.write", { attributes: { table: spec.changes, rows: records.length } })
    )

  /**
   * A stream of batches into the change log as one COPY (the log's `writeBatches`): arrivals are
   * numbered on from the partition's last one, read once, in the stream's order.
   */
  const writeBatches = inner.writeBatches === undefined ? undefined : <E>(
    partition: Partition.PartitionDate,
    batches: Stream.Stream<ReadonlyArray<A>, E>
  ) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      let next = yield* lastArrival(sql, partition)
      const rows = Stream.mapEffect(batches, (records) => {
        const base = next
        next += records.length
        return changeRows(partition, records, base)
      })
      yield* inner.writeBatches!(partition, rows)
    }).pipe(Effect.withSpan("Scd.writeBatches", { attributes: { table: spec.changes } }))

  const createTables = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const table of [spec.changes, spec.dimension]) {
      const dot = table.indexOf(".")
      if (dot > 0) yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(table.slice(0, dot))}`
    }
    const definition = (column: Table.Column, notNull: boolean) =>
      sql`${sql(column.name)} ${sql.literal(Table.sqlTypeOf(column.type))}${sql.literal(notNull ? " NOT NULL" : "")}`
    const attributes = new Set(resolved.attributeNames)
    const nullable = new Set([...resolved.attributeNames, ...(strategy.nullable ?? [])])
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(spec.changes)} (
      ${sql.csv(changeColumns.map((column) => definition(column, !attributes.has(column.name))))},
      PRIMARY KEY (${sql(partitionColumn)}, ${sql(arrival)})
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(tempName("by_key", spec.changes))}
      ON ${sql(spec.changes)} (${sql(key)}, ${sql(changedAt)})`
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(spec.dimension)} (
      ${sql.csv(dimensionColumns.map((column) => definition(column, !nullable.has(column.name))))},
      PRIMARY KEY (${Table.columnList(sql, strategy.dimensionKey)})
    )`
    for (const statement of strategy.dimensionDdl?.(sql) ?? []) yield* statement
  })

  const rebuild = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* lock(sql)
      yield* createTouched(sql)
      yield* sql`INSERT INTO pg_temp.${sql(touched)} (${sql(key)})
        SELECT ${sql(key)} FROM ${sql(spec.changes)} UNION SELECT ${sql(key)} FROM ${sql(spec.dimension)}`
      return yield* apply(sql)
    }))
  }).pipe(mapSqlError(`rebuild ${spec.dimension}`), Effect.withSpan("Scd.rebuild"))

  return {
    type: strategy.type,
    changes: spec.changes,
    dimension: spec.dimension,
    changeColumns,
    dimensionColumns,
    dimensionKey: strategy.dimensionKey,
    sink: {
      target: spec.dimension,
      prepare: inner.prepare,
      write,
      writeBatches,
      complete: inner.complete,
      check
    },
    createTables,
    rebuild
  }
}

// ---------------------------------------------------------------------------
// SQL shared by the types
// ---------------------------------------------------------------------------

const names = (sql: SqlClient.SqlClient, columns: ReadonlyArray<string>, prefix = "") =>
  sql.csv(columns.map((name) => sql`${sql.literal(prefix)}${sql(name)}`))

/**
 * The history of the touched keys: one change per (key, timestamp), the latest arrival winning,
 * with columns key, timestamp, attributes and `scd__deleted`. Deletes are dropped first when ignored.
 */
const events = <A>(
  sql: SqlClient.SqlClient,
  resolved: Resolved<A>,
  touched: string,
  options: { readonly dropDeletes: boolean }
) => {
  const { spec, partitionColumn, changedAt, deleted, attributeNames } = resolved
  const key = spec.key.name
  return sql`SELECT DISTINCT ON (c.${sql(key)}, c.${sql(changedAt)})
      ${names(sql, [key, changedAt, ...attributeNames], "c.")}, c.${sql(deleted)} AS scd__deleted
    FROM ${sql(spec.changes)} c
    WHERE c.${sql(key)} IN (SELECT ${sql(key)} FROM pg_temp.${sql(touched)})${
    options.dropDeletes ? sql` AND NOT c.${sql(deleted)}` : sql.literal("")
  }
    ORDER BY c.${sql(key)}, c.${sql(changedAt)}, c.${sql(partitionColumn)} DESC, c.${sql(arrival)} DESC`
}

const latestOf = (sql: SqlClient.SqlClient, column: string, order: string) =>
  sql`(array_agg(${sql(column)} ORDER BY ${sql(order)} DESC))[1]`

// ---------------------------------------------------------------------------
// Type 1
// ---------------------------------------------------------------------------

/**
 * A type 1 dimension: one row per key, overwritten with the latest change (by change timestamp,
 * whatever the arrival order). See the module documentation for the exact rules.
 *
 * @example
 * ```ts
 * import { Scd } from "@sluice/sql"
 *
 * interface CustomerChange {
 *   readonly customer_id: number
 *   readonly name: string
 *   readonly city: string
 *   readonly changed_at: Date
 *   readonly deleted?: boolean
 * }
 *
 * const customers = Scd.type1<CustomerChange>({
 *   changes: "raw.customer_changes_scd1",
 *   dimension: "analytics.dim_customer_scd1",
 *   key: { name: "customer_id", type: "bigint" },
 *   attributes: [{ name: "name", type: "text" }, { name: "city", type: "text" }],
 *   toChange: (c) => ({ key: c.customer_id, changedAt: c.changed_at, values: [c.name, c.city], deleted: c.deleted }),
 *   deletes: "delete"
 * })
 * // customers.sink is the pipeline's sink; customers.createTables goes into a migration
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const type1 = <A>(spec: Type1Spec<A>): Scd<A> => {
  const resolved = resolve(spec, [lastChangedAt])
  const deletes = spec.deletes ?? "delete"
  const key = spec.key.name
  return make(resolved, {
    type: 1,
    extraColumns: [{ name: lastChangedAt, type: "timestamptz" }],
    dimensionKey: [key],
    desired: (sql, touched) =>
      sql`SELECT ${names(sql, [key, ...resolved.attributeNames])}, ${sql(resolved.changedAt)} AS ${sql(lastChangedAt)}
        FROM (
          SELECT DISTINCT ON (${sql(key)}) * FROM (${
        events(sql, resolved, touched, { dropDeletes: deletes === "ignore" })
      }) e
          ORDER BY ${sql(key)}, ${sql(resolved.changedAt)} DESC
        ) latest
        WHERE NOT scd__deleted`
  })
}

// ---------------------------------------------------------------------------
// Type 2
// ---------------------------------------------------------------------------

/**
 * A type 2 dimension: one row per version, with `effective_start` (inclusive), `effective_end`
 * (exclusive, `9999-12-31` when open), `is_current`, and `is_deleted` with `deletes: "version"`.
 * Late changes land at their place in history. See the module documentation for the exact rules.
 *
 * **Details**
 *
 * The dimension's primary key is `(key, effective_start)`; a partial unique index allows one
 * current row per key. The sink must run in a transaction (as `Pipeline.run` does): the touched
 * keys live in a temporary table from `prepare` to `complete`.
 *
 * @example
 * ```ts
 * import { Scd } from "@sluice/sql"
 *
 * interface CustomerChange {
 *   readonly customer_id: number
 *   readonly name: string
 *   readonly city: string
 *   readonly email: string | undefined
 *   readonly changed_at: Date
 *   readonly deleted?: boolean
 * }
 *
 * const customers = Scd.type2<CustomerChange>({
 *   changes: "raw.customer_changes_scd2",
 *   dimension: "analytics.dim_customer_scd2",
 *   key: { name: "customer_id", type: "bigint" },
 *   attributes: [{ name: "name", type: "text" }, { name: "city", type: "text" }, { name: "email", type: "text" }],
 *   tracked: ["name", "city"], // a new email alone updates the version in place
 *   deletes: "close",
 *   toChange: (c) => ({
 *     key: c.customer_id,
 *     changedAt: c.changed_at,
 *     values: [c.name, c.city, c.email],
 *     deleted: c.deleted
 *   })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const type2 = <A>(spec: Type2Spec<A>): Scd<A> => {
  const deletes = spec.deletes ?? "close"
  const extra: Array<Table.Column> = [
    { name: effectiveStart, type: "timestamptz" },
    { name: effectiveEnd, type: "timestamptz" },
    { name: isCurrent, type: "bool" }
  ]
  if (deletes === "version") extra.push({ name: isDeleted, type: "bool" })
  requireTracked(spec.dimension, spec.attributes.map((column) => column.name), spec.tracked)
  const resolved = resolve(spec, extra.map((column) => column.name))
  const key = spec.key.name
  const t = resolved.changedAt
  const attributes = resolved.attributeNames
  return make(resolved, {
    type: 2,
    extraColumns: extra,
    dimensionKey: [key, effectiveStart],
    dimensionDdl: (sql) => [
      sql`CREATE UNIQUE INDEX IF NOT EXISTS ${sql(tempName("current", spec.dimension))}
        ON ${sql(spec.dimension)} (${sql(key)}) WHERE ${sql(isCurrent)}`
    ],
    desired: (sql, touched) => {
      const trackedChanged = spec.tracked.length === 0
        ? sql.literal("false")
        : sql`ROW(${names(sql, spec.tracked)}) IS DISTINCT FROM ROW(${
          sql.csv(spec.tracked.map((name) => sql`lag(${sql(name)}) OVER w`))
        })`
      // a deleted version carries the values of the version it follows
      const carried = attributes.map((name) =>
        deletes === "version"
          ? sql`CASE WHEN scd__deleted THEN lag(${sql(name)}) OVER v ELSE ${sql(name)} END AS ${sql(name)}`
          : sql`${sql(name)}`
      )
      return sql`WITH events AS (${events(sql, resolved, touched, { dropDeletes: deletes === "ignore" })}),
        from_first_live AS (
          SELECT * FROM (
            SELECT e.*, min(${sql(t)}) FILTER (WHERE NOT scd__deleted) OVER (PARTITION BY ${sql(key)}) AS scd__first
            FROM events e
          ) f
          WHERE ${sql(t)} >= scd__first
        ),
        flagged AS (
          SELECT f.*, CASE
              WHEN lag(scd__deleted) OVER w IS NULL THEN true
              WHEN scd__deleted <> lag(scd__deleted) OVER w THEN true
              WHEN scd__deleted THEN false
              ELSE ${trackedChanged}
            END AS scd__opens
          FROM from_first_live f
          WINDOW w AS (PARTITION BY ${sql(key)} ORDER BY ${sql(t)})
        ),
        numbered AS (
          SELECT f.*, sum(CASE WHEN scd__opens THEN 1 ELSE 0 END)
            OVER (PARTITION BY ${sql(key)} ORDER BY ${sql(t)} ROWS UNBOUNDED PRECEDING) AS scd__version
          FROM flagged f
        ),
        versions AS (
          SELECT ${sql(key)}, scd__version, min(${sql(t)}) AS ${
        sql(effectiveStart)
      }, bool_or(scd__deleted) AS scd__deleted
            ${sql.literal(attributes.length > 0 ? "," : "")}${
        sql.csv(attributes.map((name) => sql`${latestOf(sql, name, t)} AS ${sql(name)}`))
      }
          FROM numbered
          GROUP BY ${sql(key)}, scd__version
        ),
        linked AS (
          SELECT ${sql(key)}, ${sql(effectiveStart)}, scd__deleted,
            coalesce(lead(${sql(effectiveStart)}) OVER v, ${sql.literal(openEndLiteral)}) AS ${sql(effectiveEnd)}
            ${sql.literal(attributes.length > 0 ? "," : "")}${sql.csv(carried)}
          FROM versions
          WINDOW v AS (PARTITION BY ${sql(key)} ORDER BY ${sql(effectiveStart)})
        )
        SELECT ${names(sql, [key, ...attributes, effectiveStart, effectiveEnd])},
          ${sql(effectiveEnd)} = ${sql.literal(openEndLiteral)} AS ${sql(isCurrent)}${
        deletes === "version" ? sql`, scd__deleted AS ${sql(isDeleted)}` : sql.literal("")
      }
        FROM linked${sql.literal(deletes === "close" ? " WHERE NOT scd__deleted" : "")}`
    }
  })
}

// ---------------------------------------------------------------------------
// Type 3
// ---------------------------------------------------------------------------

/**
 * A type 3 dimension: one row per key with the latest values (as {@link type1}) and a
 * `previous_<name>` column per tracked column, the value before its most recent change. See the
 * module documentation for the exact definition.
 *
 * @example
 * ```ts
 * import { Scd } from "@sluice/sql"
 *
 * interface CustomerChange {
 *   readonly customer_id: number
 *   readonly name: string
 *   readonly city: string
 *   readonly changed_at: Date
 * }
 *
 * const customers = Scd.type3<CustomerChange>({
 *   changes: "raw.customer_changes_scd3",
 *   dimension: "analytics.dim_customer_scd3",
 *   key: { name: "customer_id", type: "bigint" },
 *   attributes: [{ name: "name", type: "text" }, { name: "city", type: "text" }],
 *   tracked: ["city"], // adds previous_city
 *   toChange: (c) => ({ key: c.customer_id, changedAt: c.changed_at, values: [c.name, c.city] })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const type3 = <A>(spec: Type3Spec<A>): Scd<A> => {
  requireTracked(spec.dimension, spec.attributes.map((column) => column.name), spec.tracked)
  const previous = spec.tracked.map(previousColumn)
  const resolved = resolve(spec, [...previous, lastChangedAt])
  const deletes = spec.deletes ?? "delete"
  const key = spec.key.name
  const t = resolved.changedAt
  const attributes = resolved.attributeNames
  const typeOf = (name: string) => spec.attributes.find((column) => column.name === name)!.type
  return make(resolved, {
    type: 3,
    extraColumns: [
      ...spec.tracked.map((name) => ({ name: previousColumn(name), type: typeOf(name) })),
      { name: lastChangedAt, type: "timestamptz" }
    ],
    nullable: previous,
    dimensionKey: [key],
    desired: (sql, touched) =>
      sql`WITH events AS (${events(sql, resolved, touched, { dropDeletes: deletes === "ignore" })}),
        latest AS (
          SELECT DISTINCT ON (${sql(key)}) ${sql(key)}, scd__deleted FROM events ORDER BY ${sql(key)}, ${sql(t)} DESC
        ),
        live AS (
          SELECT e.*, row_number() OVER w AS scd__n
            ${sql.literal(spec.tracked.length > 0 ? "," : "")}${
        sql.csv(spec.tracked.map((name, i) => sql`lag(${sql(name)}) OVER w AS ${sql(`scd__prev_${i}`)}`))
      }
          FROM events e
          WHERE NOT scd__deleted
          WINDOW w AS (PARTITION BY ${sql(key)} ORDER BY ${sql(t)})
        ),
        folded AS (
          SELECT ${sql(key)}, max(${sql(t)}) AS ${sql(lastChangedAt)}
            ${sql.literal(attributes.length > 0 ? "," : "")}${
        sql.csv(attributes.map((name) => sql`${latestOf(sql, name, t)} AS ${sql(name)}`))
      }
            ${sql.literal(spec.tracked.length > 0 ? "," : "")}${
        sql.csv(spec.tracked.map((name, i) =>
          sql`(array_agg(${sql(`scd__prev_${i}`)} ORDER BY ${sql(t)} DESC)
                FILTER (WHERE scd__n > 1 AND ${sql(name)} IS DISTINCT FROM ${sql(`scd__prev_${i}`)}))[1]
              AS ${sql(previousColumn(name))}`
        ))
      }
          FROM live
          GROUP BY ${sql(key)}
        )
        SELECT ${names(sql, [key, ...attributes, ...previous, lastChangedAt], "f.")}
        FROM folded f JOIN latest l ON l.${sql(key)} = f.${sql(key)}
        WHERE NOT l.scd__deleted`
  })
}
