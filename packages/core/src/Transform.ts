/**
 * Transforms: a raw record becomes a typed record or a typed {@link RecordError.RecordError}.
 *
 * {@link fromSchema} parses the payload as JSON, decodes it with an effect `Schema`, then checks
 * business rules. It is synchronous and allocation-light because it runs once per record: the
 * payload goes straight to `JSON.parse`, and the schema's decoder is compiled to JavaScript
 * (effect's `SchemaJITCompiler`; a failed record is decoded again by the interpreter, for its
 * detailed message).
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as SchemaJITCompiler from "effect/schema/SchemaJITCompiler"
import type { PartitionDate } from "./Partition.ts"
import * as RecordError from "./RecordError.ts"
import type { RawRecord } from "./Source.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type Transform<A> = (record: RawRecord, partition: PartitionDate) => Result.Result<A, RecordError.RecordError>

/**
 * A business rule: returns a message describing the violation, or `undefined` when the record passes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rule<in A> {
  readonly name: string
  readonly check: (record: A, partition: PartitionDate) => string | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const rule = <A>(name: string, check: (record: A, partition: PartitionDate) => string | undefined): Rule<A> => ({
  name,
  check
})

/**
 * A record error is data, not a bug: its stack trace would say nothing, and capturing one costs
 * more than decoding the record (several µs per error, from inside the pipeline's deep stack).
 */
const recordError = (reason: () => RecordError.RecordErrorReason): RecordError.RecordError => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new RecordError.RecordError({ reason: reason() })
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** The message of `Schema.fromJsonString` for a payload that is not JSON. */
const invalidJson = () => recordError(() => new RecordError.InvalidJson({ message: "Expected a valid JSON string" }))

const decodeJson = (payload: string): Result.Result<unknown, RecordError.RecordError> =>
  Result.try({ try: () => JSON.parse(payload) as unknown, catch: invalidJson })

/**
 * A transform that parses JSON, decodes with `schema` and applies `rules` in order.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Transform } from "@sluice/core"
 *
 * const Reading = Schema.Struct({ sensor: Schema.NonEmptyString, value: Schema.Finite, day: Schema.String })
 * const transform = Transform.fromSchema(Reading, {
 *   rules: [Transform.rule("in_partition", (r, day) => r.day === day ? undefined : `day ${r.day} is not ${day}`)]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchema = <S extends Schema.Decoder<unknown>>(
  schema: S,
  options: { readonly rules?: ReadonlyArray<Rule<S["Type"]>> | undefined } = {}
): Transform<S["Type"]> => {
  SchemaJITCompiler.enable(schema.ast)
  const decode = Schema.decodeUnknownResult(schema as Schema.Decoder<S["Type"]>)
  const rules = options.rules ?? []
  return (record, partition) => {
    const json = decodeJson(record.payload)
    if (Result.isFailure(json)) return json
    const decoded = decode(json.success)
    if (Result.isFailure(decoded)) {
      const issue = decoded.failure
      return Result.fail(recordError(() => new RecordError.SchemaMismatch({ message: issue.message })))
    }
    for (const r of rules) {
      const violation = r.check(decoded.success, partition)
      if (violation !== undefined) {
        return Result.fail(recordError(() => new RecordError.RuleViolation({ rule: r.name, message: violation })))
      }
    }
    return Result.succeed(decoded.success)
  }
}
