/**
 * How every implementation of `DeadLetterStore` keeps a dead letter's identity across re-runs of its
 * partition, written once: the in-memory layer runs it here, `SqlDeadLetterStore` on every database
 * backend.
 */
import { assert, type Vitest } from "@effect/vitest"
import { DeadLetter, Partition } from "@sluice/core"
import { Effect } from "effect"

let counter = 0
/** A pipeline of its own for each test, so tests sharing a store never see each other's dead letters. */
const uniquePipeline = (prefix: string) => `${prefix}_${++counter}_${Math.random().toString(36).slice(2, 8)}`

const day0 = Partition.makeUnsafe("2024-03-01")
const day1 = Partition.makeUnsafe("2024-03-02")
const every = { status: DeadLetter.statuses }

/** The bad lines of a source file, as `[position, payload]`. */
type BadLines = ReadonlyArray<readonly [number, string]>

/**
 * A run of `partition`: its dead letters set aside, then the file's bad lines written again (as
 * `Pipeline.run` does, in one transaction there).
 */
const rerun = (pipeline: string, lines: BadLines, runId: string, partition = day0) =>
  Effect.gen(function*() {
    const store = yield* DeadLetter.DeadLetterStore
    yield* store.clearPartition(pipeline, partition)
    yield* store.write(lines.map(([position, originalRecord]) => ({
      pipeline,
      partition,
      stage: "transform",
      position,
      originalRecord,
      errorType: "SchemaMismatch",
      error: `line ${position} is wrong`,
      failedAt: 1_709_251_200_000,
      runId
    })))
  })

/** Each dead letter of the pipeline as `[id, position, payload, status, attempts]`, in list order. */
const snapshot = Effect.fnUntraced(function*(pipeline: string, partition = day0) {
  const store = yield* DeadLetter.DeadLetterStore
  const ds = yield* store.list(pipeline, { ...every, partition })
  return ds.map((d) => [d.id, d.position, d.originalRecord, d.status, d.attempts] as const)
})

