import { assert, describe, it } from "@effect/vitest"
import { Contract, Partition } from "@sluice/core"
import * as FastDecode from "@sluice/core/internal/fastDecode"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import * as Generator from "../src/Generator.ts"
import { Order, OrderTransform, rules } from "../src/Order.ts"

// The schema `OrderTransform` decodes with, and its reference decoder (effect's).
const schema = Contract.open(Order)
const reference = Schema.decodeUnknownResult(schema)
const generated = FastDecode.compile(schema.ast)
const closures = FastDecode.compile(schema.ast, { generate: false })

/** A value as data, with its key order (see packages/core/test/FastDecode.test.ts). */
const shape = (u: unknown): unknown => {
  if (Array.isArray(u)) return ["[]", ...u.map(shape)]
  if (typeof u === "object" && u !== null) {
    return ["{}", ...Object.keys(u).map((key) => [key, shape((u as Record<string, unknown>)[key])])]
  }
  return u
}

/** Whenever the fast path answers, it is the schema's success (key order included); returns whether it answered. */
const agrees = (input: unknown): boolean => {
  const expected = reference(input)
  let answered = true
  for (const fast of [generated!, closures!]) {
    const out = fast(input)
    if (out === FastDecode.bail) {
      answered = false
      continue
    }
    if (Result.isFailure(expected)) assert.fail(`the fast path decoded ${JSON.stringify(input)}, which Order rejects`)
    else assert.deepStrictEqual(shape(out), shape(expected.success))
  }
  return answered
}

const day = Partition.makeUnsafe("2024-03-01")

const text = fc.oneof(
  { arbitrary: fc.constantFrom("ord-1", "books", "café ☕"), weight: 6 },
  fc.constantFrom("", " ", "  x ", "a".repeat(256), "a".repeat(257)),
  fc.string({ maxLength: 12 })
)
const amount = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 100_000 }).map((cents) => cents / 100), weight: 4 },
  fc.integer({ min: 0, max: 10 ** 9 }).map((units) => units / 10_000),
  fc.double({ min: 0, max: 1e12, noNaN: true }),
  fc.constantFrom<unknown>(0, -0, 19.99, 0.1, 1e-7, 1e21, 123456789012345.6, -1, "19.99", "019.90", "0100.50", "12,50"),
  fc.constantFrom<unknown>("", "abc", " 1", "-1", "1.23456", "00", "0.000", ".5", "5.", null, true),
  fc.stringMatching(/^\d{1,4}(\.\d{0,5})?$/)
)
const optional = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: undefined })

/** Orders as the feed sends them, good and bad; `undefined` fields are left out. */
const orders = fc.record({
  order_id: text,
  customer_id: fc.oneof(
    { arbitrary: fc.integer({ min: -2, max: 100_000 }), weight: 6 },
    fc.constantFrom<unknown>(1.5, "42", null)
  ),
  product_category: text,
  amount,
  currency: optional(fc.constantFrom<unknown>("USD", "EUR", "GBP", "USD", "usd", "US", "", null, 1)),
  order_date: fc.constantFrom<unknown>("2024-03-01", "2024-03-01", "2024-02-29", "2024-02-30", "2024-3-1", 20240301),
  loyalty_points: optional(fc.constantFrom<unknown>(0, 10, 2500, null, 7, -1, 1.5, "3")),
  channel: optional(fc.constantFrom<unknown>("app", "web", null, { nested: [1] })),
  coupon: optional(fc.string({ maxLength: 4 })),
  constructor: optional(fc.constant("x"))
}).map((o) => JSON.parse(JSON.stringify(o)) as unknown)

describe("FastDecode of the Order schema (Contract.open(Order))", () => {
  it("compiles", () => {
    assert.isDefined(generated)
    assert.isDefined(closures)
  })

  it.prop(
    "agrees with Schema.decodeUnknownResult on arbitrary orders",
    [Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 30 }))],
    ([seed]) => {
      for (const input of fc.sample(orders, { numRuns: 20, seed })) agrees(input)
    }
  )

  it("agrees on many orders, good and bad, and decodes the good ones itself", () => {
    let answered = 0
    let succeeded = 0
    for (const input of fc.sample(orders, { numRuns: 20_000, seed: 7 })) {
      if (agrees(input)) answered++
      if (Result.isSuccess(reference(input))) succeeded++
    }
    assert.isAbove(succeeded, 1_000)
    assert.strictEqual(answered, succeeded, "every valid order takes the fast path")
  })

  it("typical records of the orders feed take the fast path; bad ones fall back", () => {
    for (const [index, date] of Partition.range(day, Partition.addDays(day, 6)).entries()) {
      const evolvedFrom = index % 2 === 0 ? day : undefined
      const { lines } = Generator.generateDay(date, { seed: 3, evolvedFrom })
      let good = 0
      for (const line of lines) {
        let json: unknown
        try {
          json = JSON.parse(line)
        } catch {
          continue
        }
        const answered = agrees(json)
        if (Result.isSuccess(reference(json))) {
          assert.isTrue(answered, line)
          good++
        }
      }
      assert.isAbove(good, 150)
    }
    const typical = {
      order_id: "ord-20240301-0-00001",
      customer_id: 15364,
      product_category: "ספרים",
      amount: 277.99,
      order_date: "2024-03-01"
    }
    assert.isTrue(agrees(typical))
    assert.isTrue(agrees({ ...typical, amount: "019.90", currency: "EUR", loyalty_points: null, coupon: "SAVE1" }))
    assert.deepStrictEqual(generated!(typical), {
      ...typical,
      amount: "277.99",
      currency: "USD",
      loyalty_points: null
    })
  })

  it("OrderTransform gives the results of effect's decoder and the rules", () => {
    const expected = (payload: string) => {
      const decoded = reference(JSON.parse(payload))
      if (Result.isFailure(decoded)) return `SchemaMismatch: ${decoded.failure.message}`
      const violation = rules[0]!.check(decoded.success, day)
      return violation === undefined ? shape(decoded.success) : `RuleViolation: ${violation}`
    }
    for (const input of fc.sample(orders, { numRuns: 2_000, seed: 11 })) {
      const payload = JSON.stringify(input)
      const result = OrderTransform({ payload, position: 1 }, day)
      const actual = Result.isSuccess(result)
        ? shape(result.success)
        : `${result.failure.reason._tag}: ${(result.failure.reason as { readonly message: string }).message}`
      assert.deepStrictEqual(actual, expected(payload))
    }
  })
})
