import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { JsonLinesSource, Partition } from "@sluice/core"
import { Effect, FileSystem, Result, Stream } from "effect"
import * as Generator from "../src/Generator.ts"
import { OrderTransform } from "../src/Order.ts"

const start = Partition.makeUnsafe("2024-02-01")

/** Exact decimal sum of 2-decimal strings, via integer cents. */
const addCents = (total: bigint, amount: string): bigint => {
  const [int, frac = ""] = amount.split(".")
  return total + BigInt(int!) * 100n + BigInt((frac + "00").slice(0, 2))
}
const formatCents = (cents: bigint) => `${cents / 100n}.${String(cents % 100n).padStart(2, "0")}`

describe("Generator", () => {
  it("is deterministic for a seed, and differs across seeds", () => {
    const a = Generator.generateDay(start, { seed: 42 })
    const b = Generator.generateDay(start, { seed: 42 })
    const c = Generator.generateDay(start, { seed: 43 })
    assert.deepStrictEqual(a, b)
    assert.notDeepEqual(a.lines, c.lines)
  })

  it("middleDay: where generate-orders changes the record by default, the 16th of a 31-day month", () => {
    const march = Partition.makeUnsafe("2024-03-01")
    assert.strictEqual(Generator.middleDay(march, 31), "2024-03-16")
    assert.strictEqual(Generator.middleDay(march, 30), "2024-03-16")
    assert.strictEqual(Generator.middleDay(march, 3), "2024-03-02")
    assert.strictEqual(Generator.middleDay(march, 1), march)
    assert.strictEqual(Generator.middleDay(start, 29), "2024-02-15")
  })

  it("writes realistic days: 200–400 records, about 3% bad, many bad kinds over a month", () => {
    const month = Partition.range(start, Partition.addDays(start, 28)).map((d) => Generator.generateDay(d, { seed: 1 }))
    for (const { manifest } of month) {
      assert.isTrue(manifest.records >= 200 && manifest.records <= 400, `${manifest.date}: ${manifest.records}`)
    }
    const records = month.reduce((n, d) => n + d.manifest.records, 0)
    const bad = month.reduce((n, d) => n + d.manifest.bad, 0)
    assert.isTrue(bad / records > 0.015 && bad / records < 0.05, `bad share ${bad / records}`)
    const kinds = new Set(month.flatMap((d) => d.manifest.badLines.map((b) => b.kind)))
    assert.isAtLeast(kinds.size, Generator.badKinds.length - 2, `kinds seen: ${[...kinds]}`)
  })

  it.effect("writes files whose lines match the manifest, and OrderTransform accepts exactly the good lines", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const manifest = yield* Generator.generate({ directory, start, days: 29, seed: 2024 })
      // a second run writes the same bytes
      const again = yield* Generator.generate({ directory: `${directory}/again`, start, days: 29, seed: 2024 })
      assert.deepStrictEqual(again, manifest)
      assert.strictEqual(manifest.days.length, 29)
      assert.strictEqual(manifest.records, manifest.good + manifest.bad)
      assert.strictEqual(manifest.days[28]!.date, "2024-02-29")
      // every kind of bad line appears at least once over the month
      for (const kind of Generator.badKinds) assert.isAbove(manifest.badByKind[kind], 0, kind)

      const source = JsonLinesSource.make({ directory })
      for (const day of manifest.days) {
        assert.strictEqual(
          yield* fs.readFileString(`${directory}/${day.file}`),
          yield* fs.readFileString(`${directory}/again/${day.file}`)
        )
        const records = yield* Stream.runCollect(source.extract(day.date))
        assert.strictEqual(records.length, day.records, day.date)
        const badAt = new Map(day.badLines.map((b) => [b.position, b.kind]))
        const badByKind: Record<string, number> = {}
        const revenue = new Map<string, { cents: bigint; orders: number }>()
        let good = 0
        for (const record of records) {
          const result = OrderTransform(record, day.date)
          const kind = badAt.get(record.position)
          if (kind === undefined) {
            assert.isTrue(
              Result.isSuccess(result),
              `${day.date}:${record.position} should be good: ${record.payload.slice(0, 200)} ${
                Result.isFailure(result) ? result.failure.message : ""
              }`
            )
            if (Result.isSuccess(result)) {
              good++
              const r = revenue.get(result.success.product_category) ?? { cents: 0n, orders: 0 }
              revenue.set(result.success.product_category, {
                cents: addCents(r.cents, result.success.amount),
                orders: r.orders + 1
              })
            }
          } else {
            badByKind[kind] = (badByKind[kind] ?? 0) + 1
            assert.isTrue(Result.isFailure(result), `${day.date}:${record.position} (${kind}) should be rejected`)
            if (Result.isFailure(result)) {
              assert.strictEqual(
                result.failure.errorType,
                Generator.expectedErrorType[kind],
                `${day.date}:${record.position} ${kind}: ${record.payload.slice(0, 200)}`
              )
            }
          }
        }
        assert.strictEqual(good, day.good)
        assert.strictEqual(day.good + day.bad, records.length)
        for (const kind of Generator.badKinds) assert.strictEqual(badByKind[kind] ?? 0, day.badByKind[kind], kind)
        assert.strictEqual(day.lines, day.records + day.blankLines)
        // the manifest's expected revenue is what the good orders add up to, exactly
        assert.deepStrictEqual(
          [...revenue].map(([category, r]) => ({ category, revenue: formatCents(r.cents), orders: r.orders }))
            .toSorted((a, b) => (a.category < b.category ? -1 : a.category > b.category ? 1 : 0)),
          day.revenue
        )
      }
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})
