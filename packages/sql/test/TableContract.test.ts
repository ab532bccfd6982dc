/**
 * Schema contracts at load time, on every backend: `evolve` adds columns (declared ones with their
 * default for the rows already there, undeclared ones with an inferred type), `freeze` fails the run
 * with the typed violation and leaves the table untouched, `discard_row` dead-letters with error type
 * `ContractViolation` (loaded + dead-lettered = read), `discard_value` drops and counts.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import {
  Contract,
  DeadLetter,
  Pipeline,
  RecordError,
  RetryPolicy,
  RunLedger,
  SinkError,
  Source,
  Transform
} from "@sluice/core"
import { TableContract, TableEvolution } from "@sluice/sql"
import { Arbitrary, Effect, Exit, Metric, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const Order = Schema.Struct({
  day: Schema.String,
  id: Schema.NonEmptyString,
  amount: Schema.Finite
})
type Order = typeof Order.Type

/** Version 2 of the record: two fields with decoding defaults, one optional. */
const OrderV2 = Schema.Struct({
  ...Order.fields,
  currency: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("USD"))),
  points: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  note: Schema.optionalKey(Schema.String)
})
type OrderV2 = typeof OrderV2.Type

const v1Columns: ReadonlyArray<TableEvolution.ColumnSpec> = [
  { name: "day", type: "date", nullable: false },
  { name: "id", type: "text", nullable: false },
  { name: "amount", type: "numeric", nullable: false }
]
const v2Columns: ReadonlyArray<TableEvolution.ColumnSpec> = [
  ...v1Columns,
  { name: "currency", type: "text", default: "USD" },
  { name: "points", type: "int", default: 0 },
  { name: "note", type: "text" }
]

const source = (data: ReadonlyMap<string, ReadonlyArray<string>>) =>
  Source.make(
    "memory",
    (partition) => Stream.fromIterable((data.get(partition) ?? []).map((payload, i) => ({ payload, position: i + 1 })))
  )

const noRetry = RetryPolicy.make({ baseDelay: "0 millis", jitter: false, maxRetries: 0 })

/** A pipeline of v1 orders (undeclared fields kept for the contract) into `table` under `contract`. */
const pipelineV1 = (
  name: string,
  table: string,
  contract: Contract.Contract,
  data: ReadonlyMap<string, ReadonlyArray<string>>
) =>
  Pipeline.make({
    name,
    source: source(data),
    transform: Transform.fromSchema(Contract.open(Order)),
    sink: TableContract.partitionReplace<Order>({
      table,
      partitionColumn: "day",
      columns: v1Columns,
      toRow: (o) => [o.day, o.id, o.amount],
      contract,
      undeclared: Contract.undeclaredFields(Order)
    }),
    batchSize: 4,
    retry: noRetry,
    failureThreshold: 1
  })

const pipelineV2 = (
  name: string,
  table: string,
  contract: Contract.Contract,
  data: ReadonlyMap<string, ReadonlyArray<string>>
) =>
  Pipeline.make({
    name,
    source: source(data),
    transform: Transform.fromSchema(Contract.open(OrderV2)),
    sink: TableContract.partitionReplace<OrderV2>({
      table,
      partitionColumn: "day",
      columns: v2Columns,
      toRow: (o) => [o.day, o.id, o.amount, o.currency, o.points, o.note],
      contract,
      undeclared: Contract.undeclaredFields(OrderV2)
    }),
    batchSize: 4,
    retry: noRetry,
    failureThreshold: 1
  })

const order = (d: string, i: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ day: d, id: `o-${d}-${i}`, amount: i + 0.5, ...extra })

/** A fresh table at version 1 with `n` orders of day 0 loaded (under a frozen contract). */
const setup = Effect.fnUntraced(function*(n = 5) {
  const name = unique("contract")
  const table = `public.${name}`
  yield* TableEvolution.create({ table, columns: v1Columns, primaryKey: ["day", "id"] })
  const lines = Array.from({ length: n }, (_, i) => order(day(0), i))
  yield* Pipeline.run(pipelineV1(name, table, Contract.make("freeze"), new Map([[day(0), lines]])), day(0))
  return { name, table }
})

const columnsOf = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly name: string; readonly type: string; readonly note: string | null }>`
      SELECT attname AS name, format_type(atttypid, atttypmod) AS type, col_description(attrelid, attnum) AS note
      FROM pg_attribute WHERE attrelid = ${table}::regclass AND attnum > 0 AND NOT attisdropped
      ORDER BY attnum`.pipe(Effect.map((rows) => rows.map((r) => `${r.name} ${r.type}${r.note ? ` (${r.note})` : ""}`)))
  )

