/**
 * `pnpm demo`: a month of daily revenue on the embedded database, end to end.
 *
 * 1. generates March 2024 of orders (a few percent of bad lines of many kinds) under
 *    `.sluice/demo/orders`, whose record gains `currency` and `loyalty_points` on the 16th (as
 *    `sluice generate-orders` does by default): the backfill evolves `raw.orders` as it goes;
 * 2. backfills the month through the real CLI (`sluice backfill`, with its progress bar);
 * 3. prints revenue per day and the dead letters by error type;
 * 4. re-runs one day (`sluice run`) and shows that its rows, aggregate and dead letters are
 *    unchanged (same fingerprint), while `sluice.runs` gained one run.
 *
 * Run it twice: every figure is the same, because every step is idempotent.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Generator } from "@sluice-app/daily-revenue"
import { Commands, Table } from "@sluice/cli"
import { Partition } from "@sluice/core"
import { Database } from "@sluice/sql"
import { Console, Effect, Ref, Schema } from "effect"
import { Command } from "effect/cli"
import { SqlClient } from "effect/sql"
import { root, version } from "./Cli.ts"

const directory = ".sluice/demo/orders"
const start = Partition.makeUnsafe("2024-03-01")
const end = Partition.makeUnsafe("2024-03-31")
const replayed = Partition.makeUnsafe("2024-03-15")

class DemoFailed extends Schema.TaggedError<DemoFailed>()("DemoFailed", { message: Schema.String }) {}

/** Runs one CLI command line in-process, as `pnpm sluice …` would, and returns its exit status. */
const cli = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    yield* Console.log(`\n$ pnpm sluice ${argv.join(" ")}`)
    const exitCode = yield* Ref.make<number>(Commands.ExitStatus.ok)
    yield* Command.runWith(root, { version })(argv).pipe(Effect.provideService(Commands.ExitCode, exitCode))
    return yield* Ref.get(exitCode)
  })

/** A digest of everything one partition owns: its orders, its revenue rows and its dead letters. */
const fingerprint = (partition: Partition.PartitionDate) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly orders: string; readonly revenue: string; readonly dead: string }>`
      SELECT
        (SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY order_id), '')) FROM raw.orders o
          WHERE order_date = ${partition}::date) AS orders,
        (SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY category), '')) FROM analytics.daily_revenue r
          WHERE date = ${partition}::date) AS revenue,
        (SELECT md5(coalesce(string_agg(concat_ws(',', stage, original_record, error_type, error), '|'
          ORDER BY original_record, error), '')) FROM sluice.dead_letters
          WHERE pipeline = 'daily-revenue' AND partition = ${partition}::date) AS dead`
    const [runs] = yield* sql<{ readonly runs: number }>`
      SELECT count(*)::int AS runs FROM sluice.runs WHERE pipeline = 'daily-revenue' AND partition = ${partition}::date`
    return {
      digest: `${row!.orders.slice(0, 8)}-${row!.revenue.slice(0, 8)}-${row!.dead.slice(0, 8)}`,
      runs: runs!.runs
    }
  })

const report = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const days = yield* sql<{ readonly date: string; readonly orders: number; readonly revenue: string }>`
    SELECT to_char(date, 'YYYY-MM-DD') AS date, sum(order_count)::int AS orders, sum(revenue)::text AS revenue
    FROM analytics.daily_revenue WHERE date BETWEEN ${start}::date AND ${end}::date
    GROUP BY date ORDER BY date`
  yield* Console.log("\nRevenue per day (analytics.daily_revenue)")
  yield* Console.log(Table.format(["date", "orders", "revenue"], days.map((d) => [d.date, d.orders, d.revenue])))
  const [total] = yield* sql<{ readonly revenue: string | null }>`
    SELECT sum(revenue)::text AS revenue FROM analytics.daily_revenue WHERE date BETWEEN ${start}::date AND ${end}::date`
  yield* Console.log(`month total: ${total?.revenue ?? "0"}`)
  const dead = yield* sql<{ readonly errorType: string; readonly count: number }>`
    SELECT error_type AS "errorType", count(*)::int AS count FROM sluice.dead_letters
    WHERE pipeline = 'daily-revenue' AND partition BETWEEN ${start}::date AND ${end}::date
    GROUP BY error_type ORDER BY count DESC, error_type`
  yield* Console.log("\nDead letters by error type (sluice.dead_letters)")
  yield* Console.log(Table.format(["error type", "count"], dead.map((d) => [d.errorType, d.count])))
})

const program = Effect.gen(function*() {
  const evolvedFrom = Generator.middleDay(start, 31)
  const manifest = yield* Generator.generate({ directory, start, days: 31, seed: 2024, badShare: 0.03, evolvedFrom })
  yield* Console.log(
    `Generated ${manifest.records} orders for ${start}..${end} in ${directory} (${manifest.bad} bad lines of ${
      Object.values(manifest.badByKind).filter((n) => n > 0).length
    } kinds; from ${evolvedFrom} orders carry currency and loyalty_points)`
  )

  const backfill = yield* cli(["backfill", "daily-revenue", "--start", start, "--end", end, "--source", directory])
  if (backfill !== Commands.ExitStatus.ok && backfill !== Commands.ExitStatus.alerted) {
    return yield* Effect.fail(new DemoFailed({ message: `backfill exited with status ${backfill}` }))
  }

  const before = yield* Effect.gen(function*() {
    yield* report
    return yield* fingerprint(replayed)
  }).pipe(Effect.provide(Database.layer))

  const rerun = yield* cli(["run", "daily-revenue", "--date", replayed, "--source", directory])
  if (rerun !== Commands.ExitStatus.ok && rerun !== Commands.ExitStatus.alerted) {
    return yield* Effect.fail(new DemoFailed({ message: `re-run exited with status ${rerun}` }))
  }
  const after = yield* fingerprint(replayed).pipe(Effect.provide(Database.layer))

  yield* Console.log(`\nRe-ran ${replayed}:`)
  yield* Console.log(`  fingerprint before ${before.digest} (${before.runs} run(s) recorded)`)
  yield* Console.log(`  fingerprint after  ${after.digest} (${after.runs} run(s) recorded)`)
  if (before.digest !== after.digest) {
    return yield* Effect.fail(new DemoFailed({ message: "the re-run changed the partition: it is not idempotent" }))
  }
  yield* Console.log("  unchanged: the re-run replaced the partition with identical rows and dead letters.")
})

program.pipe(
  Effect.provide(NodeServices.layer),
  Effect.catch((error) =>
    Effect.andThen(
      Console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`),
      Effect.sync(() => process.exit(1))
    )
  ),
  NodeRuntime.runMain
)
