/**
 * `sluice stream --metrics-port N`: a streaming pipeline's metrics live only in the process that
 * consumes the stream, so that process serves them itself at `/metrics`. Runs against a NATS server
 * of its own (`nats-server -js` on a free port); skipped where `nats-server` is not installed.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Schedule, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as ChildProcessNode from "node:child_process"
import * as Net from "node:net"
import * as Path from "node:path"

const main = Path.resolve(import.meta.dirname, "../apps/sluice/src/main.ts")

const hasNatsServer = ChildProcessNode.spawnSync("nats-server", ["--version"]).status === 0

const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A JetStream-enabled NATS server on a free port, stopped with the scope. */
const natsServer = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const store = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-nats-" })
  const port = yield* freePort
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const handle = yield* spawner.spawn(
    ChildProcess.make("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store])
  )
  // ready once it accepts connections
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

describe.skipIf(!hasNatsServer)("sluice stream --metrics-port", () => {
  it.live("serves the streaming pipeline's metrics from the consuming process", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-stream-metrics-" })
      const nats = yield* natsServer
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const env = { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1", NATS_URL: nats.url }
      const published = yield* spawner.spawn(
        ChildProcess.make("node", [main, "publish-orders", "--count", "40", "--seed", "3"], {
          cwd,
          env,
          extendEnv: true
        })
      )
      const [publishOut, publishCode] = yield* Effect.all([
        Stream.mkString(Stream.decodeText(published.stdout)),
        published.exitCode
      ], { concurrency: 2 })
      assert.strictEqual(Number(publishCode), 0, publishOut)

      const handle = yield* spawner.spawn(
        ChildProcess.make("node", [main, "stream", "order-stream", "--metrics-port", "0"], {
          cwd,
          env,
          extendEnv: true
        })
      )
      // listening, and at least one batch committed
      const out = yield* Stream.decodeText(handle.stdout).pipe(
        Stream.scan(() => "", (all: string, chunk: string) => all + chunk),
        Stream.takeUntil((all) => /Listening on http:\/\/[\d.]+:\d+/.test(all) && /^seq \d+/m.test(all)),
        Stream.runLast,
        Effect.map((last) => last._tag === "Some" ? last.value : ""),
        Effect.timeout("60 seconds")
      )
      const address = /Listening on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1]
      assert.isDefined(address, out)
      const response = yield* Effect.promise(() =>
        fetch(`${address}/metrics`).then(async (r) => ({ status: r.status, body: await r.text() }))
      )
      assert.strictEqual(response.status, 200)
      assert.match(response.body, /^sluice_records_read_total\{pipeline="order-stream"\} [1-9]\d*$/m, response.body)
      assert.match(response.body, /^sluice_circuit_breaker_state\{breaker="commit",pipeline="order-stream"\} 0$/m)
      yield* handle.kill()
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), { timeout: 120_000 })
})
