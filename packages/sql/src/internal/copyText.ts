/**
 * Rows in PostgreSQL's COPY `text` format, framed as `CopyData` messages.
 *
 * A row is its values separated by tabs and ended by a newline; SQL NULL is `\N`; in a value,
 * backslash, tab, newline and carriage return are escaped (`\\`, `\t`, `\n`, `\r`), so no value
 * can end a field, a row or the data. Each value is sent as the text its column's input
 * function reads, as `INSERT` would: exact decimal strings stay digit for digit, floats use
 * JavaScript's shortest round-trip form (and `-0`, `NaN`, `Infinity`), instants are UTC with
 * milliseconds (exactly, at any date: the driver's binary encoding rounds instants after 2255 to
 * a few microseconds, as it multiplies milliseconds by 1,000 in a double).
 *
 * A value is accepted by the rules of `Table.toColumnArrays` (the `unnest` path), with the same
 * message when it is not. A `timestamptz` number that is no JavaScript `Date` (NaN, beyond
 * ±8.64e15 ms) and a `jsonb` value `JSON.stringify` cannot write (a bigint) are rejected here,
 * where `unnest` rejects them when binding.
 *
 * @internal
 */
import type { ColumnType } from "../Table.ts"

const special = /[\\\t\n\r]/
const specialGlobal = /[\\\t\n\r]/g
const escapes: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" }
const replace = (c: string): string => escapes[c]!

/** Characters escaped at a time: the matches of one `replace` are held until its string is built. */
const chunk = 65_536

/**
 * Escapes a value for the text format. A long one is escaped a piece at a time and the pieces joined
 * once: one `replace` over a dead letter's record of millions of `\` held a part per match (5 MiB of
 * invalid bytes, escaped as `\xFF` each, took a third of a gigabyte).
 *
 * @internal
 */
export const escape = (text: string): string => {
  if (!special.test(text)) return text
  if (text.length <= chunk) return text.replace(specialGlobal, replace)
  const pieces: Array<string> = []
  for (let at = 0; at < text.length; at += chunk) {
    pieces.push(text.slice(at, at + chunk).replace(specialGlobal, replace))
  }
  return pieces.join("")
}

const integerText = /^-?\d+$/

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** An instant as `timestamptz` input: ISO 8601 in UTC, with a `BC` year where needed. */
const instant = (date: Date): string => {
  const time = date.getTime()
  if (Number.isNaN(time)) throw new TypeError("expected a timestamptz value, got an invalid Date")
  const year = date.getUTCFullYear()
  if (year >= 1 && year <= 9999) return date.toISOString()
  return `${pad(year <= 0 ? 1 - year : year, 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)} ${
    pad(date.getUTCHours(), 2)
  }:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}.${pad(date.getUTCMilliseconds(), 3)}+00${
    year <= 0 ? " BC" : ""
  }`
}

const float = (n: number): string => Object.is(n, -0) ? "-0" : String(n)

const expected = (type: ColumnType, value: unknown): TypeError =>
  new TypeError(
    `expected a ${type} value, got ${typeof value === "string" ? JSON.stringify(value) : typeof value}`
  )

const nullText = "\\N"

type Formatter = (value: unknown) => string

/** One formatter per column type (for a value that is not NULL), chosen once per column. */
const formatters: Record<ColumnType, Formatter> = {
  text: (value) => typeof value === "string" ? escape(value) : other("text", value),
  int: (value) => typeof value === "number" && Number.isInteger(value) ? String(value) : other("int", value),
  bigint: (value) => {
    if (typeof value === "bigint") return value.toString()
    if (typeof value === "number" && Number.isSafeInteger(value)) return String(value)
    if (typeof value === "string" && integerText.test(value)) return value
    return other("bigint", value)
  },
  numeric: (value) => {
    if (typeof value === "string") return escape(value)
    if (typeof value === "number" && Number.isFinite(value)) return String(value)
    if (typeof value === "bigint") return value.toString()
    return other("numeric", value)
  },
  date: (value) => typeof value === "string" ? escape(value) : other("date", value),
  timestamptz: (value) => {
    if (value instanceof Date) return instant(value)
    if (typeof value === "number") {
      return value === Infinity ? "infinity" : value === -Infinity ? "-infinity" : instant(new Date(value))
    }
    return other("timestamptz", value)
  },
  bool: (value) => typeof value === "boolean" ? (value ? "t" : "f") : other("bool", value),
  jsonb: (value) => {
    const json: string | undefined = JSON.stringify(value)
    if (json === undefined) throw new TypeError(`expected a jsonb value, got ${typeof value}`)
    return escape(json)
  },
  "double precision": (value) => typeof value === "number" ? float(value) : other("double precision", value)
}

