/**
 * `pnpm bench --smoke` keeps the benchmark from rotting: it runs every variant once on a tiny
 * input (on PostgreSQL too when `SLUICE_TEST_DATABASE_URL` is set, in a database of its own) and
 * must write a well-formed results file. Speed is not asserted: CI machines vary.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@sluice/sql"
import { Effect, FileSystem, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"

const run = Path.resolve(import.meta.dirname, "../bench/run.ts")

interface Results {
  readonly machine: { readonly cpus: number; readonly loadAverageAtStart: ReadonlyArray<number> }
  readonly versions: Record<string, unknown>
  readonly datasets: ReadonlyArray<{ readonly records: number; readonly good: number; readonly bad: number }>
  readonly results: ReadonlyArray<{
    readonly variant: string
    readonly unit: string
    readonly runs: ReadonlyArray<{ readonly elapsedMs: number; readonly peakRssMb: number; readonly loaded?: number }>
    readonly median: number
    readonly min: number
    readonly max: number
    readonly peakRssMb: number
    readonly figures: ReadonlyArray<number>
    readonly ratioToLimit?: number
    readonly ratiosToLimit?: ReadonlyArray<number>
  }>
}

/** Runs `pnpm bench` with `args` in a temporary directory; its results and its log. */
const bench = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-bench-smoke-" })
    const out = Path.join(dir, "results.json")
    const server = Testing.postgresUrl()
    const database = server === undefined ? undefined : new URL(server)
    if (database !== undefined) database.pathname = "/sluice_bench_smoke"
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const handle = yield* spawner.spawn(ChildProcess.make("node", [
      run,
      ...args,
      "--out",
      out,
      "--data",
      Path.join(dir, "data"),
      ...(database === undefined ? ["--no-postgres"] : ["--url", database.toString()])
    ]))
    const [stderr, exitCode, stdout] = yield* Effect.all([
      Stream.mkString(Stream.decodeText(handle.stderr)),
      handle.exitCode,
      Stream.mkString(Stream.decodeText(handle.stdout))
    ], { concurrency: 3 })
    assert.strictEqual(exitCode, 0, stderr)
    return { results: JSON.parse(yield* fs.readFileString(out)) as Results, log: stdout, database }
  })

describe("pnpm bench --smoke", () => {
  it.live("runs every variant once and writes a well-formed results file", () =>
    Effect.gen(function*() {
      const { database, results } = yield* bench(["--smoke"])
      assert.isAbove(results.machine.cpus, 0)
      assert.strictEqual(results.machine.loadAverageAtStart.length, 3)
      assert.strictEqual(results.versions["node"], process.version)
      assert.isString(results.versions["effect"])
      assert.strictEqual(results.datasets[0]?.records, 2_000)
      const variants = results.results.map((r) => r.variant)
      assert.includeMembers(variants, ["sluice-pglite", "transform", "transform-file"])
      if (database !== undefined) {
        assert.includeMembers(variants, [
          "handwritten",
          "sluice-postgres",
          "sluice-merge",
          "sluice-merge-unnest",
          "backfill"
        ])
        // the upsert loads the same good orders as the partition replacement
        const loaded = (variant: string) => results.results.find((r) => r.variant === variant)?.runs[0]?.loaded
        assert.strictEqual(loaded("sluice-merge"), loaded("sluice-postgres"))
        assert.strictEqual(loaded("sluice-merge-unnest"), loaded("sluice-postgres"))
      }
      for (const result of results.results) {
        assert.strictEqual(result.runs.length, 1, result.variant)
        assert.isTrue(Number.isFinite(result.median) && result.median > 0, result.variant)
        assert.isTrue(result.min <= result.median && result.median <= result.max, result.variant)
        assert.isAbove(result.peakRssMb, 0, result.variant)
      }
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), { timeout: 240_000 })

  it.live("runs in rounds, each variant once per round, and pairs the ratios by round", () =>
    Effect.gen(function*() {
      const server = Testing.postgresUrl() !== undefined
      const only = server ? ["limit", "sluice-postgres"] : ["transform", "transform-file"]
      const { log, results } = yield* bench(["--smoke", "--runs", "2", "--only", only.join(",")])
      const order = [...log.matchAll(/round (\d)\/2: ([a-z-]+) /g)].map(([, round, variant]) => `${round} ${variant}`)
      assert.deepStrictEqual(order, [`1 ${only[0]}`, `1 ${only[1]}`, `2 ${only[0]}`, `2 ${only[1]}`])
      for (const result of results.results) assert.strictEqual(result.runs.length, 2, result.variant)
      if (server) {
        const [limit, sluice] = only.map((v) => results.results.find((r) => r.variant === v)!)
        const ratios = sluice!.figures.map((f, i) => f / limit!.figures[i]!)
        assert.deepStrictEqual(sluice!.ratiosToLimit, ratios)
        assert.strictEqual(sluice!.ratioToLimit, (ratios[0]! + ratios[1]!) / 2)
        assert.strictEqual(limit!.ratioToLimit, 1)
      }
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), { timeout: 240_000 })
})
