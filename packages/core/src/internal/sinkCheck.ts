/**
 * The sink's per-record check (`Sink.check`, `StreamSink.check`) as both runners apply it, before a
 * record's key is taken: a record the sink cannot store loads nothing, so it claims no key.
 *
 * @internal
 */
import { Result } from "effect"
import type { RecordError } from "../RecordError.ts"

/**
 * The sink's rejection of a decoded record, `undefined` when it passes (or when `result` is already
 * a failure, or the sink checks nothing). A rejected record is dead-lettered at stage `load`.
 *
 * @internal
 */
export const rejection = <A>(
  check: ((record: A) => RecordError | undefined) | undefined,
  result: Result.Result<A, RecordError>
): RecordError | undefined => check !== undefined && Result.isSuccess(result) ? check(result.success) : undefined
