/**
 * Sources: where a partition's records come from.
 *
 * A source turns a partition into a `Stream` of raw records — each the payload exactly as it was
 * read (a line of text, an element of a JSON array) and its position — failing only with a
 * typed {@link SourceError.SourceError}. Parsing and validation happen later, per record, so one
 * bad record never fails the extract.
 *
 * @since 0.1.0
 */
import type { Stream } from "effect"
import type { PartitionDate } from "./Partition.ts"
import type * as SourceError from "./SourceError.ts"

/**
 * A record as the source gave it: the raw payload text and its 1-based position (line or element).
 *
 * @since 0.1.0
 * @category models
 */
export interface RawRecord {
  readonly payload: string
  readonly position: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Source<R = never> {
  /** A human-readable location, e.g. a folder or a URL; it names the source in errors. */
  readonly location: string
  readonly extract: (partition: PartitionDate) => Stream.Stream<RawRecord, SourceError.SourceError, R>
}

/**
 * Makes a source from an extract function.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Source } from "@sluice/core"
 *
 * const inline = Source.make("inline", (date) =>
 *   Stream.make({ payload: JSON.stringify({ date }), position: 1 }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R>(
  location: string,
  extract: (partition: PartitionDate) => Stream.Stream<RawRecord, SourceError.SourceError, R>
): Source<R> => ({ location, extract })
