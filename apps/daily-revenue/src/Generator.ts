/**
 * A deterministic generator of sample order files: `<directory>/YYYY-MM-DD.jsonl`, one per day.
 *
 * Days have a realistic number of orders (200–400 by default, busier at weekends), amounts skewed
 * towards small baskets, repeat customers, unicode product categories (emoji, right-to-left
 * scripts, combining accents — all valid), optional fields and extra fields; and about 3% of bad
 * lines of many {@link BadKind kinds}, plus a few blank lines. Everything comes from a seeded PRNG
 * (never `Math.random` or the clock), each day from its own seed, so the same options always write
 * the same bytes.
 *
 * The returned {@link Manifest} says, per day, how many good and bad lines were written (bad ones
 * by kind and position) and the expected revenue per category, so tests can check conservation
 * and the loaded totals exactly.
 *
 * **Schema evolution** (off by default): with `evolvedFrom`, the orders system changes its record on
 * that day — before it, orders have no `currency` (it decodes as USD); from it on, every order has a
 * `currency` and most have `loyalty_points` — and each day's manifest says what the good orders
 * hold ({@link Evolution}). Without it the same options write the same bytes as before. The CLI's
 * `sluice generate-orders` turns it on from the {@link middleDay} of the range unless told otherwise
 * (`--evolved-from YYYY-MM-DD`, `--no-evolution`).
 *
 * @since 0.1.0
 */
import { Partition } from "@sluice/core"
import type { PartitionDate } from "@sluice/core/Partition"
import { BadLines, DayFiles, SeededRandom } from "@sluice/samples"
import { Effect, type FileSystem, Iterable, type PlatformError } from "effect"

/**
 * The kinds of bad lines, each with the record error it must produce.
 *
 * @since 0.1.0
 * @category models
 */
export const expectedErrorType = {
  invalid_json: "InvalidJson",
  truncated: "InvalidJson",
  missing_field: "SchemaMismatch",
  null_field: "SchemaMismatch",
  wrong_type: "SchemaMismatch",
  negative_amount: "SchemaMismatch",
  non_numeric_amount: "SchemaMismatch",
  amount_precision: "SchemaMismatch",
  non_positive_customer: "SchemaMismatch",
  impossible_date: "SchemaMismatch",
  bad_date_format: "SchemaMismatch",
  empty_string: "SchemaMismatch",
  bad_currency: "SchemaMismatch",
  not_an_object: "SchemaMismatch",
  huge_string: "SchemaMismatch",
  date_outside_partition: "RuleViolation"
} as const satisfies Record<string, BadLines.ExpectedError>

/**
 * @since 0.1.0
 * @category models
 */
export type BadKind = keyof typeof expectedErrorType

/**
 * @since 0.1.0
 * @category models
 */
export const badKinds: ReadonlyArray<BadKind> = BadLines.kindsOf(expectedErrorType)

/**
 * What was written for one day.
 *
 * @since 0.1.0
 * @category models
 */
export interface DayManifest extends DayFiles.DayManifest<BadKind> {
  /** Physical lines written (records + blank lines). */
  readonly lines: number
  readonly blankLines: number
  readonly badByKind: Readonly<Record<BadKind, number>>
  /** Expected revenue of the good orders per category, exact, with 2 decimals. */
  readonly revenue: ReadonlyArray<{ readonly category: string; readonly revenue: string; readonly orders: number }>
  /** Only with the `evolvedFrom` option: what the day's good orders hold of the evolved fields. */
  readonly evolution?: Evolution
}

