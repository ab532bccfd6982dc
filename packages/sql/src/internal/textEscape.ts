/**
 * A lossless encoding of any JavaScript string into PostgreSQL `text`.
 *
 * PostgreSQL text cannot hold U+0000, and a lone UTF-16 surrogate has no UTF-8 form (it would
 * silently become U+FFFD). Strings without either are stored verbatim (the common case, readable
 * in SQL). The others are escaped, and the row is flagged: `\` becomes `\\`, U+0000 becomes
 * `\0`, and a lone surrogate becomes `\uXXXX` (four hex digits).
 *
 * @internal
 */

// oxlint-disable-next-line no-control-regex
const needsEscape = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// oxlint-disable-next-line no-control-regex
const suspect = /[\u0000\uD800-\uDFFF]/

/** @internal */
export const needsEscaping = (text: string): boolean =>
  // a plain character class first: most text has neither NUL nor surrogates, and this runs per value
  suspect.test(text) && needsEscape.test(text)

// oxlint-disable-next-line no-control-regex
const escapePattern = /\\|\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** @internal */
export const escape = (text: string): string =>
  text.replace(escapePattern, (match) => {
    if (match === "\\") return "\\\\"
    if (match === "\u0000") return "\\0"
    return "\\u" + match.charCodeAt(0).toString(16).padStart(4, "0")
  })

/** @internal */
export const unescape = (text: string): string =>
  text.replace(/\\(\\|0|u[0-9a-f]{4})/g, (_, code: string) => {
    if (code === "\\") return "\\"
    if (code === "0") return "\u0000"
    return String.fromCharCode(Number.parseInt(code.slice(1), 16))
  })
