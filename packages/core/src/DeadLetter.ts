/**
 * Dead letters: records that could not be loaded, kept with their original payload and typed error.
 *
 * The {@link DeadLetterStore} contract is implemented in memory here (for tests) and in SQL by
 * `@sluice/sql` (table `sluice.dead_letters`). A partition's dead letters are replaced — not
 * appended — in the same transaction as its data, so re-runs never pile them up; a dead letter
 * keeps its id, status and attempts across runs (see {@link DeadLetterStore}).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Ref } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type { RecordError } from "./RecordError.ts"
import type { SinkError } from "./SinkError.ts"
import type { RawRecord } from "./Source.ts"

/**
 * A dead letter as written by a run.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly stage: string
  readonly position: number
  /** The raw payload, even when it is not valid JSON. */
  readonly originalRecord: string
  /** The error's tag, e.g. `InvalidJson`, `SchemaMismatch`, `RuleViolation`. */
  readonly errorType: string
  readonly error: string
  readonly failedAt: number
  readonly runId: string
}

/**
 * A flat copy of `text` that shares no memory with other strings. A source's lines can be slices of
 * the chunk they were read from, and V8 keeps the whole chunk alive while one slice is; an error
 * message is a tree of the pieces it was concatenated from. A dead letter can be held for a while
 * (until its stream of rows is written), so it keeps copies, not slices or trees. Slicing a
 * concatenation makes V8 flatten it into a new string first, a copy of the code units as they are
 * (lone surrogates included); the result is a slice of that copy alone. Measured against the JSON
 * round trip used before: 6–15 µs instead of 77–190 µs for a 50 kB line, and, after 20 slices of
 * 5 MB chunks were detached and the chunks dropped, nothing of them left on the heap either way.
 */
const detached = (text: string): string => (text + " ").slice(0, -1)

/**
 * Builds the dead letter of a record that failed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromRecordError = (options: {
  readonly pipeline: string
  readonly partition: PartitionDate
  readonly stage: string
  readonly runId: string
  readonly failedAt: number
  readonly record: RawRecord
  readonly error: RecordError
}): DeadLetter => ({
  pipeline: options.pipeline,
  partition: options.partition,
  stage: options.stage,
  position: options.record.position,
  originalRecord: detached(options.record.payload),
  errorType: options.error.errorType,
  error: detached(options.error.message),
  failedAt: options.failedAt,
  runId: options.runId
})

/**
 * The status of a stored dead letter:
 *
 * - `new`: the record still fails (its latest run of the partition dead-lettered it again);
 * - `replayed`: a later run of its partition no longer dead-lettered it: it loaded the record (e.g. a
 *   replay with fixed code), or its source no longer holds the record (a line removed from a fixed
 *   file; the run cannot tell the two apart);
 * - `discarded`: an operator gave up on it; kept for audit, excluded from counts.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "new" | "replayed" | "discarded"

/**
 * Every status, in lifecycle order.
 *
 * @since 0.1.0
 * @category models
 */
export const statuses: ReadonlyArray<Status> = ["new", "replayed", "discarded"]

/**
 * A stored dead letter, with its stable id, status and attempts (the runs that dead-lettered it).
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredDeadLetter extends DeadLetter {
  readonly id: string
  readonly status: Status
  readonly attempts: number
}

/**
 * Which dead letters of a pipeline an operation applies to. Unset fields do not filter.
 * `status` defaults to `["new", "discarded"]` in {@link DeadLetterStore} `list`: the dead
 * letters of the partitions as they stand.
 *
 * @since 0.1.0
 * @category models
 */
export interface Selection {
  readonly partition?: PartitionDate | undefined
  readonly errorType?: string | undefined
  readonly ids?: ReadonlyArray<string> | undefined
  readonly status?: ReadonlyArray<Status> | undefined
  /** Only positions in this range, both ends included (for a stream: its sequences). */
  readonly positions?: { readonly from: number; readonly to: number } | undefined
}

