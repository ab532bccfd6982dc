/**
 * The orders feed changes its record mid-month (the generator's `evolvedFrom`): before the change
 * orders have no `currency` and no `loyalty_points`, from it on they have both. On every backend, a
 * database loaded by the pipeline as it was before the change (`raw.orders` without
 * `loyalty_points`) is backfilled across the change by the current pipeline: the first load adds the
 * column in its transaction, old days decode with the defaults (USD, NULL), every day equals the
 * generator's manifest, and undeclared fields are dropped and counted by the table's contract.
 */
import { assert, layer } from "@effect/vitest"
import { DailyRevenue, Generator, type Order, Tables } from "@sluice-app/daily-revenue"
import { Contract, Pipeline } from "@sluice/core"
import { PartitionReplace, Testing } from "@sluice/sql"
import { Effect, FileSystem, Metric } from "effect"
import { SqlClient } from "effect/sql"
import { assertLoaded, backfill, date, layerFor, pipelineOn, recordsOfFile, reset } from "./fixtures.ts"

const evolvedFrom = date("2024-03-30")

/** `raw.orders` as the pipeline loaded it before the change: no loyalty_points, no contract. */
const sinkBeforeTheChange = PartitionReplace.make<Order.Order>({
  table: "raw.orders",
  partitionColumn: "order_date",
  columns: Tables.orders.columns.filter((column) => column.name !== "loyalty_points"),
  toRow: (o) => [o.order_date, o.order_id, o.customer_id, o.product_category, o.amount, o.currency],
  derived: DailyRevenue.derived
})

const pipelineBeforeTheChange = (directory: string) => ({ ...pipelineOn(directory), sink: sinkBeforeTheChange })

const generate = Effect.fnUntraced(function*() {
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-evolution-" })
  const manifest = yield* Generator.generate({ directory, start: date("2024-03-25"), days: 10, seed: 5, evolvedFrom })
  return { directory, manifest, partitions: manifest.days.map((day) => day.date) }
})

/** The good lines of a day's file, parsed. */
const goodRecords = Effect.fnUntraced(function*(directory: string, day: Generator.DayManifest) {
  const bad = new Set(day.badLines.map((line) => line.position))
  const records = yield* recordsOfFile(`${directory}/${day.file}`)
  return [...records].filter(([position]) => !bad.has(position)).map(([, text]) =>
    JSON.parse(text) as Record<string, unknown>
  )
})

const discarded = (column: string) =>
  Effect.map(Metric.value(Contract.forColumn(Contract.valuesDiscarded, "raw.orders", column)), (s) => s.count)

const added = (column: string) =>
  Effect.map(Metric.value(Contract.forColumn(Contract.columnsAdded, "raw.orders", column)), (s) => s.count)

/** Every order with the evolved columns, in a stable order. */
const orders = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ readonly row: string }>`
    SELECT concat_ws('|', order_date, order_id, customer_id, amount, currency, loyalty_points) AS row
    FROM raw.orders ORDER BY order_date, order_id`.pipe(Effect.map((rows) => rows.map((r) => r.row))))

