/**
 * `sluice backfill --dry-run` of a pipeline with a lookback shows what the run will do: the lookback
 * dates it rebuilds, and those it skips because they were never run (lookback rebuilds, it does not
 * backfill).
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd` on its embedded database, checks it succeeds and gives its stdout. */
const sluice = (cwd: string, args: ReadonlyArray<string>) =>
  Effect.map(SluiceCli.run(cwd, args, { code: 0 }), (result) => result.stdout)

describe("a backfill plan with lookback", () => {
  it.live("lists the lookback dates the runs rebuild and those they skip as never run", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-lookback-" })
      const plan = sluice(cwd, ["backfill", "events", "--start", "2024-03-05", "--end", "2024-03-06", "--dry-run"])
      assert.deepStrictEqual((yield* plan).trim().split("\n"), [
        "plan (all): 2 partition(s) of events, concurrency 2",
        "  2024-03-05 (lookback skips, never run: 2024-03-03, 2024-03-04)",
        "  2024-03-06"
      ])
      const dir = Path.join(cwd, "events")
      yield* sluice(cwd, ["generate-events", "--dir", dir, "--start", "2024-03-01", "--days", "6"])
      yield* sluice(cwd, ["run", "events", "--date", "2024-03-03", "--source", dir])
      assert.deepStrictEqual((yield* plan).trim().split("\n"), [
        "plan (all): 2 partition(s) of events, concurrency 2",
        "  2024-03-05 (after its lookback: 2024-03-03; lookback skips, never run: 2024-03-04)",
        "  2024-03-06"
      ])
    }).pipe(Effect.provide(NodeServices.layer)), { timeout: 120_000 })
})
