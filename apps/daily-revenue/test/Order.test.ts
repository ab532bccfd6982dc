import { assert, describe, it } from "@effect/vitest"
import { Contract, Partition } from "@sluice/core"
import { Arbitrary, Result, Schema } from "effect"
import { Amount, Order, OrderTransform } from "../src/Order.ts"

const day = Partition.makeUnsafe("2024-03-01")
const base = {
  order_id: "ord-1",
  customer_id: 42,
  product_category: "books",
  amount: 19.99,
  currency: "EUR",
  order_date: "2024-03-01"
}

const run = (payload: unknown, raw = false) =>
  OrderTransform({ payload: raw ? String(payload) : JSON.stringify(payload), position: 1 }, day)

const errorType = (payload: unknown, raw = false) => {
  const result = run(payload, raw)
  return Result.isFailure(result) ? result.failure.errorType : "ok"
}

describe("Amount", () => {
  const decode = Schema.decodeUnknownResult(Amount)
  it.each(
    [
      [19.99, "19.99"],
      [0.1, "0.1"],
      [0, "0"],
      [20.5, "20.5"],
      [1234567.8901, "1234567.8901"],
      [99999999999.9999, "99999999999.9999"],
      ["19.99", "19.99"],
      ["0100.50", "100.5"],
      ["20.00", "20"],
      ["123456789012345678901234.5", "123456789012345678901234.5"]
    ] as const
  )("%j decodes to the exact decimal %s", (input, expected) => {
    const result = decode(input)
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) assert.strictEqual(result.success, expected)
  })

  it.each([
    -1,
    -0.01,
    "-0",
    "-5.00",
    "abc",
    "12,50",
    "",
    " ",
    "1e3",
    "$1",
    "NaN",
    1e21,
    1.00001,
    "1.00001",
    1234567890123456,
    true,
    null
  ])(
    "%j is rejected",
    (input) => assert.isTrue(Result.isFailure(decode(input)))
  )

  /** The rules for a JSON number, written from the module documentation over `String(n)`. */
  const specified = (n: number): string | undefined => {
    if (!Number.isFinite(n) || n < 0) return undefined
    const text = String(n)
    if (text.includes("e")) return undefined
    const [integer = "", fraction = ""] = text.split(".")
    if ((integer + fraction).replace(/^0+/, "").length > 15 || fraction.length > 4) return undefined
    const canonicalInteger = integer.replace(/^0+(?=\d)/, "")
    const canonicalFraction = fraction.replace(/0+$/, "")
    return canonicalFraction === "" ? canonicalInteger : `${canonicalInteger}.${canonicalFraction}`
  }

  const int = (minimum: number, maximum: number) =>
    Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
  /** Decimals of 0 to 6 places (the usual amounts and their edges), any doubles, and a few edges. */
  const amounts = Arbitrary.all([
    int(0, 4),
    int(0, 6),
    Arbitrary.all([int(0, 1_000_000), int(0, Number.MAX_SAFE_INTEGER)]),
    Arbitrary.schema(Schema.Number),
    Arbitrary.schema(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1e12 }))),
    int(0, 3)
  ]).pipe(
    Arbitrary.map(([pick, scale, [small, large], any, bounded, edge]) =>
      [small / 10 ** scale, large / 10 ** scale, any, bounded, [-0, 1e11, 1e-4, 99999999999.9999][edge]!][pick]!
    )
  )

  it.prop("a JSON number decodes to its exact decimal exactly when the rules allow it", [amounts], ([n]) => {
    const result = decode(n)
    const expected = specified(n)
    if (expected === undefined) assert.isTrue(Result.isFailure(result), `${n} is rejected`)
    else assert.deepStrictEqual(result, Result.succeed(expected), `${n}`)
  }, { arbitrary: { runs: 20_000 } })

  it("sums of decoded amounts are exact when done in decimal (no float drift)", () => {
    const values = Array.from({ length: 10 }, () => Schema.decodeUnknownSync(Amount)(0.1))
    assert.deepStrictEqual(values, Array.from({ length: 10 }, () => "0.1"))
  })
})