const loyaltyColumn = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ readonly type: string; readonly note: string | null }>`
    SELECT format_type(atttypid, atttypmod) AS type, col_description(attrelid, attnum) AS note
    FROM pg_attribute WHERE attrelid = 'raw.orders'::regclass AND attname = 'loyalty_points' AND NOT attisdropped`
)

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { excludeTestServices: true })(
    `schema evolution of the orders feed [${backend.name}]`,
    (it) => {
      it.effect(
        "a backfill across the change equals the manifest: the column is added in the load, old days get the defaults",
        () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* reset
            // the database before the change: DailyRevenue.setup added loyalty_points; take it away
            yield* sql`ALTER TABLE raw.orders DROP COLUMN IF EXISTS loyalty_points`
            const { directory, manifest, partitions } = yield* generate()
            const old = manifest.days.filter((day) => day.date < evolvedFrom)
            assert.deepStrictEqual(
              manifest.days.map((day) => day.evolution?.evolved),
              partitions.map((p) => p >= evolvedFrom)
            )
            // days before the change have neither field in their good lines; days after it always a currency
            for (const day of manifest.days) {
              const good = yield* goodRecords(directory, day)
              const evolved = day.evolution!.evolved
              assert.isTrue(good.every((o) => ("currency" in o) === evolved), `${day.date}: currency`)
              assert.strictEqual(good.some((o) => "loyalty_points" in o), evolved, `${day.date}: loyalty_points`)
            }

            // the pipeline before the change loads the old days
            const first = yield* backfill(pipelineBeforeTheChange(directory), old.map((day) => day.date), 2)
            assert.strictEqual(first.succeeded, old.length)
            assert.deepStrictEqual(yield* loyaltyColumn, [])

            // the current pipeline backfills the whole range, across the change
            const before = {
              channel: yield* discarded("channel"),
              coupon: yield* discarded("coupon"),
              added: yield* added("loyalty_points")
            }
            const report = yield* backfill(pipelineOn(directory), partitions, 3)
            assert.deepStrictEqual(
              report.outcomes.map((o) =>
                o._tag === "Succeeded"
                  ? [o.partition, o.report.read, o.report.loaded, o.report.deadLettered]
                  : [o.partition, o._tag]
              ),
              manifest.days.map((day) => [day.date, day.records, day.good, day.bad])
            )
            // the column was added by one load, declared (not marked as evolved by a contract)
            assert.deepStrictEqual(yield* loyaltyColumn, [{ type: "integer", note: null }])
            assert.strictEqual((yield* added("loyalty_points")) - before.added, 1)

            for (const day of manifest.days) {
              // orders, dead letters (positions, error types, original lines), revenue, ledger
              yield* assertLoaded(directory, day)
              // currencies and loyalty points, as the generator wrote them; defaults for the old days
              const byCurrency = yield* sql<
                { readonly currency: string; readonly orders: number; readonly points: number; readonly total: string }
              >`
              SELECT currency, count(*)::int AS orders, count(loyalty_points)::int AS points,
                     coalesce(sum(loyalty_points), 0)::text AS total
              FROM raw.orders WHERE order_date = ${day.date}::date GROUP BY currency ORDER BY currency`
              const evolution = day.evolution!
              assert.deepStrictEqual(
                Object.fromEntries(byCurrency.map((r) => [r.currency, r.orders])),
                evolution.currencies,
                `${day.date}: currencies`
              )
              assert.deepStrictEqual(
                {
                  orders: byCurrency.reduce((n, r) => n + r.points, 0),
                  total: byCurrency.reduce((n, r) => n + Number(r.total), 0)
                },
                evolution.loyaltyPoints,
                `${day.date}: loyalty points`
              )
              if (!evolution.evolved) {
                assert.deepStrictEqual(evolution, {
                  evolved: false,
                  currencies: { USD: day.good },
                  loyaltyPoints: { orders: 0, total: 0 }
                })
              }
            }
            assert.isAbove(manifest.days.at(-1)!.evolution!.loyaltyPoints.orders, 0)
            assert.isAbove(Object.keys(manifest.days.at(-1)!.evolution!.currencies).length, 1)

            // fields the order schema does not declare were dropped by the contract, each one counted
            let channel = 0
            let coupon = 0
            for (const day of manifest.days) {
              for (const o of yield* goodRecords(directory, day)) {
                if ("channel" in o) channel++
                if ("coupon" in o) coupon++
              }
            }
            assert.isAbove(channel, 0)
            assert.deepStrictEqual(
              {
                channel: (yield* discarded("channel")) - before.channel,
                coupon: (yield* discarded("coupon")) - before.coupon
              },
              { channel, coupon }
            )

            // re-running a day on either side of the change changes nothing
            const loaded = yield* orders
            yield* Pipeline.run(pipelineOn(directory), old[0]!.date)
            yield* Pipeline.run(pipelineOn(directory), evolvedFrom)
            assert.deepStrictEqual(yield* orders, loaded)
          }),
        { timeout: 120_000 }
      )
    }
  )
}
