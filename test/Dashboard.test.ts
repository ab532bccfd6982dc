/**
 * The dashboard of `sluice serve`, end to end in headless Chromium (Debian's `chromium`, driven by
 * `playwright-core`): the calendar grid, a drill-down into a partition's runs and dead letters, and
 * clicks on "Replay dead letters" and "Re-run partition", then a stream pipeline (its processed events and
 * dead letters, no batch buttons), with screenshots. Skipped, with a message,
 * when `/usr/bin/chromium` is not installed (`apt-get install -y chromium`).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import {
  DeadLetter,
  Partition,
  Pipeline,
  ProcessedEventLedger,
  Replay,
  RunLedger,
  Source,
  Transform
} from "@sluice/core"
import { PartitionReplace, SqlProcessedEventLedger, SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer, Schema, Stream } from "effect"
import { HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { existsSync, mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { chromium } from "playwright-core"
import * as Serve from "../packages/cli/src/Serve.ts"

const executablePath = "/usr/bin/chromium"
const hasChromium = existsSync(executablePath)

const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int, day: Schema.String })
type Reading = typeof Reading.Type

/** The first release refuses values of 100 and more; the fix accepts them. */
const strict = Transform.fromSchema(Reading, {
  rules: [Transform.rule("small", (r) => r.value < 100 ? undefined : `value ${r.value} is too large`)]
})
const fixed = Transform.fromSchema(Reading)

const day = (n: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), n)
const good = (d: string, id: string, value: number) => JSON.stringify({ id, value, day: d })
const data = new Map<string, ReadonlyArray<string>>(
  [0, 1].map((i) => [day(i), [good(day(i), "a", 1), good(day(i), "b", 150), "{not json", good(day(i), "c", 2)]])
)
const source = Source.make(
  "memory",
  (p) => Stream.fromIterable((data.get(p) ?? []).map((payload, i) => ({ payload, position: i + 1 })))
)

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

if (!hasChromium) {
  describe("dashboard", () => {
    if (process.env["CI"]) {
      // CI installs Chromium (.ci/run): its absence there is a failure, never a silent skip
      it(`needs Debian's chromium at ${executablePath}`, () => {
        throw new Error(`CI is set but ${executablePath} is missing: apt-get install -y chromium`)
      })
    } else {
      it.skip(`needs Debian's chromium at ${executablePath} (apt-get install -y chromium)`, () => {})
    }
  })
}

