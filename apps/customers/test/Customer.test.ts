import { assert, describe, it } from "@effect/vitest"
import { Partition } from "@sluice/core"
import { DateTime, Result, Schema } from "effect"
import { ChangedAt, CustomerTransform } from "../src/Customer.ts"

const day = Partition.makeUnsafe("2024-03-01")
const base = { customer_id: 42, name: "Ada Lovelace", city: "London", changed_at: "2024-03-01T09:30:00Z" }

const run = (payload: unknown) => CustomerTransform({ payload: JSON.stringify(payload), position: 1 }, day)

const outcome = (payload: unknown) => {
  const result = run(payload)
  return Result.isFailure(result) ? result.failure.errorType : "ok"
}

describe("ChangedAt", () => {
  const decode = Schema.decodeUnknownResult(ChangedAt)
  it.each(
    [
      ["2024-03-01T09:30:00Z", "2024-03-01T09:30:00.000Z"],
      ["2024-03-01T10:30:00+01:00", "2024-03-01T09:30:00.000Z"],
      ["2024-03-01T04:30:00.250-05:00", "2024-03-01T09:30:00.250Z"],
      ["2024-03-01T09:30:00.1Z", "2024-03-01T09:30:00.100Z"],
      ["2024-03-01T09:30:00.123Z", "2024-03-01T09:30:00.123Z"],
      ["2024-03-01T09:30Z", "2024-03-01T09:30:00.000Z"]
    ] as const
  )("decodes %s as %s", (input, iso) => {
    const result = decode(input)
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) assert.strictEqual(DateTime.formatIso(result.success), iso)
  })

  it.each([
    "2024-03-01T09:30:00", // no zone: ambiguous
    "2024-03-01 09:30:00Z",
    "2024-03-01",
    "2024-02-30T09:30:00Z", // Date.parse would roll over to March 1
    "2024-03-01T24:00:00Z",
    "2024-03-01T09:60:00Z",
    "2024-03-01T09:30:00+15:00",
    "2024-03-01T09:30:00+14:30", // past the 14 hours of the farthest zone
    "2024-03-01T09:30:00-14:01",
    "2024-03-01T09:30:00.Z",
    "yesterday"
  ])("rejects %s", (input) => {
    assert.isTrue(Result.isFailure(decode(input)))
  })

  it.each(["2024-03-13T01:00:00.1239Z", "2024-03-13T01:00:00.1231Z", "2024-03-13T02:00:00.123456+01:00"])(
    "rejects %s, finer than the millisecond the changes are ordered by, and says so",
    (input) => {
      const result = decode(input)
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) assert.include(String(result.failure), "at most 3 fractional digits")
    }
  )
})

describe("CustomerTransform", () => {
  it("accepts a change, tolerates unknown fields and a null email, and decodes a delete without attributes", () => {
    const result = run({ ...base, email: null, source: "web", deleted: false })
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) {
      assert.deepStrictEqual(Object.keys(result.success).sort(), [
        "changed_at",
        "city",
        "customer_id",
        "deleted",
        "email",
        "name"
      ])
    }
    assert.strictEqual(outcome({ customer_id: 42, changed_at: "2024-03-01T10:00:00Z", deleted: true }), "ok")
  })

  it("rejects a customer_id a double reads as another integer (past 2^53, or with digits it drops)", () => {
    for (const literal of ["9007199254740993", "42.0000000000000001"]) {
      const payload = JSON.stringify(base).replace(`"customer_id":${base.customer_id}`, `"customer_id":${literal}`)
      const result = CustomerTransform({ payload, position: 1 }, day)
      assert.isTrue(Result.isFailure(result) && result.failure.errorType === "SchemaMismatch", literal)
    }
  })

  it("accepts late changes, and rejects changes after the end of the file's day", () => {
    assert.strictEqual(outcome({ ...base, changed_at: "2024-02-20T10:00:00Z" }), "ok")
    assert.strictEqual(outcome({ ...base, changed_at: "2024-03-01T23:59:59Z" }), "ok")
    assert.strictEqual(outcome({ ...base, changed_at: "2024-03-02T00:00:00Z" }), "RuleViolation")
    // an offset that puts the instant on the next day (UTC)
    assert.strictEqual(outcome({ ...base, changed_at: "2024-03-01T23:30:00-02:00" }), "RuleViolation")
  })

  it.each(
    [
      [{ ...base, customer_id: 0 }, "SchemaMismatch"],
      [{ ...base, customer_id: "42" }, "SchemaMismatch"],
      [{ ...base, customer_id: 4.5 }, "SchemaMismatch"],
      [{ ...base, name: "  " }, "SchemaMismatch"],
      [{ ...base, changed_at: undefined }, "SchemaMismatch"],
      [{ ...base, deleted: "yes" }, "SchemaMismatch"],
      [{ ...base, city: undefined }, "RuleViolation"],
      [{ customer_id: 42, changed_at: base.changed_at }, "RuleViolation"],
      [[base], "SchemaMismatch"]
    ] as const
  )("rejects %j with %s", (payload, errorType) => {
    assert.strictEqual(outcome(payload), errorType)
  })

  it("rejects (to be dead-lettered), never rounds, two changes a fraction of a millisecond apart", () => {
    const changes = ["2024-03-01T01:00:00.1239Z", "2024-03-01T01:00:00.1231Z"].map((changed_at, i) =>
      run({ ...base, changed_at, city: `City ${i}` })
    )
    for (const result of changes) {
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.errorType, "SchemaMismatch")
        assert.include(result.failure.message, "at most 3 fractional digits")
      }
    }
  })

  it("rejects invalid JSON", () => {
    const result = CustomerTransform({ payload: "{customer_id: 1}", position: 1 }, day)
    assert.isTrue(Result.isFailure(result) && result.failure.errorType === "InvalidJson")
  })
})
