import { assert, describe, it } from "@effect/vitest"
import {
  DeadLetter,
  Pipeline,
  PipelineMetrics,
  ProcessedEventLedger,
  RecordError,
  Sink,
  SinkError,
  Source,
  Streaming,
  Transactor,
  Transform
} from "@sluice/core"
import { Deferred, Effect, Fiber, Layer, Metric, Ref, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import { type Reading, Reading as ReadingSchema } from "./fixtures.ts"

const transform = Transform.fromSchema(ReadingSchema)

interface Sent {
  readonly id: string
  readonly good: boolean
}

const messagesOf = (sent: ReadonlyArray<Sent>, acks: Array<number>) =>
  sent.map((s, i): Streaming.Message => ({
    eventId: s.id,
    payload: s.good ? JSON.stringify({ id: s.id, value: 1, day: "2024-03-01" }) : `{bad ${s.id}`,
    stream: "TEST",
    sequence: i + 1,
    publishedAt: Date.UTC(2024, 2, 1),
    ack: Effect.sync(() => {
      acks.push(i + 1)
    })
  }))

const memorySink = Effect.map(Ref.make<ReadonlyArray<Reading>>([]), (rows) => ({
  rows,
  sink: {
    target: "memory",
    write: (batch) => Ref.update(rows, (rs) => [...rs, ...batch])
  } satisfies Streaming.StreamSink<
    Reading
  >
}))

const layer = Layer.mergeAll(
  DeadLetter.DeadLetterStore.layerMemory,
  ProcessedEventLedger.ProcessedEventLedger.layerMemory,
  Transactor.Transactor.layerNone
)

describe("Streaming.run", () => {
  it.live("loads each distinct good event once, dead-letters each distinct bad one, acks every message", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      const sent: Array<Sent> = [
        { id: "a", good: true },
        { id: "b", good: true },
        { id: "a", good: true },
        { id: "x", good: false },
        { id: "c", good: true },
        { id: "x", good: false },
        { id: "b", good: true }
      ]
      const pipeline = Streaming.make({ name: "readings", transform, sink, batchSize: 3, batchWindow: "10 millis" })
      const reports: Array<Streaming.BatchReport> = []
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messagesOf(sent, acks)) }, {
        onEvent: (e) => Effect.sync(() => e._tag === "Committed" && reports.push(e.report))
      })
      assert.deepStrictEqual((yield* Ref.get(rows)).map((r) => r.id).sort(), ["a", "b", "c"])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.stage]), [[4, "transform@TEST"]])
      assert.deepStrictEqual(acks.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7])
      assert.strictEqual(reports.reduce((n, r) => n + r.skipped, 0), 3)
    }).pipe(Effect.provide(layer)))

  it.live("dead-letters a message that is not valid UTF-8 as InvalidEncoding, whatever the transform, and acks it", () =>
    Effect.gen(function*() {
      const loaded: Array<string> = []
      const acks: Array<number> = []
      const bytes = Uint8Array.of(0x7b, 0xff, 0x7d)
      const message = (sequence: number, payload: string, invalidBytes?: Uint8Array): Streaming.Message => ({
        eventId: `e${sequence}`,
        payload,
        ...(invalidBytes === undefined ? {} : { invalidBytes }),
        stream: "TEST",
        sequence,
        publishedAt: Date.UTC(2024, 2, 1),
        ack: Effect.sync(() => void acks.push(sequence))
      })
      // a transform that takes any text: the runner must not hand it the escape of invalid bytes
      const anyText: Transform.Transform<string> = (record) => Result.succeed(record.payload)
      const pipeline = Streaming.make({
        name: "texts",
        transform: anyText,
        sink: {
          target: "memory",
          write: (batch: ReadonlyArray<string>) => Effect.sync(() => void loaded.push(...batch))
        },
        batchSize: 3,
        batchWindow: "10 millis"
      })
      const messages = [message(1, "{}"), message(2, "{\\xFF}", bytes), message(3, "[]")]
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messages) })
      assert.deepStrictEqual(loaded, ["{}", "[]"])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("texts")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType, d.originalRecord]), [[
        2,
        "InvalidEncoding",
        "{\\xFF}"
      ]])
      assert.deepStrictEqual(acks.sort((a, b) => a - b), [1, 2, 3])
    }).pipe(Effect.provide(layer)))

  it.live("dead-letters a record the sink's check rejects (stage load), loads the rest, acks every message", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      // a sink that cannot store "b" (as PostgreSQL cannot store a NUL), and fails the batch if asked to
      const picky: Streaming.StreamSink<Reading> = {
        target: "picky",
        check: (r) =>
          r.id === "b"
            ? new RecordError.RecordError({
              reason: new RecordError.RuleViolation({ rule: "storable_text", message: "id cannot be stored" })
            })
            : undefined,
        write: (batch) =>
          batch.some((r) => r.id === "b")
            ? Effect.fail(new SinkError.SinkError({ operation: "write", message: "unstorable", retryable: false }))
            : sink.write(batch)
      }
      const sent: Array<Sent> = [{ id: "a", good: true }, { id: "b", good: true }, { id: "c", good: true }]
      const pipeline = Streaming.make({
        name: "readings",
        transform,
        sink: picky,
        batchSize: 3,
        batchWindow: "10 millis"
      })
      const reports: Array<Streaming.BatchReport> = []
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messagesOf(sent, acks)) }, {
        onEvent: (e) => Effect.sync(() => e._tag === "Committed" && reports.push(e.report))
      })
      assert.deepStrictEqual((yield* Ref.get(rows)).map((r) => r.id).sort(), ["a", "c"])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.stage, d.errorType]), [[2, "load@TEST", "RuleViolation"]])
      assert.deepStrictEqual(acks.sort((a, b) => a - b), [1, 2, 3])
      assert.deepStrictEqual(reports.map((r) => [r.loaded, r.deadLettered]), [[2, 1]])
    }).pipe(Effect.provide(layer)))

  it.live("opens the breaker on failed commits, acks nothing until a commit succeeds, then catches up", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      let failures = 5
      const flaky = Layer.succeed(
        Transactor.Transactor,
        Transactor.Transactor.of({
          withTransaction: <A, E, R>(self: Effect.Effect<A, E, R>) =>
            Effect.suspend((): Effect.Effect<A, E | SinkError.SinkError, R> =>
              failures-- > 0
                ? Effect.fail(new SinkError.SinkError({ operation: "begin", message: "down", retryable: true }))
                : self
            )
        })
      )
      const events: Array<string> = []
      const gauge: Array<string> = []
      const breakerState = Metric.withAttributes(PipelineMetrics.circuitBreakerState, {
        pipeline: "readings",
        breaker: "commit"
      })
      const pipeline = Streaming.make({
        name: "readings",
        transform,
        sink,
        batchSize: 10,
        batchWindow: "5 millis",
        breaker: { failures: 2, openDuration: "30 millis" }
      })
      const sent = Array.from({ length: 5 }, (_, i) => ({ id: `e${i}`, good: true }))
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messagesOf(sent, acks)) }, {
        onEvent: (e) =>
          Effect.sync(() => {
            events.push(e._tag === "BreakerTransition" ? `${e.from}->${e.to}` : e._tag)
          }).pipe(
            Effect.andThen(e._tag === "BreakerTransition" ? Metric.value(breakerState) : Effect.succeed(undefined)),
            Effect.map((state) => {
              if (e._tag === "BreakerTransition") gauge.push(`${e.to}=${state?.value}`)
            })
          )
      }).pipe(Effect.provide(flaky))
      // the gauge follows the breaker: 0 closed, 1 half-open, 2 open
      assert.include(gauge, "Open=2")
      assert.include(gauge, "HalfOpen=1")
      assert.strictEqual(gauge.at(-1), "Closed=0")
      assert.strictEqual((yield* Metric.value(breakerState)).value, 0)
      assert.strictEqual((yield* Ref.get(rows)).length, 5)
      assert.deepStrictEqual(acks.length, 5)
      assert.include(events, "Closed->Open")
      assert.include(events, "HalfOpen->Closed")
      assert.strictEqual(events.at(-1), "Committed")
    }).pipe(Effect.provide(layer)))
})

