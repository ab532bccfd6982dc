/**
 * The `dlq` commands on a stream pipeline's dead letters (`order-stream`, in the same store as the
 * batch pipelines'), as a user runs them: list, show, discard and purge work; `run`, `backfill`,
 * `status` and `dlq replay` refuse a stream pipeline with a usage error naming its own commands;
 * `serve` lists it with its dead letters and processed events, and refuses it a re-run (400).
 *
 * The dead letters are written by the streaming pipeline itself (`Streaming.processBatch`), into the
 * embedded database of the command's folder, and, when `SLUICE_TEST_DATABASE_URL` is set, into that
 * PostgreSQL database (under a partition of their own).
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { Streaming } from "@sluice/core"
import { Database, SqlProcessedEventLedger, SqlSluice, Testing } from "@sluice/sql"
import { Effect, FileSystem, Layer, References } from "effect"
import * as Path from "node:path"
import { OrderStream } from "../apps/order-stream/src/index.ts"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd`, on `DATABASE_URL` when given (else its embedded database). */
const sluice = (cwd: string, args: ReadonlyArray<string>, databaseUrl: string | undefined) =>
  SluiceCli.run(cwd, args, { env: { DATABASE_URL: databaseUrl } })

/** The same, checking that it succeeds. */
const expectOk = (cwd: string, args: ReadonlyArray<string>, databaseUrl: string | undefined) =>
  SluiceCli.run(cwd, args, { env: { DATABASE_URL: databaseUrl }, code: 0 })

