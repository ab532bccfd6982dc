import { assert, layer } from "@effect/vitest"
import {
  Backfill,
  Calendar,
  type Partition,
  Pipeline,
  RetryPolicy,
  RunLedger,
  Source,
  SourceError,
  Transform
} from "@sluice/core"
import { PartitionReplace } from "@sluice/sql"
import { Effect, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int, day: Schema.String })
type Reading = typeof Reading.Type

/** A source over day → lines; a day with no entry fails permanently (no file yet). */
const mapSource = (data: Map<string, ReadonlyArray<string>>) =>
  Source.make("memory", (partition) => {
    const lines = data.get(partition)
    return lines === undefined
      ? Stream.fail(
        new SourceError.SourceError({
          source: "memory",
          reason: new SourceError.NotFound({ message: `no data for ${partition}` })
        })
      )
      : Stream.fromIterable(lines.map((payload, i) => ({ payload, position: i + 1 })))
  })

const line = (d: string, id: string) => JSON.stringify({ id, value: 1, day: d })

for (const backend of backends) {
  layer(withSluice(backend).pipe(Layer.provideMerge(Backfill.Backfill.layerLocal)), suiteOptions)(
    `catch-up [${backend.name}]`,
    (it) => {
      it.effect("the calendar to the last complete day by Clock; --only-failed re-runs a partition under its own date", () =>
        Effect.gen(function*() {
          const name = unique("catchup")
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE ${sql(name)} (day date NOT NULL, id text NOT NULL, value int NOT NULL)`
          const data = new Map([[day(0), [line(day(0), "a"), "{bad"]], [day(2), [line(day(2), "b")]]])
          const pipeline = Pipeline.make({
            name,
            source: mapSource(data),
            transform: Transform.fromSchema(Reading),
            failureThreshold: 1,
            retry: RetryPolicy.make({ baseDelay: "0 millis", jitter: false, maxRetries: 0 }),
            sink: PartitionReplace.make<Reading>({
              table: name,
              partitionColumn: "day",
              columns: [{ name: "day", type: "date" }, { name: "id", type: "text" }, { name: "value", type: "int" }],
              toRow: (r) => [r.day, r.id, r.value]
            })
          })
          const ledger = yield* RunLedger.RunLedger
          const executor = yield* Backfill.Backfill
          const backfill = (partitions: ReadonlyArray<Partition.PartitionDate>) =>
            executor.run({ pipeline: name, partitions, concurrency: 2, runPartition: (p) => Pipeline.run(pipeline, p) })
          yield* backfill([day(0), day(1), day(2)])
          yield* ledger.start({ runId: `${name}-running`, pipeline: name, partition: day(3), startedAt: 0 })

          // the clock says it is day 6, 10:00 UTC: the last complete day is day 5
          const clocked = yield* Effect.gen(function*() {
            yield* TestClock.setTime(Date.parse(`${day(6)}T10:00:00Z`))
            return yield* Calendar.lastCompleteDay
          }).pipe(Effect.provide(TestClock.layer()))
          assert.strictEqual(clocked, day(5))
          const calendar = Calendar.make({ start: day(0), end: clocked, runs: yield* ledger.list(name) })
          assert.deepStrictEqual(calendar.map((d) => d.state), [
            "done",
            "failed",
            "done",
            "running",
            "missing",
            "missing"
          ])
          assert.deepStrictEqual(calendar.map((d) => d.latest?.failureRate ?? null), [0.5, 0, 0, 0, null, null])
          const summary = Calendar.summarize(calendar)
          assert.deepStrictEqual([summary.done, summary.failed, summary.running, summary.missing], [2, 1, 1, 2])

          // the file of day 1 arrives; --only-failed re-runs day 1 only, under day 1
          data.set(day(1), [line(day(1), "c"), line(day(1), "d")])
          const retry = Backfill.plan({
            start: day(0),
            end: clocked,
            mode: "only-failed",
            latestRuns: yield* ledger.latest(name)
          })
          assert.deepStrictEqual(retry, [day(1)])
          const report = yield* backfill(retry)
          assert.deepStrictEqual(report.outcomes.map((o) => [o.partition, o._tag]), [[day(1), "Succeeded"]])
          const day1 = yield* ledger.list(name, { start: day(1), end: day(1) })
          assert.deepStrictEqual(day1.map((r) => [r.partition, r.status, r.loaded]), [
            [day(1), "succeeded", 2],
            [day(1), "failed", 0]
          ])
          const rows = yield* sql<{ readonly day: string; readonly n: number }>`
            SELECT day::text AS day, count(*)::int4 AS n FROM ${sql(name)} GROUP BY day ORDER BY day`
          assert.deepStrictEqual(rows, [{ day: day(0), n: 1 }, { day: day(1), n: 2 }, { day: day(2), n: 1 }])
          // --missing: never run (day 4, 5) or whose latest run failed; a running one is left alone
          const missing = Backfill.plan({
            start: day(0),
            end: clocked,
            mode: "missing",
            latestRuns: yield* ledger.latest(name)
          })
          assert.deepStrictEqual(missing, [day(4), day(5)])
        }))
    }
  )
}
