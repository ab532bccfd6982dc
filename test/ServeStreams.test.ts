/**
 * `sluice serve` with a stream pipeline (`order-stream`) next to a batch one: the dashboard's API lists
 * it with its dead letters by error type and status, by day, and what its processed-event ledger holds;
 * a day's dead letters read as a batch pipeline's do; the batch actions (a partition's calendar, re-run
 * and replay) are refused with `BatchOnly` (400) naming `sluice stream` and `sluice replay`; `/metrics`
 * gives its new dead letters and processed events. On every backend, with the dead letters and ledger
 * entries written by the streaming pipeline itself (`Streaming.processBatch`).
 */
import { assert, layer } from "@effect/vitest"
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { DeadLetter, Partition, ProcessedEventLedger, Streaming } from "@sluice/core"
import { SqlProcessedEventLedger, SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer, References } from "effect"
import { HttpServer } from "effect/http"
import { OrderStream } from "../apps/order-stream/src/index.ts"
import * as Serve from "../packages/cli/src/Serve.ts"

const day = Partition.makeUnsafe("2024-05-07")
const id = `serve-streams-${Math.random().toString(36).slice(2, 8)}`
const order = (n: string, category: string) =>
  JSON.stringify({
    order_id: `${id}-${n}`,
    customer_id: 1,
    product_category: category,
    amount: "1.00",
    order_date: day
  })
/** Two good order events and two bad ones (not JSON, a negative amount without its fields). */
const payloads = [
  order("a", "books"),
  "{\"order_id\":\"broken\",",
  JSON.stringify({ order_id: "x", amount: -1 }),
  order("c", "games")
]
const messages = payloads.map((payload, i) => ({
  eventId: `${id}-${i}`,
  payload,
  stream: "ORDERS",
  sequence: 1_000 + i,
  publishedAt: Date.parse(`${day}T12:00:00Z`),
  ack: Effect.void
}))

const consume = "sluice stream order-stream"
const replay = "sluice replay order-stream --from-seq N|--from-time T"