/** The value's type is not the column's. */
const other = (type: ColumnType, value: unknown): string => {
  throw expected(type, value)
}

/**
 * A value as COPY text (escaped), or `\N`; throws a `TypeError` for a value its column cannot take.
 *
 * @internal
 */
export const format = (type: ColumnType, value: unknown): string =>
  value === null || value === undefined ? nullText : formatters[type](value)

/** Bytes per `CopyData` message, about: large enough to amortize, small enough to stream. */
const frameBytes = 32 * 1024

/** The working buffer's usual size; one grown for a larger row is dropped after its frame. */
const workingBytes = 64 * 1024

/**
 * Writes rows straight into `CopyData` messages: UTF-8, escaped, framed, in one pass over each
 * value. ASCII text (nearly all of it) is written byte by byte as it is scanned for the four
 * characters to escape; text from its first non-ASCII character on goes through the native UTF-8
 * encoder (`Buffer.write`, which writes a lone surrogate as U+FFFD, as it always has here).
 */
class FrameWriter {
  buffer: Buffer = Buffer.allocUnsafe(workingBytes)
  /** Where the next byte goes; the first 5 bytes are the message header. */
  at = 5
  readonly frames: Array<Uint8Array> = []

  /** Room for `bytes` more bytes. */
  reserve(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + bytes))
    this.buffer.copy(grown, 0, 0, this.at)
    this.buffer = grown
  }

  /** Text this long is escaped and measured first, so the buffer grows by what it needs, not 3×. */
  static readonly long = 16 * 1024

  /** Writes `text` as UTF-8 after reserving exactly its bytes. */
  measured(text: string): void {
    this.reserve(Buffer.byteLength(text, "utf8"))
    this.at += this.buffer.write(text, this.at, "utf8")
  }

  /** A value's text, escaped. */
  text(value: string): void {
    this.write(value, true)
  }

  /** Text known to need no escaping (a formatted value: digits, `\N`, or already escaped). */
  verbatim(value: string): void {
    this.write(value, false)
  }

  /**
   * `value` as UTF-8, escaping the four special characters when `escaping`: at most 3 bytes per
   * UTF-16 unit (an escape is 2, a surrogate pair 4).
   */
  write(value: string, escaping: boolean): void {
    const length = value.length
    if (length > FrameWriter.long) return this.measured(escaping ? escape(value) : value)
    this.reserve(3 * length)
    const buffer = this.buffer
    let at = this.at
    for (let i = 0; i < length; i++) {
      const c = value.charCodeAt(i)
      if (c >= 0x80) {
        const rest = i === 0 ? value : value.slice(i)
        this.at = at + buffer.write(escaping ? escape(rest) : rest, at, "utf8")
        return
      }
      if (escaping && (c === 92 || (c <= 13 && (c === 9 || c === 10 || c === 13)))) {
        buffer[at++] = 92
        buffer[at++] = c === 92 ? 92 : c === 9 ? 116 : c === 10 ? 110 : 114
      } else {
        buffer[at++] = c
      }
    }
    this.at = at
  }

  /** An integer's digits (`String(n)`, without the string for one that fits in 32 bits). */
  integer(n: number): void {
    if (n < -0x7fffffff || n > 0x7fffffff) return this.write(String(n), false)
    this.reserve(11)
    const buffer = this.buffer
    let at = this.at
    let m = n | 0
    if (m < 0) {
      buffer[at++] = 45
      m = -m
    }
    let digits = 1
    for (let k = m; k >= 10; k = (k / 10) | 0) digits++
    let i = at + digits
    this.at = i
    do {
      const q = (m / 10) | 0
      buffer[--i] = 48 + m - q * 10
      m = q
    } while (m > 0)
  }

  byte(c: number): void {
    this.reserve(1)
    this.buffer[this.at++] = c
  }

  /** Ends the current message once it holds `frameBytes` or more (called between rows). */
  flushIfFull(): void {
    if (this.at >= frameBytes) this.flush()
  }

  flush(): void {
    if (this.at === 5) return
    const buffer = this.buffer
    buffer[0] = 0x64
    buffer.writeInt32BE(this.at - 1, 1)
    const frame = Buffer.allocUnsafeSlow(this.at)
    buffer.copy(frame, 0, 0, this.at)
    this.frames.push(frame)
    if (buffer.length > workingBytes) this.buffer = Buffer.allocUnsafe(workingBytes)
    this.at = 5
  }
}

