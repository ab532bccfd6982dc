/**
 * The run ledger: one row per run of a pipeline over a partition, with its status and counts.
 *
 * Implemented in memory here and in SQL by `@sluice/sql` (table `sluice.runs`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Ref } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { SinkError } from "./SinkError.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type RunStatus = "running" | "succeeded" | "failed"

/**
 * The counts of a run: records read, loaded and dead-lettered, retries, and the failure rate.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunCounts {
  readonly read: number
  readonly loaded: number
  readonly deadLettered: number
  readonly retries: number
  readonly failureRate: number
  /** The failure rate exceeded the pipeline's threshold. */
  readonly alerted: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOutcome extends RunCounts {
  readonly status: Exclude<RunStatus, "running">
  readonly endedAt: number
  readonly errorType?: string | undefined
  readonly error?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunRecord extends RunCounts {
  readonly runId: string
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly status: RunStatus
  readonly startedAt: number
  readonly endedAt: number | undefined
  readonly errorType: string | undefined
  readonly error: string | undefined
}

/**
 * The error type of a run closed by {@link RunLedger} `markAbandoned` (or by the start of a later run
 * of its partition): its process ended without finishing it.
 *
 * @since 0.1.0
 * @category models
 */
export const abandonedErrorType = "Abandoned"

/**
 * @since 0.1.0
 * @category services
 */
export class RunLedger extends Context.Service<RunLedger, {
  readonly start: (
    run: {
      readonly runId: string
      readonly pipeline: string
      readonly partition: PartitionDate
      readonly startedAt: number
    }
  ) => Effect.Effect<void, SinkError>
  readonly finish: (runId: string, outcome: RunOutcome) => Effect.Effect<void, SinkError>
  /**
   * Closes a run left `running` by a process that died (no one holds its partition lock): it becomes
   * `failed` with error type {@link abandonedErrorType}. A run that is no longer running is left as
   * it is; the result says whether the run was closed.
   *
   * @since 0.1.0
   */
  readonly markAbandoned: (
    runId: string,
    abandoned: { readonly endedAt: number; readonly error: string }
  ) => Effect.Effect<boolean, SinkError>
  /** Every run of a pipeline, newest first, optionally within a date range. */
  readonly list: (
    pipeline: string,
    options?: { readonly start?: PartitionDate | undefined; readonly end?: PartitionDate | undefined }
  ) => Effect.Effect<ReadonlyArray<RunRecord>, SinkError>
  /** The latest run of each partition of a pipeline, ordered by partition. */
  readonly latest: (pipeline: string) => Effect.Effect<ReadonlyArray<RunRecord>, SinkError>
}>()("@sluice/core/RunLedger") {
  /**
   * An in-memory ledger, for tests that need no database.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory = Layer.effect(
    RunLedger,
    Effect.gen(function*() {
      const ref = yield* Ref.make<ReadonlyArray<RunRecord>>([])
      const list = (
        pipeline: string,
        options?: { readonly start?: PartitionDate | undefined; readonly end?: PartitionDate | undefined }
      ) =>
        Effect.map(
          Ref.get(ref),
          (runs) =>
            runs.filter((r) =>
              r.pipeline === pipeline && (options?.start === undefined || r.partition >= options.start) &&
              (options?.end === undefined || r.partition <= options.end)
            ).reverse()
        )
      return RunLedger.of({
        // the caller holds the partition lock: a run of the partition still running is abandoned
        start: (run) =>
          Ref.update(ref, (runs) => [
            ...runs.map((r) =>
              r.pipeline === run.pipeline && r.partition === run.partition && r.status === "running"
                ? {
                  ...r,
                  status: "failed" as const,
                  endedAt: run.startedAt,
                  errorType: abandonedErrorType,
                  error: `abandoned: still running when run ${run.runId} started`
                }
                : r
            ),
            {
              ...run,
              status: "running" as const,
              read: 0,
              loaded: 0,
              deadLettered: 0,
              retries: 0,
              failureRate: 0,
              alerted: false,
              endedAt: undefined,
              errorType: undefined,
              error: undefined
            }
          ]),
        finish: (runId, outcome) =>
          Ref.update(
            ref,
            (runs) =>
              runs.map((r) =>
                r.runId === runId ? { ...r, ...outcome, errorType: outcome.errorType, error: outcome.error } : r
              )
          ),
        markAbandoned: (runId, abandoned) =>
          Ref.modify(ref, (runs) => {
            const found = runs.some((r) => r.runId === runId && r.status === "running")
            return [
              found,
              found
                ? runs.map((r) =>
                  r.runId === runId
                    ? {
                      ...r,
                      status: "failed" as const,
                      endedAt: abandoned.endedAt,
                      errorType: abandonedErrorType,
                      error: abandoned.error
                    }
                    : r
                )
                : runs
            ]
          }),
        list,
        latest: (pipeline) =>
          Effect.map(list(pipeline), (runs) => {
            const byPartition = new Map<string, RunRecord>()
            for (const run of runs) if (!byPartition.has(run.partition)) byPartition.set(run.partition, run)
            return [...byPartition.values()].sort((a, b) => a.partition.localeCompare(b.partition))
          })
      })
    })
  )
}
