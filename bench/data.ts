/**
 * The benchmark's input: one partition of generated orders, `<dir>/2024-03-01.jsonl` (what
 * `JsonLinesSource` reads), with 1% bad lines of every kind the daily-revenue generator writes,
 * and the same partition's clean rows as a tab-separated file for `psql \copy`.
 *
 * The file is written in blocks of 50,000 orders, each from `Generator.generateDay` with a seed of
 * its own, so no block is ever larger than that in memory; order ids get the block number so they
 * stay unique. The clean rows are the good ones as the daily-revenue transform decodes them. Files
 * are cached by size and reused (`meta.json` says what they hold).
 */
import { Effect, Result } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Generator from "../apps/daily-revenue/src/Generator.ts"
import { OrderTransform } from "../apps/daily-revenue/src/Order.ts"
import { Partition } from "../packages/core/src/index.ts"
import { escape } from "../packages/sql/src/internal/copyText.ts"

export const partition = Partition.makeUnsafe("2024-03-01")

const blockSize = 50_000
const badShare = 0.01
/** Bumped when the way the data is generated changes, so cached files are not reused. */
const version = 1

export interface Dataset {
  /** The folder holding `<partition>.jsonl`. */
  readonly dir: string
  readonly file: string
  /** The clean rows, tab-separated, in the column order of `raw.orders`. */
  readonly clean: string
  readonly records: number
  readonly good: number
  readonly bad: number
  readonly bytes: number
}

interface Meta extends Omit<Dataset, "dir" | "file" | "clean"> {
  readonly version: number
}

const readMeta = (file: string): Meta | undefined => {
  if (!Fs.existsSync(file)) return undefined
  const meta = JSON.parse(Fs.readFileSync(file, "utf8")) as Meta
  return meta.version === version ? meta : undefined
}

/** Writes the files of `size` orders into `<root>/<size>`, unless they are there already. */
export const ensure = (root: string, size: number): Effect.Effect<Dataset> =>
  Effect.sync(() => {
    const dir = Path.join(root, String(size))
    const file = Path.join(dir, `${partition}.jsonl`)
    const clean = Path.join(dir, "clean.tsv")
    const metaFile = Path.join(dir, "meta.json")
    const cached = readMeta(metaFile)
    if (cached !== undefined && Fs.existsSync(file) && Fs.existsSync(clean)) return { dir, file, clean, ...cached }
    Fs.mkdirSync(dir, { recursive: true })
    const jsonl = Fs.openSync(file, "w")
    const tsv = Fs.openSync(clean, "w")
    let good = 0
    let bad = 0
    let bytes = 0
    for (let block = 0, done = 0; done < size; block++) {
      const n = Math.min(blockSize, size - done)
      const { lines } = Generator.generateDay(partition, {
        seed: 7 + block,
        ordersPerDay: { min: n, max: n },
        badShare,
        blankShare: 0
      })
      const prefix = `ord-${partition.replaceAll("-", "")}-`
      const renamed = lines.map((line) => line.replaceAll(prefix, `${prefix}${block}-`))
      const text = renamed.join("\n") + "\n"
      bytes += Buffer.byteLength(text)
      Fs.writeSync(jsonl, text)
      const rows: Array<string> = []
      for (const [i, line] of renamed.entries()) {
        const result = OrderTransform({ payload: line, position: done + i + 1 }, partition)
        if (Result.isFailure(result)) {
          bad++
          continue
        }
        good++
        const o = result.success
        rows.push(
          [o.order_date, o.order_id, String(o.customer_id), o.product_category, o.amount, o.currency].map(escape)
            .join("\t")
        )
      }
      Fs.writeSync(tsv, rows.join("\n") + "\n")
      done += n
    }
    Fs.closeSync(jsonl)
    Fs.closeSync(tsv)
    const meta: Meta = { version, records: size, good, bad, bytes }
    Fs.writeFileSync(metaFile, JSON.stringify(meta))
    return { dir, file, clean, ...meta }
  })
