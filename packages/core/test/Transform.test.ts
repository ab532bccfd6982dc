import { assert, describe, it } from "@effect/vitest"
import { Partition, RecordError, Transform } from "@sluice/core"
import { Effect, Result, Schema, SchemaGetter } from "effect"
import * as fc from "fast-check"

const partition = Partition.makeUnsafe("2024-03-01")

/** A schema with what makes decoding slow or subtle: filters, a union of transformations, a default. */
const makeSchema = () =>
  Schema.Struct({
    id: Schema.String.check(Schema.makeFilter((s: string) => s.trim() !== "" || "must not be blank")),
    n: Schema.Int.check(Schema.isGreaterThan(0)),
    amount: Schema.Union([
      Schema.Finite.pipe(Schema.decodeTo(Schema.String, {
        decode: SchemaGetter.transform((x: number) => String(x)),
        encode: SchemaGetter.transform((s: string) => Number(s))
      })),
      Schema.String.check(Schema.isPattern(/^\d+(\.\d+)?$/))
    ]),
    tag: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("none"))),
    day: Partition.PartitionDate
  })

const good = fc.record({
  id: fc.string({ minLength: 1 }).filter((s) => s.trim() !== ""),
  n: fc.integer({ min: 1, max: 1_000_000 }),
  amount: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.stringMatching(/^\d{1,3}(\.\d{1,2})?$/)),
  tag: fc.option(fc.string(), { nil: undefined }),
  day: fc.constant("2024-03-01")
}, { requiredKeys: ["id", "n", "amount", "day"] }).map((o) => JSON.stringify(o))

const payloads = fc.oneof(
  good,
  fc.record({
    id: fc.oneof(fc.string(), fc.constant(" "), fc.integer()),
    n: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double(), fc.string()),
    amount: fc.oneof(fc.double(), fc.stringMatching(/^\d{1,3}(\.\d{1,2})?$/), fc.string(), fc.boolean()),
    tag: fc.option(fc.string(), { nil: undefined }),
    day: fc.oneof(fc.constant("2024-03-01"), fc.constant("2024-02-30"), fc.string())
  }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.string(),
  fc.constant("{\"id\":"),
  fc.constant("[1,2]")
)

describe("Transform.fromSchema", () => {
  it("a payload that is not JSON is InvalidJson, with the message of Schema.fromJsonString", () => {
    const transform = Transform.fromSchema(makeSchema())
    const fromJsonString = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))
    for (const payload of ["{bad", "", "not json", "{\"a\":1}}", "[1,"]) {
      const result = transform({ payload, position: 1 }, partition)
      const reference = fromJsonString(payload)
      assert.isTrue(Result.isFailure(result) && Result.isFailure(reference))
      if (Result.isFailure(result) && Result.isFailure(reference)) {
        assert.strictEqual(result.failure.errorType, "InvalidJson")
        assert.strictEqual((result.failure.reason as RecordError.InvalidJson).message, reference.failure.message)
      }
    }
  })

  it("decodes (compiled) exactly as the schema's interpreter: same values, same errors and messages", () => {
    // the reference decoder is built, and used, before the transform compiles its schema
    const reference = Schema.decodeUnknownResult(makeSchema())
    const samples = fc.sample(payloads, { numRuns: 2_000, seed: 42 })
    const expected = samples.map((payload) => {
      let json: unknown
      try {
        json = JSON.parse(payload)
      } catch {
        return "InvalidJson"
      }
      const decoded = reference(json)
      return Result.isSuccess(decoded) ? decoded.success : `SchemaMismatch: ${decoded.failure.message}`
    })
    const transform = Transform.fromSchema(makeSchema())
    const actual = samples.map((payload) => {
      const result = transform({ payload, position: 1 }, partition)
      if (Result.isSuccess(result)) return result.success
      const reason = result.failure.reason
      return reason._tag === "InvalidJson"
        ? "InvalidJson"
        : `SchemaMismatch: ${(reason as { message: string }).message}`
    })
    assert.deepStrictEqual(actual, expected)
    assert.isAbove(expected.filter((e) => typeof e !== "string").length, 10, "some payloads decode")
  })
})

describe("Partition.isDateString", () => {
  const pattern = /^(\d{4})-(\d{2})-(\d{2})$/
  const reference = (input: string): boolean => {
    const match = pattern.exec(input)
    if (match === null) return false
    const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
    const days = month === 2
      ? (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
      : [4, 6, 9, 11].includes(month)
      ? 30
      : 31
    return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= days
  }

  it("agrees with the regular-expression definition", () => {
    const dateLike = fc.tuple(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 })
    ).map(([y, m, d]) => `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`)
    fc.assert(
      fc.property(fc.oneof(dateLike, fc.string(), fc.stringMatching(/^[\d-]{8,12}\n?$/)), (input) => {
        assert.strictEqual(Partition.isDateString(input), reference(input), JSON.stringify(input))
      }),
      { numRuns: 5_000 }
    )
    for (const input of ["2024-02-29", "1900-02-29", "2000-02-29", "0000-01-01", "2024-03-01\n", "２０２４-03-01"]) {
      assert.strictEqual(Partition.isDateString(input), reference(input), input)
    }
  })
})
