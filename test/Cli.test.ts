/**
 * The `sluice` command line as a user runs it: `node apps/sluice/src/main.ts …` in a temporary
 * working directory, on the embedded database under its `.sluice/` (and on a fresh PostgreSQL
 * database through `DATABASE_URL` when a server is configured). Exit statuses and one-line errors
 * are checked, and what the commands wrote is read back from the database afterwards.
 *
 * Each process start costs seconds, so the commands are few and the independent ones run at once.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as Path from "node:path"
import { assertLoaded, layerOn, runs } from "./fixtures.ts"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd`, with no database configured but what `env` says. */
const sluice = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  SluiceCli.run(cwd, args, { env })

/** Runs `sluice <args>` and checks its exit status. */
const expectExit = (cwd: string, code: number, args: ReadonlyArray<string>, env?: Record<string, string>) =>
  SluiceCli.run(cwd, args, { env, code })

const start = Partition.makeUnsafe("2024-03-01")
const days = 3
const seed = 5
const badShare = 0.02
const dates = Partition.range(start, Partition.addDays(start, days - 1))
/** By default the orders' record changes on the middle day of the range (the second of three). */
const evolvedFrom = Generator.middleDay(start, days)
/** What `generate-orders` must write with the flags below. */
const expected = dates.map((date) => Generator.generateDay(date, { seed, badShare, evolvedFrom }).manifest)

