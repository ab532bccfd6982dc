/**
 * Values that do not fit their column (an `int` out of range, a `numeric` that is NaN or has too many
 * digits, an invalid `date` or timestamp) are dead-lettered as `RuleViolation storable_value` at stage
 * `load`, by every write strategy, so that one such record never fails the run: the good records
 * load and loaded + dead-lettered = read.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, Pipeline, RetryPolicy, type Sink, Source, Transform } from "@sluice/core"
import { AppendLog, Merge, PartitionReplace, Scd, Table, TableContract } from "@sluice/sql"
import { Arbitrary, Effect, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as fc from "fast-check"
import { backends, countRows, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

// ---------------------------------------------------------------------------------------------
// Values, as JSON texts, each known to fit its column or not
// ---------------------------------------------------------------------------------------------

interface Value {
  /** The value as JSON text, in the record's payload. */
  readonly json: string
  readonly fits: boolean
}

const fits = (json: string): Value => ({ json, fits: true })
const misfit = (json: string): Value => ({ json, fits: false })
const text = (s: string) => JSON.stringify(s)

const manyDigits = "9".repeat(200_000)

/** Hand-picked values per column type: the edges of each range, and the usual bad ones. */
const picked: Record<"int" | "bigint" | "numeric" | "date" | "timestamptz", ReadonlyArray<Value>> = {
  int: [
    fits("null"),
    fits("2147483647"),
    fits("-2147483648"),
    misfit("2147483648"),
    misfit("-2147483649"),
    misfit("3e10"),
    misfit("1.5"),
    misfit("1e400"),
    misfit(text("7"))
  ],
  bigint: [
    fits(text("9223372036854775807")),
    fits(text("-9223372036854775808")),
    fits("9007199254740991"),
    misfit(text("9223372036854775808")),
    misfit(text("1".repeat(25))),
    misfit("1e20"),
    misfit(text("12a"))
  ],
  numeric: [
    fits(text("19.99")),
    fits("0.5"),
    fits(text("1e1000")),
    fits(text("-0.00")),
    fits(text("7".repeat(1000))),
    misfit(text("NaN")),
    misfit(text("Infinity")),
    misfit("1e400"),
    misfit(text("1e1001")),
    misfit(text("abc")),
    misfit(text(" 1")),
    misfit(text(manyDigits)),
    misfit(text(`0.${"1".repeat(16_384)}`))
  ],
  date: [
    fits(text("2024-02-29")),
    fits(text("0001-01-01")),
    misfit(text("2024-02-30")),
    misfit(text("2023-02-29")),
    misfit(text("2024-13-01")),
    misfit(text("2024-3-1")),
    misfit(text("0000-01-01")),
    misfit(text("yesterday")),
    misfit("20240301")
  ],
  timestamptz: [
    fits("0"),
    fits("8640000000000000"),
    fits("-210866803200000"),
    misfit("1e16"),
    misfit("-8640000000000000"),
    misfit(text("2024-03-01T00:00:00Z"))
  ]
}

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** A value for a column of `type`: a picked one, or a random one on either side of the range. */
const valueOf = (type: keyof typeof picked): Arbitrary.Arbitrary<Value> => {
  const random: Arbitrary.Arbitrary<Value> = type === "int"
    ? Arbitrary.all({ n: int(-1e15, 1e15) }).pipe(
      Arbitrary.map(({ n }) => ({ json: String(n), fits: n >= -2147483648 && n <= 2147483647 }))
    )
    : type === "bigint"
    ? int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER).pipe(Arbitrary.map((n) => fits(String(n))))
    : type === "numeric"
    ? Arbitrary.all({ whole: int(0, 1e9), fraction: int(0, 9999), digits: int(1, 300) }).pipe(
      Arbitrary.map(({ digits, fraction, whole }) =>
        digits > 290 ? misfit(text(`${whole}.${fraction}e${1000 + digits}`)) : fits(text(`${whole}.${fraction}`))
      )
    )
    : type === "date"
    ? Arbitrary.all({ y: int(1, 9999), m: int(1, 13), d: int(1, 31) }).pipe(
      Arbitrary.map(({ d, m, y }) => {
        const valid = m <= 12 && d <= new Date(Date.UTC(2001, m, 0)).getUTCDate() + (m === 2 && leap(y) ? 1 : 0)
        const pad = (n: number, w: number) => String(n).padStart(w, "0")
        return { json: text(`${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`), fits: valid }
      })
    )
    : int(-210866803200000, 8.64e15 + 1e12).pipe(Arbitrary.map((n) => ({ json: String(n), fits: n <= 8.64e15 })))
  return Arbitrary.all({ choice: int(0, picked[type].length * 2 - 1), random }).pipe(
    Arbitrary.map(({ choice, random }) => picked[type][choice] ?? random)
  )
}

