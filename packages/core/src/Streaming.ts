/**
 * Streaming runs: one pipeline definition (decode → dead-letter → load) over an unbounded stream of
 * messages from an at-least-once source, in micro-batches.
 *
 * A streaming run:
 * 1. groups the source's messages into micro-batches of up to `batchSize` messages or `batchWindow`
 *    (whichever comes first);
 * 2. per batch, in ONE transaction (the {@link Transactor.Transactor}): claims the batch's event ids
 *    in the {@link ProcessedEventLedger.ProcessedEventLedger} — an event already claimed (a
 *    redelivery, a duplicate) is skipped — then transforms the new events, applies the sink's
 *    record check (`StreamSink.check`, as a batch run does), writes the good records to the sink
 *    and the bad ones to the {@link DeadLetter.DeadLetterStore} (position = the message's stream
 *    sequence, stage = `<stage>@<stream>`, or `load@<stream>` for a record the check rejected);
 * 3. acknowledges the batch's messages only after the commit. A crash between commit and ack makes
 *    the source redeliver them, and the ledger skips them: exactly-once effects.
 *
 * **Business keys**: the ledger dedups by event id only. A pipeline with a `key` (e.g. an order's
 * date and id) also claims each decoded record's key in the ledger (as JSON text), in the same
 * transaction, under the name `<pipeline>#key`: a record whose key an earlier event already
 * claimed — the same order re-sent as a distinct event — is dead-lettered as `DuplicateKey` (stage
 * `<stage>@<stream>`) and acknowledged, and the first version stays: the rule of a batch run with
 * `Pipeline.key`, so the same events give the same rows bounded or unbounded. A key stays with the
 * message that claimed it (`ProcessedEventLedger.claimKeys`): the same message applied again keeps it.
 *
 * **Circuit breaker**: each commit runs through effect's `CircuitBreaker`. After `breaker.failures`
 * consecutive failed commits the circuit opens: the run stops pulling (the batch in hand stays
 * unacknowledged, nothing is lost), probes again after `breaker.openDuration`, and resumes when a
 * probe commits. A non-retryable failure (e.g. a constraint violation) fails the run. The gauge
 * `sluice_circuit_breaker_state{pipeline, breaker="commit"}` shows its state: 0 closed, 1 half-open, 2 open.
 *
 * **Bad-record-rate breaker**: when, over the last `badRecords.window` messages, the share of
 * dead-lettered ones would pass `badRecords.threshold`, the batch is rolled back (not
 * dead-lettered), an alert is raised, and the run pauses for `badRecords.pause` before trying the
 * batch again — an outage upstream is not dead-lettered message by message. A batch that is itself
 * mostly bad (a burst, not an outage) would pass the threshold on every try: after
 * `badRecords.maxPauses` consecutive pauses on the same batch the breaker gives up and does what
 * `badRecords.onPersist` says — `"deadLetter"` (the default): the batch commits with its bad messages
 * dead-lettered as usual, and the run goes on; `"fail"`: the run fails with
 * {@link BadRecordRateExceeded}, the batch unacknowledged. Either way a `BadRecordRateGaveUp` event
 * is raised and `sluice_bad_record_rate_gave_up_total{pipeline, action}` counted. A batch committed
 * that way is not counted in the window: the next batch is judged on its own.
 *
 * **Backpressure**: the runner pulls the next batch only when the previous one is acknowledged; the
 * source's own buffer is bounded, so memory is bounded whatever the backlog.
 *
 * **Interruption**: a batch's commit, ack and report (its metrics, its `Committed` event) are
 * uninterruptible, so an interrupted run finishes the batch in hand and reports it (or leaves it
 * unacknowledged), then the source drains.
 *
 * @since 0.1.0
 */
