import { assert, describe, it } from "@effect/vitest"
import {
  Alert,
  Backfill,
  DeadLetter,
  JsonLinesSource,
  Partition,
  Pipeline,
  RecordError,
  RetryPolicy,
  RunLedger,
  Sink,
  SinkError,
  Source,
  SourceError,
  Transform
} from "@sluice/core"
import { Arbitrary, Duration, Effect, Exit, Fiber, Logger, Ref, Result, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { day, deadLetterSnapshot, Kind, layerMemory, line, mapSource, type Reading, transform } from "./fixtures.ts"

const Batch = Arbitrary.array(Arbitrary.schema(Kind), { maxLength: 40 })

const linesOf = (kinds: ReadonlyArray<Kind>, partition: string) => kinds.map((k, i) => line(k, i, partition))

const makePipeline = (source: Source.Source, sink: Sink.Sink<Reading>, options: { failureThreshold?: number } = {}) =>
  Pipeline.make({
    name: "readings",
    source,
    transform,
    sink,
    batchSize: 7,
    failureThreshold: options.failureThreshold ?? 0.05,
    retry: RetryPolicy.make({ baseDelay: "10 millis", maxRetries: 3 })
  })

const sinkSnapshot = (rows: Ref.Ref<ReadonlyMap<Partition.PartitionDate, ReadonlyArray<Reading>>>) =>
  Effect.map(Ref.get(rows), (m) => [...m].filter(([, rs]) => rs.length > 0).sort(([a], [b]) => a.localeCompare(b)))

describe("Pipeline.run", () => {
  it.effect.prop(
    "conserves records: loaded + dead-lettered = read, for any mix of lines",
    [Batch],
    ([kinds]) =>
      Effect.gen(function*() {
        const partition = day(0)
        const { rows, sink } = yield* Sink.memory<Reading>()
        const pipeline = makePipeline(mapSource(new Map([[partition, linesOf(kinds, partition)]])), sink)
        const report = yield* Pipeline.run(pipeline, partition)
        const good = kinds.filter((k) => k === "good").length
        assert.strictEqual(report.read, kinds.length)
        assert.strictEqual(report.loaded, good)
        assert.strictEqual(report.deadLettered, kinds.length - good)
        assert.strictEqual(report.loaded + report.deadLettered, report.read)
        assert.strictEqual((yield* Ref.get(rows)).get(partition)?.length ?? 0, good)
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
        assert.strictEqual(dead.length, kinds.length - good)
        // every dead letter keeps its original payload and a typed error
        const payloads = linesOf(kinds, partition)
        for (const d of dead) {
          assert.strictEqual(d.originalRecord, payloads[d.position - 1])
          assert.include(["InvalidJson", "SchemaMismatch", "RuleViolation"], d.errorType)
        }
      }).pipe(Effect.provide(layerMemory))
  )

  it.effect.prop(
    "is idempotent: any sequence of re-runs equals running each partition once",
    [
      Arbitrary.array(Batch, { minLength: 1, maxLength: 4 }),
      Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))), {
        minLength: 1,
        maxLength: 10
      })
    ],
    ([batches, order]) => {
      const data = new Map(batches.map((kinds, i) => [day(i), linesOf(kinds, day(i))]))
      const runs = order.map((i) => day(i % batches.length))
      const runAll = (partitions: ReadonlyArray<Partition.PartitionDate>) =>
        Effect.gen(function*() {
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(mapSource(data), sink)
          for (const p of partitions) yield* Pipeline.run(pipeline, p)
          return { rows: yield* sinkSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
        }).pipe(Effect.provide(layerMemory))
      return Effect.gen(function*() {
        const repeated = yield* runAll(runs)
        const once = yield* runAll([...new Set(runs)].sort())
        assert.deepStrictEqual(repeated, once)
      })
    }
  )

  it.effect.prop(
    "backfill over a range equals running each day alone",
    [
      Arbitrary.array(Batch, { minLength: 1, maxLength: 6 }),
      Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })))
    ],
    ([batches, concurrency]) => {
      const data = new Map(batches.map((kinds, i) => [day(i), linesOf(kinds, day(i))]))
      const partitions = Partition.range(day(0), day(batches.length - 1))
      return Effect.gen(function*() {
        const alone = yield* Effect.gen(function*() {
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(mapSource(data), sink)
          for (const p of partitions) yield* Pipeline.run(pipeline, p)
          return { rows: yield* sinkSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
        }).pipe(Effect.provide(layerMemory))
        const backfilled = yield* Effect.gen(function*() {
          const { rows, sink } = yield* Sink.memory<Reading>()
          const pipeline = makePipeline(mapSource(data), sink)
          const backfill = yield* Backfill.Backfill
          const report = yield* backfill.run({
            pipeline: pipeline.name,
            partitions,
            concurrency,
            runPartition: (p) => Pipeline.run(pipeline, p)
          })
          assert.strictEqual(report.succeeded, partitions.length)
          assert.deepStrictEqual(report.outcomes.map((o) => o.partition), partitions)
          return { rows: yield* sinkSnapshot(rows), dead: yield* deadLetterSnapshot("readings") }
        }).pipe(Effect.provide(layerMemory))
        assert.deepStrictEqual(backfilled, alone)
      })
    }
  )

  it.effect("raises a failure-rate alert above the threshold and records it", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const kinds: Array<Kind> = [...Array.from({ length: 18 }, () => "good" as const), "negative", "array"]
      const { sink } = yield* Sink.memory<Reading>()
      const report = yield* Pipeline.run(
        makePipeline(mapSource(new Map([[partition, linesOf(kinds, partition)]])), sink),
        partition
      )
      assert.isTrue(report.alerted)
      assert.strictEqual(report.failureRate, 0.1)
      const [run] = yield* (yield* RunLedger.RunLedger).latest("readings")
      assert.strictEqual(run?.status, "succeeded")
      assert.isTrue(run?.alerted)
      const quiet = yield* Pipeline.run(
        makePipeline(mapSource(new Map([[partition, linesOf(kinds, partition)]])), sink, { failureThreshold: 0.1 }),
        partition
      )
      assert.isFalse(quiet.alerted, "a rate equal to the threshold does not alert")
    }).pipe(Effect.provide(layerMemory)))

  it.effect("retries transient source failures and then succeeds", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const calls = yield* Ref.make(0)
      const flaky = Source.make("flaky", (p) =>
        Stream.unwrap(Effect.map(
          Ref.updateAndGet(calls, (n) => n + 1),
          (n) =>
            n <= 2
              ? Stream.concat(
                Stream.make({ payload: line("good", 0, p), position: 1 }),
                Stream.fail(
                  new SourceError.SourceError({
                    source: "flaky",
                    reason: new SourceError.ConnectionReset({ message: "reset" })
                  })
                )
              )
              : Stream.fromIterable(
                linesOf(["good", "good", "missing"], p).map((payload, i) => ({ payload, position: i + 1 }))
              )
        )))
      const { rows, sink } = yield* Sink.memory<Reading>()
      const fiber = yield* Effect.forkChild(Pipeline.run(makePipeline(flaky, sink), partition))
      yield* TestClock.adjust(Duration.minutes(1))
      const report = yield* Fiber.join(fiber)
      assert.strictEqual(report.retries, 2)
      assert.strictEqual(yield* Ref.get(calls), 3)
      assert.strictEqual(report.loaded, 2)
      assert.strictEqual((yield* Ref.get(rows)).get(partition)?.length, 2, "partial attempts left nothing behind")
    }).pipe(Effect.provide(layerMemory)))

  it.effect("fails a permanent source error at once and records the failed run", () =>
    Effect.gen(function*() {
      const { sink } = yield* Sink.memory<Reading>()
      const exit = yield* Effect.exit(Pipeline.run(makePipeline(mapSource(new Map()), sink), day(3)))
      assert.isTrue(Exit.isFailure(exit))
      const [run] = yield* (yield* RunLedger.RunLedger).latest("readings")
      assert.strictEqual(run?.status, "failed")
      assert.strictEqual(run?.errorType, "SourceError.NotFound")
      assert.strictEqual(run?.retries, 0)
    }).pipe(Effect.provide(layerMemory)))

  it.effect("never runs the same partition twice at once", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const slow = Source.make("slow", (p) =>
        Stream.fromEffect(Effect.as(Effect.sleep("1 second"), { payload: line("good", 0, p), position: 1 })))
      const { sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(slow, sink)
      const first = yield* Effect.forkChild(Pipeline.run(pipeline, partition))
      yield* TestClock.adjust("10 millis")
      const second = yield* Effect.flip(Pipeline.run(pipeline, partition))
      assert.strictEqual(second._tag, "PartitionLocked")
      const other = yield* Effect.forkChild(Pipeline.run(pipeline, day(1)))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(first)).loaded, 1)
      assert.strictEqual((yield* Fiber.join(other)).loaded, 1, "other partitions are not blocked")
    }).pipe(Effect.provide(layerMemory)))
})

