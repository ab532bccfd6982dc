/**
 * The run ledger in PostgreSQL: core's `RunLedger` on table `sluice.runs`.
 *
 * Times are epoch milliseconds in the contract and `timestamptz` in the table; partitions are
 * `date` columns, read back as `YYYY-MM-DD` text so no time zone ever shifts them.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { type Partition, RunLedger } from "@sluice/core"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { mapSqlError } from "./internal/sinkError.ts"

interface RunRow {
  readonly run_id: string
  readonly pipeline: string
  readonly partition: string
  readonly status: RunLedger.RunStatus
  readonly records_read: number | bigint | string
  readonly records_loaded: number | bigint | string
  readonly records_dead_lettered: number | bigint | string
  readonly retries: number
  readonly failure_rate: number
  readonly alerted: boolean
  readonly started_at: Date
  readonly ended_at: Date | null
  readonly error_type: string | null
  readonly error: string | null
}

const toRecord = (row: RunRow): RunLedger.RunRecord => ({
  runId: row.run_id,
  pipeline: row.pipeline,
  partition: row.partition as Partition.PartitionDate,
  status: row.status,
  read: Number(row.records_read),
  loaded: Number(row.records_loaded),
  deadLettered: Number(row.records_dead_lettered),
  retries: row.retries,
  failureRate: row.failure_rate,
  alerted: row.alerted,
  startedAt: row.started_at.getTime(),
  endedAt: row.ended_at === null ? undefined : row.ended_at.getTime(),
  errorType: row.error_type ?? undefined,
  error: row.error ?? undefined
})

/**
 * Builds the ledger over the current `SqlClient`. The tables must exist (`SluiceMigrations`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const columns = sql`run_id, pipeline, partition::text AS partition, status, records_read, records_loaded,
    records_dead_lettered, retries, failure_rate, alerted, started_at, ended_at, error_type, error`

  const start = (run: {
    readonly runId: string
    readonly pipeline: string
    readonly partition: Partition.PartitionDate
    readonly startedAt: number
  }) =>
    sql.withTransaction(Effect.gen(function*() {
      // The caller holds the partition lock, so a run of this partition still marked
      // 'running' is a run whose process died: close it as abandoned.
      yield* sql`
        UPDATE sluice.runs
        SET status = 'failed', ended_at = ${
        PgTypes.timestamptz(run.startedAt)
      }, error_type = ${RunLedger.abandonedErrorType},
            error = ${`abandoned: still running when run ${run.runId} started`}
        WHERE pipeline = ${run.pipeline} AND partition = ${PgTypes.date(run.partition)} AND status = 'running'
          AND run_id <> ${run.runId}`
      yield* sql`
        INSERT INTO sluice.runs (run_id, pipeline, partition, status, started_at)
        VALUES (${run.runId}, ${run.pipeline}, ${PgTypes.date(run.partition)}, 'running',
                ${PgTypes.timestamptz(run.startedAt)})`
    })).pipe(mapSqlError("start run"), Effect.withSpan("SqlRunLedger.start"))

  const finish = (runId: string, outcome: RunLedger.RunOutcome) =>
    sql`
      UPDATE sluice.runs
      SET status = ${outcome.status},
          records_read = ${PgTypes.int8(BigInt(outcome.read))},
          records_loaded = ${PgTypes.int8(BigInt(outcome.loaded))},
          records_dead_lettered = ${PgTypes.int8(BigInt(outcome.deadLettered))},
          retries = ${PgTypes.int4(outcome.retries)},
          failure_rate = ${PgTypes.float8(outcome.failureRate)},
          alerted = ${outcome.alerted},
          ended_at = ${PgTypes.timestamptz(outcome.endedAt)},
          error_type = ${PgTypes.text(outcome.errorType ?? null)},
          error = ${PgTypes.text(outcome.error ?? null)}
      WHERE run_id = ${runId}`.pipe(Effect.asVoid, mapSqlError("finish run"), Effect.withSpan("SqlRunLedger.finish"))

  const markAbandoned = (runId: string, abandoned: { readonly endedAt: number; readonly error: string }) =>
    sql<{ readonly run_id: string }>`
      UPDATE sluice.runs
      SET status = 'failed', ended_at = ${PgTypes.timestamptz(abandoned.endedAt)},
          error_type = ${RunLedger.abandonedErrorType}, error = ${abandoned.error}
      WHERE run_id = ${runId} AND status = 'running'
      RETURNING run_id`.pipe(
      Effect.map((rows) => rows.length > 0),
      mapSqlError("mark a run abandoned"),
      Effect.withSpan("SqlRunLedger.markAbandoned")
    )

  const list = (
    pipeline: string,
    options?: {
      readonly start?: Partition.PartitionDate | undefined
      readonly end?: Partition.PartitionDate | undefined
    }
  ) =>
    sql<RunRow>`
      SELECT ${columns} FROM sluice.runs
      WHERE pipeline = ${pipeline}
        ${options?.start === undefined ? sql`` : sql`AND partition >= ${PgTypes.date(options.start)}`}
        ${options?.end === undefined ? sql`` : sql`AND partition <= ${PgTypes.date(options.end)}`}
      ORDER BY started_at DESC, run_id DESC`.pipe(
      Effect.map((rows) => rows.map(toRecord)),
      mapSqlError("list runs"),
      Effect.withSpan("SqlRunLedger.list")
    )

  const latest = (pipeline: string) =>
    sql<RunRow>`
      SELECT DISTINCT ON (partition) ${columns} FROM sluice.runs
      WHERE pipeline = ${pipeline}
      ORDER BY partition, started_at DESC, run_id DESC`.pipe(
      Effect.map((rows) => rows.map(toRecord)),
      mapSqlError("latest runs"),
      Effect.withSpan("SqlRunLedger.latest")
    )

  return RunLedger.RunLedger.of({ start, finish, markAbandoned, list, latest })
})

/**
 * Core's `RunLedger` on `sluice.runs`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Database, SluiceMigrations, SqlRunLedger } from "@sluice/sql"
 *
 * const Ledger = SqlRunLedger.layer.pipe(
 *   Layer.provide(SluiceMigrations.layer),
 *   Layer.provideMerge(Database.layerPglite({}))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RunLedger.RunLedger, never, SqlClient.SqlClient> = Layer.effect(
  RunLedger.RunLedger,
  make
)
