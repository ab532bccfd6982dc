/**
 * Pipelines: a source, a transform and a sink, run over one partition at a time.
 *
 * A run of pipeline P over partition D:
 * 1. takes the partition lock of (P, D) for the whole run (a second run fails with `PartitionLocked`);
 *    if the lock is lost meanwhile (its database session ended and another process took it), the
 *    attempt is interrupted — its transaction rolls back — and the run fails with `LockLost`, not
 *    retried;
 * 2. records a `running` run in the {@link RunLedger.RunLedger};
 * 3. in one transaction (the {@link Transactor.Transactor}): prepares the sink (e.g. deletes D),
 *    clears D's dead letters, streams the source's raw records in batches through the transform,
 *    writes good records to the sink and bad ones to the {@link DeadLetter.DeadLetterStore} (in the
 *    background, while the next records are read and transformed: one `write` per batch, or, for a
 *    sink with `writeBatches`, streams of batches — one COPY each — with the dead letters written
 *    between two streams), then completes the sink (e.g. rebuilds derived tables for D);
 * 4. retries the whole attempt on the {@link RetryPolicy.RetryPolicy} when it failed transiently —
 *    the transaction rolled back, so nothing is loaded twice;
 * 5. checks conservation (loaded + dead-lettered = read), raises a failure-rate alert above the
 *    threshold, reports metrics and records the outcome.
 *
 * Nothing in a run reads the current date: the partition is a parameter and time comes from `Clock`.
 *
 * **Lookback** (late data)
 *
 * A daily pipeline may declare `lookback: n`: a run for D then also rebuilds D-n … D-1 from the
 * source, oldest first, before D. Each of them is a run of its own — its own partition lock, its own
 * transaction, its own row in the {@link RunLedger.RunLedger} under its own date — so every step above
 * holds for it, and a re-run is as idempotent as any run. A lookback run is marked by its run id,
 * `lookback/<D>/<uuid>` ({@link triggerOf}), so the ledger's schema is unchanged and
 * `run_id LIKE 'lookback/2024-03-05/%'` finds the rebuilds of D's run; the report of D lists the
 * outcomes of its lookback partitions ({@link RunReport.lookback}).
 *
 * - A date never run before (no row in the ledger) is skipped: lookback rebuilds, it does not
 *   backfill (the first days of a pipeline have no D-1 yet).
 * - A lookback partition that fails is reported (`Failed`) and the run goes on: D's own result
 *   does not depend on it.
 * - In a backfill, {@link lookbackPlan} keeps only the dates the backfill does not run itself: for
 *   a range, the first date rebuilds the n days before the range and the others rebuild nothing
 *   (the range runs them anyway), so no partition is built twice by one backfill.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Fiber, Metric, Result, Schema, Stream } from "effect"
import * as Alert from "./Alert.ts"
import * as DeadLetter from "./DeadLetter.ts"
import * as SinkCheck from "./internal/sinkCheck.ts"
import { addDays, isDateString, type PartitionDate, range } from "./Partition.ts"
import * as PartitionLock from "./PartitionLock.ts"
import * as PipelineMetrics from "./PipelineMetrics.ts"
import * as RecordError from "./RecordError.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import * as RunLedger from "./RunLedger.ts"
import { type Feed, feed, type Sink } from "./Sink.ts"
import type { SinkError } from "./SinkError.ts"
import type { Source } from "./Source.ts"
import type { SourceError } from "./SourceError.ts"
import * as Transactor from "./Transactor.ts"
import * as Transform from "./Transform.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Pipeline<A, R = never> {
  readonly name: string
  readonly description: string
  readonly source: Source<R>
  readonly transform: Transform.Transform<A>
  readonly sink: Sink<A, R>
  /** Records per write batch. */
  readonly batchSize: number
  /**
   * Records per streamed write, for a sink that takes whole streams of batches
   * (`Sink.writeBatches`): the partition's dead letters are written between two streams.
   */
  readonly streamSize: number
  /** Alert when dead-lettered / read exceeds this share (0–1). */
  readonly failureThreshold: number
  readonly retry: RetryPolicy.RetryPolicy
  /** The stage name recorded on dead letters of the transform. */
  readonly stage: string
  /**
   * The record's key within a partition, if it has one: a second record with the same key in
   * the same partition is dead-lettered as `DuplicateKey` instead of being loaded twice (only a
   * record that loads takes its key: one the sink's `check` rejects leaves it to the next). The run
   * remembers every key of the partition (about 70 bytes each): leave it out for partitions of
   * many millions of records, and let the table's primary key refuse duplicates.
   */
  readonly key: ((record: A) => string) | undefined
  /**
   * Days before a run's partition that the run also rebuilds from the source, for late data
   * (0: none). See the module documentation.
   */
  readonly lookback: number
}