describe("Pipeline alerts", () => {
  const alertLines = <A, E, R>(run: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.make((options) => {
        const message = [options.message].flat().join(" ")
        if (message.startsWith("ALERT")) lines.push(`${options.logLevel} ${message}`)
      })
      yield* run.pipe(Effect.provide(Logger.layer([capture])))
      return lines
    })

  it.effect("a run above its failure threshold logs one ALERT warning, none when the caller reports alerts itself", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const { sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(
        mapSource(new Map([[partition, [line("good", 1, partition), line("missing", 2, partition)]]])),
        sink
      )
      const logged = yield* alertLines(Pipeline.run(pipeline, partition))
      assert.deepStrictEqual(logged, [
        "Warn ALERT readings 2024-03-01: 50.00% of records dead-lettered (1/2), above the 5.00% threshold"
      ])
      const quiet = yield* alertLines(
        Pipeline.run(pipeline, partition).pipe(Effect.provideService(Alert.Reported, true))
      )
      assert.deepStrictEqual(quiet, [])
      const report = yield* Pipeline.run(pipeline, partition).pipe(Effect.provideService(Alert.Reported, true))
      assert.isTrue(report.alerted, "the report still says so")
    }).pipe(Effect.provide(layerMemory)))
})

describe("Pipeline keys", () => {
  it.effect("dead-letters a second record with the same key in a partition", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const lines = [
        line("good", 1, partition),
        line("good", 2, partition),
        line("good", 1, partition),
        line("missing", 1, partition)
      ]
      const { rows, sink } = yield* Sink.memory<Reading>()
      const pipeline = Pipeline.make({
        ...makePipeline(mapSource(new Map([[partition, lines]])), sink),
        key: (r: Reading) => r.id
      })
      const report = yield* Pipeline.run(pipeline, partition)
      assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [4, 2, 2])
      assert.deepStrictEqual((yield* Ref.get(rows)).get(partition)?.map((r) => r.value), [1, 2])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType]), [[3, "DuplicateKey"], [4, "SchemaMismatch"]])
    }).pipe(Effect.provide(layerMemory)))
})

