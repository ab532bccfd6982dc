/**
 * `sluice serve`'s `/metrics`: effect's pipeline metrics of this process and the gauges computed from
 * the run ledger and dead-letter store, fetched over HTTP and parsed, on every backend.
 */
import { assert, layer } from "@effect/vitest"
import { AbandonedRuns, Partition, PartitionLock, Pipeline, Replay, RunLedger, Source, Transform } from "@sluice/core"
import { PartitionReplace, SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import * as Serve from "../packages/cli/src/Serve.ts"

const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int, day: Schema.String })
type Reading = typeof Reading.Type

const day = (n: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), n)

const good = (d: string, id: string) => JSON.stringify({ id, value: 1, day: d })

/** Day 0: 3 good lines and 1 invalid; day 1: 2 good, 2 invalid (one not JSON, one of the wrong shape). */
const lines: Record<string, ReadonlyArray<string>> = {
  [day(0)]: [good(day(0), "a"), good(day(0), "b"), "nope", good(day(0), "c")],
  [day(1)]: [good(day(1), "a"), "{bad", good(day(1), "b"), "{\"id\":1}"]
}

/** The fields of the `serving` run not asserted exactly (its id and start). */
const pick = (serving: unknown) => {
  if (serving === null) return {}
  const { runId, startedAt } = serving as { readonly runId: unknown; readonly startedAt: unknown }
  return { runId, startedAt }
}

/** Parses the exposition: `name{labels}` → value; checks every sample line's shape. */
const parse = (text: string) => {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary)$/.exec(line)
    if (type !== null) types.set(type[1]!, type[2]!)
    if (line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    assert.isNotNull(match, `a sample line: ${line}`)
    samples.set(`${match![1]}${match![2] ?? ""}`, Number(match![3]))
  }
  return { samples, types }
}