/**
 * What the good orders of a day hold of the fields the orders system added (see `evolvedFrom`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Evolution {
  /** The day is written with the evolved record (it is `evolvedFrom` or later). */
  readonly evolved: boolean
  /** Good orders per currency as decoded: an order without a currency counts as USD. */
  readonly currencies: Readonly<Record<string, number>>
  /** Good orders whose loyalty points are not null (absent or null decode as null), and their sum. */
  readonly loyaltyPoints: { readonly orders: number; readonly total: number }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Manifest extends DayFiles.Manifest<DayManifest> {
  readonly badByKind: Readonly<Record<BadKind, number>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly start: PartitionDate
  /** Number of days; 31 by default. */
  readonly days?: number | undefined
  /** 1 by default. */
  readonly seed?: number | undefined
  /** Orders (records) per day; `{ min: 200, max: 400 }` by default. */
  readonly ordersPerDay?: { readonly min: number; readonly max: number } | undefined
  /** Share of bad records, 0–1; 0.03 by default. */
  readonly badShare?: number | undefined
  /** Share of blank lines among the lines, 0–1; 0.005 by default. */
  readonly blankShare?: number | undefined
  /**
   * The first day the orders system sends its evolved record; off by default. Before it, orders
   * have no `currency` and no `loyalty_points`; from it on, every order has a `currency` (mostly
   * USD, some EUR and GBP) and 80% have `loyalty_points` (0–2,500, or null).
   */
  readonly evolvedFrom?: PartitionDate | undefined
}

/**
 * The middle day of `days` days from `start` (the 16th of a 31-day month, the 2nd of 3 days): where
 * `sluice generate-orders` puts the change of record by default, so a month of sample data has days
 * of both records.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import * as Generator from "@sluice-app/daily-revenue/Generator"
 *
 * Generator.middleDay(Partition.makeUnsafe("2024-03-01"), 31) // "2024-03-16"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleDay = (start: PartitionDate, days: number): PartitionDate =>
  Partition.addDays(start, Math.floor(days / 2))

type Rng = SeededRandom.SeededRandom

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

const categories: ReadonlyArray<readonly [name: string, weight: number]> = [
  ["electronics", 14],
  ["books", 12],
  ["home & kitchen", 12],
  ["clothing", 11],
  ["grocery", 10],
  ["toys", 7],
  ["beauty", 6],
  ["sports", 6],
  ["garden", 4],
  ["café ☕", 3],
  ["ספרים", 3], // Hebrew, right-to-left: "books"
  ["Cre\u0300me bru\u0302le\u0301e", 2], // combining accents
  ["日本の本", 2],
  ["🎮 gaming", 2],
  ["كتب عربية", 2] // Arabic, right-to-left
]

/** Cents, skewed to small baskets: the minimum of two uniforms, sometimes ending in .99. */
const pickCents = (rng: Rng): number => {
  const dollars = Math.min(rng.int(1, 600), rng.int(1, 600))
  const cents = rng.chance(0.4) ? 99 : rng.chance(0.3) ? 0 : rng.int(0, 99)
  return dollars * 100 + cents
}

