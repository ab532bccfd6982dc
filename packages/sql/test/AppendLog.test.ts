import { assert, describe, it, layer } from "@effect/vitest"
import {
  DeadLetter,
  Partition,
  Pipeline,
  RetryPolicy,
  RunLedger,
  Sink,
  Source,
  SourceError,
  Transform
} from "@sluice/core"
import { AppendLog, SqlSluice, Testing } from "@sluice/sql"
import { Arbitrary, Deferred, Effect, Exit, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"

// ---------------------------------------------------------------------------
// The records, and a pure model of the view (plain TypeScript, no SQL)
// ---------------------------------------------------------------------------

const Row = Schema.Struct({
  k: Schema.NullOr(Schema.String),
  version: Schema.NullOr(Schema.Int),
  value: Schema.String,
  deleted: Schema.Boolean
})
type Row = typeof Row.Type

/** A row of the view: key, version, value (the deleted flag is not exposed). */
type ViewRow = readonly [k: string, version: number | null, value: string]

interface Appended {
  readonly row: Row
  /** The index of the partition of the run that appended it. */
  readonly partition: number
  readonly seq: number
}

/**
 * `a` is later than `b`: greater version (null lowest), then later partition, then appended later
 * (never by processing time).
 */
const later = (a: Appended, b: Appended): boolean => {
  const va = a.row.version ?? -Infinity
  const vb = b.row.version ?? -Infinity
  return va !== vb ? va > vb : a.partition !== b.partition ? a.partition > b.partition : a.seq > b.seq
}

/** The latest row of each key, without the keys whose latest row is a delete, ordered by key. */
const modelView = (log: ReadonlyArray<Appended>): Array<ViewRow> => {
  const latest = new Map<string, Appended>()
  for (const a of log) {
    const current = latest.get(a.row.k!)
    if (current === undefined || later(a, current)) latest.set(a.row.k!, a)
  }
  return [...latest.values()]
    .filter((a) => !a.row.deleted)
    .map((a): ViewRow => [a.row.k!, a.row.version, a.row.value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

// ---------------------------------------------------------------------------
// Logs under test
// ---------------------------------------------------------------------------

let counter = 0
const makeLog = () => {
  const name = `events_${++counter}`
  return AppendLog.make<Row>({
    log: `raw.${name}_log`,
    view: `analytics.${name}`,
    columns: [
      { name: "k", type: "text" },
      { name: "version", type: "int" },
      { name: "value", type: "text" },
      { name: "deleted", type: "bool" }
    ],
    toRow: (r) => [r.k, r.version, r.value, r.deleted],
    key: ["k"],
    orderBy: ["version"],
    deleted: "deleted",
    partitionColumn: "loaded_for"
  })
}

const create = (log: AppendLog.AppendLog<Row>) => Effect.andThen(log.createLog, log.createView)

/** A log for the iterations of a property: created by the first, emptied for the next ones. */
const reusable = () => {
  const log = makeLog()
  let created = false
  const fresh = Effect.suspend(() =>
    created
      ? Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE ${sql(log.spec.log)}`)
      : Effect.andThen(create(log), Effect.sync(() => void (created = true)))
  )
  return { log, fresh }
}

const readView = (log: AppendLog.AppendLog<Row>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly k: string; readonly version: number | null; readonly value: string }>`
      SELECT * FROM ${sql(log.spec.view)}`.pipe(
        Effect.map((rows) =>
          rows.map((r): ViewRow => [r.k, r.version, r.value]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        )
      )
  )

const logCount = (log: AppendLog.AppendLog<Row>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(log.spec.log)}`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0)
      )
  )

const day = (offset: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), offset)

/** What `Pipeline.run` does with the sink: prepare, write in batches of 2, complete, in one transaction. */
const append = (log: AppendLog.AppendLog<Row>, rows: ReadonlyArray<Row>, partition = day(0)) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* log.sink.prepare(partition)
      for (let i = 0; i < rows.length; i += 2) yield* log.sink.write(partition, rows.slice(i, i + 2))
      yield* log.sink.complete(partition)
    })))