describe("the sluice CLI", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `generate-orders, run, backfill, status and dlq list, as a user runs them [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-cli-" })
          const { env, layer } = yield* session.database(cwd)
          // no alert in this data: every day's dead-letter rate is under the 5% threshold (else exit 3)
          for (const day of expected) assert.isAtMost(day.bad / day.records, 0.05, day.date)

          const generateInto = (dir: string, ...flags: ReadonlyArray<string>) =>
            expectExit(cwd, 0, [
              "generate-orders",
              "--dir",
              dir,
              "--start",
              start,
              "--days",
              String(days),
              "--seed",
              String(seed),
              "--bad-share",
              String(badShare),
              ...flags
            ])
          // the default, and the record's change moved or turned off (files only: no database)
          const [generated, later, none, off] = yield* Effect.all([
            generateInto("data/orders"),
            generateInto("data/later", "--evolved-from", "2024-03-03"),
            generateInto("data/none", "--evolved-from", "none"),
            generateInto("data/off", "--no-evolution")
          ], { concurrency: 2 })
          const total = (f: (day: Generator.DayManifest) => number) => expected.reduce((n, day) => n + f(day), 0)
          assert.strictEqual(
            generated.stdout.trim(),
            `wrote ${days} day(s) to data/orders: ${total((d) => d.records)} records, ${total((d) => d.good)} good, ${
              total((d) => d.bad)
            } bad; orders carry currency and loyalty_points from ${evolvedFrom}`
          )
          assert.match(later.stdout, /; orders carry currency and loyalty_points from 2024-03-03\n$/)
          assert.notInclude(none.stdout + off.stdout, "currency")
          for (
            const [dir, changeOn] of [
              ["data/orders", evolvedFrom],
              ["data/later", Partition.makeUnsafe("2024-03-03")],
              ["data/none", undefined],
              ["data/off", undefined]
            ] as const
          ) {
            for (const date of dates) {
              const { lines } = Generator.generateDay(date, { seed, badShare, evolvedFrom: changeOn })
              const written = yield* fs.readFileString(Path.join(cwd, dir, `${date}.jsonl`))
              assert.isTrue(written === lines.join("\n") + "\n", `${dir}/${date}.jsonl: evolved from ${changeOn}`)
            }
          }
          const plain = yield* fs.readFileString(Path.join(cwd, "data/off", `${start}.jsonl`))
          assert.notInclude(plain, "loyalty_points")
          const evolved = yield* fs.readFileString(Path.join(cwd, "data/orders", `${evolvedFrom}.jsonl`))
          assert.include(evolved, "\"loyalty_points\"")

          const [first, second] = expected as [Generator.DayManifest, Generator.DayManifest]
          const run = yield* expectExit(cwd, 0, ["run", "daily-revenue", "--date", first.date], env)
          assert.match(
            run.stdout,
            new RegExp(
              `^daily-revenue ${first.date}: read ${first.records}, loaded ${first.good}, dead-lettered ${first.bad} `
            )
          )

          const last = Partition.addDays(start, days - 1)
          const backfill = yield* expectExit(cwd, 0, [
            "backfill",
            "daily-revenue",
            "--start",
            start,
            "--end",
            last,
            "--concurrency",
            "2"
          ], env)
          assert.include(backfill.stdout, `${days} succeeded (0 alerted), 0 failed of ${days}`)

          // a day with no file fails its partition: exit 1, and the others still run
          const missing = Partition.addDays(last, 1)
          const failing = yield* expectExit(
            cwd,
            1,
            ["backfill", "daily-revenue", "--start", last, "--end", missing],
            env
          )
          assert.include(failing.stdout, "1 succeeded (0 alerted), 1 failed of 2")
          assert.match(failing.stdout, new RegExp(`${missing}\\s+FAILED.*SourceError\\.NotFound`))

          const [status, dlq] = yield* Effect.all([
            expectExit(cwd, 0, ["status", "daily-revenue"], env),
            expectExit(cwd, 0, ["dlq", "list", "daily-revenue", "--date", second.date], env)
          ], { concurrency: session.backend === "pglite" ? 1 : 2 }) // one process at a time on a PGlite directory
          for (const [day, runCount] of expected.map((d, i) => [d, i === 0 || i === days - 1 ? 2 : 1] as const)) {
            assert.match(
              status.stdout,
              new RegExp(
                `^${day.date}\\s+done\\s+${day.records}\\s+${day.good}\\s+${day.bad}\\s+\\S+\\s+${runCount}\\s`,
                "m"
              ),
              status.stdout
            )
          }
          assert.match(status.stdout, new RegExp(`^${missing}\\s+failed\\s.*SourceError\\.NotFound`, "m"))
          assert.strictEqual(dlq.stdout.split("\n")[0], `${second.bad} dead letter(s) for daily-revenue ${second.date}`)
          const byType = new Map<string, number>()
          for (const bad of second.badLines) {
            const type = Generator.expectedErrorType[bad.kind]
            byType.set(type, (byType.get(type) ?? 0) + 1)
          }
          for (const [type, count] of byType) assert.match(dlq.stdout, new RegExp(`^${type}\\s+${count}$`, "m"))

          // what the commands wrote, read back once they have exited
          yield* Effect.gen(function*() {
            for (const day of expected) yield* assertLoaded(`${cwd}/data/orders`, day)
            assert.strictEqual((yield* runs).length, 1 + days + 2)
          }).pipe(Effect.provide(layerOn(layer)))
        }).pipe(Effect.provide(NodeServices.layer)),
      { timeout: 150_000 }
    )
  }

  it.live(
    "a reader that closes the pipe early (`sluice … | head`) stops it quietly, as SIGPIPE would",
    () =>
      Effect.promise(() =>
        new Promise<{ readonly code: number | null; readonly stderr: string }>((resolve, reject) => {
          const child = NodeChildProcess.spawn("node", [SluiceCli.main, "generate-orders", "--help"], {
            stdio: ["ignore", "pipe", "pipe"]
          })
          child.stdout.destroy() // the reader is gone before the first write
          let stderr = ""
          child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
          child.on("error", reject)
          child.on("close", (code) => resolve({ code, stderr }))
        })
      ).pipe(Effect.map(({ code, stderr }) => {
        assert.strictEqual(code, 141, stderr)
        assert.strictEqual(stderr, "", "no stack trace")
      })),
    { timeout: 60_000 }
  )

  it.live(
    "bad arguments exit 2 and an unreachable database exits non-zero, each with a one-line error",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-cli-" })
        const elsewhere = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-cli-" })
        // one PGlite directory admits one process at a time: these run one after the other
        const inTurn = Effect.all([
          sluice(cwd, ["run", "daily-revenue", "--date", "2024-02-30"]),
          sluice(cwd, ["backfill", "daily-revenue", "--start", "2024-03-05", "--end", "2024-03-01"]),
          sluice(cwd, ["run", "nope", "--date", "2024-03-01"]),
          // without --start, a backfill starts at the pipeline's declared start date
          sluice(cwd, ["backfill", "daily-revenue", "--end", "2024-01-03", "--dry-run"]),
          // a flag effect's parser refuses: one line too, not the help page
          sluice(cwd, ["run", "daily-revenue", "--date", "2024-03-01", "--concurrency", "2"]),
          // a --source that can be neither a folder nor an http(s) URL: no run is made of it
          sluice(cwd, ["run", "daily-revenue", "--date", "2024-03-01", "--source", "ftp://example.org/orders"]),
          sluice(cwd, ["backfill", "daily-revenue", "--end", "2024-01-01", "--source", " "]),
          sluice(cwd, ["status", "daily-revenue", "--since", "2024-01-01", "--until", "2024-03-01"]),
          sluice(cwd, ["generate-orders", "--evolved-from", "2024-3-16"]),
          sluice(cwd, ["generate-orders", "--no-evolution", "--evolved-from", "2024-03-16"])
        ])
        const noDatabase = sluice(elsewhere, ["status", "daily-revenue"], {
          DATABASE_URL: "postgres://postgres@127.0.0.1:5999/sluice"
        })
        // a DATABASE_URL that is no PostgreSQL URL is a configuration error, found before connecting
        const badUrls = Effect.all([
          sluice(elsewhere, ["status", "daily-revenue"], { DATABASE_URL: "postgres://[s3cret" }),
          sluice(elsewhere, ["status", "daily-revenue"], { DATABASE_URL: "mysql://app:s3cret@127.0.0.1/app" })
        ])
        const [
          [
            badDate,
            endBeforeStart,
            unknownPipeline,
            defaultStart,
            unknownFlag,
            ftpSource,
            blankSource,
            noRuns,
            badEvolvedFrom,
            noEvolutionFrom
          ],
          unreachable,
          [unparseable, mysql]
        ] = yield* Effect.all([inTurn, noDatabase, badUrls], { concurrency: 3 })
        assert.strictEqual(ftpSource.exitCode, 2, SluiceCli.describeResult(["run", "--source"], ftpSource))
        SluiceCli.assertOneLineError(
          ftpSource,
          /--source: "ftp:\/\/example.org\/orders"\. Expected: a folder or an http\(s\) URL/
        )
        assert.strictEqual(blankSource.exitCode, 2, SluiceCli.describeResult(["backfill", "--source"], blankSource))
        SluiceCli.assertOneLineError(blankSource, /--source.*not an empty value/)
        assert.strictEqual(noRuns.exitCode, 0, SluiceCli.describeResult(["status"], noRuns))
        assert.include(noRuns.stdout, "0 done, 0 failed, 0 running", "a refused --source makes no run")
        assert.strictEqual(unparseable.exitCode, 2, SluiceCli.describeResult(["status"], unparseable))
        SluiceCli.assertOneLineError(unparseable, /DATABASE_URL is not a PostgreSQL URL .*: \(unparseable\): not a URL/)
        assert.strictEqual(mysql.exitCode, 2, SluiceCli.describeResult(["status"], mysql))
        SluiceCli.assertOneLineError(
          mysql,
          /DATABASE_URL is not a PostgreSQL URL .*: mysql:\/\/app@127\.0\.0\.1\/app: unsupported protocol/
        )
        for (const result of [unparseable, mysql]) assert.notInclude(result.stderr + result.stdout, "s3cret")

        assert.strictEqual(badDate.exitCode, 2, SluiceCli.describeResult(["run"], badDate))
        SluiceCli.assertOneLineError(badDate, /invalid --date "2024-02-30"/)
        assert.strictEqual(endBeforeStart.exitCode, 2, SluiceCli.describeResult(["backfill"], endBeforeStart))
        SluiceCli.assertOneLineError(endBeforeStart, /--end 2024-03-01 is before --start 2024-03-05/)
        assert.strictEqual(unknownPipeline.exitCode, 2, SluiceCli.describeResult(["run"], unknownPipeline))
        SluiceCli.assertOneLineError(unknownPipeline, /unknown pipeline "nope"; known pipelines: .*daily-revenue/)
        assert.notStrictEqual(unreachable.exitCode, 0, SluiceCli.describeResult(["status"], unreachable))
        SluiceCli.assertOneLineError(
          unreachable,
          /database unavailable: postgres:\/\/postgres@127\.0\.0\.1:5999\/sluice/
        )
        assert.strictEqual(unknownFlag.exitCode, 2, SluiceCli.describeResult(["run", "--concurrency"], unknownFlag))
        SluiceCli.assertOneLineError(unknownFlag, /Unrecognized flag: --concurrency .*\(usage: sluice run --help\)/)
        assert.strictEqual(unknownFlag.stdout, "", "no help page")
        assert.strictEqual(badEvolvedFrom.exitCode, 2, SluiceCli.describeResult(["generate-orders"], badEvolvedFrom))
        SluiceCli.assertOneLineError(badEvolvedFrom, /invalid --evolved-from "2024-3-16": expected YYYY-MM-DD or none/)
        assert.strictEqual(noEvolutionFrom.exitCode, 2, SluiceCli.describeResult(["generate-orders"], noEvolutionFrom))
        SluiceCli.assertOneLineError(noEvolutionFrom, /--no-evolution contradicts --evolved-from 2024-03-16/)
        assert.isFalse(yield* fs.exists(Path.join(cwd, "data")), "a usage error writes no file")
        assert.strictEqual(defaultStart.exitCode, 0, SluiceCli.describeResult(["backfill", "--dry-run"], defaultStart))
        assert.deepStrictEqual(defaultStart.stdout.trim().split("\n"), [
          "plan (all): 3 partition(s) of daily-revenue, concurrency 2",
          "  2024-01-01",
          "  2024-01-02",
          "  2024-01-03"
        ])
      }).pipe(Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )
})
