/**
 * Immutable append with read-time dedup: every record a load receives is appended to a log table,
 * never updated or deleted by a load, and a view keeps the latest row of each key.
 *
 * **How it works**
 *
 * - The log (e.g. `raw.events_log`) has the spec's columns and three of its own: the partition of
 *   the run that appended the row (a `date` column, `sluice_partition` unless the spec names it),
 *   `processed_at`, the time of the write taken from effect's `Clock` (never `CURRENT_TIMESTAMP`, so
 *   `TestClock` drives it), and `seq`, an identity column that numbers rows in the order they were
 *   appended (within a batch, in the batch's order).
 * - `processed_at` never goes back: a write takes the later of the clock and the log's latest
 *   `processed_at`. A clock set back (by NTP, on another machine, by a test) therefore cannot make a
 *   row appended later count as processed earlier.
 * - A pipeline appends each stream of batches with one `COPY … FROM STDIN` (`writeBatches`, see
 *   {@link CopyIn}): the stream's processing time is read once, then every row is copied with it, in
 *   the stream's order. `write` appends one batch with `INSERT … SELECT` (as does every write with
 *   `load: "unnest"`, or a client that cannot COPY); either way the log and the view are the same.
 * - The view (e.g. `analytics.events`) ranks each key's rows with
 *   `ROW_NUMBER() OVER (PARTITION BY <key> ORDER BY <orderBy> DESC NULLS LAST, <partition> DESC, seq DESC)`
 *   and keeps rank 1: the row with the greatest declared ordering; among equals, the row of the
 *   later partition, then the later record of that partition (its loads append its records in their
 *   order, so the latest load's last one). Ties are thus broken by where a record comes from, never
 *   by when it was appended: the view does not depend on the order partitions are run in, nor on
 *   which of two concurrent loads (a backfill) commits first.
 *   It exposes the spec's columns only — not `processed_at`, `seq`, the partition or the deleted flag.
 * - Hard deletes: with a declared `deleted` column (`bool`), a row whose flag is true is a delete
 *   marker (a tombstone); a key whose latest row is a tombstone is hidden by the view. A later row
 *   (greater ordering) brings the key back.
 *
 * **Idempotence**
 *
 * Appending a partition's batch again leaves the view exactly as it was: for every key of the batch,
 * the copy of the row that won before wins again (same ordering and partition; the copies are
 * appended after every row already in the log and keep the batch's order), and the view shows no
 * column that differs between copies (hence `processed_at` is not in the view). So re-runs (and
 * lookback rebuilds) of partitions whose source did not change are no-ops for readers, in any order;
 * only the log grows, until {@link AppendLog.compact}.
 *
 * **Gotchas**
 *
 * - Two *different* rows of a key that tie on the declared ordering are told apart by their
 *   partition, then by their order in it: the row of the later partition wins, whichever ran last.
 *   Within one partition the latest load wins: a re-run whose source changed takes the place of the
 *   partition's earlier rows on a tie.
 * - A log created before it kept the partition of its rows gets the column (`DEFAULT '-infinity'`)
 *   from {@link AppendLog.createLog}: its old rows lose every tie against rows appended after.
 * - A load never deletes, so a re-run (or a lookback rebuild) whose source no longer has a row, or
 *   has it with an older ordering value, leaves the row appended before in the log, and in the view
 *   while it still wins. Retract it with a delete marker or replace it with a newer version.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { type Partition, RecordError, type Sink, type SinkError } from "@sluice/core"
import { Clock, Effect, Option, Stream } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import * as CopyIn from "./CopyIn.ts"
import { mapSqlError } from "./internal/sinkError.ts"
import * as Table from "./Table.ts"

/**
 * An append log and its dedup view.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<A> {
  /** The log table, `table` or `schema.table`. */
  readonly log: string
  /** The dedup view, `view` or `schema.view`. */
  readonly view: string
  /** The record's columns, in the log and (but for `deleted`) in the view. */
  readonly columns: ReadonlyArray<Table.Column>
  /** One value per column, in the order of `columns`. */
  readonly toRow: (row: A) => ReadonlyArray<unknown>
  /** The columns identifying a record: the view has one row per key. A record with a null key column is dead-lettered (`MissingKey`). */
  readonly key: ReadonlyArray<string>
  /** The declared ordering: of a key's rows the one with the greatest values wins (compared in order; NULL is lowest). */
  readonly orderBy?: ReadonlyArray<string> | undefined
  /** A `bool` column marking deletes: a key whose latest row has it true is hidden. NULL is false. */
  readonly deleted?: string | undefined
  /**
   * The `date` column, not among `columns`, receiving the partition of the run that appended the
   * row; `sluice_partition` by default. Of a key's rows that tie on `orderBy`, the later partition's wins.
   */
  readonly partitionColumn?: string | undefined
  /** The name of the processing-time column; `processed_at` by default. */
  readonly processedAtColumn?: string | undefined
  /** The name of the append-order column; `seq` by default. */
  readonly seqColumn?: string | undefined
  /**
   * How a pipeline's streams of batches are appended: `"copy"` (the default; one
   * `COPY … FROM STDIN` per stream, see {@link CopyIn}) or `"unnest"` (one `INSERT … SELECT`
   * per batch, as `write` always does). A client that cannot COPY uses `unnest`.
   */
  readonly load?: "copy" | "unnest" | undefined
}

