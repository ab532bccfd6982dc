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
import * as Utf8 from "./Utf8.ts"

/**
 * A record as the source gave it: the raw payload text and its 1-based position (line or element).
 *
 * A record whose bytes are not valid UTF-8 is not decoded into text (that would alter it): it
 * carries its original `invalidBytes`, and its payload is their readable escape (`Utf8.escape`).
 * `Transform.apply` fails it with `InvalidEncoding` without calling the transform, so it is
 * dead-lettered with the escape as its original record. Build one with {@link invalidUtf8}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawRecord {
  readonly payload: string
  readonly position: number
  /** Set only for a record that is not valid UTF-8: its original bytes. */
  readonly invalidBytes?: Uint8Array | undefined
}

/**
 * The record of bytes that are not valid UTF-8: `payload` is their escape (`Utf8.escape`), and
 * `invalidBytes` a copy of them (so a slice of a large chunk does not keep the chunk alive).
 *
 * @example
 * ```ts
 * import { Source } from "@sluice/core"
 *
 * const record = Source.invalidUtf8(new Uint8Array([0x7b, 0xff, 0x7d]), 3)
 * // { payload: "{\\xFF}", position: 3, invalidBytes: Uint8Array [0x7b, 0xff, 0x7d] }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const invalidUtf8 = (bytes: Uint8Array, position: number): RawRecord => ({
  payload: Utf8.escape(bytes),
  position,
  invalidBytes: bytes.slice()
})

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
