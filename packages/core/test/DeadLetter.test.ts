import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, Partition, RecordError } from "@sluice/core"
import { Arbitrary, Effect, Schema } from "effect"
import { deadLetterStoreSuite } from "./DeadLetterStoreSuite.ts"
import { anyString } from "./fixtures.ts"

const deadLetterOf = (payload: string, message: string) =>
  DeadLetter.fromRecordError({
    pipeline: "orders",
    partition: Partition.makeUnsafe("2024-03-01"),
    stage: "transform",
    runId: "run-1",
    failedAt: 1_709_251_200_000,
    record: { payload, position: 7 },
    error: new RecordError.RecordError({ reason: new RecordError.InvalidJson({ message }) })
  })

const between = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

describe("DeadLetter", () => {
  it.prop(
    "keeps the payload and the error message exactly, whatever they hold",
    [anyString, anyString, between(0, 40)],
    ([payload, message, cut]) => {
      // a payload sliced out of a larger chunk, and a message concatenated from pieces, as sources
      // and errors make them
      const chunk = `${"x".repeat(cut)}${payload}${"y".repeat(cut)}`
      const sliced = chunk.slice(cut, cut + payload.length)
      const d = deadLetterOf(sliced, message + "; " + message)
      assert.strictEqual(d.originalRecord, payload)
      assert.strictEqual(d.error, `${message}; ${message}`)
      assert.deepStrictEqual(
        [d.pipeline, d.partition, d.stage, d.position, d.errorType, d.runId, d.failedAt],
        ["orders", "2024-03-01", "transform", 7, "InvalidJson", "run-1", 1_709_251_200_000]
      )
    }
  )

  it("keeps a large payload exactly", () => {
    const payload = "beauty \uD800 😀 ".repeat(5_000)
    assert.strictEqual(deadLetterOf(`{${payload}}`.slice(1, -1), "too long").originalRecord, payload)
  })
})

layer(DeadLetter.DeadLetterStore.layerMemory)("DeadLetterStore.layerMemory", (it) => {
  // the behaviour every dead-letter store has (the same suite runs on SqlDeadLetterStore)
  deadLetterStoreSuite(it)
})

describe("DeadLetter.adopt (in memory)", () => {
  const letter = (pipeline: string, position: number, payload: string) => ({
    ...deadLetterOf(payload, "bad"),
    pipeline,
    position
  })
  it.effect("resolves the superseded range, takes back matching rows (id, status), deletes the source's", () =>
    Effect.gen(function*() {
      const store = yield* DeadLetter.DeadLetterStore
      yield* store.write([letter("live", 1, "a"), letter("live", 5, "b"), letter("live", 9, "c")])
      const [a, b, c] = yield* store.list("live")
      yield* store.discard("live", { ids: [c!.id] })
      // the reprocessing of positions 5..9 dead-letters c again, b no more, and d
      yield* store.write([letter("live@replay", 9, "c"), letter("live@replay", 7, "d")])
      const result = yield* DeadLetter.adopt({
        from: "live@replay",
        to: "live",
        supersedes: { positions: { from: 5, to: 9 } }
      })
      assert.deepStrictEqual(result, { superseded: 2, adopted: 2 })
      const after = yield* store.list("live", { status: DeadLetter.statuses })
      assert.deepStrictEqual(after.map((d) => [d.id === a!.id, d.id === b!.id, d.id === c!.id, d.position, d.status]), [
        [true, false, false, 1, "new"],
        [false, true, false, 5, "replayed"],
        [false, false, false, 7, "new"],
        [false, false, true, 9, "discarded"]
      ])
      assert.deepStrictEqual(yield* store.list("live@replay", { status: DeadLetter.statuses }), [])
      assert.strictEqual(yield* store.remove("live"), 4)
    }).pipe(Effect.provide(DeadLetter.DeadLetterStore.layerMemory)))
})
