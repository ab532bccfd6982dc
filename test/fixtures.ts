/**
 * Shared fixtures of the end-to-end tests: the layer of a database backend with everything the
 * daily-revenue pipeline needs, generated order files, ordered dumps of the tables a load writes,
 * and the check of a loaded day against the generator's manifest.
 */
import { NodeFileSystem, NodeHttpClient } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import { DailyRevenue, Generator } from "@sluice-app/daily-revenue"
import { Backfill, Partition, Pipeline, RetryPolicy, RunLedger } from "@sluice/core"
import { SeededRandom } from "@sluice/samples"
import { type Database, SqlSluice, type Testing } from "@sluice/sql"
import { Effect, FileSystem, Layer, References, Schema } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Sluice's SQL services, the app's tables, a local backfill executor, the file system and an
 * HTTP client on the database of `database`. Logs below `Error` are dropped: alerts and retries
 * are expected in these tests, and they are asserted on, not read.
 */
export const layerOn = <E>(database: Layer.Layer<Database.Services, E>) =>
  Layer.mergeAll(SqlSluice.layer, Backfill.Backfill.layerLocal, Layer.effectDiscard(DailyRevenue.setup)).pipe(
    Layer.provideMerge(database),
    Layer.merge(Layer.mergeAll(NodeFileSystem.layer, NodeHttpClient.layerUndici)),
    Layer.merge(Layer.succeed(References.MinimumLogLevel, "Error"))
  )

/** {@link layerOn} a fresh database of `backend`. */
export const layerFor = (backend: Testing.Backend) => layerOn(backend.layer)

/** Retries that keep the tests fast: 5, 10 and 20 ms, without jitter. */
export const fastRetry = RetryPolicy.make({
  baseDelay: "5 millis",
  maxDelay: "20 millis",
  maxRetries: 3,
  jitter: false
})

/** The daily-revenue pipeline on a folder or URL, retrying on {@link fastRetry}. */
export const pipelineOn = (location: string) => DailyRevenue.make(location, { retry: fastRetry })

/** The daily-revenue pipeline's type, whatever it reads from. */
export type OrdersPipeline = ReturnType<typeof pipelineOn>

export const date = Partition.makeUnsafe

/** `days` days of orders from `start` with `seed`, written to a fresh temporary folder. */
export const generate = Effect.fnUntraced(function*(options: {
  readonly start: string
  readonly days: number
  readonly seed: number
}) {
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-e2e-" })
  const manifest = yield* Generator.generate({
    directory,
    start: date(options.start),
    days: options.days,
    seed: options.seed
  })
  return { directory, manifest, partitions: manifest.days.map((day) => day.date) }
})

/** The non-blank lines of a file by 1-based physical line number: what a source must read. */
export const recordsOfFile = Effect.fnUntraced(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const records = new Map<number, string>()
  for (const [i, line] of (yield* fs.readFileString(path)).split("\n").entries()) {
    if (line.trim() !== "") records.set(i + 1, line)
  }
  return records
})

