/**
 * Numbers `JSON.parse` cannot give back: a JSON number becomes the nearest double, so a literal
 * with more digits than a double holds (`19.990000000000000001`, `12345678901234567890`) or out of
 * its range (`1e-400`, `1e400`) is read as another number, silently. A number is **exact** when
 * the double it parses to writes back (`String(n)`, the shortest form that round-trips) as the
 * same decimal as its literal: `1.50`, `1E2`, `-0` and `0.30000000000000004` are exact.
 *
 * @internal
 */

const isDigit = (c: number): boolean => c >= 48 && c <= 57

/** The digits of the run of digits and dots around `at` (a digit or dot), and where the run ends. */
const digitRun = (payload: string, at: number): { readonly digits: number; readonly end: number } => {
  let from = at
  while (from > 0) {
    const c = payload.charCodeAt(from - 1)
    if (!isDigit(c) && c !== 46) break
    from--
  }
  let digits = 0
  let end = from
  for (; end < payload.length; end++) {
    const c = payload.charCodeAt(end)
    if (isDigit(c)) digits++
    else if (c !== 46) break
  }
  return { digits, end }
}

/** Whether an `e` or `E` of `payload` ends a digit and starts an exponent of three digits or more. */
const hasLongExponent = (payload: string, letter: string): boolean => {
  for (let at = payload.indexOf(letter); at !== -1; at = payload.indexOf(letter, at + 1)) {
    if (at === 0 || !isDigit(payload.charCodeAt(at - 1))) continue
    let i = at + 1
    const sign = payload.charCodeAt(i)
    if (sign === 43 || sign === 45) i++
    let digits = 0
    while (i < payload.length && isDigit(payload.charCodeAt(i))) {
      digits++
      i++
    }
    if (digits >= 3) return true
  }
  return false
}

/**
 * Whether `payload` may hold a number that is not exact. A literal of at most 15 digits with an
 * exponent of at most two digits is exact (its value is a normal double, and every decimal of at
 * most 15 significant digits round-trips through one), so only two things are looked for:
 *
 * - more than 15 digits in a run of digits and dots: the run is 16 characters or more, so it
 *   covers one of every 16 positions, and only every 16th character is read (and the run around it
 *   when it is a digit or a dot);
 * - an exponent of three digits or more after a digit (`1e-400`), found with `indexOf`.
 *
 * Strings are not told apart: their digits can only cause a needless check.
 *
 * @internal
 */
export const mayHoldInexact = (payload: string): boolean => {
  const length = payload.length
  for (let i = 0; i < length; i += 16) {
    const c = payload.charCodeAt(i)
    if (isDigit(c) || c === 46) {
      const run = digitRun(payload, i)
      if (run.digits > 15) return true
      // the next sample 16 past the run's end (a non-digit): still one in every 16 positions
      i = run.end
    }
  }
  return hasLongExponent(payload, "e") || hasLongExponent(payload, "E")
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
