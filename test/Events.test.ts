/**
 * The events pipeline end to end on every backend: immutable append with read-time dedup, and a
 * two-day lookback picking up lines that the feed re-delivers late in earlier days' files.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { Events, Generator } from "@sluice-app/events"
import { Backfill, DeadLetter, Partition, Pipeline, RetryPolicy, RunLedger } from "@sluice/core"
import { SqlSluice, Testing } from "@sluice/sql"
import { Effect, FileSystem, Layer } from "effect"
import { SqlClient } from "effect/sql"

const layerFor = (backend: Testing.Backend) =>
  Layer.mergeAll(SqlSluice.layer, Backfill.Backfill.layerLocal, Layer.effectDiscard(Events.setup)).pipe(
    Layer.provideMerge(backend.layer),
    Layer.merge(NodeFileSystem.layer)
  )

const start = Partition.makeUnsafe("2024-03-01")
const feed = { start, days: 6, seed: 11 } as const
const dates = Partition.range(start, Partition.addDays(start, feed.days - 1))
const last = dates[dates.length - 1]!
const retry = RetryPolicy.make({ baseDelay: "5 millis", maxRetries: 0 })

const byId = <A extends { readonly event_id: string }>(rows: ReadonlyArray<A>): Array<A> =>
  [...rows].sort((a, b) => (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0))

const readView = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{
    readonly event_id: string
    readonly event_type: string
    readonly user_id: number
    readonly occurred_at: Date
    readonly updated_at: Date
    readonly properties: Record<string, string | number | boolean>
  }>`SELECT event_id, event_type, user_id::int AS user_id, occurred_at, updated_at, properties FROM analytics.events`
  return byId(rows.map((r): Generator.ExpectedEvent => ({
    event_id: r.event_id,
    event_type: r.event_type,
    user_id: r.user_id,
    occurred_at: r.occurred_at.getTime(),
    updated_at: r.updated_at.getTime(),
    properties: r.properties
  })))
})

const deadLetters = Effect.flatMap(DeadLetter.DeadLetterStore, (store) => store.list(Events.name)).pipe(
  Effect.map((all) => all.map((d) => `${d.partition}|${d.position}|${d.errorType}`).sort())
)

const expectedDeadLetters = (manifest: Generator.Manifest) =>
  manifest.days.flatMap((d) => d.badLines.map((b) => `${d.date}|${b.position}|${Generator.expectedErrorType[b.kind]}`))
    .sort()

const logCount = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ readonly rows: number; readonly events: number }>`
    SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS events FROM raw.events_log`.pipe(
    Effect.map((r) => r[0]!)
  ))

/** An empty log, and no runs or dead letters of the pipeline. */
const reset = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE raw.events_log`
  yield* sql`DELETE FROM sluice.runs WHERE pipeline = ${Events.name}`
  yield* sql`DELETE FROM sluice.dead_letters WHERE pipeline = ${Events.name}`
})

/** Day after day: the folder as it stands that evening, then the day's run. */
const daily = (directory: string, lookback: number) =>
  Effect.gen(function*() {
    const pipeline = Events.make(directory, { retry, lookback })
    let manifest: Generator.Manifest | undefined
    const reports: Array<Pipeline.RunReport> = []
    for (const date of dates) {
      manifest = yield* Generator.generate({ ...feed, directory, asOf: date })
      reports.push(yield* Pipeline.run(pipeline, date))
    }
    return { manifest: manifest!, reports }
  })

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { excludeTestServices: true, timeout: "60 seconds" })(`events [${backend.name}]`, (it) => {
    it.effect(
      "daily runs with lookback 2 load the lines re-delivered late: the view is the feed's, and equals running each day alone afterwards",
      () =>
        Effect.gen(function*() {
          yield* reset
          const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "sluice-events-" })
          const { manifest, reports } = yield* daily(directory, Events.lookback)
          assert.isAbove(manifest.days.reduce((n, d) => n + d.kinds.held_back, 0), 0, "some lines were held back")
          const view = yield* readView
          assert.deepStrictEqual(view, byId(manifest.expected))
          assert.deepStrictEqual(yield* deadLetters, expectedDeadLetters(manifest))
          // each run rebuilt the two days before it, those that had been run
          for (const report of reports) {
            assert.deepStrictEqual(
              report.lookback.map((o) => [o.partition, o._tag]),
              Pipeline.lookbackWindow(report.partition, 2).map((p) => [p, p < start ? "Skipped" : "Succeeded"])
            )
          }
          // each day's runs keep its own date in the ledger, marked by the run that triggered them
          const runs = yield* (yield* RunLedger.RunLedger).list(Events.name, { start, end: start })
          const triggers = runs.map((r) => Pipeline.triggerOf(r.runId))
            .map((t) => t._tag === "Direct" ? "direct" : `lookback of ${t.of}`)
          assert.deepStrictEqual(triggers.sort(), ["direct", `lookback of ${dates[1]}`, `lookback of ${dates[2]}`])

          // the same files, each day alone, once
          yield* reset
          const alone = Events.make(directory, { retry, lookback: 0 })
          for (const date of dates) yield* Pipeline.run(alone, date)
          assert.deepStrictEqual(yield* readView, view)
          assert.deepStrictEqual(yield* deadLetters, expectedDeadLetters(manifest))
        })
    )

    it.effect("two versions tied on updated_at: the later day's wins, whichever day is run last", () =>
      Effect.gen(function*() {
        yield* reset
        const fs = yield* FileSystem.FileSystem
        const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-events-" })
        const line = (event_type: string) =>
          JSON.stringify({
            event_id: "t1",
            event_type,
            user_id: 9,
            occurred_at: `${dates[0]}T10:00:00Z`,
            updated_at: `${dates[0]}T12:00:00Z`
          }) + "\n"
        yield* fs.writeFileString(`${directory}/${dates[0]}.jsonl`, line("click"))
        yield* fs.writeFileString(`${directory}/${dates[1]}.jsonl`, line("signup"))
        const pipeline = Events.make(directory, { retry, lookback: 0 })
        const types: Array<string> = []
        for (const date of [dates[0]!, dates[1]!, dates[0]!, dates[0]!]) {
          yield* Pipeline.run(pipeline, date)
          types.push((yield* readView).map((e) => e.event_type).join())
        }
        assert.deepStrictEqual(types, ["click", "signup", "signup", "signup"])
      }))

    it.effect("without lookback, lines re-delivered after their day's run are missed", () =>
      Effect.gen(function*() {
        yield* reset
        const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "sluice-events-" })
        const { manifest } = yield* daily(directory, 0)
        const seen = new Set((yield* readView).map((e) => e.event_id))
        const missed = manifest.expected.filter((e) => !seen.has(e.event_id))
        assert.isAbove(missed.length, 0)
        const heldBack = new Set(
          Generator.plan(feed).flatMap((d) => d.heldBack.map((h) => h.line.version!.eventId))
        )
        for (const e of missed) assert.isTrue(heldBack.has(e.event_id), e.event_id)
      }))

    it.effect("a backfill with lookback builds each date once; re-runs and compaction leave the view as it was", () =>
      Effect.gen(function*() {
        yield* reset
        const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "sluice-events-" })
        const manifest = yield* Generator.generate({ ...feed, directory })
        const pipeline = Events.make(directory, { retry })
        const plan = Pipeline.lookbackPlan(pipeline, dates)
        const report = yield* (yield* Backfill.Backfill).run({
          pipeline: pipeline.name,
          partitions: dates,
          concurrency: 2,
          runPartition: (p) => Pipeline.run(pipeline, p, { lookback: plan.get(p) })
        })
        assert.strictEqual(report.succeeded, dates.length)
        const runs = yield* (yield* RunLedger.RunLedger).list(Events.name)
        assert.deepStrictEqual(runs.map((r) => r.partition).sort(), dates)
        const view = yield* readView
        assert.deepStrictEqual(view, byId(manifest.expected))
        assert.deepStrictEqual(yield* deadLetters, expectedDeadLetters(manifest))

        const before = yield* logCount
        yield* Pipeline.run(pipeline, last)
        yield* Pipeline.run(pipeline, last)
        assert.deepStrictEqual(yield* readView, view)
        assert.isAbove((yield* logCount).rows, before.rows, "the log only grows")

        const deleted = yield* Events.compact
        const after = yield* logCount
        assert.deepStrictEqual(after, { rows: before.events, events: before.events })
        assert.isAbove(deleted, 0)
        assert.deepStrictEqual(yield* readView, view)
        yield* Pipeline.run(pipeline, last)
        assert.deepStrictEqual(yield* readView, view)
      }))
  })
}