/**
 * A new failure of a dead letter that was re-tried without a run of its partition (see `Replay`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Attempt {
  readonly id: string
  readonly errorType: string
  readonly error: string
  readonly failedAt: number
}

/**
 * How many dead letters of one error type and status there are (see `DeadLetterStore.countByTypeAndStatus`).
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeStatusCount {
  readonly errorType: string
  readonly status: Status
  readonly count: number
}

/**
 * How many dead letters of one status a partition holds (see `DeadLetterStore.countByPartition`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PartitionCount {
  readonly partition: PartitionDate
  readonly status: Status
  readonly count: number
}

/**
 * Storage of dead letters. `clearPartition` and `write` are called inside the load transaction.
 *
 * **Details**
 *
 * A dead letter keeps its id across runs of its partition: `clearPartition` does not delete, it
 * sets the partition's dead letters aside as resolved; `write` matches each new dead letter to a
 * resolved one of the same pipeline, partition and original record, and takes it back (new error and
 * position, `attempts + 1`, status kept) instead of inserting it. The position is not part of the
 * match: a line added or removed above a bad line (a fixed source file) moves it, and its dead letter
 * keeps its id and status (a discarded one stays discarded). The k-th copy of a record written, by
 * position, takes the k-th resolved one, by position and id. A resolved dead letter that no
 * run wrote again is a record that now loads: its status reads `replayed`. So ids, statuses and
 * attempts survive `Pipeline.run` clearing and re-writing a partition's dead letters, in the same
 * transaction as the data (a rolled-back run changes nothing).
 *
 * `countByType` counts `new` dead letters unless its selection's `status` says otherwise.
 *
 * @since 0.1.0
 * @category services
 */
