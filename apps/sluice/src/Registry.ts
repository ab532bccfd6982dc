/**
 * Every sample pipeline, registered for the CLI, and the layer that runs them.
 *
 * @since 0.1.0
 */
import { NodeHttpClient } from "@effect/platform-node"
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { Registry } from "@sluice/cli"
import { Backfill } from "@sluice/core"
import { Database, SqlSluice } from "@sluice/sql"
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
  })
]

/**
 * What the pipeline commands need: the database (`DATABASE_URL`, else embedded PGlite under
 * `.sluice/`), Sluice's SQL services, a local backfill executor and an HTTP client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(SqlSluice.layer, Backfill.Backfill.layerLocal, NodeHttpClient.layerUndici).pipe(
  Layer.provideMerge(Database.layer)
)
