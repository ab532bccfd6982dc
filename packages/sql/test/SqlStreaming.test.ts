import { PgTypes } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import {
  DeadLetter,
  Partition,
  Pipeline,
  ProcessedEventLedger,
  Sink,
  SinkError,
  Source,
  Streaming,
  Transform
} from "@sluice/core"
import { SqlProcessedEventLedger } from "@sluice/sql"
import { Arbitrary, Effect, Layer, Ref, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { mapSqlError } from "../src/internal/sinkError.ts"
import { typedArray } from "../src/internal/typedArray.ts"
import { backends, suiteOptions, unique, withSluice } from "./fixtures.ts"

const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int })
type Reading = typeof Reading.Type
const transform = Transform.fromSchema(Reading)
const day = Partition.makeUnsafe("2024-03-01")

/** An event of the model: ids 0..11; those divisible by 4 are bad (not JSON). */
const payloadOf = (id: number) => id % 4 === 0 ? `{not json ${id}` : JSON.stringify({ id: `e${id}`, value: id })

const messages = (deliveries: ReadonlyArray<number>, acks: Array<number>) =>
  deliveries.map((id, i): Streaming.Message => ({
    eventId: `e${id}`,
    payload: payloadOf(id),
    stream: "READINGS",
    // beyond int4, as in a long-lived stream: positions and the ledger keep the whole sequence
    sequence: 3_000_000_000 + i + 1,
    publishedAt: Date.UTC(2024, 2, 1),
    ack: Effect.sync(() => {
      acks.push(i + 1)
    })
  }))

const upsertSink = (table: string, failEvery: number) => {
  let writes = 0
  return Effect.map(SqlClient.SqlClient, (sql): Streaming.StreamSink<Reading> => ({
    target: table,
    write: (rows) =>
      sql`INSERT INTO ${sql(table)} (id, value)
          SELECT * FROM unnest(${typedArray(rows.map((r) => r.id), PgTypes.OID.text)}::text[],
                               ${typedArray(rows.map((r) => r.value), PgTypes.OID.int4)}::int4[])
          ON CONFLICT (id) DO UPDATE SET value = excluded.value`.pipe(
        mapSqlError(`upsert ${table}`),
        // a transient failure after the write: the transaction rolls back, the batch is retried
        Effect.andThen(Effect.suspend(() =>
          failEvery > 0 && ++writes % failEvery === 0
            ? Effect.fail(new SinkError.SinkError({ operation: "write", message: "flaky", retryable: true }))
            : Effect.void
        ))
      )
  }))
}

const Deliveries = Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 11 }))), {
  minLength: 1,
  maxLength: 40
})
const Knobs = Arbitrary.schema(Schema.Struct({
  batchSize: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 7 })),
  // 0: never; n ≥ 2: every n-th write fails after writing (1 would never make progress)
  failEvery: Schema.Literals([0, 2, 3])
}))

for (const backend of backends) {
  const services = SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(withSluice(backend)))
  layer(services, suiteOptions)(`Streaming on SQL [${backend.name}]`, (it) => {
    it.effect.prop(
      "for any interleaving of duplicates, redeliveries and failed commits, the target holds the distinct good events, as the batch mode does",
      [Deliveries, Knobs],
      ([deliveries, { batchSize, failEvery }]) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = unique("streamed")
          const name = unique("streaming")
          yield* sql`CREATE TABLE ${sql(table)} (id text PRIMARY KEY, value int NOT NULL)`
          const sink = yield* upsertSink(table, failEvery)
          const pipeline = Streaming.make({
            name,
            transform,
            sink,
            batchSize,
            batchWindow: "1 millis",
            breaker: { failures: 1_000, openDuration: "5 millis" },
            badRecords: { threshold: 1, minimum: 1_000 }
          })
          const acks: Array<number> = []
          // a redelivery: the whole sequence is delivered again after the first pass, in part
          const all = [...deliveries, ...deliveries.slice(0, Math.ceil(deliveries.length / 2))]
          yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messages(all, acks)) })
          const distinct = [...new Set(all)]
          const good = distinct.filter((id) => id % 4 !== 0).map((id) => ({ id: `e${id}`, value: id }))
            .sort((a, b) => a.id.localeCompare(b.id))
          const rows = yield* sql<{ readonly id: string; readonly value: number }>`
            SELECT id, value FROM ${sql(table)} ORDER BY id COLLATE "C"`
          assert.deepStrictEqual(rows, good)
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
          assert.strictEqual(dead.length, distinct.length - good.length)
          assert.isTrue(dead.every((d) => d.stage === "transform@READINGS"))
          const located = yield* sql<{ readonly stream: string; readonly sequence: string; readonly position: number }>`
            SELECT stream, sequence::text AS sequence, position FROM sluice.dead_letters WHERE pipeline = ${name}`
          assert.isTrue(located.every((d) => d.stream === "READINGS" && d.sequence === String(d.position)))
          assert.isTrue(dead.every((d) => d.position > 3_000_000_000 && d.position <= 3_000_000_000 + all.length))
          assert.strictEqual(yield* (yield* ProcessedEventLedger.ProcessedEventLedger).count(name), distinct.length)
          assert.strictEqual(acks.length, all.length)
          // the batch mode over the same distinct events gives the same rows and dead letters
          const { rows: batchRows, sink: batchSink } = yield* Sink.memory<Reading>()
          const distinctPayloads = [...new Map(all.map((id) => [id, payloadOf(id)])).values()]
          const batch = Pipeline.make({
            name: `${name}_batch`,
            source: Source.make("inline", () =>
              Stream.fromIterable(distinctPayloads.map((payload, i) => ({ payload, position: i + 1 })))),
            transform,
            sink: batchSink,
            key: (r) =>
              r.id
          })
          const report = yield* Pipeline.run(batch, day)
          const batchLoaded = [...((yield* Ref.get(batchRows)).get(day) ?? [])]
            .sort((a, b) => a.id.localeCompare(b.id))
          assert.deepStrictEqual(batchLoaded, rows)
          assert.strictEqual(report.deadLettered, dead.length)
        }),
      { arbitrary: { runs: 15 } }
    )
  })
}
