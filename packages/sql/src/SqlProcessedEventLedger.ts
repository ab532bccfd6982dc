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
 * An id is stored as it is when it is short plain text; one that a B-tree entry could not hold (over
 * {@link maxStoredLength} characters: PostgreSQL refuses index entries over about 2.7 kB, which failed the
 * whole batch's commit again at every redelivery) or that `text` cannot hold (a NUL, a lone surrogate) is
 * stored as `sha256:` and the SHA-256 of its JSON text ({@link storedId}), as is an id that starts with
 * `sha256:` itself, so that no two ids share a stored one. The same id always gets the same stored id, so
 * it is claimed once, whatever its text.
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
import * as Crypto from "node:crypto"
import { mapSqlError } from "./internal/sinkError.ts"
import { needsEscaping } from "./internal/textEscape.ts"
import { typedArray } from "./internal/typedArray.ts"

/**
 * The longest event id (or key) stored as it is, in UTF-16 code units (at most 3 bytes of UTF-8 each):
 * well below the B-tree entry limit of the ledger's primary key.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxStoredLength = 512

const digestPrefix = "sha256:"

/**
 * The id under which the ledger stores an event id or a key: the id itself when it is at most
 * {@link maxStoredLength} long, holds no NUL or lone surrogate and does not start with `sha256:`; else
 * `sha256:` and the hex SHA-256 of its JSON text (which tells every string apart, lone surrogates too).
 *
 * @example
 * ```ts
 * import { SqlProcessedEventLedger } from "@sluice/sql"
 *
 * SqlProcessedEventLedger.storedId("order-event-1") // "order-event-1"
 * SqlProcessedEventLedger.storedId("x".repeat(10_000)) // "sha256:…" (64 hex digits)
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const storedId = (id: string): string =>
  id.length <= maxStoredLength && !needsEscaping(id) && !id.startsWith(digestPrefix)
    ? id
    : digestPrefix + Crypto.createHash("sha256").update(JSON.stringify(id)).digest("hex")

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
    events.length === 0 ? Effect.succeed(new Set<string>()) : Effect.suspend(() => {
      // the stored ids, and the ids they stand for
      const stored = events.map((e) => storedId(e.eventId))
      const original = new Map<string, string>()
      stored.forEach((id, i) => {
        if (id !== events[i]!.eventId) original.set(id, events[i]!.eventId)
      })
      const onConflict = sameMessageKeeps
        // a no-op update returns the row: the key stays with the message that claimed it
        ? sql`ON CONFLICT (pipeline, event_id) DO UPDATE SET processed_at = sluice.processed_events.processed_at
              WHERE sluice.processed_events.stream = excluded.stream
                AND sluice.processed_events.sequence = excluded.sequence`
        : sql`ON CONFLICT (pipeline, event_id) DO NOTHING`
      const stream = typedArray(events.map((e) => e.stream), PgTypes.OID.text)
      const sequence = typedArray(events.map((e) => String(e.sequence)), PgTypes.OID.text)
      const at = new Date(processedAt)
      const claimed = original.size === 0
        ? sql<{ readonly event_id: string }>`
          INSERT INTO sluice.processed_events (pipeline, event_id, stream, sequence, processed_at)
          SELECT ${pipeline}, e.event_id, e.stream, e.sequence, ${at}
          FROM unnest(${typedArray(stored, PgTypes.OID.text)}::text[], ${stream}::text[], ${sequence}::int8[])
            AS e(event_id, stream, sequence)
          ${onConflict}
          RETURNING event_id`
        // an id stored as a digest may have been stored as itself by an earlier version (one that a
        // B-tree entry could hold compressed): such a row is the id's claim, kept by its message
        : sql<{ readonly event_id: string }>`
          WITH e AS (
            SELECT * FROM unnest(
              ${typedArray(stored, PgTypes.OID.text)}::text[],
              ${
          typedArray(
            events.map((e, i) => stored[i] !== e.eventId && !needsEscaping(e.eventId) ? e.eventId : null),
            PgTypes.OID.text
          )
        }::text[],
              ${stream}::text[],
              ${sequence}::int8[]
            ) AS e(event_id, legacy, stream, sequence)
          ), old AS (
            SELECT e.event_id, p.stream = e.stream AND p.sequence = e.sequence AS same
            FROM e JOIN sluice.processed_events p ON p.pipeline = ${pipeline} AND p.event_id = e.legacy
          ), claimed AS (
            INSERT INTO sluice.processed_events (pipeline, event_id, stream, sequence, processed_at)
            SELECT ${pipeline}, e.event_id, e.stream, e.sequence, ${at}
            FROM e WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.event_id = e.event_id)
            ${onConflict}
            RETURNING event_id
          )
          SELECT event_id FROM claimed
          ${sameMessageKeeps ? sql`UNION ALL SELECT event_id FROM old WHERE same` : sql``}`
      return Effect.map(claimed, (rows) => new Set(rows.map((r) => original.get(r.event_id) ?? r.event_id)))
    }).pipe(
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
    merge: (from, to) =>
      from === to ? Effect.succeed(0) : sql.withTransaction(Effect.flatMap(
        sql<{ readonly count: number }>`
          WITH moved AS (
            UPDATE sluice.processed_events p SET pipeline = ${to}
            WHERE p.pipeline = ${from} AND NOT EXISTS (
              SELECT 1 FROM sluice.processed_events q WHERE q.pipeline = ${to} AND q.event_id = p.event_id
            )
            RETURNING 1
          )
          SELECT count(*)::float8 AS count FROM moved`,
        (rows) => Effect.as(sql`DELETE FROM sluice.processed_events WHERE pipeline = ${from}`, rows[0]?.count ?? 0)
      )).pipe(
        mapSqlError("merge processed events"),
        Effect.withSpan("SqlProcessedEventLedger.merge")
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
