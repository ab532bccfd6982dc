/**
 * The live consumer and a replay of a stream pipeline, as processes (`sluice stream order-stream`,
 * `sluice replay order-stream`, `test/ReplayProcess.ts`) on a NATS server of the test's own: a replay
 * refuses to start while the live consumer runs, and the live consumer while a replay runs, with one
 * `error:` line and exit status 1 (`PipelineBusy`); a replay killed outright holds nothing. On
 * PostgreSQL the refusal is the pipeline's lock (an advisory lock); on PGlite the second process is
 * kept out of the data directory first (`DataDirLocked`), and the in-process lock is tested in
 * `apps/order-stream/test/OrderStream.test.ts`.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"
import * as NatsServer from "./NatsServer.ts"
import * as SluiceCli from "./SluiceCli.ts"

const replayProcess = Path.resolve(import.meta.dirname, "ReplayProcess.ts")

const killQuietly = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
}

/** Reads `stdout` until `pattern` matches what was read; fails after a minute. */
const waitFor = (stdout: Stream.Stream<Uint8Array, unknown>, pattern: RegExp) =>
  Stream.decodeText(stdout).pipe(
    Stream.scan(() => "", (all: string, chunk: string) => all + chunk),
    Stream.takeUntil((all) => pattern.test(all)),
    Stream.runLast,
    Effect.map((last) => last._tag === "Some" ? last.value : ""),
    Effect.timeout("60 seconds"),
    Effect.tap((all) => Effect.sync(() => assert.match(all, pattern)))
  )

describe.skipIf(!NatsServer.installed)("the live consumer and a replay, as processes", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `a replay refuses to start while the live consumer runs, and the consumer while a replay runs [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-stream-replay-lock-" })
          const nats = yield* NatsServer.start
          const { env: databaseEnv } = yield* session.database(cwd)
          const env = { ...databaseEnv, NATS_URL: nats.url, SLUICE_TEST_NATS_URL: nats.url }
          const busy = session.backend === "postgres"
            ? (running: string) => new RegExp(`^error: order-stream: a ${running} is running`)
            : () => /^error: the database .* is in use by process \d+/
          yield* SluiceCli.run(cwd, [
            "publish-orders",
            "--count",
            "60",
            "--seed",
            "4",
            "--bad-share",
            "0.3",
            "--duplicate-share",
            "0"
          ], {
            env,
            code: 0
          })

          // the live consumer runs: a replay is refused
          const live = yield* SluiceCli.spawn(cwd, ["stream", "order-stream"], env)
          yield* Effect.addFinalizer(() => Effect.sync(() => killQuietly(Number(live.pid))))
          yield* waitFor(live.stdout, /^seq \d+/m)
          const replayArgs = ["replay", "order-stream", "--from-seq", "1"]
          const refused = yield* SluiceCli.run(cwd, replayArgs, { env, code: 1 })
          SluiceCli.assertOneLineError(refused, busy("live consumer"))
          assert.strictEqual(refused.stdout, "", "nothing replayed")
          yield* live.kill()
          yield* Effect.exit(live.exitCode)

          // a replay runs (held in a write once it has committed dead letters): the live consumer is refused
          const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
          const replay = yield* spawner.spawn(ChildProcess.make("node", [replayProcess, "ORDERS"], {
            cwd,
            env: { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1", ...env },
            extendEnv: true
          }))
          yield* Effect.addFinalizer(() => Effect.sync(() => killQuietly(Number(replay.pid))))
          yield* waitFor(replay.stdout, /committed \d+-\d+ [1-9]/)
          const consumer = yield* SluiceCli.run(cwd, ["stream", "order-stream"], { env, code: 1 })
          SluiceCli.assertOneLineError(consumer, busy("replay"))
          assert.notMatch(consumer.stdout, /consuming/, "the consumer never started")

          // killed outright, the replay holds nothing: a replay and the live consumer start again
          process.kill(Number(replay.pid), "SIGKILL")
          yield* Effect.exit(replay.exitCode)
          const replayed = yield* SluiceCli.run(cwd, replayArgs, { env, code: 0 })
          assert.match(
            replayed.stdout,
            /replay caught up: 60 events, \d+ loaded, \d+ dead-lettered, 0 skipped \(duplicates\);/,
            SluiceCli.describeResult(replayArgs, replayed)
          )
          const restarted = yield* SluiceCli.spawn(cwd, ["stream", "order-stream"], env)
          yield* Effect.addFinalizer(() => Effect.sync(() => killQuietly(Number(restarted.pid))))
          yield* waitFor(restarted.stdout, /consuming ORDERS\/order-stream/)
          yield* restarted.kill()
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 180_000 }
    )
  }
})
