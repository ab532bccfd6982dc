/**
 * The customers pipeline: the customer feed of day D (see {@link Customer}) is decoded and
 * merged into `raw.customers` by `customer_id`: the latest change of a customer wins by
 * `updated_at` (ties to the later day, then to the later line of the day), whatever the order the
 * changes and the days arrive in; a deletion deletes the customer and leaves a tombstone in `raw.customers_tombstones`, so a
 * late, older change does not bring it back; a change without a `customer_id` is dead-lettered
 * (`MissingKey`).
 *
 * The partition only selects which day of the feed is read: re-running any day, in any order,
 * converges on the same table.
 *
 * @since 0.1.0
 */
import { Partition, Pipeline, type RetryPolicy } from "@sluice/core"
import { Merge } from "@sluice/sql"
import { type CustomerChange, CustomerTransform, toRow } from "./Customer.ts"
import * as CustomerFeed from "./CustomerFeed.ts"

/**
 * The pipeline's name, as used by the CLI and in `sluice.runs`.
 *
 * @since 0.1.0
 * @category constants
 */
export const name = "customers-merge"

/**
 * The first day of the customer feed.
 *
 * @since 0.1.0
 * @category constants
 */
export const startDate = Partition.makeUnsafe("2024-01-01")

/**
 * How `raw.customers` is merged (also used by the migration creating its tombstone table).
 *
 * @since 0.1.0
 * @category sinks
 */
export const spec: Merge.Spec<CustomerChange> = {
  table: "raw.customers",
  key: ["customer_id"],
  orderBy: "updated_at",
  deleted: "deleted",
  columns: [
    { name: "customer_id", type: "bigint" },
    { name: "name", type: "text" },
    { name: "email", type: "text" },
    { name: "city", type: "text" },
    { name: "updated_at", type: "timestamptz" },
    { name: "deleted", type: "bool" }
  ],
  toRow
}

/**
 * Merges customer changes into `raw.customers`.
 *
 * @since 0.1.0
 * @category sinks
 */
export const sink = Merge.make(spec)

/**
 * Defines the pipeline reading from `location`: `generated` (or `generated:<seed>`) for the feed
 * generated in memory, or a folder of `YYYY-MM-DD.jsonl` files.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 * import * as CustomersMerge from "@sluice-app/daily-revenue/CustomersMerge"
 *
 * const program = Pipeline.run(CustomersMerge.make("generated"), Partition.makeUnsafe("2024-03-01"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (location: string, options: { readonly retry?: RetryPolicy.RetryPolicy | undefined } = {}) =>
  Pipeline.make({
    name,
    description: "Customer changes merged into raw.customers by customer_id (latest updated_at wins, deletes)",
    source: CustomerFeed.source(location),
    transform: CustomerTransform,
    sink,
    retry: options.retry,
    // the feed is known to send a few changes without a customer_id
    failureThreshold: 0.15,
    batchSize: 1_000
  })
