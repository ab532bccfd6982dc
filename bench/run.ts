/**
 * `pnpm bench`: loads the same generated orders with each variant, on this machine and database,
 * and prints rows/s (median, min–max over the runs), peak RSS and the ratio to the limit; the
 * figures, the machine and the versions go to `bench/results/<date>.json`.
 *
 * Runs go in rounds: each round runs every variant once, for one size, so a variant's i-th run and
 * the limit's i-th run are minutes apart whatever the number of variants. A ratio is the median of
 * the per-round ratios (with their least and greatest): this machine's speed drifts by a fifth within
 * an hour, and a block of runs per variant compared runs made a quarter of an hour apart.
 *
 * Variants (each run is a child process of its own, so its peak RSS is its own):
 * - `limit`: `psql \copy` of the clean rows into `raw.orders` (logged, with its primary key), then
 *   the in-database `DELETE` + `INSERT … SELECT … GROUP BY` of the daily aggregate, in one
 *   transaction;
 * - `handwritten`: node-postgres reading the same file line by line, validating in plain code,
 *   dead-lettering bad lines to a table, multi-row `INSERT` in batches of 1,000 (named statements,
 *   parsed and planned once), same transaction;
 * - `sluice-postgres` / `sluice-pglite`: the daily-revenue pipeline (decode, dead-letter split,
 *   partition replacement and the aggregate rebuild, in one transaction) on the server and on
 *   embedded PGlite (on disk, with its boot time and memory); `sluice-postgres-unnest` loads with
 *   `unnest` instead of COPY, `sluice-postgres-small-heap` (1M rows and up) also caps V8's old
 *   generation, `sluice-postgres-node-defaults` (1M rows and up) runs with Node's default heap
 *   options; every Sluice variant otherwise runs with the V8 options of `pnpm sluice`;
 * - `transform`: the same pipeline with a sink and dead-letter store that keep nothing, over
 *   records read into memory beforehand (the first 100,000, run again up to the size or 1M):
 *   decode, rules and routing, the per-record cost;
 *   `transform-file` reads the file as a run does;
 * - `backfill`: a year of empty partitions on the server, and the time per partition spent outside
 *   SQL (measured on the wire).
 *
 * Usage: `pnpm bench [--smoke | --full] [--runs N] [--sizes 100000,…] [--only v1,v2]
 * [--url postgres://…] [--no-postgres] [--data <dir>] [--out <file>] [--quiet-load 1.5]`.
 * The server's database is `sluice_bench` by default, dropped and created again before each run.
 * Results go to `bench/results/<date>.json` (`<date>-full.json`, `<date>-smoke.json` for the
 * other modes). `--quiet-load` waits, before each variant, for the load average to drop below it.
 */
import { NodeServices } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database } from "../packages/sql/src/index.ts"
import * as Data from "./data.ts"

const root = Path.resolve(import.meta.dirname, "..")

