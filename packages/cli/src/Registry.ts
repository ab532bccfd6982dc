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
