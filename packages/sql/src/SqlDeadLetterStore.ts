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
import { SqlClient, SqlError, type Statement } from "effect/sql"
import * as CopyIn from "./CopyIn.ts"
import { fromSqlError, mapSqlError } from "./internal/sinkError.ts"
import * as TextEscape from "./internal/textEscape.ts"
import { typedArray } from "./internal/typedArray.ts"
import type * as Table from "./Table.ts"

interface DeadLetterRow {
  readonly id: string | bigint
  readonly pipeline: string
  readonly partition: string
  readonly stage: string
  readonly position: string | bigint | number
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
  position: Number(row.position),
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

/** The session's temporary table dead letters are copied into before they are inserted. */
const incomingTable = "sluice_incoming_dead_letters"

const incomingColumns: ReadonlyArray<Table.Column> = [
  { name: "pipeline", type: "text" },
  { name: "partition", type: "date" },
  { name: "stage", type: "text" },
  { name: "position", type: "bigint" },
  { name: "original_record", type: "text" },
  { name: "original_record_escaped", type: "bool" },
  { name: "error_type", type: "text" },
  { name: "error", type: "text" },
  { name: "failed_at", type: "timestamptz" },
  { name: "run_id", type: "text" },
  { name: "n", type: "int" }
]

/** Error texts are ours to shape: keep them storable without a flag. */
const storableText = (text: string): string => TextEscape.needsEscaping(text) ? TextEscape.escape(text) : text

/**
 * Builds the store over the current `SqlClient`. The tables must exist (`SluiceMigrations`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.suspend(() => makeWith({ copy: true }))

/**
 * {@link make}, choosing how dead letters reach the server: `copy: false` binds them as arrays,
 * as with a client that cannot COPY (the store's tests run both ways).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { DeadLetter } from "@sluice/core"
 * import { SqlDeadLetterStore } from "@sluice/sql"
 *
 * const layer = Layer.effect(DeadLetter.DeadLetterStore, SqlDeadLetterStore.makeWith({ copy: false }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (options: { readonly copy: boolean }) =>
  Effect.gen(function*() {
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
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

    /**
     * Inserts the rows of `incoming` (one per dead letter, in order `n`): a dead letter resolved before
     * (e.g. cleared by this run) and written again takes its row back, with its id and status, the new
     * error, position and attempts + 1. A record is its pipeline, partition and payload, not its position:
     * a line added or removed above a bad line (a fixed source file) moves it, and it must keep its id and
     * status (a discarded one stays discarded). The k-th incoming copy of a record, by position, takes
     * the k-th resolved one, by position and id; resolved rows left unpaired stay resolved.
     *
     * Each record's resolved rows are found once, for its first copy (`k = 1`), by the index on
     * `(pipeline, partition, md5(original_record)::uuid)`, numbered apart and joined to the copies by that first
     * copy's `n` and `k`, then joined back by `n`: matching each incoming row against all the matched
     * rows instead made re-running a partition quadratic in its dead letters (measured: 12.6 s of the
     * server's time for 10,000), as numbering every resolved row of a record for each of its copies would
     * be for a payload repeated on many lines.
     */
    const insertIncoming = (incoming: Statement.Fragment) =>
      sql`
        WITH incoming AS (
          SELECT u.*, row_number() OVER w AS k, first_value(u.n) OVER w AS first_n
          FROM ${incoming}
          WINDOW w AS (
            PARTITION BY u.pipeline, u.partition, u.original_record_escaped, u.original_record ORDER BY u.position, u.n
          )
        ),
        resolved AS (
          SELECT i.n AS first_n, r.id, row_number() OVER (PARTITION BY i.n ORDER BY r.position, r.id) AS k
          FROM incoming i JOIN sluice.dead_letters_resolved r
            ON r.pipeline = i.pipeline AND r.partition = i.partition
            AND md5(r.original_record)::uuid = md5(i.original_record)::uuid
            AND r.original_record_escaped = i.original_record_escaped AND r.original_record = i.original_record
          WHERE i.k = 1
        ),
        pairs AS (
          SELECT i.n, r.id FROM incoming i JOIN resolved r ON r.first_n = i.first_n AND r.k = i.k
        ),
        matched AS (
          DELETE FROM sluice.dead_letters_resolved r USING pairs p WHERE r.id = p.id
          RETURNING p.n, r.id, r.status, r.attempts
        )
        INSERT INTO sluice.dead_letters (${columnList})
        SELECT coalesce(m.id, nextval('sluice.dead_letters_id_seq'::regclass)), i.pipeline, i.partition, i.stage,
               i.position, i.original_record, i.original_record_escaped, i.error_type, i.error, i.failed_at,
               i.run_id, coalesce(m.attempts + 1, 1), coalesce(m.status, 'new')
        FROM incoming i
        LEFT JOIN matched m ON m.n = i.n
        ORDER BY i.n`

