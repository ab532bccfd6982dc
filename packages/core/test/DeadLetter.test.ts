import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, Partition, RecordError } from "@sluice/core"
import { Arbitrary, Schema } from "effect"
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
