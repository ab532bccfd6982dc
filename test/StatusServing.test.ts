/**
 * `sluice status` after a failed run of a partition that succeeded before: the run's writes were one
 * transaction, so the data in place is the successful run's, and status says so (with its counts)
 * instead of leaving the operator to read the failed run's zeros as an empty partition.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@sluice/sql"
import { Effect, FileSystem } from "effect"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd` on `databaseUrl` (else its embedded database), checks its exit status, gives its stdout. */
const sluice = (cwd: string, args: ReadonlyArray<string>, databaseUrl: string | undefined, code: number) =>
  Effect.map(SluiceCli.run(cwd, args, { env: { DATABASE_URL: databaseUrl }, code }), (result) => result.stdout)

const backends: ReadonlyArray<string> = ["pglite", ...(Testing.postgresUrl() === undefined ? [] : ["postgres"])]

describe("status of a partition whose latest run failed", () => {
  for (const backend of backends) {
    it.live(
      `names the successful run whose data is in place, with its counts [${backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-serving-" })
          const url = backend === "postgres" ? yield* Testing.freshDatabase(Testing.postgresUrl()!) : undefined
          const date = "2024-03-01"
          yield* sluice(cwd, ["generate-orders", "--start", date, "--days", "1", "--bad-share", "0.05"], url, 0)
          const ok = yield* sluice(cwd, ["run", "daily-revenue", "--date", date], url, 0)
          const counts = /read (\d+), loaded (\d+), dead-lettered (\d+)/.exec(ok)
          assert.isNotNull(counts, ok)
          // the same partition from a folder that is not there: a failed run, recorded, that changed nothing
          yield* sluice(cwd, ["run", "daily-revenue", "--date", date, "--source", "nowhere"], url, 1)
          const status = yield* sluice(cwd, ["status", "daily-revenue", "--since", date, "--until", date], url, 0)
          assert.match(status, new RegExp(`^${date}\\s+failed\\s+0\\s+0\\s+0\\s`, "m"), status)
          assert.match(
            status,
            new RegExp(
              `^  ${date} failed: serving its \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d run \\(read ${
                counts![1]
              }, loaded ${counts![2]}, dead-lettered ${counts![3]}\\)$`,
              "m"
            ),
            status
          )
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 180_000 }
    )
  }
})