export class DeadLetterStore extends Context.Service<DeadLetterStore, {
  readonly clearPartition: (pipeline: string, partition: PartitionDate) => Effect.Effect<void, SinkError>
  readonly write: (deadLetters: ReadonlyArray<DeadLetter>) => Effect.Effect<void, SinkError>
  /** Dead letters in partition, position and id order. */
  readonly list: (
    pipeline: string,
    options?: Selection & { readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<StoredDeadLetter>, SinkError>
  readonly get: (pipeline: string, id: string) => Effect.Effect<Option.Option<StoredDeadLetter>, SinkError>
  /** Counts the selected dead letters by error type (`new` ones unless `status` says otherwise). */
  readonly countByType: (
    pipeline: string,
    options?: Selection
  ) => Effect.Effect<ReadonlyArray<{ readonly errorType: string; readonly count: number }>, SinkError>
  /**
   * Counts the selected dead letters by error type and status (`new` ones unless `status` says
   * otherwise), in one read: in {@link statuses} order (`new`, `replayed`, `discarded`), then by
   * count descending and error type, as `countByType` orders each status's counts.
   */
  readonly countByTypeAndStatus: (
    pipeline: string,
    options?: Selection
  ) => Effect.Effect<ReadonlyArray<TypeStatusCount>, SinkError>
  /**
   * Counts the selected dead letters by partition and status (`new` ones unless `status` says
   * otherwise), in partition then status order: what a calendar needs, without loading a payload.
   */
  readonly countByPartition: (
    pipeline: string,
    options?: Selection
  ) => Effect.Effect<ReadonlyArray<PartitionCount>, SinkError>
  /** Marks the selected `new` dead letters `discarded`; returns how many. */
  readonly discard: (pipeline: string, selection: Selection) => Effect.Effect<number, SinkError>
  /**
   * Sets the selected `new` and `discarded` dead letters aside as resolved (they read `replayed`), as
   * `clearPartition` does for a partition: a later `write` of the same record takes its row back.
   * Returns how many. E.g. a stream replay supersedes the dead letters of the range it reprocessed.
   */
  readonly resolve: (pipeline: string, selection: Selection) => Effect.Effect<number, SinkError>
  /**
   * Deletes every dead letter of a pipeline, whatever its status; returns how many. E.g. the dead
   * letters a failed stream replay wrote under a name of its own.
   */
  readonly remove: (pipeline: string) => Effect.Effect<number, SinkError>
  /**
   * The pipelines that have dead letters (of any status, `replayed` included) whose name starts with
   * `prefix`, in code-unit order. E.g. the names of stream replays (`order-stream@replay-`) whose dead
   * letters are still in the store.
   */
  readonly pipelines: (prefix: string) => Effect.Effect<ReadonlyArray<string>, SinkError>
  /** Records a new failure of each dead letter: its error, `attempts + 1`. */
  readonly recordAttempts: (pipeline: string, attempts: ReadonlyArray<Attempt>) => Effect.Effect<void, SinkError>
  /**
   * Deletes the dead letters whose last failure is before `before` (epoch millis), of one pipeline or
   * all, with one of `statuses`; returns how many.
   */
  readonly purge: (options: {
    readonly pipeline?: string | undefined
    readonly before: number
    readonly statuses: ReadonlyArray<Status>
  }) => Effect.Effect<number, SinkError>
}>()("@sluice/core/DeadLetterStore") {
  /**
   * An in-memory store, for tests of pipelines that need no database.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory = Layer.effect(
    DeadLetterStore,
    Effect.gen(function*() {
      interface Row extends StoredDeadLetter {
        /** Cleared by a run of its partition and not written again: the record loads (`replayed`). */
        readonly resolved: boolean
      }
      const ref = yield* Ref.make<ReadonlyArray<Row>>([])
      let nextId = 1
      const effective = (d: Row): Status => d.resolved ? "replayed" : d.status
      const toStored = ({ resolved, ...d }: Row): StoredDeadLetter => ({
        ...d,
        status: resolved ? "replayed" : d.status
      })
      const matches = (pipeline: string, selection: Selection, defaultStatus: ReadonlyArray<Status>) => (d: Row) =>
        d.pipeline === pipeline &&
        (selection.partition === undefined || d.partition === selection.partition) &&
        (selection.errorType === undefined || d.errorType === selection.errorType) &&
        (selection.ids === undefined || selection.ids.includes(d.id)) &&
        (selection.positions === undefined ||
          (d.position >= selection.positions.from && d.position <= selection.positions.to)) &&
        (selection.status ?? defaultStatus).includes(effective(d))
      const byOrder = (a: Row, b: Row) =>
        a.partition.localeCompare(b.partition) || a.position - b.position || Number(a.id) - Number(b.id)
      return DeadLetterStore.of({
        clearPartition: (pipeline, partition) =>
          Ref.update(
            ref,
            (all) => all.map((d) => d.pipeline === pipeline && d.partition === partition ? { ...d, resolved: true } : d)
          ),
        write: (deadLetters) =>
          Ref.update(ref, (all) => {
            const rows = [...all]
            // a record's resolved rows, by position and id: its k-th copy by position takes the k-th
            const key = (d: DeadLetter) => JSON.stringify([d.pipeline, d.partition, d.originalRecord])
            const resolved = new Map<string, { readonly rows: Array<number>; next: number }>()
            for (const [i, r] of rows.entries()) {
              if (!r.resolved) continue
              const k = key(r)
              const found = resolved.get(k)
              if (found === undefined) resolved.set(k, { rows: [i], next: 0 })
              else found.rows.push(i)
            }
            for (const found of resolved.values()) found.rows.sort((i, j) => byOrder(rows[i]!, rows[j]!))
            const taken = new Map<number, number>()
            const copies = deadLetters.map((d, n) => ({ d, n })).sort((a, b) =>
              a.d.position - b.d.position || a.n - b.n
            )
            for (const { d, n } of copies) {
              const found = resolved.get(key(d))
              const i = found?.rows[found.next]
              if (found !== undefined && i !== undefined) {
                taken.set(n, i)
                found.next++
              }
            }
            for (const [n, d] of deadLetters.entries()) {
              const i = taken.get(n)
              const old = i === undefined ? undefined : rows[i]
              if (i !== undefined && old !== undefined) {
                rows[i] = { ...old, ...d, resolved: false, attempts: old.attempts + 1 }
              } else rows.push({ ...d, id: String(nextId++), status: "new", attempts: 1, resolved: false })
            }
            return rows
          }),
        list: (pipeline, options) =>
          Effect.map(Ref.get(ref), (all) => {
            const ds = all.filter(matches(pipeline, options ?? {}, ["new", "discarded"])).sort(byOrder).map(toStored)
            return ds.slice(0, Math.max(0, options?.limit ?? ds.length))
          }),
        get: (pipeline, id) =>
          Effect.map(Ref.get(ref), (all) => {
            const found = all.find((d) => d.pipeline === pipeline && d.id === id)
            return found === undefined ? Option.none() : Option.some(toStored(found))
          }),
        countByType: (pipeline, options) =>
          Effect.map(Ref.get(ref), (all) => {
            const counts = new Map<string, number>()
            for (const d of all.filter(matches(pipeline, options ?? {}, ["new"]))) {
              counts.set(d.errorType, (counts.get(d.errorType) ?? 0) + 1)
            }
            return [...counts].map(([errorType, count]) => ({ errorType, count }))
              .sort((a, b) => b.count - a.count || a.errorType.localeCompare(b.errorType))
          }),
        countByTypeAndStatus: (pipeline, options) =>
          Effect.map(Ref.get(ref), (all) => {
            const counts = new Map<string, TypeStatusCount>()
            for (const d of all.filter(matches(pipeline, options ?? {}, ["new"]))) {
              const status = effective(d)
              const key = `${status} ${d.errorType}`
              counts.set(key, { errorType: d.errorType, status, count: (counts.get(key)?.count ?? 0) + 1 })
            }
            return [...counts.values()].sort((a, b) =>
              statuses.indexOf(a.status) - statuses.indexOf(b.status) || b.count - a.count ||
              a.errorType.localeCompare(b.errorType)
            )
          }),
        countByPartition: (pipeline, options) =>
          Effect.map(Ref.get(ref), (all) => {
            const counts = new Map<string, PartitionCount>()
            for (const d of all.filter(matches(pipeline, options ?? {}, ["new"]))) {
              const status = effective(d)
              const key = `${d.partition} ${status}`
              const found = counts.get(key)
              counts.set(key, { partition: d.partition, status, count: (found?.count ?? 0) + 1 })
            }
            return [...counts.values()].sort((a, b) =>
              a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : a.status.localeCompare(b.status)
            )
          }),
        discard: (pipeline, selection) =>
          Ref.modify(ref, (all) => {
            const selected = matches(pipeline, { ...selection, status: ["new"] }, ["new"])
            let n = 0
            const next = all.map((d) => {
              if (!selected(d)) return d
              n++
              return { ...d, status: "discarded" as const }
            })
            return [n, next]
          }),
        resolve: (pipeline, selection) =>
          Ref.modify(ref, (all) => {
            const selected = matches(pipeline, { ...selection, status: ["new", "discarded"] }, ["new", "discarded"])
            let n = 0
            const next = all.map((d) => {
              if (!selected(d)) return d
              n++
              return { ...d, resolved: true }
            })
            return [n, next]
          }),
        remove: (pipeline) =>
          Ref.modify(ref, (all) => {
            const kept = all.filter((d) => d.pipeline !== pipeline)
            return [all.length - kept.length, kept]
          }),
        pipelines: (prefix) =>
          Effect.map(
            Ref.get(ref),
            (all) => [...new Set(all.map((d) => d.pipeline).filter((p) => p.startsWith(prefix)))].sort()
          ),
        recordAttempts: (pipeline, attempts) =>
          Ref.update(ref, (all) =>
            all.map((d) => {
              const attempt = d.pipeline === pipeline ? attempts.find((a) => a.id === d.id) : undefined
              return attempt === undefined ? d : {
                ...d,
                errorType: attempt.errorType,
                error: attempt.error,
                failedAt: attempt.failedAt,
                attempts: d.attempts + 1
              }
            })),
        purge: (options) =>
          Ref.modify(ref, (all) => {
            const doomed = (d: Row) =>
              (options.pipeline === undefined || d.pipeline === options.pipeline) && d.failedAt < options.before &&
              options.statuses.includes(effective(d))
            const kept = all.filter((d) => !doomed(d))
            return [all.length - kept.length, kept]
          })
      })
    })
  )
}