/** Empties every table a load writes, so that a test starts from an empty database. */
export const reset = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE raw.orders, analytics.daily_revenue, sluice.runs, sluice.dead_letters`
)

/** Every row a load writes (orders, revenue, dead letters), in a stable order, without run ids and times. */
export interface Dump {
  readonly orders: ReadonlyArray<string>
  readonly revenue: ReadonlyArray<string>
  readonly deadLetters: ReadonlyArray<string>
}

const line = (row: object) => JSON.stringify(Object.values(row))

/** The ordered dump of the tables a load writes; of one partition when `partition` is given. */
export const dump = Effect.fnUntraced(function*(partition?: string) {
  const sql = yield* SqlClient.SqlClient
  const where = (column: string) => partition === undefined ? sql`` : sql`WHERE ${sql(column)} = ${partition}::date`
  const orders = yield* sql`
    SELECT order_date::text, order_id, customer_id::text, product_category, amount::text, currency
    FROM raw.orders ${where("order_date")} ORDER BY order_date, order_id`
  const revenue = yield* sql`
    SELECT date::text, category, revenue::text, order_count
    FROM analytics.daily_revenue ${where("date")} ORDER BY date, category`
  const deadLetters = yield* sql`
    SELECT pipeline, partition::text, stage, position::float8 AS position, original_record, original_record_escaped,
           error_type, error
    FROM sluice.dead_letters ${where("partition")} ORDER BY partition, position, id`
  return { orders: orders.map(line), revenue: revenue.map(line), deadLetters: deadLetters.map(line) } satisfies Dump
})

/** One row of `sluice.runs`, as the tests look at it. */
export interface RunRow {
  readonly partition: string
  readonly status: string
  readonly read: number
  readonly loaded: number
  readonly dead: number
  readonly retries: number
  readonly error_type: string | null
}

/** Every run of the daily-revenue pipeline, oldest first. */
export const runs = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<RunRow>`
      SELECT partition::text AS partition, status, records_read::int4 AS read, records_loaded::int4 AS loaded,
             records_dead_lettered::int4 AS dead, retries, error_type
      FROM sluice.runs WHERE pipeline = ${DailyRevenue.name} ORDER BY started_at, run_id`
)

/** The latest run of each partition, from the ledger. */
export const latestRuns = Effect.flatMap(RunLedger.RunLedger, (ledger) => ledger.latest(DailyRevenue.name))

/** Runs each partition alone, one after the other. */
export const runEach = <A, R>(pipeline: Pipeline.Pipeline<A, R>, partitions: ReadonlyArray<Partition.PartitionDate>) =>
  Effect.forEach(partitions, (partition) => Pipeline.run(pipeline, partition), { discard: true })

/** Backfills `partitions`, in the order given, with the local executor. */
export const backfill = <A, R>(
  pipeline: Pipeline.Pipeline<A, R>,
  partitions: ReadonlyArray<Partition.PartitionDate>,
  concurrency: number
) =>
  Effect.flatMap(Backfill.Backfill, (executor) =>
    executor.run({
      pipeline: pipeline.name,
      partitions,
      concurrency,
      runPartition: (partition) => Pipeline.run(pipeline, partition)
    }))

/**
 * A decimal in canonical form (no trailing fractional zeros, no trailing point), so that money is
 * compared as text, exactly: `"120.50"` and `"120.5"` are the same amount, `"120.5000001"` is not.
 */
export const canonicalDecimal = (text: string): string => {
  assert.match(text, /^\d+(\.\d+)?$/, "a plain decimal")
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text
}

const byCategory = (a: { readonly category: string }, b: { readonly category: string }) =>
  a.category < b.category ? -1 : a.category > b.category ? 1 : 0

const decodeOrderId = Schema.decodeUnknownSync(Schema.fromJsonString(Schema.Struct({ order_id: Schema.String })))

/**
 * Checks that a day is loaded exactly as the generator wrote it, reading the file itself for the
 * lines: the good lines' orders are in `raw.orders`, every bad line is a dead letter at its
 * position with its original text and the error type of its kind, loaded + dead-lettered is the
 * file's non-blank lines, `analytics.daily_revenue` is the manifest's revenue to the cent, and the
 * latest run recorded those counts.
 */
export const assertLoaded = Effect.fnUntraced(function*(directory: string, day: Generator.DayManifest) {
  const sql = yield* SqlClient.SqlClient
  const records = yield* recordsOfFile(`${directory}/${day.file}`)
  const badKindAt = new Map(day.badLines.map((bad) => [bad.position, bad.kind]))

  const orderIds = yield* sql<{ readonly order_id: string }>`
    SELECT order_id FROM raw.orders WHERE order_date = ${day.date}::date`
  const goodIds = [...records].filter(([position]) => !badKindAt.has(position)).map(([, text]) =>
    decodeOrderId(text).order_id
  )
  assert.strictEqual(orderIds.length, day.good, `${day.date}: orders loaded`)
  assert.deepStrictEqual(orderIds.map((o) => o.order_id).toSorted(), goodIds.toSorted(), `${day.date}: order ids`)

  const deadLetters = yield* sql<
    { readonly position: number; readonly error_type: string; readonly original_record: string }
  >`
    SELECT position::float8 AS position, error_type, original_record FROM sluice.dead_letters
    WHERE pipeline = ${DailyRevenue.name} AND partition = ${day.date}::date ORDER BY position`
  assert.strictEqual(deadLetters.length, day.bad, `${day.date}: dead letters`)
  assert.strictEqual(orderIds.length + deadLetters.length, records.size, `${day.date}: loaded + dead-lettered = read`)
  assert.deepStrictEqual(
    deadLetters.map((d) => [d.position, d.error_type]),
    day.badLines.map((bad) => [bad.position, Generator.expectedErrorType[bad.kind]]),
    `${day.date}: dead letters' positions and error types`
  )
  for (const d of deadLetters) {
    assert.strictEqual(d.original_record, records.get(d.position), `${day.date}:${d.position}: original record`)
  }

  const revenue = yield* sql<{ readonly category: string; readonly revenue: string; readonly order_count: number }>`
    SELECT category, revenue::text AS revenue, order_count FROM analytics.daily_revenue
    WHERE date = ${day.date}::date`
  assert.deepStrictEqual(
    revenue.map((r) => ({ category: r.category, revenue: canonicalDecimal(r.revenue), orders: r.order_count }))
      .toSorted(byCategory),
    day.revenue.map((r) => ({ category: r.category, revenue: canonicalDecimal(r.revenue), orders: r.orders })),
    `${day.date}: daily revenue`
  )

  const latest = (yield* latestRuns).find((run) => run.partition === day.date)
  assert.deepStrictEqual(
    latest && [latest.status, latest.read, latest.loaded, latest.deadLettered],
    ["succeeded", records.size, day.good, day.bad],
    `${day.date}: latest run`
  )
})

/** A deterministic shuffle (mulberry32 seeded with `seed`), to run partitions in scrambled orders. */
export const shuffle = <A>(items: ReadonlyArray<A>, seed: number): Array<A> =>
  SeededRandom.shuffle(SeededRandom.make(seed), [...items])
