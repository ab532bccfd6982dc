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
 * @internal
 */
import type { PGlite } from "@electric-sql/pglite"
import { Duplex } from "node:stream"

const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

/** @internal */
export const make = (db: PGlite): Duplex => {
  let buffer: Buffer = Buffer.alloc(0)
  let chain: Promise<void> = Promise.resolve()
  let closed = false
  /** This link sent the StartupMessage: the session's transaction is its own. */
  let session = false

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
          await db.runExclusive(() =>
            db.execProtocolRawStream(new Uint8Array(message), {
              onRawData: (data) => {
                if (!closed && data.length > 0) duplex.push(Buffer.from(data))
              }
            })
          )
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