describe("Order", () => {
  it("decodes a good order, keeping the amount's text form", () => {
    const result = run(base)
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) {
      assert.deepStrictEqual(result.success, { ...base, amount: "19.99", loyalty_points: null } as unknown as Order)
    }
  })

  it("defaults an absent currency to USD, keeps unknown extra fields for the contract", () => {
    const { currency: _, ...withoutCurrency } = base
    const result = run({ ...withoutCurrency, channel: "web", nested: { a: [1] } })
    assert.isTrue(Result.isSuccess(result))
    if (Result.isSuccess(result)) {
      assert.strictEqual(result.success.currency, "USD")
      assert.deepStrictEqual(Contract.undeclaredFields(Order)(result.success), [["channel", "web"], ["nested", {
        a: [1]
      }]])
    }
  })

  it("decodes loyalty points, null when absent", () => {
    const points = (payload: object) => {
      const result = run(payload)
      return Result.isSuccess(result) ? result.success.loyalty_points : "rejected"
    }
    assert.deepStrictEqual([
      points(base),
      points({ ...base, loyalty_points: null }),
      points({ ...base, loyalty_points: 120 })
    ], [
      null,
      null,
      120
    ])
  })

  it("accepts unicode text: emoji, right-to-left, combining characters", () => {
    for (const category of ["café ☕", "ספרים", "Cre\u0300me bru\u0302le\u0301e", "🎮👩‍👩‍👧", "كتب"]) {
      const result = run({ ...base, product_category: category, order_id: `ord-${category}` })
      assert.isTrue(Result.isSuccess(result), category)
      if (Result.isSuccess(result)) assert.strictEqual(result.success.product_category, category)
    }
  })

  it.each(
    [
      ["invalid JSON", "{order_id: 1}", "InvalidJson"],
      ["truncated", JSON.stringify(base).slice(0, 20), "InvalidJson"],
      ["an array", JSON.stringify([base]), "SchemaMismatch"],
      ["a string", JSON.stringify("ord-1"), "SchemaMismatch"],
      ["null", "null", "SchemaMismatch"]
    ] as const
  )("rejects %s", (_, raw, expected) => assert.strictEqual(errorType(raw, true), expected))

  it.each(
    [
      ["missing order_id", { order_id: undefined }],
      ["empty order_id", { order_id: "" }],
      ["blank product_category", { product_category: "  " }],
      ["a huge product_category", { product_category: "x".repeat(50_000) }],
      ["customer_id as a string", { customer_id: "42" }],
      ["customer_id 0", { customer_id: 0 }],
      ["negative customer_id", { customer_id: -3 }],
      ["fractional customer_id", { customer_id: 4.5 }],
      ["negative amount", { amount: -19.99 }],
      ["non-numeric amount", { amount: "19,99" }],
      ["amount with 5 decimals", { amount: 19.99001 }],
      ["null currency", { currency: null }],
      ["lower-case currency", { currency: "usd" }],
      ["negative loyalty points", { loyalty_points: -5 }],
      ["fractional loyalty points", { loyalty_points: 1.5 }],
      ["loyalty points as text", { loyalty_points: "many" }],
      ["impossible date", { order_date: "2024-02-30" }],
      ["badly formatted date", { order_date: "03/01/2024" }],
      ["a timestamp instead of a date", { order_date: "2024-03-01T10:00:00Z" }]
    ] as const
  )("rejects %s as SchemaMismatch", (_, patch) => {
    assert.strictEqual(errorType({ ...base, ...patch }), "SchemaMismatch")
  })

  it.each(
    [
      ["an amount with more digits than a double holds", "amount", "19.990000000000000001"],
      ["an amount below a double's range", "amount", "1e-400"],
      ["a customer_id a double reads as another integer", "customer_id", "1.0000000000000001"],
      ["loyalty points past 2^53", "loyalty_points", "9007199254740993"]
    ] as const
  )("rejects %s as SchemaMismatch, never loading the rounded number", (_, field, literal) => {
    // the literal spliced into the JSON text: JSON.stringify would write the rounded number
    const payload = JSON.stringify({ ...base, [field]: 0 }).replace(`"${field}":0`, `"${field}":${literal}`)
    const result = run(payload, true)
    assert.isTrue(Result.isFailure(result), payload)
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure.errorType, "SchemaMismatch")
      assert.include((result.failure.reason as { readonly message: string }).message, `number ${literal} at "${field}"`)
    }
  })

  it("rejects an order dated outside the partition as a RuleViolation of order_date_in_partition", () => {
    const result = run({ ...base, order_date: "2024-03-02" })
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure.errorType, "RuleViolation")
      assert.strictEqual((result.failure.reason as { readonly rule: string }).rule, "order_date_in_partition")
    }
  })
})