/** What `Pipeline.run` does with a sink that takes streams: the rows as one stream of batches of 2 (one COPY). */
const appendStream = (log: AppendLog.AppendLog<Row>, rows: ReadonlyArray<Row>, partition = day(0)) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* log.sink.prepare(partition)
      const batches = Array.from({ length: Math.ceil(rows.length / 2) }, (_, i) => rows.slice(2 * i, 2 * i + 2))
      yield* log.sink.writeBatches!(partition, Stream.fromIterable(batches))
      yield* log.sink.complete(partition)
    })))

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

const RowArbitrary: Arbitrary.Arbitrary<Row> = Arbitrary.all({
  k: Arbitrary.schema(Schema.Literals(["k0", "k1", "k2", "k3", "k4"])),
  version: int(-1, 3),
  value: Arbitrary.schema(Schema.Literals(["a", "b", "c"])),
  del: int(0, 3)
}).pipe(Arbitrary.map(({ del, k, value, version }) => ({
  k,
  version: version < 0 ? null : version,
  value,
  deleted: del === 0
})))

const Batch = Arbitrary.array(RowArbitrary, { maxLength: 6 })

/**
 * One append: a batch of the pool, in its order or shuffled, for a partition, at a clock time, by
 * batches or as one stream; maybe a compaction after.
 */
const Step = Arbitrary.all({
  batch: int(0, 3),
  partition: int(0, 2),
  shuffle: int(0, 4),
  time: int(0, 3),
  stream: Arbitrary.schema(Schema.Boolean),
  compact: int(0, 3)
})

const shuffled = <A>(items: ReadonlyArray<A>, seed: number): Array<A> =>
  seed === 0 ? [...items] : items
    .map((item, i) => ({ item, rank: (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca6b)) >>> 0 }))
    .sort((a, b) => a.rank - b.rank)
    .map(({ item }) => item)

// ---------------------------------------------------------------------------
// Pipelines over the log
// ---------------------------------------------------------------------------

const transform = Transform.fromSchema(Row)
const payload = (row: Row) => JSON.stringify(row)

type Files = ReadonlyMap<string, ReadonlyArray<string>>

const filesSource = (files: Ref.Ref<Files>) =>
  Source.make("files", (partition) =>
    Stream.unwrap(Effect.map(Ref.get(files), (current) => {
      const lines = current.get(partition)
      return lines === undefined
        ? Stream.fail(
          new SourceError.SourceError({
            source: "files",
            reason: new SourceError.NotFound({ message: `no file for ${partition}` })
          })
        )
        : Stream.fromIterable(lines.map((line, i) => ({ payload: line, position: i + 1 })))
    })))

const pipelineOf = (
  name: string,
  source: Source.Source,
  sink: Sink.Sink<Row, SqlClient.SqlClient>,
  lookback = 0
) =>
  Pipeline.make({
    name,
    source,
    transform,
    sink,
    batchSize: 2,
    lookback,
    retry: RetryPolicy.make({ baseDelay: "1 millis", maxRetries: 0 })
  })

const deadLetters = (pipeline: string) =>
  Effect.map(
    Effect.flatMap(DeadLetter.DeadLetterStore, (store) => store.list(pipeline)),
    (all) => all.map((d) => `${d.partition}|${d.position}|${d.stage}|${d.errorType}|${d.originalRecord}`).sort()
  )

/** A line of a file: a record, or (1 in 8) a line that is not JSON. */
const Line = Arbitrary.all({ row: RowArbitrary, bad: int(0, 7) }).pipe(
  Arbitrary.map(({ bad, row }) => bad === 0 ? `{"k": "${row.k}", ` : payload(row))
)

/** A day of a feed: its lines, and stragglers appended to its file `delay` days later. */
const DayArbitrary = Arbitrary.all({
  lines: Arbitrary.array(Line, { maxLength: 5 }),
  stragglers: Arbitrary.array(Arbitrary.all({ line: Line, delay: int(1, 2) }), { maxLength: 3 })
})
type Day = {
  readonly lines: ReadonlyArray<string>
  readonly stragglers: ReadonlyArray<{ readonly line: string; readonly delay: number }>
}

/** The files at the end of day `asOf`: each day's lines, then its stragglers arrived by then, in arrival order. */
const filesAsOf = (days: ReadonlyArray<Day>, asOf: number): Files =>
  new Map(
    days.slice(0, asOf + 1).map((d, x) => [
      day(x),
      [
        ...d.lines,
        ...d.stragglers.map((s, i) => ({ ...s, i })).filter((s) => x + s.delay <= asOf).sort((a, b) =>
          a.delay - b.delay || a.i - b.i
        ).map((s) => s.line)
      ]
    ])
  )

