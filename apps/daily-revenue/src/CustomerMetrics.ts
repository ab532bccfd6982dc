/**
 * `analytics.customer_metrics(customer_id, total_orders, lifetime_value, last_order_date)`: per
 * customer, the count, sum of amounts and latest date of their orders in `raw.orders`.
 *
 * It is kept by the daily-revenue load itself, as a derived step of the partition replacement of
 * `raw.orders`, in the same transaction: the customers of the day's old rows (captured before
 * they are deleted) and of its new rows are recomputed from `raw.orders` — never incremented —
 * so re-running a day, or running days in any order, gives the metrics of `raw.orders` as it is;
 * a customer left without orders loses its row.
 *
 * @since 0.1.0
 */
import { Merge } from "@sluice/sql"

/**
 * The derived step recomputing the metrics of the customers a load touched; `step.all`
 * recomputes every customer.
 *
 * @since 0.1.0
 * @category derived
 */
export const step = Merge.recompute({
  table: "analytics.customer_metrics",
  key: ["customer_id"],
  from: { table: "raw.orders", partitionColumn: "order_date" },
  measures: [
    { column: "total_orders", aggregate: "count" },
    { column: "lifetime_value", aggregate: "sum", of: "amount" },
    { column: "last_order_date", aggregate: "max", of: "order_date" }
  ]
})
