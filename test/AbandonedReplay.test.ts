/**
 * A stream replay whose process dies: a replay (`test/ReplayProcess.ts`, `OrderStream.replay` in a
 * process of its own) is killed (SIGKILL) after it has committed dead letters under its own name,
 * `order-stream@replay-<id>`, which nothing counts or adopts, leaving them, its durable consumer and its
 * fresh table versions (`raw.orders_v2`, `analytics.daily_revenue_v2`, which no view points to). The next
 * replay must delete all three before it adopts its own dead letters, keeping the version readers were on.
 * On PostgreSQL, while the killed replay is still alive (its lock held by a live process), another
 * process's cleanup keeps them.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { DeadLetter } from "@sluice/core"
import { SqlProcessedEventLedger, SqlSluice, VersionedTable } from "@sluice/sql"
import { Effect, Fiber, FileSystem, Layer, References, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { SqlClient } from "effect/sql"
import * as Path from "node:path"
import { OrderStream } from "../apps/order-stream/src/index.ts"
import { JetStreamSource, Testing as NatsTesting } from "../packages/nats/src/index.ts"
import * as SluiceCli from "./SluiceCli.ts"

const servers = NatsTesting.servers
const reachable = await NatsTesting.reachableOrFail(it)

const script = Path.resolve(import.meta.dirname, "ReplayProcess.ts")

const good = (i: number) =>
  JSON.stringify({
    order_id: `o-${i}`,
    customer_id: 1 + (i % 5),
    product_category: "books",
    amount: `${i}.00`,
    order_date: "2024-03-01"
  })

/** Two bad orders among the first, then good ones: batches with writes follow the one with dead letters. */
const events = [
  good(1),
  "{\"order_id\":\"broken\",",
  JSON.stringify({ order_id: "negative", amount: -1 }),
  ...Array.from({ length: 20 }, (_, i) => good(i + 4))
].map((payload, i) => ({ eventId: `abandoned-replay-${i + 1}`, payload }))

const killQuietly = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
}

/** The dead letters of the store by pipeline name, both tables. */
const byPipeline = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ readonly pipeline: string; readonly n: number }>`
    SELECT pipeline, count(*)::int AS n FROM (
      SELECT pipeline FROM sluice.dead_letters UNION ALL SELECT pipeline FROM sluice.dead_letters_resolved
    ) d GROUP BY pipeline ORDER BY pipeline`)

