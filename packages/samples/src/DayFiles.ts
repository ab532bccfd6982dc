/**
 * The files of a sample generator: a folder with one JSON Lines file per day,
 * `<directory>/YYYY-MM-DD.jsonl` (the layout `JsonLinesSource` reads), and the manifest of what
 * was written in them.
 *
 * @since 0.1.0
 */
import { JsonLinesSource, Partition } from "@sluice/core"
import { Effect, FileSystem, type PlatformError } from "effect"
import type * as BadLines from "./BadLines.ts"

/**
 * What a generator wrote for one day. A generator's own manifest extends it with what it knows.
 *
 * @since 0.1.0
 * @category models
 */
export interface DayManifest<Kind extends string> {
  readonly date: Partition.PartitionDate
  /** The file name, `YYYY-MM-DD.jsonl`. */
  readonly file: string
  /** Non-blank lines: what a source reads. */
  readonly records: number
  readonly good: number
  readonly bad: number
  /** Every bad line's 1-based line number and kind, in order. */
  readonly badLines: ReadonlyArray<BadLines.BadLine<Kind>>
}

/**
 * Counts of records, over one file or many.
 *
 * @since 0.1.0
 * @category models
 */
export interface Totals {
  readonly records: number
  readonly good: number
  readonly bad: number
}

/**
 * What a generator wrote: its seed, every day, and the totals. A generator's own manifest extends
 * it with what it knows.
 *
 * @since 0.1.0
 * @category models
 */
export interface Manifest<Day extends Totals> extends Totals {
  readonly seed: number
  readonly days: ReadonlyArray<Day>
}

/**
 * A day's file of lines to write.
 *
 * @since 0.1.0
 * @category models
 */
export interface DayFile {
  readonly date: Partition.PartitionDate
  readonly lines: ReadonlyArray<string>
}

/**
 * The file name of a day, `YYYY-MM-DD.jsonl`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fileName = (date: Partition.PartitionDate): string => `${date}.jsonl`

/**
 * The `days` dates from `start`, in order.
 *
 * @example
 * ```ts
 * import { Partition } from "@sluice/core"
 * import { DayFiles } from "@sluice/samples"
 *
 * DayFiles.dates(Partition.makeUnsafe("2024-02-28"), 3) // ["2024-02-28", "2024-02-29", "2024-03-01"]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const dates = (start: Partition.PartitionDate, days: number): Array<Partition.PartitionDate> =>
  Partition.range(start, Partition.addDays(start, days - 1))

/**
 * The sums of the days' records, good and bad lines.
 *
 * @example
 * ```ts
 * import { DayFiles } from "@sluice/samples"
 *
 * DayFiles.totals([{ records: 10, good: 9, bad: 1 }, { records: 5, good: 5, bad: 0 }])
 * // { records: 15, good: 14, bad: 1 }
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const totals = (days: ReadonlyArray<Totals>): Totals => ({
  records: days.reduce((n, d) => n + d.records, 0),
  good: days.reduce((n, d) => n + d.good, 0),
  bad: days.reduce((n, d) => n + d.bad, 0)
})

/**
 * Writes each file into `directory` (created if needed), its lines each ended by `\n`, in the
 * order of `files`. Existing files of those days are replaced. `files` is iterated once, as the
 * files are written, so a lazy iterable keeps only one day in memory.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Partition } from "@sluice/core"
 * import { DayFiles } from "@sluice/samples"
 *
 * const written = DayFiles.write("./data/readings", [
 *   { date: Partition.makeUnsafe("2024-03-01"), lines: ["{\"value\":1}", "{\"value\":2}"] }
 * ]).pipe(Effect.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const write = Effect.fn("DayFiles.write")(function*(
  directory: string,
  files: Iterable<DayFile>
): Effect.fn.Return<void, PlatformError.PlatformError, FileSystem.FileSystem> {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(directory, { recursive: true })
  for (const file of files) {
    yield* fs.writeFileString(JsonLinesSource.fileOf(directory, file.date), file.lines.join("\n") + "\n")
  }
})
