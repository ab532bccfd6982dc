/**
 * The streaming commands of the `sluice` CLI as a user runs them (`node apps/sluice/src/main.ts …`):
 * arguments and configuration are refused with one `error:` line and the usage status (2) before
 * NATS or the database is reached, and an unreachable NATS is named with its address.
 *
 * NATS and the database are pointed at ports nothing listens on: a command that got past its checks
 * would fail differently.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

/** Nothing listens on these. */
const deadNats = "127.0.0.1:14299"
const deadDatabase = "postgres://postgres@127.0.0.1:1/fixstream"

/** Runs `sluice <args>` in a temporary folder, on the dead NATS and database unless `env` says otherwise. */
const sluice = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const cwd = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "sluice-stream-cli-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    return yield* SluiceCli.run(cwd, args, { env: { DATABASE_URL: deadDatabase, NATS_URL: deadNats, ...env } })
  }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

/** One line on stderr, `error: …`, matching `pattern`; the expected exit status. */
const assertError = (args: ReadonlyArray<string>, result: SluiceCli.Result, code: number, pattern: RegExp) => {
  const context = SluiceCli.describeResult(args, result)
  assert.strictEqual(result.exitCode, code, context)
  const lines = result.stderr.trimEnd().split("\n")
  assert.strictEqual(lines.length, 1, context)
  assert.match(lines[0]!, /^error: /, context)
  assert.match(lines[0]!, pattern, context)
}

const cases: ReadonlyArray<
  readonly [args: ReadonlyArray<string>, env: Record<string, string>, code: number, pattern: RegExp]
> = [
  [["replay", "order-stream", "--from-seq", "0"], {}, 2, /^error: invalid --from-seq 0: stream sequences start at 1$/],
  [
    ["replay", "order-stream", "--from-seq", "-5"],
    {},
    2,
    /^error: invalid --from-seq -5: stream sequences start at 1$/
  ],
  [
    ["replay", "order-stream", "--from-time", "yesterday"],
    {},
    2,
    /^error: invalid --from-time "yesterday": expected an ISO 8601 time$/
  ],
  // not ISO 8601, though JavaScript's Date reads them (as 2000-01-01, 2001-03-07 and 2001-12-01, local time)
  [
    ["replay", "order-stream", "--from-time", "0"],
    {},
    2,
    /^error: invalid --from-time "0": expected an ISO 8601 time$/
  ],
  [
    ["replay", "order-stream", "--from-time", "March 7"],
    {},
    2,
    /^error: invalid --from-time "March 7": expected an ISO 8601 time$/
  ],
  [
    ["replay", "order-stream", "--from-time", "12"],
    {},
    2,
    /^error: invalid --from-time "12": expected an ISO 8601 time$/
  ],
  [
    ["stream", "order-stream", "--metrics-port", "70000"],
    {},
    2,
    /^error: --metrics-port must be between 0 and 65535, got 70000$/
  ],
  [
    ["stream", "order-stream", "--bad-rate-max-pauses", "-1"],
    {},
    2,
    /^error: --bad-rate-max-pauses must be 0 or more, got -1$/
  ],
  [
    ["stream", "order-stream", "--bad-rate-on-persist", "ignore"],
    {},
    2,
    /^error: Invalid value for flag --bad-rate-on-persist: "ignore"\. Expected: "dead-letter" \| "fail"/
  ],
  [
    ["stream", "daily-revenue"],
    {},
    2,
    /^error: daily-revenue is a batch pipeline: stream works on stream pipelines \(order-stream\) only; load its partitions with sluice run daily-revenue --date D or sluice backfill daily-revenue --start D --end D$/
  ],
  [
    ["replay", "customers-merge", "--from-seq", "1"],
    {},
    2,
    /^error: customers-merge is a batch pipeline: replay works on stream pipelines \(order-stream\) only; /
  ],
  [["stream", "nope"], {}, 2, /^error: unknown pipeline "nope"; known pipelines: order-stream$/],
  [["publish-orders", "--count", "-5"], {}, 2, /^error: --count must be 0 or more, got -5$/],
  [["publish-orders", "--bad-share", "2"], {}, 2, /^error: --bad-share must be between 0 and 1, got 2$/],
  [
    ["publish-orders", "--duplicate-share", "-0.1"],
    {},
    2,
    /^error: --duplicate-share must be between 0 and 1, got -0\.1$/
  ],
  [["publish-orders", "--count", "1"], {}, 1, /^error: NATS unavailable: 127\.0\.0\.1:14299: connection refused$/],
  [["publish-orders", "--count", "1"], { NATS_URL: "not a url" }, 2, /^error: NATS_URL: invalid NATS URL "not a url"/]
]

describe("the sluice streaming commands", () => {
  it.live(
    "refuse bad arguments and configuration (exit 2), name an unreachable NATS (exit 1), in one error line",
    () =>
      Effect.gen(function*() {
        const results = yield* Effect.forEach(cases, ([args, env]) => sluice(args, env), { concurrency: 2 })
        cases.forEach(([args, , code, pattern], i) => assertError(args, results[i]!, code, pattern))
      }),
    { timeout: 60_000 }
  )
})
