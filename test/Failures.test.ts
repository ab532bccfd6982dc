/**
 * Loads that do not finish — interrupted, or failing in the sink, the database or the source —
 * on every database backend: the previous partition (rows, revenue, dead letters) is left
 * exactly as it was, the run is recorded as failed with the reason, and the next run loads.
 */
import { assert, layer } from "@effect/vitest"
import { Pipeline, SinkError, Source, SourceError } from "@sluice/core"
import { PartitionReplace, Testing } from "@sluice/sql"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import {
  assertLoaded,
  dump,
  generate,
  layerFor,
  type OrdersPipeline,
  pipelineOn,
  reset,
  runEach,
  runs
} from "./fixtures.ts"

/**
 * The pipeline in batches of 50, `around(n, write)` deciding what its n-th write (over all attempts)
 * does. When the sink takes streams of batches (one COPY per stream), the n-th batch's `write` is its
 * handing over to the COPY: `around` then fails or stalls the COPY's stream at that batch.
 */
const aroundWrite = (
  pipeline: OrdersPipeline,
  around: <E, R>(n: number, write: Effect.Effect<void, E, R>) => Effect.Effect<void, E | SinkError.SinkError, R>
): OrdersPipeline => {
  let writes = 0
  const { writeBatches } = pipeline.sink
  return {
    ...pipeline,
    batchSize: 50,
    sink: {
      ...pipeline.sink,
      write: (partition, rows) => around(++writes, pipeline.sink.write(partition, rows)),
      writeBatches: writeBatches === undefined ?
        undefined :
        (partition, batches) =>
          writeBatches(partition, Stream.mapEffect(batches, (rows) => Effect.as(around(++writes, Effect.void), rows)))
    }
  }
}

/** Old data loaded for two days, new files for the same days, and the dump of the old load. */
const loadedThenResent = Effect.gen(function*() {
  yield* reset
  const old = yield* generate({ start: "2024-04-01", days: 2, seed: 1 })
  const resent = yield* generate({ start: "2024-04-01", days: 2, seed: 2 })
  yield* runEach(pipelineOn(old.directory), old.partitions)
  const before = yield* dump()
  assert.isAbove(before.orders.length, 0)
  assert.isAbove(before.deadLetters.length, 0)
  return { day: resent.manifest.days[0]!, resent, before }
})

