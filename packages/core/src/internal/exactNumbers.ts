/**
 * Numbers `JSON.parse` cannot give back: a JSON number becomes the nearest double, so a literal
 * with more digits than a double holds (`19.990000000000000001`, `12345678901234567890`) or out of
 * its range (`1e-400`, `1e400`) is read as another number, silently. A number is **exact** when
 * the double it parses to writes back (`String(n)`, the shortest form that round-trips) as the
 * same decimal as its literal: `1.50`, `1E2`, `-0` and `0.30000000000000004` are exact.
 *
 * @internal
 */

/** A digit or a dot: what a run of a number's mantissa is made of. */
const isDigitOrDot = (c: number): boolean => (c >= 48 && c <= 57) || c === 46

/** An exponent of three digits or more after a digit (`1e-400`, `5E+308`). */
const longExponent = /\d[eE][+-]?\d{3}/

/**
 * Whether `payload` may hold a number that is not exact. A literal of at most 15 digits with an
 * exponent of at most two digits is exact (its value is a normal double, and every decimal of at
 * most 15 significant digits round-trips through one), so only two things are looked for:
 *
 * - more than 15 digits in a run of digits and dots. Such a run is 16 characters or more, so it
 *   covers one of every 16 positions, and only every 16th character is read; a run of 16 that
 *   covers position `i` also covers `i - 8` or `i + 8`, so a digit there is looked around only when
 *   one of those two is a digit or a dot too (the digits of dates and ids rarely are), and then the
 *   whole run is counted;
 * - an exponent of three digits or more after a digit, with one regular expression (native code).
 *
 * Strings are not told apart: their digits can only cause a needless check.
 *
 * @internal
 */
export const mayHoldInexact = (payload: string): boolean => {
  const length = payload.length
  for (let i = 8; i < length; i += 16) {
    if (!isDigitOrDot(payload.charCodeAt(i))) continue
    if (!isDigitOrDot(payload.charCodeAt(i - 8)) && !(i + 8 < length && isDigitOrDot(payload.charCodeAt(i + 8)))) {
      continue
    }
    let from = i
    while (from > 0 && isDigitOrDot(payload.charCodeAt(from - 1))) from--
    let digits = 0
    let end = from
    for (; end < length; end++) {
      const c = payload.charCodeAt(end)
      if (c >= 48 && c <= 57) {
        if (++digits > 15) return true
      } else if (c !== 46) {
        break
      }
    }
    // the next sample 8 past the run's end: a later run of 16 still covers one of every 16 positions
    i = end - 8
  }
  return longExponent.test(payload)
}

/** `text` (a JSON number literal or `String(n)`) as `<digits>e<exponent>`, zeros trimmed; zero as `0`. */
const normalize = (text: string): string => {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)
  if (match === null) return text // Infinity, NaN: never equal to a literal
  const fraction = match[3] ?? ""
  let digits = match[2]! + fraction
  let exponent = Number(match[4] ?? 0) - fraction.length
  let start = 0
  while (start < digits.length - 1 && digits.charCodeAt(start) === 48) start++
  let end = digits.length
  while (end > start + 1 && digits.charCodeAt(end - 1) === 48) {
    end--
    exponent++
  }
  digits = digits.slice(start, end)
  return digits === "0" ? "0" : `${match[1]}${digits}e${exponent}`
}

/**
 * Whether the number literal `source` is exactly what `JSON.parse` reads it as (`value`).
 *
 * @internal
 */
export const isExact = (source: string, value: number): boolean => normalize(source) === normalize(String(value))

/**
 * The first number of the JSON text `payload` that is not exact, with the number it is read as
 * and the key (or array index) it is under; `undefined` when every number is exact. `payload`
 * must be valid JSON.
 *
 * @internal
 */
export const firstInexact = (
  payload: string
): { readonly literal: string; readonly value: number; readonly key: string } | undefined => {
  let found: { readonly literal: string; readonly value: number; readonly key: string } | undefined
  JSON.parse(payload, (key: string, value: unknown, context?: { readonly source?: string }) => {
    if (found === undefined && typeof value === "number") {
      const source = context?.source
      // a runtime without JSON.parse source text access cannot vouch for any number
      if (source === undefined || !isExact(source, value)) found = { literal: source ?? String(value), value, key }
    }
    return value
  })
  return found
}

/**
 * The message of a record holding a number that is not exact.
 *
 * @internal
 */
export const message = (inexact: { readonly literal: string; readonly value: number; readonly key: string }): string =>
  `number ${inexact.literal}${
    inexact.key === "" ? "" : ` at ${JSON.stringify(inexact.key)}`
  } cannot be read exactly: it would be ${inexact.value}`
