import { assert, describe, it } from "@effect/vitest"
import { Partition, SchemaCompatibility, Transform } from "@sluice/core"
import { Arbitrary, Effect, Exit, Result, Schema } from "effect"

type Mode = SchemaCompatibility.Mode
type Rule = SchemaCompatibility.Rule

const definition = (schema: Schema.Top) => Result.getOrThrow(SchemaCompatibility.fromSchema(schema))

/** The rules broken by `versions.at(-1)` against the earlier versions under `mode`, sorted, unique. */
const rulesOf = (versions: ReadonlyArray<Schema.Top>, mode: Mode): ReadonlyArray<Rule> => {
  const defs = versions.map(definition)
  const previous = defs.slice(0, -1).map((d, i) => ({ version: i + 1, definition: d }))
  const found = SchemaCompatibility.violations(defs.at(-1)!, previous, mode)
  return [...new Set(found.map((v) => v.rule))].sort()
}

const S = Schema.Struct

// ---------------------------------------------------------------------------------------------
// The mode matrix, on hand-written cases
// ---------------------------------------------------------------------------------------------

interface Case {
  readonly change: string
  readonly old: Schema.Top
  readonly new: Schema.Top
  /** Rules broken under BACKWARD and FORWARD (FULL breaks both sets; NONE nothing). */
  readonly backward: ReadonlyArray<Rule>
  readonly forward: ReadonlyArray<Rule>
}

const base = { id: Schema.String }
const card = S({ method: Schema.Literal("card"), last4: Schema.String })
const cash = S({ method: Schema.Literal("cash"), tendered: Schema.Finite })

