/**
 * The daily-revenue app's tables, created by its own migrations (run through effect's `Migrator`
 * with their own migrations table, `raw.daily_revenue_migrations`).
 *
 * - `raw.orders`: one row per good order, partitioned by `order_date`; its columns are declared by
 *   {@link orders}, and it evolves additively (`loyalty_points` was added that way, see `DailyRevenue.setup`).
 * - `analytics.daily_revenue(date, category, revenue, order_count)`: rebuilt per date from `raw.orders`.
 * - `analytics.customer_metrics(customer_id, total_orders, lifetime_value, last_order_date)`: recomputed
 *   per touched customer from `raw.orders` ({@link CustomerMetrics}).
 * - `raw.customers` (and `raw.customers_tombstones`): merged by `customer_id` ({@link CustomersMerge}), with
 *   `Merge`'s own column `sluice_partition` (the day whose load wrote the version).
 *
 * `amount` and `revenue` are `numeric`: money is kept exactly, never as a float.
 *
 * @since 0.1.0
 */
import { Merge, type TableEvolution } from "@sluice/sql"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as CustomerMetrics from "./CustomerMetrics.ts"
import * as CustomersMerge from "./CustomersMerge.ts"

/**
 * The columns of `raw.orders`, as its loads write them. Columns added here are added to the table
 * (with their defaults) by `TableEvolution.evolve` at set-up, or by the load itself (its contract
 * evolves them); a drop, rename or type change needs a new table version instead.
 *
 * @since 0.1.0
 * @category tables
 */
export const orders: TableEvolution.Spec = {
  table: "raw.orders",
  columns: [
    { name: "order_date", type: "date", nullable: false },
    { name: "order_id", type: "text", nullable: false },
    { name: "customer_id", type: "bigint", nullable: false },
    { name: "product_category", type: "text", nullable: false },
    { name: "amount", type: "numeric", nullable: false },
    { name: "currency", type: "text", nullable: false, default: "USD" },
    { name: "loyalty_points", type: "int" }
  ],
  primaryKey: ["order_date", "order_id"]
}

/**
 * @since 0.1.0
 * @category migrations
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_create_orders": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SCHEMA IF NOT EXISTS raw`
    yield* sql`CREATE SCHEMA IF NOT EXISTS analytics`
    yield* sql`
      CREATE TABLE IF NOT EXISTS raw.orders (
        order_date date NOT NULL,
        order_id text NOT NULL,
        customer_id bigint NOT NULL CHECK (customer_id > 0),
        product_category text NOT NULL,
        amount numeric NOT NULL CHECK (amount >= 0),
        currency text NOT NULL,
        PRIMARY KEY (order_date, order_id)
      )`
    yield* sql`
      CREATE TABLE IF NOT EXISTS analytics.daily_revenue (
        date date NOT NULL,
        category text NOT NULL,
        revenue numeric NOT NULL,
        order_count integer NOT NULL,
        PRIMARY KEY (date, category)
      )`
  }),
  "0002_create_customer_metrics": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`
      CREATE TABLE IF NOT EXISTS analytics.customer_metrics (
        customer_id bigint PRIMARY KEY,
        total_orders integer NOT NULL,
        lifetime_value numeric NOT NULL,
        last_order_date date NOT NULL
      )`
    // the metrics recompute a customer's orders across all dates
    yield* sql`CREATE INDEX IF NOT EXISTS orders_customer_id ON raw.orders (customer_id)`
    // orders loaded before this migration
    yield* CustomerMetrics.step.all
  }),
  "0003_create_customers": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`
      CREATE TABLE IF NOT EXISTS raw.customers (
        customer_id bigint PRIMARY KEY,
        name text NOT NULL,
        email text,
        city text NOT NULL,
        updated_at timestamptz NOT NULL
      )`
    yield* Merge.createTombstoneTable(CustomersMerge.spec)
  }),
  // the partition of each version (ties on updated_at go to the later day), added to existing tables too
  "0004_merge_customers_by_partition": Merge.migrate(CustomersMerge.spec)
}
