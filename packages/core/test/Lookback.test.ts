import { assert, describe, it } from "@effect/vitest"
import { Backfill, type Partition, Pipeline, RetryPolicy, RunLedger, Sink, Source, SourceError } from "@sluice/core"
import { Arbitrary, Effect, Ref, Schema, Stream } from "effect"
import { day, deadLetterSnapshot, Kind, layerMemory, line, type Reading, transform } from "./fixtures.ts"

/** The files of a folder source: day → lines, rewritten between runs as late data arrives. */
type Files = ReadonlyMap<string, ReadonlyArray<string>>

/** A source over the current content of `files`; a day without a file fails with NotFound. */
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
        : Stream.fromIterable(lines.map((payload, i) => ({ payload, position: i + 1 })))
    })))

const makePipeline = (source: Source.Source, sink: Sink.Sink<Reading>, lookback: number) =>
  Pipeline.make({
    name: "readings",
    source,
    transform,
    sink,
    batchSize: 5,
    lookback,
    retry: RetryPolicy.make({ baseDelay: "1 millis", maxRetries: 0 })
  })

const noSource = Source.make("none", () => Stream.empty)
const noSink: Sink.Sink<Reading> = {
  target: "none",
  prepare: () => Effect.void,
  write: () => Effect.void,
  complete: () => Effect.void
}

const rowsSnapshot = (rows: Ref.Ref<ReadonlyMap<Partition.PartitionDate, ReadonlyArray<Reading>>>) =>
  Effect.map(Ref.get(rows), (m) => [...m].filter(([, rs]) => rs.length > 0).sort(([a], [b]) => a.localeCompare(b)))

/**
 * A day of a feed: the lines delivered on the day, and stragglers appended to the day's file
 * `delay` days later (late data).
 */
interface Day {
  readonly kinds: ReadonlyArray<Kind>
  readonly stragglers: ReadonlyArray<{ readonly kind: Kind; readonly delay: number }>
}

/** The files as they stand at the end of day `asOf`: each day's lines, then its stragglers arrived by then. */
const filesAsOf = (days: ReadonlyArray<Day>, asOf: number): Files =>
  new Map(
    days.slice(0, asOf + 1).map((d, x) => {
      const arrived = d.stragglers
        .map((s, i) => ({ ...s, i }))
        .filter((s) => x + s.delay <= asOf)
        .sort((a, b) => a.delay - b.delay || a.i - b.i)
      return [
        day(x),
        [
          ...d.kinds.map((k, i) => line(k, i, day(x))),
          ...arrived.map((s) => line(s.kind, d.kinds.length + s.i, day(x)))
        ]
      ]
    })
  )

const Small = (maximum: number) => Schema.Int.check(Schema.isBetween({ minimum: 1, maximum }))

const DayArbitrary = Arbitrary.all({
  kinds: Arbitrary.array(Arbitrary.schema(Kind), { maxLength: 8 }),
  stragglers: Arbitrary.array(Arbitrary.all({ kind: Arbitrary.schema(Kind), delay: Arbitrary.schema(Small(3)) }), {
    maxLength: 4
  })
})