const cases: ReadonlyArray<Case> = [
  {
    change: "add an optional field",
    old: S(base),
    new: S({ ...base, note: Schema.optionalKey(Schema.String) }),
    backward: [],
    forward: []
  },
  {
    change: "add a field with a default",
    old: S(base),
    new: S({ ...base, currency: SchemaCompatibility.withDefault(Schema.String, "USD") }),
    backward: [],
    forward: []
  },
  {
    change: "add a nullable field defaulting to null",
    old: S(base),
    new: S({ ...base, loyalty_points: SchemaCompatibility.nullable(Schema.Int) }),
    backward: [],
    forward: []
  },
  {
    change: "add a required field",
    old: S(base),
    new: S({ ...base, vat: Schema.Finite }),
    backward: ["REQUIRED_FIELD_ADDED"],
    forward: []
  },
  {
    change: "remove an optional field",
    old: S({ ...base, note: Schema.optionalKey(Schema.String) }),
    new: S(base),
    backward: [],
    forward: []
  },
  {
    change: "remove a field with a default",
    old: S({ ...base, currency: SchemaCompatibility.withDefault(Schema.String, "USD") }),
    new: S(base),
    backward: [],
    forward: []
  },
  {
    change: "remove a required field",
    old: S({ ...base, vat: Schema.Finite }),
    new: S(base),
    backward: ["REQUIRED_FIELD_REMOVED"],
    forward: ["REQUIRED_FIELD_REMOVED"]
  },
  {
    change: "rename a required field (remove + add)",
    old: S({ ...base, customer: Schema.Int }),
    new: S({ ...base, customer_id: Schema.Int }),
    backward: ["REQUIRED_FIELD_ADDED", "REQUIRED_FIELD_REMOVED"],
    forward: ["REQUIRED_FIELD_REMOVED"]
  },
  {
    change: "rename an optional field (remove + add of optional fields)",
    old: S({ ...base, note: Schema.optionalKey(Schema.String) }),
    new: S({ ...base, comment: Schema.optionalKey(Schema.String) }),
    backward: [],
    forward: []
  },
  {
    change: "make an optional field required",
    old: S({ ...base, note: Schema.optionalKey(Schema.String) }),
    new: S({ ...base, note: Schema.String }),
    backward: ["FIELD_MADE_REQUIRED"],
    forward: []
  },
  {
    change: "make a required field optional",
    old: S({ ...base, note: Schema.String }),
    new: S({ ...base, note: Schema.optional(Schema.String) }),
    backward: [],
    forward: ["FIELD_MADE_OPTIONAL"]
  },
  {
    change: "widen int to number",
    old: S({ ...base, amount: Schema.Int }),
    new: S({ ...base, amount: Schema.Number }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "narrow number to int",
    old: S({ ...base, amount: Schema.Number }),
    new: S({ ...base, amount: Schema.Int }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "narrow string to a literal union",
    old: S({ ...base, status: Schema.String }),
    new: S({ ...base, status: Schema.Literals(["open", "closed"]) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "widen an enum (add a member)",
    old: S({ ...base, status: Schema.Literals(["open", "closed"]) }),
    new: S({ ...base, status: Schema.Literals(["open", "closed", "void"]) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "narrow an enum (remove a member)",
    old: S({ ...base, status: Schema.Enum({ Open: "open", Closed: "closed", Void: "void" }) }),
    new: S({ ...base, status: Schema.Enum({ Open: "open", Closed: "closed" }) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "change number to string",
    old: S({ ...base, customer_id: Schema.Number }),
    new: S({ ...base, customer_id: Schema.String }),
    backward: ["TYPE_CHANGED"],
    forward: ["TYPE_CHANGED"]
  },
  {
    change: "make a field nullable",
    old: S({ ...base, email: Schema.String }),
    new: S({ ...base, email: Schema.NullOr(Schema.String) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "make a nullable field non-nullable",
    old: S({ ...base, email: Schema.NullOr(Schema.String) }),
    new: S({ ...base, email: Schema.String }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "tighten a lower bound",
    old: S({ ...base, qty: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)) }),
    new: S({ ...base, qty: Schema.Int.check(Schema.isGreaterThan(0)) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "restate an integer bound (> 0 is ≥ 1)",
    old: S({ ...base, qty: Schema.Int.check(Schema.isGreaterThan(0)) }),
    new: S({ ...base, qty: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) }),
    backward: [],
    forward: []
  },
  {
    change: "shorten a maximum length",
    old: S({ ...base, name: Schema.String.check(Schema.isMaxLength(10)) }),
    new: S({ ...base, name: Schema.String.check(Schema.isMaxLength(5)) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "add a union member",
    old: S({ ...base, amount: Schema.Union([Schema.Finite, Schema.String]) }),
    new: S({ ...base, amount: Schema.Union([Schema.Finite, Schema.String, Schema.Null]) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "nested: add a required field to a nested struct",
    old: S({ ...base, address: S({ city: Schema.String }) }),
    new: S({ ...base, address: S({ city: Schema.String, zip: Schema.String }) }),
    backward: ["REQUIRED_FIELD_ADDED"],
    forward: []
  },
  {
    change: "nested: add an optional field to a nested struct",
    old: S({ ...base, address: S({ city: Schema.String }) }),
    new: S({ ...base, address: S({ city: Schema.String, zip: Schema.optionalKey(Schema.String) }) }),
    backward: [],
    forward: []
  },
  {
    change: "nested: remove a required field of a nested struct",
    old: S({ ...base, address: S({ city: Schema.String, zip: Schema.String }) }),
    new: S({ ...base, address: S({ city: Schema.String }) }),
    backward: ["REQUIRED_FIELD_REMOVED"],
    forward: ["REQUIRED_FIELD_REMOVED"]
  },
  {
    change: "array: narrow the item type",
    old: S({ ...base, lines: Schema.Array(S({ price: Schema.Finite })) }),
    new: S({ ...base, lines: Schema.Array(S({ price: Schema.Int })) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "array: items gain an optional field",
    old: S({ ...base, lines: Schema.Array(S({ price: Schema.Finite })) }),
    new: S({ ...base, lines: Schema.Array(S({ price: Schema.Finite, sku: Schema.optionalKey(Schema.String) })) }),
    backward: [],
    forward: []
  },
  {
    change: "tuple: add an optional element",
    old: S({ ...base, pair: Schema.Tuple([Schema.String]) }),
    new: S({ ...base, pair: Schema.Tuple([Schema.String, Schema.optionalKey(Schema.Finite)]) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "record: widen the value type",
    old: S({ ...base, attributes: Schema.Record(Schema.String, Schema.Int) }),
    new: S({ ...base, attributes: Schema.Record(Schema.String, Schema.Finite) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "tagged union: a variant gains a required field",
    old: S({ ...base, payment: Schema.Union([card, cash]) }),
    new: S({ ...base, payment: Schema.Union([card, S({ ...cash.fields, till: Schema.Int })]) }),
    backward: ["REQUIRED_FIELD_ADDED"],
    forward: []
  },
  {
    change: "tagged union: add a variant",
    old: S({ ...base, payment: Schema.Union([card]) }),
    new: S({ ...base, payment: Schema.Union([card, cash]) }),
    backward: [],
    forward: ["TYPE_WIDENED"]
  },
  {
    change: "tagged union: remove a variant",
    old: S({ ...base, payment: Schema.Union([card, cash]) }),
    new: S({ ...base, payment: Schema.Union([card]) }),
    backward: ["TYPE_NARROWED"],
    forward: []
  },
  {
    change: "identical schemas",
    old: S({ ...base, amount: Schema.Finite, tags: Schema.Array(Schema.String) }),
    new: S({ ...base, amount: Schema.Finite, tags: Schema.Array(Schema.String) }),
    backward: [],
    forward: []
  }
]

const union = (a: ReadonlyArray<Rule>, b: ReadonlyArray<Rule>) => [...new Set([...a, ...b])].sort()

describe("SchemaCompatibility: the mode matrix", () => {
  for (const c of cases) {
    it(c.change, () => {
      const versions = [c.old, c.new]
      const expected: Record<Mode, ReadonlyArray<Rule>> = {
        BACKWARD: [...c.backward].sort(),
        BACKWARD_TRANSITIVE: [...c.backward].sort(),
        FORWARD: [...c.forward].sort(),
        FORWARD_TRANSITIVE: [...c.forward].sort(),
        FULL: union(c.backward, c.forward),
        FULL_TRANSITIVE: union(c.backward, c.forward),
        NONE: []
      }
      for (const mode of SchemaCompatibility.Mode.literals) {
        assert.deepStrictEqual(rulesOf(versions, mode), expected[mode], `${c.change} under ${mode}`)
      }
    })
  }

  it("transitive: v3 is backward compatible with v2 but not with v1", () => {
    const v1 = S({ ...base, discount: Schema.Finite })
    const v2 = S(base) // removing a required field is backward compatible
    const v3 = S({ ...base, discount: Schema.optionalKey(Schema.String) }) // adding an optional field too…
    const versions = [v1, v2, v3] // …but v1's data has a numeric discount
    assert.deepStrictEqual(rulesOf(versions, "BACKWARD"), [])
    assert.deepStrictEqual(rulesOf(versions, "BACKWARD_TRANSITIVE"), ["TYPE_CHANGED"])
    assert.deepStrictEqual(rulesOf(versions, "FORWARD"), [])
    assert.deepStrictEqual(rulesOf(versions, "FORWARD_TRANSITIVE"), ["FIELD_MADE_OPTIONAL", "TYPE_CHANGED"])
    assert.deepStrictEqual(rulesOf(versions, "FULL"), [])
    assert.deepStrictEqual(rulesOf(versions, "FULL_TRANSITIVE"), ["FIELD_MADE_OPTIONAL", "TYPE_CHANGED"])
    assert.deepStrictEqual(rulesOf(versions, "NONE"), [])
    const defs = versions.map(definition)
    const found = SchemaCompatibility.violations(
      defs[2]!,
      [{ version: 1, definition: defs[0]! }, { version: 2, definition: defs[1]! }],
      "BACKWARD_TRANSITIVE"
    )
    assert.deepStrictEqual(found.map((v) => v.message), [
      "BACKWARD: field \"discount\" changed type from number to string (incompatible change, against version 1)"
    ])
  })

  it("transitive: v3 is forward compatible with v2 but not with v1", () => {
    const v1 = S({ ...base, code: Schema.optionalKey(Schema.String) })
    const v2 = S(base) // removing an optional field is fully compatible
    const v3 = S({ ...base, code: Schema.Int }) // v2 ignores code; v1 reads it as a string
    const versions = [v1, v2, v3]
    assert.deepStrictEqual(rulesOf(versions, "FORWARD"), [])
    assert.deepStrictEqual(rulesOf(versions, "FORWARD_TRANSITIVE"), ["TYPE_CHANGED"])
    assert.deepStrictEqual(rulesOf(versions, "BACKWARD"), ["REQUIRED_FIELD_ADDED"])
    assert.deepStrictEqual(rulesOf(versions, "BACKWARD_TRANSITIVE"), [
      "FIELD_MADE_REQUIRED",
      "REQUIRED_FIELD_ADDED",
      "TYPE_CHANGED"
    ])
    assert.deepStrictEqual(rulesOf(versions, "FULL_TRANSITIVE"), [
      "FIELD_MADE_REQUIRED",
      "REQUIRED_FIELD_ADDED",
      "TYPE_CHANGED"
    ])
  })
})

describe("SchemaCompatibility: violations", () => {
  it("name the direction, the field path, the rule and the version", () => {
    const v1 = definition(S({ customer_id: Schema.Finite, lines: Schema.Array(S({ price: Schema.Finite })) }))
    const v2 = definition(S({ customer_id: Schema.String, lines: Schema.Array(S({ price: Schema.Int })) }))
    const found = SchemaCompatibility.compare(v1, v2, "BACKWARD", 1)
    assert.deepStrictEqual(found.map((v) => [v.rule, v.field]), [
      ["TYPE_CHANGED", "customer_id"],
      ["TYPE_NARROWED", "lines[].price"]
    ])
    assert.deepStrictEqual(found.map((v) => v.message), [
      "BACKWARD: field \"customer_id\" changed type from number to string (incompatible change, against version 1)",
      "BACKWARD: field \"lines[].price\" changed type from number to int (narrowing, against version 1)"
    ])
  })

  it.effect("assertCompatible fails with SchemaIncompatible listing every violation", () =>
    Effect.gen(function*() {
      const v1 = definition(S({ id: Schema.String, vat: Schema.Finite }))
      const v2 = definition(S({ id: Schema.Int, total: Schema.Finite }))
      const exit = yield* Effect.exit(SchemaCompatibility.assertCompatible({
        subject: "orders",
        mode: "FULL",
        candidate: v2,
        previous: [{ version: 1, definition: v1 }]
      }))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(SchemaCompatibility.assertCompatible({
        subject: "orders",
        mode: "FULL",
        candidate: v2,
        previous: [{ version: 1, definition: v1 }]
      }))
      assert.strictEqual(error._tag, "SchemaIncompatible")
      assert.deepStrictEqual(error.violations.map((v) => `${v.direction} ${v.rule} ${v.field}`), [
        "BACKWARD TYPE_CHANGED id",
        "BACKWARD REQUIRED_FIELD_ADDED total",
        "BACKWARD REQUIRED_FIELD_REMOVED vat",
        "FORWARD TYPE_CHANGED id",
        "FORWARD REQUIRED_FIELD_REMOVED vat"
      ])
      assert.match(error.message, /^schema of "orders" is incompatible under FULL: BACKWARD: field "id" changed type/)
    }))

  it("a custom check added to a field is a narrowing; the same check on both sides is not", () => {
    const nonBlank = Schema.makeFilter((s: string) => s.trim() !== "", { description: "not blank" })
    const plain = definition(S({ name: Schema.String }))
    const checked = definition(S({ name: Schema.String.check(nonBlank) }))
    assert.deepStrictEqual(SchemaCompatibility.compare(plain, checked, "BACKWARD").map((v) => v.rule), [
      "TYPE_NARROWED"
    ])
    assert.deepStrictEqual(SchemaCompatibility.compare(checked, checked, "BACKWARD"), [])
  })
})

describe("SchemaCompatibility: definitions", () => {
  it.effect("identical schemas have one fingerprint; annotations do not count", () =>
    Effect.gen(function*() {
      const a = definition(S({ id: Schema.String, amount: Schema.Finite }))
      const b = definition(S({ id: Schema.String.annotate({ description: "the id" }), amount: Schema.Finite }))
      const c = definition(S({ id: Schema.String, amount: Schema.Int }))
      const fa = yield* SchemaCompatibility.fingerprint(a)
      assert.match(fa, /^[0-9a-f]{64}$/)
      assert.strictEqual(yield* SchemaCompatibility.fingerprint(b), fa)
      assert.notStrictEqual(yield* SchemaCompatibility.fingerprint(c), fa)
    }))

  it.effect("a definition survives JSON storage unchanged", () =>
    Effect.gen(function*() {
      const original = definition(S({
        id: Schema.String.check(Schema.isMinLength(1)),
        status: Schema.Literals(["open", "closed"]),
        points: SchemaCompatibility.nullable(Schema.Int),
        lines: Schema.Array(S({ price: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1e6 })) }))
      }))
      const stored = JSON.parse(JSON.stringify(original.json))
      const restored = Result.getOrThrow(SchemaCompatibility.fromJson(stored))
      assert.strictEqual(restored.canonical, original.canonical)
      assert.strictEqual(
        yield* SchemaCompatibility.fingerprint(restored),
        yield* SchemaCompatibility.fingerprint(original)
      )
      assert.isTrue(Result.isFailure(SchemaCompatibility.fromJson({ representation: 1, references: {} })))
    }))

  it("JSON Schema documents import, and export back to an equivalent definition", () => {
    const fromFile = Result.getOrThrow(SchemaCompatibility.fromJsonSchema({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: {
        order_id: { type: "string", maxLength: 64 },
        customer_id: { type: "integer", exclusiveMinimum: 0 },
        status: { enum: ["open", "closed"] },
        note: { type: ["string", "null"] },
        lines: { type: "array", items: { type: "object", properties: { price: { type: "number" } } } }
      },
      required: ["order_id", "customer_id", "status"]
    }))
    assert.strictEqual(
      SchemaCompatibility.describe(fromFile),
      "{ order_id: string (length ≤ 64), customer_id: int (> 0), status: \"open\" | \"closed\", " +
        "note?: string | null, lines?: Array<{ price?: number }> }"
    )
    const code = definition(S({
      order_id: Schema.String.check(Schema.isMaxLength(64)),
      customer_id: Schema.Int.check(Schema.isGreaterThan(0)),
      status: Schema.Literals(["open", "closed"]),
      note: Schema.optionalKey(Schema.NullOr(Schema.String)),
      lines: Schema.optionalKey(Schema.Array(S({ price: Schema.optionalKey(Schema.Number) })))
    }))
    assert.deepStrictEqual(SchemaCompatibility.violations(fromFile, [{ version: 1, definition: code }], "FULL"), [])
    const exported = SchemaCompatibility.toJsonSchema(code)
    assert.strictEqual(exported["$schema"], "https://json-schema.org/draft/2020-12/schema")
    const roundTrip = Result.getOrThrow(SchemaCompatibility.fromJsonSchema(exported))
    assert.deepStrictEqual(SchemaCompatibility.violations(roundTrip, [{ version: 1, definition: code }], "FULL"), [])
  })

  it("refuses JSON Schema documents with an unknown type or keyword, naming the JSON path", () => {
    const refusal = (document: unknown) => {
      const result = SchemaCompatibility.fromJsonSchema(document)
      assert.isTrue(Result.isFailure(result), JSON.stringify(document))
      return Result.isFailure(result) ? result.failure.message : ""
    }
    const order = (amount: unknown) => ({
      type: "object",
      properties: { order_id: { type: "string" }, amount },
      required: ["order_id", "amount"]
    })
    assert.match(refusal(order({ type: "strnig" })), /^properties\.amount\.type: unknown type "strnig"/)
    assert.match(refusal(order({ type: ["number", "nul"] })), /^properties\.amount\.type\[1\]: unknown type "nul"/)
    assert.match(
      refusal(order({ type: "number", minimun: 0 })),
      /^properties\.amount\.minimun: unknown keyword "minimun"/
    )
    assert.match(
      refusal(order({ type: "string", minLength: "3" })),
      /^properties\.amount\.minLength: "minLength" must be/
    )
    assert.match(
      refusal(order({ anyOf: [{ type: "number" }, { type: "string", if: { const: "" } }] })),
      /^properties\.amount\.anyOf\[1\]\.if: unsupported keyword "if"/
    )
    assert.match(refusal({ ...order({ type: "number" }), requried: ["amount"] }), /^requried: unknown keyword/)
    assert.match(refusal({ type: 7 }), /^type: a type must be a string/)
    assert.match(refusal({ $defs: { Money: { type: "decimal" } } }), /^\$defs\.Money\.type: unknown type "decimal"/)
    // what Sluice understands still imports, annotations included
    assert.strictEqual(
      SchemaCompatibility.describe(Result.getOrThrow(SchemaCompatibility.fromJsonSchema(order({
        type: "string",
        format: "decimal",
        description: "the amount",
        examples: ["1.50"],
        deprecated: false
      })))),
      "{ order_id: string, amount: string }"
    )
  })

  it("replacing a struct by a schema that accepts anything drops each of its required fields", () => {
    const v1 = Result.getOrThrow(SchemaCompatibility.fromJsonSchema({
      type: "object",
      properties: {
        order_id: { type: "string" },
        amount: { type: "number" },
        note: { type: "string" },
        line: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] }
      },
      required: ["order_id", "amount", "line"]
    }))
    const rules = (candidate: unknown, mode: Mode) =>
      SchemaCompatibility.violations(Result.getOrThrow(SchemaCompatibility.fromJsonSchema(candidate)), [
        { version: 1, definition: v1 }
      ], mode).map((v) => `${v.rule} ${v.field}`)
    for (const anything of [{}, true]) {
      assert.deepStrictEqual(rules(anything, "BACKWARD"), [
        "REQUIRED_FIELD_REMOVED order_id",
        "REQUIRED_FIELD_REMOVED amount",
        "REQUIRED_FIELD_REMOVED line"
      ])
      assert.deepStrictEqual(rules(anything, "FORWARD"), ["TYPE_WIDENED "])
    }
    assert.deepStrictEqual(
      rules({
        type: "object",
        properties: { order_id: { type: "string" }, amount: { type: "number" }, line: {} },
        required: ["order_id", "amount", "line"]
      }, "BACKWARD"),
      ["REQUIRED_FIELD_REMOVED line.sku"]
    )
  })

  it("a JSON Schema property with a default is optional: adding it is BACKWARD compatible, as with Avro", () => {
    const json = (properties: Record<string, unknown>, required: ReadonlyArray<string>) =>
      Result.getOrThrow(SchemaCompatibility.fromJsonSchema({
        type: "object",
        properties,
        required,
        $defs: { Points: { type: "integer" } }
      }))
    const v1 = json({ order_id: { type: "string" } }, ["order_id"])
    const rules = (candidate: SchemaCompatibility.Definition, mode: Mode) =>
      SchemaCompatibility.violations(candidate, [{ version: 1, definition: v1 }], mode).map((v) =>
        `${v.rule} ${v.field}`
      )
    // listed as required, but a record without it is complete: the default stands in
    const withDefault = json(
      { order_id: { type: "string" }, currency: { type: "string", default: "USD" } },
      ["order_id", "currency"]
    )
    assert.strictEqual(SchemaCompatibility.describe(withDefault), "{ order_id: string, currency?: string }")
    assert.deepStrictEqual(rules(withDefault, "BACKWARD"), [])
    assert.deepStrictEqual(rules(withDefault, "FULL"), [])
    // the same as `withDefault` in an effect schema, both ways
    const fromCode = definition(
      S({ order_id: Schema.String, currency: SchemaCompatibility.withDefault(Schema.String, "USD") })
    )
    assert.deepStrictEqual(
      SchemaCompatibility.violations(withDefault, [{ version: 1, definition: fromCode }], "FULL"),
      []
    )
    assert.deepStrictEqual(
      SchemaCompatibility.violations(fromCode, [{ version: 1, definition: withDefault }], "FULL"),
      []
    )
    // without a default it is a required field added
    const without = json({ order_id: { type: "string" }, currency: { type: "string" } }, ["order_id", "currency"])
    assert.deepStrictEqual(rules(without, "BACKWARD"), ["REQUIRED_FIELD_ADDED currency"])
    // nested objects too, and a default through a $ref
    assert.strictEqual(
      SchemaCompatibility.describe(json({
        line: { type: "object", properties: { qty: { type: "integer", default: 1 } }, required: ["qty"] },
        points: { $ref: "#/$defs/Points", default: 0 }
      }, ["line", "points"])),
      "{ line: { qty?: int }, points?: int }"
    )
    // properties named like keywords are properties: `default` and `properties` here are fields
    assert.strictEqual(
      SchemaCompatibility.describe(json({
        default: { type: "object", properties: { a: { type: "string", default: "x" } }, required: ["a"] },
        properties: { type: "object", properties: { default: { type: "string" } }, required: ["default"] },
        examples: {
          type: "array",
          items: { type: "object", properties: { n: { type: "integer", default: 0 } }, required: ["n"] }
        }
      }, ["default", "properties", "examples"])),
      "{ default: { a?: string }, properties: { default: string }, examples: Array<{ n?: int }> }"
    )
    // a default that is not a value of its property is refused, naming it
    const refused = SchemaCompatibility.fromJsonSchema({
      type: "object",
      properties: { currency: { type: "string", default: 5 } },
      required: ["currency"]
    })
    assert.isTrue(Result.isFailure(refused))
    if (Result.isFailure(refused)) {
      assert.strictEqual(refused.failure.message, "properties.currency.default: 5 is not a value of the property")
    }
  })

  it("refuses additionalProperties: false (it cannot be honoured), naming its path", () => {
    for (const closed of [false, { not: {} }]) {
      const result = SchemaCompatibility.fromJsonSchema({
        type: "object",
        properties: { line: { type: "object", properties: { sku: { type: "string" } }, additionalProperties: closed } }
      })
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.match(
          result.failure.message,
          /^properties\.line\.additionalProperties: "additionalProperties": false is not supported: a record's undeclared fields are dropped/
        )
      }
    }
    // true, a schema of the extra values, or none: imported as before
    for (const open of [true, {}, { type: "string" }]) {
      assert.isTrue(
        Result.isSuccess(SchemaCompatibility.fromJsonSchema({ type: "object", additionalProperties: open })),
        JSON.stringify(open)
      )
    }
  })

  it("refuses JSON Schema documents effect cannot import", () => {
    const result = SchemaCompatibility.fromJsonSchema({ type: "string", not: { const: "x" } })
    assert.isTrue(Result.isFailure(result))
    assert.isTrue(Result.isFailure(SchemaCompatibility.fromJsonSchema([1, 2])))
  })
})

// ---------------------------------------------------------------------------------------------
// Decoding records written under an older version
// ---------------------------------------------------------------------------------------------

describe("SchemaCompatibility: decoding under a newer version", () => {
  const OrderV1 = S({
    order_id: Schema.NonEmptyString,
    customer_id: Schema.Int.check(Schema.isGreaterThan(0)),
    amount: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
    order_date: Schema.String
  })
  const OrderV2 = S({
    ...OrderV1.fields,
    currency: SchemaCompatibility.withDefault(Schema.String, "USD"),
    loyalty_points: SchemaCompatibility.nullable(Schema.Int)
  })

  it.effect.prop(
    "every record written with v1 decodes under v2, with currency USD and loyalty_points null",
    [Arbitrary.schema(OrderV1)],
    ([order]) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(
          SchemaCompatibility.violations(
            definition(OrderV2),
            [{ version: 1, definition: definition(OrderV1) }],
            "FULL"
          ),
          []
        )
        const payload = JSON.stringify(Schema.encodeSync(OrderV1)(order))
        // through the transform a pipeline runs, as a record from a file written before v2
        const decoded = Transform.fromSchema(OrderV2)({ payload, position: 1 }, Partition.makeUnsafe("2024-03-01"))
        assert.isTrue(Result.isSuccess(decoded))
        const written = JSON.parse(payload) // as read back (-0 is written as 0)
        assert.deepStrictEqual(Result.getOrThrow(decoded), { ...written, currency: "USD", loyalty_points: null })
        // and records written with v2 keep their values
        const v2 = Schema.decodeUnknownSync(OrderV2)({ ...written, currency: "EUR", loyalty_points: 12 })
        assert.deepStrictEqual(v2, { ...written, currency: "EUR", loyalty_points: 12 })
      }),
    { arbitrary: { runs: 50 } }
  )
})

// ---------------------------------------------------------------------------------------------
// Properties on random struct schemas
// ---------------------------------------------------------------------------------------------

const fieldTypes = ["string", "finite", "int", "boolean", "nullableString", "letters", "ints", "point"] as const
type FieldType = typeof fieldTypes[number]
const FieldType = Schema.Literals(fieldTypes)

const schemaOf: Record<FieldType, Schema.Top> = {
  string: Schema.String,
  finite: Schema.Finite,
  int: Schema.Int,
  boolean: Schema.Boolean,
  nullableString: Schema.NullOr(Schema.String),
  letters: Schema.Literals(["a", "b"]),
  ints: Schema.Array(Schema.Int),
  point: S({ x: Schema.Finite })
}

const defaultOf: Record<FieldType, unknown> = {
  string: "USD",
  finite: 0,
  int: 0,
  boolean: false,
  nullableString: null,
  letters: "a",
  ints: [],
  point: { x: 0 }
}

/** A narrower schema for each type, and the path below the field where the narrowing shows. */
const narrowed: Record<FieldType, readonly [Schema.Top, ReadonlyArray<string>]> = {
  string: [Schema.Literals(["a", "b"]), []],
  finite: [Schema.Int, []],
  int: [Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), []],
  boolean: [Schema.Literal(true), []],
  nullableString: [Schema.String, []],
  letters: [Schema.Literal("a"), []],
  ints: [Schema.Array(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))), ["[]"]],
  point: [S({ x: Schema.Int }), ["x"]]
}

const widened: Record<FieldType, readonly [Schema.Top, ReadonlyArray<string>]> = {
  string: [Schema.NullOr(Schema.String), []],
  finite: [Schema.Union([Schema.Finite, Schema.String]), []],
  int: [Schema.Finite, []],
  boolean: [Schema.Union([Schema.Boolean, Schema.Null]), []],
  nullableString: [Schema.Union([Schema.String, Schema.Null, Schema.Finite]), []],
  letters: [Schema.Literals(["a", "b", "c"]), []],
  ints: [Schema.Array(Schema.Finite), ["[]"]],
  point: [S({ x: Schema.NullOr(Schema.Finite) }), ["x"]]
}

interface FieldSpec {
  readonly type: FieldType
  readonly optional: boolean
}

const structOf = (
  fields: ReadonlyArray<FieldSpec>,
  replace?: { readonly index: number; readonly schema: Schema.Top }
) =>
  S(Object.fromEntries(fields.map((f, i) => {
    const schema = replace?.index === i ? replace.schema : schemaOf[f.type]
    return [`f${i}`, f.optional ? Schema.optionalKey(schema) : schema]
  })))

const Fields = Arbitrary.array(Arbitrary.schema(S({ type: FieldType, optional: Schema.Boolean })), {
  minLength: 1,
  maxLength: 6
})

const Additions = Arbitrary.array(
  Arbitrary.schema(S({ type: FieldType, how: Schema.Literals(["optional", "default", "nullable"]) })),
  { minLength: 1, maxLength: 3 }
)

const added = (addition: { readonly type: FieldType; readonly how: "optional" | "default" | "nullable" }) =>
  addition.how === "optional"
    ? Schema.optionalKey(schemaOf[addition.type])
    : addition.how === "default"
    ? SchemaCompatibility.withDefault(schemaOf[addition.type], defaultOf[addition.type])
    : SchemaCompatibility.nullable(schemaOf[addition.type])

/** A random struct, fields added to it, and values of the original struct. */
const Additive = Arbitrary.flatMap(Arbitrary.all([Fields, Additions]), ([fields, additions]) =>
  Arbitrary.all([
    Arbitrary.Constant(fields),
    Arbitrary.Constant(additions),
    Arbitrary.array(Arbitrary.schema(structOf(fields)), { maxLength: 8 })
  ]))

/** A random struct with at least one required field, and the index of one. */
const WithRequired = Arbitrary.flatMap(Fields, (fields) =>
  Arbitrary.all([
    Arbitrary.Constant(
      fields.some((f) => !f.optional) ? fields : [{ ...fields[0]!, optional: false }, ...fields.slice(1)]
    ),
    Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 5 })))
  ])).pipe(Arbitrary.map(([fields, pick]) => {
    const required = fields.flatMap((f, i) => (f.optional ? [] : [i]))
    return [fields, required[pick % required.length]!] as const
  }))

const FieldAndIndex = Arbitrary.flatMap(Fields, (fields) =>
  Arbitrary.all([
    Arbitrary.Constant(fields),
    Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: fields.length - 1 })))
  ]))

const violationsOf = (previous: Schema.Top, candidate: Schema.Top, mode: Mode) =>
  SchemaCompatibility.violations(definition(candidate), [{ version: 1, definition: definition(previous) }], mode)

describe("SchemaCompatibility: properties", () => {
  it.effect.prop(
    "adding optional or defaulted fields is BACKWARD (and FULL) compatible, and old values decode under the new schema",
    [Additive],
    ([[fields, additions, values]]) =>
      Effect.gen(function*() {
        const old = structOf(fields)
        const next = S({
          ...old.fields,
          ...Object.fromEntries(additions.map((a, i) => [`g${i}`, added(a)]))
        })
        assert.deepStrictEqual(violationsOf(old, next, "BACKWARD"), [])
        assert.deepStrictEqual(violationsOf(old, next, "FULL_TRANSITIVE"), [])
        const decode = Schema.decodeUnknownSync(next as unknown as Schema.Codec<Record<string, unknown>>)
        for (const value of values) {
          const written = JSON.parse(JSON.stringify(value))
          const decoded = decode(written)
          additions.forEach((a, i) => {
            const expected = a.how === "optional" ? undefined : a.how === "default" ? defaultOf[a.type] : null
            assert.deepStrictEqual(decoded[`g${i}`], expected)
          })
        }
      }),
    { arbitrary: { runs: 40 } }
  )

  it.effect.prop(
    "removing a required field is refused by BACKWARD and FORWARD with REQUIRED_FIELD_REMOVED",
    [WithRequired],
    ([[fields, index]]) =>
      Effect.gen(function*() {
        const old = structOf(fields)
        const next = S(Object.fromEntries(Object.entries(old.fields).filter(([name]) => name !== `f${index}`)))
        for (const mode of ["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE"] as const) {
          const found = violationsOf(old, next, mode)
          assert.deepStrictEqual(found.map((v) => [v.direction, v.rule, v.field]), [
            [mode.replace("_TRANSITIVE", ""), "REQUIRED_FIELD_REMOVED", `f${index}`]
          ])
        }
        assert.deepStrictEqual(
          violationsOf(old, next, "FULL").map((v) => [v.direction, v.rule]),
          [["BACKWARD", "REQUIRED_FIELD_REMOVED"], ["FORWARD", "REQUIRED_FIELD_REMOVED"]]
        )
      }),
    { arbitrary: { runs: 40 } }
  )

  it.effect.prop(
    "narrowing a field's type is refused by BACKWARD with TYPE_NARROWED at that field",
    [FieldAndIndex],
    ([[fields, index]]) =>
      Effect.gen(function*() {
        const [schema, below] = narrowed[fields[index]!.type]
        const old = structOf(fields)
        const next = structOf(fields, { index, schema })
        const found = violationsOf(old, next, "BACKWARD")
        assert.deepStrictEqual(found.map((v) => [v.rule, v.path]), [["TYPE_NARROWED", [`f${index}`, ...below]]])
        assert.deepStrictEqual(violationsOf(old, next, "FORWARD"), [])
      }),
    { arbitrary: { runs: 40 } }
  )

  it.effect.prop(
    "widening a field's type is refused by FORWARD with TYPE_WIDENED at that field, and allowed by BACKWARD",
    [FieldAndIndex],
    ([[fields, index]]) =>
      Effect.gen(function*() {
        const [schema, below] = widened[fields[index]!.type]
        const old = structOf(fields)
        const next = structOf(fields, { index, schema })
        assert.deepStrictEqual(violationsOf(old, next, "BACKWARD"), [])
        const found = violationsOf(old, next, "FORWARD")
        assert.deepStrictEqual(found.map((v) => [v.rule, v.path]), [["TYPE_WIDENED", [`f${index}`, ...below]]])
      }),
    { arbitrary: { runs: 40 } }
  )
})