/** A message of reading `id` with `value`, acknowledged into `acks`. */
const keyedMessage =
  (acks: Array<number>) => (sequence: number, eventId: string, id: string, value: number): Streaming.Message => ({
    eventId,
    payload: JSON.stringify({ id, value, day: "2024-03-01" }),
    stream: "TEST",
    sequence,
    publishedAt: Date.UTC(2024, 2, 1),
    ack: Effect.sync(() => void acks.push(sequence))
  })

describe("Streaming.run business keys", () => {
  it.live("a record re-sent as a distinct event is dead-lettered as DuplicateKey: the first version stays", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      const message = keyedMessage(acks)
      const pipeline = Streaming.make({
        name: "keyed",
        transform,
        sink,
        key: (r) => r.id,
        batchSize: 3,
        batchWindow: "10 millis"
      })
      // batch 1: "a" re-sent within the batch; batch 2: "a" and "b" re-sent in a later batch, "b" redelivered
      const messages = [
        message(1, "e1", "a", 1),
        message(2, "e2", "b", 2),
        message(3, "e3", "a", 10),
        message(4, "e4", "a", 100),
        message(5, "e2", "b", 2),
        message(6, "e6", "b", 20)
      ]
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messages) })
      assert.deepStrictEqual((yield* Ref.get(rows)).map((r) => [r.id, r.value]), [["a", 1], ["b", 2]])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("keyed")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType, d.stage]), [
        [3, "DuplicateKey", "transform@TEST"],
        [4, "DuplicateKey", "transform@TEST"],
        [6, "DuplicateKey", "transform@TEST"]
      ])
      assert.deepStrictEqual(acks.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6])
    }).pipe(Effect.provide(layer)))

  it.live("a record the sink's check rejects claims no key: a corrected re-send loads, in the batch or a later one", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      const message = keyedMessage(acks)
      const pipeline = Streaming.make({
        name: "keyed",
        transform,
        sink: {
          ...sink,
          // as PostgreSQL cannot store a NUL: value 7 stands for a record the sink cannot store
          check: (r: Reading) =>
            r.value === 7
              ? new RecordError.RecordError({
                reason: new RecordError.RuleViolation({ rule: "storable", message: "value 7 cannot be stored" })
              })
              : undefined
        },
        key: (r) => r.id,
        batchSize: 3,
        batchWindow: "10 millis"
      })
      // batch 1: "a" cannot be stored; batch 2: "a" corrected, "d" cannot be stored and is corrected in the batch
      const messages = [
        message(1, "e1", "a", 7),
        message(2, "e2", "b", 2),
        message(3, "e3", "c", 3),
        message(4, "e4", "a", 1),
        message(5, "e5", "d", 7),
        message(6, "e6", "d", 4)
      ]
      yield* Streaming.run(pipeline, { location: "memory", messages: Stream.fromIterable(messages) })
      assert.deepStrictEqual((yield* Ref.get(rows)).map((r) => [r.id, r.value]).sort(), [
        ["a", 1],
        ["b", 2],
        ["c", 3],
        ["d", 4]
      ])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("keyed")
      assert.deepStrictEqual(dead.map((d) => [d.position, d.errorType, d.stage]), [
        [1, "RuleViolation", "load@TEST"],
        [5, "RuleViolation", "load@TEST"]
      ])
      assert.deepStrictEqual(acks.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6])
    }).pipe(Effect.provide(layer)))
})

