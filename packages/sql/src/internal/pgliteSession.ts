/**
 * PGlite's single session, as the wire link ({@link PgliteDuplex}) uses it: run one frontend
 * message, run a `COPY … FROM '/dev/blob'` with data as the blob, ask whether a transaction is
 * open, roll it back. Every call runs after the previous one has finished (PGlite's own mutex).
 *
 * Two implementations:
 * - {@link inProcess}: a PGlite of this thread. PGlite executes a statement synchronously, so
 *   while it runs (a COPY piece of a bulk load, a long query) this thread does nothing else.
 * - {@link open}: a PGlite in a worker thread of its own (`pgliteWorker.ts`). A bulk load then
 *   decodes and encodes its next rows while PGlite stores the previous ones, and timers, sockets
 *   and other fibers of this thread keep running during a statement. Messages cross threads as
 *   transferred buffers: a frontend message goes over whole, PGlite's output comes back in
 *   batches of at least 64 KiB (or at the end of the message), a COPY piece goes over once.
 *
 * @internal
 */
import type { PGlite } from "@electric-sql/pglite"
import { Worker } from "node:worker_threads"

/** @internal */
export interface Session {
  /** Runs one frontend message, handing PGlite's raw output (backend messages) to `onData`. */
  readonly exec: (message: Uint8Array, onData: (data: Uint8Array) => void) => Promise<void>
  /** Runs the query message `statement` (a COPY from `/dev/blob`) with `data` as the blob. */
  readonly load: (
    statement: Uint8Array,
    data: ReadonlyArray<Uint8Array>,
    onData: (data: Uint8Array) => void
  ) => Promise<void>
  /** Whether the session is inside a transaction block. */
  readonly inTransaction: () => Promise<boolean>
  /** Rolls the session's transaction back, if it is in one; never fails. */
  readonly rollback: () => Promise<void>
}

/** @internal */
export const inProcess = (db: PGlite): Session => ({
  exec: (message, onData) => db.runExclusive(() => db.execProtocolRawStream(message, { onRawData: onData })),
  load: (statement, data, onData) =>
    db.runExclusive(async () => {
      await db._handleBlob(new Blob(data as Array<Uint8Array<ArrayBuffer>>))
      try {
        await db.execProtocolRawStream(statement, { onRawData: onData })
      } finally {
        await db._cleanupBlob()
      }
    }),
  inTransaction: () => Promise.resolve(db.isInTransaction()),
  rollback: () => db.isInTransaction() ? db.exec("ROLLBACK").then(() => undefined, () => undefined) : Promise.resolve()
})

/** A request to the worker. @internal */
export type Request =
  | { readonly id: number; readonly op: "exec"; readonly message: Uint8Array }
  | { readonly id: number; readonly op: "load"; readonly statement: Uint8Array; readonly data: Uint8Array }
  | { readonly id: number; readonly op: "inTransaction" }
  | { readonly id: number; readonly op: "rollback" }
  | { readonly id: number; readonly op: "close" }

/** A request without its id (each of the union's members). */
type RequestBody = Request extends infer R ? R extends { readonly id: number } ? Omit<R, "id"> : never : never

/** An answer of the worker: output of request `id`, its end (with a value), or its failure. @internal */
export type Answer =
  | { readonly id: number; readonly data: Uint8Array }
  | { readonly id: number; readonly done: true; readonly value?: unknown }
  | { readonly id: number; readonly error: string }

/** The worker's first message: PGlite is open, or why it is not. @internal */
export type Ready = { readonly ready: true } | { readonly ready: false; readonly error: string }

/** A session in a worker thread, and how to close it. @internal */
export interface Threaded extends Session {
  /** Closes PGlite (flushing a persisted data directory) and ends the worker. */
  readonly close: () => Promise<void>
}

/** A copy of `bytes` that owns its whole buffer (so that it can be transferred). */
const owned = (bytes: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(bytes.length)
  copy.set(bytes)
  return copy
}

/**
 * Starts a worker thread and opens PGlite in it (persisted in `dataDir`, or in memory); fails
 * with PGlite's error when it cannot be opened.
 *
 * @internal
 */
export const open = (dataDir: string | undefined): Promise<Threaded> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./pgliteWorker.ts", import.meta.url), {
      workerData: { dataDir },
      // none of the process's options: they may not apply to a thread (`--input-type`, V8's)
      execArgv: []
    })
    const pending = new Map<number, {
      readonly onData: ((data: Uint8Array) => void) | undefined
      readonly resolve: (value: unknown) => void
      readonly reject: (error: Error) => void
    }>()
    let nextId = 0
    let ended: Error | undefined
    let opened = false
    const end = (error: Error) => {
      if (ended !== undefined) return
      ended = error
      for (const request of pending.values()) request.reject(error)
      pending.clear()
      if (!opened) reject(error)
    }
    worker.on("error", (error) => end(error instanceof Error ? error : new Error(String(error))))
    worker.on("exit", (code) => end(new Error(`the PGlite worker exited (code ${code})`)))
    worker.on("message", (message: Ready | Answer) => {
      if ("ready" in message) {
        if (!message.ready) {
          end(new Error(message.error))
          void worker.terminate()
          return
        }
        opened = true
        resolve(session)
        return
      }
      const request = pending.get(message.id)
      if (request === undefined) return
      if ("data" in message) {
        request.onData?.(message.data)
      } else if ("error" in message) {
        pending.delete(message.id)
        request.reject(new Error(message.error))
      } else {
        pending.delete(message.id)
        request.resolve(message.value)
      }
    })
    const call = <A>(
      request: RequestBody,
      onData?: (data: Uint8Array) => void,
      transfer: ReadonlyArray<ArrayBuffer> = []
    ): Promise<A> =>
      new Promise<A>((resolve, reject) => {
        if (ended !== undefined) return reject(ended)
        const id = nextId++
        pending.set(id, { onData, resolve: resolve as (value: unknown) => void, reject })
        worker.postMessage({ ...request, id }, transfer as Array<ArrayBuffer>)
      })
    const session: Threaded = {
      exec: (message, onData) => {
        const bytes = owned(message)
        return call({ op: "exec", message: bytes }, onData, [bytes.buffer as ArrayBuffer])
      },
      load: (statement, data, onData) => {
        const size = data.reduce((sum, chunk) => sum + chunk.length, 0)
        const blob = new Uint8Array(size)
        let at = 0
        for (const chunk of data) {
          blob.set(chunk, at)
          at += chunk.length
        }
        const query = owned(statement)
        return call({ op: "load", statement: query, data: blob }, onData, [
          query.buffer as ArrayBuffer,
          blob.buffer as ArrayBuffer
        ])
      },
      inTransaction: () => call<boolean>({ op: "inTransaction" }),
      rollback: () => call<void>({ op: "rollback" }).catch(() => undefined),
      close: async () => {
        if (ended === undefined) await call<void>({ op: "close" }).catch(() => undefined)
        await worker.terminate()
      }
    }
  })
