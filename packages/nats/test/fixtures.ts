import { PgTypes } from "@effect/sql-pg"
import { SinkError, type Streaming, Transform } from "@sluice/core"
import { JetStreamSource, Testing as NatsTesting } from "@sluice/nats"
import { SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"

/** The NATS server of the tests (JetStream enabled): `Testing` of `@sluice/nats`. */
export const natsServers = NatsTesting.servers

export const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int })
export type Reading = typeof Reading.Type
export const transform = Transform.fromSchema(Reading)

/** Ids divisible by 4 are bad (not JSON). */
export const payloadOf = (id: number) => id % 4 === 0 ? `{not json ${id}` : JSON.stringify({ id: `e${id}`, value: id })

export const createTable = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE ${sql(table)} (id text PRIMARY KEY, value int NOT NULL)`
  )

/** An upsert sink into `table (id, value)`; `failures` of its writes fail after writing (rolled back). */
export const upsertSink = (table: string, failures = 0) => {
  let left = failures
  return Effect.map(SqlClient.SqlClient, (sql): Streaming.StreamSink<Reading> => ({
    target: table,
    write: (rows) =>
      sql`INSERT INTO ${sql(table)} (id, value)
          SELECT * FROM unnest(${PgTypes.array(rows.map((r) => r.id), PgTypes.OID.text).pipe(unwrap)}::text[],
                               ${PgTypes.array(rows.map((r) => r.value), PgTypes.OID.int4).pipe(unwrap)}::int4[])
          ON CONFLICT (id) DO UPDATE SET value = excluded.value`.pipe(
        Effect.mapError((e) => new SinkError.SinkError({ operation: "upsert", message: e.message, retryable: true })),
        Effect.andThen(Effect.suspend(() =>
          left-- > 0
            ? Effect.fail(new SinkError.SinkError({ operation: "upsert", message: "flaky", retryable: true }))
            : Effect.void
        ))
      )
  }))
}

const unwrap = <A>(
  result: { readonly _tag: "Success"; readonly success: A } | { readonly _tag: "Failure"; readonly failure: unknown }
): A => {
  if (result._tag === "Failure") throw result.failure
  return result.success
}

export const readIds = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ readonly id: string; readonly n: number }>`SELECT id, count(*)::int AS n FROM ${
        sql(table)
      } GROUP BY id ORDER BY id COLLATE "C"`,
      (rows) => rows.map((r) => r.id)
    ))

/** Sluice's services plus the processed-event ledger, on a database layer. */
export const sluiceOn = <E>(database: Layer.Layer<SqlClient.SqlClient, E>) =>
  SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer), Layer.provideMerge(database))

/** A stream and durable consumer of their own, deleted at the end of the scope. */
export const freshStream = (prefix: string) =>
  Effect.gen(function*() {
    const id = crypto.randomUUID().replaceAll("-", "").slice(0, 10)
    const stream = `${prefix}_${id}`.toUpperCase()
    const subject = `sluice.test.${id}`
    const consumer = `c_${id}`
    const js = yield* JetStreamSource.JetStream
    yield* Effect.acquireRelease(
      JetStreamSource.ensureStream({ stream, subjects: [subject] }),
      () => Effect.promise(() => js.manager.streams.delete(stream).catch(() => false))
    )
    return { stream, subject, consumer }
  })

export const pending = (stream: string, consumer: string) =>
  Effect.flatMap(
    JetStreamSource.JetStream,
    (js) =>
      Effect.promise(() => js.manager.consumers.info(stream, consumer)).pipe(
        Effect.map((info) => ({ pending: info.num_pending, ackPending: info.num_ack_pending }))
      )
  )