describe("Streaming.run bad-record-rate breaker", () => {
  // the memory ledger is not transactional: forget nothing rolled back by using one that claims all
  const forgetful = Layer.succeed(
    ProcessedEventLedger.ProcessedEventLedger,
    ProcessedEventLedger.ProcessedEventLedger.of({
      claim: (_, events) => Effect.succeed(new Set(events.map((e) => e.eventId))),
      claimKeys: (_, keys) => Effect.succeed(new Set(keys.map((e) => e.eventId))),
      replace: () => Effect.succeed(0),
      merge: () => Effect.succeed(0),
      count: () => Effect.succeed(0),
      summary: () => Effect.succeed({ events: 0, firstProcessedAt: undefined, lastProcessedAt: undefined }),
      purge: () => Effect.succeed(0)
    })
  )
  // a burst: 8 of 10 messages bad, above the 50% threshold however often the batch is tried
  const burst = (from: number) =>
    Array.from({ length: 10 }, (_, i) => ({ id: `e${from + i}`, good: (from + i) % 5 === 0 }))

  const start = Effect.fnUntraced(function*(
    name: string,
    sent: ReadonlyArray<Sent>,
    badRecords: Parameters<typeof Streaming.make<Reading>>[0]["badRecords"],
    options: { readonly transform?: Transform.Transform<Reading> | undefined } = {}
  ) {
    const { rows, sink } = yield* memorySink
    const acks: Array<number> = []
    const events: Array<Streaming.Event> = []
    const pipeline = Streaming.make({
      name,
      transform: options.transform ?? transform,
      sink,
      batchSize: 10,
      batchWindow: "5 millis",
      badRecords: { threshold: 0.5, window: 10, minimum: 4, pause: "1 second", ...badRecords }
    })
    const fiber = yield* Streaming.run(
      pipeline,
      { location: "memory", messages: Stream.fromIterable(messagesOf(sent, acks)) },
      { onEvent: (e) => Effect.sync(() => void events.push(e)) }
    ).pipe(Effect.forkChild)
    // let the run reach its first pause
    yield* TestClock.adjust("1 millis")
    const count = (tag: Streaming.Event["_tag"]) => events.filter((e) => e._tag === tag).length
    const gaveUp = (action: string) =>
      Metric.value(
        Metric.withAttributes(PipelineMetrics.badRecordRateGaveUp, { pipeline: name, action })
      ).pipe(Effect.map((state) => state.count))
    return { fiber, rows, acks, events, count, gaveUp }
  })

  it.effect("pauses on a burst of bad messages, then after maxPauses dead-letters them and goes on", () =>
    Effect.gen(function*() {
      const run = yield* start("burst-dead-letter", burst(0), { maxPauses: 2 })
      assert.strictEqual(run.count("BadRecordRateAlert"), 1)
      assert.deepStrictEqual(run.acks, [], "paused: nothing acknowledged")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(run.count("BadRecordRateAlert"), 2)
      assert.isUndefined(run.fiber.pollUnsafe(), "still pausing after 1 of 2 pauses")
      assert.deepStrictEqual(yield* (yield* DeadLetter.DeadLetterStore).list("burst-dead-letter"), [])
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(run.fiber)
      assert.strictEqual(run.count("BadRecordRateAlert"), 3)
      assert.strictEqual(run.count("CommitFailed"), 0, "an alert is not a failed commit")
      const gaveUp = run.events.filter((e) => e._tag === "BadRecordRateGaveUp")
      assert.deepStrictEqual(gaveUp.map((e) => [e.pauses, e.action]), [[2, "deadLetter"]])
      assert.strictEqual(yield* run.gaveUp("dead_letter"), 1)
      // nothing lost: the good ones loaded, the bad ones in the DLQ with their payload, all acked
      assert.deepStrictEqual((yield* Ref.get(run.rows)).map((r) => r.id), ["e0", "e5"])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("burst-dead-letter")
      assert.deepStrictEqual(dead.map((d) => d.position), [2, 3, 4, 5, 7, 8, 9, 10])
      assert.deepStrictEqual(
        dead.map((d) => d.originalRecord),
        burst(0).filter((s) => !s.good).map((s) => `{bad ${s.id}`)
      )
      assert.deepStrictEqual(run.acks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }).pipe(Effect.provide(forgetful), Effect.provide(layer)))

  it.effect("with onPersist fail, fails the run with BadRecordRateExceeded after maxPauses, the batch unacked", () =>
    Effect.gen(function*() {
      const run = yield* start("burst-fail", burst(0), { maxPauses: 1, onPersist: "fail" })
      assert.strictEqual(run.count("BadRecordRateAlert"), 1)
      assert.isUndefined(run.fiber.pollUnsafe(), "pausing")
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(run.fiber))
      assert.instanceOf(error, Streaming.BadRecordRateExceeded)
      assert.deepStrictEqual(
        run.events.filter((e) => e._tag === "BadRecordRateGaveUp").map((e) => [e.pauses, e.action]),
        [[1, "fail"]]
      )
      assert.strictEqual(yield* run.gaveUp("fail"), 1)
      assert.deepStrictEqual(run.acks, [])
      assert.deepStrictEqual(yield* Ref.get(run.rows), [])
      assert.deepStrictEqual(yield* (yield* DeadLetter.DeadLetterStore).list("burst-fail"), [])
    }).pipe(Effect.provide(forgetful), Effect.provide(layer)))

  it.effect("an outage that recovers within maxPauses dead-letters nothing; the next batch gets its own pauses", () =>
    Effect.gen(function*() {
      // an outage: every record fails until it recovers, after the second alert
      let down = true
      const flaky: Transform.Transform<Reading> = (record, partition) =>
        down ? transform({ ...record, payload: "{down" }, partition) : transform(record, partition)
      const good = Array.from({ length: 10 }, (_, i) => ({ id: `g${i}`, good: true }))
      const run = yield* start("outage", [...good, ...burst(10)], { maxPauses: 3 }, { transform: flaky })
      assert.strictEqual(run.count("BadRecordRateAlert"), 1)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(run.count("BadRecordRateAlert"), 2)
      down = false
      yield* TestClock.adjust("1 second")
      // the first batch committed whole, nothing dead-lettered; the burst after it pauses afresh
      assert.deepStrictEqual(run.acks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      assert.strictEqual((yield* Ref.get(run.rows)).length, 10)
      assert.deepStrictEqual(yield* (yield* DeadLetter.DeadLetterStore).list("outage"), [])
      assert.strictEqual(run.count("BadRecordRateGaveUp"), 0)
      assert.strictEqual(run.count("BadRecordRateAlert"), 3)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      assert.isUndefined(run.fiber.pollUnsafe(), "the burst has 3 pauses of its own")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(run.fiber)
      assert.deepStrictEqual(
        run.events.filter((e) => e._tag === "BadRecordRateGaveUp").map((e) => e.pauses),
        [3]
      )
      assert.strictEqual((yield* (yield* DeadLetter.DeadLetterStore).list("outage")).length, 8)
      assert.strictEqual(run.acks.length, 20)
    }).pipe(Effect.provide(forgetful), Effect.provide(layer)))
})

describe("Streaming.run backpressure and interruption", () => {
  it.live("pulls only as it commits: messages in flight stay bounded whatever the backlog", () =>
    Effect.gen(function*() {
      const { sink } = yield* memorySink
      // progress is counted, not timed: the run stops once 1,000 messages are acknowledged
      const enough = yield* Deferred.make<void>()
      let pulled = 0
      let acked = 0
      let maxInFlight = 0
      const backlog = Stream.iterate(0, (n) => n + 1).pipe(
        Stream.map((i): Streaming.Message => {
          pulled++
          maxInFlight = Math.max(maxInFlight, pulled - acked)
          return {
            eventId: `e${i}`,
            payload: JSON.stringify({ id: `e${i}`, value: 1, day: "2024-03-01" }),
            stream: "TEST",
            sequence: i + 1,
            publishedAt: 0,
            ack: Effect.suspend(() => ++acked >= 1_000 ? Deferred.succeed(enough, undefined) : Effect.void)
          }
        })
      )
      const slow: Streaming.StreamSink<Reading> = {
        target: "slow",
        write: (rows) => Effect.andThen(Effect.sleep("2 millis"), sink.write(rows))
      }
      const pipeline = Streaming.make({
        name: "readings",
        transform,
        sink: slow,
        batchSize: 50,
        batchWindow: "5 millis"
      })
      yield* Streaming.run(pipeline, { location: "memory", messages: backlog }).pipe(
        Effect.raceFirst(Deferred.await(enough)),
        Effect.timeout("60 seconds"),
        Effect.ignore
      )
      assert.isAtLeast(acked, 1_000, "it made progress")
      assert.isAtMost(maxInFlight, 50 * 3, `at most a few batches in flight, got ${maxInFlight}`)
    }).pipe(Effect.provide(layer)))

  it.live("an interrupted run finishes the batch in hand: committed, acknowledged and reported together", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const acks: Array<number> = []
      const started = yield* Deferred.make<void>()
      const slow: Streaming.StreamSink<Reading> = {
        target: "slow",
        write: (batch) =>
          Effect.andThen(
            Deferred.succeed(started, undefined),
            Effect.andThen(Effect.sleep("50 millis"), sink.write(batch))
          )
      }
      const sent = Array.from({ length: 3 }, (_, i) => ({ id: `e${i}`, good: true }))
      const pipeline = Streaming.make({
        name: "readings",
        transform,
        sink: slow,
        batchSize: 3,
        batchWindow: "5 millis"
      })
      const reported: Array<string> = []
      const fiber = yield* Streaming.run(pipeline, {
        location: "memory",
        messages: Stream.concat(Stream.fromIterable(messagesOf(sent, acks)), Stream.never)
      }, {
        onEvent: (e) =>
          Effect.sync(() =>
            e._tag === "Committed" && reported.push(`${e.report.firstSequence}-${e.report.lastSequence}`)
          )
      }).pipe(Effect.forkChild)
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* Ref.get(rows)).length, 3)
      assert.deepStrictEqual(acks, [1, 2, 3])
      // the batch committed is reported (sluice stream prints its line), not dropped by the interruption
      assert.deepStrictEqual(reported, ["1-3"])
    }).pipe(Effect.provide(layer)))
})

describe("Streaming.fromPipeline", () => {
  it.live("streams a batch pipeline's definition: its name, transform and stage", () =>
    Effect.gen(function*() {
      const { rows, sink } = yield* memorySink
      const batch = Pipeline.make({
        name: "readings",
        source: Source.make("none", () => Stream.empty),
        transform,
        sink: (yield* Sink.memory<Reading>()).sink,
        stage: "decode"
      })
      const acks: Array<number> = []
      const streaming = Streaming.fromPipeline(batch, sink, { batchSize: 2, batchWindow: "5 millis" })
      assert.strictEqual(streaming.name, "readings")
      const sent = [{ id: "a", good: true }, { id: "x", good: false }]
      yield* Streaming.run(streaming, { location: "memory", messages: Stream.fromIterable(messagesOf(sent, acks)) })
      assert.deepStrictEqual((yield* Ref.get(rows)).map((r) => r.id), ["a"])
      const dead = yield* (yield* DeadLetter.DeadLetterStore).list("readings")
      assert.deepStrictEqual(dead.map((d) => d.stage), ["decode@TEST"])
    }).pipe(Effect.provide(layer)))
})
