/**
 * The unit of work of a load: everything a run writes for a partition — its rows, its dead
 * letters, its derived tables — commits together or not at all.
 *
 * `@sluice/sql` implements it with a database transaction (rolled back on failure or interruption).
 *
 * @since 0.1.0
 */
import { Context, type Effect, Layer } from "effect"
import type { SinkError } from "./SinkError.ts"

/**
 * @since 0.1.0
 * @category services
 */
export class Transactor extends Context.Service<Transactor, {
  readonly withTransaction: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SinkError, R>
}>()("@sluice/core/Transactor") {
  /**
   * No transaction at all: writes happen as they are made. Only for in-memory tests of
   * pipeline logic; atomicity is a property of the SQL layer and is tested there.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerNone = Layer.succeed(Transactor, Transactor.of({ withTransaction: (self) => self }))
}
