/**
 * The daily revenue pipeline: orders of day D are extracted (a folder of JSON Lines files or the
 * orders HTTP API, with retries), decoded and checked, dead-lettered or loaded into `raw.orders`
 * (partition D); then `analytics.daily_revenue` for D is rebuilt from `raw.orders`, and
 * `analytics.customer_metrics` recomputed for the customers of D's old and new orders — all in the
 * load's single transaction.
 *
 * `raw.orders` is loaded under a contract ({@link contract}): fields the order schema does not declare
 * (`channel`, `coupon`, …) are dropped and counted (`sluice_contract_values_discarded_total`), and
 * the declared `currency` and `loyalty_points` columns are added to the table if it lacks them, with
 * their defaults (`USD`, NULL) for the orders already there.
 *
 * @since 0.1.0
 */
import {
  Contract,
  HttpSource,
  JsonLinesSource,
  Partition,
  Pipeline,
  RetryPolicy,
  SchemaRegistry,
  type Source
} from "@sluice/core"
import { Migrations, PartitionReplace, TableContract, TableEvolution } from "@sluice/sql"
import { Effect, type FileSystem, Option } from "effect"
import type { HttpClient } from "effect/http"
import type { SqlClient } from "effect/sql"
import * as CustomerMetrics from "./CustomerMetrics.ts"
import { Order, OrderTransform } from "./Order.ts"
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
 * What a load of `raw.orders` rebuilds for its partition, in its transaction: `analytics.daily_revenue`
 * for the date, and `analytics.customer_metrics` for the customers of the date's old and new orders.
 *
 * @since 0.1.0
 * @category sinks
 */
export const derived: ReadonlyArray<PartitionReplace.DerivedStep> = [
  PartitionReplace.rebuild({
    table: "analytics.daily_revenue",
    partitionColumn: "date",
    columns: ["date", "category", "revenue", "order_count"],
    select: (sql, partition) => revenueOf(sql, "raw.orders", partition)
  }),
  CustomerMetrics.step
]

/**
 * The revenue of a date per category, from an orders table (`raw.orders`, or a version of it being
 * rebuilt by a replay): the one definition of `analytics.daily_revenue`'s rows.
 *
 * @since 0.1.0
 * @category sinks
 */
export const revenueOf = (sql: SqlClient.SqlClient, orders: string, date: string) =>
  sql`SELECT order_date, product_category, sum(amount), count(*)::int
      FROM ${sql(orders)} WHERE order_date = ${date}
      GROUP BY order_date, product_category`

/**
 * The contract of `raw.orders`: undeclared fields are dropped and counted (`discard_value`); the
 * declared `currency` and `loyalty_points` may be added to the table (`evolve`).
 *
 * @since 0.1.0
 * @category sinks
 */
export const contract = Contract.make("discard_value", { currency: "evolve", loyalty_points: "evolve" })

/**
 * Loads `raw.orders` by partition replacement under {@link contract} and rebuilds
 * `analytics.daily_revenue` and `analytics.customer_metrics` for the partition.
 *
 * @since 0.1.0
 * @category sinks
 */
export const sink = TableContract.partitionReplace<Order>({
  table: Tables.orders.table,
  partitionColumn: "order_date",
  columns: Tables.orders.columns,
  toRow: (o) => [
    o.order_date,
    o.order_id,
    o.customer_id,
    o.product_category,
    o.amount,
    o.currency,
    o.loyalty_points
  ],
  contract,
  undeclared: Contract.undeclaredFields(Order),
  derived
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
 * The schema registry's subject of the order schema.
 *
 * @since 0.1.0
 * @category schemas
 */
export const schemaSubject = "daily-revenue-orders"

/**
 * Registers {@link Order} under {@link schemaSubject} in the `SchemaRegistry` of the context (the
 * CLI's `SqlSluice.layer` provides one): an identical schema keeps its version, a compatible one
 * becomes the next version, an incompatible one fails with `SchemaIncompatible`. Without a
 * registry in the context, nothing is registered.
 *
 * @since 0.1.0
 * @category schemas
 */
export const registerSchema = Effect.flatMap(
  Effect.serviceOption(SchemaRegistry.SchemaRegistry),
  Option.match({
    onNone: () => Effect.void,
    onSome: (registry) => Effect.asVoid(registry.register(schemaSubject, Order))
  })
)

/**
 * Creates the app's tables, and evolves `raw.orders` additively to {@link Tables.orders} (idempotent).
 * Evolving here rather than in the first load keeps loads from holding the `ALTER TABLE` lock.
 * Then registers the order schema ({@link registerSchema}).
 *
 * @since 0.1.0
 * @category migrations
 */
export const setup = Migrations.run({
  name: "daily-revenue",
  table: "raw.daily_revenue_migrations",
  migrations: Tables.migrations
}).pipe(
  Effect.andThen(TableEvolution.evolve(Tables.orders)),
  Effect.andThen(registerSchema),
  Effect.asVoid
)
