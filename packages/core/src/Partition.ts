/**
 * Partitions: the calendar date a daily pipeline run is about.
 *
 * A partition is a parameter of a run, never read from the clock, so that any
 * range of dates can be backfilled deterministically. Dates are plain
 * `YYYY-MM-DD` strings validated against the proleptic Gregorian calendar;
 * arithmetic is done on day numbers, never on `Date` objects.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const daysInMonth = (year: number, month: number): number =>
  month === 2
    ? (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
    : month === 4 || month === 6 || month === 9 || month === 11
    ? 30
    : 31

/** The number written by `count` ASCII digits of `text` at `from`, or -1. */
const digitsAt = (text: string, from: number, count: number): number => {
  let n = 0
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return -1
    n = n * 10 + digit
  }
  return n
}

/**
 * Whether a string is a real calendar date in `YYYY-MM-DD` form.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 *
 * Partition.isDateString("2024-02-29") // true
 * Partition.isDateString("2023-02-29") // false
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isDateString = (input: string): boolean => {
  // `YYYY-MM-DD`, read without a regular expression: it runs for every record's date
  if (input.length !== 10 || input.charCodeAt(4) !== 45 || input.charCodeAt(7) !== 45) return false
  const year = digitsAt(input, 0, 4)
  const month = digitsAt(input, 5, 2)
  const day = digitsAt(input, 8, 2)
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month)
}

/**
 * A calendar date `YYYY-MM-DD`, the partition key of a daily pipeline.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PartitionDate = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => isDateString(s) || "Expected a calendar date as YYYY-MM-DD")),
  Schema.brand("PartitionDate")
)

/**
 * @since 0.1.0
 * @category models
 */
export type PartitionDate = typeof PartitionDate.Type

/**
 * Decodes a partition date, failing with a `SchemaError` that names the input.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = Schema.decodeUnknownEffect(PartitionDate)

/**
 * Makes a partition date from a string known to be valid; throws otherwise.
 * Use it for literals in code and tests; decode untrusted input with {@link decode}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (input: string): PartitionDate => {
  if (!isDateString(input)) throw new Error(`Invalid partition date: ${JSON.stringify(input)}`)
  return input as PartitionDate
}

// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
const toDayNumber = (date: PartitionDate): number => {
  const y0 = Number(date.slice(0, 4))
  const m = Number(date.slice(5, 7))
  const d = Number(date.slice(8, 10))
  const y = m <= 2 ? y0 - 1 : y0
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

const fromDayNumber = (days: number): PartitionDate => {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp + (mp < 10 ? 3 : -9)
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0)
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}` as PartitionDate
}

/**
 * The date `days` days after (or before, when negative) `date`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const addDays = (date: PartitionDate, days: number): PartitionDate => fromDayNumber(toDayNumber(date) + days)

/**
 * Number of days from `start` to `end` (negative when `end` is earlier).
 *
 * @since 0.1.0
 * @category combinators
 */
export const daysBetween = (start: PartitionDate, end: PartitionDate): number => toDayNumber(end) - toDayNumber(start)

/**
 * Every date from `start` to `end`, both included, in order. Empty when `end` is before `start`.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 *
 * Partition.range(Partition.makeUnsafe("2024-02-28"), Partition.makeUnsafe("2024-03-01"))
 * // ["2024-02-28", "2024-02-29", "2024-03-01"]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const range = (start: PartitionDate, end: PartitionDate): Array<PartitionDate> => {
  const from = toDayNumber(start)
  const to = toDayNumber(end)
  const out: Array<PartitionDate> = []
  for (let day = from; day <= to; day++) out.push(fromDayNumber(day))
  return out
}

/**
 * The partition date (UTC) of an instant given in epoch milliseconds, e.g. from `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEpochMillis = (millis: number): PartitionDate => fromDayNumber(Math.floor(millis / 86_400_000))
