/**
 * One COPY for a whole stream of batches (`CopyIn.makeStream`, `PartitionReplace`'s
 * `writeBatches`): everything arrives, a failure anywhere (a row the server rejects, a row the
 * encoder rejects, the stream's own failure, an interruption) leaves nothing behind, and the
 * connection stays usable for the rollback and what follows.
 */
import { assert, layer } from "@effect/vitest"
import { SinkError } from "@sluice/core"
import { CopyIn, PartitionReplace } from "@sluice/sql"
import { Data, Effect, Exit, Fiber, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as PgCopy from "../src/internal/pgCopy.ts"
import { backends, countRows, day, stallInserts, suiteOptions, unique } from "./fixtures.ts"

interface Row {
  readonly id: number
  readonly label: string
}

const inTransaction = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(self))

const createTable = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY, label text NOT NULL)`
  )

const copier = (table: string) =>
  CopyIn.makeStream<Row>({
    table,
    columns: [{ name: "id", type: "int" }, { name: "label", type: "text" }],
    toRow: (row) => [row.id, row.label]
  })

/** Batch `b` of `size` rows: ids b × size … (b + 1) × size - 1. */
const batch = (b: number, size: number): ReadonlyArray<Row> =>
  Array.from({ length: size }, (_, i) => ({ id: b * size + i, label: `row ${b * size + i} ☕\t"` }))

class Upstream extends Data.TaggedError("Upstream")<{ readonly at: number }> {}

