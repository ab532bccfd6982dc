/**
 * Every sample pipeline, registered for the CLI, and the layer that runs them.
 *
 * @since 0.1.0
 */
import { NodeHttpClient } from "@effect/platform-node"
import { CustomerScd } from "@sluice-app/customers"
import { CustomersMerge, DailyRevenue } from "@sluice-app/daily-revenue"
import { Events } from "@sluice-app/events"
import { OrderStream } from "@sluice-app/order-stream"
import { Registry } from "@sluice/cli"
import { Backfill } from "@sluice/core"
import { Database, SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
import { Effect, Layer } from "effect"

/**
 * @since 0.1.0
 * @category registry
 */
export const entries = [
  Registry.entry({
    name: DailyRevenue.name,
    description: "Orders per day into raw.orders; revenue per day and category into analytics.daily_revenue",
    defaultSource: "data/orders",
    startDate: DailyRevenue.startDate,
    make: (source) => Effect.succeed(DailyRevenue.make(source)),
    setup: DailyRevenue.setup
  }),
  Registry.entry({
    name: CustomersMerge.name,
    description: "Customer changes merged into raw.customers by customer_id (latest updated_at wins; deletes; " +
      "--source generated[:seed] or a folder)",
    defaultSource: "generated",
    startDate: CustomersMerge.startDate,
    make: (source) => Effect.succeed(CustomersMerge.make(source)),
    setup: DailyRevenue.setup
  }),
  ...CustomerScd.types.map((type) =>
    Registry.entry({
      name: CustomerScd.names[type],
      description: CustomerScd.descriptions[type],
      defaultSource: "data/customers",
      startDate: CustomerScd.startDate,
      make: (source) => Effect.succeed(CustomerScd.make(type, source)),
      setup: CustomerScd.setup
    })
  ),
  Registry.entry({
    name: Events.name,
    description: "Event lines per day appended to raw.events_log; latest version per event in analytics.events " +
      `(lookback ${Events.lookback} days)`,
    defaultSource: "data/events",
    startDate: Events.startDate,
    make: (source) => Effect.succeed(Events.make(source)),
    setup: Events.setup
  })
]

/**
 * The stream pipelines: the `dlq` commands handle their dead letters (same store, pipeline
 * `order-stream`); `stream` and `replay` run them.
 *
 * @since 0.1.0
 * @category registry
 */
export const streams = [
  Registry.streamEntry({
    name: OrderStream.name,
    description: `Order events from NATS JetStream (${OrderStream.stream}) into raw.orders and analytics.daily_revenue`,
    consume: `sluice stream ${OrderStream.name}`,
    replay: `sluice replay ${OrderStream.name} --from-seq N|--from-time T`,
    setup: DailyRevenue.setup
  })
]

/**
 * What the pipeline commands need: the database (`DATABASE_URL`, else embedded PGlite under
 * `.sluice/`), Sluice's SQL services (the processed-event ledger of stream pipelines included), a local backfill executor and an HTTP client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(
  SqlSluice.layer,
  SqlProcessedEventLedger.layer,
  Backfill.Backfill.layerLocal,
  NodeHttpClient.layerUndici
).pipe(Layer.provideMerge(Database.layer))