/**
 * Defines a pipeline. Defaults: batches of 5,000, streams of 1,000,000 records (for a sink that
 * writes streams of batches), a 5% failure-rate threshold, the default retry policy, no lookback.
 *
 * **Gotchas**
 *
 * `lookback` must be a whole number of days from 0 to 366; anything else throws a `RangeError`
 * (a programming error, raised when the pipeline is defined).
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { Pipeline, Sink, Source, Transform } from "@sluice/core"
 *
 * declare const sink: Sink.Sink<{ readonly id: string }>
 * const pipeline = Pipeline.make({
 *   name: "ids",
 *   source: Source.make("inline", () => Stream.make({ payload: "{\"id\":\"a\"}", position: 1 })),
 *   transform: Transform.fromSchema(Schema.Struct({ id: Schema.NonEmptyString })),
 *   sink
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, RS = never, RK = never>(options: {
  readonly name: string
  readonly description?: string | undefined
  readonly source: Source<RS>
  readonly transform: Transform.Transform<A>
  readonly sink: Sink<A, RK>
  readonly batchSize?: number | undefined
  readonly streamSize?: number | undefined
  readonly failureThreshold?: number | undefined
  readonly retry?: RetryPolicy.RetryPolicy | undefined
  readonly stage?: string | undefined
  readonly key?: ((record: A) => string) | undefined
  readonly lookback?: number | undefined
}): Pipeline<A, RS | RK> => ({
  name: options.name,
  description: options.description ?? options.name,
  source: options.source,
  transform: options.transform,
  sink: options.sink,
  batchSize: options.batchSize ?? 5_000,
  streamSize: options.streamSize ?? 1_000_000,
  failureThreshold: options.failureThreshold ?? 0.05,
  retry: options.retry ?? RetryPolicy.defaultPolicy,
  stage: options.stage ?? "transform",
  key: options.key,
  lookback: validLookback(options.name, options.lookback ?? 0)
})

const maxLookback = 366

const validLookback = (pipeline: string, days: number): number => {
  if (!Number.isInteger(days) || days < 0 || days > maxLookback) {
    throw new RangeError(
      `pipeline ${
        JSON.stringify(pipeline)
      }: lookback must be a whole number of days from 0 to ${maxLookback}, got ${days}`
    )
  }
  return days
}

/**
 * Loaded + dead-lettered did not add up to the records read: a bug, never silently accepted.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConservationViolation
  extends Schema.TaggedError<ConservationViolation>("@sluice/core/Pipeline/ConservationViolation")(
    "ConservationViolation",
    { read: Schema.Int, loaded: Schema.Int, deadLettered: Schema.Int }
  )
{
  override get message(): string {
    return `conservation violated: read ${this.read} ≠ loaded ${this.loaded} + dead-lettered ${this.deadLettered}`
  }
}

/**
 * Every way a run can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunError = SourceError | SinkError | PartitionLocked | LockLost | ConservationViolation

type PartitionLocked = PartitionLock.PartitionLocked
type LockLost = PartitionLock.LockLost

/**
 * What a successful run did.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunReport extends RunLedger.RunCounts {
  readonly runId: string
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly startedAt: number
  readonly endedAt: number
  /** Why the partition ran: asked for, or rebuilt by the lookback of a later partition's run. */
  readonly trigger: Trigger
  /**
   * The lookback partitions of this run, oldest first, each rebuilt (or skipped, or failed) before
   * the partition itself. Empty without lookback, and in the report of a lookback run.
   */
  readonly lookback: ReadonlyArray<LookbackOutcome>
}

/**
 * Why a partition ran: `Direct` (asked for by a caller: the CLI, a scheduler, a backfill) or
 * `Lookback` (rebuilt by the lookback of the run of partition `of`).
 *
 * @since 0.1.0
 * @category models
 */
