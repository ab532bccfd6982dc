/**
 * UTF-8 checks, and a readable, reversible escape of bytes that are not valid UTF-8.
 *
 * A record whose bytes are not valid UTF-8 (a lone `0xFF`, a truncated multi-byte sequence, an
 * overlong encoding, an encoded UTF-16 surrogate, a code point above U+10FFFF) cannot be read as
 * text without changing it: a lenient decoder puts U+FFFD in place of the bad bytes and the record
 * would load corrupted. Sources decode strictly instead; a record that fails keeps its bytes and
 * goes to the dead letter queue as `InvalidEncoding`, its original record being {@link escape}
 * of its bytes.
 *
 * **The escape**: every valid UTF-8 sequence is kept as the character it encodes; every byte that is
 * not part of a valid sequence becomes `\xHH` (two upper-case hex digits); and a `\` that would
 * otherwise read as such an escape (one followed by `x` and two hex digits) becomes `\x5C`. Any
 * other `\` is kept as is, so JSON escapes (`\"`, `\n`, `\u00e9`) read unchanged.
 * {@link unescape} reverses it exactly: `unescape(escape(bytes))` equals `bytes` for any bytes.
 *
 * @since 0.1.0
 */

/**
 * The length of the valid UTF-8 sequence starting at `bytes[at]` (1 to 4), or 0 when the byte there
 * does not start one (Unicode's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
const sequenceLength = (bytes: Uint8Array, at: number): number => {
  const b0 = bytes[at]!
  if (b0 < 0x80) return 1
  const end = bytes.length
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < end && bytes[i]! >= lo && bytes[i]! <= hi
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(at + 1) ? 2 : 0
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const second = b0 === 0xe0 ? cont(at + 1, 0xa0) : b0 === 0xed ? cont(at + 1, 0x80, 0x9f) : cont(at + 1)
    return second && cont(at + 2) ? 3 : 0
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const second = b0 === 0xf0 ? cont(at + 1, 0x90) : b0 === 0xf4 ? cont(at + 1, 0x80, 0x8f) : cont(at + 1)
    return second && cont(at + 2) && cont(at + 3) ? 4 : 0
  }
  return 0
}

/** Decodes bytes known to be valid UTF-8, keeping a leading U+FEFF. */
const validDecoder = new TextDecoder("utf-8", { ignoreBOM: true })
/** The strict decoder: throws on the first invalid byte. */
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const hex = (byte: number): string => byte.toString(16).toUpperCase().padStart(2, "0")

const isHexDigit = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)

/** `\`, `x` and two hex digits at `at` (bytes or char codes alike). */
const readsAsEscape = (code: (i: number) => number, length: number, at: number): boolean =>
  at + 3 < length && code(at) === 0x5c && code(at + 1) === 0x78 && isHexDigit(code(at + 2)) &&
  isHexDigit(code(at + 3))

/**
 * The offset of the first byte of `bytes` that is not part of a valid UTF-8 sequence, or `-1` when
 * all of `bytes` is valid UTF-8.
 *
 * @example
 * ```ts
 * import { Utf8 } from "@sluice/core"
 *
 * Utf8.firstInvalid(new Uint8Array([0x61, 0xc3, 0xa9, 0xff])) // 3
 * ```
 *
 * @since 0.1.0
 * @category checks
 */
export const firstInvalid = (bytes: Uint8Array): number => {
  let i = 0
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i)
    if (n === 0) return i
    i += n
  }
  return -1
}