describe("Pipeline lookback", () => {
  it.effect.prop(
    "daily runs with lookback n equal running each day alone after the late data arrived (stragglers ≤ n days late)",
    [Arbitrary.array(DayArbitrary, { minLength: 1, maxLength: 6 }), Arbitrary.schema(Small(3))],
    ([feed, n]) => {
      const days = feed.map((d) => ({ ...d, stragglers: d.stragglers.filter((s) => s.delay <= n) }))
      const last = days.length - 1
      return Effect.gen(function*() {
        const daily = yield* Effect.gen(function*() {
          const files = yield* Ref.make<Files>(new Map())
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(filesSource(files), sink, n)
          for (let d = 0; d <= last; d++) {
            yield* Ref.set(files, filesAsOf(days, d))
            const report = yield* Pipeline.run(pipeline, day(d))
            // the dates of the window that were run before (all of them but those before day 0)
            assert.deepStrictEqual(
              report.lookback.map((o) => [o.partition, o._tag]),
              Pipeline.lookbackWindow(day(d), n).map((p) => [p, p < day(0) ? "Skipped" : "Succeeded"])
            )
          }
          const ledger = yield* RunLedger.RunLedger
          // each day's runs keep its own date: one direct run, and one lookback run per later day within n
          for (let d = 0; d <= last; d++) {
            const runs = yield* ledger.list("readings", { start: day(d), end: day(d) })
            assert.deepStrictEqual(
              runs.map((r) => Pipeline.triggerOf(r.runId)).reverse(),
              [
                { _tag: "Direct" },
                ...Array.from({ length: Math.min(n, last - d) }, (_, k) => ({ _tag: "Lookback", of: day(d + k + 1) }))
              ]
            )
            assert.isTrue(runs.every((r) => r.partition === day(d) && r.status === "succeeded"))
          }
          return { rows: yield* rowsSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
        }).pipe(Effect.provide(layerMemory))

        const alone = yield* Effect.gen(function*() {
          const files = yield* Ref.make(filesAsOf(days, last))
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(filesSource(files), sink, 0)
          for (let d = 0; d <= last; d++) yield* Pipeline.run(pipeline, day(d))
          return { rows: yield* rowsSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
        }).pipe(Effect.provide(layerMemory))

        assert.deepStrictEqual(daily, alone)
      })
    },
    { arbitrary: { runs: 40 } }
  )

  it.effect("without lookback, data that arrives late in an earlier day's file is missed", () =>
    Effect.gen(function*() {
      const days: ReadonlyArray<Day> = [{ kinds: ["good"], stragglers: [{ kind: "good", delay: 1 }] }, {
        kinds: ["good"],
        stragglers: []
      }]
      const loaded = (n: number) =>
        Effect.gen(function*() {
          const files = yield* Ref.make<Files>(new Map())
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(filesSource(files), sink, n)
          for (const d of [0, 1]) {
            yield* Ref.set(files, filesAsOf(days, d))
            yield* Pipeline.run(pipeline, day(d))
          }
          return (yield* Ref.get(rows)).get(day(0))?.length
        }).pipe(Effect.provide(layerMemory))
      assert.strictEqual(yield* loaded(0), 1, "the straggler of day 0 is never loaded")
      assert.strictEqual(yield* loaded(1), 2, "the run of day 1 rebuilt day 0 with its straggler")
    }))

  it.effect("a lookback partition that fails is reported and recorded; the partition itself still loads", () =>
    Effect.gen(function*() {
      const files = yield* Ref.make<Files>(filesAsOf([{ kinds: ["good"], stragglers: [] }], 0))
      const { rows, sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(filesSource(files), sink, 2)
      yield* Pipeline.run(pipeline, day(0))
      // day 0's file disappears; day 2 arrives
      yield* Ref.set(files, new Map([[day(2), [line("good", 0, day(2))]]]))
      const report = yield* Pipeline.run(pipeline, day(2))
      assert.deepStrictEqual(report.trigger, { _tag: "Direct" })
      assert.strictEqual(report.loaded, 1)
      const [first, second] = report.lookback
      assert.strictEqual(first?._tag, "Failed")
      assert.strictEqual(first?._tag === "Failed" ? first.errorType : undefined, "SourceError.NotFound")
      assert.deepStrictEqual(second, { _tag: "Skipped", partition: day(1), reason: "never run before" })
      const [latest] = yield* (yield* RunLedger.RunLedger).list("readings", { start: day(0), end: day(0) })
      assert.strictEqual(latest?.status, "failed")
      assert.deepStrictEqual(Pipeline.triggerOf(latest!.runId), { _tag: "Lookback", of: day(2) })
      assert.strictEqual((yield* Ref.get(rows)).get(day(2))?.length, 1)
    }).pipe(Effect.provide(layerMemory)))

  it.effect("the report of a lookback partition carries its trigger and its own counts", () =>
    Effect.gen(function*() {
      const days: ReadonlyArray<Day> = [
        { kinds: ["good", "negative"], stragglers: [{ kind: "good", delay: 1 }] },
        { kinds: ["good"], stragglers: [] }
      ]
      const files = yield* Ref.make(filesAsOf(days, 0))
      const { sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(filesSource(files), sink, 1)
      yield* Pipeline.run(pipeline, day(0))
      yield* Ref.set(files, filesAsOf(days, 1))
      const report = yield* Pipeline.run(pipeline, day(1))
      const [rebuilt] = report.lookback
      assert.strictEqual(rebuilt?._tag, "Succeeded")
      if (rebuilt?._tag !== "Succeeded") return
      assert.deepStrictEqual(rebuilt.report.trigger, { _tag: "Lookback", of: day(1) })
      assert.deepStrictEqual([rebuilt.report.read, rebuilt.report.loaded, rebuilt.report.deadLettered], [3, 2, 1])
      assert.isTrue(rebuilt.report.runId.startsWith(`lookback/${day(1)}/`))
      assert.deepStrictEqual(rebuilt.report.lookback, [])
    }).pipe(Effect.provide(layerMemory)))

  it.effect("is idempotent: re-running a day with lookback changes nothing", () =>
    Effect.gen(function*() {
      const days: ReadonlyArray<Day> = [0, 1, 2].map((d) => ({
        kinds: ["good", "good", d === 1 ? "missing" : "good"],
        stragglers: [{ kind: "good", delay: 1 }]
      }))
      const files = yield* Ref.make(filesAsOf(days, 2))
      const { rows, sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(filesSource(files), sink, 2)
      for (const d of [0, 1, 2]) yield* Pipeline.run(pipeline, day(d))
      const once = { rows: yield* rowsSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
      yield* Pipeline.run(pipeline, day(2))
      yield* Pipeline.run(pipeline, day(2))
      assert.deepStrictEqual({ rows: yield* rowsSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }, once)
    }).pipe(Effect.provide(layerMemory)))
})

describe("Pipeline.lookbackPlan", () => {
  const withLookback = (n: number) => makePipeline(noSource, noSink, n)

  it("a range gets lookback only before its first date", () => {
    const partitions = [day(0), day(1), day(2), day(3)]
    const plan = Pipeline.lookbackPlan(withLookback(2), partitions)
    assert.deepStrictEqual([...plan], [[day(0), [day(-2), day(-1)]], [day(1), []], [day(2), []], [day(3), []]])
    assert.deepStrictEqual([...Pipeline.lookbackPlan(withLookback(0), partitions).values()], [[], [], [], []])
  })

  it.prop(
    "no date is built twice by a backfill, and every date of each partition's window is built before it",
    [Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })))), Small(4)],
    ([offsets, n]) => {
      const partitions = [...new Set(offsets)].sort((a, b) => a - b).map(day)
      const plan = Pipeline.lookbackPlan(withLookback(n), partitions)
      const built = [...plan].flatMap(([p, dates]) => [...dates, p])
      assert.strictEqual(new Set(built).size, built.length, "each date once")
      for (const [p, dates] of plan) {
        for (const d of dates) assert.isTrue(d < p && d >= Pipeline.lookbackWindow(p, n)[0]!)
        // every date of the window is in the backfill, or built by this or an earlier partition's lookback
        const before = new Set([...plan].filter(([q]) => q <= p).flatMap(([q, ds]) => [q, ...ds]))
        for (const w of Pipeline.lookbackWindow(p, n)) assert.isTrue(before.has(w) || partitions.includes(w))
      }
    }
  )

  it.effect("a backfill with the plan runs each date once: the range, and the days before it that were run", () =>
    Effect.gen(function*() {
      const days = Array.from({ length: 8 }, (): Day => ({ kinds: ["good"], stragglers: [] }))
      const files = yield* Ref.make(filesAsOf(days, 7))
      const { sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(filesSource(files), sink, 2)
      yield* Pipeline.run(pipeline, day(2), { lookback: [] })
      const partitions = [day(3), day(4), day(5), day(6), day(7)]
      const plan = Pipeline.lookbackPlan(pipeline, partitions)
      const report = yield* (yield* Backfill.Backfill).run({
        pipeline: pipeline.name,
        partitions,
        concurrency: 3,
        runPartition: (p) => Pipeline.run(pipeline, p, { lookback: plan.get(p) })
      })
      assert.strictEqual(report.succeeded, 5)
      const first = report.outcomes[0]
      assert.deepStrictEqual(
        first?._tag === "Succeeded" ? first.report.lookback.map((o) => [o.partition, o._tag]) : [],
        [[day(1), "Skipped"], [day(2), "Succeeded"]]
      )
      const runs = yield* (yield* RunLedger.RunLedger).list("readings")
      const perDate = new Map<string, number>()
      for (const r of runs) perDate.set(r.partition, (perDate.get(r.partition) ?? 0) + 1)
      assert.deepStrictEqual(
        [...perDate].sort(),
        [[day(2), 2], [day(3), 1], [day(4), 1], [day(5), 1], [day(6), 1], [day(7), 1]]
      )
    }).pipe(Effect.provide(layerMemory)))
})

describe("Pipeline.make lookback", () => {
  it("rejects a lookback that is not a whole number of days from 0 to 366", () => {
    for (const n of [-1, 1.5, 367, Number.NaN]) assert.throws(() => withDays(n), RangeError)
    assert.strictEqual(withDays(366).lookback, 366)
    assert.strictEqual(withDays(undefined).lookback, 0)
  })

  const withDays = (n: number | undefined) =>
    Pipeline.make({ name: "p", source: noSource, transform, sink: noSink, lookback: n })

  it("triggerOf reads the trigger from a run id", () => {
    assert.deepStrictEqual(Pipeline.triggerOf("lookback/2024-03-05/abc"), { _tag: "Lookback", of: day(4) })
    assert.deepStrictEqual(Pipeline.triggerOf("0b6f7c1e-9a2d-4c1b-8f3e-2d7a9c4b5e6f"), { _tag: "Direct" })
    assert.deepStrictEqual(Pipeline.triggerOf("lookback/2024-02-30/abc"), { _tag: "Direct" })
  })
})