const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

// ---------------------------------------------------------------------------------------------
// Records, and a table of every kind of column under each write strategy
// ---------------------------------------------------------------------------------------------

const Row = Schema.Struct({
  id: Schema.Int,
  i: Schema.Unknown,
  b: Schema.Unknown,
  n: Schema.Unknown,
  d: Schema.Unknown,
  ts: Schema.Unknown
})
type Row = typeof Row.Type

interface Line {
  readonly i: Value
  readonly b: Value
  readonly n: Value
  readonly d: Value
  readonly ts: Value
}

const Line: Arbitrary.Arbitrary<Line> = Arbitrary.all({
  i: valueOf("int"),
  b: valueOf("bigint"),
  n: valueOf("numeric"),
  d: valueOf("date"),
  ts: valueOf("timestamptz")
})

const payloadOf = (id: number, line: Line) =>
  `{"id":${id},"i":${line.i.json},"b":${line.b.json},"n":${line.n.json},"d":${line.d.json},"ts":${line.ts.json}}`

const fitsAll = (line: Line) => [line.i, line.b, line.n, line.d, line.ts].every((v) => v.fits)

const values: ReadonlyArray<Table.Column> = [
  { name: "i", type: "int" },
  { name: "b", type: "bigint" },
  { name: "n", type: "numeric" },
  { name: "d", type: "date" },
  { name: "ts", type: "timestamptz" }
]
const valuesOf = (r: Row) => [r.i, r.b, r.n, r.d, r.ts]
const valuesDdl = "i int, b bigint, n numeric, d date, ts timestamptz"

const Strategies = ["replace copy", "replace unnest", "merge", "append log", "scd type 1"] as const
type Strategy = typeof Strategies[number]