const formatCents = (cents: number, fixed: boolean): string => {
  const text = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`
  return fixed ? text : text.replace(/\.?0+$/, "")
}

interface GoodOrder {
  readonly fields: Record<string, unknown>
  readonly category: string
  readonly cents: number
}

const currencies = ["USD", "USD", "USD", "USD", "EUR", "GBP"] as const

/** `evolved`: undefined without the `evolvedFrom` option, else whether the day has the evolved record. */
const goodOrder = (rng: Rng, date: PartitionDate, index: number, evolved: boolean | undefined): GoodOrder => {
  const category = SeededRandom.weighted(rng, categories)
  const cents = pickCents(rng)
  const fields: Record<string, unknown> = {
    order_id: `ord-${date.replaceAll("-", "")}-${String(index).padStart(5, "0")}`,
    customer_id: rng.chance(0.3) ? rng.int(1, 200) : rng.int(1, 20_000),
    product_category: category,
    // mostly JSON numbers; sometimes a string with two decimals, as some upstreams send money
    amount: rng.chance(0.15) ? formatCents(cents, true) : Number(formatCents(cents, false)),
    order_date: date
  }
  const withCurrency = !rng.chance(0.1)
  if (evolved === true) fields.currency = rng.pick(currencies)
  else if (evolved === undefined && withCurrency) fields.currency = "USD"
  if (rng.chance(0.2)) {
    fields.channel = rng.pick(["web", "app", "store", "phone"])
    fields.coupon = rng.chance(0.5) ? null : `SAVE${rng.int(5, 30)}`
  }
  if (evolved === true && rng.chance(0.8)) fields.loyalty_points = rng.chance(0.25) ? null : rng.int(0, 2_500)
  return { fields, category, cents }
}

const requiredFields = ["order_id", "customer_id", "product_category", "amount", "order_date"] as const

const badLine = (rng: Rng, kind: BadKind, base: GoodOrder, date: PartitionDate): string => {
  const f = { ...base.fields }
  switch (kind) {
    case "invalid_json":
      return rng.pick([
        `{order_id: "${f.order_id}", customer_id: ${f.customer_id}}`,
        `${JSON.stringify(f).slice(0, -1)},}`,
        `${JSON.stringify(f)}}`,
        `{'order_id': '${f.order_id}'}`,
        "not json at all",
        `{"order_id": "${f.order_id}" "amount": 3}`
      ])
    case "truncated":
      return BadLines.truncate(rng, JSON.stringify(f))
    case "missing_field":
      delete f[rng.pick(requiredFields)]
      return JSON.stringify(f)
    case "null_field":
      f[rng.pick([...requiredFields, "currency"])] = null
      return JSON.stringify(f)
    case "wrong_type": {
      const variant = rng.int(0, 4)
      if (variant === 0) f.customer_id = String(f.customer_id)
      else if (variant === 1) f.order_id = rng.int(1, 99_999)
      else if (variant === 2) f.amount = true
      else if (variant === 3) f.product_category = [base.category]
      else f.customer_id = (f.customer_id as number) + 0.5
      return JSON.stringify(f)
    }
    case "negative_amount":
      f.amount = rng.chance(0.5) ? -base.cents / 100 : `-${formatCents(base.cents, true)}`
      return JSON.stringify(f)
    case "non_numeric_amount":
      f.amount = rng.pick(["12,50", "abc", "", "NaN", "$19.99", "1e3", "19.99 USD", " "])
      return JSON.stringify(f)
    case "amount_precision":
      f.amount = rng.chance(0.5) ? base.cents / 100 + 0.00001 : `${formatCents(base.cents, true)}001`
      return JSON.stringify(f)
    case "non_positive_customer":
      f.customer_id = rng.pick([0, -1, -rng.int(2, 5000)])
      return JSON.stringify(f)
    case "impossible_date": {
      const [y, m] = date.split("-")
      f.order_date = rng.pick([`${y}-02-30`, `${y}-${m}-32`, `${y}-13-01`, `${y}-00-10`, `${y}-04-31`, "2023-02-29"])
      return JSON.stringify(f)
    }
    case "bad_date_format": {
      const [y, m, d] = date.split("-")
      f.order_date = rng.pick([
        `${m}/${d}/${y}`,
        `${y}${m}${d}`,
        `${date}T10:00:00Z`,
        `${Number(y)}-${Number(m)}-${Number(d)}`
      ])
      return JSON.stringify(f)
    }
    case "empty_string":
      f[rng.pick(["order_id", "product_category"])] = rng.pick(["", "   ", "\t"])
      return JSON.stringify(f)
    case "bad_currency":
      f.currency = rng.pick(["usd", "US", "DOLLARS", "", "€", "U$D"])
      return JSON.stringify(f)
    case "not_an_object":
      return rng.pick([JSON.stringify([f]), JSON.stringify(String(f.order_id)), "42", "null", "true", "[]"])
    case "huge_string": {
      const huge = `${base.category} `.repeat(Math.ceil(50_000 / (base.category.length + 1))).slice(0, 50_000)
      f[rng.pick(["order_id", "product_category"])] = huge
      return JSON.stringify(f)
    }
    case "date_outside_partition":
      f.order_date = Partition.addDays(date, rng.pick([-3, -2, -1, 1, 2]))
      return JSON.stringify(f)
  }
}

const epoch = Partition.makeUnsafe("1970-01-05") // a Monday

/**
 * The lines of one day, and what they are. Pure and deterministic.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import * as Generator from "@sluice-app/daily-revenue/Generator"
 *
 * const { lines, manifest } = Generator.generateDay(Partition.makeUnsafe("2024-03-01"), { seed: 7 })
 * manifest.records === lines.filter((l) => l.trim() !== "").length // true
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateDay = (
  date: PartitionDate,
  options: Omit<Options, "start" | "days"> = {}
): { readonly lines: ReadonlyArray<string>; readonly manifest: DayManifest } => {
  const rng = SeededRandom.make(SeededRandom.daySeed(options.seed ?? 1, date))
  const { min, max } = options.ordersPerDay ?? { min: 200, max: 400 }
  const badShare = options.badShare ?? 0.03
  const blankShare = options.blankShare ?? 0.005
  const weekday = ((Partition.daysBetween(epoch, date) % 7) + 7) % 7 // 0 = Monday
  const busy = weekday >= 5
  const mid = Math.floor((min + max) / 2)
  const records = busy ? rng.int(mid, max) : rng.int(min, max)
  const evolved = options.evolvedFrom === undefined ? undefined : date >= options.evolvedFrom
  const byCurrency: Record<string, number> = {}
  const loyaltyPoints = { orders: 0, total: 0 }

  const lines: Array<string> = []
  const badLines: Array<{ position: number; kind: BadKind }> = []
  const badByKind = BadLines.emptyCounts(badKinds)
  const revenue = new Map<string, { cents: number; orders: number }>()
  let blankLines = 0
  for (let i = 1; i <= records; i++) {
    while (rng.chance(blankShare)) {
      lines.push(rng.pick(["", "  ", "\t"]))
      blankLines++
    }
    const order = goodOrder(rng, date, i, evolved)
    if (rng.chance(badShare)) {
      const kind = rng.pick(badKinds)
      lines.push(badLine(rng, kind, order, date))
      badLines.push({ position: lines.length, kind })
      badByKind[kind]++
    } else {
      lines.push(JSON.stringify(order.fields))
      const r = revenue.get(order.category) ?? { cents: 0, orders: 0 }
      revenue.set(order.category, { cents: r.cents + order.cents, orders: r.orders + 1 })
      if (evolved !== undefined) {
        const currency = (order.fields.currency as string | undefined) ?? "USD"
        byCurrency[currency] = (byCurrency[currency] ?? 0) + 1
        const points = order.fields.loyalty_points as number | null | undefined
        if (typeof points === "number") {
          loyaltyPoints.orders++
          loyaltyPoints.total += points
        }
      }
    }
  }
  return {
    lines,
    manifest: {
      date,
      file: DayFiles.fileName(date),
      lines: lines.length,
      blankLines,
      records,
      good: records - badLines.length,
      bad: badLines.length,
      badByKind,
      badLines,
      revenue: [...revenue].toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([category, r]) => ({
        category,
        revenue: formatCents(r.cents, true),
        orders: r.orders
      })),
      ...(evolved === undefined ? {} : { evolution: { evolved, currencies: byCurrency, loyaltyPoints } })
    }
  }
}

/**
 * Writes `days` days of orders from `start` into `directory` (created if needed), one
 * `YYYY-MM-DD.jsonl` per day, and returns the manifest. Existing files of those days are replaced.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Partition } from "@sluice/core"
 * import * as Generator from "@sluice-app/daily-revenue/Generator"
 *
 * const manifest = Generator.generate({
 *   directory: "./data/orders",
 *   start: Partition.makeUnsafe("2024-03-01"),
 *   days: 31,
 *   seed: 42
 * }).pipe(Effect.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = Effect.fn("Generator.generate")(function*(
  options: Options & { readonly directory: string }
): Effect.fn.Return<Manifest, PlatformError.PlatformError, FileSystem.FileSystem> {
  const days: Array<DayManifest> = []
  // one day in memory at a time: each is generated as it is written
  yield* DayFiles.write(
    options.directory,
    Iterable.map(DayFiles.dates(options.start, options.days ?? 31), (date) => {
      const { lines, manifest } = generateDay(date, options)
      days.push(manifest)
      return { date, lines }
    })
  )
  return { seed: options.seed ?? 1, days, ...DayFiles.totals(days), badByKind: BadLines.sumCounts(badKinds, days) }
})