    /** A dead letter as a row of `incoming`: storable texts, the record escaped when it must be. */
    const incomingRow = (d: DeadLetter.DeadLetter, n: number): ReadonlyArray<unknown> => {
      const escaped = TextEscape.needsEscaping(d.originalRecord)
      return [
        d.pipeline,
        d.partition,
        storableText(d.stage),
        d.position,
        escaped ? TextEscape.escape(d.originalRecord) : d.originalRecord,
        escaped,
        storableText(d.errorType),
        storableText(d.error),
        d.failedAt,
        d.runId,
        n
      ]
    }

    // Dead letters reach the server by COPY into a temporary table of the session (emptied at each
    // commit), then the insert above reads them there: their payloads can be large (an oversized
    // line), and COPY's text encoding costs Node a fraction of binding them as arrays (measured:
    // ~0.6 s of CPU per 31 MB of payloads as `unnest` parameters). A client that cannot COPY binds
    // them as arrays.
    const copyIncoming = CopyIn.make<ReadonlyArray<unknown>>({
      table: `pg_temp.${incomingTable}`,
      columns: incomingColumns,
      toRow: (row) => row,
      operation: "write dead letters"
    })

    const viaArrays = (rows: ReadonlyArray<ReadonlyArray<unknown>>) => {
      const column = (i: number) => rows.map((row) => row[i])
      return insertIncoming(sql`unnest(
            ${typedArray(column(0), PgTypes.OID.text)}::text[],
            ${typedArray(column(1), PgTypes.OID.date)}::date[],
            ${typedArray(column(2), PgTypes.OID.text)}::text[],
            ${typedArray(column(3).map((p) => BigInt(p as number)), PgTypes.OID.int8)}::int8[],
            ${typedArray(column(4), PgTypes.OID.text)}::text[],
            ${typedArray(column(5), PgTypes.OID.bool)}::bool[],
            ${typedArray(column(6), PgTypes.OID.text)}::text[],
            ${typedArray(column(7), PgTypes.OID.text)}::text[],
            ${typedArray(column(8), PgTypes.OID.timestamptz)}::timestamptz[],
            ${typedArray(column(9), PgTypes.OID.text)}::text[],
            ${typedArray(column(10), PgTypes.OID.int4)}::int4[]
          ) AS u (pipeline, partition, stage, position, original_record, original_record_escaped,
                  error_type, error, failed_at, run_id, n)`)
    }

    // Large payloads are compressed once, as they are copied into the temporary table (the insert keeps
    // compressed values as they are): with lz4 where the server has it (a build option; PGlite has
    // only pglz), which took half pglz's time for the bench's oversized lines (14 ms against 27 ms per
    // write of 1,200 dead letters, 80 of them 50 kB) and stored them smaller. Asked once per store.
    const compression = yield* Effect.cached(
      sql<{ readonly lz4: boolean }>`
        SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`.pipe(
        Effect.map((rows) => sql.literal(rows[0]?.lz4 === true ? "COMPRESSION lz4" : "")),
        Effect.orElseSucceed(() => sql.literal(""))
      )
    )

