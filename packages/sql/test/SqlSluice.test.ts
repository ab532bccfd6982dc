import { assert, describe, it, layer } from "@effect/vitest"
import {
  DeadLetter,
  PartitionLock,
  Pipeline,
  RetryPolicy,
  RunLedger,
  Sink,
  SinkError,
  Source,
  Transform
} from "@sluice/core"
import { Database, PartitionReplace, SqlPartitionLock, SqlSluice, Testing } from "@sluice/sql"
import {
  Arbitrary,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { backends, day, suiteOptions, unique, withSluice, withTestClock } from "./fixtures.ts"

const Reading = Schema.Struct({
  id: Schema.NonEmptyString,
  value: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  day: Schema.String
})
type Reading = typeof Reading.Type

const transform = Transform.fromSchema(Reading, {
  rules: [Transform.rule("day_in_partition", (r, d) => r.day === d ? undefined : `day ${r.day} is not ${d}`)]
})

const kinds = ["good", "invalid_json", "truncated", "missing", "negative", "wrong_day", "nul", "surrogate"] as const
type Kind = typeof kinds[number]

/** A line of the given kind; every kind but "good" is dead-lettered. */
const line = (kind: Kind, i: number, d: string): string => {
  const good = { id: `r-${d}-${i}`, value: i, day: d }
  switch (kind) {
    case "good":
      return JSON.stringify(good)
    case "invalid_json":
      return `{id: r-${i}`
    case "truncated":
      return JSON.stringify(good).slice(0, 9)
    case "missing":
      return JSON.stringify({ id: good.id, day: d })
    case "negative":
      return JSON.stringify({ ...good, value: -1 - i })
    case "wrong_day":
      return JSON.stringify({ ...good, day: "1999-01-01" })
    case "nul":
      return `${JSON.stringify(good)}\u0000`
    case "surrogate":
      return `{"id":"\uD800${i}"`
  }
}

const linesOf = (ks: ReadonlyArray<Kind>, d: string) => ks.map((k, i) => line(k, i, d))

/** A source over a mutable map of day → lines, so a test can change what a re-run reads. */
const mapSource = (data: Map<string, ReadonlyArray<string>>) =>
  Source.make(
    "memory",
    (partition) => Stream.fromIterable((data.get(partition) ?? []).map((payload, i) => ({ payload, position: i + 1 })))
  )

const createTable = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE ${sql(table)} (day date NOT NULL, id text NOT NULL, value int NOT NULL)`
  )

const readingsSink = (table: string) =>
  PartitionReplace.make<Reading>({
    table,
    partitionColumn: "day",
    columns: [{ name: "day", type: "date" }, { name: "id", type: "text" }, { name: "value", type: "int" }],
    toRow: (r) => [r.day, r.id, r.value]
  })

const makePipeline = (
  name: string,
  source: Source.Source,
  sink: Sink.Sink<Reading, SqlClient.SqlClient>,
  retry = RetryPolicy.make({ baseDelay: "0 millis", jitter: false, maxRetries: 3 })
) => Pipeline.make({ name, source, transform, sink, batchSize: 7, retry, failureThreshold: 1 })

/** Everything a run leaves in the database for a pipeline: table rows and dead letters (with their ids). */
const snapshot = (pipeline: string, table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly day: string; readonly id: string; readonly value: number }>`
      SELECT day::text AS day, id, value FROM ${sql(table)} ORDER BY day, id`
    const dead = yield* (yield* DeadLetter.DeadLetterStore).list(pipeline)
    return {
      rows: rows.map((r) => `${r.day}|${r.id}|${r.value}`),
      dead: dead.map((d) => `${d.id}|${d.partition}|${d.position}|${d.errorType}|${d.runId}|${d.originalRecord}`)
    }
  })

const increment = (n: number) => n + 1

/** A sink that fails (retryable or not) on its n-th write, counting writes across attempts. */
const failingOnWrite = (
  sink: Sink.Sink<Reading, SqlClient.SqlClient>,
  n: number,
  retryable: boolean,
  writes: Ref.Ref<number>
): Sink.Sink<Reading, SqlClient.SqlClient> =>
  Sink.tapBatches(sink, () =>
    Effect.flatMap(Ref.updateAndGet(writes, increment), (w) =>
      w === n
        ? Effect.fail(new SinkError.SinkError({ operation: "insert", message: `write ${w} failed`, retryable }))
        : Effect.void))

/**
 * A run whose source reads `lines`, then never ends: `stalled` is done once the source has been read to
 * the end, so every full batch before it has been written (`writes` counts them).
 */
const stallingRun = (name: string, table: string, lines: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const stalled = yield* Deferred.make<void>()
    const writes = yield* Ref.make(0)
    const sink = readingsSink(table)
    const source = Source.make("stalling", () =>
      Stream.fromIterable(lines.map((payload, i) => ({ payload, position: i + 1 }))).pipe(
        Stream.concat(Stream.fromEffectDrain(Deferred.succeed(stalled, undefined))),
        Stream.concat(Stream.never)
      ))
    // a batch counts once it is handed to the sink (for a COPY stream, sent to the server)
    const pipeline = makePipeline(
      name,
      source,
      Sink.tapBatches(sink, () =>
        Ref.update(writes, increment))
    )
    return { pipeline, stalled, writes }
  })

/** Runs start one second apart, so the ledger's newest run is the last one (the test clock would tie them). */
const runLater = <A, E, R>(run: Effect.Effect<A, E, R>) => Effect.andThen(TestClock.adjust("1 second"), run)

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`Pipeline.run on SqlSluice [${backend.name}]`, (it) => {
    it.effect.prop(
      "conserves records: loaded + dead-lettered = read, in the table, the dead letters and the ledger",
      [Arbitrary.array(Arbitrary.schema(Schema.Literals(kinds)), { maxLength: 40 })],
      ([ks]) =>
        Effect.gen(function*() {
          const name = unique("conserve")
          const table = unique("conserve_rows")
          yield* createTable(table)
          const lines = linesOf(ks, day(0))
          const report = yield* Pipeline.run(
            makePipeline(name, mapSource(new Map([[day(0), lines]])), readingsSink(table)),
            day(0)
          )
          const good = ks.filter((k) => k === "good").length
          assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [ks.length, good, ks.length - good])
          const { rows } = yield* snapshot(name, table)
          assert.strictEqual(rows.length, good)
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
          assert.deepStrictEqual(
            dead.map((d) => [d.position, d.originalRecord, d.runId]),
            ks.flatMap((k, i) => k === "good" ? [] : [[i + 1, lines[i], report.runId]])
          )
          const [run] = yield* (yield* RunLedger.RunLedger).latest(name)
          assert.deepStrictEqual(
            [run?.status, run?.read, run?.loaded, run?.deadLettered, run?.runId],
            ["succeeded", ks.length, good, ks.length - good, report.runId]
          )
        }),
      { arbitrary: { runs: 15 } }
    )

    it.effect("a valid record with text PostgreSQL cannot store exactly is dead-lettered, not altered or fatal", () =>
      Effect.gen(function*() {
        const name = unique("storable")
        const table = `public.${name}`
        yield* createTable(table)
        const d = day(0)
        const lines = [
          JSON.stringify({ id: "plain", value: 1, day: d }),
          JSON.stringify({ id: "nul\u0000inside", value: 2, day: d }),
          JSON.stringify({ id: "lone\uD800surrogate", value: 3, day: d }),
          JSON.stringify({ id: "emoji\uD83D\uDE00", value: 4, day: d })
        ]
        const report = yield* Pipeline.run(makePipeline(name, mapSource(new Map([[d, lines]])), readingsSink(table)), d)
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [4, 2, 2])
        const { rows } = yield* snapshot(name, table)
        assert.deepStrictEqual(rows, [`${d}|emoji\uD83D\uDE00|4`, `${d}|plain|1`])
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
        assert.deepStrictEqual(dead.map((l) => [l.position, l.stage, l.errorType, l.originalRecord]), [
          [2, "load", "RuleViolation", lines[1]],
          [3, "load", "RuleViolation", lines[2]]
        ])
        assert.match(dead[0]!.error, /NUL/)
        assert.match(dead[1]!.error, /surrogate/)
      }))

    it.effect("a re-run replaces the partition's rows and dead letters: nothing piles up, other days untouched", () =>
      withTestClock(Effect.gen(function*() {
        const name = unique("rerun")
        const table = unique("rerun_rows")
        yield* createTable(table)
        const data = new Map([
          [day(0), linesOf(["good", "invalid_json", "good", "negative", "nul"], day(0))],
          [day(1), linesOf(["good", "missing"], day(1))]
        ])
        const pipeline = makePipeline(name, mapSource(data), readingsSink(table))
        yield* runLater(Pipeline.run(pipeline, day(0)))
        yield* runLater(Pipeline.run(pipeline, day(1)))
        const first = yield* snapshot(name, table)
        yield* runLater(Pipeline.run(pipeline, day(0)))
        const again = yield* snapshot(name, table)
        assert.deepStrictEqual(again.rows, first.rows)
        assert.strictEqual(again.dead.length, 4, "3 of day 0 and 1 of day 1, not 3 more")
        assert.deepStrictEqual(
          again.dead.filter((d) => d.includes(`|${day(1)}|`)),
          first.dead.filter((d) => d.includes(`|${day(1)}|`))
        )
        data.set(day(0), linesOf(["wrong_day", "good"], day(0)))
        const report = yield* runLater(Pipeline.run(pipeline, day(0)))
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name, { partition: day(0) })
        assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType, d.runId]), [[
          1,
          "RuleViolation",
          report.runId
        ]])
        const { rows } = yield* snapshot(name, table)
        assert.deepStrictEqual(rows, [`${day(0)}|r-${day(0)}-1|1`, `${day(1)}|r-${day(1)}-0|0`])
        assert.strictEqual((yield* (yield* RunLedger.RunLedger).list(name)).length, 4)
      })))

    it.effect("a load that fails after some batches leaves the previous rows and dead letters intact", () =>
      withTestClock(Effect.gen(function*() {
        const name = unique("failing")
        const table = unique("failing_rows")
        yield* createTable(table)
        const data = new Map([[day(0), linesOf(["good", "invalid_json", "good"], day(0))]])
        yield* runLater(Pipeline.run(makePipeline(name, mapSource(data), readingsSink(table)), day(0)))
        const before = yield* snapshot(name, table)
        // the second run reads 30 lines (5 batches: 4 written, the 3rd fails) with dead letters of its own
        data.set(day(0), linesOf(Array.from({ length: 30 }, (_, i) => i % 3 === 0 ? "missing" : "good"), day(0)))
        const writes = yield* Ref.make(0)
        const error = yield* Effect.flip(runLater(
          Pipeline.run(
            makePipeline(name, mapSource(data), failingOnWrite(readingsSink(table), 3, false, writes)),
            day(0)
          )
        ))
        assert.strictEqual(error._tag, "SinkError")
        assert.strictEqual(yield* Ref.get(writes), 3, "not retried: the error is not retryable")
        assert.deepStrictEqual(yield* snapshot(name, table), before)
        const [run] = yield* (yield* RunLedger.RunLedger).latest(name)
        assert.deepStrictEqual([run?.status, run?.errorType, run?.error], ["failed", "SinkError", "write 3 failed"])
      })))

    it.effect("a retryable failure is retried from a clean transaction: no row or dead letter twice", () =>
      Effect.gen(function*() {
        const name = unique("retried")
        const table = unique("retried_rows")
        yield* createTable(table)
        const kindsOfDay = Array.from({ length: 20 }, (_, i): Kind => i % 4 === 0 ? "truncated" : "good")
        const data = new Map([[day(0), linesOf(kindsOfDay, day(0))]])
        const writes = yield* Ref.make(0)
        const report = yield* Pipeline.run(
          makePipeline(name, mapSource(data), failingOnWrite(readingsSink(table), 2, true, writes)),
          day(0)
        )
        assert.deepStrictEqual([report.retries, report.read, report.loaded, report.deadLettered], [1, 20, 15, 5])
        const { rows, dead } = yield* snapshot(name, table)
        assert.strictEqual(rows.length, 15)
        assert.strictEqual(new Set(rows).size, 15)
        assert.strictEqual(dead.length, 5)
        const [run] = yield* (yield* RunLedger.RunLedger).latest(name)
        assert.deepStrictEqual([run?.status, run?.retries, run?.loaded], ["succeeded", 1, 15])
      }))

    it.effect("an interrupted run leaves the previous rows and dead letters intact and is recorded as Interrupted", () =>
      withTestClock(Effect.gen(function*() {
        const name = unique("interrupted")
        const table = unique("interrupted_rows")
        yield* createTable(table)
        const data = new Map([[day(0), linesOf(["good", "truncated", "good", "good"], day(0))]])
        yield* runLater(Pipeline.run(makePipeline(name, mapSource(data), readingsSink(table)), day(0)))
        const before = yield* snapshot(name, table)
        const lines = linesOf(Array.from({ length: 30 }, (_, i) => i % 5 === 0 ? "negative" : "good"), day(0))
        const { pipeline, stalled, writes } = yield* stallingRun(name, table, lines)
        const fiber = yield* Effect.forkChild(runLater(Pipeline.run(pipeline, day(0))))
        yield* Deferred.await(stalled)
        // batches are written in the background while the source is read: the 4th may still be in flight
        for (let turn = 0; turn < 1_000 && (yield* Ref.get(writes)) < 4; turn++) yield* Effect.yieldNow
        assert.strictEqual(yield* Ref.get(writes), 4, "interrupted mid-load, after 4 batches of 7 were written")
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* snapshot(name, table), before)
        const [run] = yield* (yield* RunLedger.RunLedger).latest(name)
        assert.deepStrictEqual([run?.status, run?.errorType], ["failed", "Interrupted"])
        // the lock is released and the database usable: the next run goes through
        const report = yield* runLater(Pipeline.run(makePipeline(name, mapSource(data), readingsSink(table)), day(0)))
        assert.strictEqual(report.loaded, 3)
        assert.deepStrictEqual((yield* snapshot(name, table)).rows, before.rows)
      })))

    it.effect("a second run of a partition being run fails with PartitionLocked and changes nothing", () =>
      Effect.gen(function*() {
        const name = unique("locked")
        const table = unique("locked_rows")
        yield* createTable(table)
        const { pipeline, stalled } = yield* stallingRun(name, table, linesOf(["good", "good", "good"], day(0)))
        const fiber = yield* Effect.forkChild(Pipeline.run(pipeline, day(0)))
        yield* Deferred.await(stalled)
        const error = yield* Effect.flip(
          Pipeline.run(makePipeline(name, mapSource(new Map()), readingsSink(table)), day(0))
        )
        assert.instanceOf(error, PartitionLock.PartitionLocked)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual((yield* (yield* RunLedger.RunLedger).list(name)).map((r) => r.errorType), [
          "Interrupted"
        ])
      }))

    it.effect(
      backend.name === "postgres"
        ? "runs of other partitions go on while one is held (each run has its own connection)"
        : "runs of other partitions queue behind a running load (PGlite has one session)",
      () =>
        Effect.gen(function*() {
          const name = unique("other_day")
          const table = unique("other_day_rows")
          yield* createTable(table)
          const { pipeline, stalled } = yield* stallingRun(name, table, linesOf(["good"], day(0)))
          const held = yield* Effect.forkChild(Pipeline.run(pipeline, day(0)))
          yield* Deferred.await(stalled)
          const other = yield* Effect.forkChild(
            Pipeline.run(
              makePipeline(name, mapSource(new Map([[day(1), linesOf(["good"], day(1))]])), readingsSink(table)),
              day(1)
            )
          )
          const whileHeld = yield* Effect.timeoutOption(Fiber.join(other), "300 millis")
          if (backend.name === "postgres") {
            assert.strictEqual(Option.getOrThrow(whileHeld).loaded, 1)
            yield* Fiber.interrupt(held)
          } else {
            // the other run waits for the session, is not refused, and completes once the held load ends
            assert.isTrue(Option.isNone(whileHeld))
            yield* Fiber.interrupt(held)
            assert.strictEqual((yield* Fiber.join(other)).loaded, 1)
          }
        })
    )
  })
}

const postgresUrl = Testing.postgresUrl()

describe.skipIf(postgresUrl === undefined)("Pipeline.run on SqlSluice [postgres, two processes]", () => {
  it.live("a run in another process of a partition being run fails with PartitionLocked and writes nothing", () =>
    Effect.gen(function*() {
      const url = yield* Testing.freshDatabase(postgresUrl!)
      const processA = yield* Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url))))
      const processB = yield* Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url))))
      yield* Effect.provideContext(createTable("readings"), processA)
      const { pipeline, stalled } = yield* Effect.provideContext(
        stallingRun("readings", "readings", linesOf(["good", "good"], day(0))),
        processA
      )
      const fiber = yield* Effect.forkChild(Effect.provideContext(Pipeline.run(pipeline, day(0)), processA))
      yield* Deferred.await(stalled)
      const error = yield* Effect.flip(Effect.provideContext(
        Pipeline.run(makePipeline("readings", mapSource(new Map()), readingsSink("readings")), day(0)),
        processB
      ))
      assert.instanceOf(error, PartitionLock.PartitionLocked)
      const other = yield* Effect.provideContext(
        Pipeline.run(
          makePipeline("readings", mapSource(new Map([[day(1), linesOf(["good"], day(1))]])), readingsSink("readings")),
          day(1)
        ),
        processB
      )
      assert.strictEqual(other.loaded, 1, "another partition runs in the other process meanwhile")
      yield* Fiber.interrupt(fiber)
      const runs = yield* Effect.provideContext(
        Effect.flatMap(RunLedger.RunLedger, (l) => l.list("readings")),
        processB
      )
      assert.deepStrictEqual(runs.map((r) => [r.partition, r.status, r.errorType]), [
        [day(1), "succeeded", undefined],
        [day(0), "failed", "Interrupted"]
      ])
      const again = yield* Effect.provideContext(
        Pipeline.run(
          makePipeline(
            "readings",
            mapSource(new Map([[day(0), linesOf(["good", "good"], day(0))]])),
            readingsSink("readings")
          ),
          day(0)
        ),
        processB
      )
      assert.strictEqual(again.loaded, 2, "the lock is free once the first process's run has ended")
    }))

  it.live("a run whose lock another process took after its lock session was lost stops with LockLost, loading nothing", () =>
    withTestClock(Effect.gen(function*() {
      const url = yield* Testing.freshDatabase(postgresUrl!)
      const built = yield* Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url))))
      // process A watches its lock session every second (of the test clock)
      const lockA = yield* Effect.provideContext(SqlPartitionLock.makeWith({ checkEvery: "1 second" }), built)
      const processA = Context.add(built, PartitionLock.PartitionLock, lockA)
      const processB = yield* Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url))))
      const sqlB = Context.get(processB, SqlClient.SqlClient)
      const lockB = Context.get(processB, PartitionLock.PartitionLock)
      yield* Effect.provideContext(createTable("readings"), processA)
      const { pipeline, stalled } = yield* Effect.provideContext(
        stallingRun("readings", "readings", linesOf(["good", "good"], day(0))),
        processA
      )
      const fiber = yield* Effect.forkChild(Effect.provideContext(Pipeline.run(pipeline, day(0)), processA))
      yield* Deferred.await(stalled)
      // A's lock session ends; B takes the lock before A checks its session
      const [session] = yield* sqlB<{ readonly pid: number }>`
        SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = hashtext('readings')::oid AND objid = hashtext(${day(0)})::oid`
      yield* sqlB`SELECT pg_terminate_backend(${session!.pid})`
      const tryTake = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const exit = yield* Effect.exit(Scope.provide(lockB.acquire("readings", day(0)), scope))
        if (Exit.isFailure(exit)) yield* Scope.close(scope, Exit.void)
        return Exit.isSuccess(exit) ? scope : undefined
      })
      const taken = yield* TestClock.withLive(tryTake.pipe(
        Effect.repeat({ until: (scope) => scope !== undefined, schedule: Schedule.spaced("20 millis"), times: 250 })
      ))
      assert.isDefined(taken)
      yield* TestClock.adjust("1 second")
      const error = yield* TestClock.withLive(Effect.timeout(Effect.flip(Fiber.join(fiber)), "10 seconds"))
      assert.deepStrictEqual(error, new PartitionLock.LockLost({ pipeline: "readings", partition: day(0) }))
      const runs = yield* Effect.provideContext(
        Effect.flatMap(RunLedger.RunLedger, (l) => l.list("readings")),
        processB
      )
      assert.deepStrictEqual(runs.map((r) => [r.partition, r.status, r.errorType]), [[day(0), "failed", "LockLost"]])
      const rows = yield* sqlB<{ readonly n: number }>`SELECT count(*)::int AS n FROM readings`
      assert.deepStrictEqual(rows, [{ n: 0 }], "its transaction rolled back")
      yield* Scope.close(taken!, Exit.void)
    })))
})
