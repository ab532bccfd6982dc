import { NodeFileSystem, NodeHttpClient } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { JsonLinesSource, Partition, Pipeline, RetryPolicy, Source, SourceError } from "@sluice/core"
import { Migrations, SqlSluice, Testing } from "@sluice/sql"
import { Arbitrary, Context, Effect, Exit, FileSystem, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as CustomerMetrics from "../src/CustomerMetrics.ts"
import * as DailyRevenue from "../src/DailyRevenue.ts"
import * as Generator from "../src/Generator.ts"
import { OrderTransform } from "../src/Order.ts"
import * as Tables from "../src/Tables.ts"

const day = (i: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), i)
const noRetry = RetryPolicy.make({ maxRetries: 0 })

/** Two versions of four days of orders (seeds 1 and 2): re-running a day with the other one changes its orders. */
class OrderFiles extends Context.Service<OrderFiles, ReadonlyArray<string>>()("test/OrderFiles") {
  static readonly layer = Layer.effect(
    OrderFiles,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      return yield* Effect.forEach([1, 2], (seed) =>
        Effect.gen(function*() {
          const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-metrics-" })
          yield* Generator.generate({
            directory,
            start: day(0),
            days: 4,
            seed,
            ordersPerDay: { min: 30, max: 60 },
            badShare: 0.01
          })
          return directory
        }))
    })
  )
}

const appLayer = (backend: Testing.Backend) =>
  Layer.mergeAll(SqlSluice.layer, Layer.effectDiscard(DailyRevenue.setup)).pipe(
    Layer.provideMerge(backend.layer),
    Layer.merge(OrderFiles.layer),
    Layer.provideMerge(Layer.mergeAll(NodeFileSystem.layer, NodeHttpClient.layerUndici))
  )

const reset = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE raw.orders, analytics.daily_revenue, analytics.customer_metrics`
)

/** `analytics.customer_metrics`, sorted, amounts canonical. */
const metrics = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ id: string; total_orders: number; lifetime_value: string; last_order_date: string }>`
    SELECT customer_id::text AS id, total_orders, lifetime_value::text, last_order_date::text
    FROM analytics.customer_metrics ORDER BY customer_id`.pipe(
      Effect.map((rows) =>
        rows.map((r) => `${r.id} ${r.total_orders} ${canonical(r.lifetime_value)} ${r.last_order_date}`)
      )
    )
)

/** Exact decimals as integers of 10^-scale (amounts have at most 4 decimals). */
const scale = 4
const toUnits = (text: string): bigint => {
  const [int, frac = ""] = text.split(".")
  return BigInt(int!) * 10n ** BigInt(scale) + BigInt((frac + "0".repeat(scale)).slice(0, scale))
}
const canonical = (text: string): string => {
  const units = toUnits(text)
  const int = units / 10n ** BigInt(scale)
  const frac = String(units % 10n ** BigInt(scale)).padStart(scale, "0").replace(/0+$/, "")
  return frac === "" ? String(int) : `${int}.${frac}`
}

/** The model: the metrics computed in plain TypeScript from the rows of `raw.orders`. */
const model = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ customer_id: string; amount: string; order_date: string }>`
    SELECT customer_id::text, amount::text, order_date::text FROM raw.orders`.pipe(
      Effect.map((orders) => {
        const per = new Map<bigint, { n: number; units: bigint; last: string }>()
        for (const o of orders) {
          const id = BigInt(o.customer_id)
          const m = per.get(id) ?? { n: 0, units: 0n, last: "" }
          per.set(id, {
            n: m.n + 1,
            units: m.units + toUnits(o.amount),
            last: o.order_date > m.last ? o.order_date : m.last
          })
        }
        return [...per].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, m]) =>
          `${id} ${m.n} ${
            canonical(
              `${m.units / 10n ** BigInt(scale)}.${String(m.units % 10n ** BigInt(scale)).padStart(scale, "0")}`
            )
          } ${m.last}`
        )
      })
    )
)

for (const backend of Testing.backends()) {
  layer(appLayer(backend), { timeout: "60 seconds", excludeTestServices: true })(
    `analytics.customer_metrics [${backend.name}]`,
    (it) => {
      it.effect.prop(
        "after any sequence of daily-revenue runs and re-runs (with changed orders) it equals the model of raw.orders",
        [
          Arbitrary.array(
            Arbitrary.all({
              day: Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))),
              version: Arbitrary.schema(Schema.Literals([0, 1]))
            }),
            { minLength: 1, maxLength: 6 }
          )
        ],
        ([runs]) =>
          Effect.gen(function*() {
            yield* reset
            const files = yield* OrderFiles
            const pipelines = files.map((directory) => DailyRevenue.make(directory, { retry: noRetry }))
            for (const run of runs) yield* Pipeline.run(pipelines[run.version]!, day(run.day))
            const expected = yield* model
            assert.isNotEmpty(expected)
            assert.deepStrictEqual(yield* metrics, expected)
          }),
        { arbitrary: { runs: 6 } }
      )

      it.effect("a run failing mid-way leaves raw.orders and the metrics as before", () =>
        Effect.gen(function*() {
          yield* reset
          const [first, second] = yield* OrderFiles
          yield* Pipeline.run(DailyRevenue.make(first!, { retry: noRetry }), day(0))
          const before = yield* metrics
          const orders = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql`SELECT count(*)::int AS n FROM raw.orders`)
          // the other version of the day, failing after several batches were loaded
          const failing = Source.make("failing", (partition) =>
            Stream.concat(
              JsonLinesSource.make({ directory: second! }).extract(partition),
              Stream.fail(
                new SourceError.SourceError({ source: "failing", reason: new SourceError.NotFound({ message: "cut" }) })
              )
            ))
          const pipeline = Pipeline.make({
            name: DailyRevenue.name,
            source: failing,
            transform: OrderTransform,
            sink: DailyRevenue.sink,
            batchSize: 7,
            retry: noRetry
          })
          const exit = yield* Effect.exit(Pipeline.run(pipeline, day(0)))
          assert.isTrue(Exit.isFailure(exit))
          assert.deepStrictEqual(yield* metrics, before)
          assert.deepStrictEqual(
            yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql`SELECT count(*)::int AS n FROM raw.orders`),
            orders
          )
        }))

      it.effect("the migration's full recompute (step.all) rebuilds the metrics of orders loaded before it", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* reset
          const [first] = yield* OrderFiles
          for (const i of [0, 1, 2]) yield* Pipeline.run(DailyRevenue.make(first!, { retry: noRetry }), day(i))
          yield* sql`DELETE FROM analytics.customer_metrics WHERE customer_id % 2 = 0`
          yield* sql`UPDATE analytics.customer_metrics SET total_orders = 0`
          yield* sql.withTransaction(CustomerMetrics.step.all)
          assert.deepStrictEqual(yield* metrics, yield* model)
          // the migrations are applied once: running the set again applies nothing
          const applied = yield* Migrations.run({
            name: "daily-revenue",
            table: "raw.daily_revenue_migrations",
            migrations: Tables.migrations
          })
          assert.deepStrictEqual(applied, [])
        }))
    }
  )
}
