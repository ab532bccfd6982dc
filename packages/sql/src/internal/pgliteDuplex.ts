/**
 * An in-process PostgreSQL wire-protocol link to PGlite: a `Duplex` that frames the
 * frontend messages written by `@effect/sql-pg` and feeds them to PGlite's session
 * ({@link PgliteSession}, in this thread or in a worker thread) one at a time, pushing PGlite's
 * raw backend bytes back to the driver. No TCP, no socket server.
 *
 * Every link reaches the same single PGlite session. Only the link that opened it (sent the
 * StartupMessage) owns it: the driver also opens a link of its own to send a `CancelRequest`
 * when an interrupted statement does not finish at once, and that link never touches the
 * session; in particular, closing it does not roll back the transaction the session is in.
 *
 * PGlite cannot run `COPY … FROM STDIN` from the wire protocol (its backend would have to read
 * the data from the client while executing the statement; it exits instead), so the link
 * carries it: it answers the `Query` with a `CopyInResponse`, collects the `CopyData`, and on
 * `CopyDone` runs the same COPY from PGlite's `/dev/blob` device with the data as the blob,
 * forwarding PGlite's own `CommandComplete` or `ErrorResponse` and `ReadyForQuery`. A
 * `CopyFail` becomes the error PostgreSQL raises for it (`57014`, "COPY from stdin failed"),
 * which aborts the transaction as on a server.
 *
 * A long COPY is loaded in pieces, so the link holds a bounded amount of data whatever the
 * stream's length: when the COPY is in text format (its statement has no option after
 * `FROM STDIN`, so no `FORMAT`, `CSV` or `BINARY`) and runs inside a transaction, each time about
 * 1 MiB ({@link pieceBytes}) of `CopyData` is collected the link runs the COPY from the blob for
 * the data up to its last newline byte (in text format a raw newline always ends a row: newlines
 * in values are escaped) and keeps the rest for the next piece. A piece's answer is not forwarded:
 * its row count is added to a running total, and `CopyDone` runs the last piece (possibly empty)
 * and forwards its answer with `COPY <total>`, so the client sees exactly one COPY. When a piece
 * fails, its `ErrorResponse` (the line number in its context counted from the COPY's first row)
 * and `ReadyForQuery` are forwarded at once, and the COPY's remaining `CopyData` and its
 * `CopyDone` or `CopyFail` are dropped, as a server drops them after an error during copy-in.
 * Every piece runs in the client's transaction, so a failure or a `CopyFail` after some pieces
 * leaves the transaction aborted, and its rollback undoes them. A COPY outside a transaction (each
 * piece would commit on its own) or in another format is loaded whole on `CopyDone`, as one piece;
 * so is the rest of a COPY from a piece on that has a line `\.` (the end-of-data marker, after
 * which the rest is ignored) or a carriage return byte (a line end `\r\n` or `\r`, whose style
 * PostgreSQL takes from the first line and then requires throughout). One piece loads while the
 * next is collected (with PGlite in a worker thread, the writer encodes the next rows meanwhile);
 * a chunk of `CopyData` that completes a piece while the one before is still loading is not
 * acknowledged until that one has loaded, so a writer that honours the stream's backpressure (the
 * driver's `copyStream` does) pauses instead of piling its data up in the link.
 *
 * @internal
 */
import { Duplex } from "node:stream"
import type * as PgliteSession from "./pgliteSession.ts"

const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

const QUERY = 0x51
const COPY_DATA = 0x64
const COPY_DONE = 0x63
const COPY_FAIL = 0x66
const SYNC = 0x53
const FLUSH = 0x48

const COMMAND_COMPLETE = 0x43
const ERROR_RESPONSE = 0x45
const NEWLINE = 0x0a
const RETURN = 0x0d

const copyFromStdin = /^\s*COPY\s[\s\S]*\bFROM\s+STDIN\b/i
/** A COPY with nothing after `FROM STDIN`: no option, so text format (checked with {@link formatWords}). */
const plainCopyFromStdin = /^\s*COPY\s[\s\S]*\bFROM\s+STDIN\s*;?\s*$/i
/** Words that may choose another format; a statement with any of them anywhere is not split. */
const formatWords = /\b(?:FORMAT|CSV|BINARY)\b/i

