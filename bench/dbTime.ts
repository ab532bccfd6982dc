/**
 * How long the database is busy with a client's statements: a socket for `@effect/sql-pg` that
 * notes when a statement goes out (a `Sync` or a simple `Query`) and when its `ReadyForQuery`
 * comes back. The time during which at least one statement is outstanding, on any connection, is
 * the time spent in SQL (round trips included); the rest of a run is the client's own.
 */
import * as Net from "node:net"
import type { Duplex } from "node:stream"

let outstanding = 0
let since = 0
let busy = 0

/** Milliseconds during which a statement was outstanding, since the process started. */
export const busyMillis = (): number => busy + (outstanding > 0 ? performance.now() - since : 0)

const started = (n: number): void => {
  if (n === 0) return
  if (outstanding === 0) since = performance.now()
  outstanding += n
}

const finished = (n: number): void => {
  if (n === 0 || outstanding === 0) return
  outstanding = Math.max(0, outstanding - n)
  if (outstanding === 0) busy += performance.now() - since
}

/** Counts the messages of one type in a stream of protocol messages, across chunk boundaries. */
const counter = (types: ReadonlyArray<number>, skipStartup: boolean) => {
  let pending = Buffer.alloc(0)
  let startup = skipStartup
  return (chunk: Uint8Array): number => {
    pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk])
    let count = 0
    let at = 0
    if (startup && pending.length >= 8) {
      // the StartupMessage (or SSLRequest) has no type byte
      at = pending.readInt32BE(0)
      startup = false
    }
    while (at + 5 <= pending.length) {
      const end = at + 1 + pending.readInt32BE(at + 1)
      if (end > pending.length) break
      if (types.includes(pending[at]!)) count++
      at = end
    }
    pending = pending.subarray(at)
    return count
  }
}

/** A TCP connection to PostgreSQL whose statements are timed (see {@link busyMillis}). */
export const connect = (host: string, port: number) => (): Duplex => {
  const socket = Net.connect({ host, port, noDelay: true })
  const sent = counter([0x53, 0x51], true)
  const received = counter([0x5a], false)
  let ready = false
  const write = socket.write.bind(socket) as (...args: Array<unknown>) => boolean
  socket.write = ((chunk: Uint8Array, ...rest: Array<unknown>) => {
    const n = sent(chunk)
    if (ready) started(n)
    return write(chunk, ...rest)
  }) as typeof socket.write
  socket.on("data", (chunk: Buffer) => {
    const n = received(chunk)
    // the first ReadyForQuery ends the startup, which is not a statement
    if (!ready && n > 0) {
      ready = true
      return
    }
    finished(n)
  })
  socket.on("close", () => finished(outstanding))
  return socket
}