import { DateTime, Duration, Effect, Metric, Result, Schedule, Schema, Stream } from "effect"
import { CircuitBreaker } from "effect/persistence"
import * as Alert from "./Alert.ts"
import * as DeadLetter from "./DeadLetter.ts"
import * as SinkCheck from "./internal/sinkCheck.ts"
import { isDateString, type PartitionDate } from "./Partition.ts"
import type * as Pipeline from "./Pipeline.ts"
import * as PipelineMetrics from "./PipelineMetrics.ts"
import * as ProcessedEventLedger from "./ProcessedEventLedger.ts"
import * as RecordError from "./RecordError.ts"
import * as SinkError from "./SinkError.ts"
import type { RawRecord } from "./Source.ts"
import type { SourceError } from "./SourceError.ts"
import * as Transactor from "./Transactor.ts"
import * as Transform from "./Transform.ts"

/**
 * A message of an at-least-once source.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  /** The event's id: a redelivery or a duplicate of the event has the same id. */
  readonly eventId: string
  /**
   * The message's text, exactly (a leading byte order mark included: the runner decodes the text without
   * it, and a dead letter keeps it); for a message that is not valid UTF-8, the escape of its bytes (`Utf8.escape`).
   */
  readonly payload: string
  /**
   * Set only for a message whose bytes are not valid UTF-8: its original bytes. It is dead-lettered
   * as `InvalidEncoding` (see `Transform.apply`), and acknowledged after its dead letter commits.
   */
  readonly invalidBytes?: Uint8Array | undefined
  /** The stream it was read from, and its sequence in that stream. */
  readonly stream: string
  readonly sequence: number
  /** When the event was published (epoch milliseconds). */
  readonly publishedAt: number
  /** Acknowledges the message; called only after its batch committed. */
  readonly ack: Effect.Effect<void>
}

/**
 * An unbounded source of messages.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamSource<R = never> {
  readonly location: string
  readonly messages: Stream.Stream<Message, SourceError, R>
}

/**
 * A sink for streaming loads: `write` runs inside the batch's transaction and must be idempotent
 * per record (an upsert), since a stream has no partition to replace.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamSink<in A, R = never> {
  readonly target: string
  readonly write: (rows: ReadonlyArray<A>) => Effect.Effect<void, SinkError.SinkError, R>
  /**
   * A per-record check the sink needs before it can write a record, as a batch sink's
   * (`Sink.check`, e.g. `Table.storable`): the runner applies it to every decoded record, and a
   * record it rejects is dead-lettered (stage `load@<stream>`) and acknowledged after the commit,
   * instead of failing the whole micro-batch — over and over, since its messages are redelivered.
   */
  readonly check?: ((record: A) => RecordError.RecordError | undefined) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StreamingPipeline<A, R = never> {
  readonly name: string
  readonly transform: Transform.Transform<A>
  readonly sink: StreamSink<A, R>
  /** The partition of a message: the transform's partition argument and its dead letter's partition. */
  readonly partitionOf: (message: Message) => PartitionDate
  readonly stage: string
  /**
   * The record's business key, if it has one: a record whose key an earlier event already claimed
   * (a re-sent order, with another event id) is dead-lettered as `DuplicateKey`; the first one wins,
   * as in a batch run with `Pipeline.key`. Only a record that loads claims its key: one the
   * transform or the sink's `check` rejects leaves it free for a corrected re-send. See the module
   * documentation.
   */
  readonly key: ((record: A) => string) | undefined
  readonly batchSize: number
  readonly batchWindow: Duration.Duration
  readonly breaker: { readonly failures: number; readonly openDuration: Duration.Duration }
  readonly badRecords: {
    readonly threshold: number
    readonly window: number
    readonly minimum: number
    readonly pause: Duration.Duration
    /** Consecutive pauses on the same batch before the breaker gives up (see {@link OnPersist}). */
    readonly maxPauses: number
    readonly onPersist: OnPersist
  }
}

/**
 * What the bad-record-rate breaker does with a batch still above the threshold after
 * `badRecords.maxPauses` pauses: `"deadLetter"` commits it with its bad messages dead-lettered (and
 * the run goes on), `"fail"` fails the run with {@link BadRecordRateExceeded} (the batch stays
 * unacknowledged).
 *
 * @since 0.1.0
 * @category models
 */
