/**
 * One measured run of one variant, in a process of its own so that its peak RSS is its own:
 * `node bench/child.ts <variant> --size N --data <dir> [--url <postgres url>]`. Prints one line,
 * `RESULT <json>`, with the elapsed time of the load (setup excluded), the rows loaded and
 * dead-lettered, and the process's peak RSS.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Result, Stream } from "effect"
import { HttpClient } from "effect/http"
import { SqlClient } from "effect/sql"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { OrderTransform } from "../apps/daily-revenue/src/Order.ts"
import {
  Backfill,
  DeadLetter,
  Partition,
  PartitionLock,
  Pipeline,
  RunLedger,
  type Sink,
  Source,
  Transactor
} from "../packages/core/src/index.ts"
import type { RawRecord } from "../packages/core/src/Source.ts"
import * as Database from "../packages/sql/src/Database.ts"
import * as SqlSluice from "../packages/sql/src/SqlSluice.ts"
import * as Data from "./data.ts"
import * as DbTime from "./dbTime.ts"
import { aggregate, ddl, mergedDdl, mergePipeline, name, pipeline, source as ordersSource } from "./pipeline.ts"

interface Args {
  readonly variant: string
  readonly size: number
  readonly data: string
  readonly url: string
  /** Backfill: how many days of 2023, from January 1st (365 by default). */
  readonly partitions: number
}

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  const option = (name: string) => {
    const i = argv.indexOf(`--${name}`)
    return i < 0 ? undefined : argv[i + 1]
  }
  return {
    variant: argv[0] ?? "",
    size: Number(option("size") ?? 0),
    data: option("data") ?? "",
    url: option("url") ?? "",
    partitions: Number(option("partitions") ?? 365)
  }
}

const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024)

interface Result {
  readonly elapsedMs: number
  readonly loaded?: number
  readonly deadLettered?: number
  readonly records?: number
  readonly [key: string]: unknown
}

const report = (result: Result) =>
  Effect.sync(() => {
    process.stdout.write(`RESULT ${JSON.stringify({ peakRssMb: peakRssMb(), ...result })}\n`)
  })

/** Services the pipeline's source asks for but never uses with a file location. */
const noHttp = Layer.succeed(HttpClient.HttpClient, undefined as unknown as HttpClient.HttpClient)

const setupTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const statement of ddl) yield* sql.unsafe(statement)
})

// ---------------------------------------------------------------------------
// the limit: psql \copy of the clean rows, and the aggregate in the database
// ---------------------------------------------------------------------------

const limit = (args: Args, dataset: Data.Dataset) =>
  Effect.gen(function*() {
    yield* Effect.provide(setupTables, Database.layerPostgres(Redacted.make(args.url), { maxConnections: 1 }))
    const script = [
      "\\timing on",
      "BEGIN;",
      // the partition is a psql variable (-v below), quoted by psql, not pasted into the SQL; `\copy`
      // takes no variables, so its file name is quoted here as psql reads it (quotes doubled)
      "DELETE FROM raw.orders WHERE order_date = :'partition';",
      `\\copy raw.orders FROM '${dataset.clean.replaceAll("'", "''")}'`,
      ...aggregate(":'partition'").map((statement) => `${statement};`),
      "COMMIT;"
    ].join("\n")
    const time = Fs.existsSync("/usr/bin/time")
    const result = yield* Effect.sync(() =>
      spawnSync(
        time ? "/usr/bin/time" : "psql",
        [
          ...(time ? ["-f", "MAXRSS %M", "psql"] : []),
          "-X",
          "-q",
          "-v",
          "ON_ERROR_STOP=1",
          "-v",
          `partition=${Data.partition}`,
          "-v",
          `file=${dataset.clean}`,
          "-d",
          args.url,
          "-f",
          "-"
        ],
        { input: script, encoding: "utf8" }
      )
    )
    if (result.status !== 0) return yield* Effect.die(new Error(`psql failed: ${result.stderr}`))
    const times = [...result.stdout.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1]))
    const rss = /MAXRSS (\d+)/.exec(result.stderr)
    // BEGIN, DELETE, \copy, DELETE, INSERT … SELECT, COMMIT
    return {
      elapsedMs: times.reduce((a, b) => a + b, 0),
      loaded: dataset.good,
      copyMs: times[2],
      aggregateMs: (times[3] ?? 0) + (times[4] ?? 0),
      commitMs: times[5],
      // the peak RSS of the loader is psql's
      ...(rss === null ? {} : { peakRssMb: Math.round(Number(rss[1]) / 1024) })
    }
  })

