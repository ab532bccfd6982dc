/**
 * A deterministic generator of the customer feed (see {@link Customer}), and its source.
 *
 * A day has 30–60 change records (by default) about a small pool of customers, so most customers
 * change several times a day: upserts at random instants of the day, in no particular order;
 * about 8% deletions; about 10% late changes stamped one to three days earlier; about 3%
 * corrections stamped with the very instant of the customer's previous change that day (a tie,
 * won by the later arrival); and about 3% changes without a `customer_id` (`null` or absent).
 * Everything comes from a seeded PRNG, each day from its own seed: the same options always give
 * the same lines.
 *
 * @since 0.1.0
 */
import { JsonLinesSource, Partition, Source } from "@sluice/core"
import { DayFiles, SeededRandom } from "@sluice/samples"
import { Effect, type FileSystem, type PlatformError, Stream } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** 1 by default. */
  readonly seed?: number | undefined
  /** Customer ids are drawn from 1..customers; 40 by default. */
  readonly customers?: number | undefined
  /** Change records per day; `{ min: 30, max: 60 }` by default. */
  readonly changesPerDay?: { readonly min: number; readonly max: number } | undefined
}

/** The feed's own day-seed constants (not the orders generator's): its days stay as they were. */
const mixing: SeededRandom.DaySeedMixing = { salt: 0x2545f491, multiplier: 0x9e3779b1, step: 0x85ebca6b, shift: 15 }

const firstNames = ["Ada", "Grace", "Linus", "Zoë", "José", "Nguyễn", "Aïcha", "Søren", "Yuki", "Olu"]
const lastNames = ["Lovelace", "Hopper", "Torvalds", "Müller", "García", "Tanaka", "Okafor", "Dubois"]
const cities = ["Lisbon", "Kraków", "São Paulo", "Zürich", "東京", "Montréal", "Reykjavík", "القاهرة", "Tel Aviv"]

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/**
 * The change records of one day, as JSON lines. Pure and deterministic.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import * as CustomerFeed from "@sluice-app/daily-revenue/CustomerFeed"
 *
 * const lines = CustomerFeed.day(Partition.makeUnsafe("2024-03-01"), { seed: 7 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const day = (date: Partition.PartitionDate, options: Options = {}): ReadonlyArray<string> => {
  const rng = SeededRandom.make(SeededRandom.daySeed(options.seed ?? 1, date, mixing))
  const customers = options.customers ?? 40
  const { min, max } = options.changesPerDay ?? { min: 30, max: 60 }
  const count = rng.int(min, max)
  const lastInstant = new Map<number, string>()
  const lines: Array<string> = []
  for (let i = 0; i < count; i++) {
    const id = rng.int(1, customers)
    const previous = lastInstant.get(id)
    const stamp = rng.chance(0.1) ? Partition.addDays(date, -rng.int(1, 3)) : date
    const instant = previous !== undefined && rng.chance(0.03)
      ? previous
      : `${stamp}T${pad(rng.int(0, 23))}:${pad(rng.int(0, 59))}:${pad(rng.int(0, 59))}.${pad(rng.int(0, 999), 3)}Z`
    lastInstant.set(id, instant)
    const record: Record<string, unknown> = rng.chance(0.08)
      ? { customer_id: id, updated_at: instant, deleted: true }
      : {
        customer_id: id,
        name: `${rng.pick(firstNames)} ${rng.pick(lastNames)}`,
        ...(rng.chance(0.7) ? { email: rng.chance(0.1) ? null : `customer${id}@example.com` } : {}),
        city: rng.pick(cities),
        updated_at: instant,
        ...(rng.chance(0.5) ? { deleted: false } : {})
      }
    if (rng.chance(0.03)) {
      if (rng.chance(0.5)) record.customer_id = null
      else delete record.customer_id
    }
    lines.push(JSON.stringify(record))
  }
  return lines
}

/**
 * Writes `days` days of the feed from `start` to `<directory>/YYYY-MM-DD.jsonl`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = Effect.fn("CustomerFeed.generate")(function*(
  options: Options & { readonly directory: string; readonly start: Partition.PartitionDate; readonly days: number }
): Effect.fn.Return<void, PlatformError.PlatformError, FileSystem.FileSystem> {
  yield* DayFiles.write(
    options.directory,
    DayFiles.dates(options.start, options.days).map((date) => ({ date, lines: day(date, options) }))
  )
})

const generatedPattern = /^generated(?::(\d+))?$/

/**
 * The source for a location: `generated` (or `generated:<seed>`) is the feed generated in memory
 * for the partition, anything else a folder of `YYYY-MM-DD.jsonl` files.
 *
 * @example
 * ```ts
 * import * as CustomerFeed from "@sluice-app/daily-revenue/CustomerFeed"
 *
 * const inMemory = CustomerFeed.source("generated:7")
 * const files = CustomerFeed.source("data/customers")
 * ```
 *
 * @since 0.1.0
 * @category sources
 */
export const source = (location: string): Source.Source<FileSystem.FileSystem> => {
  const generated = generatedPattern.exec(location)
  if (generated === null) return JsonLinesSource.make({ directory: location })
  const seed = generated[1] === undefined ? 1 : Number(generated[1])
  return Source.make(
    `customer feed generated with seed ${seed}`,
    (partition) => Stream.fromIterable(day(partition, { seed }).map((payload, i) => ({ payload, position: i + 1 })))
  )
}
