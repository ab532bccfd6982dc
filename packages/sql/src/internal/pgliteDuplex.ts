/**
 * An in-process PostgreSQL wire-protocol link to PGlite: a `Duplex` that frames the
 * frontend messages written by `@effect/sql-pg` and feeds them to PGlite one at a time,
 * pushing PGlite's raw backend bytes back to the driver. No TCP, no socket server.
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
 * @internal
 */
import type { PGlite } from "@electric-sql/pglite"
import { Duplex } from "node:stream"

const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

const QUERY = 0x51
const COPY_DATA = 0x64
const COPY_DONE = 0x63
const COPY_FAIL = 0x66
const SYNC = 0x53
const FLUSH = 0x48

const copyFromStdin = /^\s*COPY\s[\s\S]*\bFROM\s+STDIN\b/i

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

/** The `COPY … FROM '/dev/blob'` that runs a `COPY … FROM STDIN` query, or `undefined` for other messages. */
const copyStatement = (message: Buffer): string | undefined => {
  if (message[0] !== QUERY) return undefined
  const sql = message.subarray(5, message.length - 1).toString("utf8")
  return copyFromStdin.test(sql) ? sql.replace(/\bFROM\s+STDIN\b/i, "FROM '/dev/blob'") : undefined
}

/** The statement that fails like PostgreSQL on `CopyFail` (the message is quoted, `$` dropped). */
const copyFailed = (reason: string): string =>
  `DO $sluice$BEGIN RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = 'COPY from stdin failed: ${
    reason.replaceAll("$", "").replaceAll("'", "''")
  }'; END$sluice$`

/** @internal */
export const make = (db: PGlite): Duplex => {
  let buffer: Buffer = Buffer.alloc(0)
  let chain: Promise<void> = Promise.resolve()
  let closed = false
  /** This link sent the StartupMessage: the session's transaction is its own. */
  let session = false
  /** A `COPY … FROM STDIN` in progress: its statement from the blob device and the data so far. */
  let copy: { readonly statement: string; readonly data: Array<Buffer> } | undefined

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
        session = true
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

  const duplex: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      const messages: Array<Buffer | "ssl" | "cancel"> = []
      for (let message = nextMessage(); message !== undefined; message = nextMessage()) messages.push(message)
      chain = chain.then(async () => {
        for (const message of messages) {
          if (closed) return
          if (message === "ssl") {
            duplex.push(Buffer.from("N"))
            continue
          }
          if (message === "cancel") {
            // PGlite runs a statement to completion on this thread, so there is nothing left to
            // cancel; like a server, end the cancel link at once instead of leaving it open.
            duplex.destroy()
            return
          }
          if (copy !== undefined) {
            const type = message[0]
            if (type === COPY_DATA) {
              copy.data.push(message.subarray(5))
              continue
            }
            if (type === SYNC || type === FLUSH) continue
            const { data, statement } = copy
            copy = undefined
            if (type === COPY_DONE) {
              await db.runExclusive(async () => {
                await db._handleBlob(new Blob(data))
                try {
                  await db.execProtocolRawStream(query(statement), { onRawData: forward })
                } finally {
                  await db._cleanupBlob()
                }
              })
              continue
            }
            const reason = type === COPY_FAIL
              ? message.subarray(5, message.length - 1).toString("utf8")
              : `unexpected message type 0x${type?.toString(16)} during COPY from stdin`
            await db.runExclusive(() => db.execProtocolRawStream(query(copyFailed(reason)), { onRawData: forward }))
            if (type === COPY_FAIL) continue
          }
          const statement = copyStatement(message)
          if (statement !== undefined) {
            copy = { statement, data: [] }
            duplex.push(copyInResponse)
            continue
          }
          await db.runExclusive(() => db.execProtocolRawStream(new Uint8Array(message), { onRawData: forward }))
        }
      }).catch((error: unknown) => {
        duplex.destroy(error instanceof Error ? error : new Error(String(error)))
      })
      callback()
    },
    final(callback) {
      chain.then(() => callback(), callback)
    },
    destroy(error, callback) {
      closed = true
      // The session's link going away mid-transaction must not leave PGlite's single session inside
      // it; any other link (a cancel request) has no transaction of its own to roll back.
      const rollback = session && db.isInTransaction()
        ? db.exec("ROLLBACK").then(() => undefined, () => undefined)
        : Promise.resolve()
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
