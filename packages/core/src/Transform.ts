/**
 * Transforms: a raw record becomes a typed record or a typed {@link RecordError.RecordError}.
 *
 * {@link fromSchema} parses the payload as JSON, decodes it with an effect `Schema`, then checks
 * business rules. It is synchronous and allocation-light because it runs once per record.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
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

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

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
  const decode = Schema.decodeUnknownResult(schema as Schema.Decoder<S["Type"]>)
  const rules = options.rules ?? []
  return (record, partition) => {
    const json = decodeJson(record.payload)
    if (Result.isFailure(json)) {
      return Result.fail(
        new RecordError.RecordError({ reason: new RecordError.InvalidJson({ message: json.failure.message }) })
      )
    }
    const decoded = decode(json.success)
    if (Result.isFailure(decoded)) {
      return Result.fail(
        new RecordError.RecordError({ reason: new RecordError.SchemaMismatch({ message: decoded.failure.message }) })
      )
    }
    for (const r of rules) {
      const violation = r.check(decoded.success, partition)
      if (violation !== undefined) {
        return Result.fail(
          new RecordError.RecordError({ reason: new RecordError.RuleViolation({ rule: r.name, message: violation }) })
        )
      }
    }
    return Result.succeed(decoded.success)
  }
}