// ---------------------------------------------------------------------------
// the hand-written loader: node-postgres, plain validation, multi-row INSERT of 1,000
// ---------------------------------------------------------------------------

const decimal = /^(\d+)(?:\.(\d+))?$/
const currencyCode = /^[A-Z]{3}$/

/** The order rules, written by hand: the decoded row, or why the line is bad. */
const validate = (line: string, partition: string): Array<string> | string => {
  let o: any
  try {
    o = JSON.parse(line)
  } catch {
    return "invalid json"
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return "not an object"
  const text = (v: unknown) => typeof v === "string" && v.trim() !== "" && v.length <= 256
  if (!text(o.order_id)) return "bad order_id"
  if (!text(o.product_category)) return "bad product_category"
  if (!Number.isInteger(o.customer_id) || o.customer_id <= 0) return "bad customer_id"
  let amount: string
  if (typeof o.amount === "number") {
    const s = String(o.amount)
    if (!Number.isFinite(o.amount) || o.amount < 0 || s.includes("e")) return "bad amount"
    const m = decimal.exec(s)
    if (m === null || (m[2]?.length ?? 0) > 4 || s.replace(".", "").replace(/^0+/, "").length > 15) {
      return "bad amount"
    }
    amount = s
  } else if (typeof o.amount === "string") {
    const m = decimal.exec(o.amount)
    if (m === null || (m[2]?.length ?? 0) > 4) return "bad amount"
    amount = o.amount
  } else return "bad amount"
  let currency = "USD"
  if ("currency" in o) {
    if (typeof o.currency !== "string" || !currencyCode.test(o.currency)) return "bad currency"
    currency = o.currency
  }
  if (typeof o.order_date !== "string" || !Partition.isDateString(o.order_date)) return "bad order_date"
  if (o.order_date !== partition) return "order_date outside the partition"
  return [o.order_date, o.order_id, String(o.customer_id), o.product_category, amount, currency]
}

const valuesSql = (rows: number, columns: number) =>
  Array.from(
    { length: rows },
    (_, r) => `(${Array.from({ length: columns }, (_, c) => `$${r * columns + c + 1}`).join(", ")})`
  ).join(", ")

const handwritten = async (args: Args, dataset: Data.Dataset): Promise<Result> => {
  // imported here, so that no other variant's peak RSS includes it
  const { default: pg } = await import("pg")
  const client = new pg.Client({ connectionString: args.url })
  await client.connect()
  for (const statement of ddl) await client.query(statement)
  await client.query("CREATE TABLE raw.dead_letters (partition date, line int, payload text, error text)")
  const started = performance.now()
  // the full batches' statements are named: the server parses and plans each once, as a careful
  // hand-written loader would have it (measured at 1M rows: 10.8–11.1 s instead of 13.4–14.0 s unnamed)
  const insertOrders = { name: "insert-orders", text: `INSERT INTO raw.orders VALUES ${valuesSql(1000, 6)}` }
  const insertDead = { name: "insert-dead-letters", text: `INSERT INTO raw.dead_letters VALUES ${valuesSql(1000, 4)}` }
  let loaded = 0
  let dead = 0
  await client.query("BEGIN")
  await client.query("DELETE FROM raw.orders WHERE order_date = $1", [Data.partition])
  await client.query("DELETE FROM raw.dead_letters WHERE partition = $1", [Data.partition])
  let rows: Array<string> = []
  let deadRows: Array<string | number> = []
  const flush = async () => {
    if (rows.length > 0) {
      const n = rows.length / 6
      await client.query(n === 1000 ? insertOrders : `INSERT INTO raw.orders VALUES ${valuesSql(n, 6)}`, rows)
      loaded += n
      rows = []
    }
  }
  const flushDead = async () => {
    if (deadRows.length > 0) {
      const n = deadRows.length / 4
      await client.query(n === 1000 ? insertDead : `INSERT INTO raw.dead_letters VALUES ${valuesSql(n, 4)}`, deadRows)
      dead += n
      deadRows = []
    }
  }
  const lines = Readline.createInterface({ input: Fs.createReadStream(dataset.file), crlfDelay: Infinity })
  let position = 0
  for await (const line of lines) {
    position++
    if (line.trim() === "") continue
    const row = validate(line, Data.partition)
    if (typeof row === "string") {
      deadRows.push(Data.partition, position, line, row)
      if (deadRows.length === 4000) await flushDead()
    } else {
      for (const value of row) rows.push(value)
      if (rows.length === 6000) await flush()
    }
  }
  await flush()
  await flushDead()
  for (const statement of aggregate("$1::date")) await client.query(statement, [Data.partition])
  await client.query("COMMIT")
  const elapsedMs = performance.now() - started
  await client.end()
  return { elapsedMs, loaded, deadLettered: dead }
}

// ---------------------------------------------------------------------------
// Sluice
// ---------------------------------------------------------------------------

const services = Layer.mergeAll(NodeFileSystem.layer, noHttp)

const runPipeline = (dataset: Data.Dataset, load: "copy" | "unnest", merge = false) =>
  Effect.gen(function*() {
    const started = performance.now()
    const run = yield* Pipeline.run(
      merge ? mergePipeline(dataset.dir, load) : pipeline(dataset.dir, load),
      Data.partition
    )
    return {
      elapsedMs: performance.now() - started,
      loaded: run.loaded,
      deadLettered: run.deadLettered,
      records: run.read
    }
  })

const sluicePostgres = (args: Args, dataset: Data.Dataset, load: "copy" | "unnest", merge = false) =>
  Effect.gen(function*() {
    yield* setupTables
    if (merge) {
      const sql = yield* SqlClient.SqlClient
      for (const statement of mergedDdl) yield* sql.unsafe(statement)
    }
    return yield* runPipeline(dataset, load, merge).pipe(Effect.provide(SqlSluice.layer))
  }).pipe(Effect.provide(Layer.merge(Database.layerPostgres(Redacted.make(args.url)), services)))

/** A new PGlite data directory (initdb), copied by each PGlite run: the CLI opens an existing one. */
const pgliteTemplate = (args: Args) =>
  Effect.gen(function*() {
    const dataDir = Path.join(args.data, "pglite-template")
    Fs.rmSync(dataDir, { recursive: true, force: true })
    const started = performance.now()
    const db = yield* Effect.promise(() =>
      import("@electric-sql/pglite").then(({ PGlite }) => PGlite.create({ dataDir }))
    )
    const elapsedMs = performance.now() - started
    yield* Effect.promise(() => db.close())
    return { elapsedMs }
  })

const sluicePglite = (args: Args, dataset: Data.Dataset) =>
  Effect.suspend(() => {
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sluice-bench-pglite-"))
    Fs.cpSync(Path.join(args.data, "pglite-template"), dataDir, { recursive: true })
    const rssBeforeBootMb = Math.round(process.memoryUsage().rss / 1024 / 1024)
    const started = performance.now()
    return Effect.gen(function*() {
      // the layers are built: PGlite is open, Sluice's tables are migrated
      const bootMs = performance.now() - started
      const bootRssMb = Math.round(process.memoryUsage().rss / 1024 / 1024)
      yield* setupTables
      const result = yield* runPipeline(dataset, "copy")
      return { ...result, bootMs, bootRssMb, rssBeforeBootMb }
    }).pipe(
      Effect.provide(SqlSluice.layer),
      Effect.provide(Layer.merge(Database.layerPglite({ dataDir }), services)),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
    )
  })

/** A sink and a dead-letter store that keep nothing: the transform and the routing alone. */
const nullSink: Sink.Sink<unknown> = {
  target: "nothing",
  prepare: () => Effect.void,
  write: () => Effect.void,
  complete: () => Effect.void
}

const nullDeadLetters = Layer.succeed(
  DeadLetter.DeadLetterStore,
  DeadLetter.DeadLetterStore.of({
    clearPartition: () => Effect.void,
    write: () => Effect.void,
    list: () => Effect.succeed([]),
    get: () => Effect.succeedNone,
    countByType: () => Effect.succeed([]),
    countByTypeAndStatus: () => Effect.succeed([]),
    countByPartition: () => Effect.succeed([]),
    discard: () => Effect.succeed(0),
    resolve: () => Effect.succeed(0),
    remove: () => Effect.succeed(0),
    pipelines: () => Effect.succeed([]),
    recordAttempts: () => Effect.void,
    purge: () => Effect.succeed(0)
  })
)

/**
 * The in-memory transform variant holds the file's first 100,000 records and runs them again
 * until it has run as many records as the file has, or 1M: the per-record cost, without a heap
 * of millions of live strings for the garbage collector to walk (a run streams its records). One
 * unmeasured pass over them first warms the code up, as a long run's first seconds do.
 */
const inMemoryRecords = 100_000
const inMemoryTotal = 1_000_000

/**
 * The transform alone, through the runner (decode, rules, routing to rows and dead letters) into a
 * sink and a dead-letter store that keep nothing. `inMemory`: over records read beforehand (no
 * I/O: the per-record cost); otherwise over the file, as a run reads it. Also measures the decode
 * function alone, in a loop over lines in memory.
 */
const transform = (dataset: Data.Dataset, inMemory: boolean) =>
  Effect.gen(function*() {
    const fileSource = ordersSource(dataset.dir)
    const records: Array<RawRecord> = []
    if (inMemory) {
      yield* fileSource.extract(Data.partition).pipe(
        Stream.take(inMemoryRecords),
        Stream.runForEachArray((chunk) =>
          Effect.sync(() => {
            // copies, as a source that parsed its input would hold: no slices of the file's chunks
            for (const r of chunk) {
              records.push({ payload: JSON.parse(JSON.stringify(r.payload)), position: r.position })
            }
          })
        )
      )
    }
    const rounds = Math.max(1, Math.round(Math.min(dataset.records, inMemoryTotal) / Math.max(records.length, 1)))
    const source = inMemory
      ? Source.make("memory", () => Stream.flatMap(Stream.range(1, rounds), () => Stream.fromArray(records)))
      : fileSource
    if (inMemory) {
      // warm-up, not measured: one pass over the records, so that the figure is the per-record cost
      // of optimized code rather than of V8's first compilations (a run of millions amortizes those)
      yield* Pipeline.run(
        Pipeline.make({
          name,
          source: Source.make("memory", () => Stream.fromArray(records)),
          transform: OrderTransform,
          sink: nullSink,
          batchSize: 5_000
        }),
        Data.partition
      )
    }
    const started = performance.now()
    const run = yield* Pipeline.run(
      Pipeline.make({ name, source, transform: OrderTransform, sink: nullSink, batchSize: 5_000 }),
      Data.partition
    )
    const elapsedMs = performance.now() - started
    // the decode function alone, on lines already in memory (the first 100,000)
    const lines = inMemory
      ? records.slice(0, 100_000).map((r) => r.payload)
      : yield* fileSource.extract(Data.partition).pipe(
        Stream.take(100_000),
        Stream.map((r) => r.payload),
        Stream.runCollect
      )
    let best = Infinity
    for (let rep = 0; rep < 5; rep++) {
      const t = performance.now()
      for (let i = 0; i < lines.length; i++) {
        Result.isSuccess(OrderTransform({ payload: lines[i]!, position: i + 1 }, Data.partition))
      }
      best = Math.min(best, performance.now() - t)
    }
    return {
      elapsedMs,
      records: run.read,
      loaded: run.loaded,
      deadLettered: run.deadLettered,
      decodeOnlyRecordsPerSecond: Math.round(lines.length / best * 1000)
    }
  }).pipe(
    Effect.provide(Layer.mergeAll(
      nullDeadLetters,
      RunLedger.RunLedger.layerMemory,
      PartitionLock.PartitionLock.layerMemory,
      Transactor.Transactor.layerNone,
      services
    ))
  )

/** A year of empty partitions on PostgreSQL, one at a time; SQL time measured on the wire. */
const backfill = (args: Args) =>
  Effect.gen(function*() {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sluice-bench-empty-"))
    const first = Partition.makeUnsafe("2023-01-01")
    const partitions = Partition.range(first, Partition.addDays(first, args.partitions - 1))
    for (const p of partitions) Fs.writeFileSync(Path.join(dir, `${p}.jsonl`), "")
    const url = new URL(args.url)
    const client = PgClient.layerFrom(PgClient.make({
      url: Redacted.make(args.url),
      stream: DbTime.connect(url.hostname, Number(url.port || 5432)),
      maxConnections: 10
    }))
    return yield* Effect.gen(function*() {
      yield* setupTables
      const executor = yield* Backfill.Backfill
      const p = pipeline(dir)
      const sqlBefore = DbTime.busyMillis()
      const started = performance.now()
      const result = yield* executor.run({
        pipeline: p.name,
        partitions,
        concurrency: 1,
        runPartition: (partition) => Pipeline.run(p, partition)
      })
      const elapsedMs = performance.now() - started
      const sqlMs = DbTime.busyMillis() - sqlBefore
      if (result.failed > 0) return yield* Effect.die(new Error(`${result.failed} partitions failed`))
      return {
        elapsedMs,
        partitions: partitions.length,
        sqlMs,
        msPerPartition: elapsedMs / partitions.length,
        overheadMsPerPartition: (elapsedMs - sqlMs) / partitions.length
      }
    }).pipe(
      Effect.provide(SqlSluice.layer),
      Effect.provide(Layer.mergeAll(client, services, Backfill.Backfill.layerLocal)),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

const main = Effect.gen(function*() {
  const args = parseArgs(process.argv.slice(2))
  const dataset = args.size > 0 ? yield* Data.ensure(args.data, args.size) : undefined
  const needData = () =>
    dataset ?? (() => {
      throw new Error("--size is required")
    })()
  switch (args.variant) {
    case "limit":
      return yield* report(yield* limit(args, needData()))
    case "handwritten":
      return yield* report(yield* Effect.promise(() => handwritten(args, needData())))
    case "sluice-postgres":
      return yield* report(yield* sluicePostgres(args, needData(), "copy"))
    case "sluice-postgres-unnest":
      return yield* report(yield* sluicePostgres(args, needData(), "unnest"))
    case "sluice-merge":
      return yield* report(yield* sluicePostgres(args, needData(), "copy", true))
    case "sluice-merge-unnest":
      return yield* report(yield* sluicePostgres(args, needData(), "unnest", true))
    case "pglite-template":
      return yield* report(yield* pgliteTemplate(args))
    case "sluice-pglite":
      return yield* report(yield* sluicePglite(args, needData()))
    case "transform":
      return yield* report(yield* transform(needData(), true))
    case "transform-file":
      return yield* report(yield* transform(needData(), false))
    case "backfill":
      return yield* report(yield* backfill(args))
    default:
      return yield* Effect.die(new Error(`unknown variant ${JSON.stringify(args.variant)}`))
  }
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