const lastRun = Effect.map(runs, (all) => {
  const run = all.at(-1)!
  return [run.partition, run.status, run.error_type, run.retries] as const
})

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { excludeTestServices: true })(`interrupted and failing loads [${backend.name}]`, (it) => {
    it.effect.each(["the source stalls after a few batches", "the sink stalls inside a write"] as const)(
      "an interrupted load leaves the previous partition intact and is recorded as interrupted (%s)",
      (stall) =>
        Effect.gen(function*() {
          const { day, resent, before } = yield* loadedThenResent
          const inFlight = yield* Deferred.make<void>()
          const base = pipelineOn(resent.directory)
          const stalled = stall === "the source stalls after a few batches"
            ? aroundWrite({
              ...base,
              source: Source.make(base.source.location, (p) => Stream.concat(base.source.extract(p), Stream.never))
            }, (_, write) => Effect.andThen(write, Deferred.succeed(inFlight, undefined)))
            : aroundWrite(
              base,
              (n, write) =>
                n < 3
                  ? write
                  : write.pipe(Effect.andThen(Deferred.succeed(inFlight, undefined)), Effect.andThen(Effect.never))
            )
          const fiber = yield* Effect.forkChild(Pipeline.run(stalled, day.date))
          yield* Deferred.await(inFlight)
          if (backend.name === "postgres") {
            // PGlite has one session, held by the load's transaction; a server has others
            assert.deepStrictEqual(yield* dump(), before, "other sessions see the previous data while the load runs")
          }
          yield* Fiber.interrupt(fiber)
          assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))

          assert.deepStrictEqual(yield* dump(), before)
          assert.deepStrictEqual(yield* lastRun, [day.date, "failed", "Interrupted", 0])
          // the lock and the connection were given back: the day loads now
          yield* Pipeline.run(base, day.date)
          yield* assertLoaded(resent.directory, day)
        })
    )

    it.effect.runIf(backend.name === "postgres")(
      "an interrupted load whose statement is running on the server is rolled back too",
      () =>
        Effect.gen(function*() {
          const { day, resent, before } = yield* loadedThenResent
          const inFlight = yield* Deferred.make<void>()
          const base = pipelineOn(resent.directory)
          const slow: OrdersPipeline = {
            ...base,
            sink: {
              ...base.sink,
              complete: (p) =>
                base.sink.complete(p).pipe(
                  Effect.andThen(Deferred.succeed(inFlight, undefined)),
                  Effect.andThen(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_sleep(5)`)),
                  Effect.orDie
                )
            }
          }
          const fiber = yield* Effect.forkChild(Pipeline.run(slow, day.date))
          yield* Deferred.await(inFlight)
          yield* Effect.sleep("100 millis")
          const started = Date.now()
          yield* Fiber.interrupt(fiber)
          assert.isBelow(Date.now() - started, 3_000, "the statement is cancelled, not waited for")
          assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
          assert.deepStrictEqual(yield* dump(), before)
          assert.deepStrictEqual(yield* lastRun, [day.date, "failed", "Interrupted", 0])
          yield* Pipeline.run(base, day.date)
          yield* assertLoaded(resent.directory, day)
        })
    )

    it.effect("a sink failure mid-load leaves the previous partition intact and fails the run", () =>
      Effect.gen(function*() {
        const { day, resent, before } = yield* loadedThenResent
        const failing = aroundWrite(
          pipelineOn(resent.directory),
          (n, write) =>
            n < 3 ? write : Effect.andThen(
              write,
              new SinkError.SinkError({ operation: "insert into raw.orders", message: "disk full", retryable: false })
            )
        )
        const error = yield* Effect.flip(Pipeline.run(failing, day.date))
        assert.strictEqual(error._tag, "SinkError")
        assert.deepStrictEqual(yield* dump(), before)
        assert.deepStrictEqual(yield* lastRun, [day.date, "failed", "SinkError", 0])
        yield* Pipeline.run(pipelineOn(resent.directory), day.date)
        yield* assertLoaded(resent.directory, day)
      }))

    it.effect("a derived table that fails to rebuild in the database rolls the whole load back", () =>
      Effect.gen(function*() {
        const { day, resent, before } = yield* loadedThenResent
        const base = pipelineOn(resent.directory)
        const broken = PartitionReplace.rebuild({
          table: "analytics.daily_revenue",
          partitionColumn: "date",
          columns: ["date", "category", "revenue", "order_count"],
          select: (sql, partition) =>
            sql`SELECT order_date, product_category, sum(amount) / 0, count(*)::int
                FROM raw.orders WHERE order_date = ${partition}::date GROUP BY order_date, product_category`
        })
        const failing: OrdersPipeline = {
          ...base,
          sink: { ...base.sink, complete: (p) => Effect.andThen(base.sink.complete(p), broken.run(p)) }
        }
        const error = yield* Effect.flip(Pipeline.run(failing, day.date))
        assert.strictEqual(error._tag, "SinkError")
        assert.isTrue(error._tag === "SinkError" && SqlError.isSqlError(error.cause), "the database's own error")
        assert.deepStrictEqual(yield* dump(), before)
        assert.deepStrictEqual(yield* lastRun, [day.date, "failed", "SinkError", 0])
      }))

    it.effect("a retryable sink failure is retried from a clean transaction: nothing is loaded twice", () =>
      Effect.gen(function*() {
        const { day, resent } = yield* loadedThenResent
        const flaky = aroundWrite(
          pipelineOn(resent.directory),
          (n, write) =>
            n !== 3 ? write : Effect.andThen(
              write,
              new SinkError.SinkError({ operation: "insert into raw.orders", message: "deadlock", retryable: true })
            )
        )
        const report = yield* Pipeline.run(flaky, day.date)
        assert.deepStrictEqual([report.retries, report.loaded, report.deadLettered], [1, day.good, day.bad])
        assert.deepStrictEqual(yield* lastRun, [day.date, "succeeded", null, 1])
        yield* assertLoaded(resent.directory, day)
      }))

    it.effect("a source that keeps failing mid-stream exhausts the retries and leaves the partition intact", () =>
      Effect.gen(function*() {
        const { day, resent, before } = yield* loadedThenResent
        const base = pipelineOn(resent.directory)
        const reset = new SourceError.SourceError({
          source: base.source.location,
          reason: new SourceError.ConnectionReset({ message: "connection reset by peer" })
        })
        const cut: OrdersPipeline = {
          ...base,
          batchSize: 50,
          source: Source.make(base.source.location, (p) => Stream.concat(base.source.extract(p), Stream.fail(reset)))
        }
        const error = yield* Effect.flip(Pipeline.run(cut, day.date))
        assert.strictEqual(error._tag, "SourceError")
        assert.strictEqual(error._tag === "SourceError" && error.reason._tag, "ConnectionReset")
        assert.deepStrictEqual(yield* dump(), before)
        assert.deepStrictEqual(yield* lastRun, [day.date, "failed", "SourceError.ConnectionReset", 3])
      }))
  })
}
