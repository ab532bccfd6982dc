/**
 * The daily-revenue pipeline end to end, on every database backend: generated order files are
 * backfilled and the tables are checked against the generator's manifest; re-runs and backfills
 * in any order and at any concurrency leave the same tables.
 */
import { assert, layer } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition, Pipeline } from "@sluice/core"
import { Testing } from "@sluice/sql"
import { Arbitrary, Effect, FileSystem, Schema } from "effect"
import {
  assertLoaded,
  backfill,
  date,
  dump,
  generate,
  layerFor,
  pipelineOn,
  reset,
  runEach,
  runs,
  shuffle
} from "./fixtures.ts"

const Seed = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000_000 }))

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { excludeTestServices: true })(`daily revenue [${backend.name}]`, (it) => {
    it.effect.each([
      { seed: 1, start: "2024-02-25", days: 8 }, // across a leap day and a month end
      { seed: 42, start: "2023-12-27", days: 9 }, // across a year end
      { seed: 2024, start: "2024-06-01", days: 10 }
    ])(
      "a backfill loads exactly what the generator wrote (seed $seed, $days days from $start)",
      (range) =>
        Effect.gen(function*() {
          yield* reset
          const { directory, manifest, partitions } = yield* generate(range)
          const report = yield* backfill(pipelineOn(directory), partitions, 3)
          assert.deepStrictEqual(
            report.outcomes.map((o) => [o.partition, o._tag]),
            partitions.map((p) => [p, "Succeeded"])
          )
          assert.deepStrictEqual(
            report.outcomes.map((o) =>
              o._tag === "Succeeded" ? [o.report.read, o.report.loaded, o.report.deadLettered, o.report.retries] : []
            ),
            manifest.days.map((day) => [day.records, day.good, day.bad, 0])
          )
          for (const day of manifest.days) yield* assertLoaded(directory, day)
          // nothing outside the range, nothing twice
          const all = yield* dump()
          assert.strictEqual(all.orders.length, manifest.good)
          assert.strictEqual(all.deadLetters.length, manifest.bad)
          assert.strictEqual(
            all.revenue.length,
            manifest.days.reduce((n, day) => n + day.revenue.length, 0)
          )
          assert.deepStrictEqual(
            (yield* runs).map((r) => r.status),
            partitions.map(() => "succeeded")
          )
          // the range really exercises the dead letter queue
          assert.isAbove(manifest.bad, 10)
          assert.isAtLeast(Generator.badKinds.filter((kind) => manifest.badByKind[kind] > 0).length, 5)
        })
    )

    it.effect.prop(
      "re-running days and the whole backfill, in any order, changes nothing but the run ledger",
      { reruns: Arbitrary.array(Arbitrary.schema(Seed), { minLength: 1, maxLength: 8 }), order: Seed },
      ({ reruns, order }) =>
        Effect.gen(function*() {
          yield* reset
          const { directory, manifest, partitions } = yield* generate({ start: "2024-05-01", days: 6, seed: 7 })
          const pipeline = pipelineOn(directory)
          yield* backfill(pipeline, partitions, 2)
          const loaded = yield* dump()
          assert.strictEqual(loaded.orders.length, manifest.good)
          assert.strictEqual(loaded.deadLetters.length, manifest.bad)

          for (const n of reruns) {
            const partition = partitions[n % partitions.length]!
            yield* Pipeline.run(pipeline, partition)
            assert.deepStrictEqual(yield* dump(), loaded, `after re-running ${partition}`)
          }
          const shuffled = shuffle(partitions, order)
          const again = yield* backfill(pipeline, shuffled, 3)
          assert.deepStrictEqual(
            again.outcomes.map((o) => [o.partition, o._tag]),
            shuffled.map((p) => [p, "Succeeded"])
          )
          assert.deepStrictEqual(yield* dump(), loaded, "after re-running the backfill")

          // one run per execution, each one a full, successful load
          const ledger = yield* runs
          assert.strictEqual(ledger.length, partitions.length * 2 + reruns.length)
          for (const run of ledger) {
            const day = manifest.days.find((d) => d.date === run.partition)!
            assert.deepStrictEqual(
              [run.status, run.read, run.loaded, run.dead],
              ["succeeded", day.records, day.good, day.bad],
              run.partition
            )
          }
        }),
      { timeout: 60_000, arbitrary: { runs: 5 } }
    )

    it.effect("orders whose values do not fit raw.orders are dead-lettered; the day still loads", () =>
      Effect.gen(function*() {
        yield* reset
        const { directory, manifest } = yield* generate({ start: "2024-08-01", days: 1, seed: 5 })
        const day = manifest.days[0]!
        const order = (id: string, fields: string) =>
          `{"order_id":"${id}","customer_id":7,"product_category":"books","order_date":"${day.date}",${fields}}`
        const misfits = [
          order("huge-amount", `"amount":"${"9".repeat(200_000)}"`),
          order("infinite-amount", `"amount":1e400`),
          order("many-points", `"amount":"1.00","loyalty_points":3e10`)
        ]
        const fs = yield* FileSystem.FileSystem
        const path = `${directory}/${day.file}`
        yield* fs.writeFileString(path, (yield* fs.readFileString(path)) + misfits.join("\n") + "\n")
        const report = yield* Pipeline.run(pipelineOn(directory), day.date)
        assert.deepStrictEqual(
          [report.read, report.loaded, report.deadLettered],
          [day.records + 3, day.good, day.bad + 3]
        )
        const loaded = yield* dump(day.date)
        assert.strictEqual(loaded.orders.length, day.good)
        assert.strictEqual(loaded.deadLetters.length, day.bad + 3)
        const dead = loaded.deadLetters.map((d) => JSON.parse(d) as ReadonlyArray<unknown>)
        const ofOrder = (id: string) => dead.find((d) => String(d[4]).includes(`"order_id":"${id}"`))!
        // [pipeline, partition, stage, position, original_record, escaped, error_type, error]
        assert.deepStrictEqual([ofOrder("huge-amount")[2], ofOrder("huge-amount")[6]], ["load", "RuleViolation"])
        assert.match(
          String(ofOrder("huge-amount")[7]),
          /^amount = "9+… \(200002 characters\) is more than 131072 digits before the decimal point/
        )
        assert.deepStrictEqual([ofOrder("many-points")[2], ofOrder("many-points")[6]], ["load", "RuleViolation"])
        assert.match(String(ofOrder("many-points")[7]), /^loyalty_points = 30000000000 is out of the range of int/)
        // an infinite amount is no amount: the transform refuses it first
        assert.deepStrictEqual(ofOrder("infinite-amount")[2], "transform")
      }))

    it.effect("re-running a day whose file changed replaces that partition only", () =>
      Effect.gen(function*() {
        yield* reset
        const { directory, manifest, partitions } = yield* generate({ start: "2024-07-01", days: 3, seed: 3 })
        const pipeline = pipelineOn(directory)
        yield* runEach(pipeline, partitions)
        const [first, target, last] = manifest.days as [
          Generator.DayManifest,
          Generator.DayManifest,
          Generator.DayManifest
        ]
        const neighbours = [yield* dump(first.date), yield* dump(last.date)]
        // the orders system re-sends the day with other contents (another seed, more bad lines)
        const { lines, manifest: resent } = Generator.generateDay(target.date, { seed: 99, badShare: 0.2 })
        assert.notDeepEqual(resent.revenue, target.revenue)
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(`${directory}/${target.file}`, lines.join("\n") + "\n")
        yield* Pipeline.run(pipeline, target.date)
        yield* assertLoaded(directory, resent)
        assert.deepStrictEqual([yield* dump(first.date), yield* dump(last.date)], neighbours)
      }))

    it.effect("a backfill at any concurrency gives the same tables as each day run alone", () =>
      Effect.gen(function*() {
        const { directory, partitions } = yield* generate({ start: "2024-09-26", days: 9, seed: 11 })
        const pipeline = pipelineOn(directory)
        const alone = { orders: new Array<string>(), revenue: new Array<string>(), deadLetters: new Array<string>() }
        for (const partition of partitions) {
          yield* reset
          yield* Pipeline.run(pipeline, partition)
          const day = yield* dump()
          alone.orders.push(...day.orders)
          alone.revenue.push(...day.revenue)
          alone.deadLetters.push(...day.deadLetters)
        }
        assert.isAbove(alone.orders.length, 0)
        // concurrency stays below the pool size (10): see "concurrency at or above the pool size" below
        for (const concurrency of [1, 2, 5, 9]) {
          yield* reset
          const report = yield* backfill(pipeline, Partition.range(date("2024-09-26"), date("2024-10-04")), concurrency)
          assert.strictEqual(report.succeeded, partitions.length, `concurrency ${concurrency}`)
          assert.deepStrictEqual(yield* dump(), alone, `concurrency ${concurrency}`)
        }
      }))
  })
}
