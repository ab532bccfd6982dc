import { assert, describe, it } from "@effect/vitest"
import { Partition } from "@sluice/core"
import { DateTime, Result, Schema } from "effect"
import { Event, EventTransform } from "../src/Event.ts"

const decode = Schema.decodeUnknownResult(Event)
const day = Partition.makeUnsafe("2024-03-01")
const live = {
  event_id: "evt-1",
  event_type: "click",
  user_id: 7,
  occurred_at: "2024-03-01T10:15:30Z",
  updated_at: "2024-03-01T10:15:31.250Z"
} as const
const transform = (value: unknown) => EventTransform({ payload: JSON.stringify(value), position: 1 }, day)
const errorType = (value: unknown) => {
  const result = transform(value)
  return Result.isFailure(result) ? result.failure.errorType : "ok"
}

describe("Event", () => {
  it("decodes a version of an event: timestamps to UTC date-times, properties {} by default, extra fields dropped", () => {
    const event = Result.getOrThrow(decode({ ...live, sdk: "web-2.1" }))
    assert.deepStrictEqual(event, {
      ...live,
      occurred_at: DateTime.makeUnsafe("2024-03-01T10:15:30Z"),
      updated_at: DateTime.makeUnsafe("2024-03-01T10:15:31.250Z"),
      properties: {}
    })
    const withProperties = Result.getOrThrow(decode({ ...live, properties: { path: "/", n: 1, ok: true } }))
    assert.deepStrictEqual("properties" in withProperties ? withProperties.properties : {}, {
      path: "/",
      n: 1,
      ok: true
    })
  })

  it("decodes a retraction", () => {
    const event = Result.getOrThrow(decode({ event_id: "evt-1", deleted: true, updated_at: "2024-03-01T12:00:00Z" }))
    assert.deepStrictEqual(event, {
      event_id: "evt-1",
      deleted: true,
      updated_at: DateTime.makeUnsafe("2024-03-01T12:00:00Z")
    })
  })

  it.each(
    [
      ["a local time", { ...live, occurred_at: "2024-03-01 10:15:30" }],
      ["an offset", { ...live, occurred_at: "2024-03-01T10:15:30+02:00" }],
      ["a date only", { ...live, occurred_at: "2024-03-01" }],
      ["an impossible date, never rolled over", { ...live, updated_at: "2024-02-30T10:00:00Z" }],
      ["an impossible time", { ...live, updated_at: "2024-03-01T24:00:00Z" }],
      ["an unknown event type", { ...live, event_type: "scroll" }],
      ["a user id as a string", { ...live, user_id: "7" }],
      ["a retraction without time", { event_id: "evt-1", deleted: true }],
      ["an empty event id", { ...live, event_id: "" }],
      ["properties that are not an object", { ...live, properties: [1] }]
    ] as const
  )("rejects %s (SchemaMismatch)", (_, value) => {
    assert.strictEqual(errorType(value), "SchemaMismatch")
  })

  it("rejects properties holding a number a double cannot hold exactly (jsonb would keep the rounded one)", () => {
    const payload = JSON.stringify({ ...live, properties: { sku: 0, price: 1.5 } }).replace(
      `"sku":0`,
      `"sku":12345678901234567890`
    )
    const result = EventTransform({ payload, position: 1 }, day)
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure.errorType, "SchemaMismatch")
      assert.include((result.failure.reason as { readonly message: string }).message, "number 12345678901234567890")
    }
    assert.isTrue(
      Result.isSuccess(EventTransform({ payload: payload.replace("12345678901234567890", "1E2"), position: 1 }, day))
    )
  })

  it("checks its rules: never sent after the file's day, never updated before it occurred", () => {
    assert.strictEqual(errorType(live), "ok")
    assert.strictEqual(errorType({ ...live, updated_at: "2024-03-02T00:00:00Z" }), "RuleViolation")
    assert.strictEqual(errorType({ ...live, updated_at: "2024-03-01T10:15:29Z" }), "RuleViolation")
    // events of earlier days arrive late in this day's file
    assert.strictEqual(
      errorType({ ...live, occurred_at: "2024-02-28T23:00:00Z", updated_at: "2024-02-28T23:00:00Z" }),
      "ok"
    )
    assert.strictEqual(errorType({ event_id: "e", deleted: true, updated_at: "2024-03-02T00:00:00Z" }), "RuleViolation")
  })
})