    /** Made once, not an `Effect.gen` per write (see the runner's stream writer). */
    const writeRows = Effect.fnUntraced(function*(rows: ReadonlyArray<ReadonlyArray<unknown>>) {
      yield* sql`CREATE TEMPORARY TABLE IF NOT EXISTS ${sql(incomingTable)} (
        pipeline text, partition date, stage text, position int8, original_record text ${yield* compression},
        original_record_escaped bool, error_type text, error text, failed_at timestamptz, run_id text, n int4
      ) ON COMMIT DELETE ROWS`
      yield* sql`TRUNCATE pg_temp.${sql(incomingTable)}`
      const copied = options.copy ? yield* copyIncoming(rows) : Option.none()
      yield* Option.isSome(copied) ? insertIncoming(sql`pg_temp.${sql(incomingTable)} AS u`) : viaArrays(rows)
    })

    const write = (deadLetters: ReadonlyArray<DeadLetter.DeadLetter>) =>
      deadLetters.length === 0 ?
        Effect.void :
        Effect.suspend(() => client.withTransaction(writeRows(deadLetters.map((d, i) => incomingRow(d, i + 1))))).pipe(
          Effect.mapError((error) => SqlError.isSqlError(error) ? fromSqlError("write dead letters")(error) : error),
          Effect.provideService(SqlClient.SqlClient, client),
          Effect.withSpan("SqlDeadLetterStore.write")
        )

    /** Both tables, each row with its status (`replayed` for a resolved one). */
    const all = sql.literal(
      `(SELECT ${columnNames}, status FROM sluice.dead_letters
      UNION ALL
      SELECT ${columnNames}, 'replayed' AS status FROM sluice.dead_letters_resolved) AS d`
    )