export type OnPersist = "deadLetter" | "fail"

/**
 * The UTC date of a message's publication.
 *
 * @since 0.1.0
 * @category partitions
 */
export const publicationDate = (message: Message): PartitionDate => {
  const date = DateTime.formatIsoDateUtc(DateTime.makeUnsafe(message.publishedAt))
  return (isDateString(date) ? date : "1970-01-01") as PartitionDate
}

/**
 * Defines a streaming pipeline. Defaults: batches of 500 messages or 200 ms, a breaker that opens
 * after 3 consecutive failed commits for 1 second, a bad-record-rate breaker at 50% over the last
 * 200 messages (at least 20) pausing 5 seconds, at most 3 times per batch before dead-lettering it
 * (`onPersist: "deadLetter"`), partitions by publication date.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Streaming, Transform } from "@sluice/core"
 *
 * declare const sink: Streaming.StreamSink<{ readonly id: string }>
 * const pipeline = Streaming.make({
 *   name: "ids",
 *   transform: Transform.fromSchema(Schema.Struct({ id: Schema.NonEmptyString })),
 *   sink,
 *   batchSize: 100,
 *   batchWindow: "50 millis"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, R = never>(options: {
  readonly name: string
  readonly transform: Transform.Transform<A>
  readonly sink: StreamSink<A, R>
  readonly partitionOf?: ((message: Message) => PartitionDate) | undefined
  readonly stage?: string | undefined
  readonly key?: ((record: A) => string) | undefined
  readonly batchSize?: number | undefined
  readonly batchWindow?: Duration.Input | undefined
  readonly breaker?: { readonly failures?: number | undefined; readonly openDuration?: Duration.Input | undefined }
  readonly badRecords?: {
    readonly threshold?: number | undefined
    readonly window?: number | undefined
    readonly minimum?: number | undefined
    readonly pause?: Duration.Input | undefined
    readonly maxPauses?: number | undefined
    readonly onPersist?: OnPersist | undefined
  }
}): StreamingPipeline<A, R> => ({
  name: options.name,
  transform: options.transform,
  sink: options.sink,
  partitionOf: options.partitionOf ?? publicationDate,
  stage: options.stage ?? "transform",
  key: options.key,
  batchSize: Math.max(1, options.batchSize ?? 500),
  batchWindow: Duration.fromInputUnsafe(options.batchWindow ?? "200 millis"),
  breaker: {
    failures: options.breaker?.failures ?? 3,
    openDuration: Duration.fromInputUnsafe(options.breaker?.openDuration ?? "1 second")
  },
  badRecords: {
    threshold: options.badRecords?.threshold ?? 0.5,
    window: options.badRecords?.window ?? 200,
    minimum: options.badRecords?.minimum ?? 20,
    pause: Duration.fromInputUnsafe(options.badRecords?.pause ?? "5 seconds"),
    maxPauses: Math.max(0, Math.floor(options.badRecords?.maxPauses ?? 3)),
    onPersist: options.badRecords?.onPersist ?? "deadLetter"
  }
})

/**
 * The streaming form of a batch pipeline: the same name, transform and stage, with a streaming sink.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPipeline = <A, R, RK>(
  pipeline: Pipeline.Pipeline<A, R>,
  sink: StreamSink<A, RK>,
  options: Omit<Parameters<typeof make<A, RK>>[0], "name" | "transform" | "sink"> = {}
): StreamingPipeline<A, RK> =>
  make({ ...options, name: pipeline.name, transform: pipeline.transform, sink, stage: pipeline.stage })

/**
 * The share of dead-lettered messages over the sliding window passed the threshold: the batch was
 * rolled back instead of dead-lettered.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRecordRateExceeded
  extends Schema.TaggedError<BadRecordRateExceeded>("@sluice/core/Streaming/BadRecordRateExceeded")(
    "BadRecordRateExceeded",
    { pipeline: Schema.String, bad: Schema.Int, total: Schema.Int, threshold: Schema.Number }
  )
{
  override get message(): string {
    return `${this.pipeline}: ${this.bad}/${this.total} of the last messages are bad, above the ${
      (this.threshold * 100).toFixed(2)
    }% threshold`
  }
}

/**
 * What one committed batch did.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchReport {
  /** Messages in the batch. */
  readonly received: number
  /** Messages skipped as already processed (redeliveries, duplicates). */
  readonly skipped: number
  readonly loaded: number
  readonly deadLettered: number
  readonly firstSequence: number
  readonly lastSequence: number
}

