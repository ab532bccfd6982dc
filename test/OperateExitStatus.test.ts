/**
 * The exit status the README documents — 0 success, 1 a run failed, 3 every run succeeded but an alert
 * was raised — on every database backend, where a command runs more than one partition: a run whose
 * lookback run failed exits 1 even when the run itself alerts (the failure outranks the alert), and a
 * `dlq replay` whose rebuild of a partition alerts says so and exits 3, as `run` of that partition would.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

const order = (id: string, amount: string, date: string) =>
  JSON.stringify({ order_id: id, customer_id: 1, product_category: "books", amount, order_date: date })

describe("exit statuses of commands that run several partitions", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `a failed lookback run outranks the run's alert: exit 1, not 3 [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-exit-lookback-" })
          const { env } = yield* session.database(cwd)
          const dir = Path.join(cwd, "events")
          yield* SluiceCli.run(
            cwd,
            ["generate-events", "--dir", dir, "--start", "2024-03-01", "--days", "3", "--as-of", "2024-03-05"],
            { env, code: 0 }
          )
          yield* SluiceCli.run(cwd, ["run", "events", "--date", "2024-03-02", "--source", dir], { env, code: 0 })
          // 2024-03-02's file is gone (its lookback run fails); 2024-03-03 is mostly garbage (its run alerts)
          yield* fs.remove(Path.join(dir, "2024-03-02.jsonl"))
          const third = Path.join(dir, "2024-03-03.jsonl")
          yield* fs.writeFileString(third, (yield* fs.readFileString(third)) + "garbage\n".repeat(100))
          const result = yield* SluiceCli.run(cwd, ["run", "events", "--date", "2024-03-03", "--source", dir], { env })
          assert.match(result.stderr, /events 2024-03-02 \(lookback of 2024-03-03\) FAILED: SourceError\.NotFound/)
          assert.match(result.stderr, /ALERT: .* of events 2024-03-03 was dead-lettered/)
          assert.strictEqual(result.exitCode, 1, SluiceCli.describeResult(["run", "events"], result))
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )

    it.live(
      `dlq replay whose rebuild alerts reports the alert and exits 3 [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-exit-replay-" })
          const { env } = yield* session.database(cwd)
          const date = "2024-03-01"
          const dir = Path.join(cwd, "orders")
          yield* fs.makeDirectory(dir)
          const file = Path.join(dir, `${date}.jsonl`)
          const bytes = (text: string) => new TextEncoder().encode(text)
          const good = order("a", "10", date)
          const refused = order("c", "1e2", date)
          /** The file: a good line, `second`, and a line the code refuses (SchemaMismatch). */
          const write = (second: Uint8Array) =>
            fs.writeFile(file, Uint8Array.from([...bytes(`${good}\n`), ...second, ...bytes(`\n${refused}\n`)]))
          // a line with a byte that is not UTF-8: InvalidEncoding, fixed at the source
          const [head, tail] = order("b", "10", date).split("books")
          const broken = Uint8Array.from([...bytes(`${head}bo`), 0xff, ...bytes(`oks${tail}`)])
          yield* write(broken)
          const source = ["--source", dir]
          yield* SluiceCli.run(cwd, ["run", "daily-revenue", "--date", date, ...source], { env, code: 3 })

          // the bad bytes are fixed at the source: the partition is rebuilt, a third of it still dead-lettered
          yield* write(bytes(order("b", "10", date)))
          const args = ["dlq", "replay", "daily-revenue", "--date", date, ...source]
          const replay = yield* SluiceCli.run(cwd, args, { env })
          assert.include(replay.stdout, "1 replayed, 1 still failing of 2 selected; 1 partition(s) rebuilt, 0 failed")
          assert.match(
            replay.stderr,
            /^ALERT: 33\.33% of daily-revenue 2024-03-01 was dead-lettered, above the 5\.00% threshold$/m
          )
          assert.strictEqual(replay.exitCode, 3, SluiceCli.describeResult(args, replay))
          // said once: not the pipeline's own ALERT warning too (effect's logger writes to stdout)
          assert.notInclude(replay.stdout, "ALERT", replay.stdout)
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }
})
