/**
 * The dead-letter store in PostgreSQL: core's `DeadLetterStore` on table `sluice.dead_letters`.
 *
 * **Details**
 *
 * A batch is written with one statement, `INSERT ... SELECT * FROM unnest($1::text[], ...)`,
 * whatever its size: one round trip, no per-row statements.
 *
 * **Gotchas**
 *
 * The original payload is kept exactly, but PostgreSQL `text` cannot hold U+0000 (and a lone
 * UTF-16 surrogate has no UTF-8 form). Payloads with either are stored escaped (`\` → `\\`,
 * U+0000 → `\0`, lone surrogate → `\uXXXX`) with `original_record_escaped = true`; `list`
 * returns them unescaped. Every other payload is stored verbatim.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { DeadLetter, type Partition } from "@sluice/core"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { mapSqlError } from "./internal/sinkError.ts"
import * as TextEscape from "./internal/textEscape.ts"
import { typedArray } from "./internal/typedArray.ts"

interface DeadLetterRow {
  readonly id: string | bigint
  readonly pipeline: string
  readonly partition: string
  readonly stage: string
  readonly position: number
  readonly original_record: string
  readonly original_record_escaped: boolean
  readonly error_type: string
  readonly error: string
  readonly failed_at: Date
  readonly run_id: string
  readonly status: DeadLetter.Status
  readonly attempts: number
}

const toStored = (row: DeadLetterRow): DeadLetter.StoredDeadLetter => ({
  id: String(row.id),
  pipeline: row.pipeline,
  partition: row.partition as Partition.PartitionDate,
  stage: row.stage,
  position: row.position,
  originalRecord: row.original_record_escaped ? TextEscape.unescape(row.original_record) : row.original_record,
  errorType: row.error_type,
  error: row.error,
  failedAt: row.failed_at.getTime(),
  runId: row.run_id,
  status: row.status,
  attempts: row.attempts
})

const columnNames = "id, pipeline, partition, stage, position, original_record, original_record_escaped, " +
  "error_type, error, failed_at, run_id, attempts"

const isId = (id: string) => /^\d{1,18}$/.test(id)

/** Error texts are ours to shape: keep them storable without a flag. */
const storableText = (text: string): string => TextEscape.needsEscaping(text) ? TextEscape.escape(text) : text