describe("Sink checks", () => {
  it.effect("a record the sink rejects does not take its key: the next record with that key loads", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const same = (value: number) => JSON.stringify({ id: `r-${partition}-7`, value, day: partition })
      const lines = [same(7), same(8), same(9)]
      const { rows, sink } = yield* Sink.memory<Reading>()
      const checked: Sink.Sink<Reading> = {
        ...sink,
        check: (r) =>
          r.value === 7
            ? new RecordError.RecordError({
              reason: new RecordError.RuleViolation({ rule: "storable", message: "value 7 cannot be stored" })
            })
            : undefined
      }
      const pipeline = Pipeline.make({
        ...makePipeline(mapSource(new Map([[partition, lines]])), checked),
        key: (r: Reading) => r.id
      })
      const report = yield* Pipeline.run(pipeline, partition)
      assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [3, 1, 2])
      assert.deepStrictEqual((yield* Ref.get(rows)).get(partition)?.map((r) => r.value), [8])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.stage, d.errorType]), [
        [1, "load", "RuleViolation"],
        [3, "transform", "DuplicateKey"]
      ])
      assert.include(dead[1]?.error, "position 2")
    }).pipe(Effect.provide(layerMemory)))

  it.effect("a record the sink rejects is dead-lettered at stage load, and conservation holds", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const lines = [line("good", 1, partition), line("good", 7, partition), line("good", 2, partition)]
      const { rows, sink } = yield* Sink.memory<Reading>()
      const checked: Sink.Sink<Reading> = {
        ...sink,
        check: (r) =>
          r.value === 7
            ? new RecordError.RecordError({
              reason: new RecordError.MissingKey({ columns: ["value"], message: "value 7 has no key" })
            })
            : undefined
      }
      const report = yield* Pipeline.run(makePipeline(mapSource(new Map([[partition, lines]])), checked), partition)
      assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [3, 2, 1])
      assert.deepStrictEqual((yield* Ref.get(rows)).get(partition)?.map((r) => r.value), [1, 2])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => [d.stage, d.errorType]), [["load", "MissingKey"]])
    }).pipe(Effect.provide(layerMemory)))
})