/**
 * The `CopyData` collected before a piece of a long COPY is loaded (about 10,000 rows of orders).
 * Small, so that PGlite loads a piece while the writer encodes the next even when a load is a
 * series of COPYs of a few MiB (a pipeline ends its COPY to write the dead letters it holds):
 * with 8 MiB pieces, the daily-revenue load's COPYs (about 7.5 MB each) were loaded whole after
 * their `CopyDone`, the writer waiting: 1M rows loaded in 10.0–10.2 s instead of 8.0–8.1 s with
 * 1 MiB pieces (`pnpm bench`'s `sluice-pglite`, alternate runs). A piece costs PGlite one statement:
 * 0.5 MiB was no faster, 4 MiB as slow as 8.
 *
 * @internal
 */
export const pieceBytes = 1024 * 1024

const frame = (type: number, body: Buffer): Buffer => {
  const bytes = Buffer.alloc(5 + body.length)
  bytes[0] = type
  bytes.writeInt32BE(4 + body.length, 1)
  body.copy(bytes, 5)
  return bytes
}

const query = (sql: string): Uint8Array => new Uint8Array(frame(QUERY, Buffer.from(`${sql}\u0000`, "utf8")))

/** A `CopyInResponse` for text format (PGlite's COPY reports its own columns later, if at all). */
const copyInResponse = frame(0x47, Buffer.from([0, 0, 0]))

/**
 * The `COPY … FROM '/dev/blob'` that runs a `COPY … FROM STDIN` query, and whether its data is
 * surely in text format (it can be split at any newline byte); `undefined` for other messages.
 */
const copyStatement = (message: Buffer): { readonly statement: string; readonly text: boolean } | undefined => {
  if (message[0] !== QUERY) return undefined
  const sql = message.subarray(5, message.length - 1).toString("utf8")
  if (!copyFromStdin.test(sql)) return undefined
  const text = plainCopyFromStdin.test(sql) && !formatWords.test(sql) && sql.match(/\bFROM\s+STDIN\b/gi)?.length === 1
  return { statement: sql.replace(/\bFROM\s+STDIN\b/i, "FROM '/dev/blob'"), text }
}

/** The backend messages of PGlite's output (type byte, int32 length, body), whole. */
const messagesOf = (output: Buffer): Array<Buffer> => {
  const messages: Array<Buffer> = []
  for (let at = 0; at + 5 <= output.length;) {
    const end = at + 1 + output.readInt32BE(at + 1)
    messages.push(output.subarray(at, end))
    at = end
  }
  return messages
}

/** The row count of a `CommandComplete` message `COPY n`, or `undefined` for any other message. */
const copyCount = (message: Buffer): number | undefined => {
  if (message[0] !== COMMAND_COMPLETE) return undefined
  const tag = /^COPY (\d+)\0$/.exec(message.subarray(5).toString("latin1"))
  return tag === null ? undefined : Number(tag[1])
}

/**
 * An `ErrorResponse` whose context (`COPY t, line n`, counted from its piece's first row) counts
 * from the COPY's first row: `rows` rows, one a line in text format, were loaded before.
 */
const shiftLines = (message: Buffer, rows: number): Buffer => {
  const body = message.subarray(5)
  const fields: Array<Buffer> = []
  for (let at = 0; at < body.length && body[at] !== 0;) {
    const end = body.indexOf(0, at + 1)
    if (end < 0) return message
    const code = body[at]!
    const value = body.toString("utf8", at + 1, end)
    const shifted = code === 0x57
      ? value.replace(/^(COPY .*?, line )(\d+)/m, (_, head: string, line: string) => `${head}${Number(line) + rows}`)
      : value
    fields.push(Buffer.from([code]), Buffer.from(`${shifted}\u0000`, "utf8"))
    at = end + 1
  }
  fields.push(Buffer.from([0]))
  return frame(ERROR_RESPONSE, Buffer.concat(fields))
}

/**
 * Whether whole rows of text-format data load as a piece exactly as within the whole data: not
 * when they have an end-of-data marker (`\.` then a line end; or bytes that might be one), after
 * which the rest of the data is ignored, nor a carriage return byte (in text format only in a
 * line end `\r\n` or `\r`, whose style PostgreSQL takes from the data's first line).
 */
const isPiece = (data: Buffer): boolean => {
  if (data.includes(RETURN)) return false
  for (let at = data.indexOf("\\."); at >= 0; at = data.indexOf("\\.", at + 1)) {
    if (data[at + 2] === NEWLINE) return false
  }
  return true
}