/**
 * Builds the store over the current `SqlClient`. The tables must exist (`SluiceMigrations`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const columnList = sql.literal(`${columnNames}, status`)

  const clearPartition = (pipeline: string, partition: Partition.PartitionDate) =>
    // moved aside, not deleted: a record this run dead-letters again takes its row back (see `write`);
    // the others now load, and stay resolved (status `replayed`)
    sql`
      WITH moved AS (
        DELETE FROM sluice.dead_letters WHERE pipeline = ${pipeline} AND partition = ${PgTypes.date(partition)}
        RETURNING *
      )
      INSERT INTO sluice.dead_letters_resolved (${columnList})
      SELECT ${columnList} FROM moved`
      .pipe(Effect.asVoid, mapSqlError("clear dead letters"), Effect.withSpan("SqlDeadLetterStore.clearPartition"))

  const write = (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) => {
    if (deadLetters.length === 0) return Effect.void
    const escaped = deadLetters.map((d) => TextEscape.needsEscaping(d.originalRecord))
    const column = <T>(f: (d: DeadLetter.DeadLetter, i: number) => T) => deadLetters.map(f)
    // a dead letter resolved before (e.g. cleared by this run) and written again keeps its id and
    // status, with the new error and attempts + 1
    return Effect.suspend(() =>
      sql`
        WITH incoming AS (
          SELECT u.*, row_number() OVER (
            PARTITION BY u.pipeline, u.partition, u.position, u.original_record_escaped, u.original_record ORDER BY u.n
          ) AS k
          FROM unnest(
            ${typedArray(column((d) => d.pipeline), PgTypes.OID.text)}::text[],
            ${typedArray(column((d) => d.partition), PgTypes.OID.date)}::date[],
            ${typedArray(column((d) => storableText(d.stage)), PgTypes.OID.text)}::text[],
            ${typedArray(column((d) => d.position), PgTypes.OID.int4)}::int4[],
            ${
        typedArray(
          column((d, i) => escaped[i] ? TextEscape.escape(d.originalRecord) : d.originalRecord),
          PgTypes.OID.text
        )
      }::text[],
            ${typedArray(escaped, PgTypes.OID.bool)}::bool[],
            ${typedArray(column((d) => storableText(d.errorType)), PgTypes.OID.text)}::text[],
            ${typedArray(column((d) => storableText(d.error)), PgTypes.OID.text)}::text[],
            ${typedArray(column((d) => d.failedAt), PgTypes.OID.timestamptz)}::timestamptz[],
            ${typedArray(column((d) => d.runId), PgTypes.OID.text)}::text[]
          ) WITH ORDINALITY AS u (pipeline, partition, stage, position, original_record, original_record_escaped,
                                  error_type, error, failed_at, run_id, n)
        ),
        matched AS (
          DELETE FROM sluice.dead_letters_resolved r USING incoming i
          WHERE i.k = 1 AND r.pipeline = i.pipeline AND r.partition = i.partition AND r.position = i.position
            AND r.original_record_escaped = i.original_record_escaped AND r.original_record = i.original_record
          RETURNING r.id, r.status, r.attempts, r.pipeline, r.partition, r.position, r.original_record_escaped,
                    r.original_record
        )
        INSERT INTO sluice.dead_letters (${columnList})
        SELECT coalesce(m.id, nextval('sluice.dead_letters_id_seq'::regclass)), i.pipeline, i.partition, i.stage,
               i.position, i.original_record, i.original_record_escaped, i.error_type, i.error, i.failed_at,
               i.run_id, coalesce(m.attempts + 1, 1), coalesce(m.status, 'new')
        FROM incoming i
        LEFT JOIN LATERAL (
          SELECT * FROM matched m
          WHERE i.k = 1 AND m.pipeline = i.pipeline AND m.partition = i.partition AND m.position = i.position
            AND m.original_record_escaped = i.original_record_escaped AND m.original_record = i.original_record
          ORDER BY m.id LIMIT 1
        ) m ON true
        ORDER BY i.n`
    ).pipe(Effect.asVoid, mapSqlError("write dead letters"), Effect.withSpan("SqlDeadLetterStore.write"))
  }

  /** Both tables, each row with its status (`replayed` for a resolved one). */
  const all = sql.literal(
    `(SELECT ${columnNames}, status FROM sluice.dead_letters
      UNION ALL
      SELECT ${columnNames}, 'replayed' AS status FROM sluice.dead_letters_resolved) AS d`
  )

  const where = (pipeline: string, selection: DeadLetter.Selection, defaultStatus: ReadonlyArray<DeadLetter.Status>) =>
    sql`pipeline = ${pipeline}
      ${selection.partition === undefined ? sql`` : sql`AND partition = ${PgTypes.date(selection.partition)}`}
      ${selection.errorType === undefined ? sql`` : sql`AND error_type = ${selection.errorType}`}
      ${
      selection.ids === undefined ?
        sql`` :
        sql`AND id = ANY(${typedArray(selection.ids.filter(isId), PgTypes.OID.text)}::text[]::int8[])`
    }
      AND status = ANY(${typedArray(selection.status ?? defaultStatus, PgTypes.OID.text)}::text[])`

  const columns = sql.literal(
    "id, pipeline, partition::text AS partition, stage, position, original_record, original_record_escaped, " +
      "error_type, error, failed_at, run_id, status, attempts"
  )

  const list = (pipeline: string, options?: DeadLetter.Selection & { readonly limit?: number | undefined }) =>
    sql<DeadLetterRow>`
      SELECT ${columns}
      FROM ${all}
      WHERE ${where(pipeline, options ?? {}, ["new", "discarded"])}
      ORDER BY partition, position, id
      ${options?.limit === undefined ? sql`` : sql`LIMIT ${PgTypes.int8(BigInt(Math.max(0, options.limit)))}`}`
      .pipe(
        Effect.map((rows) => rows.map(toStored)),
        mapSqlError("list dead letters"),
        Effect.withSpan("SqlDeadLetterStore.list")
      )

  const get = (pipeline: string, id: string) =>
    isId(id)
      ? sql<DeadLetterRow>`
      SELECT ${columns} FROM ${all} WHERE pipeline = ${pipeline} AND id = ${PgTypes.int8(BigInt(id))}`
        .pipe(
          Effect.map((rows) => rows.length === 0 ? Option.none() : Option.some(toStored(rows[0]!))),
          mapSqlError("get a dead letter"),
          Effect.withSpan("SqlDeadLetterStore.get")
        )
      : Effect.succeed(Option.none())

  const countByType = (
    pipeline: string,
    options?: { readonly partition?: Partition.PartitionDate | undefined }
  ) =>
    sql<{ readonly error_type: string; readonly count: number }>`
      SELECT error_type, count(*)::int4 AS count
      FROM sluice.dead_letters
      WHERE ${where(pipeline, { partition: options?.partition }, ["new"])}
      GROUP BY error_type
      ORDER BY count DESC, error_type`.pipe(
      Effect.map((rows) => rows.map((row) => ({ errorType: row.error_type, count: row.count }))),
      mapSqlError("count dead letters"),
      Effect.withSpan("SqlDeadLetterStore.countByType")
    )

  const discard = (pipeline: string, selection: DeadLetter.Selection) =>
    sql<{ readonly n: number }>`
      WITH discarded AS (
        UPDATE sluice.dead_letters SET status = 'discarded'
        WHERE ${where(pipeline, { ...selection, status: ["new"] }, ["new"])}
        RETURNING 1
      )
      SELECT count(*)::int4 AS n FROM discarded`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0),
      mapSqlError("discard dead letters"),
      Effect.withSpan("SqlDeadLetterStore.discard")
    )

  const recordAttempts = (pipeline: string, attempts: ReadonlyArray<DeadLetter.Attempt>) => {
    const valid = attempts.filter((a) => isId(a.id))
    if (valid.length === 0) return Effect.void
    const column = <T>(f: (a: DeadLetter.Attempt) => T) => valid.map(f)
    return Effect.suspend(() =>
      sql`
        UPDATE sluice.dead_letters d
        SET error_type = a.error_type, error = a.error, failed_at = a.failed_at, attempts = d.attempts + 1
        FROM unnest(
          ${typedArray(column((a) => a.id), PgTypes.OID.text)}::text[],
          ${typedArray(column((a) => storableText(a.errorType)), PgTypes.OID.text)}::text[],
          ${typedArray(column((a) => storableText(a.error)), PgTypes.OID.text)}::text[],
          ${typedArray(column((a) => a.failedAt), PgTypes.OID.timestamptz)}::timestamptz[]
        ) AS a (id, error_type, error, failed_at)
        WHERE d.pipeline = ${pipeline} AND d.id = a.id::int8`
    ).pipe(
      Effect.asVoid,
      mapSqlError("record dead-letter attempts"),
      Effect.withSpan("SqlDeadLetterStore.recordAttempts")
    )
  }

  const purge = (options: {
    readonly pipeline?: string | undefined
    readonly before: number
    readonly statuses: ReadonlyArray<DeadLetter.Status>
  }) => {
    const old = sql`failed_at < ${PgTypes.timestamptz(options.before)}
      ${options.pipeline === undefined ? sql`` : sql`AND pipeline = ${options.pipeline}`}`
    const current = options.statuses.filter((status) => status !== "replayed")
    return sql<{ readonly n: number }>`
      WITH purged AS (
        DELETE FROM sluice.dead_letters
        WHERE ${old} AND status = ANY(${typedArray(current, PgTypes.OID.text)}::text[])
        RETURNING 1
      ),
      purged_resolved AS (
        DELETE FROM sluice.dead_letters_resolved
        WHERE ${old} AND ${options.statuses.includes("replayed") ? sql`true` : sql`false`}
        RETURNING 1
      )
      SELECT ((SELECT count(*) FROM purged) + (SELECT count(*) FROM purged_resolved))::int4 AS n`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0),
      mapSqlError("purge dead letters"),
      Effect.withSpan("SqlDeadLetterStore.purge")
    )
  }

  return DeadLetter.DeadLetterStore.of({
    clearPartition,
    write,
    list,
    get,
    countByType,
    discard,
    recordAttempts,
    purge
  })
})

/**
 * Core's `DeadLetterStore` on `sluice.dead_letters`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Database, SluiceMigrations, SqlDeadLetterStore } from "@sluice/sql"
 *
 * const DeadLetters = SqlDeadLetterStore.layer.pipe(
 *   Layer.provide(SluiceMigrations.layer),
 *   Layer.provideMerge(Database.layerPglite({}))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<DeadLetter.DeadLetterStore, never, SqlClient.SqlClient> = Layer.effect(
  DeadLetter.DeadLetterStore,
  make
)