/** Two good order events and two bad ones, published on `day`, through the streaming pipeline. */
const streamDeadLetters = <E>(database: Layer.Layer<Database.Services, E>, day: string) =>
  Effect.gen(function*() {
    yield* DailyRevenue.setup
    const publishedAt = Date.parse(`${day}T12:00:00Z`)
    const id = `${day}-${Math.random().toString(36).slice(2, 8)}`
    const payloads = [
      JSON.stringify({
        order_id: `${id}-a`,
        customer_id: 1,
        product_category: "books",
        amount: "1.00",
        order_date: day
      }),
      "{\"order_id\":\"broken\",",
      JSON.stringify({ order_id: `${id}-b`, amount: -1 }),
      JSON.stringify({
        order_id: `${id}-c`,
        customer_id: 2,
        product_category: "games",
        amount: "2.00",
        order_date: day
      })
    ]
    const report = yield* Streaming.processBatch(
      OrderStream.make(),
      payloads.map((payload, i) => ({
        eventId: `${id}-${i}`,
        payload,
        stream: "ORDERS",
        sequence: 1_000 + i,
        publishedAt,
        ack: Effect.void
      })),
      { size: 100, outcomes: [] }
    )
    assert.strictEqual(report.deadLettered, 2)
  }).pipe(
    Effect.provide(
      SqlProcessedEventLedger.layer.pipe(
        Layer.provideMerge(SqlSluice.layer),
        Layer.provideMerge(database),
        Layer.merge(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    )
  )

const backends: ReadonlyArray<readonly [name: string, url: string | undefined]> = [
  ["pglite", undefined],
  ...(Testing.postgresUrl() === undefined ? [] : [["postgres", Testing.postgresUrl()] as const])
]

describe("dlq commands on a stream pipeline", () => {
  for (const [backend, url] of backends) {
    it.live(
      `list, show, discard and purge its dead letters; other commands refuse it (exit 2) [${backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-stream-dlq-" })
          // a day of its own on a shared database
          const day = `20${30 + Math.floor(Math.random() * 60)}-0${1 + Math.floor(Math.random() * 9)}-1${
            Math.floor(Math.random() * 9)
          }`
          yield* streamDeadLetters(
            url === undefined
              ? Database.layerPglite({ dataDir: Path.join(cwd, ".sluice", "pglite") })
              : Database.layerPostgres(url),
            day
          )

          const list = yield* expectOk(cwd, ["dlq", "list", "order-stream", "--date", day], url)
          assert.strictEqual(list.stdout.split("\n")[0], `2 dead letter(s) for order-stream ${day}`, list.stdout)
          const ids = [...list.stdout.matchAll(new RegExp(`^(\\d+)\\s+${day}\\s+(\\d+)\\s+new\\s+1\\s`, "gm"))]
          assert.deepStrictEqual(ids.map((m) => m[2]), ["1001", "1002"], list.stdout)

          const show = yield* expectOk(cwd, ["dlq", "show", "order-stream", ids[0]![1]!], url)
          assert.match(show.stdout, /^pipeline:\s+order-stream$/m)
          assert.match(show.stdout, /^position:\s+1001$/m)
          assert.include(show.stdout, "{\"order_id\":\"broken\",")

          const discard = yield* expectOk(cwd, ["dlq", "discard", "order-stream", "--id", ids[0]![1]!], url)
          assert.include(discard.stdout, "1 dead letter(s) of order-stream discarded")
          const after = yield* expectOk(cwd, ["dlq", "list", "order-stream", "--date", day, "--status", "all"], url)
          assert.match(after.stdout, new RegExp(`^${ids[0]![1]}\\s+${day}\\s+1001\\s+discarded\\s`, "m"))

          const purge = yield* expectOk(cwd, ["dlq", "purge", "order-stream", "--older-than", "1000 weeks"], url)
          assert.match(purge.stdout, /dead letter\(s\) of order-stream older than/)

          for (
            const [args, pattern] of [
              [["status", "order-stream"], /^error: order-stream is a stream pipeline: status .* use sluice stream/],
              [["backfill", "order-stream", "--end", day], /^error: order-stream is a stream pipeline: backfill /],
              [["run", "order-stream", "--date", day], /^error: order-stream is a stream pipeline: run /],
              [["dlq", "replay", "order-stream"], /^error: order-stream is a stream pipeline: .* sluice replay order-/]
            ] as const
          ) {
            const r = yield* sluice(cwd, args, url)
            assert.strictEqual(r.exitCode, 2, `${args.join(" ")}\n${r.stdout}\n${r.stderr}`)
            assert.strictEqual(r.stderr.trimEnd().split("\n").length, 1, r.stderr)
            assert.match(r.stderr, pattern)
          }

          // serve: the dashboard's API lists it with its dead letters and processed events, refuses it a re-run
          const { address, handle } = yield* SluiceCli.serve(cwd, ["serve", "--port", "0"], { DATABASE_URL: url })
          const send = (path: string, method = "GET") =>
            Effect.promise(() =>
              fetch(`${address}${path}`, { method }).then(async (r) => ({ status: r.status, body: await r.text() }))
            )
          const listed = JSON.parse((yield* send("/api/pipelines")).body) as ReadonlyArray<
            { name: string; kind: string }
          >
          assert.deepInclude(listed.map((p) => [p.name, p.kind]), ["order-stream", "stream"])
          assert.deepInclude(listed.map((p) => [p.name, p.kind]), ["daily-revenue", "batch"])
          const stream = yield* send("/api/pipelines/order-stream/stream")
          assert.strictEqual(stream.status, 200, stream.body)
          const view = JSON.parse(stream.body) as {
            readonly processed: { readonly events: number }
            readonly deadLetters: { readonly days: ReadonlyArray<unknown> }
          }
          assert.isAtLeast(view.processed.events, 4)
          assert.deepInclude(view.deadLetters.days, { partition: day, new: 1, replayed: 0, discarded: 1 })
          const rerun = yield* send(`/api/pipelines/order-stream/partitions/${day}/run`, "POST")
          assert.strictEqual(rerun.status, 400, rerun.body)
          assert.match(rerun.body, /order-stream is a stream pipeline: .*sluice stream order-stream/)
          const metrics = yield* send("/metrics")
          assert.strictEqual(metrics.status, 200, metrics.body)
          assert.match(metrics.body, /^sluice_processed_events\{pipeline="order-stream"\} [1-9]\d*$/m)
          yield* handle.kill()
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }
})