/** The statement that fails like PostgreSQL on `CopyFail` (the message is quoted, `$` dropped). */
const copyFailed = (reason: string): string =>
  `DO $sluice$BEGIN RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = 'COPY from stdin failed: ${
    reason.replaceAll("$", "").replaceAll("'", "''")
  }'; END$sluice$`

/** @internal */
export const make = (session: PgliteSession.Session): Duplex => {
  let buffer: Buffer = Buffer.alloc(0)
  let chain: Promise<void> = Promise.resolve()
  let closed = false
  /** This link sent the StartupMessage: the session's transaction is its own. */
  let owner = false
  /** A `COPY … FROM STDIN` in progress. */
  let copy:
    | {
      /** Its statement from the blob device. */
      readonly statement: string
      /** Load it in pieces (text format, inside a transaction). */
      pieces: boolean
      /** The data collected and not loaded yet, `size` bytes. */
      data: Array<Buffer>
      size: number
      /** Collected data that makes the next piece (more while a row longer than a piece arrives). */
      threshold: number
      /** The rows loaded by earlier pieces. */
      rows: number
      /** A piece failed and its error is answered: the COPY's remaining messages are dropped. */
      failed: boolean
      /** The piece being loaded, while the next one is collected. */
      loading: Promise<void> | undefined
    }
    | undefined

  const nextMessage = (): Buffer | "ssl" | "cancel" | undefined => {
    if (buffer.length >= 8) {
      const length = buffer.readInt32BE(0)
      const code = buffer.readInt32BE(4)
      if (length === 8 && code === SSL_REQUEST) {
        buffer = buffer.subarray(8)
        return "ssl"
      }
      if (length === 16 && code === CANCEL_REQUEST && buffer.length >= 16) {
        buffer = buffer.subarray(16)
        return "cancel"
      }
      if (code === PROTOCOL_3) {
        if (buffer.length < length) return undefined
        const message = buffer.subarray(0, length)
        buffer = buffer.subarray(length)
        owner = true
        return message
      }
    }
    if (buffer.length < 5) return undefined
    const length = 1 + buffer.readInt32BE(1)
    if (buffer.length < length) return undefined
    const message = buffer.subarray(0, length)
    buffer = buffer.subarray(length)
    return message
  }

  const forward = (data: Uint8Array): void => {
    if (!closed && data.length > 0) duplex.push(Buffer.from(data))
  }

  /** Runs a COPY from the blob device with `data` as the blob, handing PGlite's output to `onRawData`. */
  const load = (statement: string, data: ReadonlyArray<Buffer>, onRawData: (data: Uint8Array) => void) =>
    session.load(query(statement), data, onRawData)

  /** Runs a COPY from the blob device with `data` as the blob, and returns PGlite's whole output. */
  const loadCaptured = async (statement: string, data: ReadonlyArray<Buffer>): Promise<Buffer> => {
    const output: Array<Buffer> = []
    await load(statement, data, (bytes) => output.push(Buffer.from(bytes)))
    return Buffer.concat(output)
  }

  /**
   * Starts loading the collected data up to its last newline as a piece of the COPY, keeping the
   * rest, once the piece before has loaded (so at most one piece loads while the next is
   * collected); answers the client at once when the piece fails.
   */
  const loadPiece = async (current: NonNullable<typeof copy>): Promise<void> => {
    await current.loading
    if (current.failed) return
    const collected = Buffer.concat(current.data, current.size)
    const cut = collected.lastIndexOf(NEWLINE) + 1
    if (cut === 0) {
      // no whole row yet: look again once as much again has come (at least a piece), so that a row
      // of many pieces is copied together a few times, not once per piece
      current.data = [collected]
      current.threshold = current.size + Math.max(pieceBytes, current.size)
      return
    }
    const piece = collected.subarray(0, cut)
    if (!isPiece(piece)) {
      // the rest of the COPY is loaded whole, as PGlite reads it
      current.data = [collected]
      current.pieces = false
      return
    }
    current.data = cut < collected.length ? [Buffer.from(collected.subarray(cut))] : []
    current.size = collected.length - cut
    current.threshold = pieceBytes
    const rows = current.rows
    current.loading = loadCaptured(current.statement, [piece]).then((output) => {
      const messages = messagesOf(output)
      if (messages.some((message) => message[0] === ERROR_RESPONSE)) {
        forward(
          Buffer.concat(messages.map((message) => message[0] === ERROR_RESPONSE ? shiftLines(message, rows) : message))
        )
        current.failed = true
        current.data = []
        current.size = 0
        return
      }
      const count = messages.map(copyCount).find((rows) => rows !== undefined)
      if (count === undefined) {
        throw new Error("PGlite answered a piece of COPY without CommandComplete or ErrorResponse")
      }
      current.rows += count
    })
    // a piece that cannot be loaded (the session is gone) ends the link at once, as any failure of
    // the session does; the next piece or the COPY's end, awaiting it, then stop there
    current.loading.catch((error: unknown) => duplex.destroy(error instanceof Error ? error : new Error(String(error))))
  }

  const duplex: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      const messages: Array<Buffer | "ssl" | "cancel"> = []
      for (let message = nextMessage(); message !== undefined; message = nextMessage()) messages.push(message)
      // CopyData is acknowledged once handled (a piece may be loading): the writer sees backpressure
      const copyData = messages.some((message) => typeof message !== "string" && message[0] === COPY_DATA)
      chain = chain.then(async () => {
        for (const message of messages) {
          if (closed) return
          if (message === "ssl") {
            duplex.push(Buffer.from("N"))
            continue
          }
          if (message === "cancel") {
            // PGlite runs a statement to completion, so there is nothing left to cancel; like a
            // server, end the cancel link at once instead of leaving it open.
            duplex.destroy()
            return
          }
          if (copy !== undefined) {
            const type = message[0]
            if (type === COPY_DATA) {
              if (copy.failed) continue
              copy.data.push(message.subarray(5))
              copy.size += message.length - 5
              if (copy.pieces && copy.size >= copy.threshold) await loadPiece(copy)
              continue
            }
            if (type === SYNC || type === FLUSH) continue
            // the COPY ends (or is abandoned): its last piece in flight first
            await copy.loading
            const { data, failed, rows, statement } = copy
            copy = undefined
            if (failed) {
              // a piece's error is answered: like a server, drop the COPY's end and go on
              if (type === COPY_DONE || type === COPY_FAIL) continue
            } else if (type === COPY_DONE) {
              if (rows === 0) {
                await load(statement, data, forward)
                continue
              }
              // the last piece: its answer counts the rows of every piece
              const messages = messagesOf(await loadCaptured(statement, data))
              forward(Buffer.concat(messages.map((message) => {
                if (message[0] === ERROR_RESPONSE) return shiftLines(message, rows)
                const count = copyCount(message)
                return count === undefined
                  ? message
                  : frame(COMMAND_COMPLETE, Buffer.from(`COPY ${rows + count}\u0000`))
              })))
              continue
            }
            if (!failed) {
              const reason = type === COPY_FAIL
                ? message.subarray(5, message.length - 1).toString("utf8")
                : `unexpected message type 0x${type?.toString(16)} during COPY from stdin`
              await session.exec(query(copyFailed(reason)), forward)
              if (type === COPY_FAIL) continue
            }
          }
          const copyQuery = copyStatement(message)
          if (copyQuery !== undefined) {
            copy = {
              statement: copyQuery.statement,
              // outside a transaction, each piece would commit on its own
              pieces: copyQuery.text && await session.inTransaction(),
              data: [],
              size: 0,
              threshold: pieceBytes,
              rows: 0,
              failed: false,
              loading: undefined
            }
            duplex.push(copyInResponse)
            continue
          }
          await session.exec(message, forward)
        }
      }).catch((error: unknown) => {
        duplex.destroy(error instanceof Error ? error : new Error(String(error)))
      })
      if (copyData) chain.then(() => callback())
      else callback()
    },
    final(callback) {
      chain.then(() => callback(), callback)
    },
    destroy(error, callback) {
      closed = true
      // The session's link going away mid-transaction must not leave PGlite's single session inside
      // it; any other link (a cancel request) has no transaction of its own to roll back.
      const rollback = owner ? session.rollback() : Promise.resolve()
      rollback.then(() => callback(error))
    }
  })
  // The driver treats the stream like a net.Socket.
  Object.assign(duplex, {
    setNoDelay: () => duplex,
    setKeepAlive: () => duplex,
    unref: () => duplex,
    ref: () => duplex
  })
  return duplex
}
