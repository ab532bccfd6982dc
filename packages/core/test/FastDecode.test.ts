import { assert, describe, it } from "@effect/vitest"
import { Contract } from "@sluice/core"
import { Arbitrary, Effect, Option, Result, Schema, SchemaAST, SchemaGetter, SchemaIssue } from "effect"
import * as SchemaJITCompiler from "effect/schema/SchemaJITCompiler"
import * as fc from "fast-check"
import * as FastDecode from "../src/internal/fastDecode.ts"

/**
 * A value as data, with its key order: objects become `[prototype, [key, value]…]` (in
 * `Object.keys` order), so that `deepStrictEqual` also compares key order and prototypes (and, as
 * it does anyway, `-0` and `0`).
 */
const shape = (u: unknown): unknown => {
  if (Array.isArray(u)) return ["[]", ...u.map(shape)]
  if (typeof u === "object" && u !== null) {
    const prototype = Object.getPrototypeOf(u)
    return [
      prototype === Object.prototype ? "{}" : prototype === null ? "null" : "other",
      ...Object.keys(u).map((key) => [key, shape((u as Record<string, unknown>)[key])])
    ]
  }
  return u
}

const show = (u: unknown): string => {
  try {
    return JSON.stringify(u)
  } catch {
    return "(not JSON)"
  }
}

const FiniteToString = Schema.Finite.pipe(Schema.decodeTo(Schema.String, {
  decode: SchemaGetter.transform((x: number) => String(x)),
  encode: SchemaGetter.transform((s: string) => Number(s))
}))

const Trimmed = Schema.String.pipe(Schema.decodeTo(Schema.String.check(Schema.isMinLength(1)), {
  decode: SchemaGetter.transform((s: string) => s.trim()),
  encode: SchemaGetter.passthrough()
}))

