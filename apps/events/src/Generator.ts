/**
 * A deterministic generator of sample event files, `<directory>/YYYY-MM-DD.jsonl`: the lines the
 * tracking system delivered on each day, with everything an at-least-once feed does.
 *
 * Each day has 150–250 lines (by default), mostly new events, and:
 * - **duplicates**: a line sent before (this day or earlier, any version) sent again, byte for byte;
 * - **corrections**: a new version of an earlier event (same `event_id`, later `updated_at`,
 *   changed `properties`);
 * - **late events**: new events that occurred one or two days before the day of the file;
 * - **deletes**: retractions of earlier events (`{"event_id", "deleted": true, "updated_at"}`);
 * - about 2% **bad lines** of many {@link BadKind kinds};
 * - **held-back lines** (stragglers): new events of the day that the tracking system delivers one
 *   or two days later by re-delivering the day's file with the lines appended. The files therefore
 *   depend on the day you look at them: {@link generate} writes them as they stand at the end of
 *   `asOf`.
 *
 * Everything comes from a seeded PRNG (never `Math.random` or the clock), so the same options
 * always write the same bytes. Versions of one event never tie on `updated_at` unless they are the
 * same line, so the expected view ({@link expectedView}) does not depend on arrival order.
 *
 * @since 0.1.0
 */
import { Partition } from "@sluice/core"
import { BadLines, DayFiles, SeededRandom } from "@sluice/samples"
import { DateTime, Effect, type FileSystem, type PlatformError } from "effect"

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
  wrong_type: "SchemaMismatch",
  unknown_event_type: "SchemaMismatch",
  bad_timestamp: "SchemaMismatch",
  impossible_timestamp: "SchemaMismatch",
  delete_without_time: "SchemaMismatch",
  sent_after_the_day: "RuleViolation",
  updated_before_occurred: "RuleViolation"
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
 * What a line is.
 *
 * @since 0.1.0
 * @category models
 */
export type LineKind = "new" | "duplicate" | "correction" | "late" | "delete" | "held_back" | "bad"

/**
 * An event as the view must show it (timestamps in epoch milliseconds).
 *
 * @since 0.1.0
 * @category models
 */
export interface ExpectedEvent {
  readonly event_id: string
  readonly event_type: string
  readonly user_id: number
  readonly occurred_at: number
  readonly updated_at: number
  readonly properties: Readonly<Record<string, string | number | boolean>>
}

/**
 * A version of an event carried by a good line: its values, or `undefined` for a delete.
 *
 * @since 0.1.0
 * @category models
 */
