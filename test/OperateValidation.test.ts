/**
 * The operations commands check what they are given before acting on it: `dlq purge` and `ledger purge`
 * take an age in years too (`y`, `year`, `years`: 365 days each) and refuse one beyond 1000 years (or one
 * that overflows, or a negative one) as a usage error naming it, `status` refuses an empty date range
 * before it connects to the database, and `dlq list`'s header counts what its filters select.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Generator } from "@sluice-app/daily-revenue"
import { Partition } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

/** Nothing listens there: a command that connected would fail with exit 1, not 2. */
const deadDatabase = "postgres://postgres@127.0.0.1:1/sluice"

/** Runs `sluice <args>` in `cwd` and checks its exit status. */
const sluice = (cwd: string, args: ReadonlyArray<string>, code: number, env: Record<string, string> = {}) =>
  SluiceCli.run(cwd, args, { env, code })

/** A usage error: exit 2, one `error:` line matching `pattern`. */
const usage = (cwd: string, args: ReadonlyArray<string>, pattern: RegExp, env?: Record<string, string>) =>
  Effect.map(sluice(cwd, args, 2, env), ({ stderr }) => {
    assert.strictEqual(stderr.trimEnd().split("\n").length, 1, stderr)
    assert.match(stderr.trimEnd(), pattern)
  })

const start = Partition.makeUnsafe("2024-03-01")
const seed = 3
const day = Generator.generateDay(start, { seed, badShare: 0.05 }).manifest