/** The schemas under test, as factories: the JIT-compiled reference needs its own copy. */
const schemas = {
  orders: () =>
    Schema.Struct({
      id: Schema.String.check(
        Schema.isMinLength(1),
        Schema.makeFilter((s: string) => s.trim() !== "" || "must not be blank")
      ),
      n: Schema.Int.check(Schema.isGreaterThan(0)),
      amount: Schema.Union([FiniteToString, Schema.String.check(Schema.isPattern(/^\d+(\.\d+)?$/))]),
      tag: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("none"))),
      day: Schema.String.check(Schema.isPattern(/^2024-0[1-9]-0[1-9]$/))
    }),
  openOrders: () =>
    Contract.open(Schema.Struct({
      id: Schema.String.check(Schema.isMaxLength(4)),
      amount: Schema.Union([FiniteToString, Trimmed]),
      currency: Schema.String.check(Schema.isBetweenLength(3, 3)).pipe(
        Schema.withDecodingDefaultKey(Effect.succeed("USD"))
      ),
      points: Schema.NullOr(Schema.Int).pipe(Schema.withDecodingDefaultKey(Effect.succeed(null)))
    })),
  optionalKeys: () =>
    Schema.Struct({
      a: Schema.optionalKey(Schema.String),
      b: Schema.optional(Schema.Number),
      c: Schema.optionalKey(Schema.NullOr(Schema.Int)),
      d: Schema.UndefinedOr(Schema.Boolean),
      e: Schema.Literal("x")
    }),
  defaults: () =>
    Schema.Struct({
      zero: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(-0))),
      // a default that fails its own checks: an absent key fails the record
      short: Schema.String.check(Schema.isMinLength(2)).pipe(Schema.withDecodingDefaultKey(Effect.succeed("d"))),
      value: Schema.String.pipe(Schema.withDecodingDefault(Effect.succeed("u"))),
      nested: Schema.Struct({ x: Schema.Int }).pipe(Schema.withDecodingDefaultKey(Effect.succeed({ x: 1 }))),
      trimmed: Trimmed.pipe(Schema.withDecodingDefaultKey(Effect.succeed("  t  ")))
    }),
  unions: () =>
    Schema.Struct({
      literal: Schema.Literals(["a", "b", 1, true, 0]),
      amount: Schema.Union([FiniteToString, Trimmed]),
      one: Schema.Union([Schema.String, Schema.String.check(Schema.isMinLength(3))], { mode: "oneOf" }),
      tagged: Schema.Union([
        Schema.Struct({ _tag: Schema.Literal("A"), a: Schema.Int }),
        Schema.Struct({ _tag: Schema.Literal("B"), b: Schema.optionalKey(Schema.String) })
      ]),
      loose: Schema.Union([Schema.Struct({ a: Schema.String }), Schema.Struct({ b: Schema.Number }), Schema.Null])
    }),
  overlapping: () =>
    Schema.Struct({
      // members that accept the same inputs with different results: the first one wins
      trimmed: Schema.Union([Trimmed, Schema.String]),
      number: Schema.Union([Schema.Number, FiniteToString]),
      text: Schema.Union([FiniteToString, Schema.Number]),
      object: Schema.Union([
        Schema.Struct({ a: Schema.String }),
        Schema.Struct({ a: Schema.String, b: Schema.optionalKey(Schema.Number) })
      ])
    }),
  nested: () =>
    Schema.Struct({
      inner: Schema.Struct({
        x: Schema.Int.check(Schema.isBetween({ minimum: -5, maximum: 50 })),
        y: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[a-z]+$/)))
      }).check(Schema.makeFilter((o: { readonly x: number }) => o.x !== 13 || "no 13")),
      group: Schema.String.check(Schema.isMinLength(1).and(Schema.isMaxLength(4))),
      enum: Schema.Enum({ A: "a", B: 1 }),
      nothing: Schema.Null,
      flag: Schema.Boolean,
      any: Schema.Unknown
    }),
  records: () =>
    Schema.Struct({
      rest: Schema.StructWithRest(Schema.Struct({ a: Schema.Number }), [Schema.Record(Schema.String, Schema.Number)]),
      dict: Schema.Record(Schema.String, Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
      open: Schema.StructWithRest(Schema.Struct({ b: Schema.optionalKey(Trimmed) }), [
        Schema.Record(Schema.String, Schema.Unknown)
      ])
    }),
  getters: () =>
    Schema.Struct({
      nonEmpty: Schema.optionalKey(Schema.String).pipe(Schema.decodeTo(Schema.optionalKey(Schema.String), {
        decode: SchemaGetter.transformOptional((o: Option.Option<string>) => Option.filter(o, (s) => s !== "")),
        encode: SchemaGetter.passthrough()
      })),
      length: Schema.String.pipe(Schema.decodeTo(Schema.Number, {
        decode: SchemaGetter.transformEffect((s: string) =>
          s === "bad" ? Effect.fail(new SchemaIssue.InvalidValue(undefined, s)) : Effect.succeed(s.length)
        ),
        encode: SchemaGetter.transform((n: number) => "x".repeat(n))
      })),
      lazy: Schema.optionalKey(Schema.Number).pipe(Schema.decodeTo(Schema.Number, {
        decode: SchemaGetter.withDefault(Effect.sync(() => 7)),
        encode: SchemaGetter.passthrough()
      })),
      // the first member cannot be vouched for (its getter is not synchronous): the union bails
      either: Schema.optionalKey(Schema.Union([
        Schema.String.pipe(Schema.decodeTo(Schema.Number, {
          decode: SchemaGetter.transformEffect((s: string) => Effect.sync(() => s.length)),
          encode: SchemaGetter.transform((n: number) => "x".repeat(n))
        })),
        Schema.String
      ]))
    }),
  // effect's checks that the generated code writes inline, with bounds of every sign and fraction
  bounds: () =>
    Schema.Struct({
      gt: Schema.Number.check(Schema.isGreaterThan(-2.5)),
      gte: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(-0)),
      lt: Schema.Int.check(Schema.isLessThan(13)),
      lte: Schema.Number.check(Schema.isLessThanOrEqualTo(0.1)),
      text: Schema.String.check(Schema.isMinLength(2), Schema.isMaxLength(3)),
      count: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1e21)))
    }),
  proto: () =>
    Schema.Struct({
      ["__proto__"]: Schema.optionalKey(Schema.String),
      a: Schema.String
    }),
  // declared keys that every object inherits (not enumerable), in an open record
  inherited: () =>
    Contract.open(Schema.Struct({
      constructor: Schema.optionalKey(Schema.String),
      toString: Schema.optional(Schema.Number),
      a: Schema.String
    }))
} satisfies Record<string, () => Schema.Decoder<unknown>>