export interface Version {
  readonly eventId: string
  readonly updatedAt: number
  readonly event: ExpectedEvent | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Line {
  readonly text: string
  readonly kind: LineKind
  /** The version of a good line; `undefined` for a bad one. */
  readonly version: Version | undefined
  readonly bad: BadKind | undefined
}

/**
 * A day of the feed: the lines delivered on the day, and the held-back lines appended to the
 * day's file `delay` days later.
 *
 * @since 0.1.0
 * @category models
 */
export interface Day {
  readonly date: Partition.PartitionDate
  readonly lines: ReadonlyArray<Line>
  readonly heldBack: ReadonlyArray<{ readonly line: Line; readonly delay: 1 | 2 }>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly start: Partition.PartitionDate
  /** Number of days; 14 by default. */
  readonly days?: number | undefined
  /** 1 by default. */
  readonly seed?: number | undefined
  /** Lines per day; `{ min: 150, max: 250 }` by default. */
  readonly linesPerDay?: { readonly min: number; readonly max: number } | undefined
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

type Rng = SeededRandom.SeededRandom

const epoch = Partition.makeUnsafe("1970-01-01")
const dayMillis = 86_400_000
const startOf = (date: Partition.PartitionDate): number => Partition.daysBetween(epoch, date) * dayMillis
const iso = (millis: number): string => DateTime.formatIso(DateTime.makeUnsafe(millis))
/** A time of the day, to the second, leaving room for a few minutes until the update. */
const timeOn = (rng: Rng, date: Partition.PartitionDate): number => startOf(date) + rng.int(0, 86_000) * 1_000

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

const eventTypes: ReadonlyArray<readonly [string, number]> = [
  ["page_view", 50],
  ["click", 25],
  ["add_to_cart", 12],
  ["purchase", 8],
  ["signup", 5]
]

const propertiesFor = (rng: Rng, type: string): Record<string, string | number | boolean> => {
  switch (type) {
    case "page_view":
      return { path: rng.pick(["/", "/products", `/products/${rng.int(1, 500)}`, "/cart", "/help"]) }
    case "click":
      return { element: rng.pick(["buy-button", "nav-home", "search", "banner", "ナビ"]) }
    case "add_to_cart":
      return { sku: `sku-${rng.int(1, 500)}`, quantity: rng.int(1, 5) }
    case "purchase":
      return { order_id: `ord-${rng.int(1, 99_999)}`, amount: rng.int(100, 50_000) / 100, currency: "USD" }
    default:
      return { plan: rng.pick(["free", "pro", "team"]), trial: rng.chance(0.5) }
  }
}

const lineOf = (event: ExpectedEvent, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    event_id: event.event_id,
    event_type: event.event_type,
    user_id: event.user_id,
    occurred_at: iso(event.occurred_at),
    updated_at: iso(event.updated_at),
    ...(Object.keys(event.properties).length === 0 ? {} : { properties: event.properties }),
    ...extra
  })

const badLine = (rng: Rng, kind: BadKind, event: ExpectedEvent, date: Partition.PartitionDate): string => {
  const fields: Record<string, unknown> = JSON.parse(lineOf(event))
  switch (kind) {
    case "invalid_json":
      return rng.pick([
        `{event_id: "${event.event_id}"}`,
        `${lineOf(event).slice(0, -1)},}`,
        `{'event_id': '${event.event_id}'}`,
        "not json",
        `${lineOf(event)}}`
      ])
    case "truncated":
      return BadLines.truncate(rng, lineOf(event))
    case "missing_field":
      delete fields[rng.pick(["event_id", "event_type", "user_id", "occurred_at", "updated_at"])]
      return JSON.stringify(fields)
    case "wrong_type":
      if (rng.chance(0.5)) fields.user_id = String(event.user_id)
      else fields.event_id = rng.int(1, 99_999)
      return JSON.stringify(fields)
    case "unknown_event_type":
      fields.event_type = rng.pick(["PageView", "purchase_v2", "", "scroll"])
      return JSON.stringify(fields)
    case "bad_timestamp":
      fields.occurred_at = rng.pick([
        iso(event.occurred_at).replace("T", " ").replace(/\.\d+Z$/, ""),
        iso(event.occurred_at).replace("Z", "+02:00"),
        String(Math.floor(event.occurred_at / 1_000)),
        date
      ])
      return JSON.stringify(fields)
    case "impossible_timestamp":
      fields.updated_at = rng.pick([`${date.slice(0, 4)}-02-30T10:00:00Z`, `${date}T24:00:00Z`, `${date}T10:61:00Z`])
      return JSON.stringify(fields)
    case "delete_without_time":
      return JSON.stringify({ event_id: event.event_id, deleted: true })
    case "sent_after_the_day": {
      const later = Partition.addDays(date, rng.int(1, 3))
      fields.updated_at = iso(timeOn(rng, later))
      return JSON.stringify(fields)
    }
    case "updated_before_occurred":
      fields.updated_at = iso(event.occurred_at - rng.int(1, 3_600) * 1_000)
      return JSON.stringify(fields)
  }
}

/**
 * Plans the feed: every day's lines and held-back lines. Pure and deterministic.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import { Generator } from "@sluice-app/events"
 *
 * const days = Generator.plan({ start: Partition.makeUnsafe("2024-03-01"), days: 7, seed: 42 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const plan = (options: Options): ReadonlyArray<Day> => {
  const rng = SeededRandom.make(Math.imul((options.seed ?? 1) ^ 0x5bd1e995, 0x9e3779b1))
  const { min, max } = options.linesPerDay ?? { min: 150, max: 250 }
  const dates = DayFiles.dates(options.start, options.days ?? 14)
  /** The latest version of every event sent so far, and whether it was retracted. */
  const latest = new Map<string, { readonly event: ExpectedEvent; readonly deleted: boolean }>()
  const ids: Array<string> = []
  const sent: Array<Line> = []
  let counter = 0

