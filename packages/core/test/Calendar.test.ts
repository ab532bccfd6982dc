import { assert, describe, it } from "@effect/vitest"
import { Calendar, DeadLetter, Partition, type RunLedger } from "@sluice/core"
import { Effect } from "effect"
import { TestClock } from "effect/testing"

const d = Partition.makeUnsafe

const run = (partition: string, status: RunLedger.RunStatus, startedAt: number, read = 10, dead = 1) =>
  ({
    runId: `run-${partition}-${startedAt}`,
    pipeline: "p",
    partition: d(partition),
    status,
    read,
    loaded: read - dead,
    deadLettered: dead,
    retries: 0,
    failureRate: read === 0 ? 0 : dead / read,
    alerted: dead / read > 0.05,
    startedAt,
    endedAt: status === "running" ? undefined : startedAt + 1,
    errorType: status === "failed" ? "SourceError.NotFound" : undefined,
    error: undefined
  }) satisfies RunLedger.RunRecord

describe("Calendar", () => {
  it.effect("the last complete day is yesterday, UTC, by Clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2024, 2, 5, 0, 0, 0))
      assert.strictEqual(yield* Calendar.lastCompleteDay, "2024-03-04")
      yield* TestClock.setTime(Date.UTC(2024, 2, 5, 23, 59, 59))
      assert.strictEqual(yield* Calendar.lastCompleteDay, "2024-03-04")
      yield* TestClock.setTime(Date.UTC(2024, 2, 1, 12))
      assert.strictEqual(yield* Calendar.lastCompleteDay, "2024-02-29")
    }))

  it("the data in place of a partition: its latest succeeded run, whatever ran after it", () => {
    const days = Calendar.make({
      start: d("2024-03-01"),
      end: d("2024-03-04"),
      runs: [
        run("2024-03-01", "succeeded", 100, 40),
        run("2024-03-01", "succeeded", 200, 50),
        run("2024-03-01", "failed", 300, 0, 0),
        run("2024-03-02", "failed", 100, 0, 0),
        run("2024-03-03", "succeeded", 100, 30),
        run("2024-03-03", "running", 200, 0, 0)
      ]
    })
    assert.deepStrictEqual(days.map((day) => [day.state, day.lastSucceeded?.startedAt, day.lastSucceeded?.read]), [
      ["failed", 200, 50],
      ["failed", undefined, undefined],
      ["running", 100, 30],
      ["missing", undefined, undefined]
    ])
  })

  it("every partition of the range: done, failed, running, missing, by its latest run", () => {
    const days = Calendar.make({
      start: d("2024-03-01"),
      end: d("2024-03-06"),
      runs: [
        run("2024-02-28", "succeeded", 1),
        run("2024-03-01", "failed", 1),
        run("2024-03-01", "succeeded", 2, 20, 0),
        run("2024-03-02", "succeeded", 1),
        run("2024-03-02", "failed", 2),
        run("2024-03-04", "running", 5),
        run("2024-03-07", "succeeded", 1)
      ]
    })
    assert.deepStrictEqual(days.map((x) => [x.partition, x.state, x.runs]), [
      ["2024-03-01", "done", 2],
      ["2024-03-02", "failed", 2],
      ["2024-03-03", "missing", 0],
      ["2024-03-04", "running", 1],
      ["2024-03-05", "missing", 0],
      ["2024-03-06", "missing", 0]
    ])
    const total = Calendar.summarize(days)
    assert.deepStrictEqual(
      [total.partitions, total.done, total.failed, total.running, total.missing, total.read, total.deadLettered],
      [6, 1, 1, 1, 3, 40, 2]
    )
    assert.strictEqual(total.failureRate, 2 / 40)
    assert.deepStrictEqual(Calendar.make({ start: d("2024-03-02"), end: d("2024-03-01"), runs: [] }), [])
  })
})

describe("DeadLetterStore.layerMemory", () => {
  const letter = (position: number, originalRecord: string): DeadLetter.DeadLetter => ({
    pipeline: "p",
    partition: d("2024-03-01"),
    stage: "transform",
    position,
    originalRecord,
    errorType: "InvalidJson",
    error: "bad",
    failedAt: 1000,
    runId: "r1"
  })

  it.effect("keeps ids, status and attempts across a re-run; discards, records attempts and purges", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const all = { status: DeadLetter.statuses }
      yield* store.write([letter(1, "a"), letter(2, "b"), letter(3, "c")])
      const first = yield* store.list("p", all)
      assert.strictEqual(yield* store.discard("p", { ids: [first[2]!.id] }), 1)
      // a re-run: position 1 fails again, 2 now loads, 3 (discarded) fails again
      yield* store.clearPartition("p", d("2024-03-01"))
      yield* store.write([{ ...letter(1, "a"), error: "worse", runId: "r2" }, letter(3, "c")])
      const after = yield* store.list("p", all)
      assert.deepStrictEqual(after.map((x) => [x.id, x.position, x.status, x.attempts, x.error]), [
        [first[0]!.id, 1, "new", 2, "worse"],
        [first[1]!.id, 2, "replayed", 1, "bad"],
        [first[2]!.id, 3, "discarded", 2, "bad"]
      ])
      assert.deepStrictEqual(yield* store.countByType("p"), [{ errorType: "InvalidJson", count: 1 }])
      assert.deepStrictEqual((yield* store.list("p")).map((x) => x.position), [1, 3])
      yield* store.recordAttempts("p", [{ id: first[0]!.id, errorType: "SchemaMismatch", error: "e", failedAt: 5 }])
      const one = yield* store.get("p", first[0]!.id)
      assert.deepStrictEqual(
        one._tag === "Some" ? [one.value.attempts, one.value.errorType, one.value.failedAt] : [],
        [3, "SchemaMismatch", 5]
      )
      assert.strictEqual((yield* store.get("p", "999"))._tag, "None")
      assert.strictEqual(yield* store.purge({ before: 1001, statuses: ["replayed", "discarded"] }), 2)
      assert.deepStrictEqual((yield* store.list("p", all)).map((x) => x.position), [1])
    }).pipe(Effect.provide(DeadLetter.DeadLetterStore.layerMemory)))
})