/**
 * The services a streaming run needs besides those of its source and sink.
 *
 * @since 0.1.0
 * @category models
 */
export type Services = DeadLetter.DeadLetterStore | Transactor.Transactor | ProcessedEventLedger.ProcessedEventLedger

/**
 * A sliding window of the latest message outcomes (`true`: dead-lettered).
 *
 * @since 0.1.0
 * @category models
 */
export interface Window {
  readonly size: number
  readonly outcomes: Array<boolean>
}

const exceeds = <A, R>(pipeline: StreamingPipeline<A, R>, window: Window, batch: ReadonlyArray<boolean>) => {
  const all = [...window.outcomes, ...batch].slice(-pipeline.badRecords.window)
  const bad = all.filter((b) => b).length
  return all.length >= pipeline.badRecords.minimum && bad / all.length > pipeline.badRecords.threshold
    ? new BadRecordRateExceeded({
      pipeline: pipeline.name,
      bad,
      total: all.length,
      threshold: pipeline.badRecords.threshold
    })
    : undefined
}

/**
 * Processes one micro-batch in one transaction (see the module documentation) and, after the
 * commit, acknowledges its messages. `window` is updated after the commit. With `force`, the
 * bad-record rate is not checked (the breaker gave up on the batch, see {@link OnPersist}) and the
 * batch's outcomes are not counted in the window.
 *
 * @since 0.1.0
 * @category running
 */
