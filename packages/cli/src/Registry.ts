/**
 * The pipelines a CLI knows: each entry builds its pipeline from a source location and
 * prepares its tables (runs its migrations) before use.
 *
 * @since 0.1.0
 */
import type { Partition, Pipeline, SourceError } from "@sluice/core"
import type { Effect } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface PipelineEntry<R> {
  readonly name: string
  readonly description: string
  /** The source used when `--source` is not given. */
  readonly defaultSource: string
  /** The first partition of the pipeline, if it declares one. */
  readonly startDate?: Partition.PartitionDate | undefined
  /** Builds the pipeline reading from `source` (a folder or a URL). */
  readonly make: (source: string) => Effect.Effect<Pipeline.Pipeline<any, R>, SourceError.SourceError>
  /** Creates or migrates the pipeline's tables; idempotent. */
  readonly setup: Effect.Effect<void, unknown, R>
}

/**
 * Declares a pipeline entry (an identity function that checks the shape).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/cli"
 * import type { Pipeline } from "@sluice/core"
 *
 * declare const readings: (source: string) => Pipeline.Pipeline<{ id: string }>
 * const entry = Registry.entry({
 *   name: "readings",
 *   description: "Sensor readings",
 *   defaultSource: "data/readings",
 *   make: (source) => Effect.succeed(readings(source)),
 *   setup: Effect.void
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const entry = <R>(entry: PipelineEntry<R>): PipelineEntry<R> => entry

/**
 * A stream pipeline, as the batch commands know it: only its dead letters (`dlq list|show|discard|purge`).
 * It is run by commands of its own (e.g. `sluice stream`, `sluice replay`): `run`, `backfill`,
 * `status` and `dlq replay` refuse it with a usage error naming them.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamEntry<R> {
  readonly name: string
  readonly description: string
  /** The command that consumes it, named by the usage errors, e.g. `sluice stream order-stream`. */
  readonly consume: string
  /**
   * The command that reprocesses it (its dead letters included), named by the usage errors (`dlq
   * replay` first), e.g. `sluice replay order-stream --from-seq N`.
   */
  readonly replay: string
  /** Creates or migrates the tables its dead letters need; idempotent. */
  readonly setup: Effect.Effect<void, unknown, R>
}

/**
 * Declares a stream pipeline entry (an identity function that checks the shape).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/cli"
 *
 * const entry = Registry.streamEntry({
 *   name: "order-stream",
 *   description: "Order events from NATS",
 *   consume: "sluice stream order-stream",
 *   replay: "sluice replay order-stream --from-seq N",
 *   setup: Effect.void
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const streamEntry = <R>(entry: StreamEntry<R>): StreamEntry<R> => entry
