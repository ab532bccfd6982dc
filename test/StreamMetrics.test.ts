/**
 * `sluice stream --metrics-port N`: a streaming pipeline's metrics live only in the process that
 * consumes the stream, so that process serves them itself at `/metrics`. Runs against a NATS server
 * of its own (`nats-server -js` on a free port); skipped where `nats-server` is not installed.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"
import * as NatsServer from "./NatsServer.ts"

const main = Path.resolve(import.meta.dirname, "../apps/sluice/src/main.ts")

describe.skipIf(!NatsServer.installed)("sluice stream --metrics-port", () => {
  it.live("serves the streaming pipeline's metrics from the consuming process", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-stream-metrics-" })
      const nats = yield* NatsServer.start
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
