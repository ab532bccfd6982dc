import { assert, layer } from "@effect/vitest"
import { type Partition, RunLedger } from "@sluice/core"
import { Effect } from "effect"
import { backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const succeeded = (endedAt: number, overrides: Partial<RunLedger.RunOutcome> = {}): RunLedger.RunOutcome => ({
  status: "succeeded",
  read: 10,
  loaded: 8,
  deadLettered: 2,
  retries: 1,
  failureRate: 0.2,
  alerted: false,
  endedAt,
  ...overrides
})

const summary = (r: RunLedger.RunRecord) => `${r.runId}:${r.partition}:${r.status}`

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`SqlRunLedger [${backend.name}]`, (it) => {
    it.effect("start records a running run with zero counts and no end", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_start")
        yield* ledger.start({ runId: `${pipeline}-a`, pipeline, partition: day(0), startedAt: 1_709_251_200_123 })
        assert.deepStrictEqual(yield* ledger.list(pipeline), [{
          runId: `${pipeline}-a`,
          pipeline,
          partition: day(0),
          status: "running",
          read: 0,
          loaded: 0,
          deadLettered: 0,
          retries: 0,
          failureRate: 0,
          alerted: false,
          startedAt: 1_709_251_200_123,
          endedAt: undefined,
          errorType: undefined,
          error: undefined
        }])
      }))

    it.effect("finish records a success with its counts, rate, alert and alert message", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_finish")
        const runId = `${pipeline}-a`
        yield* ledger.start({ runId, pipeline, partition: day(0), startedAt: 1_000 })
        yield* ledger.finish(
          runId,
          succeeded(2_500, {
            read: 3_000_000_000,
            loaded: 2_999_999_999,
            deadLettered: 1,
            failureRate: 1 / 3_000_000_000,
            alerted: true,
            errorType: "FailureRateExceeded",
            error: "failure rate 0.00% above threshold"
          })
        )
        const [run] = yield* ledger.list(pipeline)
        assert.deepStrictEqual(run, {
          runId,
          pipeline,
          partition: day(0),
          status: "succeeded",
          read: 3_000_000_000,
          loaded: 2_999_999_999,
          deadLettered: 1,
          retries: 1,
          failureRate: 1 / 3_000_000_000,
          alerted: true,
          startedAt: 1_000,
          endedAt: 2_500,
          errorType: "FailureRateExceeded",
          error: "failure rate 0.00% above threshold"
        })
      }))

    it.effect("finish records a failure with its error; a later success clears nothing of it", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_failed")
        yield* ledger.start({ runId: `${pipeline}-a`, pipeline, partition: day(0), startedAt: 1_000 })
        yield* ledger.finish(`${pipeline}-a`, {
          status: "failed",
          read: 0,
          loaded: 0,
          deadLettered: 0,
          retries: 3,
          failureRate: 0,
          alerted: false,
          endedAt: 9_000,
          errorType: "SourceError.HttpStatus",
          error: "HTTP 503 from http://orders/2024-03-01"
        })
        yield* ledger.start({ runId: `${pipeline}-b`, pipeline, partition: day(0), startedAt: 10_000 })
        yield* ledger.finish(`${pipeline}-b`, succeeded(11_000))
        const [latest, first] = yield* ledger.list(pipeline)
        assert.strictEqual(latest?.status, "succeeded")
        assert.strictEqual(latest?.errorType, undefined)
        assert.strictEqual(latest?.error, undefined)
        assert.deepStrictEqual(
          [first?.status, first?.retries, first?.errorType, first?.error, first?.endedAt],
          ["failed", 3, "SourceError.HttpStatus", "HTTP 503 from http://orders/2024-03-01", 9_000]
        )
      }))

    it.effect("list is newest first and filters partitions by an inclusive range", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_list")
        const runs: ReadonlyArray<readonly [string, Partition.PartitionDate, number]> = [
          ["r1", day(0), 100],
          ["r2", day(2), 200],
          ["r3", day(1), 300],
          ["r4", day(3), 400],
          ["r5", day(2), 500]
        ]
        for (const [runId, partition, startedAt] of runs) {
          yield* ledger.start({ runId: `${pipeline}-${runId}`, pipeline, partition, startedAt })
          yield* ledger.finish(`${pipeline}-${runId}`, succeeded(startedAt + 50))
        }
        yield* ledger.start({
          runId: unique("ledger_other"),
          pipeline: unique("other"),
          partition: day(0),
          startedAt: 1
        })
        const ids = (rs: ReadonlyArray<RunLedger.RunRecord>) => rs.map((r) => r.runId.slice(pipeline.length + 1))
        assert.deepStrictEqual(ids(yield* ledger.list(pipeline)), ["r5", "r4", "r3", "r2", "r1"])
        assert.deepStrictEqual(ids(yield* ledger.list(pipeline, { start: day(1), end: day(2) })), ["r5", "r3", "r2"])
        assert.deepStrictEqual(ids(yield* ledger.list(pipeline, { start: day(3) })), ["r4"])
        assert.deepStrictEqual(ids(yield* ledger.list(pipeline, { end: day(0) })), ["r1"])
        assert.deepStrictEqual(yield* ledger.list(pipeline, { start: day(4), end: day(9) }), [])
      }))

    it.effect("latest is the newest run of each partition, ordered by partition", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_latest")
        const plan: ReadonlyArray<readonly [string, Partition.PartitionDate, number, "succeeded" | "failed"]> = [
          ["a", day(2), 100, "failed"],
          ["b", day(0), 200, "succeeded"],
          ["c", day(2), 300, "succeeded"],
          ["d", day(0), 400, "failed"],
          ["e", day(1), 500, "succeeded"]
        ]
        for (const [id, partition, startedAt, status] of plan) {
          yield* ledger.start({ runId: `${pipeline}-${id}`, pipeline, partition, startedAt })
          yield* ledger.finish(`${pipeline}-${id}`, succeeded(startedAt + 1, { status }))
        }
        assert.deepStrictEqual((yield* ledger.latest(pipeline)).map(summary), [
          `${pipeline}-d:${day(0)}:failed`,
          `${pipeline}-e:${day(1)}:succeeded`,
          `${pipeline}-c:${day(2)}:succeeded`
        ])
        assert.deepStrictEqual(yield* ledger.latest(unique("nobody")), [])
      }))

    it.effect("latest breaks a tie on the start time by run id, like list", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_tie")
        for (const id of ["b", "c", "a"]) {
          yield* ledger.start({ runId: `${pipeline}-${id}`, pipeline, partition: day(0), startedAt: 5_000 })
          yield* ledger.finish(`${pipeline}-${id}`, succeeded(6_000))
        }
        assert.deepStrictEqual((yield* ledger.latest(pipeline)).map((r) => r.runId), [`${pipeline}-c`])
        assert.strictEqual((yield* ledger.list(pipeline))[0]?.runId, `${pipeline}-c`)
      }))

    it.effect("a new run closes a run of the same partition left running (its process died) as Abandoned", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_abandoned")
        const other = unique("ledger_abandoned_other")
        yield* ledger.start({ runId: `${pipeline}-dead`, pipeline, partition: day(0), startedAt: 1_000 })
        yield* ledger.start({ runId: `${pipeline}-other-day`, pipeline, partition: day(1), startedAt: 1_500 })
        yield* ledger.start({ runId: `${other}-dead`, pipeline: other, partition: day(0), startedAt: 1_600 })
        yield* ledger.start({ runId: `${pipeline}-next`, pipeline, partition: day(0), startedAt: 2_000 })
        const byId = new Map((yield* ledger.list(pipeline)).map((r) => [r.runId, r]))
        const dead = byId.get(`${pipeline}-dead`)
        assert.deepStrictEqual(
          [dead?.status, dead?.endedAt, dead?.errorType, dead?.error],
          ["failed", 2_000, "Abandoned", `abandoned: still running when run ${pipeline}-next started`]
        )
        assert.strictEqual(byId.get(`${pipeline}-next`)?.status, "running")
        assert.strictEqual(byId.get(`${pipeline}-other-day`)?.status, "running", "other partitions are not touched")
        assert.strictEqual((yield* ledger.list(other))[0]?.status, "running", "other pipelines are not touched")
      }))

    it.effect("markAbandoned closes a running run as failed (Abandoned), and leaves a finished one as it is", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_mark_abandoned")
        yield* ledger.start({ runId: `${pipeline}-dead`, pipeline, partition: day(0), startedAt: 1_000 })
        yield* ledger.start({ runId: `${pipeline}-done`, pipeline, partition: day(1), startedAt: 1_100 })
        yield* ledger.finish(`${pipeline}-done`, succeeded(1_200))
        yield* ledger.start({ runId: `${pipeline}-live`, pipeline, partition: day(2), startedAt: 1_300 })
        assert.isTrue(yield* ledger.markAbandoned(`${pipeline}-dead`, { endedAt: 3_000, error: "gone" }))
        assert.isFalse(yield* ledger.markAbandoned(`${pipeline}-dead`, { endedAt: 4_000, error: "again" }))
        assert.isFalse(yield* ledger.markAbandoned(`${pipeline}-done`, { endedAt: 4_000, error: "finished" }))
        assert.isFalse(yield* ledger.markAbandoned(`${pipeline}-nobody`, { endedAt: 4_000, error: "none" }))
        const byId = new Map((yield* ledger.list(pipeline)).map((r) => [r.runId, r]))
        const dead = byId.get(`${pipeline}-dead`)
        assert.deepStrictEqual(
          [dead?.status, dead?.endedAt, dead?.errorType, dead?.error, dead?.read],
          ["failed", 3_000, "Abandoned", "gone", 0]
        )
        const done = byId.get(`${pipeline}-done`)
        assert.deepStrictEqual([done?.status, done?.endedAt, done?.errorType], ["succeeded", 1_200, undefined])
        assert.strictEqual(byId.get(`${pipeline}-live`)?.status, "running", "other runs are not touched")
      }))

    it.effect("starting a run id twice fails with a non-retryable SinkError and changes nothing", () =>
      Effect.gen(function*() {
        const ledger = yield* RunLedger.RunLedger
        const pipeline = unique("ledger_dup")
        yield* ledger.start({ runId: `${pipeline}-a`, pipeline, partition: day(0), startedAt: 1_000 })
        const error = yield* Effect.flip(
          ledger.start({ runId: `${pipeline}-a`, pipeline, partition: day(1), startedAt: 2_000 })
        )
        assert.strictEqual(error._tag, "SinkError")
        assert.strictEqual(error.operation, "start run")
        assert.isFalse(error.isRetryable)
        assert.deepStrictEqual((yield* ledger.list(pipeline)).map(summary), [`${pipeline}-a:${day(0)}:running`])
      }))
  })
}