/** The good records of the files, in the order "each day alone" appends them, with their day's index. */
const recordsInOrder = (files: Files): Array<{ readonly row: Row; readonly partition: number }> =>
  [...files].sort(([a], [b]) => a.localeCompare(b)).flatMap(([date, lines]) =>
    lines.flatMap((line) => {
      try {
        return [{ row: JSON.parse(line) as Row, partition: Partition.daysBetween(day(0), Partition.makeUnsafe(date)) }]
      } catch {
        return []
      }
    })
  )

// ---------------------------------------------------------------------------

describe("AppendLog.make validates the spec", () => {
  const valid: AppendLog.Spec<ReadonlyArray<unknown>> = {
    log: "raw.events_log",
    view: "analytics.events",
    columns: [{ name: "id", type: "text" }, { name: "at", type: "timestamptz" }, { name: "gone", type: "bool" }],
    toRow: (row) => row,
    key: ["id"],
    orderBy: ["at"],
    deleted: "gone"
  }
  const invalid = (spec: Partial<AppendLog.Spec<ReadonlyArray<unknown>>>) => () => AppendLog.make({ ...valid, ...spec })

  it("accepts a valid spec", () => {
    assert.strictEqual(AppendLog.make(valid).sink.target, "raw.events_log")
  })

  it.each(
    [
      ["no key", { key: [] }],
      ["a key that is not a column", { key: ["nope"] }],
      ["a repeated key column", { key: ["id", "id"] }],
      ["an ordering column that is not a column", { orderBy: ["nope"] }],
      ["a deleted column that is not bool", { deleted: "at" }],
      ["a deleted column that is the key", { key: ["gone"] }],
      ["a column named like the log's own", { processedAtColumn: "at" }],
      ["a partition column that is a column", { partitionColumn: "id" }],
      ["own columns with one name", { seqColumn: "processed_at" }],
      ["a reserved name", { partitionColumn: "sluice_rank" }],
      ["an injection in the view", { view: "analytics.events; DROP TABLE raw.events_log" }],
      ["an injection in the key", { key: ["id\"; --"] }]
    ] as const
  )("rejects %s", (_, spec) => {
    assert.throws(invalid(spec as Partial<AppendLog.Spec<ReadonlyArray<unknown>>>), /invalid table spec/)
  })
})