export const processBatch = Effect.fn("Streaming.processBatch")(function*<A, R>(
  pipeline: StreamingPipeline<A, R>,
  batch: ReadonlyArray<Message>,
  window: Window,
  options: { readonly force?: boolean | undefined } = {}
): Effect.fn.Return<BatchReport, SinkError.SinkError | BadRecordRateExceeded, R | Services> {
  const transactor = yield* Transactor.Transactor
  const deadLetters = yield* DeadLetter.DeadLetterStore
  const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
  const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
  // one message per event id: a duplicate within the batch is skipped like any other
  const byId = new Map<string, Message>()
  for (const m of batch) if (!byId.has(m.eventId)) byId.set(m.eventId, m)
  const unique = [...byId.values()]
  const runId = `stream/${pipeline.name}/${batch[0]?.stream ?? ""}/${batch[0]?.sequence ?? 0}`

  const report = yield* transactor.withTransaction(Effect.gen(function*() {
    const claimed = yield* ledger.claim(
      pipeline.name,
      unique.map((m) => ({ eventId: m.eventId, stream: m.stream, sequence: m.sequence })),
      now
    )
    const good: Array<A> = []
    const bad: Array<DeadLetter.DeadLetter> = []
    const outcomes: Array<boolean> = []
    const check = pipeline.sink.check
    const keyOf = pipeline.key
    const decoded = unique.filter((m) => claimed.has(m.eventId)).map((message) => {
      const partition = pipeline.partitionOf(message)
      const record: RawRecord = message.invalidBytes === undefined
        ? { payload: message.payload, position: message.sequence }
        : { payload: message.payload, position: message.sequence, invalidBytes: message.invalidBytes }
      // the sink's check comes before the key is claimed: a record it cannot store loads nothing, so
      // its key stays free for a corrected re-send. A leading byte order mark is not part of the document
      // (a message is decoded as a whole file is, without it); its dead letter keeps the payload exactly.
      const decoded = Transform.apply(
        pipeline.transform,
        record.invalidBytes === undefined && record.payload.startsWith("\ufeff")
          ? { payload: record.payload.slice(1), position: record.position }
          : record,
        partition
      )
      const rejected = SinkCheck.rejection(check, decoded)
      const result = rejected === undefined ? decoded : Result.fail(rejected)
      const stage = rejected === undefined ? pipeline.stage : "load"
      const key = keyOf !== undefined && Result.isSuccess(result) ? keyOf(result.success) : undefined
      return { message, partition, record, result, key, stage }
    })
    // business keys: the first event of a key claims it, in this batch or an earlier one
    const firstOfKey = new Map<string, Message>()
    for (const { key, message } of decoded) {
      if (key !== undefined && !firstOfKey.has(key)) firstOfKey.set(key, message)
    }
    // claimed as JSON text: a key with text a ledger cannot store (a NUL, a lone surrogate) is escaped
    const keysClaimed = firstOfKey.size === 0 ? new Set<string>() : yield* ledger.claimKeys(
      `${pipeline.name}#key`,
      [...firstOfKey].map(([key, m]) => ({ eventId: JSON.stringify(key), stream: m.stream, sequence: m.sequence })),
      now
    )
    for (const { key, message, partition, record, result: decodedResult, stage } of decoded) {
      let result = decodedResult
      if (key !== undefined) {
        const first = firstOfKey.get(key)
        if (first !== message || !keysClaimed.has(JSON.stringify(key))) {
          result = Result.fail(
            new RecordError.RecordError({
              reason: new RecordError.DuplicateKey({
                key,
                message: first !== message
                  ? `key ${JSON.stringify(key)} already loaded from sequence ${first?.sequence} of ${first?.stream}`
                  : `key ${JSON.stringify(key)} already loaded by an earlier event`
              })
            })
          )
        }
      }
      if (Result.isSuccess(result)) {
        good.push(result.success)
        outcomes.push(false)
      } else {
        bad.push(DeadLetter.fromRecordError({
          pipeline: pipeline.name,
          partition,
          stage: `${stage}@${message.stream}`,
          runId,
          failedAt: now,
          record,
          error: result.failure
        }))
        outcomes.push(true)
      }
    }
    if (bad.length > 0 && options.force !== true) {
      const exceeded = exceeds(pipeline, window, outcomes)
      if (exceeded !== undefined) return yield* exceeded
    }
    if (good.length > 0) yield* pipeline.sink.write(good)
    if (bad.length > 0) yield* deadLetters.write(bad)
    return {
      outcomes,
      report: {
        received: batch.length,
        skipped: batch.length - claimed.size,
        loaded: good.length,
        deadLettered: bad.length,
        firstSequence: batch[0]?.sequence ?? 0,
        lastSequence: batch[batch.length - 1]?.sequence ?? 0
      } satisfies BatchReport
    }
  }))
  if (options.force !== true) window.outcomes.push(...report.outcomes)
  if (window.outcomes.length > window.size) window.outcomes.splice(0, window.outcomes.length - window.size)
  // acknowledged only now that the batch is committed
  yield* Effect.forEach(batch, (m) => m.ack, { discard: true })
  return report.report
})

const isRejection = (error: unknown): error is CircuitBreaker.CircuitBreakerError =>
  error instanceof CircuitBreaker.CircuitBreakerError && error.reason._tag !== "CircuitBreakerStoreError"

/**
 * Every way a streaming run can stop with a failure: the source failed, a commit failed in a way
 * retrying cannot fix, or the bad-record rate stayed above the threshold after
 * `badRecords.maxPauses` pauses with `badRecords.onPersist: "fail"`.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunError = SourceError | SinkError.SinkError | CircuitBreaker.CircuitBreakerError | BadRecordRateExceeded

/**
 * What a streaming run reports as it goes, e.g. for a CLI or a test.
 *
 * @since 0.1.0
 * @category models
 */