type Writer = (out: FrameWriter, value: unknown) => void

/** A column's writer: the common types written directly, the others through their formatter. */
const writers: Record<ColumnType, Writer> = {
  text: (out, value) => typeof value === "string" ? out.text(value) : other("text", value),
  int: (out, value) =>
    typeof value === "number" && Number.isSafeInteger(value) ? out.integer(value) : out.verbatim(formatters.int(value)),
  bigint: (out, value) =>
    typeof value === "number" && Number.isSafeInteger(value)
      ? out.integer(value)
      : out.verbatim(formatters.bigint(value)),
  numeric: (out, value) => typeof value === "string" ? out.text(value) : out.verbatim(formatters.numeric(value)),
  date: (out, value) => typeof value === "string" ? out.text(value) : other("date", value),
  timestamptz: (out, value) => out.verbatim(formatters.timestamptz(value)),
  bool: (out, value) => out.verbatim(formatters.bool(value)),
  jsonb: (out, value) => out.verbatim(formatters.jsonb(value)),
  "double precision": (out, value) => out.verbatim(formatters["double precision"](value))
}

/**
 * Encodes rows as `CopyData` messages, each a whole number of rows. Throws a `TypeError` naming
 * the row and column of a bad value; then `check`, when given, sees the row's values and throws a
 * `TypeError` to reject it.
 *
 * Rows are written as bytes straight into the message, each value scanned once (escaping and
 * UTF-8 encoding together), and a message is copied out once it holds about 32 KiB: measured on the
 * orders feed, 0.21 µs per row against 0.42 µs for joining the rows into a string per message and
 * encoding that (which was itself a third faster than one native call per value).
 *
 * @internal
 */
export const encode = <A>(options: {
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: ColumnType }>
  readonly rows: ReadonlyArray<A>
  readonly toRow: (row: A) => ReadonlyArray<unknown>
  readonly check?: ((values: ReadonlyArray<unknown>, row: number) => void) | undefined
}): Array<Uint8Array> => {
  const { check, columns, rows, toRow } = options
  const width = columns.length
  const write = columns.map((column) => writers[column.type])
  const out = new FrameWriter()
  let c = 0
  for (let r = 0; r < rows.length; r++) {
    const values = toRow(rows[r] as A)
    if (values.length !== width) throw new TypeError(`row ${r}: expected ${width} values, got ${values.length}`)
    try {
      for (c = 0; c < width; c++) {
        if (c > 0) out.byte(9)
        const value = values[c]
        if (value === null || value === undefined) {
          out.byte(92)
          out.byte(78)
        } else {
          write[c]!(out, value)
        }
      }
    } catch (error) {
      throw new TypeError(`row ${r}, column ${columns[c]!.name}: ${(error as Error).message}`, { cause: error })
    }
    if (check !== undefined) check(values, r)
    out.byte(10)
    out.flushIfFull()
  }
  out.flush()
  return out.frames
}
