/**
 * What every variant of the benchmark loads: one partition of orders into `raw.orders` (the
 * daily-revenue app's table, with its primary key), and the partition's revenue per category
 * rebuilt into `analytics.daily_revenue`, in one transaction; bad lines dead-lettered.
 *
 * The Sluice variants run the daily-revenue app's own source (its JSON Lines files), transform and
 * `raw.orders` spec;
 * the sink rebuilds `analytics.daily_revenue` only (the app also recomputes customer metrics,
 * which the limit and the hand-written loader do not do), and the pipeline has no key (the
 * duplicate-key check keeps every key of the partition in memory).
 */
import type { Order } from "../apps/daily-revenue/src/Order.ts"
import { OrderTransform } from "../apps/daily-revenue/src/Order.ts"
import { JsonLinesSource, Pipeline } from "../packages/core/src/index.ts"
import * as Merge from "../packages/sql/src/Merge.ts"
import * as PartitionReplace from "../packages/sql/src/PartitionReplace.ts"
import type * as Table from "../packages/sql/src/Table.ts"

/** The column definitions of `raw.orders` and `raw.orders_merged`, with the order id's constraint. */
const orderTableColumns = (orderIdConstraint: "NOT NULL" | "PRIMARY KEY") => `
    order_date date NOT NULL,
    order_id text ${orderIdConstraint},
    customer_id bigint NOT NULL CHECK (customer_id > 0),
    product_category text NOT NULL,
    amount numeric NOT NULL CHECK (amount >= 0),
    currency text NOT NULL`

/** The tables, as the app's first migration creates them; dead letters are Sluice's own table. */
export const ddl: ReadonlyArray<string> = [
  "DROP SCHEMA IF EXISTS raw CASCADE",
  "DROP SCHEMA IF EXISTS analytics CASCADE",
  "CREATE SCHEMA raw",
  "CREATE SCHEMA analytics",
  `CREATE TABLE raw.orders (${orderTableColumns("NOT NULL")}, PRIMARY KEY (order_date, order_id))`,
  `CREATE TABLE analytics.daily_revenue (
    date date NOT NULL,
    category text NOT NULL,
    revenue numeric NOT NULL,
    order_count integer NOT NULL,
    PRIMARY KEY (date, category)
  )`
]

/** The table of the merge variants: the orders upserted by `order_id`, with `Merge`'s partition column. */
export const mergedDdl: ReadonlyArray<string> = [
  `CREATE TABLE raw.orders_merged (${orderTableColumns("PRIMARY KEY")},
    ${Merge.partitionColumn} date NOT NULL DEFAULT '-infinity')`
]

/**
 * The in-database rebuild of the daily aggregate, as the limit runs it. `partition` is SQL that
 * stands for the partition, never its value: a bind parameter (`$1::date`) or a psql variable
 * (`:'partition'`, which psql quotes).
 */
export const aggregate = (partition: string): ReadonlyArray<string> => [
  `DELETE FROM analytics.daily_revenue WHERE date = ${partition}`,
  `INSERT INTO analytics.daily_revenue (date, category, revenue, order_count)
   SELECT order_date, product_category, sum(amount), count(*)::int FROM raw.orders
   WHERE order_date = ${partition} GROUP BY order_date, product_category`
]

/** The columns of `raw.orders` (and `raw.orders_merged`), and an order's values for them. */
const orderColumns: ReadonlyArray<Table.Column> = [
  { name: "order_date", type: "date" },
  { name: "order_id", type: "text" },
  { name: "customer_id", type: "bigint" },
  { name: "product_category", type: "text" },
  { name: "amount", type: "numeric" },
  { name: "currency", type: "text" }
]
const orderRow = (o: Order): ReadonlyArray<unknown> => [
  o.order_date,
  o.order_id,
  o.customer_id,
  o.product_category,
  o.amount,
  o.currency
]

export const sink = (load: "copy" | "unnest" = "copy") =>
  PartitionReplace.make<Order>({
    table: "raw.orders",
    partitionColumn: "order_date",
    columns: orderColumns,
    toRow: orderRow,
    derived: [
      PartitionReplace.rebuild({
        table: "analytics.daily_revenue",
        partitionColumn: "date",
        columns: ["date", "category", "revenue", "order_count"],
        select: (sql, partition) =>
          sql`SELECT order_date, product_category, sum(amount), count(*)::int
              FROM raw.orders WHERE order_date = ${partition}
              GROUP BY order_date, product_category`
      })
    ],
    load
  })

/** The daily-revenue pipeline's name. */
export const name = "daily-revenue"

/**
 * The daily-revenue app's source for a folder (`DailyRevenue.source`): its JSON Lines files. Made
 * here rather than imported with the app, so that a run loads only the modules it uses (the
 * app's index brings its generator and HTTP orders server, which would count in the peak RSS).
 */
export const source = (directory: string) => JsonLinesSource.make({ directory })

export const pipeline = (directory: string, load: "copy" | "unnest" = "copy") =>
  Pipeline.make({
    name,
    source: source(directory),
    transform: OrderTransform,
    sink: sink(load),
    batchSize: 5_000
  })

/**
 * The same orders upserted by `order_id` into `raw.orders_merged` (`Merge`, the latest arrival
 * winning: every order has its partition's date as its version), instead of replacing the partition.
 */
export const mergePipeline = (directory: string, load: "copy" | "unnest" = "copy") =>
  Pipeline.make({
    name: `${name}-merge`,
    source: source(directory),
    transform: OrderTransform,
    sink: Merge.make<Order>({
      table: "raw.orders_merged",
      key: ["order_id"],
      orderBy: "order_date",
      columns: orderColumns,
      toRow: orderRow,
      load
    }),
    batchSize: 5_000
  })
