/**
 * The daily-revenue app's tables, created by its own migrations (run through effect's `Migrator`
 * with their own migrations table, `raw.daily_revenue_migrations`).
 *
 * - `raw.orders`: one row per good order, partitioned by `order_date`.
 * - `analytics.daily_revenue(date, category, revenue, order_count)`: rebuilt per date from `raw.orders`.
 *
 * `amount` and `revenue` are `numeric`: money is kept exactly, never as a float.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

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
  })
}
