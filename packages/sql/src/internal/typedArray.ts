/**
 * Typed array parameters for `unnest`: bound in binary with an explicit element type, so
 * a batch of any size is one parameter per column.
 *
 * @internal
 */
import { PgTypes } from "@effect/sql-pg"

/**
 * An array parameter of the given element OID. Throws a `CodecError` when the element type has no
 * array type (a programming error: callers pass known OIDs).
 *
 * @internal
 */
export const typedArray = (values: ReadonlyArray<unknown>, elementOid: number): PgTypes.Parameter => {
  const result = PgTypes.array(values, elementOid)
  if (result._tag === "Failure") throw result.failure
  return result.success
}
