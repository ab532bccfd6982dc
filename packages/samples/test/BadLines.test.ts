import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BadLines from "../src/BadLines.ts"
import * as SeededRandom from "../src/SeededRandom.ts"

describe("BadLines", () => {
  it("lists and counts kinds in the table's order", () => {
    const table = { invalid_json: "InvalidJson", missing_field: "SchemaMismatch", late: "RuleViolation" } as const
    const kinds = BadLines.kindsOf(table)
    assert.deepStrictEqual(kinds, ["invalid_json", "missing_field", "late"])
    assert.deepStrictEqual(BadLines.emptyCounts(kinds), { invalid_json: 0, missing_field: 0, late: 0 })
    assert.deepStrictEqual(
      BadLines.sumCounts(kinds, [
        { badByKind: { invalid_json: 1, missing_field: 0, late: 2 } },
        { badByKind: { invalid_json: 3, missing_field: 1, late: 0 } }
      ]),
      { invalid_json: 4, missing_field: 1, late: 2 }
    )
  })

  it("truncates to a proper prefix that never ends inside a surrogate pair", () => {
    fc.assert(fc.property(fc.integer(), fc.string({ unit: "grapheme", minLength: 2 }), (seed, text) => {
      const cut = BadLines.truncate(SeededRandom.make(seed), text)
      assert.isTrue(text.startsWith(cut) && cut.length < text.length)
      assert.isFalse(/[\uD800-\uDBFF]$/.test(cut), JSON.stringify(cut))
    }))
  })
})
