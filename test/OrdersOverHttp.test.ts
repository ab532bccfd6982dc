/**
 * The daily-revenue pipeline reading the flaky orders HTTP server (started in-process on a free
 * port), on every database backend: transient failures within the retry budget are retried and
 * the days load exactly as from the files; beyond the budget a partition fails with a typed
 * `SourceError`, keeps its previous data, and the backfill goes on with the other days.
 */
import { assert, layer } from "@effect/vitest"
import { type Generator, OrdersServer } from "@sluice-app/daily-revenue"
import { Backfill, HttpSource, Partition, Pipeline } from "@sluice/core"
import { Testing } from "@sluice/sql"
import { Effect, Layer, Stream } from "effect"
import {
  assertLoaded,
  backfill,
  dump,
  generate,
  latestRuns,
  layerFor,
  type OrdersPipeline,
  pipelineOn,
  reset,
  runEach,
  runs
} from "./fixtures.ts"

type Tuple5<A> = readonly [A, A, A, A, A]

/** Starts the orders server over `directory` for the scope; returns its base URL. */
const serve = (options: Omit<OrdersServer.Options, "log" | "port">) =>
  Effect.flatMap(
    Layer.build(OrdersServer.layer({ ...options, log: false })),
    (context) => OrdersServer.baseUrl.pipe(Effect.provideContext(context))
  )

for (const backend of Testing.backends()) {
  layer(layerFor(backend), { excludeTestServices: true })(`orders over HTTP [${backend.name}]`, (it) => {
    it.effect("with failures within the retry budget, every day loads exactly as from the files", () =>
      Effect.gen(function*() {
        const { directory, manifest, partitions } = yield* generate({ start: "2024-10-01", days: 4, seed: 8 })
        yield* reset
        yield* runEach(pipelineOn(directory), partitions)
        const fromFiles = yield* dump()
        yield* reset

        // each date fails 3 times (503, reset mid-body, 503): exactly the 3 retries of the policy
        const url = yield* serve({ directory, failFirst: 3, kinds: ["503", "reset"] })
        const report = yield* backfill(pipelineOn(url), partitions, 2)
        assert.deepStrictEqual(
          report.outcomes.map((o) => [o.partition, o._tag, o._tag === "Succeeded" ? o.report.retries : o.error]),
          partitions.map((p) => [p, "Succeeded", 3])
        )
        assert.deepStrictEqual(yield* dump(), fromFiles)
        for (const day of manifest.days) yield* assertLoaded(directory, day)
        assert.deepStrictEqual(
          (yield* runs).map((r) => [r.status, r.retries]),
          partitions.map(() => ["succeeded", 3])
        )
      }))

    it.effect("an answer slower than the client's timeout is retried like any transient failure", () =>
      Effect.gen(function*() {
        const { directory, manifest, partitions } = yield* generate({ start: "2024-10-10", days: 1, seed: 9 })
        yield* reset
        const url = yield* serve({ directory, failFirst: 1, kinds: ["slow"], slowMs: 1_500 })
        const base = pipelineOn(url)
        const impatient: OrdersPipeline = {
          ...base,
          source: HttpSource.byDate({ baseUrl: url, path: "/orders", param: "date", timeout: "250 millis" })
        }
        const report = yield* Pipeline.run(impatient, partitions[0]!)
        assert.strictEqual(report.retries, 1)
        yield* assertLoaded(directory, manifest.days[0]!)
      }))

    it.effect("failures beyond the budget fail that partition with a typed SourceError; the backfill goes on", () =>
      Effect.gen(function*() {
        yield* reset
        const old = yield* generate({ start: "2024-11-01", days: 4, seed: 21 })
        yield* runEach(pipelineOn(old.directory), old.partitions)
        const resent = yield* generate({ start: "2024-11-01", days: 5, seed: 22 })
        const [d1, d2, d3, d4, d5] = resent.manifest.days as Tuple5<Generator.DayManifest>
        const missing = Partition.addDays(d5.date, 1) // no file: the server answers 404
        const previousD3 = yield* dump(d3.date)

        // every date fails its first 4 requests: one more than the 3 retries of the policy
        const url = yield* serve({ directory: resent.directory, failFirst: 4, kinds: ["503"] })
        const http = pipelineOn(url)
        // d1, d2, d4 and the missing day have already had their failures (another client's): they answer now
        for (const partition of [d1.date, d2.date, d4.date, missing]) {
          yield* Effect.replicateEffect(Effect.ignore(Stream.runDrain(http.source.extract(partition))), 4)
        }

        const report = yield* backfill(http, [d1.date, d2.date, d3.date, d4.date, missing], 2)
        assert.deepStrictEqual(
          report.outcomes.map((o) => [o.partition, o._tag === "Succeeded" ? "Succeeded" : o.errorType]),
          [
            [d1.date, "Succeeded"],
            [d2.date, "Succeeded"],
            [d3.date, "SourceError.HttpStatus"],
            [d4.date, "Succeeded"],
            [missing, "SourceError.NotFound"]
          ]
        )
        for (const day of [d1, d2, d4]) yield* assertLoaded(resent.directory, day)
        assert.deepStrictEqual(yield* dump(d3.date), previousD3, "the failed day keeps its previous load")
        const latest = new Map((yield* latestRuns).map((r) => [r.partition as string, r]))
        assert.deepStrictEqual(
          [d3.date, missing].map((p) => {
            const run = latest.get(p)
            return [run?.status, run?.retries, run?.errorType]
          }),
          [["failed", 3, "SourceError.HttpStatus"], ["failed", 0, "SourceError.NotFound"]],
          "transient failures are retried up to the budget, a missing day not at all"
        )

        // run alone, a day over the budget fails with the typed, retryable reason of its last attempt
        const error = yield* Effect.flip(Pipeline.run(http, d5.date))
        assert.strictEqual(error._tag, "SourceError")
        if (error._tag === "SourceError") {
          assert.strictEqual(error.reason._tag, "HttpStatus")
          assert.strictEqual(error.reason._tag === "HttpStatus" && error.reason.status, 503)
          assert.isTrue(error.isRetryable)
        }
        const notFound = yield* Effect.flip(Pipeline.run(http, missing))
        assert.isTrue(notFound._tag === "SourceError" && notFound.reason._tag === "NotFound" && !notFound.isRetryable)

        // the failures were transient: re-running only the failed partitions loads them now
        const failed = Backfill.plan({
          start: d1.date,
          end: missing,
          mode: "only-failed",
          latestRuns: yield* latestRuns
        })
        assert.deepStrictEqual(failed, [d3.date, d5.date, missing])
        const retried = yield* backfill(http, failed, 2)
        assert.deepStrictEqual(retried.outcomes.map((o) => o._tag), ["Succeeded", "Succeeded", "Failed"])
        for (const day of [d3, d5]) yield* assertLoaded(resent.directory, day)
      }))
  })
}
