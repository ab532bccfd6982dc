/**
 * Failures of the load stage (the sink, the ledgers, the transaction around them).
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

/**
 * A write to the target store failed; the load transaction was rolled back, so the
 * partition's previous data is intact.
 *
 * @example
 * ```ts
 * import { SinkError } from "@sluice/core"
 *
 * new SinkError.SinkError({ operation: "insert raw.orders", message: "connection lost", retryable: true })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SinkError extends Schema.TaggedError<SinkError>("@sluice/core/SinkError")("SinkError", {
  operation: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.optional(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.retryable
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isSinkError = (u: unknown): u is SinkError => Predicate.isTagged(u, "SinkError")
