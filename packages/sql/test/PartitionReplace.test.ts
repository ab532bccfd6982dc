import { assert, describe, it, layer } from "@effect/vitest"
import type { Partition, Sink } from "@sluice/core"
import { SinkError } from "@sluice/core"
import { PartitionReplace } from "@sluice/sql"
import { Arbitrary, Effect, Exit, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { backends, countRows, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

/** What `Pipeline.run` does with a sink: prepare, write batches, complete, in one transaction. */
const load = <A>(
  sink: Sink.Sink<A, SqlClient.SqlClient>,
  partition: Partition.PartitionDate,
  batches: ReadonlyArray<ReadonlyArray<A>>
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sink.prepare(partition)
      for (const batch of batches) yield* sink.write(partition, batch)
      yield* sink.complete(partition)
    })))

const chunk = <A>(rows: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size))

interface Order {
  readonly day: string
  readonly id: number
  readonly amount: string
}

const createOrders = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE ${sql(table)} (order_date date NOT NULL, id int NOT NULL, amount numeric NOT NULL)`
  )

const ordersSink = (table: string) =>
  PartitionReplace.make<Order>({
    table,
    partitionColumn: "order_date",
    columns: [{ name: "order_date", type: "date" }, { name: "id", type: "int" }, { name: "amount", type: "numeric" }],
    toRow: (o) => [o.day, o.id, o.amount]
  })

const readOrders = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly day: string; readonly id: number; readonly amount: string }>`
      SELECT order_date::text AS day, id, amount::text AS amount FROM ${sql(table)} ORDER BY order_date, id`.pipe(
        Effect.map((rows) => rows.map((r) => `${r.day}|${r.id}|${r.amount}`))
      )
  )

const order = (partition: Partition.PartitionDate, id: number, amount = `${id}.50`): Order => ({
  day: partition,
  id,
  amount
})

describe("PartitionReplace.make validates the table spec", () => {
  const valid: PartitionReplace.TableSpec<ReadonlyArray<unknown>> = {
    table: "raw.orders",
    partitionColumn: "order_date",
    columns: [{ name: "order_date", type: "date" }, { name: "amount", type: "numeric" }],
    toRow: (row) => row
  }

  const invalid = (spec: Partial<PartitionReplace.TableSpec<ReadonlyArray<unknown>>>) => () =>
    PartitionReplace.make({ ...valid, ...spec })

  it("accepts `table` and `schema.table` of plain identifiers up to 63 characters", () => {
    assert.strictEqual(PartitionReplace.make(valid).target, "raw.orders")
    assert.strictEqual(PartitionReplace.make({ ...valid, table: "orders" }).target, "orders")
    assert.strictEqual(PartitionReplace.make({ ...valid, table: `_${"a".repeat(62)}` }).target.length, 63)
  })

  it.each([
    ["an injection", "raw.orders; DROP TABLE raw.orders"],
    ["three parts", "db.raw.orders"],
    ["an empty name", ""],
    ["an empty schema", ".orders"],
    ["a leading digit", "raw.1orders"],
    ["a dash", "raw.daily-orders"],
    ["a quote", "raw.\"orders\""],
    ["a space", "raw. orders"],
    ["64 characters", `raw.${"a".repeat(64)}`],
    ["a non-ASCII letter", "raw.commandés"]
  ])("rejects a table name with %s", (_, table) => {
    assert.throws(invalid({ table }), PartitionReplace.InvalidTableSpec)
  })

  it("rejects bad columns, a partition column that is not a column, no columns and unknown types", () => {
    const cases = [
      invalid({ columns: [{ name: "order_date", type: "date" }, { name: "amount)", type: "numeric" }] }),
      invalid({ partitionColumn: "order date" }),
      invalid({ partitionColumn: "day" }),
      invalid({ columns: [] }),
      invalid({ columns: [{ name: "order_date", type: "date" }, { name: "order_date", type: "date" }] }),
      invalid({
        columns: [{ name: "order_date", type: "date" }, {
          name: "amount",
          type: "money" as PartitionReplace.ColumnType
        }]
      })
    ]
    for (const make of cases) {
      const error = (() => {
        try {
          make()
        } catch (e) {
          return e
        }
      })()
      assert.instanceOf(error, PartitionReplace.InvalidTableSpec)
      assert.match((error as PartitionReplace.InvalidTableSpec).message, /^invalid table spec "raw\.orders": /)
    }
  })

  it("rebuild validates its table and columns too", () => {
    const select = () => {
      throw new Error("never called")
    }
    assert.throws(
      () => PartitionReplace.rebuild({ table: "a;b", partitionColumn: "day", select }),
      PartitionReplace.InvalidTableSpec
    )
    assert.throws(
      () => PartitionReplace.rebuild({ table: "a.b", partitionColumn: "d ay", select }),
      PartitionReplace.InvalidTableSpec
    )
    assert.throws(
      () => PartitionReplace.rebuild({ table: "a.b", partitionColumn: "day", columns: ["ok", "no-no"], select }),
      PartitionReplace.InvalidTableSpec
    )
    assert.strictEqual(PartitionReplace.rebuild({ table: "a.b", partitionColumn: "day", select }).target, "a.b")
  })
})

/** A run of the property below: a partition, its rows, and whether the load fails after its first batch. */
const Run = Schema.Struct({
  partition: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 })),
  amounts: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: -1_000_000, maximum: 1_000_000 }))),
  fails: Schema.Boolean
})

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`PartitionReplace [${backend.name}]`, (it) => {
    it.effect("replaces the partition: a re-run leaves exactly its own rows, other partitions untouched", () =>
      Effect.gen(function*() {
        const table = unique("pr_replace")
        yield* createOrders(table)
        const sink = ordersSink(table)
        yield* load(sink, day(0), [[order(day(0), 1), order(day(0), 2)], [order(day(0), 3)]])
        yield* load(sink, day(1), [[order(day(1), 1)]])
        yield* load(sink, day(0), [[order(day(0), 7, "70.00")]])
        assert.deepStrictEqual(yield* readOrders(table), [`${day(0)}|7|70.00`, `${day(1)}|1|1.50`])
        yield* load(sink, day(0), [])
        assert.deepStrictEqual(yield* readOrders(table), [`${day(1)}|1|1.50`], "an empty run empties its partition")
      }))

    it.effect.prop(
      "any sequence of runs leaves the table equal to the last successful run of each partition",
      [Arbitrary.array(Arbitrary.schema(Run), { minLength: 1, maxLength: 8 })],
      ([runs]) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = "pr_property"
          yield* sql`CREATE TABLE IF NOT EXISTS ${
            sql(table)
          } (order_date date NOT NULL, id int NOT NULL, amount numeric NOT NULL)`
          yield* sql`TRUNCATE ${sql(table)}`
          const sink = ordersSink(table)
          const model = new Map<string, ReadonlyArray<string>>()
          for (const run of runs) {
            const partition = day(run.partition)
            const rows = run.amounts.map((cents, i) => order(partition, i, (cents / 100).toFixed(2)))
            const batches = chunk(rows, 3)
            // a failing run writes all its batches, then its sink fails on one more
            const poison: ReadonlyArray<Order> = [order(partition, 999)]
            const failing: Sink.Sink<Order, SqlClient.SqlClient> = {
              ...sink,
              write: (p, batch) =>
                batch === poison
                  ? Effect.fail(new SinkError.SinkError({ operation: "test", message: "boom", retryable: false }))
                  : sink.write(p, batch)
            }
            const attempt = run.fails ? load(failing, partition, [...batches, poison]) : load(sink, partition, batches)
            const exit = yield* Effect.exit(attempt)
            assert.strictEqual(Exit.isSuccess(exit), !run.fails)
            if (!run.fails) model.set(partition, rows.map((r) => `${r.day}|${r.id}|${r.amount}`))
          }
          const expected = [...model].sort(([a], [b]) => a.localeCompare(b)).flatMap(([, rows]) => rows)
          assert.deepStrictEqual(yield* readOrders(table), expected)
        }),
      { arbitrary: { runs: 25 } }
    )

    it.effect("keeps every column type exactly, NULLs included", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_types")
        yield* sql`CREATE TABLE ${sql(table)} (
          p date NOT NULL, t text, i int, b bigint, n numeric, d date, ts timestamptz, f bool, j jsonb,
          dp double precision)`
        const sink = PartitionReplace.make<ReadonlyArray<unknown>>({
          table,
          partitionColumn: "p",
          columns: [
            { name: "p", type: "date" },
            { name: "t", type: "text" },
            { name: "i", type: "int" },
            { name: "b", type: "bigint" },
            { name: "n", type: "numeric" },
            { name: "d", type: "date" },
            { name: "ts", type: "timestamptz" },
            { name: "f", type: "bool" },
            { name: "j", type: "jsonb" },
            { name: "dp", type: "double precision" }
          ],
          toRow: (row) => row
        })
        const p = day(0)
        const rows: ReadonlyArray<ReadonlyArray<unknown>> = [
          [p, "plain", 1, 9_223_372_036_854_775_807n, "0.10", "2024-02-29", new Date(1_709_251_200_123), true, {
            b: [1, "x", null],
            a: { nested: true }
          }, 0.1],
          [
            p,
            "",
            -2_147_483_648,
            -9_223_372_036_854_775_808n,
            "12345678901234567890.123456789",
            "0001-01-01",
            0,
            false,
            [
              1,
              2
            ],
            -0
          ],
          [
            p,
            "😀 é 中文 \\0 'q' \"dq\"",
            2_147_483_647,
            9_007_199_254_740_991,
            "-0.000000001",
            "9999-12-31",
            -1,
            null,
            "a string",
            1e308
          ],
          [p, null, null, "-42", 0.1, null, null, null, 42, Number.POSITIVE_INFINITY],
          [p, "x".repeat(100_000), 0, 0n, 10n, "1970-01-01", undefined, true, null, Number.NaN]
        ]
        yield* load(sink, p, [rows])
        const read = yield* sql<Record<string, unknown>>`
          SELECT p::text AS p, t, i, b::text AS b, n::text AS n, d::text AS d, ts, f, j, dp FROM ${sql(table)}
          ORDER BY i NULLS LAST`
        const expected = [
          // ORDER BY i: -2^31, 0, 1, 2^31 - 1, NULL
          [p, "", -2_147_483_648, "-9223372036854775808", "12345678901234567890.123456789", "0001-01-01", 0, false, [
            1,
            2
          ], -0],
          [p, "x".repeat(100_000), 0, "0", "10", "1970-01-01", null, true, null, Number.NaN],
          [p, "plain", 1, "9223372036854775807", "0.10", "2024-02-29", 1_709_251_200_123, true, {
            a: { nested: true },
            b: [1, "x", null]
          }, 0.1],
          [
            p,
            "😀 é 中文 \\0 'q' \"dq\"",
            2_147_483_647,
            "9007199254740991",
            "-0.000000001",
            "9999-12-31",
            -1,
            null,
            "a string",
            1e308
          ],
          [p, null, null, "-42", "0.1", null, null, null, 42, Number.POSITIVE_INFINITY]
        ]
        assert.strictEqual(read.length, expected.length)
        for (const [r, row] of read.entries()) {
          const [ep, et, ei, eb, en, ed, ets, ef, ej, edp] = expected[r]!
          assert.deepStrictEqual(
            [row.p, row.t, row.i, row.b, row.n, row.d, row.f, row.j],
            [ep, et, ei, eb, en, ed, ef, ej],
            `row ${r}`
          )
          assert.strictEqual(row.ts === null ? null : (row.ts as Date).getTime(), ets, `row ${r}: ts`)
          assert.isTrue(Object.is(row.dp, edp), `row ${r}: dp ${String(row.dp)} is not ${String(edp)}`)
        }
      }))

    it.effect("numerics keep their exact digits and scale when read as numeric", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_numeric")
        yield* createOrders(table)
        const amounts = [
          "0.10",
          "0.1",
          "12345678901234567890.123456789",
          "-12345678901234567890.123456789",
          "0.000000000000000000000000000001",
          "100000000000000000000000000000000000000",
          "0",
          "0.00",
          "-0.5",
          "99999999999999999999999999999999999999.99999999999999999999"
        ]
        yield* load(ordersSink(table), day(0), [amounts.map((amount, id) => order(day(0), id, amount))])
        const rows = yield* sql<{ readonly amount: string; readonly exact: boolean }>`
          SELECT amount::text AS amount, amount = ANY(${amounts}::numeric[]) AS exact FROM ${sql(table)} ORDER BY id`
        assert.deepStrictEqual(rows.map((r) => r.amount), amounts)
        assert.isTrue(rows.every((r) => r.exact))
        const [sum] = yield* sql<{ readonly total: string }>`SELECT sum(amount)::text AS total FROM ${sql(table)}`
        assert.strictEqual(sum?.total, "199999999999999999999999999999999999999.699999999999999999990000000001")
      }))

    it.effect("a row outside the partition fails the write with a non-retryable SinkError; the load rolls back", () =>
      Effect.gen(function*() {
        const table = unique("pr_wrong_day")
        yield* createOrders(table)
        const sink = ordersSink(table)
        yield* load(sink, day(0), [[order(day(0), 1)]])
        const error = yield* Effect.flip(load(sink, day(0), [[order(day(0), 2)], [order(day(0), 3), order(day(1), 4)]]))
        assert.instanceOf(error, SinkError.SinkError)
        const sinkError = error as SinkError.SinkError
        assert.isFalse(sinkError.isRetryable)
        assert.strictEqual(sinkError.operation, `insert into ${table}`)
        assert.strictEqual(sinkError.message, `row 1: order_date is ${day(1)}, not the partition ${day(0)}`)
        assert.deepStrictEqual(yield* readOrders(table), [`${day(0)}|1|1.50`], "the previous load is intact")
      }))

    it.effect("values of the wrong type or count fail with a non-retryable SinkError naming the row and column", () =>
      Effect.gen(function*() {
        const table = unique("pr_bad_values")
        yield* createOrders(table)
        const write = (row: ReadonlyArray<unknown>) =>
          Effect.flip(
            PartitionReplace.make<ReadonlyArray<unknown>>({
              table,
              partitionColumn: "order_date",
              columns: [{ name: "order_date", type: "date" }, { name: "id", type: "int" }, {
                name: "amount",
                type: "numeric"
              }],
              toRow: (r) => r
            }).write(day(0), [[day(0), 1, "1"], row])
          )
        const cases: ReadonlyArray<readonly [ReadonlyArray<unknown>, string]> = [
          [[day(0), "2", "1"], "row 1, column id: expected a int value, got \"2\""],
          [[day(0), 1.5, "1"], "row 1, column id: expected a int value, got number"],
          [[day(0), 2, Number.NaN], "row 1, column amount: expected a numeric value, got number"],
          [[day(0), 2], "row 1: expected 3 values, got 2"],
          [[new Date(0), 2, "1"], "row 1, column order_date: expected a date value, got object"]
        ]
        for (const [row, message] of cases) {
          const error = yield* write(row)
          assert.strictEqual(error.message, message)
          assert.isFalse(error.isRetryable)
        }
        assert.strictEqual(yield* countRows(table), 0)
      }))

    it.effect("values the database rejects fail with a non-retryable SinkError", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_rejected")
        yield* sql`CREATE TABLE ${sql(table)} (p date NOT NULL, t text, i int NOT NULL)`
        const sink = PartitionReplace.make<ReadonlyArray<unknown>>({
          table,
          partitionColumn: "p",
          columns: [{ name: "p", type: "date" }, { name: "t", type: "text" }, { name: "i", type: "int" }],
          toRow: (r) => r
        })
        for (const row of [[day(0), "a\u0000b", 1], [day(0), "ok", null], [day(0), "ok", 2 ** 31]]) {
          const error = yield* Effect.flip(load(sink, day(0), [[row]]))
          assert.strictEqual(error._tag, "SinkError", JSON.stringify(row))
          assert.isFalse((error as SinkError.SinkError).isRetryable, `${JSON.stringify(row)}: ${error.message}`)
        }
        const missing = yield* Effect.flip(load(ordersSink(unique("pr_no_such_table")), day(0), [[order(day(0), 1)]]))
        assert.strictEqual(missing._tag, "SinkError")
        assert.isFalse((missing as SinkError.SinkError).isRetryable)
        assert.strictEqual(yield* countRows(table), 0)
      }))

    it.effect("writes 50,000 rows in one batch (past the 65,535-parameter cap of a multi-row VALUES)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_large")
        yield* createOrders(table)
        const rows = Array.from(
          { length: 50_000 },
          (_, i) => order(day(0), i, `${i}.${String(i % 100).padStart(2, "0")}`)
        )
        yield* load(ordersSink(table), day(0), [rows])
        const [stats] = yield* sql<{ readonly n: number; readonly total: string; readonly ids: number }>`
          SELECT count(*)::int AS n, sum(amount)::text AS total, count(DISTINCT id)::int AS ids FROM ${sql(table)}`
        const cents = rows.reduce((acc, r) => acc + BigInt(r.amount.replace(".", "")), 0n)
        assert.deepStrictEqual(stats, {
          n: 50_000,
          total: `${cents / 100n}.${String(cents % 100n).padStart(2, "0")}`,
          ids: 50_000
        })
      }))

    it.effect("rebuild derives a table for the partition in the load transaction; other partitions untouched", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const raw = unique("pr_raw")
        const daily = unique("pr_daily")
        const flat = unique("pr_flat")
        yield* sql`CREATE TABLE ${sql(raw)} (day date NOT NULL, category text NOT NULL, amount numeric NOT NULL)`
        yield* sql`CREATE TABLE ${sql(daily)} (orders int, revenue numeric, category text, day date NOT NULL)`
        yield* sql`CREATE TABLE ${sql(flat)} (day date NOT NULL, n int NOT NULL)`
        interface Sale {
          readonly day: string
          readonly category: string
          readonly amount: string
        }
        const sink = PartitionReplace.make<Sale>({
          table: raw,
          partitionColumn: "day",
          columns: [{ name: "day", type: "date" }, { name: "category", type: "text" }, {
            name: "amount",
            type: "numeric"
          }],
          toRow: (s) => [s.day, s.category, s.amount],
          derived: [
            PartitionReplace.rebuild({
              table: daily,
              partitionColumn: "day",
              columns: ["day", "category", "revenue", "orders"],
              select: (sql, partition) =>
                sql`SELECT day, category, sum(amount), count(*)::int FROM ${sql(raw)}
                    WHERE day = ${partition}::date GROUP BY day, category`
            }),
            // without `columns`, the SELECT matches the table's column order
            PartitionReplace.rebuild({
              table: flat,
              partitionColumn: "day",
              select: (sql, partition) =>
                sql`SELECT ${partition}::date, count(*)::int FROM ${sql(raw)} WHERE day = ${partition}::date`
            })
          ]
        })
        const sale = (d: Partition.PartitionDate, category: string, amount: string): Sale => ({
          day: d,
          category,
          amount
        })
        yield* load(sink, day(0), [[sale(day(0), "books", "10.00"), sale(day(0), "books", "2.50")], [
          sale(day(0), "games", "0.10")
        ]])
        yield* load(sink, day(1), [[sale(day(1), "books", "1.00")]])
        yield* load(sink, day(0), [[sale(day(0), "toys", "3.30"), sale(day(0), "toys", "3.30")]])
        const derived = yield* sql<
          { readonly day: string; readonly category: string; readonly revenue: string; readonly orders: number }
        >`
          SELECT day::text AS day, category, revenue::text AS revenue, orders FROM ${sql(daily)} ORDER BY day, category`
        assert.deepStrictEqual(derived.map((r) => `${r.day}|${r.category}|${r.revenue}|${r.orders}`), [
          `${day(0)}|toys|6.60|2`,
          `${day(1)}|books|1.00|1`
        ])
        const counts = yield* sql<{ readonly day: string; readonly n: number }>`
          SELECT day::text AS day, n FROM ${sql(flat)} ORDER BY day`
        assert.deepStrictEqual(counts.map((r) => `${r.day}|${r.n}`), [`${day(0)}|2`, `${day(1)}|1`])
      }))

    it.effect("a derived step's `before` runs in prepare, while the partition's old rows are still there", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_before")
        const seen = unique("pr_before_seen")
        yield* createOrders(table)
        yield* sql`CREATE TABLE ${sql(seen)} (day date NOT NULL, old_rows int NOT NULL)`
        const sink = PartitionReplace.make<Order>({
          table,
          partitionColumn: "order_date",
          columns: [{ name: "order_date", type: "date" }, { name: "id", type: "int" }, {
            name: "amount",
            type: "numeric"
          }],
          toRow: (o) => [o.day, o.id, o.amount],
          derived: [{
            target: seen,
            before: (partition) =>
              Effect.flatMap(
                SqlClient.SqlClient,
                (sql) =>
                  sql`INSERT INTO ${sql(seen)} SELECT ${partition}::date, count(*)::int FROM ${sql(table)}
                    WHERE order_date = ${partition}::date`
              ).pipe(Effect.orDie),
            run: () => Effect.void
          }]
        })
        yield* load(sink, day(0), [[order(day(0), 1), order(day(0), 2)]])
        yield* load(sink, day(0), [[order(day(0), 3)]])
        const rows = yield* sql<{ readonly old_rows: number }>`SELECT old_rows FROM ${sql(seen)} ORDER BY old_rows`
        assert.deepStrictEqual(rows.map((r) => r.old_rows), [0, 2])
        assert.deepStrictEqual(yield* readOrders(table), [`${day(0)}|3|3.50`])
      }))

    it.effect("a failing derived step fails the load with a SinkError and rolls back the partition's rows", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("pr_bad_derived")
        const derivedTable = unique("pr_bad_derived_target")
        yield* createOrders(table)
        yield* sql`CREATE TABLE ${sql(derivedTable)} (day date NOT NULL, total numeric NOT NULL)`
        const plain = ordersSink(table)
        yield* load(plain, day(0), [[order(day(0), 1)]])
        const sink = PartitionReplace.make<Order>({
          table,
          partitionColumn: "order_date",
          columns: [{ name: "order_date", type: "date" }, { name: "id", type: "int" }, {
            name: "amount",
            type: "numeric"
          }],
          toRow: (o) => [o.day, o.id, o.amount],
          derived: [PartitionReplace.rebuild({
            table: derivedTable,
            partitionColumn: "day",
            select: (sql, partition) =>
              sql`SELECT order_date, sum(no_such_column) FROM ${
                sql(table)
              } WHERE order_date = ${partition}::date GROUP BY 1`
          })]
        })
        const error = yield* Effect.flip(load(sink, day(0), [[order(day(0), 5)]]))
        assert.strictEqual(error._tag, "SinkError")
        assert.strictEqual((error as SinkError.SinkError).operation, `rebuild ${derivedTable}`)
        assert.deepStrictEqual(yield* readOrders(table), [`${day(0)}|1|1.50`])
      }))
  })
}
