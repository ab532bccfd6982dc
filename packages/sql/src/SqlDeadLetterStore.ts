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
import { Effect, Layer } from "effect"
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
  runId: row.run_id
})

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

  const clearPartition = (pipeline: string, partition: Partition.PartitionDate) =>
    sql`DELETE FROM sluice.dead_letters WHERE pipeline = ${pipeline} AND partition = ${PgTypes.date(partition)}`
      .pipe(Effect.asVoid, mapSqlError("clear dead letters"), Effect.withSpan("SqlDeadLetterStore.clearPartition"))

  const write = (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) => {
    if (deadLetters.length === 0) return Effect.void
    const escaped = deadLetters.map((d) => TextEscape.needsEscaping(d.originalRecord))
    const column = <T>(f: (d: DeadLetter.DeadLetter, i: number) => T) => deadLetters.map(f)
    return Effect.suspend(() =>
      sql`
        INSERT INTO sluice.dead_letters
          (pipeline, partition, stage, position, original_record, original_record_escaped,
           error_type, error, failed_at, run_id)
        SELECT * FROM unnest(
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
        )`
    ).pipe(Effect.asVoid, mapSqlError("write dead letters"), Effect.withSpan("SqlDeadLetterStore.write"))
  }

  const list = (
    pipeline: string,
    options?: {
      readonly partition?: Partition.PartitionDate | undefined
      readonly limit?: number | undefined
    }
  ) =>
    sql<DeadLetterRow>`
      SELECT id, pipeline, partition::text AS partition, stage, position, original_record,
             original_record_escaped, error_type, error, failed_at, run_id
      FROM sluice.dead_letters
      WHERE pipeline = ${pipeline}
        ${options?.partition === undefined ? sql`` : sql`AND partition = ${PgTypes.date(options.partition)}`}
      ORDER BY partition, position, id
      ${options?.limit === undefined ? sql`` : sql`LIMIT ${PgTypes.int8(BigInt(Math.max(0, options.limit)))}`}`
      .pipe(
        Effect.map((rows) => rows.map(toStored)),
        mapSqlError("list dead letters"),
        Effect.withSpan("SqlDeadLetterStore.list")
      )

  const countByType = (
    pipeline: string,
    options?: { readonly partition?: Partition.PartitionDate | undefined }
  ) =>
    sql<{ readonly error_type: string; readonly count: number }>`
      SELECT error_type, count(*)::int4 AS count
      FROM sluice.dead_letters
      WHERE pipeline = ${pipeline}
        ${options?.partition === undefined ? sql`` : sql`AND partition = ${PgTypes.date(options.partition)}`}
      GROUP BY error_type
      ORDER BY count DESC, error_type`.pipe(
      Effect.map((rows) => rows.map((row) => ({ errorType: row.error_type, count: row.count }))),
      mapSqlError("count dead letters"),
      Effect.withSpan("SqlDeadLetterStore.countByType")
    )

  return DeadLetter.DeadLetterStore.of({ clearPartition, write, list, countByType })
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
