/**
 * A NATS server of a test's own: `nats-server -js` on a free port with a temporary store, for tests
 * that run the `sluice` commands, whose stream (`ORDERS`) and consumer names are fixed, so that they
 * disturb no other user of a shared server.
 */
import { Effect, FileSystem, Schedule } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as ChildProcessNode from "node:child_process"
import * as Net from "node:net"

/** Whether `nats-server` is installed. */
export const installed: boolean = ChildProcessNode.spawnSync("nats-server", ["--version"]).status === 0

/** A free TCP port of 127.0.0.1. */
export const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A JetStream-enabled NATS server on a free port, stopped with the scope; ready once it accepts connections. */
export const start = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const store = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-nats-" })
  const port = yield* freePort
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const handle = yield* spawner.spawn(
    ChildProcess.make("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store])
  )
  yield* Effect.callback<boolean, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.fail(new Error("not yet"))))
  }).pipe(Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") }))
  return { url: `127.0.0.1:${port}`, handle }
})