for (const backend of hasChromium ? Testing.backends() : []) {
  layer(
    SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer), Layer.provideMerge(backend.layer)),
    { timeout: "90 seconds", excludeTestServices: true }
  )(
    `dashboard in headless Chromium [${backend.name}]`,
    (it) => {
      it.effect("a calendar grid, a partition's runs and dead letters, replay and re-run buttons; a stream", () =>
        Effect.gen(function*() {
          const name = `dashboard_${backend.name}`
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE ${sql(name)} (day date NOT NULL, id text NOT NULL, value int NOT NULL)`
          const pipelineOf = (transform: Transform.Transform<Reading>) =>
            Pipeline.make({
              name,
              source,
              transform,
              failureThreshold: 1,
              sink: PartitionReplace.make<Reading>({
                table: name,
                partitionColumn: "day",
                columns: [{ name: "day", type: "date" }, { name: "id", type: "text" }, {
                  name: "value",
                  type: "int"
                }],
                toRow: (r) => [r.day, r.id, r.value]
              })
            })
          yield* Pipeline.run(pipelineOf(strict), day(0))
          yield* Pipeline.run(pipelineOf(strict), day(1))
          const ledger = yield* RunLedger.RunLedger
          yield* ledger.start({ runId: `${name}-failed`, pipeline: name, partition: day(3), startedAt: 1_000 })
          yield* ledger.finish(`${name}-failed`, {
            status: "failed",
            read: 0,
            loaded: 0,
            deadLettered: 0,
            retries: 0,
            failureRate: 0,
            alerted: false,
            endedAt: 2_000,
            errorType: "SourceError.NotFound",
            error: "no file"
          })
          const context = yield* Effect.context<Pipeline.Services | SqlClient.SqlClient>()
          // the code was fixed since: the buttons run the current code
          const current = pipelineOf(fixed)
          const served: Serve.ServedPipeline = {
            name,
            description: name,
            startDate: day(0),
            rerun: (p) => Pipeline.run(current, p).pipe(Effect.provideContext(context)),
            replay: (p) => Replay.run(current, { partition: p }).pipe(Effect.provideContext(context))
          }
          // a stream pipeline: three events processed, one dead letter
          const streamName = `${name}_stream`
          const processedAt = Date.UTC(2024, 2, 5, 12)
          const processed = yield* ProcessedEventLedger.ProcessedEventLedger
          yield* processed.claim(
            streamName,
            [1, 2, 3].map((sequence) => ({ eventId: `e${sequence}`, stream: "S", sequence })),
            processedAt
          )
          const badEvent = "{\"id\":\"broken\","
          yield* (yield* DeadLetter.DeadLetterStore).write([{
            pipeline: streamName,
            partition: day(4),
            stage: "decode",
            position: 2,
            originalRecord: badEvent,
            errorType: "InvalidJson",
            error: "Unexpected end of JSON input",
            failedAt: processedAt,
            runId: `stream/${streamName}/S/1`
          }])
          const stream: Serve.ServedStream = {
            name: streamName,
            description: "Readings from a stream",
            consume: `sluice stream ${streamName}`,
            replay: `sluice replay ${streamName} --from-seq N`,
            processed: processed.summary(streamName)
          }
          const shots = mkdtempSync(Path.join(tmpdir(), "sluice-dashboard-"))

          yield* Effect.gen(function*() {
            const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
            const browser = yield* Effect.acquireRelease(
              promise(() => chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] })),
              (b) => promise(() => b.close())
            )
            const page = yield* promise(() => browser.newPage({ viewport: { width: 1200, height: 900 } }))
            yield* promise(() => page.goto(`${address}/?pipeline=${name}&until=${day(4)}`))
            yield* promise(() => page.waitForSelector("body[data-ready=true]"))
            const states = yield* promise(() =>
              page.$$eval(
                ".cell:not(.pad)",
                (cells) => cells.slice(0, 5).map((c) => [c.getAttribute("data-date"), c.getAttribute("data-state")])
              )
            )
            assert.deepStrictEqual(states.slice(0, 4), [
              [day(0), "done"],
              [day(1), "done"],
              [day(2), "missing"],
              [day(3), "failed"]
            ])
            const summary = yield* promise(() => page.textContent("#summary"))
            assert.include(summary, "2 done, 1 failed, 0 running")
            const bars = yield* promise(() => page.$$eval("#chart rect", (rs) => rs.length))
            assert.isAbove(bars, 0)
            yield* promise(() => page.screenshot({ path: Path.join(shots, "calendar.png"), fullPage: true }))

            // drill down into day 0: its run and its dead letters with the original payload and error
            yield* promise(() => page.click(`.cell[data-date="${day(0)}"]`))
            yield* promise(() => page.waitForSelector("#dead-letters tbody tr"))
            const title = yield* promise(() => page.textContent("#detail-title"))
            assert.strictEqual(title, `${name} ${day(0)}`)
            const letters = yield* promise(() =>
              page.$$eval("#dead-letters tbody tr", (rows) => rows.map((r) => r.textContent ?? ""))
            )
            assert.strictEqual(letters.length, 2)
            assert.include(letters[0], good(day(0), "b", 150))
            assert.include(letters[0], "value 150 is too large")
            assert.include(letters[1], "{not json")
            const runs = yield* promise(() => page.$$eval("#runs tbody tr", (rows) => rows.length))
            assert.strictEqual(runs, 1)
            yield* promise(() => page.screenshot({ path: Path.join(shots, "partition.png"), fullPage: true }))

            // replay: the large value now loads; the invalid line stays, attempts + 1
            yield* promise(() => page.click("#replay"))
            yield* promise(() =>
              page.waitForFunction(`document.getElementById("message").textContent.startsWith("replayed")`)
            )
            assert.strictEqual(
              yield* promise(() => page.textContent("#message")),
              `replayed ${day(0)}: 1 replayed, 1 still failing of 2`
            )
            yield* promise(() => page.waitForFunction(`document.querySelectorAll("#runs tbody tr").length === 2`))

            // re-run day 1 from the grid: the current code loads its large value too
            yield* promise(() => page.click(`.cell[data-date="${day(1)}"]`))
            yield* promise(() =>
              page.waitForFunction(`document.getElementById("detail-title").textContent.endsWith("${day(1)}")`)
            )
            yield* promise(() => page.click("#rerun"))
            yield* promise(() =>
              page.waitForFunction(`document.getElementById("message").textContent.startsWith("re-ran")`)
            )
            assert.strictEqual(
              yield* promise(() => page.textContent("#message")),
              `re-ran ${day(1)}: read 4, loaded 3, dead-lettered 1`
            )
            yield* promise(() => page.screenshot({ path: Path.join(shots, "after-rerun.png"), fullPage: true }))

            // the stream pipeline: no calendar, its processed events and dead letters, no batch buttons
            yield* promise(() => page.selectOption("#pipeline", streamName))
            yield* promise(() => page.waitForSelector(`#stream-days button[data-date="${day(4)}"]`))
            assert.strictEqual(
              yield* promise(() => page.textContent(`#pipeline option[value="${streamName}"]`)),
              `${streamName} (stream)`
            )
            assert.isTrue(yield* promise(() => page.isHidden("#grid")))
            const streamSummary = yield* promise(() => page.textContent("#summary"))
            assert.include(streamSummary, "3 event(s) processed, the latest at 2024-03-05 12:00:00")
            assert.include(streamSummary, "1 new dead letter(s)")
            assert.include(yield* promise(() => page.textContent("#stream-commands")), `sluice replay ${streamName}`)
            assert.deepStrictEqual(
              yield* promise(() =>
                page.$$eval("#stream-types tbody tr", (rows) => rows.map((r) => r.textContent ?? ""))
              ),
              ["InvalidJsonnew1"]
            )
            yield* promise(() => page.click(`#stream-days button[data-date="${day(4)}"]`))
            yield* promise(() =>
              page.waitForFunction(
                `document.getElementById("detail-title").textContent === "${streamName} ${day(4)}"`
              )
            )
            const streamLetters = yield* promise(() =>
              page.$$eval("#dead-letters tbody tr", (rows) => rows.map((r) => r.textContent ?? ""))
            )
            assert.strictEqual(streamLetters.length, 1)
            assert.include(streamLetters[0], badEvent)
            assert.strictEqual(yield* promise(() => page.textContent("#dead-letters th:nth-child(2)")), "sequence")
            assert.isTrue(yield* promise(() => page.isHidden("#rerun")))
            assert.isTrue(yield* promise(() => page.isHidden("#replay")))
            assert.isTrue(yield* promise(() => page.isHidden("#runs")))
            yield* promise(() => page.screenshot({ path: Path.join(shots, "stream.png"), fullPage: true }))
          }).pipe(
            Effect.provide(Serve.layer({ pipelines: [served], streams: [stream], port: 0, log: false })),
            Effect.scoped
          )

          for (const shot of ["calendar.png", "partition.png", "after-rerun.png", "stream.png"]) {
            assert.isAbove(statSync(Path.join(shots, shot)).size, 1000, shot)
          }
          // what the buttons did, read back from the database
          const latest = yield* ledger.latest(name)
          assert.deepStrictEqual(latest.map((r) => [r.partition, r.status, r.read, r.loaded, r.deadLettered]), [
            [day(0), "succeeded", 4, 3, 1],
            [day(1), "succeeded", 4, 3, 1],
            [day(3), "failed", 0, 0, 0]
          ])
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name, { status: DeadLetter.statuses })
          assert.deepStrictEqual(dead.map((d) => `${d.partition}#${d.position} ${d.status} x${d.attempts}`), [
            `${day(0)}#2 replayed x1`,
            `${day(0)}#3 new x2`,
            `${day(1)}#2 replayed x1`,
            `${day(1)}#3 new x2`
          ])
        }))
    }
  )
}