/**
 * A sink that takes whole streams of batches (`writeBatches`), over the memory sink; `open` says
 * whether a stream is being written, `streams` counts them and `sizes` holds their record counts.
 */
const streaming = (sink: Sink.Sink<Reading>) =>
  Effect.map(Ref.make({ open: false, streams: 0, sizes: [] as Array<number> }), (state) => {
    const streamed: Sink.Sink<Reading> = {
      ...sink,
      writeBatches: (partition, batches) =>
        Effect.gen(function*() {
          yield* Ref.update(state, (s) => ({ ...s, open: true, streams: s.streams + 1, sizes: [...s.sizes, 0] }))
          yield* Stream.runForEach(batches, (batch) =>
            Effect.andThen(
              sink.write(partition, batch),
              Ref.update(state, (s) => ({ ...s, sizes: [...s.sizes.slice(0, -1), s.sizes.at(-1)! + batch.length] }))
            ))
          yield* Ref.update(state, (s) => ({ ...s, open: false }))
        })
    }
    return { sink: streamed, state }
  })

/** The memory dead-letter store, failing a write that comes while `open` says a stream is being written. */
const guardedDeadLetters = (open: () => Effect.Effect<boolean>) =>
  Effect.map(DeadLetter.DeadLetterStore, (store) =>
    DeadLetter.DeadLetterStore.of({
      ...store,
      write: (deadLetters) =>
        Effect.flatMap(open(), (isOpen) =>
          isOpen ? Effect.die(new Error("dead letters written mid-stream")) : store.write(deadLetters))
    }))