for (const backend of backends) {
  layer(backend.layer, suiteOptions)(`CopyIn.makeStream [${backend.name}]`, (it) => {
    it.effect("copies every batch of a stream with one COPY, exactly", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("stream_all")
        yield* createTable(table)
        const copy = copier(table)
        const batches = Stream.range(0, 59).pipe(Stream.map((b) => batch(b, 1_000)))
        assert.deepStrictEqual(yield* inTransaction(copy(batches)), Option.some(60_000))
        const [row] = yield* sql<{ readonly n: string; readonly s: string; readonly l: string }>`
          SELECT count(*)::text AS n, sum(id)::text AS s, max(label) FILTER (WHERE id = 59999) AS l
          FROM ${sql(table)}`
        assert.deepStrictEqual(row, { n: "60000", s: String(59_999 * 60_000 / 2), l: "row 59999 ☕\t\"" })
        // an empty stream copies nothing, and the connection goes on
        assert.deepStrictEqual(yield* inTransaction(copy(Stream.empty)), Option.some(0))
        assert.strictEqual(yield* countRows(table), 60_000)
      }))

    it.effect("a row the encoder rejects aborts the COPY, naming its row in the stream; nothing is loaded", () =>
      Effect.gen(function*() {
        const table = unique("stream_reject")
        yield* createTable(table)
        const copy = copier(table)
        const batches = Stream.range(0, 9).pipe(Stream.map((b) => batch(b, 1_000)))
        const error = yield* inTransaction(copy(batches, (values) => values[0] === 4_005 ? "no 4005" : undefined))
          .pipe(Effect.flip)
        assert.instanceOf(error, SinkError.SinkError)
        assert.strictEqual(error.message, "row 4005: no 4005")
        assert.strictEqual(yield* countRows(table), 0)
        assert.deepStrictEqual(yield* inTransaction(copy(Stream.make(batch(0, 3)))), Option.some(3))
      }))

    it.effect("a failing stream aborts the COPY with its own error; nothing is loaded; the connection is usable", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("stream_upstream")
        yield* createTable(table)
        const copy = copier(table)
        const batches = Stream.range(0, 9).pipe(
          Stream.mapEffect((b) => b === 6 ? Effect.fail(new Upstream({ at: b })) : Effect.succeed(batch(b, 2_000)))
        )
        const error = yield* inTransaction(
          Effect.andThen(sql`INSERT INTO ${sql(table)} VALUES (-1, 'before')`, copy(batches))
        ).pipe(Effect.flip)
        assert.deepStrictEqual(error, new Upstream({ at: 6 }))
        assert.strictEqual(yield* countRows(table), 0, "the whole transaction rolled back")
        assert.deepStrictEqual(yield* inTransaction(copy(Stream.make(batch(0, 3)))), Option.some(3))
      }))

    it.effect("a row the server rejects fails the COPY with its message; the transaction rolls back", () =>
      Effect.gen(function*() {
        const table = unique("stream_duplicate")
        yield* createTable(table)
        const copy = copier(table)
        // batch 7 repeats batch 2's ids
        const batches = Stream.range(0, 19).pipe(Stream.map((b) => batch(b === 7 ? 2 : b, 1_000)))
        const error = yield* inTransaction(copy(batches)).pipe(Effect.flip)
        assert.instanceOf(error, SinkError.SinkError)
        assert.match(error.message, /duplicate key value violates unique constraint .*\[23505\]$/)
        assert.strictEqual(yield* countRows(table), 0)
        assert.deepStrictEqual(yield* inTransaction(copy(Stream.make(batch(0, 3)))), Option.some(3))
      }))

    it.effect(
      "a stream interrupted at any point leaves nothing behind and the connection usable",
      () =>
        Effect.gen(function*() {
          const table = unique("stream_interrupt")
          yield* createTable(table)
          const copy = copier(table)
          // an endless stream, a batch every millisecond
          const batches = Stream.iterate(0, (b) => b + 1).pipe(
            Stream.mapEffect((b) => Effect.as(Effect.sleep(1), batch(b, 500)))
          )
          for (const delay of [0, 5, 20, 100]) {
            const fiber = yield* Effect.forkChild(inTransaction(copy(batches)))
            yield* Effect.sleep(delay)
            const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
            assert.isTrue(Exit.hasInterrupts(exit), `after ${delay} ms`)
            assert.strictEqual(yield* countRows(table), 0, `after ${delay} ms`)
          }
          assert.deepStrictEqual(yield* inTransaction(copy(Stream.make(batch(0, 3)))), Option.some(3))
        }),
      { timeout: 30_000 }
    )

    if (backend.name === "postgres") {
      it.effect(
        "stops pulling an endless stream as soon as the server has rejected a row",
        () =>
          Effect.gen(function*() {
            const table = unique("stream_endless")
            yield* createTable(table)
            const copy = copier(table)
            // batch 3 repeats batch 1's ids; the stream never ends on its own
            const batches = Stream.iterate(0, (b) => b + 1).pipe(
              Stream.map((b) => batch(b === 3 ? 1 : b, 1_000))
            )
            const error = yield* inTransaction(copy(batches)).pipe(Effect.flip)
            assert.match(error.message, /duplicate key value violates unique constraint .*\[23505\]$/)
            assert.strictEqual(yield* countRows(table), 0)
          }),
        { timeout: 30_000 }
      )
    }

    it.effect("PartitionReplace.writeBatches loads what write loads, batch by batch", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const p = day(0)
        const tables = [unique("pr_stream"), unique("pr_batches")] as const
        const rows = Array.from({ length: 12_345 }, (_, i) => ({ id: i, label: `label ${i % 97}\n\\` }))
        const batches = Array.from({ length: 13 }, (_, b) => rows.slice(b * 1_000, (b + 1) * 1_000))
        for (const [k, table] of tables.entries()) {
          yield* sql`CREATE TABLE ${sql(table)} (p date NOT NULL, id int PRIMARY KEY, label text NOT NULL)`
          const sink = PartitionReplace.make<Row>({
            table,
            partitionColumn: "p",
            columns: [{ name: "p", type: "date" }, { name: "id", type: "int" }, { name: "label", type: "text" }],
            toRow: (row) => [p, row.id, row.label]
          })
          assert.isDefined(sink.writeBatches)
          yield* inTransaction(Effect.andThen(
            sink.prepare(p),
            k === 0
              ? sink.writeBatches!(p, Stream.fromIterable(batches))
              : Effect.forEach(batches, (b) => sink.write(p, b), { discard: true })
          ))
        }
        const read = (table: string) => sql`SELECT p::text, id, label FROM ${sql(table)} ORDER BY id`
        const streamed = yield* read(tables[0])
        assert.strictEqual(streamed.length, 12_345)
        assert.deepStrictEqual(streamed, yield* read(tables[1]))
      }))

    if (backend.name === "postgres") {
      it.effect(
        "waits for the socket to drain while the server stalls, and leaves no listener behind",
        () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const table = unique("stream_drain")
            yield* createTable(table)
            // the server stops reading for a second twice, while the stream has far more than 8 MiB to send
            yield* stallInserts(table, [20_000, 80_000], 1)
            const copy = copier(table)
            const padding = "x".repeat(1_000)
            const batches = Stream.range(0, 59).pipe(
              Stream.map((b) => batch(b, 2_000).map((row) => ({ ...row, label: row.label + padding })))
            )
            const counts = yield* sql.withTransaction(Effect.gen(function*() {
              const [connection] = Option.getOrThrow(yield* Effect.serviceOption(sql.transactionService))
              const socket = PgCopy.targetOf(connection)!.session.session.socket
              const listeners = () => ({ drain: socket.listenerCount("drain"), close: socket.listenerCount("close") })
              const before = listeners()
              let drained = 0
              const onDrain = () => drained++
              socket.on("drain", onDrain)
              const copied = yield* copy(batches)
              socket.off("drain", onDrain)
              return { before, after: listeners(), copied, drained }
            }))
            assert.deepStrictEqual(counts.copied, Option.some(120_000))
            assert.isAbove(counts.drained, 0)
            assert.deepStrictEqual(counts.after, counts.before)
            assert.strictEqual(yield* countRows(table), 120_000)
          }),
        { timeout: 30_000 }
      )
    }
  })
}