describe("the operations commands check their arguments", () => {
  it.live(
    "dlq purge refuses an age over 1000 years, status an empty range, before the database",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-validate-" })
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp, Record<string, string>?]> = [
          [["dlq", "purge", "--older-than", "400000d"], /^error: invalid --older-than "400000d": at most 1000 years$/],
          [["dlq", "purge", "daily-revenue", "--older-than", "52200 weeks"], /: at most 1000 years$/],
          [["dlq", "purge", "--older-than", "99999999999999999999999999d"], /: at most 1000 years$/],
          [["dlq", "purge", "--older-than", `${"9".repeat(400)}s`], /: at most 1000 years$/],
          // a year is 365 days: 1000 years is 365000 days, no more
          [["dlq", "purge", "--older-than", "1001y"], /^error: invalid --older-than "1001y": at most 1000 years$/],
          [["dlq", "purge", "--older-than", "365001d"], /: at most 1000 years$/],
          [["ledger", "purge", "--older-than", `${"9".repeat(400)} years`], /: at most 1000 years$/],
          [["dlq", "purge", "--older-than", "2 yrs"], /^error: invalid --older-than "2 yrs": expected an age /],
          // a negative age is read by the parser as a flag: it is still named as the bad value it is
          [
            ["dlq", "purge", "--older-than", "-5d"],
            /^error: invalid --older-than "-5d": a value cannot start with "-" \(usage: sluice dlq purge --help\)$/
          ],
          [["ledger", "purge", "--older-than", "-5d"], /^error: invalid --older-than "-5d": a value cannot start /],
          [["dlq", "purge", "--older-than=-5d"], /^error: invalid --older-than "-5d": expected an age /],
          [
            ["dlq", "purge"],
            /^error: invalid SLUICE_DLQ_RETENTION "400000d": at most 1000 years$/,
            { SLUICE_DLQ_RETENTION: "400000d" }
          ],
          [
            ["status", "daily-revenue", "--since", "2024-03-05", "--until", "2024-03-01"],
            /^error: the range 2024-03-05\.\.2024-03-01 is empty$/
          ],
          // no --since: the pipeline's start date (2024-01-01) is known without the ledger
          [
            ["status", "daily-revenue", "--until", "2023-12-31"],
            /^error: the range 2024-01-01\.\.2023-12-31 is empty$/
          ],
          [
            ["status", "daily-revenue", "--since", "2999-01-01"],
            /^error: the range 2999-01-01\.\.\d{4}-\d{2}-\d{2} is empty \(--until defaults to the last complete day/
          ],
          // a dead letter's id is a number, as dlq list --id's
          [
            ["dlq", "show", "daily-revenue", "abc"],
            /^error: invalid id "abc": expected a dead letter's id \(a number\)$/
          ],
          [["dlq", "show", "daily-revenue", "1.5"], /^error: invalid id "1\.5": expected a dead letter's id/],
          [["dlq", "show", "daily-revenue", "99999999999999999999"], /^error: invalid id "9+": expected a dead /],
          // an error type that is no record error's would select nothing, silently
          [
            ["dlq", "list", "daily-revenue", "--error-type", "schemamismatch"],
            /^error: invalid --error-type "schemamismatch": did you mean SchemaMismatch\? expected one of InvalidJson, InvalidEncoding, SchemaMismatch, RuleViolation, DuplicateKey, MissingKey, ContractViolation$/
          ],
          [
            ["dlq", "discard", "daily-revenue", "--error-type", "Bogus"],
            /^error: invalid --error-type "Bogus": expected one of /
          ],
          [["dlq", "replay", "daily-revenue", "--error-type", "InvalidJSON"], /: did you mean InvalidJson\? /],
          [["dlq", "list", "order-stream", "--error-type", ""], /^error: invalid --error-type "": expected one of /],
          // a range of more than 100 years of partitions is a typo, not a plan, with --dry-run too
          [
            ["backfill", "daily-revenue", "--start", "0001-01-01", "--end", "9999-12-31", "--dry-run"],
            /^error: the range 0001-01-01\.\.9999-12-31 has 3652059 partitions, more than 36525 \(100 years\); split it, or check --start and --end$/
          ],
          [
            ["backfill", "daily-revenue", "--end", "2204-03-31"],
            /^error: the range 2024-01-01\.\.2204-03-31 has 65834 partitions/
          ],
          // status too: a calendar of millions of days, and its catch-up hint would name such a backfill
          [
            ["status", "daily-revenue", "--since", "0001-01-01", "--until", "9999-12-31"],
            /^error: the range 0001-01-01\.\.9999-12-31 has 3652059 partitions, more than 36525 \(100 years\); narrow it with --since and --until$/
          ]
        ]
        for (const [args, pattern, env] of cases) {
          // on the embedded database: nothing is created; on a server nobody answers: it is never reached
          yield* usage(cwd, args, pattern, env)
          yield* usage(cwd, args, pattern, { ...env, DATABASE_URL: deadDatabase })
        }
        assert.isFalse(yield* fs.exists(Path.join(cwd, ".sluice")), "no database was opened")
        // 999 years is accepted
        const purged = yield* sluice(cwd, ["dlq", "purge", "--older-than", "364800d"], 0)
        assert.match(purged.stdout, /^0 replayed\/discarded dead letter\(s\) older than .* purged$/m)
      }).pipe(Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )

  for (const session of SluiceCli.sessions) {
    it.live(
      `dlq purge and ledger purge take an age in years, a year being 365 days, up to 1000 [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-age-years-" })
          const { env } = yield* session.database(cwd)
          for (
            const [args, age] of [
              [["dlq", "purge", "--older-than", "1000y"], "365000d"],
              [["dlq", "purge", "daily-revenue", "--older-than", "1000 years"], "365000d"],
              [["dlq", "purge", "--older-than", "1 year"], "365d"],
              [["ledger", "purge", "--older-than", "1000Y"], "365000d"]
            ] as const
          ) {
            const { stdout } = yield* sluice(cwd, args, 0, env)
            assert.match(stdout, new RegExp(` older than ${age} purged\n$`), stdout)
          }
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }

  it.live(
    "a run or backfill above the failure threshold says ALERT once, exit 3: the pipeline's own alert log is left out",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-alert-" })
        const order = JSON.stringify({
          order_id: "ord-1",
          customer_id: 1,
          product_category: "books",
          amount: "10.00",
          order_date: start
        })
        yield* fs.makeDirectory(Path.join(cwd, "orders"))
        yield* fs.writeFileString(Path.join(cwd, "orders", `${start}.jsonl`), `${order}\n{"bad\n{"bad\n{"bad\n`)
        const run = yield* sluice(cwd, ["run", "daily-revenue", "--date", start, "--source", "orders"], 3)
        assert.strictEqual(
          run.stderr,
          `ALERT: 75.00% of daily-revenue ${start} was dead-lettered, above the 5.00% threshold\n`
        )
        // effect's logger writes to stdout: the pipeline's own warning would be a second ALERT there
        assert.strictEqual(
          run.stdout,
          `daily-revenue ${start}: read 4, loaded 1, dead-lettered 3 (75.00%), retries 0, ${
            /\d+\.\d\ds/.exec(run.stdout)?.[0]
          }\n`
        )
        const backfill = yield* sluice(cwd, [
          "backfill",
          "daily-revenue",
          "--start",
          start,
          "--end",
          start,
          "--source",
          "orders"
        ], 3)
        assert.notInclude(backfill.stderr + backfill.stdout, "WARN", backfill.stdout)
        assert.match(backfill.stdout, new RegExp(`${start}\\s+ALERT\\s`), backfill.stdout)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )

  it.live(
    "dlq list's header counts what its filters select: partition, status, error type, id",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-dlq-list-" })
        yield* sluice(cwd, [
          "generate-orders",
          "--start",
          start,
          "--days",
          "2",
          "--seed",
          String(seed),
          "--bad-share",
          "0.05"
        ], 0)
        // both days, so the pipeline has dead letters outside the selected partition too (exit 3: alerted)
        const backfill = yield* SluiceCli.run(cwd, [
          "backfill",
          "daily-revenue",
          "--start",
          start,
          "--end",
          "2024-03-02"
        ])
        assert.include([0, 3], backfill.exitCode)

        const byType = new Map<string, number>()
        for (const bad of day.badLines) {
          const type = Generator.expectedErrorType[bad.kind]
          byType.set(type, (byType.get(type) ?? 0) + 1)
        }
        const [type, count] = [...byType].sort((a, b) => a[1] - b[1])[0]!
        assert.isBelow(count, day.bad, "two error types at least")
        const header = (args: ReadonlyArray<string>) =>
          Effect.map(
            sluice(cwd, ["dlq", "list", "daily-revenue", "--date", start, "--limit", "1000", ...args], 0),
            ({ stdout }) => stdout.split("\n")[0]
          )
        const prefix = `dead letter(s) for daily-revenue ${start}`
        assert.strictEqual(yield* header([]), `${day.bad} ${prefix}`)
        assert.strictEqual(yield* header(["--error-type", type]), `${count} ${prefix} (error type ${type})`)

        const list =
          (yield* sluice(cwd, ["dlq", "list", "daily-revenue", "--date", start, "--limit", "1000"], 0)).stdout
        const id = new RegExp(`^(\\d+)\\s+${start}\\s`, "m").exec(list)?.[1]
        assert.isDefined(id, list)
        assert.strictEqual(yield* header(["--id", id!]), `1 ${prefix} (id ${id})`)
        yield* sluice(cwd, ["dlq", "discard", "daily-revenue", "--id", id!], 0)
        assert.strictEqual(yield* header([]), `${day.bad - 1} ${prefix}`)
        assert.strictEqual(yield* header(["--status", "discarded"]), `1 ${prefix} (status discarded)`)
        assert.strictEqual(yield* header(["--status", "all"]), `${day.bad} ${prefix} (status all)`)
      }).pipe(Effect.provide(NodeServices.layer)),
    { timeout: 180_000 }
  )
})