export type Trigger =
  | { readonly _tag: "Direct" }
  | { readonly _tag: "Lookback"; readonly of: PartitionDate }

/**
 * What became of one lookback partition of a run.
 *
 * - `Succeeded`: rebuilt, with the report of its own run (its own ledger row).
 * - `Failed`: its run failed (recorded in the ledger as any failed run); the run went on.
 * - `Skipped`: not run, e.g. a date never run before (lookback rebuilds, it does not backfill).
 *
 * @since 0.1.0
 * @category models
 */
export type LookbackOutcome =
  | { readonly _tag: "Succeeded"; readonly partition: PartitionDate; readonly report: RunReport }
  | { readonly _tag: "Failed"; readonly partition: PartitionDate; readonly errorType: string; readonly error: string }
  | { readonly _tag: "Skipped"; readonly partition: PartitionDate; readonly reason: string }

const lookbackRunId = /^lookback\/(\d{4}-\d{2}-\d{2})\//

/**
 * The trigger of a run, from its run id (as recorded in the {@link RunLedger.RunLedger}): a lookback
 * run's id is `lookback/<D>/<uuid>`, where D is the partition whose run rebuilt it.
 *
 * @example
 * ```ts
 * import { Pipeline } from "@sluice/core"
 *
 * Pipeline.triggerOf("lookback/2024-03-05/0b6f7c1e-…") // { _tag: "Lookback", of: "2024-03-05" }
 * Pipeline.triggerOf("0b6f7c1e-…") // { _tag: "Direct" }
 * ```
 *
 * @since 0.1.0
 * @category lookback
 */
export const triggerOf = (runId: string): Trigger => {
  const match = lookbackRunId.exec(runId)
  return match !== null && isDateString(match[1]!)
    ? { _tag: "Lookback", of: match[1] as PartitionDate }
    : { _tag: "Direct" }
}

/**
 * The lookback window of a partition: the `days` dates before it, oldest first.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 *
 * Pipeline.lookbackWindow(Partition.makeUnsafe("2024-03-01"), 2) // ["2024-02-28", "2024-02-29"]
 * ```
 *
 * @since 0.1.0
 * @category lookback
 */
export const lookbackWindow = (partition: PartitionDate, days: number): Array<PartitionDate> =>
  days <= 0 ? [] : range(addDays(partition, -days), addDays(partition, -1))

/**
 * The lookback of each partition of a backfill, so that the backfill builds no date twice: a date
 * of the backfill gets no lookback for dates the backfill runs itself or an earlier date's lookback
 * already covers. For a range `start..end` that is the `lookback` days before `start`, given to `start`.
 *
 * Pass each partition's dates to {@link run} as `options.lookback`.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 *
 * declare const pipeline: Pipeline.Pipeline<unknown> // declares lookback: 2
 * const partitions = Partition.range(Partition.makeUnsafe("2024-03-01"), Partition.makeUnsafe("2024-03-31"))
 * const plan = Pipeline.lookbackPlan(pipeline, partitions)
 * plan.get(Partition.makeUnsafe("2024-03-01")) // ["2024-02-28", "2024-02-29"]
 * plan.get(Partition.makeUnsafe("2024-03-02")) // []
 * ```
 *
 * @since 0.1.0
 * @category lookback
 */
export const lookbackPlan = <A, R>(
  pipeline: Pipeline<A, R>,
  partitions: ReadonlyArray<PartitionDate>
): ReadonlyMap<PartitionDate, ReadonlyArray<PartitionDate>> => {
  const covered = new Set<string>(partitions)
  const plan = new Map<PartitionDate, ReadonlyArray<PartitionDate>>()
  for (const partition of [...partitions].sort()) {
    const dates = lookbackWindow(partition, pipeline.lookback).filter((date) => !covered.has(date))
    for (const date of dates) covered.add(date)
    plan.set(partition, dates)
  }
  return plan
}

