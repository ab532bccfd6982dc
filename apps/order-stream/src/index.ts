/**
 * The order-stream sample app: order events over NATS JetStream into `raw.orders` and
 * `analytics.daily_revenue`, with the daily-revenue app's definitions.
 *
 * @since 0.1.0
 */
export * as Commands from "./Commands.ts"
export * as OrderStream from "./OrderStream.ts"
