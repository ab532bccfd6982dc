/**
 * The events app's record: a product-analytics event as sent by the tracking system, one JSON
 * object per line.
 *
 * The tracking system delivers **at least once** and may **correct** an event after the fact: every
 * version of an event carries its `event_id` and the time it was sent (`updated_at`); a later
 * version replaces an earlier one. It may also **retract** an event (a delete): a line
 * `{"event_id": …, "deleted": true, "updated_at": …}`.
 *
 * - Timestamps are UTC, ISO 8601 with a `Z`: `2024-03-01T10:15:30Z` or `2024-03-01T10:15:30.250Z`.
 * - `properties` is an optional JSON object (`{}` when absent).
 * - Unknown extra fields are tolerated (and dropped).
 *
 * Rules: an event is never sent after the day of the file it arrives in (`updated_at` is on or
 * before the partition), and never updated before it occurred.
 *
 * @since 0.1.0
 */
import { Partition, Transform } from "@sluice/core"
import { DateTime, Effect, Schema, SchemaTransformation } from "effect"

const timestampPattern = /^(\d{4}-\d{2}-\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?Z$/

/**
 * A UTC timestamp, `YYYY-MM-DDTHH:MM:SS[.mmm]Z`, decoded into a `DateTime.Utc`. Impossible dates
 * (`2024-02-30…`) and times (`…T24:00:00Z`) are rejected, never rolled over.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Timestamp } from "@sluice-app/events/Event"
 *
 * Schema.decodeUnknownSync(Timestamp)("2024-03-01T10:15:30Z") // DateTime.Utc
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Timestamp = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const match = timestampPattern.exec(s)
    return (match !== null && Partition.isDateString(match[1]!)) ||
      `expected a UTC timestamp like "2024-03-01T10:15:30Z", got ${JSON.stringify(s)}`
  })
).pipe(Schema.decodeTo(Schema.DateTimeUtc, SchemaTransformation.dateTimeUtcFromString))

/**
 * An event id: 1 to 64 letters, digits, `_`, `-`, `.` or `:`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventId = Schema.String.check(
  Schema.makeFilter((s: string) =>
    /^[A-Za-z0-9_.:-]{1,64}$/.test(s) || `expected an event id of 1 to 64 of [A-Za-z0-9_.:-], got ${JSON.stringify(s)}`
  )
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const EventType = Schema.Literals(["page_view", "click", "add_to_cart", "purchase", "signup"])

/**
 * A version of an event.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LiveEvent = Schema.Struct({
  event_id: EventId,
  event_type: EventType,
  user_id: Schema.Int.check(Schema.isGreaterThan(0)),
  occurred_at: Timestamp,
  updated_at: Timestamp,
  properties: Schema.Record(Schema.String, Schema.Json).pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  deleted: Schema.optionalKey(Schema.Literal(false))
})

/**
 * A retraction of an event: it must no longer be counted.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeletedEvent = Schema.Struct({
  event_id: EventId,
  updated_at: Timestamp,
  deleted: Schema.Literal(true)
})

/**
 * A line of the events feed: a version of an event, or its retraction.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "@sluice-app/events/Event"
 *
 * Schema.decodeUnknownSync(Event)({
 *   event_id: "evt-1",
 *   event_type: "click",
 *   user_id: 7,
 *   occurred_at: "2024-03-01T10:15:30Z",
 *   updated_at: "2024-03-01T10:15:31Z"
 * }) // { ..., properties: {} }
 * Schema.decodeUnknownSync(Event)({ event_id: "evt-1", deleted: true, updated_at: "2024-03-02T08:00:00Z" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event = Schema.Union([DeletedEvent, LiveEvent])

/**
 * @since 0.1.0
 * @category models
 */
export type Event = typeof Event.Type

/**
 * Whether an event line is a retraction.
 *
 * @since 0.1.0
 * @category guards
 */
export const isDeleted = (event: Event): event is typeof DeletedEvent.Type => event.deleted === true

/**
 * The business rules of an event line.
 *
 * @since 0.1.0
 * @category rules
 */
export const rules: ReadonlyArray<Transform.Rule<Event>> = [
  Transform.rule<Event>("updated_at_not_after_partition", (event, partition) => {
    const day = Partition.fromEpochMillis(DateTime.toEpochMillis(event.updated_at))
    return day <= partition ? undefined : `updated_at ${DateTime.formatIso(event.updated_at)} is after ${partition}`
  }),
  Transform.rule<Event>(
    "updated_after_occurred",
    (event) =>
      isDeleted(event) || DateTime.toEpochMillis(event.updated_at) >= DateTime.toEpochMillis(event.occurred_at)
        ? undefined
        : `updated_at ${DateTime.formatIso(event.updated_at)} is before occurred_at ${
          DateTime.formatIso(event.occurred_at)
        }`
  )
]

/**
 * The transform of the events feed: JSON → {@link Event} → {@link rules}.
 *
 * @since 0.1.0
 * @category transforms
 */
export const EventTransform: Transform.Transform<Event> = Transform.fromSchema(Event, { rules, exactNumbers: true })
