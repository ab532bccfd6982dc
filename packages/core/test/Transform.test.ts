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
  it("a payload that is not JSON is InvalidJson: the message of Schema.fromJsonString, then the parser's reason", () => {
    const transform = Transform.fromSchema(makeSchema())
    const fromJsonString = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))
    for (const payload of ["{bad", "", "not json", "{\"a\":1}}", "[1,", "{\"a\":\"x\ty\"}"]) {
      const result = transform({ payload, position: 1 }, partition)
      const reference = fromJsonString(payload)
      let reason = ""
      try {
        JSON.parse(payload)
      } catch (error) {
        reason = (error as Error).message
      }
      assert.isTrue(Result.isFailure(result) && Result.isFailure(reference))
      if (Result.isFailure(result) && Result.isFailure(reference)) {
        assert.strictEqual(result.failure.errorType, "InvalidJson")
        assert.strictEqual(
          (result.failure.reason as RecordError.InvalidJson).message,
          `${reference.failure.message}: ${reason}`
        )
      }
    }
    const truncated = transform({ payload: "{\"order_id\":\"a\",\"amount\":", position: 1 }, partition)
    assert.isTrue(Result.isFailure(truncated))
    if (Result.isFailure(truncated)) {
      assert.strictEqual(truncated.failure.message, "Expected a valid JSON string: Unexpected end of JSON input")
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

/** The decimal a number literal (or `String(n)`) denotes, as an exact fraction `m / 10^k` compared by cross-multiplying. */
const decimalOf = (text: string): { readonly m: bigint; readonly k: number } => {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)!
  const fraction = match[3] ?? ""
  const m = BigInt(match[2]! + fraction) * (match[1] === "-" ? -1n : 1n)
  return { m, k: fraction.length - Number(match[4] ?? 0) }
}

/** Reference: the literal is the decimal `JSON.parse`'s double writes back as (zero of either sign is zero). */
const exactByBigInt = (literal: string): boolean => {
  const value = JSON.parse(literal) as number
  if (!Number.isFinite(value)) return false
  const a = decimalOf(literal)
  const b = decimalOf(String(value))
  const k = Math.max(a.k, b.k)
  const scale = (d: { readonly m: bigint; readonly k: number }) =>
    k - d.k >= 0 ? d.m * 10n ** BigInt(k - d.k) : undefined
  const x = scale(a)
  const y = scale(b)
  return x !== undefined && y !== undefined && x === y
}

/** JSON number literals of every shape: long, short, with zeros, fractions and exponents. */
const anyLiterals = fc.tuple(
  fc.boolean(),
  fc.stringMatching(/^(0|[1-9]\d{0,24})$/),
  fc.option(fc.stringMatching(/^\d{1,24}$/), { nil: undefined }),
  fc.option(fc.tuple(fc.constantFrom("e", "E", "e+", "E-"), fc.integer({ min: 0, max: 420 })), { nil: undefined })
).map(([negative, integer, fraction, exponent]) =>
  `${negative ? "-" : ""}${integer}${fraction === undefined ? "" : `.${fraction}`}${
    exponent === undefined ? "" : `${exponent[0]}${exponent[1]}`
  }`
)

/** 16 and 17 significant digits, the first lengths a double may not hold, with a point anywhere. */
const borderLiterals = fc.tuple(fc.stringMatching(/^[1-9]\d{15,16}$/), fc.nat({ max: 17 })).map(([digits, point]) =>
  point === 0 || point >= digits.length ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`
)

const literals = fc.oneof(anyLiterals, borderLiterals)

describe("Transform.fromSchema exactNumbers", () => {
  const Reading = Schema.Struct({ id: Schema.Int, amount: Schema.Finite, tags: Schema.Array(Schema.Number) })
  const transform = Transform.fromSchema(Reading, { exactNumbers: true })
  const lenient = Transform.fromSchema(Reading)

  it("a number JSON.parse would read as another is SchemaMismatch, naming the literal, its key and the value", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      [
        `{"id":1,"amount":19.990000000000000001,"tags":[]}`,
        `number 19.990000000000000001 at "amount" cannot be read exactly: it would be 19.99`
      ],
      [
        `{"id":1.0000000000000001,"amount":1,"tags":[]}`,
        `number 1.0000000000000001 at "id" cannot be read exactly: it would be 1`
      ],
      [`{"id":1,"amount":1e-400,"tags":[]}`, `number 1e-400 at "amount" cannot be read exactly: it would be 0`],
      [
        `{"id":1,"amount":1,"tags":[12345678901234567890]}`,
        `number 12345678901234567890 at "0" cannot be read exactly: it would be 12345678901234567000`
      ],
      [
        `{"id":1,"amount":1,"tags":[9007199254740993]}`,
        `number 9007199254740993 at "0" cannot be read exactly: it would be 9007199254740992`
      ]
    ]
    for (const [payload, message] of cases) {
      assert.isTrue(Result.isSuccess(lenient({ payload, position: 1 }, partition)), payload)
      const result = transform({ payload, position: 1 }, partition)
      assert.isTrue(Result.isFailure(result), payload)
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.errorType, "SchemaMismatch")
        assert.strictEqual((result.failure.reason as RecordError.SchemaMismatch).message, message)
      }
    }
  })

  it("finds the shortest inexact literals (16 digits, a 3-digit exponent) at every offset of the payload", () => {
    for (const literal of ["9007199254740993", "1e-400", "4.9E-325"]) {
      for (let pad = 0; pad <= 40; pad++) {
        // after a one-digit number too: the scan goes on 16 past a run's end
        const payload = `{"pad":"${"x".repeat(pad)}","id":1,"amount":1,"tags":[7,${literal}]}`
        const result = transform({ payload, position: 1 }, partition)
        assert.isTrue(Result.isFailure(result) && result.failure.errorType === "SchemaMismatch", payload)
      }
    }
  })

  it("exact numbers in any form decode as without the option", () => {
    for (
      const payload of [
        `{"id":1E2,"amount":1.5000,"tags":[-0,0.30000000000000004,9007199254740993e-16,1e21,5e-324]}`,
        `{"id":100,"amount":123456789012345.6,"tags":[0.000000000000000001,"12345678901234567890"]}`
      ]
    ) {
      assert.deepStrictEqual(
        transform({ payload, position: 1 }, partition),
        lenient({ payload, position: 1 }, partition)
      )
    }
  })

  it("a literal fails exactly when the double JSON.parse reads writes back as another decimal", () => {
    fc.assert(
      fc.property(literals, fc.nat({ max: 32 }), (literal, pad) => {
        // the literal at every offset: the scan reads one character in 16
        const payload = `{"pad":"${"x".repeat(pad)}","id":1,"amount":1,"tags":[${literal}]}`
        const exact = exactByBigInt(literal)
        const result = transform({ payload, position: 1 }, partition)
        assert.strictEqual(Result.isSuccess(result), exact, literal)
        if (exact) assert.deepStrictEqual(result, lenient({ payload, position: 1 }, partition))
      }),
      { numRuns: 3_000, seed: 7 }
    )
  })

  it("JSON.stringify's numbers are always exact", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true })), (tags) => {
        const payload = JSON.stringify({ id: 7, amount: tags[0] ?? 0, tags })
        assert.deepStrictEqual(
          transform({ payload, position: 1 }, partition),
          lenient({ payload, position: 1 }, partition)
        )
      }),
      { seed: 7 }
    )
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
