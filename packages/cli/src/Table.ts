/**
 * Plain-text tables for terminal output.
 *
 * @since 0.1.0
 */

/**
 * Formats rows as an aligned table with a header rule. Numbers are right-aligned.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/cli"
 *
 * Table.format(["date", "rows"], [["2024-03-01", 12]])
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string | number | boolean | null | undefined>>
): string => {
  const cells = rows.map((row) => row.map((c) => c === null || c === undefined ? "" : String(c)))
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || r[i] == null))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => [...(r[i] ?? "")].length)))
  const pad = (s: string, i: number) => {
    const fill = " ".repeat(Math.max(0, widths[i]! - [...s].length))
    return numeric[i] ? fill + s : s + fill
  }
  const line = (r: ReadonlyArray<string>) => r.map((c, i) => pad(c, i)).join("  ").trimEnd()
  return [line(header), widths.map((w) => "─".repeat(w)).join("  "), ...cells.map(line)].join("\n")
}

/**
 * Joins a multi-line message (such as a schema decoding issue) into one line.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/cli"
 *
 * Table.oneLine("Expected number\n  at [\"amount\"]") // "Expected number at [\"amount\"]"
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, " ").trim()

/**
 * What a cell shows escaped: C0 and C1 control characters (`\x0d`, `\x85`: line ends, terminal
 * escapes), and the invisible characters that move or hide text — bidirectional controls
 * (`\u202e` would show the rest of the row reversed), zero-width characters, the line and
 * paragraph separators and U+FEFF.
 */
// oxlint-disable-next-line no-control-regex
const invisible = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g

const escapeInvisible = (c: string): string => {
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/**
 * Shortens `s` to at most `max` characters (an ellipsis marks the cut), showing control and
 * invisible characters as escapes (`\x0d`, `\u202e`) so a cell never breaks or reorders the table.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/cli"
 *
 * Table.truncate("a\rb\u202ec", 60) // "a\\x0db\\u202ec"
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const truncate = (s: string, max: number): string => {
  const visible = s.replace(invisible, escapeInvisible)
  const chars = [...visible]
  return chars.length <= max ? visible : chars.slice(0, Math.max(0, max - 1)).join("") + "…"
}

/**
 * Shows control and invisible characters as escapes, as {@link truncate} does, but keeps line feeds
 * and tabs: for a whole text printed to a terminal (`sluice dlq show`), where a payload's `ESC [ 2 J`
 * would clear the screen, a carriage return overwrite what was printed, or a `U+202E` reverse it.
 *
 * @example
 * ```ts
 * import { Table } from "@sluice/cli"
 *
 * Table.showInvisible("a\u001b[2J\tb\nc\r") // "a\\x1b[2J\tb\nc\\x0d"
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const showInvisible = (s: string): string =>
  s.replace(invisible, (c) => (c === "\n" || c === "\t" ? c : escapeInvisible(c)))