/** Every row of the table as JSON (keys sorted by the database), ordered by day and id. */
const rowsOf = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly row: string }>`
      SELECT to_jsonb(t)::text AS row FROM ${sql(table)} t ORDER BY day, id`.pipe(
      Effect.map((rows) => rows.map((r) => JSON.parse(r.row) as Record<string, unknown>))
    ))

const failureOf = <A>(exit: Exit.Exit<A, unknown>): unknown => {
  assert.isTrue(Exit.isFailure(exit), "the run should fail")
  if (Exit.isSuccess(exit)) return undefined
  const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
  assert.isDefined(failure, String(exit.cause))
  return failure?._tag === "Fail" ? failure.error : undefined
}

const discardedValues = (table: string, column: string) =>
  Effect.map(Metric.value(Contract.forColumn(Contract.valuesDiscarded, table, column)), (state) => state.count)

const columnsAdded = (table: string, column: string) =>
  Effect.map(Metric.value(Contract.forColumn(Contract.columnsAdded, table, column)), (state) => state.count)

describe("Contract.classify", () => {
  const table = "t"
  const text = { type: "text", fits: (v: unknown) => typeof v === "string" }
  const field = (name: string, value: unknown, column?: typeof text) => ({ name, value, column })

  it("judges new fields and type changes by each column's mode", () => {
    const contract = Contract.make("freeze", { a: "evolve", b: "discard_value", c: "discard_row" })
    assert.deepStrictEqual(Contract.classify(contract, table, [field("x", "ok", text)]), {
      _tag: "Load",
      added: [],
      discarded: []
    })
    const load = Contract.classify(contract, table, [field("a", 1), field("b", 2), field("a2", null, text)])
    assert.strictEqual(load._tag, "Load")
    if (load._tag === "Load") {
      assert.deepStrictEqual(load.added.map((f) => f.name), ["a"])
      assert.deepStrictEqual(load.discarded.map((f) => f.name), ["b"])
    }
    const discard = Contract.classify(contract, table, [field("b", 2), field("c", 3)])
    assert.strictEqual(discard._tag, "Discard")
    const frozen = Contract.classify(contract, table, [field("z", null)])
    assert.strictEqual(frozen._tag, "Fail")
    if (frozen._tag === "Fail") {
      assert.deepStrictEqual(
        [frozen.violation.contract, frozen.violation.field, frozen.violation.change],
        ["freeze", "z", "new_column"]
      )
    }
    // a type change is not additive: evolve fails the run
    const retyped = Contract.classify(contract, table, [field("a", 5, text)])
    assert.strictEqual(retyped._tag, "Fail")
    if (retyped._tag === "Fail") {
      assert.deepStrictEqual([retyped.violation.contract, retyped.violation.change], ["evolve", "type_change"])
      assert.match(retyped.violation.message, /integer 5 does not fit column a \(text\) of t/)
    }
  })

  it("open keeps undeclared fields on the record; undeclaredFields lists them", () => {
    const transform = Transform.fromSchema(Contract.open(Order))
    const result = transform({ payload: order(day(0), 1, { channel: "web", nested: { a: [1] } }), position: 1 }, day(0))
    assert.strictEqual(result._tag, "Success")
    if (result._tag === "Success") {
      assert.strictEqual(result.success.amount, 1.5)
      assert.deepStrictEqual(Contract.undeclaredFields(Order)(result.success), [["channel", "web"], ["nested", {
        a: [1]
      }]])
    }
  })
})

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`TableContract [${backend.name}]`, (it) => {
    it.effect("evolve: declared columns are added in the load, existing rows get the declared default, not NULL", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(3)
        const lines = [
          order(day(1), 0, { currency: "EUR", points: 7, note: "gift" }),
          order(day(1), 1),
          order(day(1), 2, { points: 3 })
        ]
        const report = yield* Pipeline.run(
          pipelineV2(
            name,
            table,
            Contract.make("freeze", { currency: "evolve", points: "evolve", note: "evolve" }),
            new Map([[day(1), lines]])
          ),
          day(1)
        )
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [3, 3, 0])
        assert.deepStrictEqual(yield* columnsOf(table), [
          "day date",
          "id text",
          "amount numeric",
          "currency text",
          "points integer",
          "note text"
        ])
        const rows = yield* rowsOf(table)
        assert.deepStrictEqual(
          rows.map((r) => [r.day, r.id, r.currency, r.points, r.note]),
          [
            // loaded before the columns existed: the declared defaults (note has none)
            [day(0), `o-${day(0)}-0`, "USD", 0, null],
            [day(0), `o-${day(0)}-1`, "USD", 0, null],
            [day(0), `o-${day(0)}-2`, "USD", 0, null],
            // loaded by v2: decoded values, the schema's defaults for absent fields
            [day(1), `o-${day(1)}-0`, "EUR", 7, "gift"],
            [day(1), `o-${day(1)}-1`, "USD", 0, null],
            [day(1), `o-${day(1)}-2`, "USD", 3, null]
          ]
        )
        assert.strictEqual(yield* columnsAdded(table, "currency"), 1)
        // a re-run of either day changes nothing
        yield* Pipeline.run(
          pipelineV2(name, table, Contract.make("freeze"), new Map([[day(1), lines]])),
          day(1)
        )
        assert.deepStrictEqual(yield* rowsOf(table), rows)
      }))

    it.effect("evolve: undeclared fields become columns of an inferred type, marked as evolved; nulls add none", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(2)
        const lines = [
          order(day(1), 0, { channel: "web", score: 1.5, tags: ["a", "b"], vip: true, empty: null }),
          order(day(1), 1, { channel: "app", score: 2, meta: { ref: 1 } }),
          order(day(1), 2, { empty: null })
        ]
        const report = yield* Pipeline.run(
          pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), lines]])),
          day(1)
        )
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [3, 3, 0])
        assert.deepStrictEqual(yield* columnsOf(table), [
          "day date",
          "id text",
          "amount numeric",
          "channel text (sluice:evolved)",
          "score numeric (sluice:evolved)",
          "tags jsonb (sluice:evolved)",
          "vip boolean (sluice:evolved)",
          "meta jsonb (sluice:evolved)"
        ])
        const rows = yield* rowsOf(table)
        assert.deepStrictEqual(rows.map((r) => [r.id, r.channel, r.score, r.tags, r.vip, r.meta]), [
          [`o-${day(0)}-0`, null, null, null, null, null],
          [`o-${day(0)}-1`, null, null, null, null, null],
          [`o-${day(1)}-0`, "web", 1.5, ["a", "b"], true, null],
          [`o-${day(1)}-1`, "app", 2, null, null, { ref: 1 }],
          [`o-${day(1)}-2`, null, null, null, null, null]
        ])
        // the evolved columns are the table's now: a later frozen load accepts them, and still fits its spec
        yield* Pipeline.run(
          pipelineV1(
            name,
            table,
            Contract.make("freeze"),
            new Map([[day(2), [order(day(2), 0, { channel: "store" })]]])
          ),
          day(2)
        )
        assert.deepStrictEqual((yield* rowsOf(table)).at(-1)?.channel, "store")
        assert.deepStrictEqual(yield* TableEvolution.evolve({ table, columns: v1Columns }), [])
      }))

    it.effect("evolve: a field whose name cannot be a column is dead-lettered, the rest of the load goes on", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(1)
        const long = (last: string) => `long_${"x".repeat(58)}${last}` // 64 characters: the same 63-byte prefix
        const lines = [
          order(day(1), 0, { channel: "web" }),
          order(day(1), 1, { "order id": "a" }),
          order(day(1), 2, { "a\"b": "b" }),
          order(day(1), 3, { "": "c" }),
          order(day(1), 4, { [long("A")]: "d" }),
          order(day(1), 5, { [long("B")]: "e" }),
          order(day(1), 6, { xmin: "f" }),
          order(day(1), 7, { [`m${"x".repeat(62)}`]: "g", Amount: "h", Channel: "i" }),
          order(day(1), 8, { "order id": null }) // a null adds no column: nothing to dead-letter
        ]
        const report = yield* Pipeline.run(
          pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), lines]])),
          day(1)
        )
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [9, 3, 6])
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name, { partition: day(1) })
        assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType, d.stage]), [
          [2, "ContractViolation", "load"],
          [3, "ContractViolation", "load"],
          [4, "ContractViolation", "load"],
          [5, "ContractViolation", "load"],
          [6, "ContractViolation", "load"],
          [7, "ContractViolation", "load"]
        ])
        assert.deepStrictEqual(dead.map((d) => d.error), [
          `field "order id" cannot be a column of ${table}: it is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*) (contract evolve: the record is discarded)`,
          `field "a\\"b" cannot be a column of ${table}: it is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*) (contract evolve: the record is discarded)`,
          `field "" cannot be a column of ${table}: it is empty (contract evolve: the record is discarded)`,
          `field "${
            long("A")
          }" cannot be a column of ${table}: it is 64 characters long, and PostgreSQL truncates identifiers at 63 (contract evolve: the record is discarded)`,
          `field "${
            long("B")
          }" cannot be a column of ${table}: it is 64 characters long, and PostgreSQL truncates identifiers at 63 (contract evolve: the record is discarded)`,
          `field "xmin" cannot be a column of ${table}: it is the name of a PostgreSQL system column (contract evolve: the record is discarded)`
        ])
        // case is kept: Amount and Channel are columns of their own, beside amount and channel
        assert.deepStrictEqual((yield* columnsOf(table)).slice(3), [
          "channel text (sluice:evolved)",
          `m${"x".repeat(62)} text (sluice:evolved)`,
          "Amount text (sluice:evolved)",
          "Channel text (sluice:evolved)"
        ])
        const rows = (yield* rowsOf(table)).filter((r) => r.day === day(1))
        assert.deepStrictEqual(rows.map((r) => [r.id, r.amount, r.Amount, r.channel, r.Channel]), [
          [`o-${day(1)}-0`, 0.5, null, "web", null],
          [`o-${day(1)}-7`, 7.5, "h", null, "i"],
          [`o-${day(1)}-8`, 8.5, null, null, null]
        ])
      }))

    it.effect.prop(
      "evolve: over arbitrary field names the run never dies; each record is loaded with its fields in columns of their names, or dead-lettered",
      [Arbitrary.array(
        Arbitrary.array(
          Arbitrary.schema(Schema.Union([
            Schema.String,
            Schema.Literals([
              "order id",
              "a\"b",
              "",
              "xmin",
              "ctid",
              "Channel",
              "channel",
              "CHANNEL",
              "__proto__",
              "constructor",
              "select",
              `a${"b".repeat(62)}`,
              `a${"b".repeat(63)}`,
              `a${"b".repeat(62)}c`,
              "é",
              "a.b"
            ])
          ])).pipe(Arbitrary.filter((field) => !["day", "id", "amount"].includes(field))),
          { maxLength: 4 }
        ),
        { maxLength: 8 }
      )],
      ([records]) =>
        Effect.gen(function*() {
          const { name, table } = yield* setup(0)
          const columnName = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
          const system = new Set(["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"])
          const fine = (field: string) => columnName.test(field) && !system.has(field)
          const lines = records.map((fields, i) =>
            order(day(1), i, Object.fromEntries(fields.map((field) => [field, `v${i}`])))
          )
          const report = yield* Pipeline.run(
            pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), lines]])),
            day(1)
          )
          assert.strictEqual(report.read, records.length)
          assert.strictEqual(report.loaded + report.deadLettered, report.read)
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name, { partition: day(1) })
          assert.deepStrictEqual(
            dead.map((d) => [d.position, d.errorType, d.stage]),
            records.flatMap((fields, i) => fields.every(fine) ? [] : [[i + 1, "ContractViolation", "load"]])
          )
          for (const d of dead) {
            // the first bad field in the payload's order (integer-like keys come first in an object)
            const bad = records[d.position - 1]!.filter((field) => !fine(field))
            assert.isTrue(
              bad.some((field) =>
                d.error.startsWith(`field ${JSON.stringify(field)} cannot be a column of ${table}: `)
              ),
              d.error
            )
          }
          const rows = new Map((yield* rowsOf(table)).map((row) => [row.id, row]))
          records.forEach((fields, i) => {
            const row = rows.get(`o-${day(1)}-${i}`)
            if (!fields.every(fine)) return assert.isUndefined(row)
            assert.isDefined(row)
            for (const field of fields) assert.strictEqual(Object.getOwnPropertyDescriptor(row, field)?.value, `v${i}`)
          })
        }),
      { arbitrary: { runs: 12 } }
    )

    it.effect("freeze: an unknown field fails the run with the typed violation; the table is untouched", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(4)
        const before = { columns: yield* columnsOf(table), rows: yield* rowsOf(table) }
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
        // the same day re-sent: an unknown field in the 6th record, after a full batch was written
        const lines = [...Array.from({ length: 5 }, (_, i) => order(day(0), i)), order(day(0), 5, { coupon: "SAVE5" })]
        const exit = yield* Effect.exit(
          Pipeline.run(pipelineV1(name, table, Contract.make("freeze"), new Map([[day(0), lines]])), day(0))
        )
        const error = failureOf(exit)
        assert.instanceOf(error, SinkError.SinkError)
        assert.isFalse((error as SinkError.SinkError).isRetryable)
        const violation = Contract.violationOf(error)
        assert.instanceOf(violation, RecordError.ContractViolation)
        assert.deepStrictEqual(
          [violation?.contract, violation?.table, violation?.field, violation?.change],
          ["freeze", table, "coupon", "new_column"]
        )
        assert.match((error as SinkError.SinkError).message, /^ContractViolation: field coupon has no column in/)
        assert.deepStrictEqual({ columns: yield* columnsOf(table), rows: yield* rowsOf(table) }, before)
        assert.deepStrictEqual(yield* (yield* DeadLetter.DeadLetterStore).list(name), dead)
        const [run] = yield* (yield* RunLedger.RunLedger).latest(name)
        assert.deepStrictEqual([run?.status, run?.errorType], ["failed", "SinkError.ContractViolation"])
        assert.match(run?.error ?? "", /ContractViolation.*coupon.*contract freeze/)
      }))

    it.effect("freeze: a type change of an evolved column, or a declared column the table lacks, fails the run", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(2)
        yield* Pipeline.run(
          pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), [order(day(1), 0, { channel: "web" })]]])),
          day(1)
        )
        const before = { columns: yield* columnsOf(table), rows: yield* rowsOf(table) }
        const retyped = failureOf(
          yield* Effect.exit(Pipeline.run(
            pipelineV1(name, table, Contract.make("freeze"), new Map([[day(1), [order(day(1), 0, { channel: 5 })]]])),
            day(1)
          ))
        )
        assert.deepStrictEqual(
          [Contract.violationOf(retyped)?.field, Contract.violationOf(retyped)?.change],
          ["channel", "type_change"]
        )
        // under evolve too: a type change is not additive
        const underEvolve = failureOf(
          yield* Effect.exit(Pipeline.run(
            pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), [order(day(1), 0, { channel: 5 })]]])),
            day(1)
          ))
        )
        assert.match(Contract.violationOf(underEvolve)?.message ?? "", /not additive/)
        // the schema gained fields but the table is frozen: the run fails before reading a record
        const missing = failureOf(
          yield* Effect.exit(Pipeline.run(
            pipelineV2(name, table, Contract.make("freeze"), new Map([[day(1), [order(day(1), 0)]]])),
            day(1)
          ))
        )
        assert.deepStrictEqual(
          [Contract.violationOf(missing)?.field, Contract.violationOf(missing)?.change],
          ["currency", "new_column"]
        )
        assert.deepStrictEqual({ columns: yield* columnsOf(table), rows: yield* rowsOf(table) }, before)
      }))

    it.effect.prop(
      "discard_row: records with unknown fields are dead-lettered as ContractViolation; loaded + dead-lettered = read",
      [Arbitrary.array(Arbitrary.schema(Schema.Literals(["good", "unknown", "null_unknown", "invalid"])), {
        maxLength: 30
      })],
      ([kinds]) =>
        Effect.gen(function*() {
          const { name, table } = yield* setup(1)
          const before = yield* columnsOf(table)
          const lines = kinds.map((kind, i) =>
            kind === "good"
              ? order(day(1), i)
              : kind === "unknown"
              ? order(day(1), i, { coupon: `SAVE${i}` })
              : kind === "null_unknown"
              ? order(day(1), i, { coupon: null })
              : `{"day":"${day(1)}",`
          )
          const report = yield* Pipeline.run(
            pipelineV1(name, table, Contract.make("discard_row"), new Map([[day(1), lines]])),
            day(1)
          )
          const good = kinds.filter((k) => k === "good").length
          assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [
            kinds.length,
            good,
            kinds.length - good
          ])
          assert.strictEqual(report.loaded + report.deadLettered, report.read)
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name, { partition: day(1) })
          assert.deepStrictEqual(
            dead.map((d) => [d.position, d.errorType, d.stage, d.originalRecord]),
            kinds.flatMap((kind, i) =>
              kind === "good"
                ? []
                : [[
                  i + 1,
                  kind === "invalid" ? "InvalidJson" : "ContractViolation",
                  kind === "invalid"
                    ? "transform"
                    : "load",
                  lines[i]
                ]]
            )
          )
          for (const d of dead.filter((d) => d.errorType === "ContractViolation")) {
            assert.match(d.error, /field coupon has no column in .* \(contract discard_row: the record is discarded\)/)
          }
          assert.deepStrictEqual(yield* columnsOf(table), before)
          assert.strictEqual((yield* rowsOf(table)).length, 1 + good)
        }),
      { arbitrary: { runs: 8 } }
    )

    it.effect("discard_value: unknown values and type changes are dropped, the rows loaded, every drop counted", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(1)
        yield* Pipeline.run(
          pipelineV1(name, table, Contract.make("evolve"), new Map([[day(1), [order(day(1), 0, { channel: "web" })]]])),
          day(1)
        )
        const columns = yield* columnsOf(table)
        const lines = [
          order(day(2), 0, { coupon: "SAVE5", channel: "app" }),
          order(day(2), 1, { coupon: null }),
          order(day(2), 2, { channel: 42 }), // a type change of the evolved column: the value is dropped
          order(day(2), 3)
        ]
        const report = yield* Pipeline.run(
          pipelineV1(name, table, Contract.make("discard_value"), new Map([[day(2), lines]])),
          day(2)
        )
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [4, 4, 0])
        assert.deepStrictEqual(yield* columnsOf(table), columns)
        assert.deepStrictEqual(
          (yield* rowsOf(table)).filter((r) => r.day === day(2)).map((r) => [r.id, r.channel, "coupon" in r]),
          [[`o-${day(2)}-0`, "app", false], [`o-${day(2)}-1`, null, false], [`o-${day(2)}-2`, null, false], [
            `o-${day(2)}-3`,
            null,
            false
          ]]
        )
        assert.strictEqual(yield* discardedValues(table, "coupon"), 2)
        assert.strictEqual(yield* discardedValues(table, "channel"), 1)
      }))

    it.effect("modes per column override the table's: coupon dropped, channel evolved, anything else frozen", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(1)
        const contract = Contract.make("freeze", { coupon: "discard_value", channel: "evolve" })
        yield* Pipeline.run(
          pipelineV1(name, table, contract, new Map([[day(1), [order(day(1), 0, { coupon: "X", channel: "web" })]]])),
          day(1)
        )
        assert.deepStrictEqual((yield* columnsOf(table)).slice(3), ["channel text (sluice:evolved)"])
        assert.strictEqual(yield* discardedValues(table, "coupon"), 1)
        const exit = yield* Effect.exit(Pipeline.run(
          pipelineV1(name, table, contract, new Map([[day(1), [order(day(1), 0, { referrer: "ads" })]]])),
          day(1)
        ))
        assert.strictEqual(Contract.violationOf(failureOf(exit))?.field, "referrer")
      }))

    it.effect("a spec that drops, renames or retypes a column is refused at prepare, before any write", () =>
      Effect.gen(function*() {
        const { name, table } = yield* setup(2)
        const before = yield* rowsOf(table)
        const run = (columns: ReadonlyArray<TableEvolution.ColumnSpec>) =>
          Effect.exit(Pipeline.run(
            Pipeline.make({
              name,
              source: source(new Map([[day(0), [order(day(0), 9)]]])),
              transform: Transform.fromSchema(Contract.open(Order)),
              sink: TableContract.partitionReplace<Order>({
                table,
                partitionColumn: "day",
                columns,
                toRow: (o) => columns.map((c) => (o as Record<string, unknown>)[c.name] ?? o.amount),
                contract: Contract.make("evolve")
              }),
              retry: noRetry
            }),
            day(0)
          )).pipe(Effect.map((exit) => {
            const error = failureOf(exit) as SinkError.SinkError
            assert.instanceOf(error.cause, TableEvolution.TableChangeRefused)
            return (error.cause as TableEvolution.TableChangeRefused).changes.map((c) => `${c.change} ${c.column}`)
          }))
        assert.deepStrictEqual(yield* run(v1Columns.slice(0, 2)), ["drop amount"])
        assert.deepStrictEqual(
          yield* run([...v1Columns.slice(0, 2), { name: "total", type: "numeric", renamedFrom: "amount" }]),
          [
            "rename total"
          ]
        )
        assert.deepStrictEqual(yield* run([...v1Columns.slice(0, 2), { name: "amount", type: "text" }]), [
          "type_change amount"
        ])
        assert.deepStrictEqual(yield* rowsOf(table), before)
      }))
  })
}