export const deadLetterStoreSuite = (it: Vitest.MethodsNonLive<DeadLetter.DeadLetterStore>) => {
  it.effect("pipelines(prefix) names the pipelines with dead letters of any status under the prefix", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const p = uniquePipeline("names")
      const prefix = `${p}@replay-`
      // new, discarded, and only resolved (`replayed`: a re-run wrote nothing); others not under the prefix
      yield* rerun(`${prefix}b`, [[1, "{"]], "r1")
      yield* rerun(`${prefix}a`, [[1, "{"], [2, "["]], "r1")
      yield* store.discard(`${prefix}a`, {})
      yield* rerun(`${prefix}c`, [[1, "{"]], "r1")
      yield* rerun(`${prefix}c`, [], "r2")
      for (const other of [p, `${p}@replay`, `${p}x@replay-d`]) yield* rerun(other, [[1, "{"]], "r1")

      assert.deepStrictEqual(yield* store.pipelines(prefix), [`${prefix}a`, `${prefix}b`, `${prefix}c`])
      assert.deepStrictEqual(yield* store.pipelines(`${p}x@`), [`${p}x@replay-d`])
      assert.deepStrictEqual(yield* store.pipelines(`${p}@replay-z`), [])
      assert.strictEqual(yield* store.remove(`${prefix}c`), 1)
      assert.strictEqual(yield* store.remove(`${prefix}a`), 2)
      assert.deepStrictEqual(yield* store.pipelines(prefix), [`${prefix}b`])
    }))

  it.effect("a re-run with a line added or removed above a discarded bad line keeps its id and status", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const pipeline = uniquePipeline("dl_shift")
      const a = "{\"order_id\":\"o-2\",\"amount\":\"x\"}"
      const b = "{order_id: o-4"
      const c = "{\"order_id\":\"o-5\"}"
      yield* rerun(pipeline, [[2, a], [4, b], [5, c]], "r1")
      const [ia, ib, ic] = (yield* snapshot(pipeline)).map(([id]) => id)
      assert.strictEqual(yield* store.discard(pipeline, { ids: [ib!] }), 1)
      // the file fixed by adding a line at the top: every bad line moves down by one
      yield* rerun(pipeline, [[3, a], [5, b], [6, c]], "r2")
      assert.deepStrictEqual(yield* snapshot(pipeline), [
        [ia!, 3, a, "new", 2],
        [ib!, 5, b, "discarded", 2],
        [ic!, 6, c, "new", 2]
      ])
      assert.deepStrictEqual(yield* store.countByType(pipeline), [{ errorType: "SchemaMismatch", count: 2 }])
      // then by removing the first two lines: every bad line moves up by two
      yield* rerun(pipeline, [[1, a], [3, b], [4, c]], "r3")
      assert.deepStrictEqual(yield* snapshot(pipeline), [
        [ia!, 1, a, "new", 3],
        [ib!, 3, b, "discarded", 3],
        [ic!, 4, c, "new", 3]
      ])
      const got = yield* store.get(pipeline, ib!)
      assert.deepStrictEqual(
        got._tag === "Some" ? [got.value.status, got.value.runId, got.value.error] : [],
        ["discarded", "r3", "line 3 is wrong"]
      )
    }))

  it.effect("copies of one payload pair one to one, the k-th by position with the k-th resolved", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const pipeline = uniquePipeline("dl_copies")
      const x = "{\"amount\":\"x\"}"
      const y = "not json"
      yield* rerun(pipeline, [[1, x], [2, y], [3, x], [5, x]], "r1")
      const [x1, yId, x2, x3] = (yield* snapshot(pipeline)).map(([id]) => id)
      assert.strictEqual(new Set([x1, yId, x2, x3]).size, 4)
      yield* store.discard(pipeline, { ids: [x2!] })
      // lines added above each of them (written out of order, as a batch may be): the same rows, in order
      yield* rerun(pipeline, [[7, x], [6, y], [2, x], [4, x]], "r2")
      assert.deepStrictEqual(yield* snapshot(pipeline), [
        [x1!, 2, x, "new", 2],
        [x2!, 4, x, "discarded", 2],
        [yId!, 6, y, "new", 2],
        [x3!, 7, x, "new", 2]
      ])
      // two copies left: the first two rows; the third and `y` now load and stay resolved
      yield* rerun(pipeline, [[1, x], [3, x]], "r3")
      assert.deepStrictEqual(yield* snapshot(pipeline), [
        [x1!, 1, x, "new", 3],
        [x2!, 3, x, "discarded", 3],
        [yId!, 6, y, "replayed", 2],
        [x3!, 7, x, "replayed", 2]
      ])
      // four copies: three rows back, and one of its own
      yield* rerun(pipeline, [[1, x], [2, x], [3, x], [4, x]], "r4")
      const now = yield* snapshot(pipeline)
      assert.deepStrictEqual(now.slice(0, 3), [
        [x1!, 1, x, "new", 4],
        [x2!, 2, x, "discarded", 4],
        [x3!, 3, x, "new", 3]
      ])
      assert.deepStrictEqual(now.slice(3).map(([, ...rest]) => rest), [[4, x, "new", 1], [6, y, "replayed", 2]])
      const x4 = now[3]![0]
      assert.notInclude([x1, yId, x2, x3], x4)
      // resolved rows are taken by their last position, not their id: the first row now sits last
      yield* rerun(pipeline, [[9, x]], "r5")
      yield* rerun(pipeline, [[1, x], [2, x]], "r6")
      assert.deepStrictEqual((yield* snapshot(pipeline)).filter(([, , , status]) => status !== "replayed"), [
        [x2!, 1, x, "discarded", 5],
        [x3!, 2, x, "new", 4]
      ])
    }))

  it.effect("a payload that is gone stays resolved, in its partition only, until it fails again", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const pipeline = uniquePipeline("dl_gone")
      const p = "{\"order_id\":\"o-1\",\"amount\":-1}"
      const q = "{\"order_id\":\"o-2\""
      const r = "{\"order_id\":\"o-3\",\"amount\":null}"
      yield* rerun(pipeline, [[1, p], [2, q]], "r1")
      const [ip, iq] = (yield* snapshot(pipeline)).map(([id]) => id)
      yield* store.discard(pipeline, { ids: [iq!] })
      // `q` fixed, and another bad line where it was
      yield* rerun(pipeline, [[2, r], [3, p]], "r2")
      const second = yield* snapshot(pipeline)
      const ir = second.find(([, , payload]) => payload === r)?.[0]
      assert.notInclude([ip, iq], ir)
      assert.deepStrictEqual(second, [
        [iq!, 2, q, "replayed", 1],
        [ir!, 2, r, "new", 1],
        [ip!, 3, p, "new", 2]
      ])
      assert.deepStrictEqual((yield* store.list(pipeline)).map((d) => d.originalRecord), [r, p])
      // the same payload in another partition is a dead letter of its own
      yield* rerun(pipeline, [[2, q]], "r3", day1)
      const [other] = yield* snapshot(pipeline, day1)
      assert.deepStrictEqual(other?.slice(1), [2, q, "new", 1])
      assert.notStrictEqual(other?.[0], iq)
      assert.deepStrictEqual((yield* snapshot(pipeline)).find(([id]) => id === iq), [iq!, 2, q, "replayed", 1])
      // `q` broken again, lines later: its row back, discarded as it was
      yield* rerun(pipeline, [[2, r], [3, p], [9, q]], "r4")
      assert.deepStrictEqual((yield* snapshot(pipeline)).find(([id]) => id === iq), [iq!, 9, q, "discarded", 2])
      assert.deepStrictEqual(yield* store.list(pipeline, { status: ["replayed"] }), [])
    }))

  it.effect("countByPartition counts by partition and status, new ones unless told, without the payloads", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      const pipeline = uniquePipeline("dl_by_partition")
      yield* rerun(pipeline, [[1, "{a"], [2, "{b"], [3, "{c"]], "r1", day1)
      yield* rerun(pipeline, [[4, "{d"]], "r1", day0)
      const [first] = yield* store.list(pipeline, { partition: day1 })
      assert.strictEqual(yield* store.discard(pipeline, { ids: [first!.id] }), 1)
      assert.deepStrictEqual(yield* store.countByPartition(pipeline), [
        { partition: day0, status: "new", count: 1 },
        { partition: day1, status: "new", count: 2 }
      ])
      assert.deepStrictEqual(yield* store.countByPartition(pipeline, every), [
        { partition: day0, status: "new", count: 1 },
        { partition: day1, status: "discarded", count: 1 },
        { partition: day1, status: "new", count: 2 }
      ])
      assert.deepStrictEqual(yield* store.countByPartition(pipeline, { ...every, partition: day0 }), [
        { partition: day0, status: "new", count: 1 }
      ])
      assert.deepStrictEqual(yield* store.countByPartition(uniquePipeline("dl_none")), [])
    }))
}