/** A fresh table (or log, or dimension) under `strategy`: its sink, and the table its rows land in. */
const sinkOf = (strategy: Strategy) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = unique(`storable_${strategy.replace(/ /g, "_")}`)
    switch (strategy) {
      case "replace copy":
      case "replace unnest": {
        yield* sql.unsafe(`CREATE TABLE ${table} (p date NOT NULL, id int NOT NULL, ${valuesDdl})`)
        const sink = PartitionReplace.make<Row>({
          table,
          partitionColumn: "p",
          columns: [{ name: "p", type: "date" }, { name: "id", type: "int" }, ...values],
          toRow: (r) => [day(0), r.id, ...valuesOf(r)],
          load: strategy === "replace copy" ? "copy" : "unnest"
        })
        return { sink, table }
      }
      case "merge": {
        yield* sql.unsafe(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, ${valuesDdl})`)
        const spec: Merge.Spec<Row> = {
          table,
          key: ["id"],
          orderBy: "v",
          columns: [{ name: "id", type: "int" }, { name: "v", type: "int" }, ...values],
          toRow: (r) => [r.id, 1, ...valuesOf(r)]
        }
        yield* Merge.migrate(spec)
        return { sink: Merge.make(spec), table }
      }
      case "append log": {
        const log = AppendLog.make<Row>({
          log: `${table}_log`,
          view: table,
          key: ["id"],
          columns: [{ name: "id", type: "int" }, ...values],
          toRow: (r) => [r.id, ...valuesOf(r)]
        })
        yield* log.createLog
        yield* log.createView
        return { sink: log.sink, table: `${table}_log` }
      }
      case "scd type 1": {
        const scd = Scd.type1<Row>({
          changes: `${table}_changes`,
          dimension: table,
          key: { name: "id", type: "int" },
          attributes: values,
          toChange: (r) => ({ key: r.id, values: valuesOf(r) })
        })
        yield* scd.createTables
        return { sink: scd.sink, table: `${table}_changes` }
      }
    }
  })

const run = (name: string, sink: Sink.Sink<Row, SqlClient.SqlClient>, payloads: ReadonlyArray<string>) =>
  Pipeline.run(
    Pipeline.make({
      name,
      source: Source.make(
        "memory",
        () => Stream.fromIterable(payloads.map((payload, i) => ({ payload, position: i + 1 })))
      ),
      transform: Transform.fromSchema(Row),
      sink,
      batchSize: 4,
      failureThreshold: 1,
      retry: RetryPolicy.make({ maxRetries: 0 })
    }),
    day(0)
  )

// ---------------------------------------------------------------------------------------------

describe("Table.unstorable", () => {
  it("says why a value does not fit its column, and nothing for one that does", () => {
    const cases: ReadonlyArray<readonly [Table.ColumnType, unknown, string | undefined]> = [
      ["int", 2147483647, undefined],
      ["int", 3e10, "out of the range of int (-2^31 to 2^31-1)"],
      ["int", 1.5, "not a value of type int (a number)"],
      ["bigint", 2n ** 63n - 1n, undefined],
      ["bigint", 2n ** 63n, "out of the range of bigint (-2^63 to 2^63-1)"],
      ["bigint", "1".repeat(200_000), "out of the range of bigint (-2^63 to 2^63-1)"],
      ["bigint", 1e20, "an integer beyond 2^53, not exact as a number"],
      ["numeric", "19.99", undefined],
      ["numeric", Number.POSITIVE_INFINITY, "not a finite number"],
      ["numeric", "NaN", "not a finite number"],
      ["numeric", manyDigits, "more than 131072 digits before the decimal point"],
      ["numeric", "1e99999999999999", "an exponent beyond ±1000"],
      ["numeric", "0e99999999999999", "an exponent beyond ±1000"],
      ["numeric", "1.5 ", "not a decimal number"],
      ["date", "2024-02-29", undefined],
      ["date", "2024-02-30", "not a valid date"],
      ["date", "2024-3-1", "not a YYYY-MM-DD date"],
      ["timestamptz", new Date(Number.NaN), "not a valid timestamp"],
      ["timestamptz", new Date(0), undefined],
      ["timestamptz", -8.64e15, "out of the range of timestamptz"],
      ["timestamptz", "2024-03-01", "not a value of type timestamptz (a string)"],
      ["jsonb", { a: [1n] }, "no JSON form (holds a bigint)"],
      ["text", null, undefined],
      // the fast paths (plain decimals, short integers, dates by character) agree with the slow ones
      ["numeric", "+3", undefined],
      ["numeric", ".5", undefined],
      ["numeric", "5.", undefined],
      ["numeric", "-", "not a decimal number"],
      ["numeric", ".", "not a decimal number"],
      ["numeric", "", "not a decimal number"],
      ["numeric", "1.2.3", "not a decimal number"],
      ["numeric", "1e5", undefined],
      ["numeric", "9".repeat(1001), undefined],
      ["bigint", "-999999999999999999", undefined],
      ["bigint", "9223372036854775807", undefined],
      ["bigint", "9223372036854775808", "out of the range of bigint (-2^63 to 2^63-1)"],
      ["bigint", "-", "not a value of type bigint (a string)"],
      ["bigint", "", "not a value of type bigint (a string)"],
      ["bigint", "12a", "not a value of type bigint (a string)"],
      ["date", "0000-01-01", "not a valid date"],
      ["date", "2024-13-01", "not a valid date"],
      ["date", "2024-01-0a", "not a YYYY-MM-DD date"],
      ["date", "2024/01/01", "not a YYYY-MM-DD date"],
      ["date", "infinity", undefined]
    ]
    for (const [type, value, expected] of cases) {
      assert.strictEqual(Table.unstorable(type, value), expected, `${type} ${String(value).slice(0, 20)}`)
    }
  })

  it("storable's per-column fast path accepts only what unstorable and the text check accept", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Table.columnTypes),
        fc.oneof(
          fc.integer(),
          fc.double(),
          fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, -0, Number.NaN, Infinity, 1e20),
          fc.bigInt(),
          fc.boolean(),
          fc.date({ noInvalidDate: false }),
          fc.string({ unit: "binary" }),
          fc.stringMatching(/^[+-]?\d{0,20}(\.\d{0,4})?$/),
          fc.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
          fc.constantFrom("a\u0000b", "\uD800", "x\uDC00", "\uD83D\uDE00", "infinity", "NaN", "1e5")
        ),
        (type, value) => {
          const check = Table.storable("t", [{ name: "c", type }], (v: unknown) => [v])
          // a lone surrogate or a NUL, as PostgreSQL text cannot hold them
          const badText = (type === "text" || type === "jsonb") && typeof value === "string" &&
            // oxlint-disable-next-line no-control-regex
            /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)
          const fine = Table.unstorable(type, value) === undefined && !badText
          assert.strictEqual(check(value) === undefined, fine, `${type} ${String(value).slice(0, 40)}`)
        }
      ),
      { numRuns: 5_000 }
    )
  })

  it("a contract's evolved date column takes only valid dates too", () => {
    assert.isTrue(TableContract.fits("date", "2024-02-29"))
    assert.isFalse(TableContract.fits("date", "2024-02-30"))
    assert.isFalse(TableContract.fits("date", "0000-01-01"))
  })

  it("storable names the column and the value, with rule storable_value", () => {
    const check = Table.storable("raw.orders", values, valuesOf)
    const error = check({ id: 1, i: 3e10, b: null, n: manyDigits, d: null, ts: null })
    assert.strictEqual(error?.reason._tag, "RuleViolation")
    assert.strictEqual(error?.reason._tag === "RuleViolation" ? error.reason.rule : "", "storable_value")
    assert.strictEqual(
      error?.message,
      "i = 30000000000 is out of the range of int (-2^31 to 2^31-1): raw.orders cannot store it in its int4 column"
    )
    assert.match(
      check({ id: 1, i: 1, b: null, n: manyDigits, d: null, ts: null })?.message ?? "",
      /^n = "9{39}… \(200002 characters\) is more than 131072 digits before the decimal point/
    )
    assert.isUndefined(check({ id: 1, i: 1, b: "12", n: "1.5", d: "2024-03-01", ts: 0 }))
  })
})

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`storable values [${backend.name}]`, (it) => {
    for (const strategy of Strategies) {
      it.effect(
        `${strategy}: unstorable values are dead-lettered (storable_value, stage load), the rest loads`,
        () =>
          Effect.gen(function*() {
            const { sink, table } = yield* sinkOf(strategy)
            const good: Line = {
              i: fits("1"),
              b: fits("2"),
              n: fits(text("3.5")),
              d: fits(text("2024-03-01")),
              ts: fits("0")
            }
            const lines: ReadonlyArray<Line> = [
              good,
              { ...good, i: misfit("3e10") },
              { ...good, n: misfit("1e400") },
              { ...good, n: misfit(text(manyDigits)) },
              good,
              { ...good, d: misfit(text("2024-02-30")) },
              { ...good, ts: misfit("1e16") },
              { ...good, b: misfit(text("9223372036854775808")) },
              good
            ]
            // and a key that does not fit its int column
            const payloads = [...lines.map((line, i) => payloadOf(i + 1, line)), payloadOf(3e10, good)]
            const report = yield* run(table, sink, payloads)
            assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [10, 3, 7])
            assert.strictEqual(yield* countRows(table), 3)
            const dead = yield* (yield* DeadLetter.DeadLetterStore).list(table)
            assert.deepStrictEqual(
              dead.map((d) => [d.position, d.stage, d.errorType]).sort((a, b) => Number(a[0]) - Number(b[0])),
              [2, 3, 4, 6, 7, 8, 10].map((position) => [position, "load", "RuleViolation"])
            )
            const errors = new Map(dead.map((d) => [d.position, d.error]))
            assert.match(errors.get(2)!, /^i = 30000000000 is out of the range of int/)
            assert.match(errors.get(3)!, /^n = Infinity is not a finite number/)
            assert.match(errors.get(4)!, /^n = "9+… \(200002 characters\) is more than 131072 digits/)
            assert.match(errors.get(6)!, /^d = "2024-02-30" is not a valid date/)
            assert.match(errors.get(7)!, /^ts = 10000000000000000 is out of the range of timestamptz/)
            assert.match(errors.get(8)!, /^b = "9223372036854775808" is out of the range of bigint/)
            assert.match(errors.get(10)!, /^id = 30000000000 is out of the range of int/)
          }),
        { timeout: 60_000 }
      )
    }

    it.effect.prop(
      "any record either loads or is dead-lettered as storable_value; the run never fails",
      [Arbitrary.array(Line, { maxLength: 8 }), Arbitrary.schema(Schema.Literals(Strategies))],
      ([lines, strategy]) =>
        Effect.gen(function*() {
          const { sink, table } = yield* sinkOf(strategy)
          const report = yield* run(table, sink, lines.map((line, i) => payloadOf(i + 1, line)))
          const expected = lines.filter(fitsAll).length
          assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [
            lines.length,
            expected,
            lines.length - expected
          ])
          assert.strictEqual(yield* countRows(table), expected)
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(table)
          assert.deepStrictEqual(
            dead.map((d) => d.position).sort((a, b) => a - b),
            lines.flatMap((line, i) => fitsAll(line) ? [] : [i + 1])
          )
          for (const d of dead) {
            assert.deepStrictEqual([d.stage, d.errorType], ["load", "RuleViolation"])
            assert.match(d.error, /^(i|b|n|d|ts) = .* cannot store it in its \w+ column$/s)
          }
        }),
      { arbitrary: { runs: 25 } }
    )
  })
}
