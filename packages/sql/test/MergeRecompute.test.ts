import { assert, describe, it, layer } from "@effect/vitest"
import { Partition, Transactor } from "@sluice/core"
import { Merge, PartitionReplace, SqlSluice, Testing } from "@sluice/sql"
import { Arbitrary, Effect, Exit, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"

/** A sale of a partition (day): `k` is the key aggregated by (null: a sale without one), `cents` its amount. */
interface Sale {
  readonly k: number | null
  readonly cents: number
}

/** A load: the sales of day `day` (0–3), replacing that day's earlier load. */
interface Load {
  readonly day: number
  readonly sales: ReadonlyArray<Sale>
}

const date = (i: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), i)
const money = (cents: number) =>
  `${cents < 0 ? "-" : ""}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, "0")}`

let counter = 0
/** A source table partitioned by day, loaded by partition replacement, and its metrics per key, recomputed. */
const fixture = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const n = ++counter
  const source = `recompute_sales_${n}`
  const metrics = `recompute_metrics_${n}`
  yield* sql`CREATE TABLE ${sql(source)} (
    day date NOT NULL, position int NOT NULL, k int, amount numeric NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (day, position))`
  yield* sql`CREATE TABLE ${sql(metrics)} (
    k int PRIMARY KEY, sales int NOT NULL, keyed int NOT NULL, total numeric NOT NULL, first_day date NOT NULL,
    last_day date NOT NULL, biggest numeric NOT NULL)`
  const step = Merge.recompute({
    table: metrics,
    key: ["k"],
    from: { table: source, partitionColumn: "day" },
    measures: [
      { column: "sales", aggregate: "count" },
      { column: "keyed", aggregate: "count", of: "k" },
      { column: "total", aggregate: "sum", of: "amount" },
      { column: "first_day", aggregate: "min", of: "day" },
      { column: "last_day", aggregate: "max", of: "day" },
      { column: "biggest", aggregate: "max", of: "amount" }
    ]
  })
  const sink = PartitionReplace.make<readonly [string, number, number | null, string]>({
    table: source,
    partitionColumn: "day",
    columns: [
      { name: "day", type: "date" },
      { name: "position", type: "int" },
      { name: "k", type: "int" },
      { name: "amount", type: "numeric" }
    ],
    toRow: (row) => row,
    derived: [step]
  })
  /** One load, as the runner does it: prepare, write in batches of 3, complete — in one transaction. */
  const load = ({ day, sales }: Load) =>
    Effect.flatMap(Transactor.Transactor, (transactor) =>
      transactor.withTransaction(Effect.gen(function*() {
        const partition = date(day)
        yield* sink.prepare(partition)
        const rows = sales.map((s, i) => [partition, i, s.k, money(s.cents)] as const)
        for (let i = 0; i < rows.length; i += 3) yield* sink.write(partition, rows.slice(i, i + 3))
        yield* sink.complete(partition)
      })))
  const snapshot = sql<{ readonly row: string }>`
    SELECT concat_ws(' ', k, sales, keyed, total, first_day, last_day, biggest) AS row FROM ${sql(metrics)} ORDER BY k`
    .pipe(Effect.map((rows) => rows.map((r) => r.row)))
  return { source, metrics, step, load, snapshot }
})

/** The model: the last load of each day is the source; metrics are its aggregates per key, in plain TypeScript. */
const model = (loads: ReadonlyArray<Load>): ReadonlyArray<string> => {
  const days = new Map<number, ReadonlyArray<Sale>>()
  for (const l of loads) days.set(l.day, l.sales)
  const perKey = new Map<number, { sales: number; total: number; first: number; last: number; biggest: number }>()
  for (const [day, sales] of days) {
    for (const s of sales) {
      if (s.k === null) continue
      const m = perKey.get(s.k)
      if (m === undefined) perKey.set(s.k, { sales: 1, total: s.cents, first: day, last: day, biggest: s.cents })
      else {
        perKey.set(s.k, {
          sales: m.sales + 1,
          total: m.total + s.cents,
          first: Math.min(m.first, day),
          last: Math.max(m.last, day),
          biggest: Math.max(m.biggest, s.cents)
        })
      }
    }
  }
  return [...perKey].sort(([a], [b]) => a - b).map(([k, m]) =>
    `${k} ${m.sales} ${m.sales} ${money(m.total)} ${date(m.first)} ${date(m.last)} ${money(m.biggest)}`
  )
}

const small = (maximum: number) => Schema.Int.check(Schema.isBetween({ minimum: 0, maximum }))

const SaleArbitrary = Arbitrary.schema(Schema.Struct({ k: small(6), cents: small(5000) })).pipe(
  Arbitrary.map(({ k, cents }): Sale => ({ k: k === 6 ? null : k, cents }))
)
const LoadArbitrary = Arbitrary.all({
  day: Arbitrary.schema(small(3)),
  sales: Arbitrary.array(SaleArbitrary, { maxLength: 7 })
})

describe("Merge.recompute (spec)", () => {
  it("rejects bad specs", () => {
    const base: Merge.RecomputeSpec = {
      table: "m",
      key: ["k"],
      from: { table: "s", partitionColumn: "day" },
      measures: [{ column: "n", aggregate: "count" }]
    }
    const bad: ReadonlyArray<Partial<Merge.RecomputeSpec>> = [
      { key: [] },
      { key: ["k", "k"] },
      { measures: [] },
      { measures: [{ column: "sluice_gone", aggregate: "count" }] },
      { measures: [{ column: "total", aggregate: "sum" }] },
      { measures: [{ column: "k", aggregate: "count" }] },
      { measures: [{ column: "n", aggregate: "avg" as "sum", of: "x" }] },
      { measures: [{ column: "n", aggregate: "max", of: "x)--" }] },
      { from: { table: "s", partitionColumn: "day; --" } },
      { table: "x.y.z" }
    ]
    for (const override of bad) assert.throws(() => Merge.recompute({ ...base, ...override }), /invalid table spec/)
  })
})