for (const backend of Testing.backends()) {
  layer(
    SqlProcessedEventLedger.layer.pipe(
      Layer.provideMerge(SqlSluice.layer),
      Layer.provideMerge(backend.layer),
      Layer.merge(Layer.succeed(References.MinimumLogLevel, "Error"))
    ),
    { timeout: "90 seconds", excludeTestServices: true }
  )(`serve with a stream pipeline [${backend.name}]`, (it) => {
    it.effect("lists it with its dead letters and processed events; refuses it the batch actions (400)", () =>
      Effect.gen(function*() {
        yield* DailyRevenue.setup
        const before = Date.now()
        const report = yield* Streaming.processBatch(OrderStream.make(), messages, { size: 100, outcomes: [] })
        assert.strictEqual(report.deadLettered, 2)
        // a redelivery of the whole batch applies nothing, and adds nothing to the ledger
        yield* Streaming.processBatch(OrderStream.make(), messages, { size: 100, outcomes: [] })
        const after = Date.now()
        const store = yield* DeadLetter.DeadLetterStore
        const letters = yield* store.list(OrderStream.name, { partition: day })
        assert.deepStrictEqual(letters.map((d) => [d.position, d.errorType]), [
          [1001, "InvalidJson"],
          [1002, "SchemaMismatch"]
        ])
        assert.strictEqual(yield* store.discard(OrderStream.name, { ids: [letters[1]!.id] }), 1)

        const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
        const stream: Serve.ServedStream = {
          name: OrderStream.name,
          description: "Order events",
          consume,
          replay,
          processed: ledger.summary(OrderStream.name)
        }
        const batch: Serve.ServedPipeline = {
          name: "some-batch",
          description: "a batch pipeline",
          startDate: undefined,
          rerun: () => Effect.die("no batch action is asked in this test"),
          replay: () => Effect.die("no batch action is asked in this test")
        }

        yield* Effect.gen(function*() {
          const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
          const send = (path: string, method = "GET") =>
            Effect.promise(() =>
              fetch(`${address}${path}`, { method }).then(async (r) => ({ status: r.status, body: await r.text() }))
            )
          const json = (response: { readonly status: number; readonly body: string }) => {
            assert.strictEqual(response.status, 200, response.body)
            return JSON.parse(response.body) as unknown
          }

          assert.deepStrictEqual(json(yield* send("/api/pipelines")), [
            { name: "some-batch", kind: "batch", description: "a batch pipeline", startDate: null },
            { name: OrderStream.name, kind: "stream", description: "Order events", startDate: null, consume, replay }
          ])

          const summary = json(yield* send(`/api/pipelines/${OrderStream.name}/stream`)) as {
            readonly processed: {
              readonly events: number
              readonly firstProcessedAt: number
              readonly lastProcessedAt: number
            }
          }
          const { firstProcessedAt, lastProcessedAt } = summary.processed
          assert.isAtLeast(firstProcessedAt, before)
          assert.isAtMost(lastProcessedAt, after)
          assert.deepStrictEqual<unknown>(summary, {
            pipeline: OrderStream.name,
            kind: "stream",
            description: "Order events",
            consume,
            replay,
            processed: { events: 4, firstProcessedAt, lastProcessedAt },
            deadLetters: {
              byType: [
                { errorType: "InvalidJson", status: "new", count: 1 },
                { errorType: "SchemaMismatch", status: "discarded", count: 1 }
              ],
              days: [{ partition: day, new: 1, replayed: 0, discarded: 1 }]
            }
          })

          // a day's dead letters, as for a batch pipeline (no runs: a stream has none)
          const detail = json(yield* send(`/api/pipelines/${OrderStream.name}/partitions/${day}`)) as {
            readonly runs: ReadonlyArray<unknown>
            readonly deadLetters: ReadonlyArray<{ readonly position: number; readonly status: string }>
          }
          assert.deepStrictEqual(detail.runs, [])
          assert.deepStrictEqual(detail.deadLetters.map((d) => [d.position, d.status]), [
            [1001, "new"],
            [1002, "discarded"]
          ])

          // the batch actions: a clear usage error naming the stream's own commands, nothing done
          for (
            const [path, method, pattern] of [
              [
                `partitions/${day}/run`,
                "POST",
                /^BatchOnly: order-stream is a stream pipeline: .*sluice stream order-/
              ],
              [
                `partitions/${day}/replay`,
                "POST",
                /^BatchOnly: order-stream is a stream pipeline: .*sluice replay order-/
              ],
              [
                "calendar",
                "GET",
                /^BatchOnly: order-stream is a stream pipeline: .*\/api\/pipelines\/order-stream\/stream/
              ]
            ] as const
          ) {
            const refused = yield* send(`/api/pipelines/${OrderStream.name}/${path}`, method)
            assert.strictEqual(refused.status, 400, `${method} ${path}: ${refused.body}`)
            assert.match((JSON.parse(refused.body) as { readonly error: string }).error, pattern)
          }
          assert.deepStrictEqual(
            (yield* store.list(OrderStream.name, { status: DeadLetter.statuses })).map((d) => [d.status, d.attempts]),
            [["new", 1], ["discarded", 1]]
          )
          // a batch pipeline has no stream view; an unknown one is not found
          assert.strictEqual((yield* send("/api/pipelines/some-batch/stream")).status, 404)
          assert.strictEqual((yield* send("/api/pipelines/nope/stream")).status, 404)

          // /metrics: its new dead letters and processed events, no partitions
          const metrics = yield* send("/metrics")
          assert.strictEqual(metrics.status, 200, metrics.body)
          assert.match(metrics.body, /^sluice_dead_letters\{pipeline="order-stream",error_type="InvalidJson"\} 1$/m)
          assert.notMatch(metrics.body, /^sluice_dead_letters\{pipeline="order-stream",error_type="SchemaMismatch"/m)
          assert.match(metrics.body, /^sluice_processed_events\{pipeline="order-stream"\} 4$/m)
          assert.match(
            metrics.body,
            new RegExp(`^sluice_last_processed_seconds\\{pipeline="order-stream"\\} ${lastProcessedAt / 1000}$`, "m")
          )
          assert.match(metrics.body, /^sluice_partitions\{pipeline="some-batch",status="succeeded"\} 0$/m)
          assert.notMatch(metrics.body, /^sluice_partitions\{pipeline="order-stream"/m)
        }).pipe(
          Effect.provide(Serve.layer({ pipelines: [batch], streams: [stream], port: 0, log: false })),
          Effect.scoped
        )
      }))
  })
}
