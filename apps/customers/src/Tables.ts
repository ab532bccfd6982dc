/**
 * The customers app's tables: three slowly changing dimensions of the customer change feed,
 * declared as `Scd` specs, and the migrations that create them (with their own migrations
 * table, `raw.customers_migrations`). No strategy SQL is written here: `Scd` generates it.
 *
 * Each dimension has its own change log, because each is loaded by its own pipeline: a re-run
 * of one pipeline replaces its log's partition and recomputes its dimension, never another's.
 *
 * | pipeline | change log | dimension |
 * | --- | --- | --- |
 * | `customers-scd1` | `raw.customer_changes_scd1` | `analytics.dim_customer_scd1` (type 1, deletes delete) |
 * | `customers-scd2` | `raw.customer_changes_scd2` | `analytics.dim_customer_scd2` (type 2 on name and city, deletes close) |
 * | `customers-scd3` | `raw.customer_changes_scd3` | `analytics.dim_customer_scd3` (type 3: previous_name, previous_city) |
 *
 * The change logs are partitioned by `file_date`, the date of the file a change came in.
 *
 * @since 0.1.0
 */
import { Scd } from "@sluice/sql"
import { DateTime, type Effect } from "effect"
import type { SqlClient } from "effect/sql"
import type { Customer } from "./Customer.ts"

const spec = {
  partitionColumn: "file_date",
  key: { name: "customer_id", type: "bigint" },
  changedAt: "changed_at",
  deleted: "is_deleted",
  attributes: [
    { name: "name", type: "text" },
    { name: "city", type: "text" },
    { name: "email", type: "text" }
  ],
  toChange: (c: Customer): Scd.Change => ({
    key: c.customer_id,
    changedAt: DateTime.toEpochMillis(c.changed_at),
    values: [c.name ?? null, c.city ?? null, c.email ?? null],
    deleted: c.deleted
  })
} as const

/**
 * Type 1: the latest name, city and email of every customer; a deleted customer is removed.
 *
 * @since 0.1.0
 * @category dimensions
 */
export const scd1 = Scd.type1<Customer>({
  ...spec,
  changes: "raw.customer_changes_scd1",
  dimension: "analytics.dim_customer_scd1",
  deletes: "delete"
})

/**
 * Type 2: a version per change of name or city (a new email alone updates the version); a
 * deleted customer's current version is closed.
 *
 * @since 0.1.0
 * @category dimensions
 */
export const scd2 = Scd.type2<Customer>({
  ...spec,
  changes: "raw.customer_changes_scd2",
  dimension: "analytics.dim_customer_scd2",
  tracked: ["name", "city"],
  deletes: "close"
})

/**
 * Type 3: the latest values, with `previous_name` and `previous_city`; a deleted customer is removed.
 *
 * @since 0.1.0
 * @category dimensions
 */
export const scd3 = Scd.type3<Customer>({
  ...spec,
  changes: "raw.customer_changes_scd3",
  dimension: "analytics.dim_customer_scd3",
  tracked: ["name", "city"],
  deletes: "delete"
})

/**
 * @since 0.1.0
 * @category migrations
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_create_customer_scd1": scd1.createTables,
  "0002_create_customer_scd2": scd2.createTables,
  "0003_create_customer_scd3": scd3.createTables
}
