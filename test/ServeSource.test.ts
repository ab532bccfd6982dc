/**
 * `sluice serve --source PIPELINE=LOCATION`: the dashboard's re-runs of a pipeline read where the
 * operator said, as `run --source` does, not the pipeline's default source. A malformed value or an
 * unknown pipeline is a usage error (exit 2) before anything starts: no server, no database.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition } from "@sluice/core"
import { Effect, FileSystem, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"

const main = Path.resolve(import.meta.dirname, "../apps/sluice/src/main.ts")

const spawn = (cwd: string, args: ReadonlyArray<string>) =>
  Effect.flatMap(
    ChildProcessSpawner.ChildProcessSpawner,
    (spawner) =>
      spawner.spawn(ChildProcess.make("node", [main, ...args], {
        cwd,
        env: { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1" },
        extendEnv: true
      }))
  )

/** Runs `sluice <args>` to its end and checks its exit status. */
const sluice = (cwd: string, args: ReadonlyArray<string>, code = 0) =>
  Effect.gen(function*() {
    const handle = yield* spawn(cwd, args)
    const [stdout, stderr, exitCode] = yield* Effect.all([
      Stream.mkString(Stream.decodeText(handle.stdout)),
      Stream.mkString(Stream.decodeText(handle.stderr)),
      handle.exitCode
    ], { concurrency: 3 })
    assert.strictEqual(Number(exitCode), code, `sluice ${args.join(" ")}\n${stdout}\n${stderr}`)
    return { stdout, stderr }
  }).pipe(Effect.scoped)

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

      const handle = yield* spawn(cwd, ["serve", "--port", "0", "--source", `daily-revenue=${cwd}/elsewhere`])
      const listening = yield* Stream.decodeText(handle.stdout).pipe(
        Stream.takeUntil((chunk) => /Listening on http:\/\/[\d.]+:\d+/.test(chunk)),
        Stream.mkString
      )
      const address = /Listening on (http:\/\/[\d.]+:\d+)/.exec(listening)?.[1]
      assert.isDefined(address, listening)
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
