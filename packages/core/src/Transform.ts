/**
 * Transforms: a raw record becomes a typed record or a typed {@link RecordError.RecordError}.
 *
 * {@link fromSchema} parses the payload as JSON, decodes it with an effect `Schema`, then checks
 * business rules. It is synchronous and allocation-light because it runs once per record: the
 * payload goes straight to `JSON.parse`, and the record is decoded by a **fast path** first.
 *
 * **Fast path with bail-out.** When the transform is made, the schema's AST is compiled once
 * (`internal/fastDecode.ts`) into a plain decoder — generated JavaScript, or closures where code
 * cannot be generated; no `Effect`, no `Exit`, no issues — for a supported subset: primitives and literals, checks (filters), structs (optional keys, excess keys
 * dropped, or kept by a `Record(String, …)` rest as in `Contract.open`), pure `decodeTo`
 * transformations, `withDecodingDefaultKey` with an already resolved default, and unions of these.
 * Per record, the fast decoder returns the decoded value only when it is certain it is exactly what
 * `Schema.decodeUnknownResult(schema)` returns (same values, same key order); on a failure or
 * anything unusual it bails out, and the record is decoded by effect's decoder — compiled to
 * JavaScript where it can be (effect's `SchemaJITCompiler`), interpreted otherwise — which gives
 * the real success or the detailed failure. A schema outside the subset always takes that path.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as SchemaJITCompiler from "effect/schema/SchemaJITCompiler"
import * as ExactNumbers from "./internal/exactNumbers.ts"
import * as FastDecode from "./internal/fastDecode.ts"
import type { PartitionDate } from "./Partition.ts"
import * as RecordError from "./RecordError.ts"
import type { RawRecord } from "./Source.ts"
import * as Utf8 from "./Utf8.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type Transform<A> = (record: RawRecord, partition: PartitionDate) => Result.Result<A, RecordError.RecordError>

/**
 * Runs `transform` on a record, unless the record is not valid UTF-8 (it carries `invalidBytes`,
 * see `Source.RawRecord`): that one fails with `InvalidEncoding`, carrying its original bytes, and
 * the transform never sees its escaped payload. Every runner calls transforms through this, so a
 * hand-written transform cannot load an invalid record by accident.
 *
 * @example
 * ```ts
 * import { Partition, Source, Transform } from "@sluice/core"
 * import { Schema } from "effect"
 *
 * const transform = Transform.fromSchema(Schema.Struct({ id: Schema.String }))
 * const result = Transform.apply(
 *   transform,
 *   Source.invalidUtf8(new Uint8Array([0x7b, 0xff]), 1),
 *   Partition.makeUnsafe("2024-03-01")
 * )
 * // Result.fail(RecordError { reason: InvalidEncoding })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const apply = <A>(
  transform: Transform<A>,
  record: RawRecord,
  partition: PartitionDate
): Result.Result<A, RecordError.RecordError> =>
  record.invalidBytes === undefined
    ? transform(record, partition)
    : Result.fail(invalidEncoding(record.invalidBytes))

/**
 * The record error of bytes that are not valid UTF-8.
 *
 * @since 0.1.0
 * @category constructors
 */
export const invalidEncoding = (bytes: Uint8Array): RecordError.RecordError =>
  recordError(() => new RecordError.InvalidEncoding({ bytes, message: Utf8.describeInvalid(bytes) }))

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
 * `f()` without stack traces. A record's failure is data, not a bug: a stack would say nothing, and
 * capturing one from inside the pipeline's deep stack costs more than decoding the record (several
 * µs). It is used for record errors, and for effect's decoder, which reports a failure as a
 * `SchemaError` (an `Error`) whose stack is never read: the dead letter keeps the issue's message.
 */
const withoutStackTrace = <A>(f: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return f()
  } finally {
    Error.stackTraceLimit = limit
  }
}

const recordError = (reason: () => RecordError.RecordErrorReason): RecordError.RecordError =>
  withoutStackTrace(() => new RecordError.RecordError({ reason: reason() }))

/** The reason `JSON.parse` gave for the last payload {@link parseJson} failed on. */
let parseFailure = ""

/**
 * The message of `Schema.fromJsonString` for a payload that is not JSON, followed by the parser's
 * reason (`Expected a valid JSON string: Unexpected end of JSON input`, `…: Bad control character in
 * string literal in JSON at position 52 (line 1 column 53)`), which says where the line is broken.
 */