describe("Pipeline.run with a sink that writes streams of batches", () => {
  it.effect.prop(
    "loads what batch-by-batch writes load, dead-lettering between streams, for any mix and stream size",
    [Batch, Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 })))],
    ([kinds, streamSize]) =>
      Effect.gen(function*() {
        const partition = day(0)
        const source = mapSource(new Map([[partition, linesOf(kinds, partition)]]))
        const plain = yield* Sink.memory<Reading>()
        const expected = yield* Pipeline.run(makePipeline(source, plain.sink), partition)
        const expectedDead = yield* deadLetterSnapshot("readings")

        const memory = yield* Sink.memory<Reading>()
        const { sink, state } = yield* streaming(memory.sink)
        const store = yield* guardedDeadLetters(() => Effect.map(Ref.get(state), (s) => s.open))
        const report = yield* Pipeline.run(
          Pipeline.make({ ...makePipeline(source, sink), streamSize }),
          partition
        ).pipe(Effect.provideService(DeadLetter.DeadLetterStore, store))
        assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [
          expected.read,
          expected.loaded,
          expected.deadLettered
        ])
        assert.deepStrictEqual(yield* sinkSnapshot(memory.rows), yield* sinkSnapshot(plain.rows))
        assert.deepStrictEqual(yield* deadLetterSnapshot("readings"), expectedDead)
        const { sizes } = yield* Ref.get(state)
        // no stream is empty; a stream ends once it has seen streamSize records (a batch is 7)
        for (const size of sizes) {
          assert.isAbove(size, 0)
          assert.isAtMost(size, streamSize + 6)
        }
        assert.strictEqual(sizes.reduce((a, b) => a + b, 0), report.loaded)
      }).pipe(Effect.provide(layerMemory))
  )

  it.effect("ends a stream to write its dead letters once they hold millions of characters", () =>
    Effect.gen(function*() {
      const partition = day(0)
      // 7 bad lines of a million characters between good ones: 4 million characters are held at most
      const lines = Array.from(
        { length: 70 },
        (_, i) => i % 10 === 9 ? `{"huge": "${"x".repeat(1_000_000)}` : line("good", i, partition)
      )
      const memory = yield* Sink.memory<Reading>()
      const { sink, state } = yield* streaming(memory.sink)
      const store = yield* guardedDeadLetters(() => Effect.map(Ref.get(state), (s) => s.open))
      const report = yield* Pipeline.run(makePipeline(mapSource(new Map([[partition, lines]])), sink), partition)
        .pipe(Effect.provideService(DeadLetter.DeadLetterStore, store))
      assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [70, 63, 7])
      assert.isAbove((yield* Ref.get(state)).streams, 1, "the stream was ended for the dead letters")
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => d.originalRecord), lines.filter((_, i) => i % 10 === 9))
      assert.strictEqual((yield* Ref.get(memory.rows)).get(partition)?.length, 63)
    }).pipe(Effect.provide(layerMemory)))

  it.effect("a stream that fails fails the run with the sink's error", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const lines = Array.from({ length: 40 }, (_, i) => line("good", i, partition))
      const { sink } = yield* Sink.memory<Reading>()
      const failing: Sink.Sink<Reading> = {
        ...sink,
        writeBatches: (_, batches) =>
          Stream.runForEach(batches, () =>
            Effect.fail(new SinkError.SinkError({ operation: "copy", message: "disk full", retryable: false })))
      }
      const exit = yield* Effect.exit(
        Pipeline.run(makePipeline(mapSource(new Map([[partition, lines]])), failing), partition)
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /disk full/)
      const runs = yield* (yield* RunLedger.RunLedger).latest("readings")
      assert.deepStrictEqual(
        runs.map((r) =>
          r.status
        ),
        ["failed"]
      )
    }).pipe(Effect.provide(layerMemory)))

  it.effect("a sink that stops reading its batches before their end is a defect, not lost records", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const lines = Array.from({ length: 40 }, (_, i) => line("good", i, partition))
      const { sink } = yield* Sink.memory<Reading>()
      const quitter: Sink.Sink<Reading> = {
        ...sink,
        writeBatches: (partition, batches) =>
          Stream.runForEach(Stream.take(batches, 1), (batch) => sink.write(partition, batch))
      }
      const exit = yield* Effect.exit(
        Pipeline.run(makePipeline(mapSource(new Map([[partition, lines]])), quitter), partition)
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /stopped reading its batches/)
    }).pipe(Effect.provide(layerMemory)))
})

