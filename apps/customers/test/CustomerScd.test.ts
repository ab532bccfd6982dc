/**
 * The customers pipelines end to end, on every database backend: generated change files (late,
 * out-of-order, duplicated changes, deletes, bad lines) loaded in any order must reproduce the
 * simulated CRM's truth in the three dimensions, and re-running them must change nothing.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { Backfill, DeadLetter, Partition, Pipeline, RetryPolicy } from "@sluice/core"
import { SqlSluice, Testing } from "@sluice/sql"
import { Effect, FileSystem, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as CustomerScd from "../src/CustomerScd.ts"
import * as Generator from "../src/Generator.ts"

const start = CustomerScd.startDate
const days = 10
const seed = 11
const dates = Partition.range(start, Partition.addDays(start, days - 1))
const retry = RetryPolicy.make({ maxRetries: 0 })

const layerFor = (backend: Testing.Backend) =>
  Layer.mergeAll(SqlSluice.layer, Backfill.Backfill.layerLocal, Layer.effectDiscard(CustomerScd.setup)).pipe(
    Layer.provideMerge(backend.layer),
    Layer.merge(NodeFileSystem.layer)
  )

const generate = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-customers-e2e-" })
  const manifest = yield* Generator.generate({ directory, start, days, seed })
  return { directory, manifest }
})

/** A fixed, scrambled order of the days. */
const shuffled = dates.map((date, i) => ({ date, k: (i * 7 + 3) % days })).sort((a, b) => a.k - b.k).map((d) => d.date)

const truncateAll = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const type of CustomerScd.types) {
    const scd = CustomerScd.dimensions[type]
    yield* sql`TRUNCATE ${sql(scd.changes)}, ${sql(scd.dimension)}`
  }
})

const live = (manifest: Generator.Manifest) => manifest.customers.filter((c) => !c.deleted)

/** The three dimensions against the generator's truth, and the invariants of the type 2 history. */
const checkTruth = (manifest: Generator.Manifest) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const expected = live(manifest).map((c) => ({ id: c.customer_id, name: c.name, city: c.city, email: c.email }))
    const scd1 = yield* sql`SELECT customer_id::int AS id, name, city, email
      FROM analytics.dim_customer_scd1 ORDER BY customer_id`
    assert.deepStrictEqual(scd1, expected, "type 1 = the latest state of every live customer")

    const current = yield* sql`SELECT customer_id::int AS id, name, city, email
      FROM analytics.dim_customer_scd2 WHERE is_current ORDER BY customer_id`
    assert.deepStrictEqual(current, expected, "type 2 current rows = live customers; deleted ones have none")
    const [invariants] = yield* sql<{ readonly overlaps: number; readonly bad: number; readonly unlinked: number }>`
      SELECT
        (SELECT count(*)::int FROM analytics.dim_customer_scd2 a JOIN analytics.dim_customer_scd2 b
           ON a.customer_id = b.customer_id AND a.effective_start < b.effective_start
          AND b.effective_start < a.effective_end) AS overlaps,
        (SELECT count(*)::int FROM analytics.dim_customer_scd2
          WHERE is_current <> (effective_end = '9999-12-31T00:00:00Z')) AS bad,
        (SELECT count(*)::int FROM analytics.dim_customer_scd2 a
          WHERE NOT a.is_current AND NOT EXISTS (
            SELECT 1 FROM analytics.dim_customer_scd2 b WHERE b.customer_id = a.customer_id
              AND b.effective_start = a.effective_end)
            AND NOT EXISTS (SELECT 1 FROM raw.customer_changes_scd2 c WHERE c.customer_id = a.customer_id
              AND c.is_deleted AND c.changed_at = a.effective_end)) AS unlinked`
    assert.deepStrictEqual(invariants, { overlaps: 0, bad: 0, unlinked: 0 }, "no overlap; gaps only after deletes")
    // as of the end of each day, the history shows the CRM as it was then — late changes included
    for (const day of manifest.days) {
      const at = `${Partition.addDays(day.date, 1)}T00:00:00Z`
      const asOf = yield* sql`SELECT customer_id::int AS id, name, city FROM analytics.dim_customer_scd2
        WHERE effective_start < ${at}::timestamptz AND ${at}::timestamptz <= effective_end ORDER BY customer_id`
      const truth = day.endOfDay.filter((c) => !c.deleted).map((c) => ({
        id: c.customer_id,
        name: c.name,
        city: c.city
      }))
      assert.deepStrictEqual(asOf, truth, `type 2 as of the end of ${day.date}`)
    }

    const scd3 = yield* sql`SELECT customer_id::int AS id, name, city, email, previous_name, previous_city
      FROM analytics.dim_customer_scd3 ORDER BY customer_id`
    assert.deepStrictEqual(
      scd3,
      live(manifest).map((c) => ({
        id: c.customer_id,
        name: c.name,
        city: c.city,
        email: c.email,
        previous_name: c.previousName,
        previous_city: c.previousCity
      })),
      "type 3 = latest state with the name and city before their last change"
    )
  })

const dimensionsWithXmin = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* Effect.forEach(
    CustomerScd.types,
    (type) =>
      sql`SELECT *, xmin::text AS xmin FROM ${sql(CustomerScd.dimensions[type].dimension)} ORDER BY 1, ${
        sql.literal(type === 2 ? "effective_start" : "1")
      }`
  )
})

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { timeout: "120 seconds", excludeTestServices: true })(
    `customers pipelines [${backend.name}]`,
    (it) => {
      it.effect("loading the days in a scrambled order reproduces the CRM in all three dimensions", () =>
        Effect.gen(function*() {
          yield* truncateAll
          const { directory, manifest } = yield* generate
          const store = yield* DeadLetter.DeadLetterStore
          for (const type of CustomerScd.types) {
            const pipeline = CustomerScd.make(type, directory, { retry })
            for (const date of shuffled) {
              const report = yield* Pipeline.run(pipeline, date)
              const day = manifest.days.find((d) => d.date === date)!
              assert.deepInclude(report, { read: day.records, loaded: day.good, deadLettered: day.bad })
            }
            const expected = new Map<string, number>()
            for (const kind of Generator.badKinds) {
              const errorType = Generator.expectedErrorType[kind]
              expected.set(errorType, (expected.get(errorType) ?? 0) + manifest.badByKind[kind])
            }
            const counted = yield* store.countByType(pipeline.name)
            assert.deepStrictEqual(
              new Map(counted.map((c) => [c.errorType, c.count])),
              new Map([...expected].filter(([, n]) => n > 0))
            )
          }
          yield* checkTruth(manifest)
        }))

      it.effect("a backfill in date order, two days at a time, gives the same; re-running it rewrites no row", () =>
        Effect.gen(function*() {
          yield* truncateAll
          const { directory, manifest } = yield* generate
          const executor = yield* Backfill.Backfill
          const backfill = (partitions: ReadonlyArray<Partition.PartitionDate>) =>
            Effect.forEach(CustomerScd.types, (type) => {
              const pipeline = CustomerScd.make(type, directory, { retry })
              return executor.run({
                pipeline: pipeline.name,
                partitions,
                concurrency: 2,
                runPartition: (p) => Pipeline.run(pipeline, p)
              })
            })
          for (const report of yield* backfill(dates)) assert.strictEqual(report.succeeded, days)
          yield* checkTruth(manifest)
          const before = yield* dimensionsWithXmin
          for (const report of yield* backfill(dates.toReversed())) assert.strictEqual(report.succeeded, days)
          assert.deepStrictEqual(yield* dimensionsWithXmin, before)
        }))
    }
  )
}
