/**
 * The processed-event ledger in PostgreSQL: core's `ProcessedEventLedger` on table
 * `sluice.processed_events (pipeline, event_id)`.
 *
 * **Details**
 *
 * A batch is claimed with one statement, `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING
 * RETURNING event_id`: the ids returned are those claimed now. Inside the batch's transaction, a
 * concurrent consumer claiming the same id waits for it to commit or roll back, so an event is
 * applied by one of them only.
 *
 * `summary` is one aggregate over the pipeline's rows (`count`, `min` and `max` of `processed_at`).
 *
 * `purge` deletes the rows whose `processed_at` is before the cut-off, of one pipeline (and its
 * `<pipeline>#key` business keys) or of all, reading the `processed_at` index (migration 0008), not the
 * whole table; see core's `ProcessedEventLedger` for the trade-off.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { ProcessedEventLedger } from "@sluice/core"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { mapSqlError } from "./internal/sinkError.ts"
import { typedArray } from "./internal/typedArray.ts"

/**
 * Builds the ledger over the current `SqlClient`. The table must exist (`SluiceMigrations`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const claimWith = (sameMessageKeeps: boolean) =>
  (
    pipeline: string,
    events: ReadonlyArray<ProcessedEventLedger.ProcessedEvent>,
    processedAt: number
  ) =>
    events.length === 0 ? Effect.succeed(new Set<string>()) : Effect.suspend(() =>
      sql<{ readonly event_id: string }>`
          INSERT INTO sluice.processed_events (pipeline, event_id, stream, sequence, processed_at)
          SELECT ${pipeline}, e.event_id, e.stream, e.sequence, ${new Date(processedAt)}
          FROM unnest(
            ${typedArray(events.map((e) => e.eventId), PgTypes.OID.text)}::text[],
            ${typedArray(events.map((e) => e.stream), PgTypes.OID.text)}::text[],
            ${typedArray(events.map((e) => String(e.sequence)), PgTypes.OID.text)}::int8[]
          ) AS e(event_id, stream, sequence)
          ${
        sameMessageKeeps
          // a no-op update returns the row: the key stays with the message that claimed it
          ? sql`ON CONFLICT (pipeline, event_id) DO UPDATE SET processed_at = sluice.processed_events.processed_at
              WHERE sluice.processed_events.stream = excluded.stream
                AND sluice.processed_events.sequence = excluded.sequence`
          : sql`ON CONFLICT (pipeline, event_id) DO NOTHING`
      }
          RETURNING event_id`
    ).pipe(
      Effect.map((rows) => new Set(rows.map((r) => r.event_id))),
      mapSqlError(sameMessageKeeps ? "claim business keys" : "claim processed events"),
      Effect.withSpan(sameMessageKeeps ? "SqlProcessedEventLedger.claimKeys" : "SqlProcessedEventLedger.claim")
    )
  return ProcessedEventLedger.ProcessedEventLedger.of({
    claim: claimWith(false),
    claimKeys: claimWith(true),
    replace: (from, to) =>
      from === to ?
        sql<{ readonly count: number }>`
          SELECT count(*)::float8 AS count FROM sluice.processed_events WHERE pipeline = ${to}`.pipe(
          Effect.map((rows) => rows[0]?.count ?? 0),
          mapSqlError("replace processed events")
        ) :
        sql.withTransaction(Effect.andThen(
          sql`DELETE FROM sluice.processed_events WHERE pipeline = ${to}`,
          sql<{ readonly count: number }>`
            WITH moved AS (
              UPDATE sluice.processed_events SET pipeline = ${to} WHERE pipeline = ${from} RETURNING 1
            )
            SELECT count(*)::float8 AS count FROM moved`
        )).pipe(
          Effect.map((rows) => rows[0]?.count ?? 0),
          mapSqlError("replace processed events"),
          Effect.withSpan("SqlProcessedEventLedger.replace")
        ),
    count: (pipeline) =>
      sql<{ readonly count: number }>`
        SELECT count(*)::float8 AS count FROM sluice.processed_events WHERE pipeline = ${pipeline}`.pipe(
        Effect.map((rows) => rows[0]?.count ?? 0),
        mapSqlError("count processed events")
      ),
    summary: (pipeline) =>
      sql<{ readonly events: number; readonly first: Date | null; readonly last: Date | null }>`
        SELECT count(*)::float8 AS events, min(processed_at) AS first, max(processed_at) AS last
        FROM sluice.processed_events WHERE pipeline = ${pipeline}`.pipe(
        Effect.map((rows): ProcessedEventLedger.Summary => ({
          events: rows[0]?.events ?? 0,
          firstProcessedAt: rows[0]?.first?.getTime() ?? undefined,
          lastProcessedAt: rows[0]?.last?.getTime() ?? undefined
        })),
        mapSqlError("summarize processed events"),
        Effect.withSpan("SqlProcessedEventLedger.summary")
      ),
    purge: (pipeline, olderThan) =>
      (pipeline === undefined
        ? sql<{ readonly count: number }>`
          WITH purged AS (DELETE FROM sluice.processed_events WHERE processed_at < ${olderThan} RETURNING 1)
          SELECT count(*)::float8 AS count FROM purged`
        : sql<{ readonly count: number }>`
          WITH purged AS (
            DELETE FROM sluice.processed_events
            WHERE processed_at < ${olderThan}
              AND (pipeline = ${pipeline} OR starts_with(pipeline, ${`${pipeline}#`}))
            RETURNING 1
          )
          SELECT count(*)::float8 AS count FROM purged`).pipe(
          Effect.map((rows) => rows[0]?.count ?? 0),
          mapSqlError("purge processed events"),
          Effect.withSpan("SqlProcessedEventLedger.purge")
        )
  })
})

/**
 * Core's `ProcessedEventLedger` on `sluice.processed_events`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Database, SluiceMigrations, SqlProcessedEventLedger } from "@sluice/sql"
 *
 * const Ledger = SqlProcessedEventLedger.layer.pipe(
 *   Layer.provide(SluiceMigrations.layer),
 *   Layer.provideMerge(Database.layerPglite({}))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<ProcessedEventLedger.ProcessedEventLedger, never, SqlClient.SqlClient> = Layer.effect(
  ProcessedEventLedger.ProcessedEventLedger,
  make
)
