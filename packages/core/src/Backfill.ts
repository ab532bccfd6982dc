/**
 * Backfills: run a pipeline over many partitions, with bounded concurrency, continuing past failures.
 *
 * Planning (which partitions to run) is pure and lives in {@link plan}. Execution is behind the
 * {@link Backfill} service so that a durable executor (e.g. on effect/workflow + effect/cluster)
 * can replace the local one, {@link Backfill.layerLocal}, without changing callers.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { PartitionDate } from "./Partition.ts"
import * as Partition from "./Partition.ts"
import type { RunError, RunReport } from "./Pipeline.ts"
import type { RunRecord } from "./RunLedger.ts"

/**
 * The result of one partition of a backfill.
 *
 * @since 0.1.0
 * @category models
 */
export type PartitionOutcome =
  | { readonly _tag: "Succeeded"; readonly partition: PartitionDate; readonly report: RunReport }
  | {
    readonly _tag: "Failed"
    readonly partition: PartitionDate
    readonly errorType: string
    readonly error: string
  }

/**
 * @since 0.1.0
 * @category models
 */
export interface BackfillReport {
  readonly pipeline: string
  readonly outcomes: ReadonlyArray<PartitionOutcome>
  readonly succeeded: number
  readonly failed: number
  readonly alerted: number
}

/**
 * A backfill request. `runPartition` runs one partition; the executor decides where and when.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request<R> {
  readonly pipeline: string
  readonly partitions: ReadonlyArray<PartitionDate>
  readonly concurrency: number
  readonly runPartition: (partition: PartitionDate) => Effect.Effect<RunReport, RunError, R>
  readonly onOutcome?: ((outcome: PartitionOutcome) => Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type Mode = "all" | "only-failed" | "missing"

/**
 * The partitions of `start`..`end` to run: all of them, those whose latest run failed
 * (`only-failed`), or those never run successfully (`missing`: no run, or only failed ones).
 *
 * @example
 * ```ts
 * import { Backfill, Partition } from "@sluice/core"
 *
 * Backfill.plan({
 *   start: Partition.makeUnsafe("2024-01-01"),
 *   end: Partition.makeUnsafe("2024-01-31"),
 *   mode: "only-failed",
 *   latestRuns: []
 * }) // []
 * ```
 *
 * @since 0.1.0
 * @category planning
 */
export const plan = (options: {
  readonly start: PartitionDate
  readonly end: PartitionDate
  readonly mode: Mode
  readonly latestRuns: ReadonlyArray<RunRecord>
}): Array<PartitionDate> => {
  const all = Partition.range(options.start, options.end)
  if (options.mode === "all") return all
  const latest = new Map(options.latestRuns.map((r) => [r.partition as string, r]))
  return all.filter((p) => {
    const run = latest.get(p)
    return options.mode === "only-failed" ? run?.status === "failed" : run === undefined || run.status === "failed"
  })
}

const describe = (error: RunError): { readonly errorType: string; readonly error: string } => ({
  errorType: "reason" in error ? `${error._tag}.${error.reason._tag}` : error._tag,
  error: error.message
})

/**
 * Summarises outcomes into a report.
 *
 * @since 0.1.0
 * @category constructors
 */
export const report = (pipeline: string, outcomes: ReadonlyArray<PartitionOutcome>): BackfillReport => ({
  pipeline,
  outcomes,
  succeeded: outcomes.filter((o) => o._tag === "Succeeded").length,
  failed: outcomes.filter((o) => o._tag === "Failed").length,
  alerted: outcomes.filter((o) => o._tag === "Succeeded" && o.report.alerted).length
})

/**
 * The backfill executor.
 *
 * @since 0.1.0
 * @category services
 */
export class Backfill extends Context.Service<Backfill, {
  readonly run: <R>(request: Request<R>) => Effect.Effect<BackfillReport, never, R>
}>()("@sluice/core/Backfill") {
  /**
   * Runs partitions in this process, `concurrency` at a time, in date order; a failed partition
   * is recorded and the others go on. Outcomes are reported in partition order.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerLocal = Layer.succeed(
    Backfill,
    Backfill.of({
      run: Effect.fnUntraced(function*<R>(request: Request<R>) {
        const outcomes = yield* Effect.forEach(
          request.partitions,
          (partition) =>
            request.runPartition(partition).pipe(
              Effect.map((report): PartitionOutcome => ({ _tag: "Succeeded", partition, report })),
              Effect.catch((error) =>
                Effect.succeed<PartitionOutcome>({ _tag: "Failed", partition, ...describe(error) })
              ),
              Effect.tap((outcome) => request.onOutcome === undefined ? Effect.void : request.onOutcome(outcome))
            ),
          { concurrency: Math.max(1, request.concurrency) }
        )
        return report(request.pipeline, outcomes)
      })
    })
  )
}
