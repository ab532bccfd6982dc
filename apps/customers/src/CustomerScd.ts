/**
 * The customers pipelines: the customer changes of day D (a folder of JSON Lines files) are
 * decoded and checked, dead-lettered or loaded into a change log (partition D), and the
 * dimension is brought up to date for the customers they touch — all in the load's single
 * transaction. One pipeline per dimension type: `customers-scd1`, `customers-scd2`,
 * `customers-scd3` (see {@link Tables}).
 *
 * @since 0.1.0
 */
import { JsonLinesSource, Partition, Pipeline, type RetryPolicy } from "@sluice/core"
import { Migrations } from "@sluice/sql"
import { Effect } from "effect"
import { CustomerTransform } from "./Customer.ts"
import * as Tables from "./Tables.ts"

/**
 * The dimension types, each with its pipeline.
 *
 * @since 0.1.0
 * @category models
 */
export type Type = 1 | 2 | 3

/**
 * @since 0.1.0
 * @category constants
 */
export const types: ReadonlyArray<Type> = [1, 2, 3]

/**
 * The pipeline of each type, as used by the CLI and in `sluice.runs`.
 *
 * @since 0.1.0
 * @category constants
 */
export const names = { 1: "customers-scd1", 2: "customers-scd2", 3: "customers-scd3" } as const satisfies Record<
  Type,
  string
>

/**
 * What each pipeline maintains, for the CLI.
 *
 * @since 0.1.0
 * @category constants
 */
export const descriptions = {
  1: "Customer changes into analytics.dim_customer_scd1: latest values, overwritten in place (type 1)",
  2: "Customer changes into analytics.dim_customer_scd2: a version per change of name or city (type 2)",
  3: "Customer changes into analytics.dim_customer_scd3: latest values with previous name and city (type 3)"
} as const satisfies Record<Type, string>

/**
 * The first day of the customer changes feed.
 *
 * @since 0.1.0
 * @category constants
 */
export const startDate = Partition.makeUnsafe("2024-03-01")

/**
 * The dimension of each type.
 *
 * @since 0.1.0
 * @category constants
 */
export const dimensions = { 1: Tables.scd1, 2: Tables.scd2, 3: Tables.scd3 } as const

/**
 * Defines the pipeline of a dimension type reading the folder `directory`.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 * import { CustomerScd } from "@sluice-app/customers"
 *
 * const program = Pipeline.run(CustomerScd.make(2, "data/customers"), Partition.makeUnsafe("2024-03-05"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  type: Type,
  directory: string,
  options: { readonly retry?: RetryPolicy.RetryPolicy | undefined } = {}
) =>
  Pipeline.make({
    name: names[type],
    description: descriptions[type],
    source: JsonLinesSource.make({ directory }),
    transform: CustomerTransform,
    sink: dimensions[type].sink,
    retry: options.retry,
    // a day's file is small (tens of lines): two bad lines in forty is no incident yet
    failureThreshold: 0.1,
    batchSize: 5_000
  })

/**
 * Creates the app's tables (idempotent).
 *
 * @since 0.1.0
 * @category migrations
 */
export const setup = Migrations.run({
  name: "customers",
  table: "raw.customers_migrations",
  migrations: Tables.migrations
}).pipe(Effect.asVoid)