interface Options {
  readonly mode: "smoke" | "default" | "full"
  readonly sizes: ReadonlyArray<number>
  readonly runs: number
  readonly only: ReadonlyArray<string> | undefined
  readonly url: string | undefined
  readonly data: string
  readonly out: string
  readonly quietLoad: number | undefined
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const has = (flag: string) => argv.includes(`--${flag}`)
  const value = (flag: string) => {
    const i = argv.indexOf(`--${flag}`)
    return i < 0 ? undefined : argv[i + 1]
  }
  const mode = has("smoke") ? "smoke" : has("full") ? "full" : "default"
  const sizes = value("sizes")?.split(",").map(Number) ??
    (mode === "smoke" ? [2_000] : mode === "full" ? [1_000_000, 10_000_000] : [100_000])
  const url = has("no-postgres")
    ? undefined
    : value("url") ?? process.env["SLUICE_BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/sluice_bench"
  const date = new Date().toISOString().slice(0, 10)
  return {
    mode,
    sizes,
    runs: Number(value("runs") ?? (mode === "smoke" ? 1 : 3)),
    only: value("only")?.split(","),
    url,
    data: value("data") ?? Path.join(Os.tmpdir(), "sluice-bench-data"),
    out: value("out") ?? Path.join(root, "bench", "results", `${date}${mode === "default" ? "" : `-${mode}`}.json`),
    quietLoad: value("quiet-load") === undefined ? undefined : Number(value("quiet-load"))
  }
}

interface Variant {
  readonly name: string
  readonly description: string
  readonly postgres: boolean
  /** What the figure counts: rows loaded, records transformed, or ms per partition. */
  readonly unit: "rows/s" | "records/s" | "ms/partition"
  readonly maxSize?: number
  readonly minSize?: number
  /** Runs once per bench, not per size. */
  readonly sizeless?: boolean
  /** The child's Node options. */
  readonly node?: ReadonlyArray<string>
  /** Which child variant runs it (its own name by default). */
  readonly child?: string
}

/**
 * The V8 options `pnpm sluice` runs with (package.json), so the Sluice variants run with them too:
 * - a 16 MB semi-space instead of the default young generation (64 MB semi-spaces on this
 *   machine), measured on 10M rows as fast or faster and about 90 MB smaller at peak;
 * - the old generation grown by 30% of what a full collection leaves live, instead of V8's
 *   dynamic factor (up to 4×): measured on 10M rows, peak RSS 303 → 187 MB at the same wall
 *   time, for 89 full collections instead of 35 (7.5 s of background marking instead of 3.1 s);
 * - no allocation-site pretenuring: when records queue for a while (the server busy), V8 can decide
 *   that the sites allocating them make long-lived objects and allocate them in the old generation
 *   from then on, for the rest of the run; measured on 1M rows read from the file, 28–29 full
 *   collections and 170 MB promoted in three runs out of three, against 3–4 and 28 MB without it.
 */
const sluiceNode: ReadonlyArray<string> = [
  "--max-semi-space-size=16",
  "--heap-growing-percent=30",
  "--no-allocation-site-pretenuring"
]

const variants: ReadonlyArray<Variant> = [
  { name: "limit", description: "psql \\copy + in-database aggregate", postgres: true, unit: "rows/s" },
  { name: "handwritten", description: "node-postgres, named INSERT × 1,000", postgres: true, unit: "rows/s" },
  {
    name: "sluice-postgres",
    description: "Sluice on PostgreSQL (COPY)",
    postgres: true,
    unit: "rows/s",
    node: sluiceNode
  },
  {
    name: "sluice-postgres-node-defaults",
    description: "Sluice on PostgreSQL, Node's default heap options",
    postgres: true,
    unit: "rows/s",
    minSize: 1_000_000,
    child: "sluice-postgres"
  },
  {
    name: "sluice-postgres-small-heap",
    description: "Sluice on PostgreSQL, V8 old generation capped",
    postgres: true,
    unit: "rows/s",
    minSize: 1_000_000,
    node: [...sluiceNode, "--max-old-space-size=128"],
    child: "sluice-postgres"
  },
  {
    name: "sluice-postgres-unnest",
    description: "Sluice on PostgreSQL (unnest)",
    postgres: true,
    unit: "rows/s",
    maxSize: 1_000_000,
    node: sluiceNode
  },
  {
    name: "sluice-merge",
    description: "the same orders upserted by key (Merge: COPY into a temporary table, one MERGE)",
    postgres: true,
    unit: "rows/s",
    node: sluiceNode
  },
  {
    name: "sluice-merge-unnest",
    description: "the same upsert, one MERGE … USING unnest per batch",
    postgres: true,
    unit: "rows/s",
    maxSize: 1_000_000,
    node: sluiceNode
  },
  {
    name: "sluice-pglite",
    description: "Sluice on PGlite (embedded)",
    postgres: false,
    unit: "rows/s",
    maxSize: 1_000_000,
    node: sluiceNode
  },
  {
    name: "transform",
    description: "transform alone: decode + routing, records in memory",
    postgres: false,
    unit: "records/s",
    node: sluiceNode
  },
  {
    name: "transform-file",
    description: "the same, reading the file (no database)",
    postgres: false,
    unit: "records/s",
    node: sluiceNode
  },
  {
    name: "backfill",
    description: "backfill, 365 empty partitions",
    postgres: true,
    unit: "ms/partition",
    sizeless: true,
    node: sluiceNode
  }
]

type ChildResult = Record<string, unknown> & { readonly elapsedMs: number; readonly peakRssMb: number }

interface Measured {
  readonly variant: string
  readonly size: number | undefined
  readonly unit: Variant["unit"]
  /** The child's Node options. */
  readonly nodeOptions: ReadonlyArray<string>
  readonly runs: ReadonlyArray<ChildResult>
  readonly figures: ReadonlyArray<number>
  readonly median: number
  readonly min: number
  readonly max: number
  readonly peakRssMb: number
  /** The highest 1-minute load average at the start of a run. */
  readonly loadAverage: number
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * `m`'s rows/s against `other`'s, paired by round (the i-th run of each ran in the same round, minutes
 * apart): the median, least and greatest of the per-round ratios. `undefined` unless both are rows/s.
 */
const pairedRatio = (m: Measured, other: Measured | undefined) => {
  if (other === undefined || m.unit !== "rows/s" || other.unit !== "rows/s") return undefined
  const n = Math.min(m.figures.length, other.figures.length)
  const ratios = Array.from({ length: n }, (_, i) => m.figures[i]! / other.figures[i]!)
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ratios }
}

const figureOf = (variant: Variant, result: ChildResult): number => {
  switch (variant.unit) {
    case "rows/s":
      return (result["loaded"] as number) / result.elapsedMs * 1000
    case "records/s":
      return (result["records"] as number) / result.elapsedMs * 1000
    case "ms/partition":
      return result["overheadMsPerPartition"] as number
  }
}

const load1 = () => Os.loadavg()[0]!

/** Waits (up to 10 minutes) for the 1-minute load average to drop below `threshold`, before a run. */
const waitForQuiet = (threshold: number | undefined) =>
  threshold === undefined ? Effect.void : Effect.gen(function*() {
    for (let waited = 0; load1() >= threshold && waited < 600; waited += 10) {
      yield* Effect.logInfo(`load average ${load1().toFixed(2)} ≥ ${threshold}: waiting`)
      yield* Effect.sleep("10 seconds")
    }
  })

const runChild = (args: ReadonlyArray<string>, node: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const output = yield* spawner.string(
      ChildProcess.make("node", [...node, Path.join(root, "bench", "child.ts"), ...args], { stderr: "inherit" })
    )
    const line = output.split("\n").find((l) => l.startsWith("RESULT "))
    if (line === undefined) return yield* Effect.die(new Error(`bench child ${args.join(" ")} gave no result`))
    return JSON.parse(line.slice("RESULT ".length)) as ChildResult
  })

