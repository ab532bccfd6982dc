/**
 * Failures of a single record in the transform stage.
 *
 * A record error never fails a run: the record leaves through the typed error channel into the
 * dead letter queue with its original payload. The reason's tag is the dead letter's `error_type`.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

/**
 * The payload is not parseable at all (invalid or truncated JSON).
 *
 * @since 0.1.0
 * @category reasons
 */
export class InvalidJson extends Schema.TaggedError<InvalidJson>("@sluice/core/RecordError/InvalidJson")(
  "InvalidJson",
  { message: Schema.String }
) {}

/**
 * The record's bytes are not valid UTF-8 (a lone `0xFF`, a truncated multi-byte sequence, an
 * overlong encoding, an encoded UTF-16 surrogate…): it cannot be read as text without altering it.
 * `bytes` are the record's original bytes; its dead letter's original record is their readable,
 * reversible escape (`Utf8.escape`: invalid bytes as `\xHH`).
 *
 * @since 0.1.0
 * @category reasons
 */
export class InvalidEncoding extends Schema.TaggedError<InvalidEncoding>("@sluice/core/RecordError/InvalidEncoding")(
  "InvalidEncoding",
  { bytes: Schema.Uint8Array, message: Schema.String }
) {}

/**
 * The payload parsed but does not match the record schema (missing field, wrong type, not an object…).
 *
 * @since 0.1.0
 * @category reasons
 */
export class SchemaMismatch extends Schema.TaggedError<SchemaMismatch>("@sluice/core/RecordError/SchemaMismatch")(
  "SchemaMismatch",
  { message: Schema.String }
) {}

/**
 * The record is well-formed but breaks a business rule (e.g. its date is outside the partition).
 *
 * @since 0.1.0
 * @category reasons
 */
export class RuleViolation extends Schema.TaggedError<RuleViolation>("@sluice/core/RecordError/RuleViolation")(
  "RuleViolation",
  { rule: Schema.String, message: Schema.String }
) {}

/**
 * A record whose key was already seen in the same partition: loading it would duplicate or
 * silently overwrite the first one, so it is dead-lettered instead.
 *
 * @since 0.1.0
 * @category reasons
 */
export class DuplicateKey extends Schema.TaggedError<DuplicateKey>("@sluice/core/RecordError/DuplicateKey")(
  "DuplicateKey",
  { key: Schema.String, message: Schema.String }
) {}

/**
 * A record whose key (or part of it) is null or missing: a write strategy that merges by key
 * cannot place it, and loading it anyway would create a duplicate on every run.
 *
 * @since 0.1.0
 * @category reasons
 */
export class MissingKey extends Schema.TaggedError<MissingKey>("@sluice/core/RecordError/MissingKey")(
  "MissingKey",
  { columns: Schema.Array(Schema.String), message: Schema.String }
) {}

/**
 * A record that does not fit its table's contract (see `Contract`): a field the table has no column
 * for (`change: "new_column"`), a value its column's type cannot hold (`change: "type_change"`), or,
 * under `evolve`, a field whose name cannot be a column name (`change: "invalid_name"`, e.g.
 * `"order id"`: the record is dead-lettered). Under `discard_row` the record is dead-lettered with
 * this reason; under `freeze` it fails the run.
 *
 * @since 0.1.0
 * @category reasons
 */
export class ContractViolation
  extends Schema.TaggedError<ContractViolation>("@sluice/core/RecordError/ContractViolation")("ContractViolation", {
    contract: Schema.Literals(["evolve", "freeze", "discard_row", "discard_value"]),
    table: Schema.String,
    field: Schema.String,
    change: Schema.Literals(["new_column", "type_change", "invalid_name"]),
    message: Schema.String
  })
{}

/**
 * @since 0.1.0
 * @category models
 */
export const RecordErrorReason = Schema.Union([
  InvalidJson,
  InvalidEncoding,
  SchemaMismatch,
  RuleViolation,
  DuplicateKey,
  MissingKey,
  ContractViolation
])

/**
 * @since 0.1.0
 * @category models
 */
export type RecordErrorReason = typeof RecordErrorReason.Type

const reasonTags = {
  InvalidJson: true,
  InvalidEncoding: true,
  SchemaMismatch: true,
  RuleViolation: true,
  DuplicateKey: true,
  MissingKey: true,
  ContractViolation: true
} satisfies Record<RecordErrorReason["_tag"], true>

/**
 * Every reason's tag: the error types a dead letter can have (its `error_type`), e.g. to check
 * a filter such as `sluice dlq list --error-type T` before it selects nothing.
 *
 * @since 0.1.0
 * @category models
 */
export const errorTypes: ReadonlyArray<RecordErrorReason["_tag"]> = Object.keys(reasonTags) as Array<
  RecordErrorReason["_tag"]
>

/**
 * Whether `value` is one of {@link errorTypes}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isErrorType = (value: string): value is RecordErrorReason["_tag"] => Object.hasOwn(reasonTags, value)

/**
 * A record that cannot be loaded, with the reason why.
 *
 * @example
 * ```ts
 * import { RecordError } from "@sluice/core"
 *
 * const error = new RecordError.RecordError({
 *   reason: new RecordError.RuleViolation({ rule: "amount_non_negative", message: "amount is -3" })
 * })
 * error.errorType // "RuleViolation"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RecordError extends Schema.TaggedError<RecordError>("@sluice/core/RecordError")("RecordError", {
  reason: RecordErrorReason
}) {
  override readonly cause = this.reason
  override get message(): string {
    return this.reason.message
  }
  /** The tag stored as the dead letter's `error_type`. */
  get errorType(): RecordErrorReason["_tag"] {
    return this.reason._tag
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isRecordError = (u: unknown): u is RecordError => Predicate.isTagged(u, "RecordError")
