/**
 * The customers app's record: a customer change, as sent by the CRM (one JSON object per line).
 *
 * - `customer_id`: a positive integer.
 * - `changed_at`: when the change happened, an ISO 8601 instant with a time zone
 *   (`2024-03-01T09:30:00Z`, `2024-03-01T10:30:00.250+01:00`; an offset of at most 14 hours); a local
 *   time without a zone is ambiguous and rejected. It is kept to the millisecond (the dimension orders changes by it), so a
 *   finer instant (`…00.1239Z`) is rejected rather than rounded: two changes a fraction of a
 *   millisecond apart would tie and be applied in arrival order. It may be days before the file's date (a late change) but not after
 *   the end of the file's day (UTC): a change cannot be delivered before it happens.
 * - `name`, `city`: non-blank text, required unless the change is a delete.
 * - `email`: optional (absent or `null`: none).
 * - `deleted`: optional, `true` when the customer was deleted at the source; a delete needs no
 *   other field.
 *
 * Unknown extra fields are tolerated (and dropped).
 *
 * @since 0.1.0
 */
import { Partition, Transform } from "@sluice/core"
import { DateTime, Schema, SchemaTransformation } from "effect"

const maxTextLength = 256

const Text = Schema.String.check(
  Schema.makeFilter((s: string) => s.trim() !== "" || "must not be empty or blank"),
  Schema.isMaxLength(maxTextLength)
)

const instantPattern = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:Z|[+-](\d{2}):(\d{2}))$/

/** The farthest offset from UTC of a time zone, in minutes (UTC+14:00, Kiribati): `+14:30` is none. */
const maxOffsetMinutes = 14 * 60

/** The most fractional digits of a second: changes are ordered to the millisecond. */
const maxFractionDigits = 3

/**
 * The form, a real calendar date and clock time (`Date.parse` would roll `02-30` over to March),
 * an offset of at most 14 hours (`+14:00`, not `+14:30`), and no finer than the millisecond.
 */
const checkInstant = (s: string): string | true => {
  const match = instantPattern.exec(s)
  const valid = match !== null && Partition.isDateString(match[1]!) && Number(match[2]) < 24 &&
    Number(match[3]) < 60 && Number(match[4] ?? 0) < 60 && Number(match[7] ?? 0) < 60 &&
    Number(match[6] ?? 0) * 60 + Number(match[7] ?? 0) <= maxOffsetMinutes
  if (!valid) {
    return `expected an ISO 8601 instant with a time zone, like 2024-03-01T09:30:00Z, got ${JSON.stringify(s)}`
  }
  const fraction = match[5]
  return fraction === undefined || fraction.length <= maxFractionDigits ||
    `expected an instant to the millisecond (at most ${maxFractionDigits} fractional digits), got ${JSON.stringify(s)}`
}

/**
 * An ISO 8601 instant with a time zone (`Z` or an offset), decoded to a UTC `DateTime`.
 *
 * @example
 * ```ts
 * import { DateTime, Schema, SchemaTransformation } from "effect"
 * import { ChangedAt } from "@sluice-app/customers/Customer"
 *
 * DateTime.formatIso(Schema.decodeUnknownSync(ChangedAt)("2024-03-01T10:30:00+01:00")) // "2024-03-01T09:30:00.000Z"
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChangedAt = Schema.String.check(Schema.makeFilter(checkInstant)).pipe(
  Schema.decodeTo(Schema.DateTimeUtc, SchemaTransformation.dateTimeUtcFromString)
)

/**
 * A customer change.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Customer } from "@sluice-app/customers/Customer"
 *
 * Schema.decodeUnknownSync(Customer)({
 *   customer_id: 42,
 *   name: "Ada Lovelace",
 *   city: "London",
 *   changed_at: "2024-03-01T09:30:00Z"
 * })
 * Schema.decodeUnknownSync(Customer)({ customer_id: 42, changed_at: "2024-03-02T08:00:00Z", deleted: true })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Customer = Schema.Struct({
  customer_id: Schema.Int.check(Schema.isGreaterThan(0)),
  name: Schema.optional(Text),
  city: Schema.optional(Text),
  email: Schema.optional(Schema.NullOr(Text)),
  changed_at: ChangedAt,
  deleted: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Customer = typeof Customer.Type

/**
 * The business rules of a change: a live change names the customer and their city; it is not
 * dated after the end of the file's day.
 *
 * @since 0.1.0
 * @category rules
 */
export const rules: ReadonlyArray<Transform.Rule<Customer>> = [
  Transform.rule(
    "live_change_has_name_and_city",
    (c) =>
      c.deleted === true || (c.name !== undefined && c.city !== undefined)
        ? undefined
        : `a change that is not a delete needs name and city`
  ),
  Transform.rule(
    "not_after_partition",
    (c, partition) =>
      DateTime.toEpochMillis(c.changed_at) < Date.parse(`${partition}T00:00:00Z`) + 86_400_000
        ? undefined
        : `changed_at ${DateTime.formatIso(c.changed_at)} is after the end of ${partition}`
  )
]

/**
 * The transform of the customer changes feed: JSON → {@link Customer} → {@link rules}.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import { CustomerTransform } from "@sluice-app/customers/Customer"
 *
 * CustomerTransform({ payload: "{\"customer_id\":0}", position: 1 }, Partition.makeUnsafe("2024-03-01"))
 * // Result.fail(RecordError(SchemaMismatch))
 * ```
 *
 * @since 0.1.0
 * @category transforms
 */
export const CustomerTransform: Transform.Transform<Customer> = Transform.fromSchema(Customer, {
  rules,
  exactNumbers: true
})