describe("Backfill", () => {
  it.effect("continues past a failed partition and re-runs only failures", () =>
    Effect.gen(function*() {
      const data = new Map([[day(0), linesOf(["good"], day(0))], [day(2), linesOf(["good", "good"], day(2))]])
      const { sink } = yield* Sink.memory<Reading>()
      const pipeline = makePipeline(mapSource(data), sink)
      const backfill = yield* Backfill.Backfill
      const partitions = Partition.range(day(0), day(2))
      const first = yield* backfill.run({
        pipeline: "readings",
        partitions,
        concurrency: 2,
        runPartition: (p) => Pipeline.run(pipeline, p)
      })
      assert.deepStrictEqual(first.outcomes.map((o) => o._tag), ["Succeeded", "Failed", "Succeeded"])
      const ledger = yield* RunLedger.RunLedger
      const retry = Backfill.plan({
        start: day(0),
        end: day(2),
        mode: "only-failed",
        latestRuns: yield* ledger.latest("readings")
      })
      assert.deepStrictEqual(retry, [day(1)])
      const missing = Backfill.plan({
        start: day(0),
        end: day(4),
        mode: "missing",
        latestRuns: yield* ledger.latest("readings")
      })
      assert.deepStrictEqual(missing, [day(1), day(3), day(4)])
    }).pipe(Effect.provide(layerMemory)))
})

describe("Invalid UTF-8", () => {
  const bytesSource = (bytes: Uint8Array) =>
    Source.make("bytes", () => JsonLinesSource.bytesToRecords(Stream.make(Buffer.from(bytes))))

  it.effect("a line that is not valid UTF-8 is dead-lettered as InvalidEncoding with its bytes escaped", () =>
    Effect.gen(function*() {
      const partition = day(0)
      const encode = (text: string) => [...new TextEncoder().encode(text)]
      const bytes = Uint8Array.from([
        ...encode(`${line("good", 1, partition)}\n{"id":"`),
        0xff,
        ...encode(`","value":2,"day":"${partition}"}\n${line("good", 3, partition)}\n`)
      ])
      // a transform that takes any text: the runner must not hand it the escape of invalid bytes
      const anyText: Transform.Transform<string> = (record) => Result.succeed(record.payload)
      const { rows, sink } = yield* Sink.memory<string>()
      const pipeline = Pipeline.make({ name: "texts", source: bytesSource(bytes), transform: anyText, sink })
      const report = yield* Pipeline.run(pipeline, partition)
      assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [3, 2, 1])
      const loaded = (yield* Ref.get(rows)).get(partition) ?? []
      assert.deepStrictEqual(loaded, [line("good", 1, partition), line("good", 3, partition)])
      const [dead] = yield* (yield* DeadLetter.DeadLetterStore).list("texts")
      assert.deepStrictEqual([dead!.position, dead!.errorType, dead!.stage], [2, "InvalidEncoding", "transform"])
      assert.strictEqual(dead!.originalRecord, `{"id":"\\xFF","value":2,"day":"${partition}"}`)
      assert.strictEqual(dead!.error, "invalid UTF-8: byte 0xFF at offset 7")
    }).pipe(Effect.provide(layerMemory)))

  it("Transform.apply fails a record with invalid bytes with InvalidEncoding, carrying them", () => {
    const record = Source.invalidUtf8(Uint8Array.of(0x7b, 0xc0, 0xaf, 0x7d), 4)
    for (const result of [Transform.apply(transform, record, day(0)), transform(record, day(0))]) {
      assert.isTrue(Result.isFailure(result))
      const error = Result.isFailure(result) ? result.failure : undefined
      assert.strictEqual(error?.errorType, "InvalidEncoding")
      const reason = error?.reason as RecordError.InvalidEncoding
      assert.deepStrictEqual(reason.bytes, Uint8Array.of(0x7b, 0xc0, 0xaf, 0x7d))
    }
    assert.strictEqual(record.payload, "{\\xC0\\xAF}")
  })
})
