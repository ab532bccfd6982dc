/**
 * Sinks: where a partition's good records are written.
 *
 * A sink works inside the load transaction in three steps: `prepare` (e.g. delete the partition),
 * `write` (a batch of records, called many times) and `complete` (e.g. rebuild derived tables for
 * the partition). A sink may also take many batches as one stream (`writeBatches`, e.g. one
 * `COPY` for all of them), so that the database never waits for the next statement between
 * batches. `@sluice/sql` provides partition replacement, merge, append and SCD sinks.
 *
 * @since 0.1.0
 */
import { type Cause, Effect, Fiber, Queue, Ref, Stream } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { RecordError } from "./RecordError.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Sink<in A, R = never> {
  /** What is written, e.g. a table name; it names the sink in errors. */
  readonly target: string
  readonly prepare: (partition: PartitionDate) => Effect.Effect<void, SinkError, R>
  readonly write: (partition: PartitionDate, rows: ReadonlyArray<A>) => Effect.Effect<void, SinkError, R>
  readonly complete: (partition: PartitionDate) => Effect.Effect<void, SinkError, R>
  /**
   * Optional: writes a stream of batches as one operation (e.g. one `COPY`), as `write` would
   * write each of them in turn. While it runs, nothing else may use the load's connection, so the
   * runner holds the partition's dead letters back and writes them between two such streams (it
   * ends a stream every so many records, see `Pipeline.make`'s `streamSize`).
   *
   * A wrapper that changes `write` must change `writeBatches` alike (or drop it): see
   * {@link tapBatches}.
   */
  readonly writeBatches?:
    | (<E>(
      partition: PartitionDate,
      batches: Stream.Stream<ReadonlyArray<A>, E>
    ) => Effect.Effect<void, SinkError | E, R>)
    | undefined
  /**
   * A per-record check the strategy needs before it can write a record (e.g. a non-null merge
   * key). The runner applies it to every decoded record; a record it rejects is dead-lettered
   * (stage `load`) like any other bad record, so loaded + dead-lettered = read still holds.
   */
  readonly check?: ((record: A) => RecordError | undefined) | undefined
}

/**
 * A sink that runs `f` on each batch before `self` writes it, on both write paths (`write` and
 * the streams of `writeBatches`): to count, observe or refuse batches. A failure of `f` fails
 * the write (for a stream, it ends the stream with that failure).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sink, SinkError } from "@sluice/core"
 *
 * declare const sink: Sink.Sink<{ readonly id: string }>
 * const atMost1000 = Sink.tapBatches(sink, (_, batch) =>
 *   batch.length <= 1000
 *     ? Effect.void
 *     : Effect.fail(new SinkError.SinkError({ operation: "write", message: "batch too large", retryable: false })))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const tapBatches = <A, R, R2>(
  self: Sink<A, R>,
  f: (partition: PartitionDate, batch: ReadonlyArray<A>) => Effect.Effect<void, SinkError, R2>
): Sink<A, R | R2> => {
  const writeBatches = self.writeBatches
  return {
    ...self,
    write: (partition, batch) => Effect.andThen(f(partition, batch), self.write(partition, batch)),
    writeBatches: writeBatches === undefined ? undefined : <E>(
      partition: PartitionDate,
      batches: Stream.Stream<ReadonlyArray<A>, E>
    ) =>
      Effect.flatMap(
        Effect.context<R2>(),
        (context) =>
          writeBatches(
            partition,
            Stream.tap(batches, (batch) => Effect.provideContext(f(partition, batch), context))
          )
      )
  }
}

/**
 * A stream of batches being written in the background (see {@link feed}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Feed<in A> {
  /**
   * Hands a batch to the writer, waiting while it is two batches behind. When the writer has
   * stopped, fails with its error (or dies, when it stopped reading without one).
   */
  readonly offer: (batch: ReadonlyArray<A>) => Effect.Effect<void, SinkError>
  /** Ends the stream: the writer finishes the batches it has. Does not wait for it. */
  readonly close: Effect.Effect<void>
  /** Waits for the writer's outcome (after {@link Feed.close}). */
  readonly await: Effect.Effect<void, SinkError>
  /** Stops the writer. */
  readonly interrupt: Effect.Effect<void>
}

/**
 * Starts `write` in the background over a stream of batches that the caller then feeds with
 * {@link Feed.offer} and ends with {@link Feed.close}: how the runner drives `writeBatches` while it
 * goes on reading and transforming.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Partition, Sink } from "@sluice/core"
 *
 * declare const sink: Sink.Sink<number>
 * const day = Partition.makeUnsafe("2024-03-01")
 * const program = Effect.gen(function*() {
 *   const feed = yield* Sink.feed(sink.target, (batches) => sink.writeBatches!(day, batches))
 *   yield* feed.offer([1, 2, 3])
 *   yield* feed.offer([4, 5])
 *   yield* feed.close
 *   yield* feed.await
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const feed = <A, R>(
  target: string,
  write: (batches: Stream.Stream<ReadonlyArray<A>>) => Effect.Effect<void, SinkError, R>
): Effect.Effect<Feed<A>, never, R> =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<ReadonlyArray<A>, Cause.Done>(2)
    const fiber = yield* Effect.forkChild(Effect.ensuring(write(Stream.fromQueue(queue)), Queue.shutdown(queue)))
    const outcome = Fiber.join(fiber)
    return {
      offer: (batch) =>
        Effect.flatMap(Queue.offer(queue, batch), (accepted) =>
          accepted ? Effect.void : Effect.andThen(
            outcome,
            Effect.die(new Error(`sink ${target} stopped reading its batches before their end`))
          )),
      close: Effect.asVoid(Queue.end(queue)),
      await: outcome,
      interrupt: Effect.asVoid(Fiber.interrupt(fiber))
    }
  })

/**
 * An in-memory partition-replacing sink, for tests: `rows` maps each partition to its rows.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sink } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const { sink, rows } = yield* Sink.memory<number>()
 *   return sink
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const memory = <A>() =>
  Effect.map(Ref.make<ReadonlyMap<PartitionDate, ReadonlyArray<A>>>(new Map()), (rows) => {
    const sink: Sink<A> = {
      target: "memory",
      prepare: (partition) =>
        Ref.update(rows, (m) => {
          const next = new Map(m)
          next.set(partition, [])
          return next
        }),
      write: (partition, batch) =>
        Ref.update(rows, (m) => {
          const next = new Map(m)
          next.set(partition, [...(m.get(partition) ?? []), ...batch])
          return next
        }),
      complete: () => Effect.void
    }
    return { sink, rows }
  })