const invalidJson = () =>
  recordError(() =>
    new RecordError.InvalidJson({
      message: parseFailure === "" ? "Expected a valid JSON string" : `Expected a valid JSON string: ${parseFailure}`
    })
  )

/** `JSON.parse`, or `failed` when the payload is not JSON (no closure or `Result` per record). */
const parseJson = (payload: string): unknown => {
  try {
    return JSON.parse(payload)
  } catch (error) {
    parseFailure = error instanceof Error ? error.message : ""
    return failed
  }
}

const failed: unique symbol = Symbol("@sluice/core/Transform/failed")

/**
 * A transform that parses JSON, decodes with `schema` and applies `rules` in order.
 *
 * Decoding tries the fast path of the module documentation first, and falls back to
 * `Schema.decodeUnknownResult(schema)` when it bails out; the result is the same either way.
 *
 * With `exactNumbers: true`, a record holding a JSON number that `JSON.parse` would read as
 * another number — more digits than a double holds (`19.990000000000000001` would be `19.99`,
 * `12345678901234567890` would end in `000`) or out of its range (`1e-400` would be `0`) — fails
 * with `SchemaMismatch` (`number 19.990000000000000001 at "amount" cannot be read exactly: it
 * would be 19.99`) instead of being decoded from the rounded number.
 * `1.50`, `1E2`, `-0` are exact. Every number of the payload counts, wherever it is: the schema
 * may keep a field it does not declare (`Contract.open`) for a contract that makes it a column.
 * Only a payload with a run of more than 15 digits or an exponent of three digits is parsed a
 * second time to check its numbers; any other payload costs a look at every 16th character and one
 * regular expression (about 14% of the orders transform's time per line).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Transform } from "@sluice/core"
 *
 * const Reading = Schema.Struct({ sensor: Schema.NonEmptyString, value: Schema.Finite, day: Schema.String })
 * const transform = Transform.fromSchema(Reading, {
 *   rules: [Transform.rule("in_partition", (r, day) => r.day === day ? undefined : `day ${r.day} is not ${day}`)],
 *   exactNumbers: true
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchema = <S extends Schema.Decoder<unknown>>(
  schema: S,
  options: {
    readonly rules?: ReadonlyArray<Rule<S["Type"]>> | undefined
    /** Dead-letter a record holding a number `JSON.parse` cannot read exactly (default `false`). */
    readonly exactNumbers?: boolean | undefined
  } = {}
): Transform<S["Type"]> => {
  SchemaJITCompiler.enable(schema.ast)
  const decode = Schema.decodeUnknownResult(schema as Schema.Decoder<S["Type"]>)
  const fast = FastDecode.compile(schema.ast)
  const rules = options.rules ?? []
  const ruleCount = rules.length
  const exactNumbers = options.exactNumbers === true
  return (record, partition) => {
    if (record.invalidBytes !== undefined) return Result.fail(invalidEncoding(record.invalidBytes))
    const json = parseJson(record.payload)
    if (json === failed) return Result.fail(invalidJson())
    if (exactNumbers && ExactNumbers.mayHoldInexact(record.payload)) {
      const inexact = ExactNumbers.firstInexact(record.payload)
      if (inexact !== undefined) {
        return Result.fail(
          recordError(() => new RecordError.SchemaMismatch({ message: ExactNumbers.message(inexact) }))
        )
      }
    }
    let value: S["Type"]
    const quick = fast !== undefined ? fast(json) : FastDecode.bail
    if (quick !== FastDecode.bail) {
      value = quick as S["Type"]
    } else {
      const decoded = withoutStackTrace(() => decode(json))
      if (Result.isFailure(decoded)) {
        const issue = decoded.failure
        return Result.fail(recordError(() => new RecordError.SchemaMismatch({ message: issue.message })))
      }
      value = decoded.success
    }
    for (let i = 0; i < ruleCount; i++) {
      const r = rules[i]!
      const violation = r.check(value, partition)
      if (violation !== undefined) {
        return Result.fail(recordError(() => new RecordError.RuleViolation({ rule: r.name, message: violation })))
      }
    }
    return Result.succeed(value)
  }
}
