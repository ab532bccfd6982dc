/**
 * Numbers `JSON.parse` cannot give back: a JSON number becomes the nearest double, so a literal
 * with more digits than a double holds (`19.990000000000000001`, `12345678901234567890`) or out of
 * its range (`1e-400`, `1e400`) is read as another number, silently. A number is **exact** when
 * the double it parses to writes back (`String(n)`, the shortest form that round-trips) as the
 * same decimal as its literal: `1.50`, `1E2`, `-0` and `0.30000000000000004` are exact.
 *
 * @internal
 */

/**
 * Whether `payload` may hold a number that is not exact: a run of more than 15 digits (dots
 * allowed among them), or an exponent after a digit. Every decimal of at most 15 significant
 * digits without an exponent round-trips through a double, so a payload without either holds
 * only exact numbers. Strings are scanned too: their digits can only cause a needless check.
 *
 * @internal
 */
export const mayHoldInexact = (payload: string): boolean => {
  let digits = 0
  for (let i = 0; i < payload.length; i++) {
    const c = payload.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (++digits > 15) return true
    } else if (c === 101 || c === 69) {
      if (digits > 0) return true
    } else if (c !== 46) {
      digits = 0
    }
  }
  return false
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
