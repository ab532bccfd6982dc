/**
 * The daily revenue sample app.
 *
 * @since 0.1.0
 */
export * as Customer from "./Customer.ts"
export * as CustomerFeed from "./CustomerFeed.ts"
export * as CustomerMetrics from "./CustomerMetrics.ts"
export * as CustomersMerge from "./CustomersMerge.ts"
export * as DailyRevenue from "./DailyRevenue.ts"
export * as Generator from "./Generator.ts"
export * as Order from "./Order.ts"
export * as OrdersServer from "./OrdersServer.ts"
export * as Tables from "./Tables.ts"
