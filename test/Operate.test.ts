/**
 * Operating a pipeline from the `sluice` command line: dead-letter tools (`dlq list|show|discard|
 * replay|purge`), the status calendar and a catch-up plan, as a user runs them on the embedded database.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import * as Http from "node:http"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd` on its embedded database, checks the exit status and gives its stdout. */
const sluice = (cwd: string, args: ReadonlyArray<string>, code = 0) =>
  Effect.map(SluiceCli.run(cwd, args, { code }), (result) => result.stdout)

const start = Partition.makeUnsafe("2024-03-01")
const seed = 3
// `generate-orders` changes the orders' record on the middle day by default: the second of three
const evolvedFrom = Generator.middleDay(start, 3)
const [, second] = [0, 1, 2].map((i) =>
  Generator.generateDay(Partition.addDays(start, i), { seed, badShare: 0.02, evolvedFrom })
)
const dlqRow = (id: string) => new RegExp(`^${id}\\s+${second!.manifest.date}\\s+(\\d+)\\s+(\\w+)\\s+(\\d+)\\s`, "m")

describe("operating a pipeline from the CLI", () => {
  it.live(
    "dlq list, show, discard, replay and purge; status with missing days; a catch-up plan; serve",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-operate-" })
        const day = second!.manifest
        assert.isAbove(day.bad, 1)
        yield* sluice(cwd, [
          "generate-orders",
          "--start",
          start,
          "--days",
          "3",
          "--seed",
          String(seed),
          "--bad-share",
          "0.02"
        ])
        yield* sluice(cwd, ["backfill", "daily-revenue", "--start", start, "--end", "2024-03-03"])

        const list = yield* sluice(cwd, ["dlq", "list", "daily-revenue", "--date", day.date, "--limit", "1000"])
        assert.strictEqual(list.split("\n")[0], `${day.bad} dead letter(s) for daily-revenue ${day.date}`)
        const ids = [...list.matchAll(new RegExp(`^(\\d+)\\s+${day.date}\\s+\\d+\\s+new\\s+1\\s`, "gm"))].map((m) =>
          m[1]!
        )
        assert.strictEqual(ids.length, day.bad, list)
        const id = ids[0]!

        const show = yield* sluice(cwd, ["dlq", "show", "daily-revenue", id])
        assert.match(show, new RegExp(`^id:\\s+${id}$`, "m"))
        assert.match(show, /^status:\s+new$/m)
        assert.match(show, /^original record:\n/m)
        assert.match(show, /^error type:\s+\w+/m)

        assert.include(yield* sluice(cwd, ["dlq", "discard", "daily-revenue", "--id", id]), "1 dead letter(s)")
        // the same code: nothing passes, nothing is rebuilt, each new one gets attempts + 1
        const replay = yield* sluice(cwd, ["dlq", "replay", "daily-revenue", "--date", day.date])
        assert.include(replay, `0 replayed, ${day.bad - 1} still failing of ${day.bad - 1} selected`)
        const after = yield* sluice(cwd, [
          "dlq",
          "list",
          "daily-revenue",
          "--date",
          day.date,
          "--status",
          "all",
          "--limit",
          "1000"
        ])
        // the header counts what the list selects: with --status all, the discarded one too
        assert.strictEqual(after.split("\n")[0], `${day.bad} dead letter(s) for daily-revenue ${day.date} (status all)`)
        for (const each of ids) {
          const [, , status, attempts] = dlqRow(each).exec(after) ?? []
          assert.deepStrictEqual([status, attempts], each === id ? ["discarded", "1"] : ["new", "2"], after)
        }
        const purge = yield* sluice(cwd, ["dlq", "purge", "daily-revenue", "--older-than", "0s"])
        assert.match(purge, /^1 replayed\/discarded dead letter\(s\) of daily-revenue older than .* purged$/m)

        const status = yield* sluice(cwd, ["status", "daily-revenue", "--since", "2024-02-28", "--until", "2024-03-05"])
        assert.match(status, /^2024-02-28\.\.2024-02-29\s+missing\s/m)
        for (const date of ["2024-03-01", "2024-03-02", "2024-03-03"]) {
          assert.match(status, new RegExp(`^${date}\\s+done\\s+\\d+`, "m"))
        }
        assert.match(status, /^2024-03-04\.\.2024-03-05\s+missing\s/m)
        assert.include(status, "7 partition(s): 3 done, 0 failed, 0 running, 4 missing")
        const plan = yield* sluice(cwd, [
          "backfill",
          "daily-revenue",
          "--start",
          "2024-02-28",
          "--end",
          "2024-03-05",
          "--missing",
          "--dry-run"
        ])
        assert.deepStrictEqual(plan.trim().split("\n"), [
          "plan (missing): 4 partition(s) of daily-revenue, concurrency 2",
          "  2024-02-28",
          "  2024-02-29",
          "  2024-03-04",
          "  2024-03-05"
        ])

        // serve: the dashboard's JSON and /metrics, from the same database
        yield* Effect.gen(function*() {
          const { address, handle } = yield* SluiceCli.serve(cwd, ["serve", "--port", "0"])
          const get = (path: string) =>
            Effect.promise(() =>
              fetch(`${address}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }))
            )
          const metrics = yield* get("/metrics")
          assert.strictEqual(metrics.status, 200)
          assert.match(metrics.body, /^sluice_partitions\{pipeline="daily-revenue",status="succeeded"\} 3$/m)
          assert.match(metrics.body, /^sluice_partitions\{pipeline="customers-merge",status="succeeded"\} 0$/m)
          const calendar = yield* get("/api/pipelines/daily-revenue/calendar?since=2024-03-01&until=2024-03-04")
          const body = JSON.parse(calendar.body) as { days: ReadonlyArray<{ partition: string; state: string }> }
          assert.deepStrictEqual(body.days.map((d) => d.state), ["done", "done", "done", "missing"])
          assert.include((yield* get("/")).body, "<title>Sluice</title>")

          // another site's page: by DNS rebinding (its own host name) it reads nothing; its POST runs nothing
          const send = (method: string, path: string, headers: Record<string, string>) =>
            Effect.promise(() =>
              new Promise<{ status: number; body: string }>((resolve, reject) => {
                const request = Http.request(`${address}${path}`, { method, headers }, (response) => {
                  let body = ""
                  response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk))
                  response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
                })
                request.on("error", reject).end()
              })
            )
          const own = new URL(address).host
          const rebound = yield* send("GET", "/api/pipelines/daily-revenue/partitions/2024-03-01", {
            host: "attacker.example:80"
          })
          assert.strictEqual(rebound.status, 403)
          assert.match(rebound.body, /localhost only/)
          assert.strictEqual(
            (yield* send("GET", "/metrics", { host: `localhost:${new URL(address).port}` })).status,
            200
          )
          const rerun = "/api/pipelines/daily-revenue/partitions/2024-03-04/run"
          const forged = yield* send("POST", rerun, { host: own, origin: "https://attacker.example" })
          assert.strictEqual(forged.status, 403)
          assert.match(forged.body, /another site/)
          assert.strictEqual((yield* send("POST", rerun, { host: own, "sec-fetch-site": "cross-site" })).status, 403)
          const after = JSON.parse((yield* get("/api/pipelines/daily-revenue/partitions/2024-03-04")).body) as {
            runs: ReadonlyArray<unknown>
          }
          assert.strictEqual(after.runs.length, 0, "a refused POST ran nothing")
          // the dashboard's own origin, and a client that is not a browser, may re-run
          const present = "/api/pipelines/daily-revenue/partitions/2024-03-03/run"
          const sameSite = yield* send("POST", present, { host: own, origin: address })
          assert.strictEqual(sameSite.status, 200, sameSite.body)
          assert.strictEqual((yield* send("POST", present, { host: own })).status, 200)
          yield* handle.kill()
        }).pipe(Effect.scoped)
      }).pipe(Effect.provide(NodeServices.layer)),
    { timeout: 180_000 }
  )
})
