/**
 * Failures of a source (the extract stage), each a type that knows whether a retry may help.
 *
 * Transient reasons — a timeout, a refused or reset connection, an HTTP 429 or 5xx — are retried
 * on the pipeline's `RetryPolicy`. Permanent reasons — an HTTP 4xx, a missing file, a malformed
 * configuration, an unreadable response — are never retried. The decision is made by the reason's
 * type (`isRetryable`), never by matching message strings.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

const ReasonTypeId = "~@sluice/core/SourceError/Reason" as const

const fields = { message: Schema.String }

/**
 * The source did not answer in time.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Timeout extends Schema.TaggedError<Timeout>("@sluice/core/SourceError/Timeout")("Timeout", fields) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The connection to the source was refused.
 *
 * @since 0.1.0
 * @category reasons
 */
export class ConnectionRefused
  extends Schema.TaggedError<ConnectionRefused>("@sluice/core/SourceError/ConnectionRefused")(
    "ConnectionRefused",
    fields
  )
{
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The connection was reset or closed while reading.
 *
 * @since 0.1.0
 * @category reasons
 */
export class ConnectionReset
  extends Schema.TaggedError<ConnectionReset>("@sluice/core/SourceError/ConnectionReset")("ConnectionReset", fields)
{
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The source answered with a non-success HTTP status. 429 and 5xx are transient; other codes are permanent.
 *
 * @since 0.1.0
 * @category reasons
 */
export class HttpStatus extends Schema.TaggedError<HttpStatus>("@sluice/core/SourceError/HttpStatus")("HttpStatus", {
  ...fields,
  status: Schema.Int
}) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.status === 429 || this.status >= 500
  }
}

/**
 * The partition's data does not exist (a missing file, a 404 for a whole partition). Permanent.
 *
 * @since 0.1.0
 * @category reasons
 */
export class NotFound extends Schema.TaggedError<NotFound>("@sluice/core/SourceError/NotFound")("NotFound", fields) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return false
  }
}

/**
 * The source is misconfigured (bad URL, bad path, bad option). Permanent.
 *
 * @since 0.1.0
 * @category reasons
 */
export class MalformedConfig
  extends Schema.TaggedError<MalformedConfig>("@sluice/core/SourceError/MalformedConfig")("MalformedConfig", fields)
{
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return false
  }
}

/**
 * The source answered, but its answer cannot be read as records at all (e.g. a body that is
 * neither JSON Lines nor a JSON array). Individual bad records are not this: they are dead-lettered. Permanent.
 *
 * @since 0.1.0
 * @category reasons
 */
export class InvalidResponse
  extends Schema.TaggedError<InvalidResponse>("@sluice/core/SourceError/InvalidResponse")("InvalidResponse", fields)
{
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return false
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export const SourceErrorReason = Schema.Union([
  Timeout,
  ConnectionRefused,
  ConnectionReset,
  HttpStatus,
  NotFound,
  MalformedConfig,
  InvalidResponse
])

/**
 * @since 0.1.0
 * @category models
 */
export type SourceErrorReason = typeof SourceErrorReason.Type

/**
 * A failure of the extract stage.
 *
 * @example
 * ```ts
 * import { SourceError } from "@sluice/core"
 *
 * const error = new SourceError.SourceError({
 *   source: "http://orders.local",
 *   reason: new SourceError.HttpStatus({ status: 503, message: "Service Unavailable" })
 * })
 * error.isRetryable // true
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceError extends Schema.TaggedError<SourceError>("@sluice/core/SourceError")("SourceError", {
  source: Schema.String,
  reason: SourceErrorReason
}) {
  override readonly cause = this.reason
  override get message(): string {
    return `${this.source}: ${this.reason._tag}: ${this.reason.message}`
  }
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isSourceError = (u: unknown): u is SourceError => Predicate.isTagged(u, "SourceError")

/**
 * Whether an error is a source failure that a retry may fix.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (u: unknown): boolean => isSourceError(u) && u.isRetryable
