/**
 * The daily-revenue app's record: an order, as sent by the orders system (one JSON object per line).
 *
 * **Amounts** are money and are kept exactly, as a canonical decimal string (`"19.99"`, `"20"`,
 * `"0.1"`), never as a float. The transform parses JSON with `JSON.parse`, which loses the text
 * of a number, so:
 * - a numeric **string** (`"19.99"`) is taken digit for digit;
 * - a JSON **number** is accepted only when its value is exactly recoverable: at most 15
 *   significant digits (every such decimal survives the round trip through a double, and
 *   JavaScript's shortest formatting gives it back), at most {@link amountScale} decimals.
 *   `19.99` becomes `"19.99"`, `0.1` becomes `"0.1"` (not `0.1000000000000000055…`). The
 *   literal as written counts, not the double `JSON.parse` makes of it: `19.990000000000000001`
 *   (read as `19.99`) and `1e-400` (read as `0`) are rejected ({@link OrderTransform} decodes
 *   with `exactNumbers`, which applies to every number of the order);
 * - both forms are canonicalised (no exponent, no leading zeros, no trailing fractional zeros),
 *   so `19.90` and `"019.90"` both decode to `"19.9"`;
 * - negative, `NaN`/`Infinity`, non-numeric (`"12,50"`, `"abc"`, `""`), more than
 *   {@link amountScale} decimals and numbers with more than 15 significant digits are rejected
 *   (the sender must send such amounts as strings), so nothing is ever rounded silently.
 *
 * **Currency** is an ISO-4217-style code of three capital letters. It may be absent — the orders
 * system omits it for domestic orders — and then defaults to `"USD"` ({@link defaultCurrency});
 * present but `null`, empty or malformed is rejected.
 *
 * **Loyalty points** (a later addition to the feed) are a non-negative whole number, or `null`; absent
 * (as in every order sent before the orders system added them) they default to `null`.
 *
 * Unknown extra fields are kept on the decoded record ({@link OrderTransform} decodes with
 * `Contract.open`), for the table's contract to judge: `raw.orders` drops them and counts them.
 *
 * @since 0.1.0
 */
import { Contract, Partition, Transform } from "@sluice/core"
import { Effect, Schema, SchemaGetter } from "effect"

/**
 * The most decimals an amount may have.
 *
 * @since 0.1.0
 * @category models
 */
export const amountScale = 4

/**
 * The currency of an order that does not say.
 *
 * @since 0.1.0
 * @category models
 */
export const defaultCurrency = "USD"

/** The longest text accepted in a text field; longer values are rejected rather than stored. */
const maxTextLength = 256

const decimalPattern = /^(\d+)(?:\.(\d+))?$/

/** Canonical form of a non-negative decimal in plain notation: `007.50` → `7.5`. */
const canonical = (text: string): string => {
  const match = decimalPattern.exec(text)!
  const integer = match[1]!.replace(/^0+(?=\d)/, "")
  const fraction = (match[2] ?? "").replace(/0+$/, "")
  return fraction === "" ? integer : `${integer}.${fraction}`
}

const scaleOf = (text: string): number => {
  const dot = text.indexOf(".")
  return dot === -1 ? 0 : text.length - dot - 1
}

/**
 * Whether `text` is already in canonical form (`canonical(text) === text`): digits with at most one
 * dot inside, no leading zero before another digit, no trailing fractional zero. `String(n)` of
 * every accepted amount is, so the hot path skips the regular expressions of {@link canonical}.
 */
const isCanonical = (text: string): boolean => {
  const length = text.length
  if (length === 0) return false
  let dot = -1
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) {
      if (dot !== -1 || i === 0 || i === length - 1) return false
      dot = i
    } else if (c < 48 || c > 57) {
      return false
    }
  }
  if (text.charCodeAt(0) === 48 && length > 1 && dot !== 1) return false
  return dot === -1 || text.charCodeAt(length - 1) !== 48
}

const canonicalOf = (text: string): string => isCanonical(text) ? text : canonical(text)

/** Number of significant digits of a decimal text: `text.replace(".", "").replace(/^0+/, "").length`. */
const significantDigits = (text: string): number => {
  const dot = text.indexOf(".")
  let zeros = 0
  for (let i = 0; i < text.length; i++) {
    if (i === dot) continue
    if (text.charCodeAt(i) !== 48) break
    zeros++
  }
  return text.length - (dot === -1 ? 0 : 1) - zeros
}

/**
 * The units of ten-thousandths of `n` when `n` is the double nearest to a decimal `d` with at most 4
 * decimals, below 1e11 (`units / 10000 === n`, computed exactly); otherwise -1. Such a `d` has at most
 * 15 significant digits, so it is the shortest decimal that round-trips to `n`, i.e. `String(n)`:
 * the amount is valid as it is, and its text is assembled from integers, already canonical.
 */
const exactUnits = (n: number): number => {
  if (n >= 0 && n < 1e11) {
    const units = Math.round(n * 10000)
    if (units / 10000 === n) return units
  }
  return -1
}

/** The canonical text of `units` ten-thousandths (see {@link exactUnits}). */
const unitsText = (units: number): string => {
  let fraction = units % 10000
  const integer = String((units - fraction) / 10000)
  if (fraction === 0) return integer
  let digits = 4
  while (fraction % 10 === 0) {
    fraction /= 10
    digits--
  }
  return `${integer}.${String(fraction).padStart(digits, "0")}`
}