const withSluice = (backend: Testing.Backend) => SqlSluice.layer.pipe(Layer.provideMerge(backend.layer))

for (const backend of Testing.backends()) {
  layer(withSluice(backend), { timeout: "60 seconds", excludeTestServices: true })(
    `Merge.recompute [${backend.name}]`,
    (it) => {
      it.effect.prop(
        "for any sequence of loads (re-runs of a day with other rows, days sharing keys) the metrics equal the model",
        [Arbitrary.array(LoadArbitrary, { minLength: 1, maxLength: 6 })],
        ([loads]) =>
          Effect.gen(function*() {
            const { load, snapshot } = yield* fixture
            for (const l of loads) yield* load(l)
            assert.deepStrictEqual(yield* snapshot, model(loads))
          }),
        { arbitrary: { runs: 25 } }
      )

      it.effect("a key whose last source row is gone is deleted; re-running a load changes nothing", () =>
        Effect.gen(function*() {
          const { load, snapshot } = yield* fixture
          const loads: Array<Load> = [
            { day: 0, sales: [{ k: 1, cents: 100 }, { k: 2, cents: 250 }, { k: 1, cents: 5 }] },
            { day: 1, sales: [{ k: 2, cents: 1000 }, { k: null, cents: 7 }] }
          ]
          for (const l of loads) yield* load(l)
          assert.deepStrictEqual(yield* snapshot, [
            `1 2 2 1.05 ${date(0)} ${date(0)} 1.00`,
            `2 2 2 12.50 ${date(0)} ${date(1)} 10.00`
          ])
          yield* load(loads[1]!)
          yield* load(loads[1]!)
          assert.deepStrictEqual(yield* snapshot, model(loads))
          // day 0 again, without customer 1: its metrics row goes; customer 2 loses a sale
          loads.push({ day: 0, sales: [{ k: 3, cents: 1 }] })
          yield* load(loads[2]!)
          assert.deepStrictEqual(yield* snapshot, model(loads))
          assert.deepStrictEqual((yield* snapshot).map((r) => r.split(" ")[0]), ["2", "3"])
          // an empty day
          loads.push({ day: 1, sales: [] })
          yield* load(loads[3]!)
          assert.deepStrictEqual(yield* snapshot, [`3 1 1 0.01 ${date(0)} ${date(0)} 0.01`])
        }))

      it.effect("a load failing mid-way leaves the source and the metrics as before; the next load works", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { load, snapshot, source } = yield* fixture
          const good: Load = { day: 0, sales: [{ k: 1, cents: 100 }, { k: 2, cents: 200 }] }
          yield* load(good)
          const before = yield* snapshot
          const sourceRows = sql`SELECT count(*)::int AS n FROM ${sql(source)}`
          // the second batch of 3 violates CHECK (amount >= 0), after `before` captured the day's keys
          const exit = yield* Effect.exit(load({
            day: 0,
            sales: [{ k: 3, cents: 1 }, { k: 3, cents: 2 }, { k: 4, cents: 3 }, { k: 5, cents: -1 }]
          }))
          assert.isTrue(Exit.isFailure(exit))
          assert.deepStrictEqual(yield* snapshot, before)
          assert.deepStrictEqual(yield* sourceRows, [{ n: 2 }])
          const next: Load = { day: 0, sales: [{ k: 2, cents: 300 }] }
          yield* load(next)
          assert.deepStrictEqual(yield* snapshot, model([good, next]))
        }))

      it.effect("`all` recomputes every key: it repairs rows that are wrong, missing or without source rows", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { load, snapshot, metrics, step } = yield* fixture
          const loads: ReadonlyArray<Load> = [
            { day: 0, sales: [{ k: 1, cents: 100 }, { k: 2, cents: 200 }, { k: 3, cents: 300 }] },
            { day: 2, sales: [{ k: 2, cents: 50 }] }
          ]
          for (const l of loads) yield* load(l)
          yield* sql`DELETE FROM ${sql(metrics)} WHERE k = 1`
          yield* sql`UPDATE ${sql(metrics)} SET total = 0 WHERE k = 2`
          yield* sql`INSERT INTO ${sql(metrics)} VALUES (9, 1, 1, 1, '2024-01-01', '2024-01-01', 1)`
          yield* Effect.flatMap(Transactor.Transactor, (t) => t.withTransaction(step.all))
          assert.deepStrictEqual(yield* snapshot, model(loads))
        }))

      it.effect("concurrent loads of days sharing keys give the same metrics as loading them one by one", () =>
        Effect.gen(function*() {
          const { load, snapshot } = yield* fixture
          const loads: ReadonlyArray<Load> = [0, 1, 2, 3].map((day) => ({
            day,
            sales: Array.from({ length: 40 }, (_, i) => ({ k: i % 5, cents: 100 * day + i }))
          }))
          yield* Effect.all(loads.map(load), { concurrency: 4 })
          assert.deepStrictEqual(yield* snapshot, model(loads))
        }))
    }
  )
}
