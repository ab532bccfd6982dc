/**
 * The bad lines of a sample generator: the kinds it writes, each with the record error a pipeline
 * must turn it into, their positions and their counts.
 *
 * @since 0.1.0
 */
import type { RecordError } from "@sluice/core"
import type { SeededRandom } from "./SeededRandom.ts"

/**
 * The record errors a bad line can produce.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedError = Extract<
  RecordError.RecordErrorReason["_tag"],
  "InvalidJson" | "SchemaMismatch" | "RuleViolation"
>

/**
 * A bad line of a file: its 1-based line number and its kind.
 *
 * @since 0.1.0
 * @category models
 */
export interface BadLine<Kind extends string> {
  readonly position: number
  readonly kind: Kind
}

/**
 * The kinds of a table of kinds and their expected errors, in the table's order.
 *
 * @example
 * ```ts
 * import { BadLines } from "@sluice/samples"
 *
 * const expectedErrorType = {
 *   invalid_json: "InvalidJson",
 *   missing_field: "SchemaMismatch"
 * } as const satisfies Record<string, BadLines.ExpectedError>
 * type BadKind = keyof typeof expectedErrorType
 *
 * const badKinds: ReadonlyArray<BadKind> = BadLines.kindsOf(expectedErrorType) // ["invalid_json", "missing_field"]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const kindsOf = <Kind extends string>(table: Readonly<Record<Kind, ExpectedError>>): ReadonlyArray<Kind> =>
  Object.keys(table) as Array<Kind>

/**
 * A count of 0 for every kind, in the kinds' order.
 *
 * @example
 * ```ts
 * import { BadLines } from "@sluice/samples"
 *
 * const badByKind = BadLines.emptyCounts(["invalid_json", "truncated"] as const)
 * badByKind.truncated++
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const emptyCounts = <Kind extends string>(kinds: ReadonlyArray<Kind>): Record<Kind, number> =>
  Object.fromEntries(kinds.map((kind) => [kind, 0])) as Record<Kind, number>

/**
 * The counts per kind of several files, added up.
 *
 * @example
 * ```ts
 * import { BadLines } from "@sluice/samples"
 *
 * const kinds = ["invalid_json", "truncated"] as const
 * BadLines.sumCounts(kinds, [
 *   { badByKind: { invalid_json: 1, truncated: 0 } },
 *   { badByKind: { invalid_json: 2, truncated: 1 } }
 * ]) // { invalid_json: 3, truncated: 1 }
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const sumCounts = <Kind extends string>(
  kinds: ReadonlyArray<Kind>,
  files: Iterable<{ readonly badByKind: Readonly<Record<Kind, number>> }>
): Record<Kind, number> => {
  const counts = emptyCounts(kinds)
  for (const file of files) for (const kind of kinds) counts[kind] += file.badByKind[kind]
  return counts
}

/**
 * A `truncated` bad line: `text` cut at a random place, at least one character in and one
 * character short, never between the two halves of a surrogate pair (a lone half would not
 * survive UTF-8).
 *
 * @example
 * ```ts
 * import { BadLines, SeededRandom } from "@sluice/samples"
 *
 * BadLines.truncate(SeededRandom.make(1), JSON.stringify({ order_id: "ord-1", amount: 12.5 }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const truncate = (random: SeededRandom, text: string): string => {
  let cut = random.int(1, text.length - 1)
  if (/[\uDC00-\uDFFF]/.test(text.charAt(cut))) cut--
  return text.slice(0, cut)
}