export type Event =
  | { readonly _tag: "Committed"; readonly report: BatchReport }
  | { readonly _tag: "CommitFailed"; readonly error: string }
  | { readonly _tag: "BreakerTransition"; readonly from: string; readonly to: string }
  | { readonly _tag: "BadRecordRateAlert"; readonly error: BadRecordRateExceeded }
  /** The breaker paused `pauses` times on the same batch and gave up on it, doing `action`. */
  | {
    readonly _tag: "BadRecordRateGaveUp"
    readonly error: BadRecordRateExceeded
    readonly pauses: number
    readonly action: OnPersist
  }

/**
 * Runs a streaming pipeline over a source until the source ends or the run is interrupted. See
 * the module documentation.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Streaming } from "@sluice/core"
 *
 * declare const pipeline: Streaming.StreamingPipeline<unknown>
 * declare const source: Streaming.StreamSource
 * const program = Streaming.run(pipeline, source, {
 *   onEvent: (event) => Effect.log(event._tag)
 * })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("Streaming.run")(function*<A, R, RS>(
  pipeline: StreamingPipeline<A, R>,
  source: StreamSource<RS>,
  options: { readonly onEvent?: ((event: Event) => Effect.Effect<void>) | undefined } = {}
): Effect.fn.Return<void, RunError, R | RS | Services> {
  const onEvent = options.onEvent ?? (() => Effect.void)
  const metric = <M extends Metric.Metric<any, any>>(m: M) => PipelineMetrics.forPipeline(m, pipeline.name)
  const window: Window = { size: pipeline.badRecords.window, outcomes: [] }
  yield* Effect.annotateCurrentSpan({ pipeline: pipeline.name, source: source.location })

  return yield* Effect.scoped(Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make({
      tripPolicy: CircuitBreaker.consecutive(pipeline.breaker.failures),
      openDuration: pipeline.breaker.openDuration
    })
    const breakerState = Metric.withAttributes(metric(PipelineMetrics.circuitBreakerState), { breaker: "commit" })
    yield* Metric.update(breakerState, PipelineMetrics.circuitBreakerStateValue("Closed"))
    yield* breaker.transitions.pipe(
      Stream.runForEach((t) =>
        Effect.andThen(
          Metric.update(breakerState, PipelineMetrics.circuitBreakerStateValue(t.to)),
          Effect.andThen(
            t.to === "Open"
              ? Effect.logWarning(`${pipeline.name}: circuit open; not pulling for ${Duration.format(t.retryAfter)}`)
              : Effect.logInfo(`${pipeline.name}: circuit ${t.from} → ${t.to}`),
            onEvent({ _tag: "BreakerTransition", from: t.from, to: t.to })
          )
        )
      ),
      Effect.forkScoped
    )
    const key = `streaming/${pipeline.name}`
    const gaveUp = metric(PipelineMetrics.badRecordRateGaveUp)
    const commit = (batch: ReadonlyArray<Message>, onCommitted: (report: BatchReport) => void) => {
      // the bad-record-rate breaker's state for this batch: pauses taken, and whether it gave up
      let pauses = 0
      let outcome: "pausing" | OnPersist = "pausing"
      return Effect.suspend(() => processBatch(pipeline, batch, window, { force: outcome === "deadLetter" })).pipe(
        // noted with its commit and ack, in the same uninterruptible region (see `runForEach` below)
        Effect.tap((report) => Effect.sync(() => onCommitted(report))),
        Effect.uninterruptible,
        breaker.execute({
          key,
          classify: (exit) =>
            exit._tag === "Success" ||
              exit.cause.reasons.some((r) => r._tag === "Fail" && !SinkError.isSinkError(r.error))
              ? CircuitBreaker.success
              : CircuitBreaker.failure()
        }),
        Effect.tapError((error) =>
          // a rejection is the breaker's own event; the bad-record rate, its alert below
          isRejection(error) || error instanceof BadRecordRateExceeded ? Effect.void : Effect.andThen(
            Effect.logWarning(`${pipeline.name}: commit failed: ${error.message}`),
            onEvent({ _tag: "CommitFailed", error: error.message })
          )
        ),
        Effect.catchTag("BadRecordRateExceeded", (error) =>
          Effect.gen(function*() {
            yield* Metric.update(metric(PipelineMetrics.failureRateAlerts), 1)
            yield* Alert.log(
              `ALERT ${error.message}; ${
                pauses < pipeline.badRecords.maxPauses
                  ? `pausing ${Duration.format(pipeline.badRecords.pause)} instead of dead-lettering (pause ${
                    pauses + 1
                  } of ${pipeline.badRecords.maxPauses} on this batch)`
                  : "giving up on this batch"
              }`
            )
            yield* onEvent({ _tag: "BadRecordRateAlert", error })
            // the window starts over: after the pause the batch is judged on its own
            window.outcomes.length = 0
            if (pauses < pipeline.badRecords.maxPauses) pauses++
            else {
              // a burst of bad messages, not an outage: pausing again would stall the stream forever
              const action = pipeline.badRecords.onPersist
              outcome = action
              yield* Metric.update(
                Metric.withAttributes(gaveUp, { action: action === "deadLetter" ? "dead_letter" : "fail" }),
                1
              )
              yield* Alert.log(
                `ALERT ${pipeline.name}: bad-record rate still above the threshold after ${pauses} pause(s) on batch seq ${
                  batch[0]?.sequence ?? 0
                }–${batch[batch.length - 1]?.sequence ?? 0}; ${
                  action === "deadLetter" ? "dead-lettering its bad messages" : "failing the run"
                }`
              )
              yield* onEvent({ _tag: "BadRecordRateGaveUp", error, pauses, action })
            }
            return yield* Effect.fail(error)
          })),
        Effect.retry({
          schedule: Schedule.exponential("50 millis").pipe(
            Schedule.jittered,
            Schedule.modifyDelay(({ duration, input }) =>
              Effect.succeed(
                input instanceof BadRecordRateExceeded
                  ? (outcome === "pausing" ? pipeline.badRecords.pause : Duration.zero)
                  : isRejection(input) && input.reason._tag === "CircuitOpen"
                  ? Duration.max(Duration.min(duration, pipeline.breaker.openDuration), input.reason.retryAfter)
                  : Duration.min(duration, pipeline.breaker.openDuration)
              )
            )
          ),
          while: (error: unknown) =>
            (error instanceof BadRecordRateExceeded && outcome !== "fail") || isRejection(error) ||
            (SinkError.isSinkError(error) && error.retryable)
        })
      )
    }

    yield* source.messages.pipe(
      Stream.groupedWithin(pipeline.batchSize, pipeline.batchWindow),
      Stream.runForEach((batch) => {
        // a batch committed is reported once, even when the run is interrupted (Ctrl-C) between its
        // commit and its report: the batch in hand is finished and its line printed
        let pending: BatchReport | undefined
        const report = Effect.suspend(() => {
          const committed = pending
          pending = undefined
          return committed === undefined ? Effect.void : Effect.gen(function*() {
            yield* Metric.update(metric(PipelineMetrics.recordsRead), committed.received - committed.skipped)
            yield* Metric.update(metric(PipelineMetrics.recordsLoaded), committed.loaded)
            yield* Metric.update(metric(PipelineMetrics.recordsDeadLettered), committed.deadLettered)
            yield* onEvent({ _tag: "Committed", report: committed })
          })
        })
        return commit(batch, (committed) => {
          pending = committed
        }).pipe(Effect.andThen(report), Effect.onInterrupt(() => report))
      })
    )
  })).pipe(Effect.provide(CircuitBreaker.layerStoreMemory()))
})