/**
 * Makes the dead letters a reprocessing wrote under a name of its own (e.g. a stream replay's
 * `order-stream@replay-<id>`) the pipeline's, superseding the pipeline's own for what was
 * reprocessed: in one step (run it in the transaction that publishes the reprocessed data),
 *
 * 1. the pipeline's `new` and `discarded` dead letters selected by `supersedes` (e.g. the replayed
 *    range of sequences) are resolved (`DeadLetterStore.resolve`);
 * 2. the reprocessing's dead letters are written as the pipeline's: one of a record that was a dead
 *    letter already takes its row back (its id and status, `discarded` included; `attempts + 1`), the
 *    others are new; a superseded dead letter no longer written reads `replayed` (its record loads);
 * 3. the reprocessing's own are removed.
 *
 * Returns how many were superseded and how many adopted.
 *
 * @example
 * ```ts
 * import { DeadLetter } from "@sluice/core"
 *
 * const adopt = DeadLetter.adopt({
 *   from: "order-stream@replay-1a2b3c4d",
 *   to: "order-stream",
 *   supersedes: { positions: { from: 1, to: 500 } }
 * })
 * ```
 *
 * @since 0.1.0
 * @category lifecycle
 */
export const adopt = Effect.fn("DeadLetter.adopt")(function*(options: {
  readonly from: string
  readonly to: string
  readonly supersedes: Selection
}) {
  const store = yield* DeadLetterStore
  const superseded = yield* store.resolve(options.to, options.supersedes)
  const letters = yield* store.list(options.from, { status: ["new", "discarded"] })
  yield* store.write(letters.map((d): DeadLetter => ({
    pipeline: options.to,
    partition: d.partition,
    stage: d.stage,
    position: d.position,
    originalRecord: d.originalRecord,
    errorType: d.errorType,
    error: d.error,
    failedAt: d.failedAt,
    runId: d.runId
  })))
  yield* store.remove(options.from)
  return { superseded, adopted: letters.length }
})