  const newEvent = (date: Partition.PartitionDate): ExpectedEvent => {
    const occurred = timeOn(rng, date)
    const type = SeededRandom.weighted(rng, eventTypes)
    counter++
    return {
      event_id: `evt-${date.replaceAll("-", "")}-${String(counter).padStart(6, "0")}`,
      event_type: type,
      user_id: rng.chance(0.3) ? rng.int(1, 50) : rng.int(1, 5_000),
      occurred_at: occurred,
      updated_at: occurred + rng.int(0, 300) * 1_000,
      properties: propertiesFor(rng, type)
    }
  }

  const send = (kind: LineKind, event: ExpectedEvent): Line => {
    latest.set(event.event_id, { event, deleted: false })
    if (kind !== "correction") ids.push(event.event_id)
    const line: Line = {
      text: rng.chance(0.1) ? lineOf(event, { sdk: rng.pick(["web-2.1", "ios-5.0"]) }) : lineOf(event),
      kind,
      version: { eventId: event.event_id, updatedAt: event.updated_at, event },
      bad: undefined
    }
    sent.push(line)
    return line
  }

  /** An earlier event last changed before `date`, not retracted, if one is found quickly. */
  const earlier = (date: Partition.PartitionDate) => {
    for (let attempt = 0; attempt < 5 && ids.length > 0; attempt++) {
      const found = latest.get(rng.pick(ids))
      if (found !== undefined && !found.deleted && found.event.updated_at < startOf(date)) return found.event
    }
    return undefined
  }

  return dates.map((date): Day => {
    const lines: Array<Line> = []
    const count = rng.int(min, max)
    for (let i = 0; i < count; i++) {
      const roll = rng.next()
      if (roll < 0.02) {
        const kind = rng.pick(badKinds)
        lines.push({ text: badLine(rng, kind, newEvent(date), date), kind: "bad", version: undefined, bad: kind })
        continue
      }
      if (roll < 0.07 && sent.length > 0) {
        const original = sent[Math.max(0, sent.length - 1 - rng.int(0, 999))]!
        lines.push({ ...original, kind: "duplicate" })
        continue
      }
      const target = roll < 0.125 ? earlier(date) : undefined
      if (target !== undefined && roll < 0.11) {
        const revision = Number(target.properties.revision ?? 0) + 1
        lines.push(send("correction", {
          ...target,
          updated_at: timeOn(rng, date),
          properties: { ...target.properties, revision }
        }))
        continue
      }
      if (target !== undefined) {
        const updatedAt = timeOn(rng, date)
        latest.set(target.event_id, { event: target, deleted: true })
        const line: Line = {
          text: JSON.stringify({ event_id: target.event_id, deleted: true, updated_at: iso(updatedAt) }),
          kind: "delete",
          version: { eventId: target.event_id, updatedAt, event: undefined },
          bad: undefined
        }
        sent.push(line)
        lines.push(line)
        continue
      }
      if (roll > 0.96) {
        lines.push(send("late", newEvent(Partition.addDays(date, -rng.int(1, 2)))))
        continue
      }
      lines.push(send("new", newEvent(date)))
    }
    const heldBack = rng.chance(0.5)
      ? Array.from({ length: rng.int(1, 5) }, () => ({
        line: send("held_back", newEvent(date)),
        delay: rng.int(1, 2) as 1 | 2
      }))
      : []
    return { date, lines, heldBack }
  })
}