for (const backend of Testing.backends()) {
  layer(SqlSluice.layer.pipe(Layer.provideMerge(backend.layer)), { timeout: "60 seconds", excludeTestServices: true })(
    `/metrics [${backend.name}]`,
    (it) => {
      it.effect("exposes records, dead letters, runs and failure rates per pipeline, parsed back", () =>
        Effect.gen(function*() {
          const name = `metrics_${backend.name}`
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE ${sql(name)} (day date NOT NULL, id text NOT NULL, value int NOT NULL)`
          const pipeline = Pipeline.make({
            name,
            source: Source.make(
              "memory",
              (p) => Stream.fromIterable((lines[p] ?? []).map((payload, i) => ({ payload, position: i + 1 })))
            ),
            transform: Transform.fromSchema(Reading),
            failureThreshold: 0.3,
            sink: PartitionReplace.make<Reading>({
              table: name,
              partitionColumn: "day",
              columns: [{ name: "day", type: "date" }, { name: "id", type: "text" }, { name: "value", type: "int" }],
              toRow: (r) => [r.day, r.id, r.value]
            })
          })
          yield* Pipeline.run(pipeline, day(0))
          yield* Pipeline.run(pipeline, day(1))
          const context = yield* Effect.context<Pipeline.Services | SqlClient.SqlClient>()
          const ledger = yield* RunLedger.RunLedger
          // a failed partition, one still running (its process holds the lock: here, this test) and one
          // abandoned (left running by a process that died: nobody holds its lock)
          yield* ledger.start({ runId: `${name}-failed`, pipeline: name, partition: day(2), startedAt: 1_000 })
          yield* ledger.finish(`${name}-failed`, {
            status: "failed",
            read: 0,
            loaded: 0,
            deadLettered: 0,
            retries: 2,
            failureRate: 0,
            alerted: false,
            endedAt: 3_000,
            errorType: "SourceError.NotFound",
            error: "no file"
          })
          yield* ledger.start({ runId: `${name}-running`, pipeline: name, partition: day(3), startedAt: 2_000 })
          yield* (yield* PartitionLock.PartitionLock).acquire(name, day(3))
          yield* ledger.start({ runId: `${name}-abandoned`, pipeline: name, partition: day(4), startedAt: 2_500 })

          const text = yield* Effect.gen(function*() {
            const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
            const response = yield* HttpClient.get(`${address}/metrics`)
            assert.strictEqual(response.status, 200)
            assert.match(response.headers["content-type"] ?? "", /^text\/plain/)
            const body = yield* response.text
            // the dashboard's API closes abandoned runs too: in its calendar and in a partition's runs
            yield* ledger.start({ runId: `${name}-abandoned-5`, pipeline: name, partition: day(5), startedAt: 2_600 })
            const calendar = (yield* (yield* HttpClient.get(
              `${address}/api/pipelines/${name}/calendar?since=${day(0)}&until=${day(5)}`
            )).json) as { readonly days: ReadonlyArray<{ readonly partition: string; readonly state: string }> }
            assert.deepStrictEqual(calendar.days.map((d) => d.state), [
              "done",
              "done",
              "failed",
              "running",
              "failed",
              "failed"
            ])
            yield* ledger.start({ runId: `${name}-abandoned-6`, pipeline: name, partition: day(6), startedAt: 2_700 })
            const partition = (yield* (yield* HttpClient.get(`${address}/api/pipelines/${name}/partitions/${day(6)}`))
              .json) as { readonly runs: ReadonlyArray<{ readonly status: string; readonly errorType?: string }> }
            assert.deepStrictEqual(
              partition.runs.map((r) => [r.status, r.errorType]),
              [["failed", RunLedger.abandonedErrorType]]
            )
            // a failed run after a successful one changed nothing: the calendar says whose data is in place
            const later = Date.now() + 60_000
            yield* ledger.start({ runId: `${name}-failed-1`, pipeline: name, partition: day(1), startedAt: later })
            yield* ledger.finish(`${name}-failed-1`, {
              status: "failed",
              read: 0,
              loaded: 0,
              deadLettered: 0,
              retries: 0,
              failureRate: 0,
              alerted: false,
              endedAt: later + 100,
              errorType: "SinkError",
              error: "boom"
            })
            type Serving = { readonly read: number; readonly loaded: number; readonly deadLettered: number } | null
            const after = (yield* (yield* HttpClient.get(
              `${address}/api/pipelines/${name}/calendar?since=${day(0)}&until=${day(2)}`
            )).json) as { readonly days: ReadonlyArray<{ readonly state: string; readonly serving: Serving }> }
            assert.deepStrictEqual(after.days.map((d) => [d.state, d.serving]), [
              ["done", null],
              ["failed", { read: 4, loaded: 2, deadLettered: 2, ...pick(after.days[1]!.serving) }],
              ["failed", null]
            ])
            return body
          }).pipe(
            Effect.provide(Layer.merge(
              Serve.layer({
                pipelines: [{
                  name,
                  description: name,
                  startDate: day(0),
                  rerun: (p) => Pipeline.run(pipeline, p).pipe(Effect.provideContext(context)),
                  replay: (p) => Replay.run(pipeline, { partition: p }).pipe(Effect.provideContext(context))
                }],
                port: 0,
                log: false
              }),
              FetchHttpClient.layer
            ))
          )
          const { samples, types } = parse(text)
          const get = (metric: string, labels: string) => samples.get(`${metric}{${labels}}`)
          const p = `pipeline="${name}"`
          // this process's effect metrics
          assert.strictEqual(get("sluice_records_read_total", p), 8)
          assert.strictEqual(get("sluice_records_loaded_total", p), 5)
          assert.strictEqual(get("sluice_records_dead_lettered_total", p), 3)
          assert.strictEqual(get("sluice_failure_rate_alerts_total", p), 1)
          assert.strictEqual(types.get("sluice_records_read_total"), "counter")
          // two runs of this pipeline, timed in seconds (the unit itself is checked in PipelineMetrics.test.ts)
          assert.strictEqual(types.get("sluice_run_duration_seconds"), "histogram")
          assert.strictEqual(get("sluice_run_duration_seconds_count", p), 2, text)
          assert.isBelow(get("sluice_run_duration_seconds_sum", p) ?? Infinity, 60, text)
          // from the ledger and the dead-letter store
          assert.strictEqual(get("sluice_partitions", `${p},status="succeeded"`), 2)
          // the abandoned run is closed as failed at the scrape; the one whose lock is held stays running
          assert.strictEqual(get("sluice_partitions", `${p},status="failed"`), 2)
          assert.strictEqual(get("sluice_partitions", `${p},status="running"`), 1)
          assert.strictEqual(get("sluice_ledger_runs", `${p},status="failed"`), 2)
          assert.strictEqual(get("sluice_ledger_runs", `${p},status="running"`), 1)
          const abandoned = (yield* ledger.list(name, { start: day(4), end: day(4) }))[0]
          assert.strictEqual(abandoned?.status, "failed")
          assert.strictEqual(abandoned?.errorType, RunLedger.abandonedErrorType)
          assert.strictEqual(abandoned?.error, AbandonedRuns.error)
          assert.strictEqual(get("sluice_partition_records_read", p), 8)
          assert.strictEqual(get("sluice_partition_records_loaded", p), 5)
          assert.strictEqual(get("sluice_partition_records_dead_lettered", p), 3)
          assert.strictEqual(get("sluice_ledger_retries", p), 2)
          assert.strictEqual(get("sluice_partitions_alerted", p), 1)
          assert.strictEqual(get("sluice_failure_rate", p), 3 / 8)
          assert.strictEqual(get("sluice_dead_letters", `${p},error_type="InvalidJson"`), 2)
          assert.strictEqual(get("sluice_dead_letters", `${p},error_type="SchemaMismatch"`), 1)
          assert.strictEqual(types.get("sluice_partitions"), "gauge")
        }).pipe(Effect.scoped))
    }
  )
}
