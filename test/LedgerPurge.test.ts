/**
 * `sluice ledger purge [PIPELINE] --older-than AGE`, as a user runs it on the embedded database: it
 * deletes the processed-event ledger entries of stream pipelines claimed before the cut-off (a
 * pipeline's business keys, `<pipeline>#key`, included; every pipeline's when none is named), with
 * its default age from `SLUICE_LEDGER_RETENTION` (else 90d); a bad age, an unknown or a batch
 * pipeline is a usage error (exit 2) before the database is opened.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ProcessedEventLedger } from "@sluice/core"
import { Database, SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
import { Effect, FileSystem, Layer, References } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

/** Nothing listens there: a command that connected would fail with exit 1, not 2. */
const deadDatabase = "postgres://postgres@127.0.0.1:1/sluice"

const day = 24 * 60 * 60 * 1000

/** The ledger of the embedded database of `cwd`, for `effect`. */
const withLedger = <A, E>(cwd: string, effect: Effect.Effect<A, E, ProcessedEventLedger.ProcessedEventLedger>) =>
  effect.pipe(
    Effect.provide(
      SqlProcessedEventLedger.layer.pipe(
        Layer.provideMerge(SqlSluice.layer),
        Layer.provideMerge(Database.layerPglite({ dataDir: Path.join(cwd, ".sluice", "pglite") })),
        Layer.merge(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    )
  )

const counts = (cwd: string) =>
  withLedger(
    cwd,
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      return {
        events: yield* ledger.count("order-stream"),
        keys: yield* ledger.count("order-stream#key"),
        other: yield* ledger.count("other-stream")
      }
    })
  )

describe("ledger purge", () => {
  it.live(
    "deletes old processed-event ledger entries of a stream pipeline (its keys included) or of all",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-ledger-purge-" })
        const now = Date.now()
        const events = (...ids: ReadonlyArray<string>) =>
          ids.map((eventId, i) => ({ eventId, stream: "ORDERS", sequence: i + 1 }))
        yield* withLedger(
          cwd,
          Effect.gen(function*() {
            const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
            yield* ledger.claim("order-stream", events("e1", "e2"), now - 200 * day)
            yield* ledger.claim("order-stream", events("e3"), now - day)
            yield* ledger.claim("order-stream#key", events("k1"), now - 200 * day)
            yield* ledger.claim("order-stream#key", events("k2"), now - day)
            yield* ledger.claim("other-stream", events("x"), now - 200 * day)
          })
        )

        // the default retention, 90d: the 200-day-old entries of order-stream and its keys, not other-stream's
        const one = yield* SluiceCli.run(cwd, ["ledger", "purge", "order-stream"], { code: 0 })
        assert.strictEqual(one.stdout, "3 processed-event ledger row(s) of order-stream older than 90d purged\n")
        assert.deepStrictEqual(yield* counts(cwd), { events: 1, keys: 1, other: 1 })

        // SLUICE_LEDGER_RETENTION when --older-than is not given
        const env = yield* SluiceCli.run(cwd, ["ledger", "purge", "order-stream"], {
          env: { SLUICE_LEDGER_RETENTION: "1h" },
          code: 0
        })
        assert.strictEqual(env.stdout, "2 processed-event ledger row(s) of order-stream older than 1h purged\n")
        assert.deepStrictEqual(yield* counts(cwd), { events: 0, keys: 0, other: 1 })

        // no pipeline: every pipeline's (--older-than wins over SLUICE_LEDGER_RETENTION)
        const all = yield* SluiceCli.run(cwd, ["ledger", "purge", "--older-than", "2 weeks"], {
          env: { SLUICE_LEDGER_RETENTION: "nonsense" },
          code: 0
        })
        assert.strictEqual(all.stdout, "1 processed-event ledger row(s) older than 14d purged\n")
        assert.deepStrictEqual(yield* counts(cwd), { events: 0, keys: 0, other: 0 })
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )

  it.live(
    "refuses an unknown or batch pipeline and a bad age, before the database (exit 2)",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-ledger-usage-" })
        for (
          const [args, pattern, env] of [
            [["ledger", "purge", "nope"], /^error: unknown pipeline "nope"; known pipelines: order-stream$/, {}],
            [["ledger", "purge", "daily-revenue"], /^error: daily-revenue is a batch pipeline: ledger purge /, {}],
            [
              ["ledger", "purge", "--older-than", "400000d"],
              /^error: invalid --older-than "400000d": at most 1000 years$/,
              {}
            ],
            [["ledger", "purge", "--older-than", "soon"], /^error: invalid --older-than "soon": expected an age /, {}],
            [["ledger", "purge"], /^error: invalid SLUICE_LEDGER_RETENTION "52200 weeks": at most 1000 years$/, {
              SLUICE_LEDGER_RETENTION: "52200 weeks"
            }],
            [["ledger", "purge", "order-stream"], /^error: invalid SLUICE_LEDGER_RETENTION "x": expected an age /, {
              SLUICE_LEDGER_RETENTION: "x"
            }]
          ] as const
        ) {
          const result = yield* SluiceCli.run(cwd, args, { env: { DATABASE_URL: deadDatabase, ...env }, code: 2 })
          SluiceCli.assertOneLineError(result, pattern)
        }
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )
})