/**
 * The lines of a day's file at the end of day `asOf`: the day's lines, then the held-back lines
 * re-delivered by then, in the order they were appended. Empty when the day is after `asOf`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fileAsOf = (day: Day, asOf: Partition.PartitionDate): ReadonlyArray<Line> => {
  if (day.date > asOf) return []
  const late = Partition.daysBetween(day.date, asOf)
  return [
    ...day.lines,
    ...day.heldBack.filter((h) => h.delay === 1 && late >= 1).map((h) => h.line),
    ...day.heldBack.filter((h) => h.delay === 2 && late >= 2).map((h) => h.line)
  ]
}

/**
 * What `analytics.events` must show once every file delivered by the end of `asOf` is loaded:
 * the latest version (by `updated_at`) of each event, without retracted events, by `event_id`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const expectedView = (
  days: ReadonlyArray<Day>,
  asOf: Partition.PartitionDate
): Array<ExpectedEvent> => {
  const latest = new Map<string, Version>()
  for (const day of days) {
    for (const { version } of fileAsOf(day, asOf)) {
      if (version === undefined) continue
      const current = latest.get(version.eventId)
      if (current === undefined || version.updatedAt > current.updatedAt) latest.set(version.eventId, version)
    }
  }
  return [...latest.values()].flatMap((v) => v.event === undefined ? [] : [v.event]).sort((a, b) =>
    a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0
  )
}

/**
 * What was written for one day.
 *
 * @since 0.1.0
 * @category models
 */
export interface DayManifest extends DayFiles.DayManifest<BadKind> {
  readonly kinds: Readonly<Record<LineKind, number>>
  /** Held-back lines of the day not re-delivered yet at `asOf`. */
  readonly pending: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Manifest extends DayFiles.Manifest<DayManifest> {
  readonly asOf: Partition.PartitionDate
  /** The rows `analytics.events` must show once these files are loaded, by `event_id`. */
  readonly expected: ReadonlyArray<ExpectedEvent>
}

/**
 * Writes the files of the feed as they stand at the end of `asOf` (by default two days after the
 * last day, when every held-back line has been re-delivered): one `YYYY-MM-DD.jsonl` per day up to
 * `asOf`, into `directory` (created if needed). Existing files of those days are replaced.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Partition } from "@sluice/core"
 * import { Generator } from "@sluice-app/events"
 *
 * // the folder as it stands on the evening of 2024-03-05
 * const manifest = Generator.generate({
 *   directory: "./data/events",
 *   start: Partition.makeUnsafe("2024-03-01"),
 *   days: 14,
 *   asOf: Partition.makeUnsafe("2024-03-05")
 * }).pipe(Effect.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = Effect.fn("Generator.generate")(function*(
  options: Options & { readonly directory: string; readonly asOf?: Partition.PartitionDate | undefined }
): Effect.fn.Return<Manifest, PlatformError.PlatformError, FileSystem.FileSystem> {
  const days = plan(options)
  const asOf = options.asOf ?? Partition.addDays(days[days.length - 1]?.date ?? options.start, 2)
  const files = days.filter((day) => day.date <= asOf).map((day) => ({ day, lines: fileAsOf(day, asOf) }))
  yield* DayFiles.write(
    options.directory,
    files.map(({ day, lines }) => ({ date: day.date, lines: lines.map((l) => l.text) }))
  )
  const manifests = files.map(({ day, lines }): DayManifest => {
    const kinds: Record<LineKind, number> = {
      new: 0,
      duplicate: 0,
      correction: 0,
      late: 0,
      delete: 0,
      held_back: 0,
      bad: 0
    }
    for (const line of lines) kinds[line.kind]++
    const badLines = lines.flatMap((l, i) => l.bad === undefined ? [] : [{ position: i + 1, kind: l.bad }])
    return {
      date: day.date,
      file: DayFiles.fileName(day.date),
      records: lines.length,
      good: lines.length - badLines.length,
      bad: badLines.length,
      badLines,
      kinds,
      pending: day.lines.length + day.heldBack.length - lines.length
    }
  })
  return {
    seed: options.seed ?? 1,
    asOf,
    days: manifests,
    ...DayFiles.totals(manifests),
    expected: expectedView(days, asOf)
  }
})