/**
 * The services a run needs besides those of its source and sink.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | RunLedger.RunLedger
  | DeadLetter.DeadLetterStore
  | PartitionLock.PartitionLock
  | Transactor.Transactor

interface Counts {
  read: number
  loaded: number
  deadLettered: number
}

const newRunId = Effect.sync(() => crypto.randomUUID())

const isRecordErrorReason = Schema.is(RecordError.RecordErrorReason)

const describe = (error: unknown): { readonly errorType: string; readonly error: string } => {
  const e = error as {
    readonly _tag?: unknown
    readonly message?: unknown
    readonly reason?: { readonly _tag?: unknown }
  }
  const tag = typeof e?._tag === "string" ? e._tag : "Unknown"
  const reason = typeof e?.reason?._tag === "string" ? `.${e.reason._tag}` : ""
  // a sink that refuses a record for the whole run (a frozen contract) says why in its cause
  const cause = (error as { readonly cause?: unknown } | undefined)?.cause
  const refused = RecordError.isRecordError(cause) ? cause.reason : isRecordErrorReason(cause) ? cause : undefined
  if (tag === "SinkError" && refused !== undefined) {
    return { errorType: `SinkError.${refused._tag}`, error: typeof e?.message === "string" ? e.message : "" }
  }
  return { errorType: `${tag}${reason}`, error: typeof e?.message === "string" ? e.message : String(error) }
}

/**
 * Runs a pipeline over one partition, after rebuilding its lookback partitions when the pipeline
 * declares a lookback. See the module documentation for the steps.
 *
 * **Details**
 *
 * `options.lookback` replaces the pipeline's window for this run: the dates before the partition to
 * rebuild first, in order (e.g. from {@link lookbackPlan} in a backfill; `[]` for none). The run succeeds or fails with the
 * partition's own run; its lookback partitions' outcomes are in {@link RunReport.lookback} and in
 * the ledger.
 *
 * **Gotchas**
 *
 * A backfill that calls `run` without `options.lookback` rebuilds every date up to `lookback + 1`
 * times (as the lookback of each of the next dates): pass the dates of {@link lookbackPlan}, as the
 * CLI does.
 *
 * @example
 * ```ts
 * import { Partition, Pipeline } from "@sluice/core"
 *
 * declare const pipeline: Pipeline.Pipeline<unknown> // declares lookback: 2
 * // rebuilds 2024-03-03 and 2024-03-04 (if they were run before), then runs 2024-03-05
 * const program = Pipeline.run(pipeline, Partition.makeUnsafe("2024-03-05"))
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("Pipeline.run")(function*<A, R>(
  pipeline: Pipeline<A, R>,
  partition: PartitionDate,
  options?: { readonly lookback?: ReadonlyArray<PartitionDate> | undefined }
): Effect.fn.Return<RunReport, RunError, R | Services> {
  const ledger = yield* RunLedger.RunLedger
  yield* Effect.annotateCurrentSpan({ pipeline: pipeline.name, partition })
  const window = (options?.lookback ?? lookbackWindow(partition, pipeline.lookback)).filter((date) => date < partition)
  const lookback: Array<LookbackOutcome> = []
  for (const date of window) {
    const outcome = yield* Effect.flatMap(
      ledger.list(pipeline.name, { start: date, end: date }),
      (runs): Effect.Effect<LookbackOutcome, RunError, R | Services> =>
        runs.length === 0
          ? Effect.succeed({ _tag: "Skipped", partition: date, reason: "never run before" })
          : Effect.map(
            runPartition(pipeline, date, { _tag: "Lookback", of: partition }),
            (report) => ({ _tag: "Succeeded", partition: date, report })
          )
    ).pipe(
      Effect.catch((error) => Effect.succeed<LookbackOutcome>({ _tag: "Failed", partition: date, ...describe(error) }))
    )
    lookback.push(outcome)
  }
  const report = yield* runPartition(pipeline, partition, { _tag: "Direct" })
  return { ...report, lookback }
})

/** Where the runner hands its batches: good records to the sink, bad ones to the dead letters. */
interface Writer<A, R = never> {
  /** Hands over one batch; may wait for earlier ones (backpressure). */
  readonly write: (good: Array<A>, bad: Array<DeadLetter.DeadLetter>) => Effect.Effect<void, SinkError, R>
  /** Whether a write is in progress in the background (the runner then yields between slices). */
  readonly busy: () => boolean
  /** Waits for everything handed over to be written. */
  readonly end: Effect.Effect<void, SinkError>
  /** Stops the writes in progress (the attempt failed; its transaction rolls back). */
  readonly abort: Effect.Effect<void>
}

