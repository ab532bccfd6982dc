import { assert, describe, it } from "@effect/vitest"
import { Partition } from "@sluice/core"
import { Effect, Exit, Schema } from "effect"

const Offset = Schema.Int.check(Schema.isBetween({ minimum: -200_000, maximum: 200_000 }))
// days after 0001-01-01 such that day ± offset stays within years 0001–9999
const Day = Schema.Int.check(Schema.isBetween({ minimum: 200_000, maximum: 3_000_000 }))
const epoch = Partition.makeUnsafe("0001-01-01")

describe("Partition", () => {
  it("validates calendar dates", () => {
    for (const ok of ["2024-02-29", "2000-02-29", "2023-12-31", "1970-01-01"]) {
      assert.isTrue(Partition.isDateString(ok), ok)
    }
    for (
      const bad of ["2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "2024-1-01", "", "yesterday"]
    ) {
      assert.isFalse(Partition.isDateString(bad), bad)
    }
  })

  it.effect("decode fails with a typed error on a bad date", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Partition.decode("2024-02-30"))
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.prop("addDays and daysBetween are inverse", [Day, Offset], ([day, offset]) => {
    const d = Partition.addDays(epoch, day)
    assert.isTrue(Partition.isDateString(d))
    const moved = Partition.addDays(d, offset)
    assert.strictEqual(Partition.daysBetween(d, moved), offset)
    assert.strictEqual(Partition.addDays(moved, -offset), d)
  })

  it.prop("range is consecutive, ordered and inclusive", [
    Day,
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 }))
  ], ([day, length]) => {
    const start = Partition.addDays(epoch, day)
    const end = Partition.addDays(start, length)
    const range = Partition.range(start, end)
    assert.strictEqual(range.length, length + 1)
    assert.strictEqual(range[0], start)
    assert.strictEqual(range[range.length - 1], end)
    for (let i = 1; i < range.length; i++) assert.isTrue(range[i - 1]! < range[i]!)
    assert.deepStrictEqual(Partition.range(end, start).length, length === 0 ? 1 : 0)
  })

  it("crosses leap days and centuries", () => {
    assert.strictEqual(Partition.addDays(Partition.makeUnsafe("2024-02-28"), 1), "2024-02-29")
    assert.strictEqual(Partition.addDays(Partition.makeUnsafe("2100-02-28"), 1), "2100-03-01")
    assert.strictEqual(Partition.addDays(Partition.makeUnsafe("1999-12-31"), 1), "2000-01-01")
    assert.strictEqual(Partition.fromEpochMillis(0), "1970-01-01")
    assert.strictEqual(Partition.fromEpochMillis(951_782_400_000), "2000-02-29")
  })
})
