/**
 * `sluice serve --source PIPELINE=LOCATION`: the dashboard's re-runs of a pipeline read where the
 * operator said, as `run --source` does, not the pipeline's default source. A malformed value or an
 * unknown pipeline is a usage error (exit 2) before anything starts: no server, no database.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` to its end and checks its exit status. */
const sluice = (cwd: string, args: ReadonlyArray<string>, code = 0) => SluiceCli.run(cwd, args, { code })

const date = Partition.makeUnsafe("2024-03-01")
const day = Generator.generateDay(date, { seed: 7, badShare: 0 }).manifest

describe("sluice serve --source", () => {
  it.live("a re-run through the served API reads the pipeline's given source", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-serve-source-" })
      // the orders are not where daily-revenue reads by default (data/orders)
      yield* sluice(cwd, [
        "generate-orders",
        "--dir",
        "elsewhere",
        "--start",
        date,
        "--days",
        "1",
        "--seed",
        "7",
        "--bad-share",
        "0"
      ])

      // usage errors first: one line, exit 2, and nothing started (no database created)
      for (
        const [args, pattern] of [
          [["--source", "elsewhere"], /^error: invalid --source "elsewhere": expected PIPELINE=LOCATION$/],
          [["--source", "daily-revenue="], /^error: invalid --source "daily-revenue=": expected PIPELINE=LOCATION$/],
          [["--source", "nope=elsewhere"], /^error: unknown pipeline "nope"; known pipelines: daily-revenue, /],
          [
            ["--source", "daily-revenue=elsewhere", "--source", "daily-revenue=data/orders"],
            /^error: --source given twice for daily-revenue$/
          ]
        ] as const
      ) {
        const { stderr } = yield* sluice(cwd, ["serve", "--port", "0", ...args], 2)
        assert.match(stderr.trimEnd(), pattern)
        assert.strictEqual(stderr.trimEnd().split("\n").length, 1, stderr)
      }
      assert.isFalse(yield* fs.exists(Path.join(cwd, ".sluice")), "no database was opened")

      const { address, handle } = yield* SluiceCli.serve(cwd, [
        "serve",
        "--port",
        "0",
        "--source",
        `daily-revenue=${cwd}/elsewhere`
      ])
      const post = (path: string) =>
        Effect.promise(() =>
          fetch(`${address}${path}`, { method: "POST" }).then(async (r) => ({ status: r.status, body: await r.text() }))
        )
      const rerun = yield* post(`/api/pipelines/daily-revenue/partitions/${date}/run`)
      assert.strictEqual(rerun.status, 200, rerun.body)
      const report = JSON.parse(rerun.body) as { readonly read: number; readonly loaded: number }
      assert.deepStrictEqual([report.read, report.loaded], [day.records, day.good], rerun.body)
      // the other pipelines keep their default source
      const other = yield* post(`/api/pipelines/events/partitions/${date}/run`)
      assert.notStrictEqual(other.status, 200, other.body)
      assert.include(other.body, "data/events")
      yield* handle.kill()
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), { timeout: 120_000 })
})