/** One `sink.write` (and one dead-letter write) per batch, each in the background while the next batch is read. */
const batchWriter = <A, R>(
  partition: PartitionDate,
  sink: Sink<A, R>,
  deadLetters: DeadLetter.DeadLetterStore["Service"]
): Writer<A, R> => {
  let writing: Fiber.Fiber<void, SinkError> | undefined
  const awaitWriting = Effect.suspend(() => writing === undefined ? Effect.void : Fiber.join(writing))
  return {
    write: (good, bad) =>
      Effect.andThen(
        awaitWriting,
        Effect.map(
          Effect.forkChild(Effect.andThen(
            good.length > 0 ? sink.write(partition, good) : Effect.void,
            bad.length > 0 ? deadLetters.write(bad) : Effect.void
          )),
          (fiber) => {
            writing = fiber
          }
        )
      ),
    busy: () => writing !== undefined,
    end: awaitWriting,
    abort: Effect.suspend(() => writing === undefined ? Effect.void : Fiber.interrupt(writing))
  }
}

/** The most dead letters a streaming write holds back until its stream ends… */
const maxHeldDeadLetters = 10_000
/** …and the most characters of payload and error they may hold (a payload can be large). */
const maxHeldChars = 4_000_000

/**
 * Batches streamed into `sink.writeBatches`, a stream of at most `streamSize` records at a time:
 * nothing else may use the connection while a stream is written, so dead letters are held back
 * and written when it ends: after `streamSize` records, {@link maxHeldDeadLetters} dead letters or
 * {@link maxHeldChars} characters of them, which bounds what is held in memory. The next stream
 * starts once the previous one and its dead letters are written, in the background: the runner
 * goes on reading meanwhile.
 */
const streamWriter = <A, R>(
  partition: PartitionDate,
  sink: Sink<A, R>,
  writeBatches: NonNullable<Sink<A, R>["writeBatches"]>,
  deadLetters: DeadLetter.DeadLetterStore["Service"],
  streamSize: number
) =>
  Effect.map(Effect.context<R>(), (context): Writer<A> => {
    /** A write in the background: a stream of batches, or the dead letters held during one. */
    interface Background {
      readonly await: Effect.Effect<void, SinkError>
      readonly interrupt: Effect.Effect<void>
    }
    let open: Feed<A> | undefined
    /** The last write in the background; each one starts once the one before it is written. */
    let tail: Background | undefined
    let held: Array<DeadLetter.DeadLetter> = []
    let heldChars = 0
    let records = 0
    const after = <R2>(previous: Background | undefined, effect: Effect.Effect<void, SinkError, R2>) =>
      previous === undefined ? effect : Effect.andThen(previous.await, effect)
    // batches queue up while the stream waits for the writes before it
    const start = Effect.suspend(() => {
      const previous = tail
      return Effect.map(
        feed<A, R>(sink.target, (batches) => after(previous, writeBatches(partition, batches))).pipe(
          Effect.provideContext(context)
        ),
        (started) => (open = tail = started)
      )
    })
    /** Ends the open stream, and writes the dead letters held during it once it is written; does not wait. */
    const rotate = Effect.suspend(() => {
      const current = open
      open = undefined
      const failed = held
      held = []
      heldChars = 0
      records = 0
      return Effect.andThen(
        current === undefined ? Effect.void : current.close,
        failed.length === 0 ?
          Effect.void :
          Effect.map(Effect.forkChild(after(tail, deadLetters.write(failed))), (fiber) => {
            tail = { await: Fiber.join(fiber), interrupt: Effect.asVoid(Fiber.interrupt(fiber)) }
          })
      )
    })
    return {
      // No `Effect.gen` here: measured, a generator per batch made V8 promote most records to the
      // old generation (3× the scavenging time and a larger heap), although none outlives its batch.
      write: (good, bad) =>
        Effect.suspend(() => {
          for (const deadLetter of bad) {
            held.push(deadLetter)
            heldChars += deadLetter.originalRecord.length + deadLetter.error.length
          }
          records += good.length + bad.length
          const rotateIfFull = Effect.suspend(() =>
            records >= streamSize || held.length >= maxHeldDeadLetters || heldChars >= maxHeldChars
              ? rotate
              : Effect.void
          )
          if (good.length === 0) return rotateIfFull
          const offer = (stream: Feed<A>) => Effect.andThen(stream.offer(good), rotateIfFull)
          return open === undefined ? Effect.flatMap(start, offer) : offer(open)
        }),
      busy: () => tail !== undefined,
      end: Effect.andThen(rotate, Effect.suspend(() => tail === undefined ? Effect.void : tail.await)),
      abort: Effect.suspend(() =>
        Effect.andThen(
          open === undefined ? Effect.void : open.interrupt,
          tail === undefined ? Effect.void : tail.interrupt
        )
      )
    }
  })

