/**
 * A deterministic generator of daily customer change files: `<directory>/YYYY-MM-DD.jsonl`.
 *
 * It simulates a CRM over a range of days: customers sign up, move, change their name or email,
 * are re-sent unchanged, are deleted and sometimes come back, often several times a day. Each
 * change happens at an instant of its day and is delivered in that day's file, or late, in the
 * file of a later day (with the earlier timestamp); files list their changes in random order,
 * some changes are delivered twice, timestamps come with `Z` or an offset, some records carry
 * unknown fields, and about 3% of lines are bad, of many {@link BadKind kinds}. Everything comes
 * from one seeded PRNG (never `Math.random` or the clock): the same options write the same bytes.
 *
 * The {@link Manifest} says what each file holds (good and bad lines, late changes, duplicates,
 * deletes) and the truth: every customer's state at the end of each day and after the last one,
 * which a dimension loaded from all the files must reproduce, whatever the order of the loads.
 *
 * @since 0.1.0
 */
import { Partition } from "@sluice/core"
import type { PartitionDate } from "@sluice/core/Partition"
import { BadLines, DayFiles, SeededRandom } from "@sluice/samples"
import { Effect, type FileSystem, type PlatformError } from "effect"

/**
 * The kinds of bad lines, each with the record error it must produce.
 *
 * @since 0.1.0
 * @category models
 */