/**
 * What {@link make} returns: the sink of the load and the SQL around the log.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendLog<A> {
  readonly spec: Spec<A>
  /** Appends a run's records to the log (nothing to prepare or complete: a load never deletes). */
  readonly sink: Sink.Sink<A, SqlClient.SqlClient>
  /**
   * `CREATE TABLE IF NOT EXISTS` the log (and its schema), with the indexes serving the view and the
   * writes; adds the partition column to a log created without it (`ADD COLUMN IF NOT EXISTS`).
   */
  readonly createLog: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>
  /** `CREATE OR REPLACE VIEW` the dedup view (and its schema). */
  readonly createView: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>
  /**
   * Deletes the log rows that can never be in the view again (every row but the latest of its key),
   * and returns how many. Tombstones are kept, so that an older row appended later stays hidden:
   * the view, now and after any later appends, is the same as without compaction.
   */
  readonly compact: Effect.Effect<number, SinkError.SinkError, SqlClient.SqlClient>
}

const rankColumn = "sluice_rank"
const ordinalColumn = "sluice_ordinal"

/**
 * Validates a spec and builds the sink and the SQL of an append log. Throws `InvalidTableSpec` for
 * a bad spec (a programming error).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AppendLog } from "@sluice/sql"
 *
 * interface Event {
 *   readonly id: string
 *   readonly kind: string
 *   readonly updatedAt: number
 *   readonly deleted: boolean
 * }
 *
 * const events = AppendLog.make<Event>({
 *   log: "raw.events_log",
 *   view: "analytics.events",
 *   columns: [
 *     { name: "event_id", type: "text" },
 *     { name: "kind", type: "text" },
 *     { name: "updated_at", type: "timestamptz" },
 *     { name: "deleted", type: "bool" }
 *   ],
 *   toRow: (e) => [e.id, e.kind, e.updatedAt, e.deleted],
 *   key: ["event_id"],
 *   orderBy: ["updated_at"],
 *   deleted: "deleted",
 *   partitionColumn: "file_date"
 * })
 * // in the app's migrations: Effect.andThen(events.createLog, events.createView)
 * // in its pipeline: Pipeline.make({ ..., sink: events.sink })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(spec: Spec<A>): AppendLog<A> => {
  const { log, view, columns } = spec
  Table.validateColumns(log, columns)
  Table.validateTable(view)
  const fail = (reason: string) => {
    throw new Table.InvalidTableSpec({ table: log, reason })
  }
  if (spec.key.length === 0) fail("no key column")
  if (new Set(spec.key).size !== spec.key.length) fail("a key column is repeated")
  const keyIndexes = spec.key.map((name) => Table.requireColumn(log, columns, name, "key column"))
  const orderBy = spec.orderBy ?? []
  for (const name of orderBy) Table.requireColumn(log, columns, name, "ordering column")
  const deleted = spec.deleted
  if (deleted !== undefined) {
    const index = Table.requireColumn(log, columns, deleted, "deleted column")
    if (columns[index]!.type !== "bool") fail(`deleted column ${deleted} must be of type bool`)
    if (spec.key.includes(deleted)) fail(`deleted column ${deleted} cannot be a key column`)
  }
  const processedAt = spec.processedAtColumn ?? "processed_at"
  const seq = spec.seqColumn ?? "seq"
  const partitionColumn = spec.partitionColumn ?? "sluice_partition"
  const own = [processedAt, seq, partitionColumn]
  for (const name of own) {
    Table.validateColumn(log, name)
    if (columns.some((column) => column.name === name)) fail(`${name} is a column of the log's own`)
  }
  if (new Set(own).size !== own.length) fail("the log's own columns must have distinct names")
  for (const name of [rankColumn, ordinalColumn]) {
    if (columns.some((column) => column.name === name) || own.includes(name)) fail(`${name} is reserved`)
  }

  const names = columns.map((column) => column.name)
  const viewNames = names.filter((name) => name !== deleted)
  const schemaOf = (table: string) => table.includes(".") ? table.slice(0, table.indexOf(".")) : undefined
  const tableName = log.slice(log.indexOf(".") + 1)
  /** An index's name, in the log's schema (if it names one). */
  const qualify = (name: string) => {
    const schema = schemaOf(log)
    return schema === undefined ? name : `${schema}.${name}`
  }

  /** The window ordering of a key's rows, latest first. */
  const window = (sql: SqlClient.SqlClient): Statement.Fragment =>
    sql`PARTITION BY ${Table.columnList(sql, spec.key)} ORDER BY ${
      sql.csv([
        ...orderBy.map((name) => sql`${sql(name)} DESC NULLS LAST`),
        sql`${sql(partitionColumn)} DESC`,
        sql`${sql(seq)} DESC`
      ])
    }`

  const ranked = (sql: SqlClient.SqlClient, selected: Statement.Fragment) =>
    sql`SELECT ${selected}, ROW_NUMBER() OVER (${window(sql)}) AS ${sql(rankColumn)} FROM ${sql(log)}`

  const ensureSchema = (sql: SqlClient.SqlClient, table: string) => {
    const schema = schemaOf(table)
    return schema === undefined ? Effect.void : sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`.pipe(Effect.asVoid)
  }

  const createLog = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* ensureSchema(sql, log)
    const definitions = [
      ...columns.map((column) =>
        sql`${sql(column.name)} ${sql.literal(Table.sqlTypeOf(column.type))}${
          spec.key.includes(column.name) ? sql` NOT NULL` : sql``
        }`
      ),
      sql`${sql(partitionColumn)} date NOT NULL`,
      sql`${sql(processedAt)} timestamptz NOT NULL`,
      sql`${sql(seq)} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`
    ]
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(log)} (${sql.csv(definitions)})`
    // a log created before it kept the partition of its rows: they lose every tie
    yield* sql`ALTER TABLE ${sql(log)} ADD COLUMN IF NOT EXISTS ${
      sql(partitionColumn)
    } date NOT NULL DEFAULT '-infinity'`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${tableName}_processed_at_idx`)} ON ${sql(log)} (${sql(processedAt)})`
    // the index of the view's ranking (`<table>_latest_idx` ranked by processing time before)
    yield* sql`DROP INDEX IF EXISTS ${sql(qualify(`${tableName}_latest_idx`))}`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${tableName}_ranking_idx`)} ON ${sql(log)} (${
      sql.csv([
        ...spec.key.map((name) => sql`${sql(name)}`),
        ...orderBy.map((name) => sql`${sql(name)} DESC NULLS LAST`),
        sql`${sql(partitionColumn)} DESC`,
        sql`${sql(seq)} DESC`
      ])
    })`
  }).pipe(Effect.withSpan("AppendLog.createLog", { attributes: { log } }))

  const createView = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* ensureSchema(sql, view)
    yield* sql`CREATE OR REPLACE VIEW ${sql(view)} AS
      SELECT ${Table.columnList(sql, viewNames)}
      FROM (${ranked(sql, Table.columnList(sql, names))}) AS ranked
      WHERE ${sql(rankColumn)} = 1${deleted === undefined ? sql`` : sql` AND ${sql(deleted)} IS NOT TRUE`}`
  }).pipe(Effect.withSpan("AppendLog.createView", { attributes: { log, view } }))

  const compact = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: number }>`
      WITH superseded AS (
        DELETE FROM ${sql(log)} WHERE ${sql(seq)} IN (
          SELECT ${sql(seq)} FROM (${ranked(sql, sql`${sql(seq)}`)}) AS ranked WHERE ${sql(rankColumn)} > 1
        )
        RETURNING 1
      )
      SELECT count(*)::float8 AS n FROM superseded`
    return rows[0]?.n ?? 0
  }).pipe(mapSqlError(`compact ${log}`), Effect.withSpan("AppendLog.compact", { attributes: { log } }))

  const storable = Table.storable(log, spec.columns, spec.toRow)
  const check = (record: A): RecordError.RecordError | undefined => {
    const values = spec.toRow(record)
    const missing = keyIndexes.filter((i) => values[i] === null || values[i] === undefined)
    return missing.length === 0 ? storable(record) : new RecordError.RecordError({
      reason: new RecordError.MissingKey({
        columns: missing.map((i) => names[i]!),
        message: `key column${missing.length > 1 ? "s" : ""} ${missing.map((i) => names[i]).join(", ")} of ${log} ${
          missing.length > 1 ? "are" : "is"
        } null`
      })
    })
  }

  /** The processing time of a write at clock time `now`: the later of it and the log's latest. */
  const processingTime = (sql: SqlClient.SqlClient, now: number) =>
    sql`GREATEST(${PgTypes.timestamptz(now)}, (SELECT max(${sql(processedAt)}) FROM ${sql(log)}))`

  const ordinal: Table.Column = { name: ordinalColumn, type: "int" }
  // made once, not an `Effect.gen` per batch: a generator made per batch and closing over it made V8
  // promote the batch's records (measured on the runner's stream writer and in a minimal program;
  // see ARCHITECTURE.md, "What the load costs Node")
  const writeBatch = Effect.fnUntraced(function*(partition: Partition.PartitionDate, rows: ReadonlyArray<A>) {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const arrays = yield* Table.toColumnArrays({ table: log, columns, rows, toRow: spec.toRow })
    const positions = Array.from({ length: rows.length }, (_, i) => i)
    const target = [...names, partitionColumn, processedAt]
    const values = [Table.columnList(sql, names), sql`${Table.date(partition)}`, processingTime(sql, now)]
    yield* sql`INSERT INTO ${sql(log)} (${Table.columnList(sql, target)})
        SELECT ${sql.csv(values)}
        FROM (${Table.unnest(sql, [...columns, ordinal], [...arrays, positions])})
          AS batch (${Table.columnList(sql, [...names, ordinalColumn])})
        ORDER BY ${sql(ordinalColumn)}`.pipe(mapSqlError(`append to ${log}`))
  })

  const write = (partition: Partition.PartitionDate, rows: ReadonlyArray<A>) =>
    rows.length === 0 ? Effect.void : writeBatch(partition, rows).pipe(
      Effect.withSpan("AppendLog.write", { attributes: { log, rows: rows.length } })
    )

  const copyColumns: ReadonlyArray<Table.Column> = [
    ...columns,
    { name: partitionColumn, type: "date" },
    // the time as ISO 8601 text in UTC, read from the server: copied as it is, it stays exact
    { name: processedAt, type: "text" }
  ]
  const width = columns.length

  /**
   * A stream of batches as one append: its processing time is read once (the later of the clock
   * and the log's latest, as `write` takes it), then every row is copied with it, in the stream's
   * order, which is the order of `seq`.
   */
  const writeBatches = <E>(partition: Partition.PartitionDate, batches: Stream.Stream<ReadonlyArray<A>, E>) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const now = yield* Clock.currentTimeMillis
      // ISO 8601 in UTC, to the microsecond: read back the same whatever the session's DateStyle and TimeZone
      const [latest] = yield* sql<{ readonly at: string }>`
        SELECT to_char(
          ${processingTime(sql, now)} AT TIME ZONE 'UTC',
          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
        ) AS at`.pipe(mapSqlError(`append to ${log}`))
      const at = latest!.at
      const copy = CopyIn.makeStream<A>({
        table: log,
        columns: copyColumns,
        operation: `append to ${log}`,
        toRow: (row) => {
          const values = spec.toRow(row)
          // a row of another width is left as it is, for the encoder to name
          if (values.length !== width) return values
          const out = values.slice()
          out.push(partition, at)
          return out
        }
      })
      const copied = yield* copy(batches)
      if (Option.isNone(copied)) yield* Stream.runForEach(batches, (rows) => write(partition, rows))
    }).pipe(Effect.withSpan("AppendLog.writeBatches", { attributes: { log } }))

  return {
    spec,
    sink: {
      target: log,
      prepare: () => Effect.void,
      write,
      writeBatches: spec.load === "unnest" ? undefined : writeBatches,
      complete: () => Effect.void,
      check
    },
    createLog,
    createView,
    compact
  }
}
