/**
 * A run whose process dies: `sluice run` is killed (SIGKILL) in the middle of its partition, leaving
 * its ledger row `running` with nobody holding the partition lock. `status` must then show the
 * partition failed (Abandoned), and `backfill --missing` / `--only-failed` must plan it again. On
 * PostgreSQL, while the run is alive (its lock held by a live process), another process's `status`
 * still shows it running.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Partition } from "@sluice/core"
import { Testing } from "@sluice/sql"
import { Deferred, Effect, Fiber, FileSystem, type Scope, Stream } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` to its end and checks its exit status. */
const sluice = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string>, code = 0) =>
  SluiceCli.run(cwd, args, { env, code })

/**
 * An orders API that answers every request with a body that never ends (a blank line every 200 ms,
 * so no idle timeout fires): a run reading it stays in the middle of its partition until killed.
 * `requested` completes when the first request arrives, that is once the run holds its lock and
 * its ledger row says `running`.
 */
const endlessOrdersApi: Effect.Effect<
  { readonly url: string; readonly requested: Deferred.Deferred<void> },
  never,
  Scope.Scope
> = Effect.gen(function*() {
  const requested = yield* Deferred.make<void>()
  const timers = new Set<ReturnType<typeof setInterval>>()
  const server = Http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/x-ndjson" })
    response.write("\n")
    timers.add(setInterval(() => response.write("\n"), 200))
    Deferred.doneUnsafe(requested, Effect.void)
  })
  yield* Effect.acquireRelease(
    Effect.callback<void>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.void))
    }),
    () =>
      Effect.callback<void>((resume) => {
        for (const timer of timers) clearInterval(timer)
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requested }
})

const url = Testing.postgresUrl()
const date = Partition.makeUnsafe("2024-03-01")

const sessions: ReadonlyArray<{
  readonly backend: string
  readonly env: Effect.Effect<Record<string, string>, unknown, Scope.Scope>
}> = [
  { backend: "pglite", env: Effect.succeed({}) },
  ...(url === undefined ? [] : [{
    backend: "postgres",
    env: Effect.map(Testing.freshDatabase(url), (fresh) => ({ DATABASE_URL: fresh }))
  }])
]

describe("a run whose process is killed", () => {
  for (const session of sessions) {
    it.live(
      `is shown failed (Abandoned) and planned again by backfill --missing and --only-failed [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-abandoned-" })
          const env = yield* session.env
          const api = yield* endlessOrdersApi
          yield* sluice(cwd, ["generate-orders", "--start", date, "--days", "1", "--bad-share", "0"], {})

          const handle = yield* SluiceCli.spawn(cwd, ["run", "daily-revenue", "--date", date, "--source", api.url], env)
          const exited = yield* Effect.forkChild(handle.exitCode)
          yield* Deferred.await(api.requested).pipe(
            Effect.raceFirst(Effect.flatMap(Fiber.await(exited), (exit) => Effect.die(`run exited early: ${exit}`)))
          )

          if (session.backend === "postgres") {
            // alive: its lock is held by a live process, so another process leaves it running
            const alive = yield* sluice(cwd, ["status", "daily-revenue", "--since", date, "--until", date], env)
            assert.match(alive.stdout, new RegExp(`^${date}\\s+running\\s`, "m"), alive.stdout)
            assert.include(alive.stdout, "1 partition(s): 0 done, 0 failed, 1 running, 0 missing")
            const plan = yield* sluice(cwd, [
              "backfill",
              "daily-revenue",
              "--start",
              date,
              "--end",
              date,
              "--missing",
              "--dry-run"
            ], env)
            assert.include(plan.stdout, "plan (missing): 0 partition(s)")
          }

          // the process dies without a chance to record anything
          process.kill(Number(handle.pid), "SIGKILL")
          yield* Fiber.await(exited)

          const status = yield* sluice(cwd, ["status", "daily-revenue", "--since", date, "--until", date], env)
          assert.match(status.stdout, new RegExp(`^${date}\\s+failed\\s.*Abandoned: `, "m"), status.stdout)
          assert.include(status.stdout, "1 partition(s): 0 done, 1 failed, 0 running, 0 missing")
          for (const mode of ["--missing", "--only-failed"]) {
            const plan = yield* sluice(cwd, [
              "backfill",
              "daily-revenue",
              "--start",
              date,
              "--end",
              date,
              mode,
              "--dry-run"
            ], env)
            assert.deepStrictEqual(plan.stdout.trim().split("\n").slice(1), [`  ${date}`], plan.stdout)
          }

          // and the re-run goes through: the partition is done
          yield* sluice(cwd, ["backfill", "daily-revenue", "--start", date, "--end", date, "--missing"], env)
          const after = yield* sluice(cwd, ["status", "daily-revenue", "--since", date, "--until", date], env)
          assert.match(after.stdout, new RegExp(`^${date}\\s+done\\s`, "m"), after.stdout)
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }
})

describe("a backfill stopped with SIGTERM", () => {
  it.live(
    "says what finished and how to resume, exits 130, and the run in hand is recorded failed (Interrupted)",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-backfill-term-" })
        const api = yield* endlessOrdersApi
        const next = Partition.addDays(date, 1)
        const handle = yield* SluiceCli.spawn(cwd, [
          "backfill",
          "daily-revenue",
          "--start",
          date,
          "--end",
          next,
          "--concurrency",
          "1",
          "--source",
          api.url
        ])
        const stderr = yield* Effect.forkChild(Stream.mkString(Stream.decodeText(handle.stderr)))
        const exited = yield* Effect.forkChild(handle.exitCode)
        yield* Deferred.await(api.requested).pipe(
          Effect.raceFirst(Effect.flatMap(Fiber.await(exited), (exit) => Effect.die(`backfill exited early: ${exit}`)))
        )
        process.kill(Number(handle.pid), "SIGTERM")
        assert.strictEqual(Number(yield* Fiber.join(exited)), 130)
        assert.include(
          yield* Fiber.join(stderr),
          `interrupted: 0 of 2 partition(s) finished (0 succeeded, 0 failed); the runs in hand were rolled back and recorded failed (Interrupted), the rest not run; resume with: pnpm sluice backfill daily-revenue --start ${date} --end ${next} --missing\n`
        )
        const status = yield* sluice(cwd, ["status", "daily-revenue", "--since", date, "--until", next], {})
        assert.match(status.stdout, new RegExp(`^${date}\\s+failed\\s.*Interrupted`, "m"), status.stdout)
        assert.match(status.stdout, new RegExp(`^${next}\\s+missing\\s`, "m"), status.stdout)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )
})