/**
 * Decodes `bytes` strictly: the text, or `undefined` when they are not valid UTF-8 (nothing is
 * replaced by U+FFFD). A leading byte order mark is kept.
 *
 * @example
 * ```ts
 * import { Utf8 } from "@sluice/core"
 *
 * Utf8.decode(new Uint8Array([0x7b, 0x7d])) // "{}"
 * Utf8.decode(new Uint8Array([0x7b, 0xff, 0x7d])) // undefined
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array): string | undefined => {
  try {
    return fatalDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * The readable, reversible text of any bytes: valid UTF-8 kept as text, each invalid byte as `\xHH`,
 * a `\` that would read as an escape as `\x5C` (see the module documentation).
 *
 * @example
 * ```ts
 * import { Utf8 } from "@sluice/core"
 *
 * Utf8.escape(new Uint8Array([0x7b, 0x22, 0xc3, 0xa9, 0xff, 0x22, 0x7d])) // "{\"é\\xFF\"}"
 * ```
 *
 * @since 0.1.0
 * @category escaping
 */
export const escape = (bytes: Uint8Array): string => {
  const length = bytes.length
  const byte = (at: number) => bytes[at]!
  const escapes = (at: number, n: number) => n === 0 || (n === 1 && readsAsEscape(byte, length, at))
  let count = 0
  for (let i = 0; i < length;) {
    const n = sequenceLength(bytes, i)
    if (escapes(i, n)) {
      count++
      i++
    } else {
      i += n
    }
  }
  if (count === 0) return validDecoder.decode(bytes)
  // the escaped text written as UTF-8 bytes and decoded once: valid sequences are copied, each escaped
  // byte becomes four ASCII bytes. (Appending each escape to a string made a rope of a node per byte:
  // a 5 MB line of invalid bytes took half a gigabyte and seconds.)
  const out = new Uint8Array(length + 3 * count)
  let at = 0
  let run = 0
  for (let i = 0; i < length;) {
    const n = sequenceLength(bytes, i)
    if (escapes(i, n)) {
      out.set(bytes.subarray(run, i), at)
      at += i - run
      const b = bytes[i]!
      out[at++] = 0x5c
      out[at++] = 0x78
      out[at++] = hexDigits.charCodeAt(b >> 4)
      out[at++] = hexDigits.charCodeAt(b & 0x0f)
      i++
      run = i
    } else {
      i += n
    }
  }
  out.set(bytes.subarray(run), at)
  return validDecoder.decode(out)
}

const hexDigits = "0123456789ABCDEF"

const encoder = new TextEncoder()

/**
 * The bytes {@link escape} was given: each `\xHH` (either case) becomes the byte `0xHH`, every other
 * character its UTF-8 encoding.
 *
 * @example
 * ```ts
 * import { Utf8 } from "@sluice/core"
 *
 * Utf8.unescape("{\"é\\xFF\"}") // Uint8Array [0x7b, 0x22, 0xc3, 0xa9, 0xff, 0x22, 0x7d]
 * ```
 *
 * @since 0.1.0
 * @category escaping
 */
export const unescape = (text: string): Uint8Array => {
  const pieces: Array<Uint8Array> = []
  let length = 0
  let run = 0
  const code = (at: number) => text.charCodeAt(at)
  const push = (piece: Uint8Array) => {
    pieces.push(piece)
    length += piece.length
  }
  let i = text.indexOf("\\")
  while (i !== -1) {
    if (readsAsEscape(code, text.length, i)) {
      if (i > run) push(encoder.encode(text.slice(run, i)))
      push(Uint8Array.of(Number.parseInt(text.slice(i + 2, i + 4), 16)))
      run = i + 4
      i = text.indexOf("\\", run)
    } else {
      i = text.indexOf("\\", i + 1)
    }
  }
  if (run < text.length) push(encoder.encode(text.slice(run)))
  const out = new Uint8Array(length)
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.length
  }
  return out
}

/**
 * A one-line description of why `bytes` are not valid UTF-8, naming the first invalid byte and its
 * offset, e.g. `invalid UTF-8: byte 0xFF at offset 12`.
 *
 * @since 0.1.0
 * @category checks
 */
export const describeInvalid = (bytes: Uint8Array): string => {
  const at = firstInvalid(bytes)
  return at === -1 ? "valid UTF-8" : `invalid UTF-8: byte 0x${hex(bytes[at]!)} at offset ${at}`
}