for (const backend of Testing.backends()) {
  layer(SqlSluice.layer.pipe(Layer.provideMerge(backend.layer)), { timeout: "60 seconds" })(
    `AppendLog [${backend.name}]`,
    (it) => {
      const sequences = reusable()
      const twice = reusable()
      const reruns = reusable()
      const lookbackDaily = reusable()
      const lookbackAlone = reusable()

      it.effect("the view exposes the record's columns only, not the processing time, sequence or delete flag", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          yield* create(log) // idempotent
          yield* append(log, [{ k: "k1", version: 1, value: "a", deleted: false }])
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql`SELECT * FROM ${sql(log.spec.view)}`
          assert.deepStrictEqual(rows, [{ k: "k1", version: 1, value: "a" }])
          const logged = yield* sql<{ readonly loaded_for: string; readonly processed_at: Date; readonly seq: string }>`
            SELECT loaded_for::text AS loaded_for, processed_at, seq::text AS seq FROM ${sql(log.spec.log)}`
          assert.deepStrictEqual(logged, [{ loaded_for: day(0), processed_at: new Date(0), seq: "1" }])
        }))

      it.effect.prop(
        "for any sequence of batches (re-runs, duplicates, shuffles, deletes, compactions) the view equals the model",
        [Arbitrary.array(Batch, { minLength: 1, maxLength: 4 }), Arbitrary.array(Step, { minLength: 1, maxLength: 8 })],
        ([pool, steps]) =>
          Effect.gen(function*() {
            yield* sequences.fresh
            const log = sequences.log
            const appended: Array<Appended> = []
            for (const step of steps) {
              const rows = shuffled(pool[step.batch % pool.length]!, step.shuffle)
              yield* TestClock.setTime(step.time * 1_000)
              yield* (step.stream ? appendStream : append)(log, rows, day(step.partition))
              for (const row of rows) appended.push({ row, partition: step.partition, seq: appended.length })
              assert.deepStrictEqual(yield* readView(log), modelView(appended))
              if (step.compact === 0) {
                const before = yield* logCount(log)
                const deleted = yield* log.compact
                const keys = new Set(appended.map((a) => a.row.k)).size
                assert.strictEqual(yield* logCount(log), keys, "one row left per key")
                assert.strictEqual(deleted, before - keys)
                assert.deepStrictEqual(
                  yield* readView(log),
                  modelView(appended),
                  "compaction leaves the view as it was"
                )
              }
            }
          }),
        { arbitrary: { runs: 25 } }
      )

      it.effect.prop(
        "re-running partitions in any order, at any clock time, leaves the view of running each once",
        [
          Arbitrary.array(Batch, { minLength: 1, maxLength: 3 }),
          Arbitrary.array(
            Arbitrary.all({ partition: int(0, 2), time: int(0, 3), stream: Arbitrary.schema(Schema.Boolean) }),
            {
              minLength: 1,
              maxLength: 7
            }
          )
        ],
        ([sources, runs]) =>
          Effect.gen(function*() {
            yield* reruns.fresh
            const log = reruns.log
            const ran = new Set<number>()
            for (const run of runs) {
              const index = run.partition % sources.length
              const before = yield* readView(log)
              yield* TestClock.setTime(run.time * 1_000)
              yield* (run.stream ? appendStream : append)(log, sources[index]!, day(index))
              if (ran.has(index)) assert.deepStrictEqual(yield* readView(log), before, "a re-run changes nothing")
              ran.add(index)
            }
            // the view of each partition that ran, run once, in the order of the days
            const once = [...ran].sort((a, b) => a - b).flatMap((index) =>
              sources[index]!.map((row) => ({ row, partition: index }))
            )
            assert.deepStrictEqual(yield* readView(log), modelView(once.map((a, seq) => ({ ...a, seq }))))
          }),
        { arbitrary: { runs: 30 } }
      )

      it.effect("a tie on the ordering goes to the later partition, not to the run that came last", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          const click = { k: "t1", version: 12, value: "click", deleted: false }
          const signup = { k: "t1", version: 12, value: "signup", deleted: false }
          yield* append(log, [click], day(0))
          assert.deepStrictEqual(yield* readView(log), [["t1", 12, "click"]])
          yield* append(log, [signup], day(1))
          assert.deepStrictEqual(yield* readView(log), [["t1", 12, "signup"]])
          yield* TestClock.setTime(60_000)
          yield* append(log, [click], day(0))
          yield* appendStream(log, [click], day(0))
          assert.deepStrictEqual(yield* readView(log), [["t1", 12, "signup"]])
          // a deletion of the later partition hides the key, whichever partition runs last
          yield* append(log, [{ ...click, deleted: true }], day(2))
          yield* append(log, [signup], day(1))
          assert.deepStrictEqual(yield* readView(log), [])
        }))

      it.effect("createLog upgrades a log created before it kept the partition: its rows lose every tie", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const log = AppendLog.make<Row>({ ...makeLog().spec, partitionColumn: undefined })
          const table = log.spec.log
          const index = `${table.slice(table.indexOf(".") + 1)}_latest_idx`
          // the log and its index as they were created before
          yield* sql`CREATE TABLE ${sql(table)} (k text NOT NULL, version int, value text, deleted bool,
            processed_at timestamptz NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)`
          yield* sql`CREATE INDEX ${sql(index)} ON ${
            sql(table)
          } (k, version DESC NULLS LAST, processed_at DESC, seq DESC)`
          yield* sql`INSERT INTO ${sql(table)} (k, version, value, deleted, processed_at)
            VALUES ('a', 1, 'old', false, now()), ('b', 1, 'old', false, now())`
          yield* create(log)
          yield* create(log)
          yield* append(log, [{ k: "a", version: 1, value: "new", deleted: false }])
          assert.deepStrictEqual(yield* readView(log), [["a", 1, "new"], ["b", 1, "old"]])
          const indexes = yield* sql<{ readonly name: string }>`
            SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'raw' AND tablename = ${
            table.slice(table.indexOf(".") + 1)
          } ORDER BY 1`
          assert.notInclude(indexes.map((i) => i.name), index)
        }))

      it.effect.prop(
        "appending the same batch twice leaves the view unchanged, whatever the clock says",
        [
          Arbitrary.array(Arbitrary.all({ rows: Batch, time: int(0, 3) }), { maxLength: 3 }),
          Batch,
          Arbitrary.all({
            first: int(0, 3),
            second: int(0, 3),
            stream: Arbitrary.schema(Schema.Boolean),
            again: Arbitrary.schema(Schema.Boolean)
          })
        ],
        ([history, batch, times]) =>
          Effect.gen(function*() {
            yield* twice.fresh
            const log = twice.log
            for (const { rows, time } of history) {
              yield* TestClock.setTime(time * 1_000)
              yield* append(log, rows)
            }
            yield* TestClock.setTime(times.first * 1_000)
            yield* (times.stream ? appendStream : append)(log, batch)
            const once = yield* readView(log)
            yield* TestClock.setTime(times.second * 1_000)
            yield* (times.again ? appendStream : append)(log, batch)
            assert.deepStrictEqual(yield* readView(log), once)
          }),
        { arbitrary: { runs: 30 } }
      )

      it.effect("processing time never goes back, so a clock set back cannot make a re-append change the view", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          yield* TestClock.setTime(3_000)
          yield* append(log, [{ k: "a", version: 3, value: "", deleted: true }])
          yield* TestClock.setTime(0)
          // ties with the delete on version 3, and was appended later: it wins, though the clock went back
          yield* append(log, [{ k: "a", version: 3, value: "x", deleted: false }])
          assert.deepStrictEqual(yield* readView(log), [["a", 3, "x"]])
          yield* TestClock.setTime(3_000)
          yield* append(log, [{ k: "a", version: 3, value: "x", deleted: false }])
          assert.deepStrictEqual(yield* readView(log), [["a", 3, "x"]])
          const sql = yield* SqlClient.SqlClient
          const times = yield* sql<{ readonly ms: number }>`
            SELECT (extract(epoch FROM processed_at) * 1000)::int AS ms FROM ${sql(log.spec.log)} ORDER BY seq`
          assert.deepStrictEqual(times.map((t) => t.ms), [3_000, 3_000, 3_000])
        }))

      it.effect("a stream of batches is one COPY: one processing time, never back, and seq in the stream's order", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          yield* TestClock.setTime(5_000)
          yield* append(log, [{ k: "a", version: 1, value: "x", deleted: false }])
          const rows = Array.from(
            { length: 7 },
            (_, i): Row => ({ k: `k${i % 3}`, version: 2, value: `v${i}`, deleted: false })
          )
          const batches = [rows.slice(0, 3), [], rows.slice(3, 4), rows.slice(4)]
          const sql = yield* SqlClient.SqlClient
          // the clock goes back, then moves on past the log's latest while the stream is copied:
          // batch by batch, each write would read it again
          yield* TestClock.setTime(4_000)
          const copies = Stream.fromIterable(batches).pipe(Stream.tap(() => TestClock.adjust("1 second")))
          yield* sql.withTransaction(log.sink.writeBatches!(day(2), copies))
          const logged = yield* sql<
            { readonly value: string; readonly loaded_for: string; readonly ms: number; readonly seq: string }
          >`SELECT value, loaded_for::text AS loaded_for, (extract(epoch FROM processed_at) * 1000)::int AS ms,
              seq::text AS seq FROM ${sql(log.spec.log)} ORDER BY seq`
          assert.deepStrictEqual(logged.map((r) => r.value), ["x", ...rows.map((r) => r.value)])
          assert.deepStrictEqual(logged.map((r) => r.ms), Array.from({ length: 8 }, () => 5_000))
          assert.deepStrictEqual(logged.slice(1).map((r) => r.loaded_for), rows.map(() => day(2)))
          assert.deepStrictEqual(yield* readView(log), [["a", 1, "x"], ["k0", 2, "v6"], ["k1", 2, "v4"], [
            "k2",
            2,
            "v5"
          ]])
          // a later clock is taken as it is, to the microsecond the server keeps
          yield* TestClock.setTime(9_000.5)
          yield* appendStream(log, [{ k: "a", version: 0, value: "late", deleted: false }])
          const [last] = yield* sql<{ readonly at: string }>`
            SELECT to_char(max(processed_at) AT TIME ZONE 'UTC', 'SS.US') AS at FROM ${sql(log.spec.log)}`
          assert.strictEqual(last?.at, "09.000500")
        }))

      it.effect("a stream keeps its processing time exact under any DateStyle and TimeZone of the session", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          const sql = yield* SqlClient.SqlClient
          // (a small step of the test clock: the pool's timers run at every second it passes over)
          yield* TestClock.setTime(3_600_250)
          // in the SQL style Kolkata's time prints as "IST", which PostgreSQL reads as Israel's
          yield* sql.withTransaction(Effect.gen(function*() {
            yield* sql`SET LOCAL DateStyle = 'SQL, DMY'`
            yield* sql`SET LOCAL TimeZone = 'Asia/Kolkata'`
            yield* log.sink.writeBatches!(day(0), Stream.make([{ k: "a", version: 1, value: "x", deleted: false }]))
          }))
          const [row] = yield* sql<{ readonly at: string }>`
            SELECT to_char(processed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at FROM ${sql(log.spec.log)}`
          assert.strictEqual(row?.at, "1970-01-01 01:00:00.250000")
        }))

      it.effect("load: unnest appends batch by batch (no stream path), with the same view", () =>
        Effect.gen(function*() {
          const log = AppendLog.make<Row>({ ...makeLog().spec, load: "unnest" })
          assert.isUndefined(log.sink.writeBatches)
          assert.isDefined(makeLog().sink.writeBatches)
        }))

      it.effect("hides a key whose latest row is a delete, and shows it again after a later row", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          yield* append(log, [
            { k: "a", version: 1, value: "x", deleted: false },
            { k: "b", version: 1, value: "y", deleted: false }
          ])
          yield* append(log, [{ k: "a", version: 2, value: "", deleted: true }])
          assert.deepStrictEqual(yield* readView(log), [["b", 1, "y"]])
          // an older version arriving late stays hidden behind the delete, even after compaction
          yield* log.compact
          yield* append(log, [{ k: "a", version: 1, value: "x", deleted: false }])
          assert.deepStrictEqual(yield* readView(log), [["b", 1, "y"]])
          yield* append(log, [{ k: "a", version: 3, value: "z", deleted: false }])
          assert.deepStrictEqual(yield* readView(log), [["a", 3, "z"], ["b", 1, "y"]])
        }))

      it.effect("dead-letters a record with a null key (MissingKey, stage load); conservation holds", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          const name = `null_key_${counter}`
          const lines = [
            payload({ k: "a", version: 1, value: "x", deleted: false }),
            payload({ k: null, version: 1, value: "x", deleted: false })
          ]
          const files = yield* Ref.make<Files>(new Map([[day(0), lines]]))
          const report = yield* Pipeline.run(pipelineOf(name, filesSource(files), log.sink), day(0))
          assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [2, 1, 1])
          assert.deepStrictEqual(yield* deadLetters(name), [`${day(0)}|2|load|MissingKey|${lines[1]}`])
          assert.deepStrictEqual(yield* readView(log), [["a", 1, "x"]])
        }))

      it.effect("a load failing mid-way leaves the log and the view as they were", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          const name = `failing_${counter}`
          yield* append(log, [{ k: "a", version: 1, value: "x", deleted: false }])
          const before = { count: yield* logCount(log), view: yield* readView(log) }
          const good = [2, 3, 4].map((v) => payload({ k: "a", version: v, value: "y", deleted: false }))
          // the source breaks after two batches were written
          const broken = Source.make("broken", () =>
            Stream.concat(
              Stream.fromIterable(good.map((line, i) => ({ payload: line, position: i + 1 }))),
              Stream.fail(
                new SourceError.SourceError({
                  source: "broken",
                  reason: new SourceError.InvalidResponse({ message: "cut" })
                })
              )
            ))
          const exit = yield* Effect.exit(Pipeline.run(pipelineOf(name, broken, log.sink), day(1)))
          assert.isTrue(Exit.isFailure(exit))
          assert.deepStrictEqual({ count: yield* logCount(log), view: yield* readView(log) }, before)
          // the database refuses the second batch
          const sql = yield* SqlClient.SqlClient
          yield* sql`ALTER TABLE ${sql(log.spec.log)} ADD CHECK (value <> 'boom')`
          const files = yield* Ref.make<Files>(
            new Map([[day(1), [...good, payload({ k: "b", version: 1, value: "boom", deleted: false })]]])
          )
          const refused = yield* Effect.flip(Pipeline.run(pipelineOf(name, filesSource(files), log.sink), day(1)))
          assert.strictEqual(refused._tag, "SinkError")
          assert.deepStrictEqual({ count: yield* logCount(log), view: yield* readView(log) }, before)
          const runs = yield* (yield* RunLedger.RunLedger).list(name)
          assert.deepStrictEqual(runs.map((r) => `${r.status} ${r.errorType}`).sort(), [
            "failed SinkError",
            "failed SourceError.InvalidResponse"
          ])
        }))

      it.effect("an interrupted load leaves the log and the view as they were", () =>
        Effect.gen(function*() {
          const log = makeLog()
          yield* create(log)
          const name = `interrupted_${counter}`
          yield* append(log, [{ k: "a", version: 1, value: "x", deleted: false }])
          const before = { count: yield* logCount(log), view: yield* readView(log) }
          const written = yield* Deferred.make<void>()
          // the stream path signals once its first batch is on its way into the COPY
          const sink: Sink.Sink<Row, SqlClient.SqlClient> = {
            ...log.sink,
            write: (partition, rows) =>
              Effect.andThen(log.sink.write(partition, rows), Deferred.succeed(written, void 0)),
            writeBatches: (partition, batches) =>
              log.sink.writeBatches!(partition, Stream.tap(batches, () => Deferred.succeed(written, void 0)))
          }
          const lines = [2, 3].map((v) => payload({ k: "a", version: v, value: "y", deleted: false }))
          const stalled = Source.make("stalled", () =>
            Stream.concat(
              Stream.fromIterable(lines.map((line, i) => ({ payload: line, position: i + 1 }))),
              Stream.never
            ))
          const fiber = yield* Effect.forkChild(Pipeline.run(pipelineOf(name, stalled, sink), day(1)))
          yield* Deferred.await(written)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual({ count: yield* logCount(log), view: yield* readView(log) }, before)
          const [run] = yield* (yield* RunLedger.RunLedger).list(name)
          assert.strictEqual(run?.errorType, "Interrupted")
        }))

      it.effect.prop(
        "lookback: daily runs with lookback n equal running each day alone after the late data arrived",
        [Arbitrary.array(DayArbitrary, { minLength: 1, maxLength: 4 }), int(1, 2)],
        ([feed, n]) =>
          Effect.gen(function*() {
            const days = feed.map((d) => ({ ...d, stragglers: d.stragglers.filter((s) => s.delay <= n) }))
            const last = days.length - 1
            yield* lookbackDaily.fresh
            yield* lookbackAlone.fresh
            const iteration = ++counter
            const daily = { log: lookbackDaily.log, name: `lookback_daily_${iteration}` }
            const alone = { log: lookbackAlone.log, name: `lookback_alone_${iteration}` }
            const files = yield* Ref.make<Files>(new Map())
            const withLookback = pipelineOf(daily.name, filesSource(files), daily.log.sink, n)
            for (let d = 0; d <= last; d++) {
              yield* Ref.set(files, filesAsOf(days, d))
              yield* Pipeline.run(withLookback, day(d))
            }
            // the files have not changed since the last run: each day alone, once, in order
            const eachDay = pipelineOf(alone.name, filesSource(files), alone.log.sink)
            for (let d = 0; d <= last; d++) yield* Pipeline.run(eachDay, day(d))

            const view = yield* readView(daily.log)
            assert.deepStrictEqual(view, yield* readView(alone.log))
            assert.deepStrictEqual(
              view,
              modelView(recordsInOrder(filesAsOf(days, last)).map((appended, seq) => ({ ...appended, seq })))
            )
            assert.deepStrictEqual(yield* deadLetters(daily.name), yield* deadLetters(alone.name))
            // a re-run with lookback changes nothing
            yield* Pipeline.run(withLookback, day(last))
            assert.deepStrictEqual(yield* readView(daily.log), view)
          }),
        { arbitrary: { runs: 20 } }
      )
    }
  )
}