export const expectedErrorType = {
  invalid_json: "InvalidJson",
  truncated: "InvalidJson",
  non_positive_id: "SchemaMismatch",
  string_id: "SchemaMismatch",
  missing_changed_at: "SchemaMismatch",
  local_time: "SchemaMismatch",
  impossible_instant: "SchemaMismatch",
  blank_name: "SchemaMismatch",
  not_an_object: "SchemaMismatch",
  missing_city: "RuleViolation",
  future_change: "RuleViolation"
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
 * A customer's state in the simulated CRM.
 *
 * @since 0.1.0
 * @category models
 */
export interface CustomerState {
  readonly customer_id: number
  readonly name: string
  readonly city: string
  readonly email: string | null
  readonly deleted: boolean
  /** The name before its last change, over live changes (type 3); `null` if it never changed. */
  readonly previousName: string | null
  /** The city before its last change, over live changes (type 3); `null` if it never changed. */
  readonly previousCity: string | null
}

/**
 * What was written for one day.
 *
 * @since 0.1.0
 * @category models
 */
export interface DayManifest extends DayFiles.DayManifest<BadKind> {
  readonly badByKind: Readonly<Record<BadKind, number>>
  /** Good lines of changes that happened on an earlier day. */
  readonly late: number
  /** Good lines that repeat a change already delivered (in this file or an earlier one). */
  readonly duplicates: number
  readonly deletes: number
  /** Good lines that re-send a customer's state unchanged. */
  readonly unchanged: number
  /** Customers with several distinct changes in this file. */
  readonly severalChanges: number
  /** Every customer that exists at the end of this day (UTC), as the CRM has it then. */
  readonly endOfDay: ReadonlyArray<CustomerState>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Manifest extends DayFiles.Manifest<DayManifest> {
  readonly badByKind: Readonly<Record<BadKind, number>>
  /** Distinct changes. */
  readonly changes: number
  /** Every customer after the last change, by id. */
  readonly customers: ReadonlyArray<CustomerState>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly start: PartitionDate
  /** Number of days; 14 by default. */
  readonly days?: number | undefined
  /** 1 by default. */
  readonly seed?: number | undefined
  /** Customers of the CRM; 60 by default. */
  readonly customers?: number | undefined
  /** Changes happening per day; `{ min: 25, max: 45 }` by default. */
  readonly changesPerDay?: { readonly min: number; readonly max: number } | undefined
  /** Share of bad lines, 0–1; 0.03 by default. */
  readonly badShare?: number | undefined
  /** Share of changes delivered 1–3 days late, 0–1; 0.12 by default. */
  readonly lateShare?: number | undefined
  /** Share of changes delivered twice, 0–1; 0.04 by default. */
  readonly duplicateShare?: number | undefined
}

type Rng = SeededRandom.SeededRandom

// ---------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------

const firstNames = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Émilie", "Søren", "Zoë", "Chidi", "Mei", "Ravi"]
const lastNames = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "du Châtelet", "Kierkegaard", "Okafor", "Li"]
const cities = [
  "London",
  "Paris",
  "Lyon",
  "Berlin",
  "São Paulo",
  "Zürich",
  "Kraków",
  "Montréal",
  "東京",
  "Lagos",
  "Mumbai",
  "New York"
]
const offsets = [60, 120, -300, 330, -180] // minutes east of UTC

const dayMillis = 86_400_000

const startOf = (date: PartitionDate): number => Date.parse(`${date}T00:00:00Z`)

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

const epoch = Partition.makeUnsafe("1970-01-01")

/** An instant as ISO 8601: mostly `Z`, sometimes with milliseconds or a local time and its offset. */
const formatInstant = (rng: Rng, millis: number): string => {
  const style = rng.int(1, 10)
  const offset = style >= 9 ? rng.pick(offsets) : 0
  const local = millis + offset * 60_000
  const days = Math.floor(local / dayMillis)
  const ms = local - days * dayMillis
  const time = `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${
    pad(Math.floor(ms / 1000) % 60)
  }`
  const fraction = style === 8 ? `.${pad(ms % 1000, 3)}` : ""
  const zone = offset === 0
    ? "Z"
    : `${offset > 0 ? "+" : "-"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  return `${Partition.addDays(epoch, days)}T${time}${fraction}${zone}`
}

const emailOf = (rng: Rng, name: string): string =>
  `${name.normalize("NFD").replace(/[^A-Za-z ]/g, "").trim().toLowerCase().replace(/ +/g, ".")}${
    rng.int(1, 99)
  }@example.com`

interface Event {
  readonly customerId: number
  readonly at: number
  readonly day: number
  readonly fields: Record<string, unknown>
  readonly deleted: boolean
  readonly unchanged: boolean
}

type Kind = "move" | "rename" | "email" | "unchanged" | "delete"

const kindWeights: ReadonlyArray<readonly [Kind, number]> = [
  ["move", 34],
  ["rename", 10],
  ["email", 16],
  ["unchanged", 30],
  ["delete", 5]
]

const recordOf = (rng: Rng, state: CustomerState, at: number): Record<string, unknown> => {
  if (state.deleted) {
    const fields: Record<string, unknown> = {
      customer_id: state.customer_id,
      changed_at: formatInstant(rng, at),
      deleted: true
    }
    if (rng.chance(0.3)) fields.name = state.name
    return fields
  }
  const fields: Record<string, unknown> = {
    customer_id: state.customer_id,
    name: state.name,
    city: state.city,
    changed_at: formatInstant(rng, at)
  }
  if (state.email !== null) fields.email = state.email
  else if (rng.chance(0.3)) fields.email = null
  if (rng.chance(0.1)) fields.deleted = false
  if (rng.chance(0.15)) {
    fields.source = rng.pick(["web", "support", "import"])
    fields.updated_by = rng.chance(0.5) ? null : `agent-${rng.int(1, 40)}`
  }
  return fields
}

// ---------------------------------------------------------------------------
// Bad lines
// ---------------------------------------------------------------------------

const badLine = (rng: Rng, kind: BadKind, template: Record<string, unknown>, date: PartitionDate): string => {
  const f: Record<string, unknown> = { ...template, deleted: undefined }
  delete f.deleted
  switch (kind) {
    case "invalid_json":
      return rng.pick([
        `{customer_id: ${f.customer_id}, name: "${f.name}"}`,
        `${JSON.stringify(f).slice(0, -1)},}`,
        `{'customer_id': ${f.customer_id}}`,
        "customer changed"
      ])
    case "truncated":
      return BadLines.truncate(rng, JSON.stringify(f))
    case "non_positive_id":
      return JSON.stringify({ ...f, customer_id: rng.pick([0, -1, -rng.int(2, 999)]) })
    case "string_id":
      return JSON.stringify({ ...f, customer_id: String(f.customer_id) })
    case "missing_changed_at":
      delete f.changed_at
      return JSON.stringify(f)
    case "local_time":
      return JSON.stringify({ ...f, changed_at: rng.pick([`${date}T10:15:00`, `${date} 10:15:00Z`, date]) })
    case "impossible_instant": {
      const [y, m] = date.split("-")
      return JSON.stringify({
        ...f,
        changed_at: rng.pick([
          `${y}-02-30T10:00:00Z`,
          `${y}-${m}-32T10:00:00Z`,
          `${date}T24:30:00Z`,
          `${date}T10:61:00Z`
        ])
      })
    }
    case "blank_name":
      return JSON.stringify({ ...f, name: rng.pick(["", "   ", "\t"]) })
    case "not_an_object":
      return rng.pick([JSON.stringify([f]), JSON.stringify(String(f.customer_id)), "null", "42"])
    case "missing_city":
      delete f.city
      return JSON.stringify(f)
    case "future_change":
      return JSON.stringify({
        ...f,
        changed_at: `${Partition.addDays(date, rng.int(1, 3))}T0${rng.int(0, 9)}:00:00Z`
      })
  }
}

const byId = (a: CustomerState, b: CustomerState) => a.customer_id - b.customer_id

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

interface Delivery {
  readonly event: Event
  readonly line: string
  readonly late: boolean
  readonly duplicate: boolean
}

/**
 * Every file's lines, and what they are. Pure and deterministic.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import * as Generator from "@sluice-app/customers/Generator"
 *
 * const { files, manifest } = Generator.generateAll({ start: Partition.makeUnsafe("2024-03-01"), days: 7, seed: 7 })
 * files[0]!.lines.length === manifest.days[0]!.records // true
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateAll = (options: Options): {
  readonly files: ReadonlyArray<{ readonly date: PartitionDate; readonly lines: ReadonlyArray<string> }>
  readonly manifest: Manifest
} => {
  const seed = options.seed ?? 1
  const rng = SeededRandom.make(seed ^ 0x5bd1e995)
  const dates = DayFiles.dates(options.start, options.days ?? 14)
  const poolSize = options.customers ?? 60
  const { min, max } = options.changesPerDay ?? { min: 25, max: 45 }
  const badShare = options.badShare ?? 0.03
  const lateShare = options.lateShare ?? 0.12
  const duplicateShare = options.duplicateShare ?? 0.04
  const last = dates.length - 1

  const ids = Array.from({ length: poolSize }, (_, i) => 1001 + i * 7)
  const unborn = SeededRandom.shuffle(rng, [...ids])
  const states = new Map<number, CustomerState>()
  /** Each customer's last change: their next one comes later, so no two share an instant. */
  const lastAt = new Map<number, number>()
  const deliveries: Array<Array<Delivery>> = dates.map(() => [])
  const endOfDay: Array<ReadonlyArray<CustomerState>> = []
  let changes = 0
  let recent: Array<number> = []

  dates.forEach((date, day) => {
    const dayStart = startOf(date)
    const times = Array.from({ length: rng.int(min, max) }, () => dayStart + rng.int(0, 86_399) * 1000).sort((a, b) =>
      a - b
    )
    for (const time of times) {
      const signUp = unborn.length > 0 && (states.size === 0 || rng.chance(day === 0 ? 0.6 : 0.12))
      let id: number
      if (signUp) id = unborn.pop()!
      else if (recent.length > 0 && rng.chance(0.25)) id = rng.pick(recent) // several changes a day
      else id = rng.pick([...states.keys()])
      const previous = states.get(id)
      const at = Math.max(time, (lastAt.get(id) ?? 0) + 1000)
      if (at >= dayStart + dayMillis) continue
      let next: CustomerState
      let unchanged = false
      if (previous === undefined) {
        const name = `${rng.pick(firstNames)} ${rng.pick(lastNames)}`
        next = {
          customer_id: id,
          name,
          city: rng.pick(cities),
          email: rng.chance(0.8) ? emailOf(rng, name) : null,
          deleted: false,
          previousName: null,
          previousCity: null
        }
      } else if (previous.deleted) {
        if (!rng.chance(0.3)) continue // most deleted customers stay away
        const city = rng.chance(0.5) ? rng.pick(cities) : previous.city
        next = {
          ...previous,
          city,
          deleted: false,
          previousCity: city !== previous.city ? previous.city : previous.previousCity
        }
      } else {
        const kind = SeededRandom.weighted(rng, kindWeights)
        if (kind === "move") {
          const city = rng.pick(cities.filter((c) => c !== previous.city))
          next = { ...previous, city, previousCity: previous.city }
        } else if (kind === "rename") {
          const name = `${previous.name.split(" ")[0]} ${rng.pick(lastNames.filter((l) => !previous.name.endsWith(l)))}`
          next = { ...previous, name, previousName: previous.name }
        } else if (kind === "email") {
          next = { ...previous, email: emailOf(rng, previous.name) }
        } else if (kind === "delete") {
          next = { ...previous, deleted: true }
        } else {
          next = previous
          unchanged = true
        }
      }
      states.set(id, next)
      lastAt.set(id, at)
      recent = [...recent.slice(-4), id]
      changes++
      const event: Event = {
        customerId: id,
        at,
        day,
        fields: recordOf(rng, next, at),
        deleted: next.deleted,
        unchanged
      }
      const line = JSON.stringify(event.fields)
      const deliveredOn = rng.chance(lateShare) ? Math.min(day + rng.int(1, 3), last) : day
      deliveries[deliveredOn]!.push({ event, line, late: deliveredOn > day, duplicate: false })
      if (rng.chance(duplicateShare)) {
        const again = Math.min(deliveredOn + rng.int(0, 1), last)
        deliveries[again]!.push({ event, line, late: again > day, duplicate: true })
      }
    }
    endOfDay.push([...states.values()].sort(byId))
    recent = []
  })

  const days: Array<DayManifest> = []
  const files = dates.map((date, day) => {
    const good = SeededRandom.shuffle(rng, deliveries[day]!)
    // bad lines: badShare of the file (rounded at random), at random places
    const entries: Array<{ readonly line: string; readonly kind?: BadKind }> = good.map((d) => ({ line: d.line }))
    const expected = (good.length * badShare) / (1 - badShare)
    const badCount = Math.floor(expected) + (rng.chance(expected - Math.floor(expected)) ? 1 : 0)
    for (let i = 0; i < badCount; i++) {
      const kind = rng.pick(badKinds)
      const live = good.filter((d) => !d.event.deleted)
      const template = live.length > 0
        ? rng.pick(live).event.fields
        : { customer_id: 1001, name: "Ada Lovelace", city: "London", changed_at: `${date}T12:00:00Z` }
      entries.splice(rng.int(0, entries.length), 0, { line: badLine(rng, kind, template, date), kind })
    }
    const lines = entries.map((entry) => entry.line)
    const badLines: Array<{ position: number; kind: BadKind }> = []
    const badByKind = BadLines.emptyCounts(badKinds)
    entries.forEach((entry, i) => {
      if (entry.kind === undefined) return
      badLines.push({ position: i + 1, kind: entry.kind })
      badByKind[entry.kind]++
    })
    const perCustomer = new Map<number, Set<number>>()
    for (const { event } of good) {
      perCustomer.set(event.customerId, (perCustomer.get(event.customerId) ?? new Set()).add(event.at))
    }
    days.push({
      date,
      file: DayFiles.fileName(date),
      records: lines.length,
      good: good.length,
      bad: badLines.length,
      badByKind,
      badLines,
      late: good.filter((d) => d.late).length,
      duplicates: good.filter((d) => d.duplicate).length,
      deletes: good.filter((d) => d.event.deleted).length,
      unchanged: good.filter((d) => d.event.unchanged).length,
      severalChanges: [...perCustomer.values()].filter((set) => set.size > 1).length,
      endOfDay: endOfDay[day]!
    })
    return { date, lines }
  })

  return {
    files,
    manifest: {
      seed,
      days,
      ...DayFiles.totals(days),
      badByKind: BadLines.sumCounts(badKinds, days),
      changes,
      customers: endOfDay[endOfDay.length - 1] ?? []
    }
  }
}

/**
 * Writes the files of {@link generateAll} into `directory` (created if needed) and returns the
 * manifest. Existing files of those days are replaced.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Partition } from "@sluice/core"
 * import * as Generator from "@sluice-app/customers/Generator"
 *
 * const manifest = Generator.generate({
 *   directory: "./data/customers",
 *   start: Partition.makeUnsafe("2024-03-01"),
 *   days: 14,
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
  const { files, manifest } = generateAll(options)
  yield* DayFiles.write(options.directory, files)
  return manifest
})