    const where = (
      pipeline: string,
      selection: DeadLetter.Selection,
      defaultStatus: ReadonlyArray<DeadLetter.Status>
    ) =>
      sql`pipeline = ${pipeline}
      ${selection.partition === undefined ? sql`` : sql`AND partition = ${PgTypes.date(selection.partition)}`}
      ${selection.errorType === undefined ? sql`` : sql`AND error_type = ${selection.errorType}`}
      ${
        selection.ids === undefined ?
          sql`` :
          sql`AND id = ANY(${typedArray(selection.ids.filter(isId), PgTypes.OID.text)}::text[]::int8[])`
      }
      ${
        selection.positions === undefined ?
          sql`` :
          sql`AND position BETWEEN ${PgTypes.int8(BigInt(Math.ceil(selection.positions.from)))} AND ${
            PgTypes.int8(BigInt(Math.floor(selection.positions.to)))
          }`
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

    const countByType = (pipeline: string, options?: DeadLetter.Selection) =>
      sql<{ readonly error_type: string; readonly count: number }>`
      SELECT error_type, count(*)::float8 AS count
      FROM ${all}
      WHERE ${where(pipeline, options ?? {}, ["new"])}
      GROUP BY error_type
      ORDER BY count DESC, error_type`.pipe(
        Effect.map((rows) => rows.map((row) => ({ errorType: row.error_type, count: row.count }))),
        mapSqlError("count dead letters"),
        Effect.withSpan("SqlDeadLetterStore.countByType")
      )

    const countByTypeAndStatus = (pipeline: string, options?: DeadLetter.Selection) =>
      sql<{ readonly error_type: string; readonly status: DeadLetter.Status; readonly count: number }>`
      SELECT error_type, status, count(*)::float8 AS count
      FROM ${all}
      WHERE ${where(pipeline, options ?? {}, ["new"])}
      GROUP BY error_type, status
      ORDER BY CASE status WHEN 'new' THEN 0 WHEN 'replayed' THEN 1 ELSE 2 END, count DESC, error_type`.pipe(
        Effect.map((rows) => rows.map((row) => ({ errorType: row.error_type, status: row.status, count: row.count }))),
        mapSqlError("count dead letters by type and status"),
        Effect.withSpan("SqlDeadLetterStore.countByTypeAndStatus")
      )

    const countByPartition = (pipeline: string, options?: DeadLetter.Selection) =>
      sql<{ readonly partition: string; readonly status: DeadLetter.Status; readonly count: number }>`
      SELECT partition::text AS partition, status, count(*)::float8 AS count
      FROM ${all}
      WHERE ${where(pipeline, options ?? {}, ["new"])}
      GROUP BY partition, status
      ORDER BY partition, status`.pipe(
        Effect.map((rows) =>
          rows.map((row) => ({
            partition: row.partition as Partition.PartitionDate,
            status: row.status,
            count: row.count
          }))
        ),
        mapSqlError("count dead letters by partition"),
        Effect.withSpan("SqlDeadLetterStore.countByPartition")
      )

    const discard = (pipeline: string, selection: DeadLetter.Selection) =>
      sql<{ readonly n: number }>`
      WITH discarded AS (
        UPDATE sluice.dead_letters SET status = 'discarded'
        WHERE ${where(pipeline, { ...selection, status: ["new"] }, ["new"])}
        RETURNING 1
      )
      SELECT count(*)::float8 AS n FROM discarded`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0),
        mapSqlError("discard dead letters"),
        Effect.withSpan("SqlDeadLetterStore.discard")
      )

    const resolve = (pipeline: string, selection: DeadLetter.Selection) =>
      // as `clearPartition`: moved aside, where a later `write` of the same record takes its row back
      sql<{ readonly n: number }>`
      WITH moved AS (
        DELETE FROM sluice.dead_letters
        WHERE ${where(pipeline, { ...selection, status: ["new", "discarded"] }, ["new", "discarded"])}
        RETURNING *
      ),
      inserted AS (
        INSERT INTO sluice.dead_letters_resolved (${columnList})
        SELECT ${columnList} FROM moved
        RETURNING 1
      )
      SELECT count(*)::float8 AS n FROM inserted`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0),
        mapSqlError("resolve dead letters"),
        Effect.withSpan("SqlDeadLetterStore.resolve")
      )

    const remove = (pipeline: string) =>
      sql<{ readonly n: number }>`
      WITH removed AS (DELETE FROM sluice.dead_letters WHERE pipeline = ${pipeline} RETURNING 1),
      removed_resolved AS (DELETE FROM sluice.dead_letters_resolved WHERE pipeline = ${pipeline} RETURNING 1)
      SELECT ((SELECT count(*) FROM removed) + (SELECT count(*) FROM removed_resolved))::float8 AS n`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0),
        mapSqlError("remove dead letters"),
        Effect.withSpan("SqlDeadLetterStore.remove")
      )

    // the distinct pipelines of both tables, one index probe per pipeline (a skip scan of the indexes led
    // by `pipeline`): a store holds a few pipelines and many dead letters. Filtered by prefix afterwards:
    // under a collation other than "C" the names with a prefix need not be contiguous in the index
    const pipelines = (prefix: string) =>
      sql<{ readonly pipeline: string }>`
      WITH RECURSIVE live(pipeline) AS (
        SELECT min(pipeline) FROM sluice.dead_letters
        UNION ALL
        SELECT (SELECT min(d.pipeline) FROM sluice.dead_letters d WHERE d.pipeline > l.pipeline)
        FROM live l WHERE l.pipeline IS NOT NULL
      ),
      resolved(pipeline) AS (
        SELECT min(pipeline) FROM sluice.dead_letters_resolved
        UNION ALL
        SELECT (SELECT min(d.pipeline) FROM sluice.dead_letters_resolved d WHERE d.pipeline > r.pipeline)
        FROM resolved r WHERE r.pipeline IS NOT NULL
      )
      SELECT pipeline FROM live WHERE starts_with(pipeline, ${prefix})
      UNION
      SELECT pipeline FROM resolved WHERE starts_with(pipeline, ${prefix})`.pipe(
        Effect.map((rows) => rows.map((r) => r.pipeline).sort()),
        mapSqlError("list dead-letter pipelines"),
        Effect.withSpan("SqlDeadLetterStore.pipelines")
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
      SELECT ((SELECT count(*) FROM purged) + (SELECT count(*) FROM purged_resolved))::float8 AS n`.pipe(
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
      countByTypeAndStatus,
      countByPartition,
      discard,
      resolve,
      remove,
      pipelines,
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