type Case = keyof typeof schemas

const decoders = (name: Case) => {
  const interpreted = schemas[name]()
  const jitted = schemas[name]()
  SchemaJITCompiler.enable(jitted.ast)
  return {
    interpreted: Schema.decodeUnknownResult(interpreted as Schema.Decoder<unknown>),
    jitted: Schema.decodeUnknownResult(jitted as Schema.Decoder<unknown>),
    generated: FastDecode.compile(interpreted.ast),
    closures: FastDecode.compile(interpreted.ast, { generate: false })
  }
}

const all = Object.fromEntries(Object.keys(schemas).map((name) => [name, decoders(name as Case)])) as Record<
  Case,
  ReturnType<typeof decoders>
>

/**
 * The property: whenever a fast decoder returns a value, it is (key order included) the success of
 * `Schema.decodeUnknownResult`, interpreted and JIT-compiled alike; when the schema fails, it bails.
 * Returns whether the fast path answered.
 */
const agrees = (name: Case, input: unknown): boolean => {
  const d = all[name]
  const reference = d.interpreted(input)
  const jitted = d.jitted(input)
  assert.strictEqual(Result.isSuccess(jitted), Result.isSuccess(reference))
  let answered = true
  for (const fast of [d.generated!, d.closures!]) {
    const out = fast(input)
    if (out === FastDecode.bail) {
      answered = false
      continue
    }
    if (Result.isFailure(reference)) {
      assert.fail(`${name}: the fast path decoded ${show(input)}, which the schema rejects`)
    }
    if (Result.isSuccess(reference) && Result.isSuccess(jitted)) {
      assert.deepStrictEqual(shape(out), shape(reference.success))
      assert.deepStrictEqual(shape(out), shape(jitted.success))
    }
  }
  return answered
}

/** Values that make decoding subtle. */
const odd = fc.oneof(
  fc.constantFrom<unknown>(
    "",
    " ",
    "  t  ",
    "a",
    "b",
    "x",
    "USD",
    "bad",
    "12.50",
    "007",
    "abc",
    "2024-03-01",
    "2024-02-30",
    0,
    -0,
    1,
    13,
    -1,
    0.1,
    1e21,
    Number.NaN,
    Infinity,
    true,
    false,
    null,
    undefined,
    {},
    [],
    { x: 1 },
    { _tag: "A", a: 1 },
    { _tag: "B" },
    { a: "s" },
    { b: 2 }
  ),
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -3, max: 60 }),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 })
)

const keysOf: Record<Case, ReadonlyArray<string>> = {
  orders: ["id", "n", "amount", "tag", "day"],
  openOrders: ["id", "amount", "currency", "points"],
  optionalKeys: ["a", "b", "c", "d", "e"],
  defaults: ["zero", "short", "value", "nested", "trimmed"],
  unions: ["literal", "amount", "one", "tagged", "loose"],
  overlapping: ["trimmed", "number", "text", "object"],
  nested: ["inner", "group", "enum", "nothing", "flag", "any"],
  records: ["rest", "dict", "open"],
  getters: ["nonEmpty", "length", "lazy", "either"],
  bounds: ["gt", "gte", "lt", "lte", "text", "count"],
  proto: ["__proto__", "a"],
  inherited: ["constructor", "toString", "a"]
}

/** Objects over the schema's keys (and a few others) with odd values, nested one level. */
const objectsFor = (name: Case) => {
  const keys = [...keysOf[name], "extra", "a", "b", "x"]
  const value = fc.oneof(odd, fc.dictionary(fc.constantFrom(...keys), odd, { maxKeys: 4 }))
  return fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: keys.length })
}

/** Valid encoded inputs, from the schema's encoded side. */
const encodedSamples = (name: Case, count: number): ReadonlyArray<unknown> =>
  Effect.runSync(
    Arbitrary.sampleEffect(Arbitrary.schema(Schema.toEncoded(schemas[name]())), { count, seed: 7 }).pipe(
      Effect.orElseSucceed(() => [])
    )
  )