const checkAmountNumber = (n: number): string | true => {
  // the usual amount (at most 4 decimals, below 1e11) is valid without formatting it
  if (exactUnits(n) !== -1) return true
  if (n < 0) return `amount must not be negative, got ${n}`
  const text = String(n)
  if (text.includes("e")) {
    return n < 1
      ? `amount ${text} has more than ${amountScale} decimals`
      : `amount ${text} is too large to be exact; send it as a string`
  }
  if (significantDigits(text) > 15) return `amount ${text} has more than 15 significant digits; send it as a string`
  if (scaleOf(text) > amountScale) return `amount ${text} has more than ${amountScale} decimals`
  return true
}

/** The canonical text of a valid amount: from its units when exact (see {@link exactUnits}), else `String(n)`. */
const amountText = (n: number): string => {
  const units = exactUnits(n)
  return units !== -1 ? unitsText(units) : canonicalOf(String(n))
}

const checkAmountString = (s: string): string | true => {
  if (s.trim().startsWith("-")) return `amount must not be negative, got ${JSON.stringify(s)}`
  if (!decimalPattern.test(s)) return `amount must be a decimal number like "19.99", got ${JSON.stringify(s)}`
  if (scaleOf(s) > amountScale) return `amount ${s} has more than ${amountScale} decimals`
  return true
}

const AmountFromNumber = Schema.Finite.check(Schema.makeFilter(checkAmountNumber)).pipe(
  Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transform(amountText),
    encode: SchemaGetter.transform((s: string) => Number(s))
  })
)

const AmountFromString = Schema.String.check(Schema.makeFilter(checkAmountString)).pipe(
  Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transform(canonicalOf),
    encode: SchemaGetter.transform((s: string) => s)
  })
)

/**
 * A non-negative money amount, decoded from a JSON number or a numeric string into an exact,
 * canonical decimal string (see the module documentation for the rules).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Amount } from "@sluice-app/daily-revenue/Order"
 *
 * Schema.decodeUnknownSync(Amount)(19.99) // "19.99"
 * Schema.decodeUnknownSync(Amount)("0100.50") // "100.5"
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Amount = Schema.Union([AmountFromNumber, AmountFromString])

const Text = Schema.String.check(
  Schema.makeFilter((s: string) => s.trim() !== "" || "must not be empty or blank"),
  Schema.isMaxLength(maxTextLength)
)

/** `/^[A-Z]{3}$/.test(s)`, without the regular expression. */
const isCurrencyCode = (s: string): boolean => {
  if (s.length !== 3) return false
  for (let i = 0; i < 3; i++) {
    const c = s.charCodeAt(i)
    if (c < 65 || c > 90) return false
  }
  return true
}

/**
 * A currency code: three capital letters, `"USD"` when the field is absent.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Currency = Schema.String.check(
  Schema.makeFilter((s: string) => isCurrencyCode(s) || `expected a currency code like "USD", got ${JSON.stringify(s)}`)
).pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultCurrency)))

/**
 * Loyalty points earned by an order: a non-negative whole number or `null`, `null` when absent.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LoyaltyPoints = Schema.NullOr(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).pipe(
  Schema.withDecodingDefaultKey(Effect.succeed(null))
)

/**
 * An order line of the orders feed.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Order } from "@sluice-app/daily-revenue/Order"
 *
 * Schema.decodeUnknownSync(Order)({
 *   order_id: "ord-1",
 *   customer_id: 42,
 *   product_category: "books",
 *   amount: 19.99,
 *   order_date: "2024-03-01"
 * }) // { ..., amount: "19.99", currency: "USD", loyalty_points: null }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Order = Schema.Struct({
  order_id: Text,
  customer_id: Schema.Int.check(Schema.isGreaterThan(0)),
  product_category: Text,
  amount: Amount,
  currency: Currency,
  order_date: Partition.PartitionDate,
  loyalty_points: LoyaltyPoints
})

/**
 * @since 0.1.0
 * @category models
 */
export type Order = typeof Order.Type

/**
 * The business rules of an order: its date is the partition's date.
 *
 * @since 0.1.0
 * @category rules
 */
export const rules: ReadonlyArray<Transform.Rule<Order>> = [
  Transform.rule<Order>(
    "order_date_in_partition",
    (order, partition) =>
      order.order_date === partition ? undefined : `order_date ${order.order_date} is not the partition ${partition}`
  )
]

/**
 * The transform of the orders feed: JSON → {@link Order} → {@link rules}. Undeclared fields stay on
 * the record (see `Contract.open`) for the contract of `raw.orders`.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import { OrderTransform } from "@sluice-app/daily-revenue/Order"
 *
 * OrderTransform({ payload: "{\"order_id\":\"a\"}", position: 1 }, Partition.makeUnsafe("2024-03-01"))
 * // Result.fail(RecordError(SchemaMismatch))
 * ```
 *
 * @since 0.1.0
 * @category transforms
 */
export const OrderTransform: Transform.Transform<Order> = Transform.fromSchema(Contract.open(Order), {
  rules,
  exactNumbers: true
})