/** The server's database for one run: dropped and created again, after a checkpoint. */
const freshDatabase = (admin: PgClient.PgClient, url: string) =>
  Effect.gen(function*() {
    const name = new URL(url).pathname.slice(1)
    yield* admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    yield* admin.unsafe(`CREATE DATABASE "${name}"`)
    yield* admin.unsafe("CHECKPOINT")
  })

const versionOf = (pkg: string): string | undefined => {
  for (const dir of [root, Path.join(root, "packages", "sql"), Path.join(root, "packages", "core")]) {
    const file = Path.join(dir, "node_modules", pkg, "package.json")
    if (Fs.existsSync(file)) return (JSON.parse(Fs.readFileSync(file, "utf8")) as { version: string }).version
  }
  return undefined
}

const git = (...args: Array<string>): string | undefined => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

const commandExists = (command: string): boolean => {
  try {
    execFileSync(command, ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const format = (unit: Variant["unit"], n: number): string =>
  unit === "ms/partition" ? n.toFixed(2) : Math.round(n).toLocaleString("en-US")

const table = (measured: ReadonlyArray<Measured>): string => {
  const rows = [["variant", "size", "median", "min–max", "unit", "peak RSS", "× limit", "× hand-written", "load"]]
  for (const m of measured) {
    const limit = measured.find((x) => x.variant === "limit" && x.size === m.size)
    const hand = measured.find((x) => x.variant === "handwritten" && x.size === m.size)
    const ratio = (other: Measured | undefined) => {
      const paired = pairedRatio(m, other)
      return paired === undefined
        ? ""
        : paired.ratios.length === 1
        ? paired.median.toFixed(2)
        : `${paired.median.toFixed(2)} (${paired.min.toFixed(2)}–${paired.max.toFixed(2)})`
    }
    rows.push([
      m.variant,
      m.size === undefined ? "" : m.size.toLocaleString("en-US"),
      format(m.unit, m.median),
      `${format(m.unit, m.min)}–${format(m.unit, m.max)}`,
      m.unit,
      `${m.peakRssMb} MB`,
      ratio(limit),
      ratio(hand),
      m.loadAverage.toFixed(2)
    ])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join("  "))
    .join("\n")
}

const main = Effect.gen(function*() {
  const options = parseOptions(process.argv.slice(2))
  const psql = commandExists("psql")
  const selected = variants.filter((v) =>
    (options.only === undefined || options.only.includes(v.name)) && (options.url !== undefined || !v.postgres) &&
    (v.name !== "limit" || psql)
  )
  const skipped = variants.filter((v) => !selected.includes(v)).map((v) => v.name)
  const admin = options.url === undefined ? undefined : yield* Effect.gen(function*() {
    const adminUrl = new URL(options.url!)
    adminUrl.pathname = "/postgres"
    const services = yield* Layer.build(Database.layerPostgres(adminUrl.toString(), { maxConnections: 1 }))
    return Context.get(services, PgClient.PgClient)
  })
  const serverVersion = admin === undefined ? undefined : (yield* admin<{ readonly version: string }>`
    SELECT version() AS version`)[0]?.version
  const loadAtStart = Os.loadavg()
  yield* Effect.logInfo(
    `sizes ${options.sizes.join(", ")}; ${options.runs} run(s); load average ${
      loadAtStart.map((l) => l.toFixed(2)).join(" ")
    }${skipped.length > 0 ? `; skipped: ${skipped.join(", ")}` : ""}`
  )
  const datasets: Array<Data.Dataset> = []
  for (const size of options.sizes) datasets.push(yield* Data.ensure(options.data, size))

  // PGlite runs open a copy of one data directory, as the CLI opens its existing one
  const pgliteInit = selected.some((v) => v.name === "sluice-pglite")
    ? yield* runChild(["pglite-template", "--data", options.data])
    : undefined

  /**
   * One run of a variant at a size. Runs go in rounds, each variant once per round (see the module
   * documentation), so that a ratio compares runs minutes apart, not a block of runs against another.
   */
  const runs = new Map<string, { readonly results: Array<ChildResult>; readonly loads: Array<number> }>()
  const slot = (variant: Variant, size: number | undefined) => {
    const key = `${variant.name}@${size ?? ""}`
    let entry = runs.get(key)
    if (entry === undefined) {
      entry = { results: [], loads: [] }
      runs.set(key, entry)
    }
    return entry
  }
  const runOnce = (variant: Variant, size: number | undefined, round: number) =>
    Effect.gen(function*() {
      if (variant.postgres) yield* freshDatabase(admin!, options.url!)
      yield* waitForQuiet(options.quietLoad)
      const load = load1()
      const args = [
        variant.child ?? variant.name,
        ...(size === undefined ? [] : ["--size", String(size)]),
        "--data",
        options.data,
        ...(options.url === undefined ? [] : ["--url", options.url]),
        ...(options.mode === "smoke" && variant.sizeless ? ["--partitions", "10"] : [])
      ]
      const result = yield* runChild(args, variant.node)
      const dataset = datasets.find((d) => d.records === size)
      if (dataset !== undefined && variant.unit === "rows/s" && result["loaded"] !== dataset.good) {
        return yield* Effect.die(
          new Error(`${variant.name} loaded ${String(result["loaded"])} rows, not the ${dataset.good} good ones`)
        )
      }
      const entry = slot(variant, size)
      entry.results.push(result)
      entry.loads.push(load)
      yield* Effect.logInfo(
        `round ${round + 1}/${options.runs}: ${variant.name}${size === undefined ? "" : ` ${size}`}: ${
          format(variant.unit, figureOf(variant, result))
        } ${variant.unit}, peak RSS ${result.peakRssMb} MB, load ${load.toFixed(2)}`
      )
    })

  const eligible = (variant: Variant, size: number) =>
    !variant.sizeless && (variant.maxSize === undefined || size <= variant.maxSize) &&
    (variant.minSize === undefined || size >= variant.minSize)
  for (const size of options.sizes) {
    for (let round = 0; round < options.runs; round++) {
      for (const variant of selected) if (eligible(variant, size)) yield* runOnce(variant, size, round)
    }
  }
  for (let round = 0; round < options.runs; round++) {
    for (const variant of selected) if (variant.sizeless) yield* runOnce(variant, undefined, round)
  }

  const measured: Array<Measured> = []
  for (const size of [...options.sizes, undefined]) {
    for (const variant of selected) {
      const entry = runs.get(`${variant.name}@${size ?? ""}`)
      if (entry === undefined) continue
      const figures = entry.results.map((r) => figureOf(variant, r))
      measured.push({
        variant: variant.name,
        size,
        unit: variant.unit,
        nodeOptions: variant.node ?? [],
        runs: entry.results,
        figures,
        median: median(figures),
        min: Math.min(...figures),
        max: Math.max(...figures),
        peakRssMb: Math.max(...entry.results.map((r) => r.peakRssMb)),
        loadAverage: Math.max(...entry.loads)
      })
    }
  }

  const results = {
    date: new Date().toISOString(),
    command: `pnpm bench ${process.argv.slice(2).join(" ")}`.trim(),
    mode: options.mode,
    runs: options.runs,
    machine: {
      cpus: Os.cpus().length,
      cpuModel: Os.cpus()[0]?.model,
      memoryMb: Math.round(Os.totalmem() / 1024 / 1024),
      os: `${Os.type()} ${Os.release()}`,
      arch: Os.arch(),
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: Os.loadavg()
    },
    versions: {
      node: process.version,
      postgres: serverVersion,
      effect: versionOf("effect"),
      "@effect/sql-pg": versionOf("@effect/sql-pg"),
      "@electric-sql/pglite": versionOf("@electric-sql/pglite"),
      pg: versionOf("pg"),
      sluice: (JSON.parse(Fs.readFileSync(Path.join(root, "packages", "sql", "package.json"), "utf8")) as {
        version: string
      }).version,
      commit: git("rev-parse", "HEAD"),
      uncommittedChanges: (git("status", "--porcelain") ?? "") !== ""
    },
    datasets: datasets.map(({ bad, bytes, good, records }) => ({ records, good, bad, bytes })),
    pgliteInitdb: pgliteInit === undefined
      ? undefined
      : { elapsedMs: pgliteInit.elapsedMs, peakRssMb: pgliteInit.peakRssMb },
    skipped,
    results: measured.map((m) => {
      const limit = measured.find((x) => x.variant === "limit" && x.size === m.size)
      const hand = measured.find((x) => x.variant === "handwritten" && x.size === m.size)
      return {
        ...m,
        /** The median of the per-round ratios (see `pairedRatio`), and each round's. */
        ratioToLimit: pairedRatio(m, limit)?.median,
        ratiosToLimit: pairedRatio(m, limit)?.ratios,
        ratioToHandwritten: pairedRatio(m, hand)?.median,
        ratiosToHandwritten: pairedRatio(m, hand)?.ratios
      }
    })
  }
  if (admin !== undefined) {
    yield* admin.unsafe(`DROP DATABASE IF EXISTS "${new URL(options.url!).pathname.slice(1)}" WITH (FORCE)`)
  }
  Fs.mkdirSync(Path.dirname(options.out), { recursive: true })
  Fs.writeFileSync(options.out, JSON.stringify(results, null, 2) + "\n")
  process.stdout.write(`\n${table(measured)}\n\nwritten to ${Path.relative(process.cwd(), options.out)}\n`)
})

Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeServices.layer)))).catch(
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
