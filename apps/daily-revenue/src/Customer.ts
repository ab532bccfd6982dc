/**
 * The shop's customer feed: change records of customers (one JSON object per line), each the
 * customer's state at `updated_at`, or its deletion. A customer may change several times a day,
 * changes arrive in any order (late ones included), and the feed sometimes sends a change without
 * a `customer_id`.
 *
 * - An **upsert** carries `name`, `city`, optionally `email` (a string or `null`), and
 *   `deleted: false` or no `deleted` at all.
 * - A **deletion** carries `deleted: true` and needs nothing but `updated_at` (other fields are
 *   ignored).
 * - `updated_at` is an ISO-8601 instant with a zone (`2024-03-01T10:15:00Z`,
 *   `2024-03-01T12:15:00.250+02:00`), at most millisecond precision, of a real date and time
 *   (`2024-02-30`, `24:00` or an offset beyond 14 hours are rejected, never rolled over), of a year
 *   from 0001 to 9999 (the epoch and earlier included: every such instant fits a `timestamptz`); it is
 *   decoded to epoch milliseconds (negative before 1970).
 * - `customer_id` may be `null` or absent here: the schema describes the feed as it is, and the
 *   merge strategy that loads it rejects a change without a key (dead letter `MissingKey`) rather
 *   than the decoder, because it is the strategy that cannot place it.
 *
 * Unknown extra fields are tolerated (and dropped).
 *
 * @since 0.1.0
 */
import { Partition, Transform } from "@sluice/core"
import { Schema, SchemaGetter } from "effect"

const maxTextLength = 256

const Text = Schema.String.check(
  Schema.makeFilter((s: string) => s.trim() !== "" || "must not be empty or blank"),
  Schema.isMaxLength(maxTextLength)
)

/** The farthest offset from UTC of a time zone, in minutes (UTC+14:00, Kiribati): `+14:30` is none. */
const maxOffsetMinutes = 14 * 60

const instantPattern = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?(?:Z|[+-](\d{2}):(\d{2}))$/

/**
 * A real calendar date and time of day (`Date.parse` rolls `2024-02-30` over to March 1st and
 * `24:00` to the next day), an offset of at most 14 hours (`+14:00`; `+14:30` is past it); the epoch and every instant before it
 * are instants too (`Date.parse` gives 0 and negative milliseconds).
 */
const checkInstant = (s: string): true | string => {
  const match = instantPattern.exec(s)
  return match !== null && Partition.isDateString(match[1]!) && Number(match[2]) < 24 && Number(match[3]) < 60 &&
      Number(match[4]) < 60 && Number(match[6] ?? 0) < 60 &&
      Number(match[5] ?? 0) * 60 + Number(match[6] ?? 0) <= maxOffsetMinutes &&
      Number.isFinite(Date.parse(s))
    ? true
    : `expected an ISO-8601 instant with a zone like "2024-03-01T10:15:00Z", got ${JSON.stringify(s)}`
}

/**
 * An instant as ISO-8601 text with a zone, decoded to epoch milliseconds.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UpdatedAt } from "@sluice-app/daily-revenue/Customer"
 *
 * Schema.decodeUnknownSync(UpdatedAt)("2024-03-01T00:00:01Z") // 1709251201000
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const UpdatedAt = Schema.String.check(Schema.makeFilter(checkInstant)).pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transform((s: string) => Date.parse(s)),
    encode: SchemaGetter.transform((millis: number) => new Date(millis).toISOString())
  })
)

/** `null` or absent: a change the merge cannot place (see the module documentation). */
const CustomerId = Schema.optionalKey(Schema.NullOr(Schema.Int.check(Schema.isGreaterThan(0))))

/**
 * A customer's state at `updated_at`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomerUpsert = Schema.Struct({
  customer_id: CustomerId,
  name: Text,
  email: Schema.optionalKey(Schema.NullOr(Text)),
  city: Text,
  updated_at: UpdatedAt,
  deleted: Schema.optionalKey(Schema.Literal(false))
})

/**
 * A customer deleted at `updated_at`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomerDeletion = Schema.Struct({
  customer_id: CustomerId,
  updated_at: UpdatedAt,
  deleted: Schema.Literal(true)
})

/**
 * A change record of the customer feed: an upsert or a deletion.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { CustomerChange } from "@sluice-app/daily-revenue/Customer"
 *
 * Schema.decodeUnknownSync(CustomerChange)({ customer_id: 7, deleted: true, updated_at: "2024-03-01T09:00:00Z" })
 * // { customer_id: 7, updated_at: 1709283600000, deleted: true }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomerChange = Schema.Union([CustomerDeletion, CustomerUpsert])

/**
 * @since 0.1.0
 * @category models
 */
export type CustomerChange = typeof CustomerChange.Type

/**
 * The values of a change in the column order of `raw.customers` plus the deleted flag:
 * `customer_id, name, email, city, updated_at, deleted`.
 *
 * @since 0.1.0
 * @category rows
 */
export const toRow = (c: CustomerChange): ReadonlyArray<unknown> =>
  c.deleted === true
    ? [c.customer_id ?? null, null, null, null, c.updated_at, true]
    : [c.customer_id ?? null, c.name, c.email ?? null, c.city, c.updated_at, false]

/**
 * The transform of the customer feed: JSON → {@link CustomerChange}.
 *
 * @since 0.1.0
 * @category transforms
 */
export const CustomerTransform: Transform.Transform<CustomerChange> = Transform.fromSchema(CustomerChange, {
  exactNumbers: true
})