describe.skipIf(!reachable)(`a stream replay whose process is killed (NATS at ${servers})`, () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `leaves dead letters, a consumer and fresh table versions the next replay deletes; a live replay's are kept [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-abandoned-replay-" })
          const { env, layer: database } = yield* session.database(cwd)
          const nats = JetStreamSource.JetStream.layer(servers)
          const services = Layer.mergeAll(
            SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer), Layer.provideMerge(database)),
            nats,
            Layer.succeed(References.MinimumLogLevel, "Error")
          )

          const id = crypto.randomUUID().replaceAll("-", "").slice(0, 10)
          const stream = `FIXSTREAM_ABANDONED_${id}`.toUpperCase()
          const subject = `fixstream.abandoned.${id}`
          yield* Effect.gen(function*() {
            const js = yield* JetStreamSource.JetStream
            yield* Effect.addFinalizer(() => Effect.promise(() => js.manager.streams.delete(stream).catch(() => false)))
            yield* OrderStream.publish(events, { stream, subject })
          }).pipe(Effect.provide(nats))

          // the replay commits a batch with dead letters, then hangs in its next write
          const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
          const handle = yield* spawner.spawn(ChildProcess.make("node", [script, stream], {
            cwd,
            env: { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1", ...env },
            extendEnv: true
          }))
          // killed whatever happens: its replay never ends on its own (a SIGTERM waits for the batch in hand)
          yield* Effect.addFinalizer(() => Effect.sync(() => killQuietly(Number(handle.pid))))
          const stderr = yield* Stream.mkString(Stream.decodeText(handle.stderr)).pipe(Effect.forkChild)
          const exited = yield* Effect.forkChild(handle.exitCode)
          const output = yield* Stream.decodeText(handle.stdout).pipe(
            Stream.takeUntil((chunk) => /committed \d+-\d+ [1-9]/.test(chunk)),
            Stream.mkString
          )
          if (!/committed \d+-\d+ [1-9]/.test(output)) {
            const exit = yield* Fiber.await(exited)
            assert.fail(`the replay ended early (${exit}): ${output}\n${yield* Fiber.join(stderr)}`)
          }

          const replayNames = Effect.flatMap(
            DeadLetter.DeadLetterStore,
            (store) => store.pipelines(OrderStream.replayPrefix)
          )
          const replayConsumers = Effect.map(
            JetStreamSource.consumers(stream),
            (names) => names.filter((name) => name.startsWith(`${OrderStream.consumer}-replay-`))
          )
          // the tables of each version: the plain tables (version 1) and the replay's fresh versions
          const versionTables = Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql<{ readonly name: string }>`
              SELECT c.oid::regclass::text AS name FROM pg_class c
              WHERE c.relkind = 'r' AND c.oid::regclass::text ~ '^(raw\.orders|analytics\.daily_revenue)(_v[0-9]+)?$'
              ORDER BY 1`.pipe(Effect.map((rows) => rows.map((r) => r.name))))
          const freshVersions = [
            "analytics.daily_revenue",
            "analytics.daily_revenue_v2",
            "raw.orders",
            "raw.orders_v2"
          ]
          if (session.backend === "postgres") {
            // alive: its lock is held by a live process, so another process keeps its dead letters and consumer
            const alive = yield* Effect.gen(function*() {
              const removed = yield* OrderStream.removeAbandonedReplays({ stream })
              return {
                removed,
                names: yield* replayNames,
                consumers: yield* replayConsumers,
                versions: yield* versionTables
              }
            }).pipe(Effect.provide(services))
            assert.deepStrictEqual(alive.removed, { deadLetters: [], consumers: [], tables: [] })
            assert.strictEqual(alive.names.length, 1, "the live replay's dead letters are kept")
            assert.strictEqual(alive.consumers.length, 1, "the live replay's consumer is kept")
            assert.deepStrictEqual(alive.versions, freshVersions, "the live replay's fresh versions are kept")
          }

          // the process dies without a chance to remove its dead letters or its consumer
          process.kill(Number(handle.pid), "SIGKILL")
          yield* Fiber.await(exited)

          yield* Effect.gen(function*() {
            const left = yield* replayNames
            assert.strictEqual(left.length, 1, "the killed replay's dead letters are left")
            assert.deepStrictEqual(yield* byPipeline, [{ pipeline: left[0]!, n: 2 }])
            const id = left[0]!.slice(OrderStream.replayPrefix.length)
            assert.deepStrictEqual(yield* replayConsumers, [`${OrderStream.consumer}-replay-${id}`])
            const sql = yield* SqlClient.SqlClient
            const replayLedger = Effect.map(
              sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM sluice.processed_events
                WHERE starts_with(pipeline, ${OrderStream.replayPrefix})`,
              (rows) => rows[0]?.n ?? 0
            )
            assert.isAbove(yield* replayLedger, 0, "the killed replay's ledger entries are left")
            // and its fresh versions, marked as its own, which no view points to
            assert.deepStrictEqual(yield* versionTables, freshVersions)
            assert.deepStrictEqual(
              [
                ...yield* VersionedTable.pending("raw.orders"),
                ...yield* VersionedTable.pending("analytics.daily_revenue")
              ].map((v) => `${v.relation} ${v.owner}`),
              [`raw.orders_v2 ${left[0]}`, `analytics.daily_revenue_v2 ${left[0]}`]
            )

            // the next replay deletes them, then adopts its own: the bad messages once each
            yield* DailyRevenue.setup
            const next = yield* OrderStream.replay({
              stream,
              startAt: { _tag: "Sequence", sequence: 1 },
              pipeline: { batchSize: 5, batchWindow: "20 millis", badRecords: { threshold: 0.9 } }
            })
            assert.deepStrictEqual(next.deadLetters, { superseded: 0, adopted: 2 })
            assert.deepStrictEqual(yield* replayNames, [])
            assert.deepStrictEqual(yield* byPipeline, [{ pipeline: OrderStream.name, n: 2 }])
            assert.deepStrictEqual(yield* replayConsumers, [], "the killed replay's consumer is deleted")
            assert.strictEqual(yield* replayLedger, 0, "the killed replay's ledger entries are deleted")
            // its fresh versions were dropped before the next replay created its own, which took their numbers;
            // version 1, which readers were on, is kept
            assert.deepStrictEqual(next.tables, { orders: "raw.orders_v2", dailyRevenue: "analytics.daily_revenue_v2" })
            assert.deepStrictEqual(yield* versionTables, [
              "analytics.daily_revenue_v1",
              "analytics.daily_revenue_v2",
              "raw.orders_v1",
              "raw.orders_v2"
            ])
            assert.deepStrictEqual(yield* VersionedTable.pending("raw.orders"), [])
          }).pipe(Effect.provide(services))
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }
})