/** A valid input with one key replaced (by an odd value), removed, or added. */
const mutated = (samples: ReadonlyArray<unknown>, keys: ReadonlyArray<string>) =>
  fc.tuple(fc.constantFrom(...samples), fc.constantFrom(...keys, "extra"), odd, fc.nat(2)).map(
    ([sample, key, value, how]) => {
      if (typeof sample !== "object" || sample === null) return sample
      const copy: Record<string, unknown> = { ...sample }
      if (how === 0) delete copy[key]
      else copy[key] = value
      return copy
    }
  )

describe("FastDecode", () => {
  for (const name of Object.keys(schemas) as Array<Case>) {
    describe(name, () => {
      it("compiles to generated code and to closures", () => {
        assert.isDefined(all[name].closures)
        assert.isDefined(all[name].generated)
      })

      it.prop(
        "agrees with Schema on valid encoded inputs",
        [Arbitrary.schema(Schema.toEncoded(schemas[name]()))],
        ([input]) => {
          agrees(name, input)
        }
      )

      it("agrees with Schema on JSON-ish and mutated inputs", () => {
        const samples = encodedSamples(name, 200)
        let answered = 0
        for (const input of samples) if (agrees(name, input)) answered++
        const inputs = fc.sample(
          fc.oneof(
            objectsFor(name),
            fc.jsonValue({ maxDepth: 3 }),
            ...(samples.length > 0 ? [mutated(samples, keysOf[name])] : [])
          ),
          { numRuns: 3_000, seed: 42 }
        )
        for (const input of inputs) agrees(name, input)
        // JSON round trip: the inputs a transform sees
        for (const input of [...samples, ...inputs]) {
          const json = JSON.stringify(input)
          if (json !== undefined) agrees(name, JSON.parse(json))
        }
        if (name !== "getters") assert.isAbove(answered, samples.length / 4, "valid inputs often take the fast path")
      })
    })
  }

  it("typical valid inputs do not bail", () => {
    const inputs: ReadonlyArray<[Case, unknown]> = [
      ["orders", { id: "a", n: 1, amount: 1.5, day: "2024-03-01" }],
      ["orders", { id: "a", n: 1, amount: "1.5", tag: "t", day: "2024-03-01" }],
      ["openOrders", { id: "a", amount: " 2 ", points: 3, coupon: "X", "1": 1 }],
      ["optionalKeys", { d: undefined, e: "x" }],
      ["defaults", { short: "ab", nested: { x: 2 } }],
      ["defaults", { short: "ab", value: undefined, zero: 1 }],
      ["overlapping", { trimmed: " a ", number: 1, text: 2, object: { a: "x", b: 1 } }],
      ["unions", { literal: 0, amount: 3, one: "ab", tagged: { _tag: "B" }, loose: { b: 1 } }],
      ["records", { rest: { a: 1, b: 2 }, dict: { k: 1 }, open: { b: " x ", c: [1] } }],
      ["getters", { nonEmpty: "x", length: "abc", lazy: 1 }],
      ["proto", JSON.parse("{\"__proto__\":\"p\",\"a\":\"b\"}")]
    ]
    for (const [name, input] of inputs) {
      assert.isTrue(agrees(name, input), `${name}: ${JSON.stringify(input)}`)
    }
  })

  it("an open record keeps the undeclared own keys however the object was built", () => {
    const withHidden = (input: object, key: string, value: unknown) =>
      Object.defineProperty(input, key, { value, enumerable: false })
    const inputs: ReadonlyArray<[Case, unknown]> = [
      // only declared keys; then one more own key, first, last, or an index
      ["openOrders", { id: "a", amount: 1, currency: "EUR", points: null }],
      ["openOrders", { coupon: "X", id: "a", amount: 1 }],
      ["openOrders", { id: "a", amount: 1, coupon: "X" }],
      ["openOrders", { id: "a", amount: 1, "7": true }],
      // an inherited enumerable key is not the record's own
      ["openOrders", Object.assign(Object.create({ coupon: "inherited" }), { id: "a", amount: 1 })],
      // a declared key that is present but not enumerable, and an undeclared one that is
      ["openOrders", withHidden({ id: "a", coupon: "X" }, "amount", 2)],
      ["openOrders", withHidden({ id: "a", amount: 1 }, "coupon", "hidden")],
      // declared keys that are present through the prototype only, and one own undeclared key
      ["inherited", { a: "x", extra: 1 }],
      ["inherited", { a: "x", constructor: "c", toString: 1, extra: 1 }],
      ["inherited", { a: "x" }]
    ]
    for (const [name, input] of inputs) agrees(name, input)
    const open = all.openOrders.generated!
    assert.deepStrictEqual(open({ coupon: "X", id: "a", amount: 1 }), {
      id: "a",
      amount: "1",
      currency: "USD",
      points: null,
      coupon: "X"
    })
    assert.deepStrictEqual(Object.keys(open({ id: "a", amount: 1, currency: "EUR", points: 3 }) as object), [
      "id",
      "amount",
      "currency",
      "points"
    ])
  })

  it("bails where it cannot vouch for the result", () => {
    // a getter that removes the value, a default computed per decoding, an effectful getter that fails
    assert.isFalse(agrees("getters", { nonEmpty: "", length: "a", lazy: 1 }))
    assert.isFalse(agrees("getters", { length: "a" }))
    assert.isFalse(agrees("getters", { length: "bad", lazy: 1 }))
    assert.isFalse(agrees("getters", { length: "a", lazy: 1, either: "abc" }))
    // a default that fails its own checks
    assert.isFalse(agrees("defaults", {}))
  })

  it("writes effect's common checks as code, and calls any other filter's run", () => {
    // a filter's `run`, counting its calls
    const counted = <A>(check: SchemaAST.Filter<A>, annotations = check.annotations) => {
      const calls = { n: 0 }
      const filter = new SchemaAST.Filter<A>((input, ast, options) => {
        calls.n++
        return check.run(input, ast, options)
      }, annotations)
      return { filter, calls }
    }
    const int = counted(Schema.isInt())
    const max = counted(Schema.isMaxLength(3))
    // a filter that borrows isInt's annotation but checks something else
    const borrowed = counted(
      Schema.makeFilter((n: number) => n > 5),
      Schema.isInt().annotations
    )
    const schema = Schema.Struct({
      a: Schema.Number.check(int.filter),
      b: Schema.String.check(max.filter),
      c: Schema.Number.check(borrowed.filter)
    })
    const decode = FastDecode.compile(schema.ast)!
    int.calls.n = max.calls.n = borrowed.calls.n = 0
    assert.deepStrictEqual(decode({ a: 1, b: "abc", c: 6.5 }), { a: 1, b: "abc", c: 6.5 })
    assert.strictEqual(decode({ a: 1.5, b: "abc", c: 6.5 }), FastDecode.bail)
    assert.strictEqual(decode({ a: 1, b: "abcd", c: 6.5 }), FastDecode.bail)
    assert.strictEqual(decode({ a: 1, b: "abc", c: 5 }), FastDecode.bail)
    assert.strictEqual(int.calls.n, 0, "isInt is code")
    assert.strictEqual(max.calls.n, 0, "isMaxLength is code")
    assert.strictEqual(borrowed.calls.n, 2, "a filter whose run disagrees with its annotation is called")
  })

  it("a schema outside the subset compiles to undefined", () => {
    const unsupported: ReadonlyArray<Schema.Top> = [
      Schema.Array(Schema.String),
      Schema.Struct({ a: Schema.Array(Schema.Number) }),
      Schema.Tuple([Schema.String]),
      Schema.Option(Schema.String),
      Schema.Date,
      Schema.Struct({ a: Schema.String, b: Schema.Union([Schema.String, Schema.Date]) }),
      Schema.TemplateLiteral(["a", Schema.String]),
      Schema.suspend(() => Schema.String),
      Schema.Record(Schema.String.check(Schema.isMinLength(2)), Schema.Number),
      Schema.Record(Schema.Number, Schema.Number),
      Schema.Struct({ a: Schema.String.pipe(Schema.middlewareDecoding((effect) => effect)) })
    ]
    for (const schema of unsupported) assert.isUndefined(FastDecode.compile(schema.ast), String(schema.ast))
  })
})
