/**
 * The processed-event ledger: which events of an at-least-once source a pipeline has already applied.
 *
 * A streaming run claims the ids of a micro-batch's events in the same transaction as their effects
 * (rows and dead letters). An event whose id is already claimed — a redelivery, or a duplicate the
 * producer sent twice — is skipped, so the effects are applied exactly once.
 *
 * `@sluice/sql` implements it on table `sluice.processed_events`; {@link ProcessedEventLedger.layerMemory}
 * is for tests that need no database.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Ref } from "effect"
import type { SinkError } from "./SinkError.ts"

/**
 * An event to claim: its id, and where it came from (for audit).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcessedEvent {
  readonly eventId: string
  readonly stream: string
  readonly sequence: number
}

/**
 * What the ledger knows of one pipeline (or of its business keys, `<pipeline>#key`): how many
 * entries it holds and when the oldest and the latest were claimed (epoch millis; `undefined` when
 * it holds none). Entries purged by `purge` are not counted.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly events: number
  readonly firstProcessedAt: number | undefined
  readonly lastProcessedAt: number | undefined
}

/**
 * The ledger. `claim` runs inside the batch's transaction and returns the ids it claimed now
 * (those not claimed before); it is rolled back with the batch.
 *
 * `purge(pipeline, olderThan)` is the ledger's retention: it deletes the entries claimed before
 * `olderThan` (of every pipeline when `pipeline` is `undefined`; a pipeline's purge includes its
 * business keys, claimed under `<pipeline>#key`) and returns how many it deleted. The trade-off: an
 * event whose id was purged is processed again if the source redelivers it, and a record whose key
 * was purged is applied again if it is re-sent. Choose a retention longer than the stream's max age
 * (its redelivery horizon) and than how late a re-sent record can come.
 *
 * `summary(pipeline)` says what it holds of exactly that name ({@link Summary}): e.g. the events a
 * stream pipeline has processed and when it last processed one (`sluice serve` shows it).
 *
 * @since 0.1.0
 * @category services
 */
export class ProcessedEventLedger extends Context.Service<ProcessedEventLedger, {
  readonly claim: (
    pipeline: string,
    events: ReadonlyArray<ProcessedEvent>,
    processedAt: number
  ) => Effect.Effect<ReadonlySet<string>, SinkError>
  readonly count: (pipeline: string) => Effect.Effect<number, SinkError>
  readonly summary: (pipeline: string) => Effect.Effect<Summary, SinkError>
  readonly purge: (pipeline: string | undefined, olderThan: Date) => Effect.Effect<number, SinkError>
}>()("@sluice/core/ProcessedEventLedger") {
  /**
   * An in-memory ledger (not transactional), for tests of streaming logic without a database.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { ProcessedEventLedger } from "@sluice/core"
   *
   * const program = Effect.gen(function*() {
   *   const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
   *   return yield* ledger.claim("p", [{ eventId: "a", stream: "S", sequence: 1 }], 0) // Set { "a" }
   * }).pipe(Effect.provide(ProcessedEventLedger.ProcessedEventLedger.layerMemory))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory = Layer.effect(
    ProcessedEventLedger,
    // pipeline -> event id -> when it was claimed (epoch millis)
    Effect.map(Ref.make<ReadonlyMap<string, ReadonlyMap<string, number>>>(new Map()), (ref) =>
      ProcessedEventLedger.of({
        claim: (pipeline, events, processedAt) =>
          Ref.modify(ref, (all) => {
            const seen = new Map(all.get(pipeline) ?? [])
            const claimed = new Set<string>()
            for (const e of events) {
              if (!seen.has(e.eventId)) {
                seen.set(e.eventId, processedAt)
                claimed.add(e.eventId)
              }
            }
            const next = new Map(all)
            next.set(pipeline, seen)
            return [claimed, next] as const
          }),
        count: (pipeline) => Effect.map(Ref.get(ref), (all) => all.get(pipeline)?.size ?? 0),
        summary: (pipeline) =>
          Effect.map(Ref.get(ref), (all): Summary => {
            let first: number | undefined
            let last: number | undefined
            const seen = all.get(pipeline) ?? new Map<string, number>()
            for (const at of seen.values()) {
              if (first === undefined || at < first) first = at
              if (last === undefined || at > last) last = at
            }
            return { events: seen.size, firstProcessedAt: first, lastProcessedAt: last }
          }),
        purge: (pipeline, olderThan) =>
          Ref.modify(ref, (all) => {
            const cutoff = olderThan.getTime()
            let purged = 0
            const next = new Map<string, ReadonlyMap<string, number>>()
            for (const [name, seen] of all) {
              if (pipeline !== undefined && name !== pipeline && !name.startsWith(`${pipeline}#`)) {
                next.set(name, seen)
                continue
              }
              const kept = new Map<string, number>()
              for (const [id, at] of seen) {
                if (at < cutoff) purged++
                else kept.set(id, at)
              }
              next.set(name, kept)
            }
            return [purged, next] as const
          })
      }))
  )
}
