import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as SeededRandom from "../src/SeededRandom.ts"

// Every sample generator's files depend on these exact sequences: a change here changes them all.
describe("SeededRandom", () => {
  it("is mulberry32", () => {
    const random = SeededRandom.make(1)
    assert.deepStrictEqual([random.next(), random.next(), random.next()], [
      0.6270739405881613,
      0.002735721180215478,
      0.5274470399599522
    ])
    const dice = SeededRandom.make(42)
    assert.deepStrictEqual(Array.from({ length: 8 }, () => dice.int(1, 6)), [4, 3, 6, 5, 2, 4, 2, 4])
  })

  it("takes the seed as an unsigned 32-bit integer", () => {
    assert.strictEqual(SeededRandom.make(-1).next(), SeededRandom.make(2 ** 32 - 1).next())
    assert.strictEqual(SeededRandom.make(2 ** 32 + 5).next(), SeededRandom.make(5).next())
  })

  it("derives a day's seed from the seed and the date, with the given mixing", () => {
    assert.strictEqual(SeededRandom.daySeed(1, "2024-03-01"), 4125704535)
    assert.strictEqual(SeededRandom.daySeed(7, "2024-03-01"), 2717165077)
    assert.strictEqual(
      SeededRandom.daySeed(1, "2024-03-01", { salt: 0x2545f491, multiplier: 0x9e3779b1, step: 0x85ebca6b, shift: 15 }),
      4291213252
    )
  })

  it("shuffles in place and draws weighted items", () => {
    const items = ["a", "b", "c", "d", "e", "f"]
    assert.strictEqual(SeededRandom.shuffle(SeededRandom.make(3), items), items)
    assert.deepStrictEqual(items, ["c", "d", "f", "b", "a", "e"])
    const random = SeededRandom.make(9)
    assert.deepStrictEqual(
      Array.from({ length: 10 }, () => SeededRandom.weighted(random, [["x", 1], ["y", 2], ["z", 7]])),
      ["y", "z", "y", "z", "z", "z", "y", "z", "y", "z"]
    )
  })

  it("draws integers in range, items of the array, and permutations", () => {
    fc.assert(fc.property(fc.integer(), fc.integer({ min: -50, max: 50 }), fc.nat(100), (seed, min, width) => {
      const random = SeededRandom.make(seed)
      const n = random.int(min, min + width)
      assert.isTrue(Number.isInteger(n) && n >= min && n <= min + width)
      const items = Array.from({ length: width + 1 }, (_, i) => i)
      assert.include(items, random.pick(items))
      assert.deepStrictEqual(SeededRandom.shuffle(random, [...items]).sort((a, b) => a - b), items)
    }))
  })
})
