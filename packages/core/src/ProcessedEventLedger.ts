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
  /**
   * Claims business keys as `claim` claims event ids (`eventId` is the key), with one difference: a
   * key already claimed by the same message (same `stream` and `sequence`) is returned too. A
   * message applied again keeps its key — the live consumer re-applying an event a stream replay
   * applied — while another message carrying the key (a re-sent record) does not get it.
   */
  readonly claimKeys: (
    pipeline: string,
    keys: ReadonlyArray<ProcessedEvent>,
    processedAt: number
  ) => Effect.Effect<ReadonlySet<string>, SinkError>
  /**
   * Makes `to`'s entries those of `from`: deletes `to`'s, then moves `from`'s under `to` (keeping when
   * and by which message each was claimed); returns how many moved. E.g. at a stream replay's switch,
   * the business keys the replay claimed become the live pipeline's.
   */
  readonly replace: (from: string, to: string) => Effect.Effect<number, SinkError>
  /**
   * Adds `from`'s entries to `to`'s: moves under `to` those `to` does not hold (keeping when and by which
   * message each was claimed), drops the others (`to`'s claim stays), so that `from` holds none; returns
   * how many moved. E.g. at a stream replay's switch, the event ids the replay applied become the live
   * pipeline's: the live consumer resuming behind them skips them instead of applying them again.
   */
  readonly merge: (from: string, to: string) => Effect.Effect<number, SinkError>
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
    // pipeline -> event id -> when and by which message it was claimed
    Effect.map(Ref.make<ReadonlyMap<string, ReadonlyMap<string, Claimed>>>(new Map()), (ref) => {
      const claimWith =
        (sameMessageKeeps: boolean) => (pipeline: string, events: ReadonlyArray<ProcessedEvent>, processedAt: number) =>
          Ref.modify(ref, (all) => {
            const seen = new Map(all.get(pipeline) ?? [])
            const claimed = new Set<string>()
            for (const e of events) {
              const found = seen.get(e.eventId)
              if (found === undefined) {
                seen.set(e.eventId, { at: processedAt, stream: e.stream, sequence: e.sequence })
                claimed.add(e.eventId)
              } else if (sameMessageKeeps && found.stream === e.stream && found.sequence === e.sequence) {
                claimed.add(e.eventId)
              }
            }
            const next = new Map(all)
            next.set(pipeline, seen)
            return [claimed as ReadonlySet<string>, next] as const
          })
      return ProcessedEventLedger.of({
        claim: claimWith(false),
        claimKeys: claimWith(true),
        replace: (from, to) =>
          Ref.modify(ref, (all) => {
            const moved = all.get(from) ?? new Map<string, Claimed>()
            const next = new Map(all)
            next.delete(from)
            next.set(to, moved)
            return [moved.size, next] as const
          }),
        merge: (from, to) =>
          Ref.modify(ref, (all) => {
            if (from === to) return [0, all] as const
            const merged = new Map(all.get(to) ?? [])
            let moved = 0
            for (const [id, claimed] of all.get(from) ?? []) {
              if (merged.has(id)) continue
              merged.set(id, claimed)
              moved++
            }
            const next = new Map(all)
            next.delete(from)
            next.set(to, merged)
            return [moved, next] as const
          }),
        count: (pipeline) => Effect.map(Ref.get(ref), (all) => all.get(pipeline)?.size ?? 0),
        summary: (pipeline) =>
          Effect.map(Ref.get(ref), (all): Summary => {
            let first: number | undefined
            let last: number | undefined
            const seen = all.get(pipeline) ?? new Map<string, Claimed>()
            for (const { at } of seen.values()) {
              if (first === undefined || at < first) first = at
              if (last === undefined || at > last) last = at
            }
            return { events: seen.size, firstProcessedAt: first, lastProcessedAt: last }
          }),
        purge: (pipeline, olderThan) =>
          Ref.modify(ref, (all) => {
            const cutoff = olderThan.getTime()
            let purged = 0
            const next = new Map<string, ReadonlyMap<string, Claimed>>()
            for (const [name, seen] of all) {
              if (pipeline !== undefined && name !== pipeline && !name.startsWith(`${pipeline}#`)) {
                next.set(name, seen)
                continue
              }
              const kept = new Map<string, Claimed>()
              for (const [id, claimed] of seen) {
                if (claimed.at < cutoff) purged++
                else kept.set(id, claimed)
              }
              next.set(name, kept)
            }
            return [purged, next] as const
          })
      })
    })
  )
}

/** When, and by which message, the memory ledger's entry was claimed. */
interface Claimed {
  readonly at: number
  readonly stream: string
  readonly sequence: number
}
