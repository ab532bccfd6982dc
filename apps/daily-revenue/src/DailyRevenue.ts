/**
 * The daily revenue pipeline: orders of day D are extracted (a folder of JSON Lines files or the
 * orders HTTP API, with retries), decoded and checked, dead-lettered or loaded into `raw.orders`
 * (partition D); then `analytics.daily_revenue` for D is rebuilt from `raw.orders`, and
 * `analytics.customer_metrics` recomputed for the customers of D's old and new orders — all in the
 * load's single transaction.
 *
 * @since 0.1.0
 */
import { HttpSource, JsonLinesSource, Partition, Pipeline, RetryPolicy, type Source } from "@sluice/core"
import { Migrations, PartitionReplace } from "@sluice/sql"
import { Effect, type FileSystem } from "effect"
import type { HttpClient } from "effect/http"
import * as CustomerMetrics from "./CustomerMetrics.ts"
import { type Order, OrderTransform } from "./Order.ts"
import * as Tables from "./Tables.ts"

/**
 * The pipeline's name, as used by the CLI and in `sluice.runs`.
 *
 * @since 0.1.0
 * @category constants
 */
export const name = "daily-revenue"

/**
 * The first day of the orders feed.
 *
 * @since 0.1.0
 * @category constants
 */
export const startDate = Partition.makeUnsafe("2024-01-01")

/**
 * The source for a location: an `http(s)://` URL is the orders API (`GET <url>/orders?date=D`),
 * anything else a folder of `YYYY-MM-DD.jsonl` files.
 *
 * @since 0.1.0
 * @category sources
 */
export const source = (location: string): Source.Source<HttpClient.HttpClient | FileSystem.FileSystem> =>
  /^https?:\/\//i.test(location)
    ? HttpSource.byDate({ baseUrl: location, path: "/orders", param: "date" })
    : JsonLinesSource.make({ directory: location })

/**
 * Loads `raw.orders` by partition replacement and rebuilds `analytics.daily_revenue` for the partition.
 *
 * @since 0.1.0
 * @category sinks
 */
export const sink = PartitionReplace.make<Order>({
  table: "raw.orders",
  partitionColumn: "order_date",
  columns: [
    { name: "order_date", type: "date" },
    { name: "order_id", type: "text" },
    { name: "customer_id", type: "bigint" },
    { name: "product_category", type: "text" },
    { name: "amount", type: "numeric" },
    { name: "currency", type: "text" }
  ],
  toRow: (o) => [o.order_date, o.order_id, o.customer_id, o.product_category, o.amount, o.currency],
  derived: [
    PartitionReplace.rebuild({
      table: "analytics.daily_revenue",
      partitionColumn: "date",
      columns: ["date", "category", "revenue", "order_count"],
      select: (sql, partition) =>
        sql`SELECT order_date, product_category, sum(amount), count(*)::int
            FROM raw.orders WHERE order_date = ${partition}
            GROUP BY order_date, product_category`
    }),
    CustomerMetrics.step
  ]
})

/**
 * Defines the pipeline reading from `location`.
 *
 * @example
 * ```ts
 * import { Pipeline, Partition } from "@sluice/core"
 * import { DailyRevenue } from "@sluice-app/daily-revenue"
 *
 * const program = Pipeline.run(DailyRevenue.make("data/orders"), Partition.makeUnsafe("2024-03-01"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (location: string, options: { readonly retry?: RetryPolicy.RetryPolicy | undefined } = {}) =>
  Pipeline.make({
    name,
    description: "Orders per day into raw.orders, and revenue per day and category into analytics.daily_revenue",
    source: source(location),
    transform: OrderTransform,
    sink,
    key: (order) => order.order_id,
    retry: options.retry,
    batchSize: 5_000
  })

/**
 * Creates the app's tables (idempotent).
 *
 * @since 0.1.0
 * @category migrations
 */
export const setup = Migrations.run({
  name: "daily-revenue",
  table: "raw.daily_revenue_migrations",
  migrations: Tables.migrations
}).pipe(
  Effect.asVoid
)