const runPartition = Effect.fn("Pipeline.runPartition")(function*<A, R>(
  pipeline: Pipeline<A, R>,
  partition: PartitionDate,
  trigger: Trigger
): Effect.fn.Return<RunReport, RunError, R | Services> {
  const ledger = yield* RunLedger.RunLedger
  const deadLetters = yield* DeadLetter.DeadLetterStore
  const locks = yield* PartitionLock.PartitionLock
  const transactor = yield* Transactor.Transactor
  const metric = <M extends Metric.Metric<any, any>>(m: M) => PipelineMetrics.forPipeline(m, pipeline.name)
  yield* Effect.annotateCurrentSpan({
    pipeline: pipeline.name,
    partition,
    ...(trigger._tag === "Lookback" ? { lookbackOf: trigger.of } : {})
  })

  return yield* Effect.scoped(Effect.gen(function*() {
    const lock = yield* locks.acquire(pipeline.name, partition)
    const uuid = yield* newRunId
    const runId = trigger._tag === "Lookback" ? `lookback/${trigger.of}/${uuid}` : uuid
    const startedAt = yield* Clock.currentTimeMillis
    yield* ledger.start({ runId, pipeline: pipeline.name, partition, startedAt })
    let retries = 0

    const attempt = transactor.withTransaction(Effect.gen(function*() {
      const counts: Counts = { read: 0, loaded: 0, deadLettered: 0 }
      const keyOf = pipeline.key
      const check = pipeline.sink.check
      const seen = new Map<string, number>()
      // Batches are written in the background while the next ones are read and transformed, in
      // slices that give the event loop to the writes in between (their data goes out, their
      // answers come in): the transform is synchronous, and would otherwise hold them back.
      const writer = pipeline.sink.writeBatches === undefined
        ? batchWriter(partition, pipeline.sink, deadLetters)
        : yield* streamWriter(partition, pipeline.sink, pipeline.sink.writeBatches, deadLetters, pipeline.streamSize)
      let good: Array<A> = []
      let bad: Array<DeadLetter.DeadLetter> = []
      let unwritten = 0
      const write = Effect.suspend(() => {
        const [batch, failed] = [good, bad]
        good = []
        bad = []
        unwritten = 0
        return writer.write(batch, failed)
      })
      yield* pipeline.sink.prepare(partition)
      yield* deadLetters.clearPartition(pipeline.name, partition)
      yield* pipeline.source.extract(partition).pipe(
        Stream.rechunk(Math.min(pipeline.batchSize, 500)),
        Stream.runForEachArray((slice) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const loaded = good.length
            const deadLettered = bad.length
            for (const record of slice) {
              // the sink's check comes first: a record it cannot store loads nothing, so its key stays free
              let result = Transform.apply(pipeline.transform, record, partition)
              const rejected = SinkCheck.rejection(check, result)
              if (rejected !== undefined) result = Result.fail(rejected)
              const stage = rejected === undefined ? pipeline.stage : "load"
              if (keyOf !== undefined && Result.isSuccess(result)) {
                const key = keyOf(result.success)
                const first = seen.get(key)
                if (first === undefined) seen.set(key, record.position)
                else {
                  result = Result.fail(
                    new RecordError.RecordError({
                      reason: new RecordError.DuplicateKey({
                        key,
                        message: `key ${JSON.stringify(key)} already loaded from position ${first} of this partition`
                      })
                    })
                  )
                }
              }
              if (Result.isSuccess(result)) good.push(result.success)
              else {
                bad.push(DeadLetter.fromRecordError({
                  pipeline: pipeline.name,
                  partition,
                  stage,
                  runId,
                  failedAt: now,
                  record,
                  error: result.failure
                }))
              }
            }
            counts.read += slice.length
            counts.loaded += good.length - loaded
            counts.deadLettered += bad.length - deadLettered
            unwritten += slice.length
            return unwritten >= pipeline.batchSize ? write : writer.busy() ? Effect.yieldNow : Effect.void
          })
        ),
        Effect.andThen(Effect.suspend(() => unwritten > 0 ? write : Effect.void)),
        Effect.andThen(writer.end),
        Effect.onError(() => writer.abort)
      )
      yield* pipeline.sink.complete(partition)
      if (counts.loaded + counts.deadLettered !== counts.read) {
        return yield* new ConservationViolation(counts)
      }
      return counts
    }))

    const outcome = yield* attempt.pipe(
      Effect.retry(RetryPolicy.schedule<RunError>(pipeline.retry, {
        isRetryable: (error) => "isRetryable" in error && error.isRetryable === true,
        onRetry: (error, n, delay) =>
          Effect.andThen(
            Effect.sync(() => {
              retries = n
            }),
            Effect.andThen(
              Metric.update(metric(PipelineMetrics.retries), 1),
              Effect.logWarning(
                `${pipeline.name} ${partition}: ${describe(error).error}; retry ${n}/${pipeline.retry.maxRetries} in ${
                  Math.round(Duration.toMillis(delay))
                } ms`
              )
            )
          )
      })),
      // a lost lock stops the attempt (rolling it back) and the retries: another run may hold it now
      PartitionLock.guard(lock),
      Effect.onExit((exit) =>
        exit._tag === "Success" ? Effect.void : Effect.gen(function*() {
          const endedAt = yield* Clock.currentTimeMillis
          const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
          const info = failure !== undefined && failure._tag === "Fail"
            ? describe(failure.error)
            : exit.cause.reasons.some((r) => r._tag === "Interrupt")
            ? { errorType: "Interrupted", error: "the run was interrupted; the partition's previous data is intact" }
            : { errorType: "Defect", error: String(exit.cause) }
          yield* Metric.update(metric(PipelineMetrics.runsFailed), 1)
          yield* ledger.finish(runId, {
            status: "failed",
            read: 0,
            loaded: 0,
            deadLettered: 0,
            retries,
            failureRate: 0,
            alerted: false,
            endedAt,
            ...info
          }).pipe(Effect.catch((e) => Effect.logError(`could not record the failed run ${runId}: ${e.message}`)))
        })
      )
    )

    const endedAt = yield* Clock.currentTimeMillis
    const failureRate = outcome.read === 0 ? 0 : outcome.deadLettered / outcome.read
    const alerted = failureRate > pipeline.failureThreshold
    yield* Metric.update(metric(PipelineMetrics.recordsRead), outcome.read)
    yield* Metric.update(metric(PipelineMetrics.recordsLoaded), outcome.loaded)
    yield* Metric.update(metric(PipelineMetrics.recordsDeadLettered), outcome.deadLettered)
    yield* Metric.update(metric(PipelineMetrics.runDuration), Duration.millis(endedAt - startedAt))
    if (alerted) {
      yield* Metric.update(metric(PipelineMetrics.failureRateAlerts), 1)
      yield* Alert.log(
        `ALERT ${pipeline.name} ${partition}: ${
          (failureRate * 100).toFixed(2)
        }% of records dead-lettered (${outcome.deadLettered}/${outcome.read}), above the ${
          (pipeline.failureThreshold * 100).toFixed(2)
        }% threshold`
      )
    }
    yield* ledger.finish(runId, {
      status: "succeeded",
      ...outcome,
      retries,
      failureRate,
      alerted,
      endedAt,
      ...(alerted
        ? { errorType: "FailureRateExceeded", error: `failure rate ${(failureRate * 100).toFixed(2)}% above threshold` }
        : {})
    })
    return {
      runId,
      pipeline: pipeline.name,
      partition,
      ...outcome,
      retries,
      failureRate,
      alerted,
      startedAt,
      endedAt,
      trigger,
      lookback: []
    } satisfies RunReport
  }))
})
