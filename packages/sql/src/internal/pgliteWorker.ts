/**
 * The worker thread of a threaded PGlite session ({@link PgliteSession.open}): opens PGlite in
 * `workerData.dataDir` (or in memory), answers `ready`, then runs the requests one after the
 * other, in the order they arrive, on the in-process session. PGlite's output is copied out of
 * its memory and sent back in transferred batches of at least 64 KiB, the rest with the end of
 * the request.
 *
 * @internal
 */
import { PGlite } from "@electric-sql/pglite"
import { parentPort, workerData } from "node:worker_threads"
import * as PgliteSession from "./pgliteSession.ts"

const port = parentPort!
const { dataDir } = workerData as { readonly dataDir: string | undefined }

/** Output of the request being run is posted once this much is collected. */
const batchBytes = 64 * 1024

const main = async () => {
  let db: PGlite
  try {
    db = await PGlite.create(dataDir === undefined ? {} : { dataDir })
  } catch (error) {
    port.postMessage({ ready: false, error: error instanceof Error ? error.message : String(error) })
    return
  }
  const session = PgliteSession.inProcess(db)
  let chain: Promise<void> = Promise.resolve()

  const run = async (request: PgliteSession.Request): Promise<void> => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    const flush = () => {
      if (size === 0) return
      const data = new Uint8Array(size)
      let at = 0
      for (const chunk of chunks) {
        data.set(chunk, at)
        at += chunk.length
      }
      chunks.length = 0
      size = 0
      port.postMessage({ id: request.id, data }, [data.buffer])
    }
    // PGlite hands out views of its memory: copy them before it runs on
    const onData = (data: Uint8Array) => {
      chunks.push(data.slice())
      size += data.length
      if (size >= batchBytes) flush()
    }
    try {
      let value: unknown = undefined
      switch (request.op) {
        case "exec":
          await session.exec(request.message, onData)
          break
        case "load":
          await session.load(request.statement, [request.data], onData)
          break
        case "inTransaction":
          value = await session.inTransaction()
          break
        case "rollback":
          await session.rollback()
          break
        case "close":
          await db.close()
          break
      }
      flush()
      port.postMessage({ id: request.id, done: true, value })
    } catch (error) {
      flush()
      port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) })
    }
  }

  port.on("message", (request: PgliteSession.Request) => {
    chain = chain.then(() => run(request))
  })
  port.postMessage({ ready: true })
}

void main()
