import { assert, describe, it, layer } from "@effect/vitest"
import { DailyRevenue, Order, Tables } from "@sluice-app/daily-revenue"
import { OrderStream } from "@sluice-app/order-stream"
import {
  Contract,
  DeadLetter,
  type Partition,
  PartitionLock,
  Pipeline,
  SinkError,
  Source,
  Streaming
} from "@sluice/core"
import { JetStreamSource, Testing as NatsTesting } from "@sluice/nats"
import {
  Database,
  SqlPartitionLock,
  SqlProcessedEventLedger,
  SqlSluice,
  TableContract,
  Testing,
  VersionedTable
} from "@sluice/sql"
import { Deferred, Effect, Exit, Fiber, Layer, Schedule, Scope, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"

const servers = NatsTesting.servers
const reachable = await NatsTesting.reachableOrFail(it)

const snapshot = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const orders = yield* sql<{ readonly k: string }>`
    SELECT order_date::text || '/' || order_id || '/' || amount::text AS k FROM raw.orders ORDER BY 1`
  const revenue = yield* sql<{ readonly k: string }>`
    SELECT date::text || '/' || category || '/' || revenue::text || '/' || order_count AS k
    FROM analytics.daily_revenue ORDER BY 1`
  return { orders: orders.map((r) => r.k), revenue: revenue.map((r) => r.k) }
})

/** The batch app over the same distinct events, one run per date, on a database of its own. */
const batchResult = (events: ReadonlyArray<{ readonly eventId: string; readonly payload: string }>) => {
  const distinct = [...new Map(events.map((e) => [e.eventId, e.payload])).values()]
  const byDate = new Map<string, Array<string>>()
  for (const payload of distinct) {
    const decoded = OrderStream.transform({ payload, position: 0 }, "2024-03-01" as Partition.PartitionDate)
    if (decoded._tag === "Success") {
      byDate.set(decoded.success.order_date, [...(byDate.get(decoded.success.order_date) ?? []), payload])
    }
  }
  const source = Source.make(
    "inline",
    (date) => Stream.fromIterable((byDate.get(date) ?? []).map((payload, i) => ({ payload, position: i + 1 })))
  )
  const pipeline = Pipeline.make({
    name: DailyRevenue.name,
    source,
    transform: Order.OrderTransform,
    // the batch app's sink, with its daily-revenue rebuild (customer metrics are not streamed)
    sink: TableContract.partitionReplace<Order.Order>({
      table: Tables.orders.table,
      partitionColumn: "order_date",
      columns: Tables.orders.columns,
      toRow: (
        o
      ) => [o.order_date, o.order_id, o.customer_id, o.product_category, o.amount, o.currency, o.loyalty_points],
      contract: DailyRevenue.contract,
      undeclared: Contract.undeclaredFields(Order.Order),
      derived: [DailyRevenue.derived[0]!]
    }),
    key: (o) => o.order_id
  })
  return Effect.gen(function*() {
    yield* DailyRevenue.setup
    for (const date of [...byDate.keys()].sort()) yield* Pipeline.run(pipeline, date as Partition.PartitionDate)
    return yield* snapshot
  }).pipe(Effect.provide(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPglite({ dataDir: undefined })))))
}

/**
 * A JetStream stream of its own for a test, `<NAME>_<id>` on subject `<name>.<id>`, with a consumer
 * name `<name>-<id>`; deleted when the test's scope closes.
 */
const testStream = (name: string) =>
  Effect.gen(function*() {
    const id = crypto.randomUUID().replaceAll("-", "").slice(0, 10)
    const stream = `${name.replaceAll(".", "_")}_${id}`.toUpperCase()
    const js = yield* JetStreamSource.JetStream
    yield* Effect.addFinalizer(() => Effect.promise(() => js.manager.streams.delete(stream).catch(() => false)))
    return { id, stream, subject: `${name}.${id}`, consumer: `${name.replaceAll(".", "-")}-${id}`, js }
  })

/**
 * Runs `pipeline` on `consumer` of `stream` (created if missing) until the consumer has nothing
 * pending or unacknowledged, then stops it (its durable position kept). Returns whether the run was
 * still going when the consumer caught up.
 */
const consumeAll = <A, R>(stream: string, consumer: string, pipeline: Streaming.StreamingPipeline<A, R>) =>
  Effect.gen(function*() {
    const js = yield* JetStreamSource.JetStream
    yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "2 seconds" })
    const fiber = yield* Streaming.run(pipeline, JetStreamSource.source({ stream, consumer })).pipe(Effect.forkChild)
    yield* Effect.promise(() => js.manager.consumers.info(stream, consumer)).pipe(
      Effect.flatMap((info) =>
        info.num_pending === 0 && info.num_ack_pending === 0 ? Effect.void : Effect.fail("pending")
      ),
      Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 300 }),
      Effect.orDie
    )
    const running = fiber.pollUnsafe() === undefined
    yield* Fiber.interrupt(fiber)
    return running
  })

/**
 * A replay of `stream` from its first message whose second write fails (not retryable): the exit
 * of the replay and the number of writes it attempted.
 */
const failingReplay = (stream: string, pipeline: Parameters<typeof OrderStream.replay>[0]["pipeline"]) =>
  Effect.suspend(() => {
    let writes = 0
    return OrderStream.replay({
      stream,
      startAt: { _tag: "Sequence", sequence: 1 },
      pipeline,
      sink: (tables) => {
        const real = OrderStream.sinkFor(tables)
        return {
          ...real,
          write: (orders) =>
            ++writes === 2
              ? Effect.fail(new SinkError.SinkError({ operation: "test", message: "boom", retryable: false }))
              : real.write(orders)
        }
      }
    }).pipe(Effect.exit, Effect.map((exit) => ({ exit, writes })))
  })

describe.skipIf(!reachable)(`order-stream (NATS at ${servers})`, () => {
  for (const backend of Testing.backends()) {
    const services = Layer.mergeAll(
      SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer), Layer.provideMerge(backend.layer)),
      JetStreamSource.JetStream.layer(servers)
    )
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}]`, (it) => {
      it.effect("streams order events (duplicates, bad ones) like the batch app; replays into fresh table versions", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { stream, subject, consumer, js } = yield* testStream("orders.test")
          const events = OrderStream.events({ count: 120, seed: 7, badShare: 0.1, duplicateShare: 0.2 })
          yield* OrderStream.publish(events, { stream, subject })
          const consumeLive = consumeAll(
            stream,
            consumer,
            OrderStream.make({ batchSize: 25, batchWindow: "20 millis", badRecords: { threshold: 0.5 } })
          )
          yield* consumeLive
          const streamed = yield* snapshot
          const batch = yield* batchResult(events)
          assert.isAbove(streamed.orders.length, 50)
          assert.deepStrictEqual(streamed, batch)
          const info = yield* Effect.promise(() => js.manager.streams.info(stream))
          const versions = Effect.all([
            VersionedTable.current("raw.orders"),
            VersionedTable.current("analytics.daily_revenue")
          ])
          const pipeline = { batchSize: 25, batchWindow: "20 millis", badRecords: { threshold: 0.5 } } as const

          // replay from sequence 1 into fresh versions: readers switched to them see the live result
          const full = yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 1 }, pipeline })
          assert.strictEqual(full.received, info.state.last_seq)
          // every event accounted for: the duplicates published are skipped
          assert.isAbove(full.skipped, 0)
          assert.strictEqual(full.loaded + full.deadLettered + full.skipped, full.received)
          assert.deepStrictEqual(full.tables, { orders: "raw.orders_v2", dailyRevenue: "analytics.daily_revenue_v2" })
          assert.deepStrictEqual((yield* versions).map((v) => v?.relation), [
            "raw.orders_v2",
            "analytics.daily_revenue_v2"
          ])
          assert.deepStrictEqual(yield* snapshot, batch)
          const sql = yield* SqlClient.SqlClient
          const [kept] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM raw.orders_v1`
          assert.strictEqual(kept?.n, streamed.orders.length, "the old version is kept")

          // replay from sequence 10: exactly the events from there (sequence i is events[i - 1])
          const later = yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 10 }, pipeline })
          assert.strictEqual(later.received, info.state.last_seq - 9)
          assert.strictEqual(later.tables.orders, "raw.orders_v3")
          const fromTen = yield* batchResult(events.slice(9))
          assert.isBelow(fromTen.orders.length, batch.orders.length)
          assert.deepStrictEqual(yield* snapshot, fromTen)

          // a failure mid-replay leaves the readers on the old versions
          const { exit: failed, writes } = yield* failingReplay(stream, pipeline)
          assert.isTrue(Exit.isFailure(failed))
          assert.strictEqual(writes, 2)
          assert.deepStrictEqual((yield* versions).map((v) => v?.relation), [
            "raw.orders_v3",
            "analytics.daily_revenue_v3"
          ])
          assert.deepStrictEqual(yield* snapshot, fromTen)
          // its fresh versions received rows: kept for inspection, marked as its own, until a replay's cleanup
          // (its lock is free: it is no longer running) drops them, and only them
          const pending = Effect.all([
            VersionedTable.pending("raw.orders"),
            VersionedTable.pending("analytics.daily_revenue")
          ])
          const left = (yield* pending).flat()
          assert.deepStrictEqual(left.map((v) => v.relation), ["raw.orders_v4", "analytics.daily_revenue_v4"])
          assert.isTrue(left.every((v) => v.owner.startsWith(OrderStream.replayPrefix) && v.owner === left[0]!.owner))
          const [rowsLeft] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM raw.orders_v4`
          assert.isAbove(rowsLeft?.n ?? 0, 0)
          const removed = yield* OrderStream.removeAbandonedReplays({ stream })
          assert.deepStrictEqual(removed.tables, ["raw.orders_v4", "analytics.daily_revenue_v4"])
          assert.deepStrictEqual(yield* pending, [[], []])
          const [tablesLeft] = yield* sql<{ readonly names: string }>`
            SELECT string_agg(c.oid::regclass::text, ',' ORDER BY c.oid::regclass::text) AS names FROM pg_class c
            WHERE c.relkind = 'r' AND c.oid::regclass::text ~ '^(raw\.orders|analytics\.daily_revenue)_v[0-9]+$'`
          assert.strictEqual(
            tablesLeft?.names,
            "analytics.daily_revenue_v1,analytics.daily_revenue_v2,analytics.daily_revenue_v3," +
              "raw.orders_v1,raw.orders_v2,raw.orders_v3",
            "the versions readers were on are kept"
          )
          assert.deepStrictEqual((yield* versions).map((v) => v?.relation), [
            "raw.orders_v3",
            "analytics.daily_revenue_v3"
          ])

          // the live consumer, restarted after the switch, writes through the views into the new versions
          const more = OrderStream.events({ count: 20, seed: 8, badShare: 0.1, duplicateShare: 0.2 })
          yield* OrderStream.publish(more, { stream, subject })
          yield* consumeLive
          assert.deepStrictEqual(yield* snapshot, yield* batchResult([...events.slice(9), ...more]))

          const consumers = yield* Effect.promise(() => js.manager.consumers.list(stream).next())
          assert.deepStrictEqual(consumers.map((c) => c.name), [consumer], "the replay consumers are deleted")
        })))
    })
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] re-sent orders`, (it) => {
      it.effect("an order re-sent as a distinct event counts once, first version, as in the batch app", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { stream, subject, consumer } = yield* testStream("fixstream.resent")
          const original = OrderStream.events({ count: 40, seed: 21, badShare: 0, duplicateShare: 0 })
          // re-sent orders: new event ids, the same order (date, id), some with another amount
          const resent = original.slice(0, 12).map((e, i) => {
            const order = JSON.parse(e.payload) as Record<string, unknown>
            return {
              eventId: `${e.eventId}-resent`,
              payload: JSON.stringify(i % 2 === 0 ? { ...order, amount: "999.99" } : order)
            }
          })
          // interleaved: some re-sent in the same micro-batch as the original, some later
          const events = [...original.slice(0, 20), ...resent.slice(0, 6), ...original.slice(20), ...resent.slice(6)]
          yield* OrderStream.publish(events, { stream, subject })
          yield* consumeAll(stream, consumer, OrderStream.make({ batchSize: 25, batchWindow: "20 millis" }))
          const streamed = yield* snapshot
          assert.strictEqual(streamed.orders.length, 40, "each order once")
          assert.isFalse(streamed.orders.some((k) => k.endsWith("/999.99")), "the first version stays")
          assert.deepStrictEqual(streamed, yield* batchResult(events))
          const sql = yield* SqlClient.SqlClient
          const dead = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM sluice.dead_letters
            WHERE pipeline = ${OrderStream.name} AND error_type = 'DuplicateKey'`
          assert.strictEqual(dead[0]?.n, 12)
        })))
    })
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(
      `[${backend.name}] keys after a replay`,
      (it) => {
        it.effect("after a replay from N, an order re-sent is a duplicate only if the new versions hold its key", () =>
          Effect.scoped(Effect.gen(function*() {
            yield* DailyRevenue.setup
            const { stream, subject, consumer } = yield* testStream("fixstream.replaykeys")
            const orders = OrderStream.events({ count: 20, seed: 33, badShare: 0, duplicateShare: 0 })
            const resent = (i: number) => ({ eventId: `${orders[i]!.eventId}-resent`, payload: orders[i]!.payload })
            // the live consumer until caught up (its durable position kept), then stopped
            const drain = consumeAll(stream, consumer, OrderStream.make({ batchSize: 5, batchWindow: "20 millis" }))
            // sequences 1-10 consumed live; 11-20 published while it is stopped
            yield* OrderStream.publish(orders.slice(0, 10), { stream, subject })
            yield* drain
            yield* OrderStream.publish(orders.slice(10), { stream, subject })
            // a replay from sequence 6: the new versions hold orders 6-20 (indexes 5-19)
            const replayed = yield* OrderStream.replay({
              stream,
              startAt: { _tag: "Sequence", sequence: 6 },
              pipeline: { batchSize: 5, batchWindow: "20 millis" }
            })
            assert.strictEqual(replayed.loaded, 15)
            // re-sent: orders 1-3 (only seen before 6) and order 8 (in the replayed range)
            yield* OrderStream.publish([resent(0), resent(1), resent(2), resent(7)], { stream, subject })
            // the live consumer resumes at 11: it re-applies 11-20 (applied by the replay), then the re-sent ones
            yield* drain
            const sql = yield* SqlClient.SqlClient
            const dead = yield* sql<{ readonly position: string }>`
            SELECT position::text AS position FROM sluice.dead_letters
            WHERE pipeline = ${OrderStream.name} AND error_type = 'DuplicateKey' ORDER BY position`
            assert.deepStrictEqual(dead.map((d) => d.position), ["24"], "only the re-sent order 8 is a duplicate")
            const keys = (indexes: ReadonlyArray<number>) =>
              indexes.map((i) => {
                const o = JSON.parse(orders[i]!.payload) as { readonly order_date: string; readonly order_id: string }
                return `${o.order_date}/${o.order_id}`
              }).sort()
            const loaded = (yield* snapshot).orders.map((k) => k.split("/").slice(0, 2).join("/")).sort()
            assert.deepStrictEqual(loaded, keys([0, 1, 2, ...Array.from({ length: 15 }, (_, i) => i + 5)]))
            // the replay's event ids and keys are gone from the ledger: its keys are the pipeline's now
            const left = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM sluice.processed_events
            WHERE starts_with(pipeline, ${OrderStream.replayPrefix})`
            assert.strictEqual(left[0]?.n, 0)
          })))
      }
    )
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] bad burst`, (it) => {
      it.effect("a burst of bad orders: after maxPauses dead-lettered and acked (deadLetter), or the run fails (fail)", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { id, stream, subject, js } = yield* testStream("fixstream.burst")
          // 8 bad of 10, one micro-batch
          const events = Array.from({ length: 10 }, (_, i) => ({
            eventId: `${id}-${i}`,
            payload: i < 2
              ? JSON.stringify({
                order_id: `burst-${id}-${i}`,
                customer_id: 1,
                product_category: "books",
                amount: "10.00",
                order_date: "2031-06-01"
              })
              : `{"order_id":"bad-${i}",`
          }))
          yield* OrderStream.publish(events, { stream, subject })
          const sql = yield* SqlClient.SqlClient
          const consume = (consumer: string, onPersist: Streaming.OnPersist) =>
            Effect.gen(function*() {
              yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "10 seconds" })
              const name = `${OrderStream.name}-${consumer}`
              const gaveUp: Array<Streaming.Event> = []
              const pipeline = OrderStream.make({
                batchSize: 10,
                batchWindow: "200 millis",
                badRecords: { threshold: 0.5, window: 10, minimum: 4, pause: "50 millis", maxPauses: 2, onPersist }
              })
              const exit = yield* Streaming.run(
                Streaming.make({ ...pipeline, name }),
                JetStreamSource.source({ stream, consumer }),
                { onEvent: (e) => Effect.sync(() => e._tag === "BadRecordRateGaveUp" && gaveUp.push(e)) }
              ).pipe(
                Effect.timeout("3 seconds"),
                Effect.exit
              )
              const info = yield* Effect.promise(() => js.manager.consumers.info(stream, consumer))
              const dead = yield* sql<{ readonly n: number }>`
                SELECT count(*)::int AS n FROM sluice.dead_letters WHERE pipeline = ${name}`
              return { exit, gaveUp, info, dead: dead[0]?.n }
            })
          // dead-letter: the run goes on (it is only stopped by the timeout), every message acked
          const goesOn = yield* consume(`burst-dl-${id}`, "deadLetter")
          assert.isTrue(
            Exit.isFailure(goesOn.exit) &&
              goesOn.exit.cause.reasons.every((r) => r._tag !== "Fail" || r.error._tag === "TimeoutError")
          )
          assert.deepStrictEqual(goesOn.gaveUp.map((e) => e._tag === "BadRecordRateGaveUp" && e.pauses), [2])
          assert.strictEqual(goesOn.dead, 8)
          assert.deepStrictEqual([goesOn.info.num_pending, goesOn.info.num_ack_pending], [0, 0])
          const loaded = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM raw.orders WHERE order_date = '2031-06-01'`
          assert.strictEqual(loaded[0]?.n, 2)
          // fail: the run fails with BadRecordRateExceeded, nothing dead-lettered, nothing acked
          const fails = yield* consume(`burst-fail-${id}`, "fail")
          assert.isTrue(Exit.isFailure(fails.exit))
          if (Exit.isFailure(fails.exit)) {
            assert.deepStrictEqual(
              fails.exit.cause.reasons.flatMap((r) => r._tag === "Fail" ? [r.error._tag] : []),
              ["BadRecordRateExceeded"]
            )
          }
          assert.strictEqual(fails.dead, 0)
          assert.strictEqual(fails.info.ack_floor.stream_seq, 0, "nothing acknowledged")
        })))
    })
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] sink check`, (it) => {
      it.effect("dead-letters an order PostgreSQL cannot store exactly (NUL, lone surrogate); loads the rest", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { id, stream, subject, consumer } = yield* testStream("fixstream.nul")
          const order = (orderId: string, category = "books") =>
            JSON.stringify({
              order_id: orderId,
              customer_id: 1,
              product_category: category,
              amount: "10.00",
              order_date: "2031-05-01"
            })
          const good = `good-${id}`
          // an order dead-lettered for its category claims no key: its corrected re-send loads
          const fixed = `fixed-${id}`
          yield* OrderStream.publish([
            { eventId: `${id}-nul`, payload: order("A\u0000B") },
            { eventId: `${id}-good`, payload: order(good) },
            { eventId: `${id}-surrogate`, payload: order("S\ud800S") },
            { eventId: `${id}-category-nul`, payload: order(fixed, "bo\u0000oks") },
            { eventId: `${id}-category-fixed`, payload: order(fixed) }
          ], { stream, subject })
          const name = `${OrderStream.name}-${id}`
          const running = yield* consumeAll(
            stream,
            consumer,
            Streaming.make({ ...OrderStream.make({ batchSize: 10, batchWindow: "50 millis" }), name })
          )
          assert.isTrue(running, "the run goes on")
          const sql = yield* SqlClient.SqlClient
          const loaded = yield* sql<{ readonly order_id: string }>`
            SELECT order_id FROM raw.orders WHERE order_date = '2031-05-01' ORDER BY order_id`
          assert.deepStrictEqual(loaded.map((r) => r.order_id), [fixed, good])
          const dead = yield* sql<{ readonly position: number; readonly error_type: string; readonly stage: string }>`
            SELECT position::int AS position, error_type, stage FROM sluice.dead_letters WHERE pipeline = ${name} ORDER BY position`
          assert.deepStrictEqual(dead.map((d) => [d.position, d.error_type, d.stage]), [
            [1, "RuleViolation", `load@${stream}`],
            [3, "RuleViolation", `load@${stream}`],
            [4, "RuleViolation", `load@${stream}`]
          ])
        })))
    })
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] live and replay`, (it) => {
      it.effect("a replay refuses to start while the live consumer runs, and the live consumer while a replay runs", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { stream, subject, consumer } = yield* testStream("fixstream.busy")
          yield* OrderStream.publish(OrderStream.events({ count: 30, seed: 5, badShare: 0.2, duplicateShare: 0 }), {
            stream,
            subject
          })
          const pipeline = { batchSize: 5, batchWindow: "20 millis", badRecords: { threshold: 0.9 } } as const
          const versions = Effect.all([
            VersionedTable.current("raw.orders"),
            VersionedTable.current("analytics.daily_revenue")
          ])
          const refusal = <A, E extends { readonly _tag: string; readonly message: string }, R>(
            effect: Effect.Effect<A, E, R>
          ) => effect.pipe(Effect.flip, Effect.map((e) => [e._tag, e.message] as const))
          const replay = OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 1 }, pipeline })
          const live = (onStart: Effect.Effect<void>) =>
            OrderStream.consume({ stream, subject, consumer, pipeline, onStart })

          // the live consumer runs: a replay is refused before it creates anything, and so is a second consumer
          const started = yield* Deferred.make<void>()
          const running = yield* live(Deferred.succeed(started, undefined)).pipe(Effect.forkChild)
          yield* Deferred.await(started)
          const before = yield* versions
          assert.deepStrictEqual(yield* refusal(replay), [
            "PipelineBusy",
            "order-stream: a live consumer is running (sluice stream order-stream); stop it before a replay, and start it again after"
          ])
          assert.deepStrictEqual(yield* versions, before, "readers are not switched, no version is created")
          assert.deepStrictEqual(yield* refusal(live(Effect.void)), [
            "PipelineBusy",
            "order-stream: a live consumer is running (sluice stream order-stream); not starting a second live consumer"
          ])
          assert.isUndefined(running.pollUnsafe(), "the running consumer goes on")
          yield* Fiber.interrupt(running)

          // a replay runs (held in its first write): the live consumer is refused, and so is a second replay
          const writing = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const held = yield* OrderStream.replay({
            stream,
            startAt: { _tag: "Sequence", sequence: 1 },
            pipeline,
            sink: (tables) => {
              const real = OrderStream.sinkFor(tables)
              return {
                ...real,
                write: (orders) =>
                  Deferred.succeed(writing, undefined).pipe(
                    Effect.andThen(Deferred.await(release)),
                    Effect.andThen(real.write(orders))
                  )
              }
            }
          }).pipe(Effect.forkChild)
          yield* Deferred.await(writing)
          assert.deepStrictEqual(yield* refusal(live(Effect.void)), [
            "PipelineBusy",
            "order-stream: a replay is running (sluice replay order-stream); start the live consumer again once the replay has switched"
          ])
          assert.deepStrictEqual(yield* refusal(replay), [
            "PipelineBusy",
            "order-stream: a replay is running (sluice replay order-stream); not starting a second replay; wait for it to finish"
          ])
          yield* Deferred.succeed(release, undefined)
          const report = yield* Fiber.join(held)
          assert.strictEqual(report.received, 30)

          // once the replay has switched, the live consumer starts again, and a replay once it is stopped
          const restarted = yield* Deferred.make<void>()
          const again = yield* live(Deferred.succeed(restarted, undefined)).pipe(Effect.forkChild)
          yield* Deferred.await(restarted)
          yield* Fiber.interrupt(again)
          assert.strictEqual((yield* replay).received, 30)
        })))
    })
    if (backend.name === "postgres") {
      layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] lost locks`, (it) => {
        it.effect("a live consumer or a replay whose lock another session took after its session was lost stops with LockLost", () =>
          Effect.scoped(Effect.gen(function*() {
            yield* DailyRevenue.setup
            const { stream, subject, consumer } = yield* testStream("fixstream.lost")
            yield* OrderStream.publish(OrderStream.events({ count: 10, seed: 9, badShare: 0, duplicateShare: 0 }), {
              stream,
              subject
            })
            const sql = yield* SqlClient.SqlClient
            // this process's lock layer watches its session on a clock of its own, moved by hand
            const clock = yield* Layer.build(TestClock.layer())
            const check = TestClock.adjust("1 second").pipe(Effect.provideContext(clock))
            const locks = () =>
              SqlPartitionLock.layerWith({ checkEvery: "1 second" }).pipe(Layer.provide(Layer.succeedContext(clock)))
            // another process: its own lock session on the same database
            const other = yield* SqlPartitionLock.make
            const session = (lock: string) =>
              sql<{ readonly pid: number }>`
                SELECT pid FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND objsubid = 2
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND classid = hashtext(${lock})::oid AND objid = hashtext(${OrderStream.replayLockPartition})::oid`
                .pipe(Effect.map((rows) => rows[0]?.pid))
            // the lock session is ended, and the other process takes `lock` before this one checks its session
            const loseTo = (lock: string) =>
              Effect.gen(function*() {
                const pid = yield* session(lock)
                assert.isDefined(pid)
                yield* sql`SELECT pg_terminate_backend(${pid!})`
                // each try in a scope of its own: a failed one releases what it took at once
                const tryTake = Effect.gen(function*() {
                  const scope = yield* Scope.make()
                  const exit = yield* Effect.exit(
                    Scope.provide(other.acquire(lock, OrderStream.replayLockPartition), scope)
                  )
                  if (Exit.isFailure(exit)) yield* Scope.close(scope, Exit.void)
                  return Exit.isSuccess(exit) ? scope : undefined
                })
                const taken = yield* tryTake.pipe(
                  Effect.repeat({
                    until: (scope) => scope !== undefined,
                    schedule: Schedule.spaced("20 millis"),
                    times: 250
                  })
                )
                assert.isDefined(taken)
                yield* check
                return taken!
              })
            const lockLost = (lock: string) =>
              new PartitionLock.LockLost({ pipeline: lock, partition: OrderStream.replayLockPartition })
            const pipeline = { batchSize: 5, batchWindow: "20 millis" } as const

            // the live consumer: a second one (or a replay) could start once its lock is lost, so it stops
            const started = yield* Deferred.make<void>()
            const live = yield* OrderStream.consume({
              stream,
              subject,
              consumer,
              pipeline,
              onStart: Deferred.succeed(started, undefined)
            }).pipe(Effect.provide(locks()), Effect.forkChild)
            yield* Deferred.await(started)
            const otherLive = yield* loseTo(OrderStream.liveLock)
            assert.deepStrictEqual(
              yield* Fiber.join(live).pipe(Effect.flip, Effect.timeout("10 seconds")),
              lockLost(OrderStream.liveLock)
            )
            yield* Scope.close(otherLive, Exit.void)

            // a replay (held in its first write), the same: it stops before its switch
            const versions = Effect.all([
              VersionedTable.current("raw.orders"),
              VersionedTable.current("analytics.daily_revenue")
            ])
            const before = yield* versions
            const writing = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const replay = yield* OrderStream.replay({
              stream,
              startAt: { _tag: "Sequence", sequence: 1 },
              pipeline,
              sink: (tables) => {
                const real = OrderStream.sinkFor(tables)
                return {
                  ...real,
                  write: (orders) =>
                    Deferred.succeed(writing, undefined).pipe(
                      Effect.andThen(Deferred.await(release)),
                      Effect.andThen(real.write(orders))
                    )
                }
              }
            }).pipe(Effect.provide(locks()), Effect.forkChild)
            yield* Deferred.await(writing)
            const otherReplay = yield* loseTo(OrderStream.replaysLock)
            // a batch's commit is not interrupted: the replay stops once its write is over
            yield* Deferred.succeed(release, undefined)
            assert.deepStrictEqual(
              yield* Fiber.join(replay).pipe(Effect.flip, Effect.timeout("10 seconds")),
              lockLost(OrderStream.replaysLock)
            )
            assert.deepStrictEqual(yield* versions, before, "readers are not switched")
            yield* Scope.close(otherReplay, Exit.void)
          })))
      })
    }
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(`[${backend.name}] replay start`, (it) => {
      it.effect("refuses a start point after the stream's last message; a failed replay leaves no empty versions", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* DailyRevenue.setup
          const { stream, subject } = yield* testStream("fixstream.replay")
          yield* OrderStream.publish(OrderStream.events({ count: 5, seed: 3, badShare: 0, duplicateShare: 0 }), {
            stream,
            subject
          })
          const sql = yield* SqlClient.SqlClient
          const relations = sql<{ readonly name: string }>`
            SELECT schemaname || '.' || tablename AS name FROM pg_tables
            WHERE tablename LIKE 'orders_v%' OR tablename LIKE 'daily_revenue_v%' ORDER BY 1`
          const versions = Effect.all([
            VersionedTable.current("raw.orders"),
            VersionedTable.current("analytics.daily_revenue")
          ])
          const before = yield* versions
          const pipeline = { batchSize: 25, batchWindow: "20 millis" } as const
          const refusal = (startAt: JetStreamSource.StartAt) =>
            OrderStream.replay({ stream, startAt, pipeline }).pipe(
              Effect.flip,
              Effect.map((e) => [e._tag, e.message] as const)
            )
          const [tag, message] = yield* refusal({ _tag: "Sequence", sequence: 9_999_999 })
          assert.strictEqual(tag, "InvalidStartAt")
          assert.match(message, /sequence 9999999: after its last message \(sequence 5,/)
          assert.strictEqual(
            (yield* refusal({ _tag: "Time", time: new Date("2099-01-01T00:00:00Z") }))[0],
            "InvalidStartAt"
          )
          assert.strictEqual((yield* refusal({ _tag: "Sequence", sequence: 0 }))[0], "InvalidStartAt")
          assert.deepStrictEqual(yield* versions, before, "readers are not switched")
          assert.deepStrictEqual(yield* relations, [], "no version is created")

          // a replay failing before it loaded anything drops the versions it created
          const failed = yield* OrderStream.replay({
            stream,
            startAt: { _tag: "Sequence", sequence: 5 },
            pipeline,
            sink: (tables) => ({
              ...OrderStream.sinkFor(tables),
              write: () =>
                Effect.fail(new SinkError.SinkError({ operation: "test", message: "boom", retryable: false }))
            })
          }).pipe(Effect.exit)
          assert.isTrue(Exit.isFailure(failed))
          assert.deepStrictEqual(yield* versions, before)
          assert.deepStrictEqual(yield* relations, [], "the empty versions are dropped")

          // the last sequence is a valid start: one event replayed
          const last = yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 5 }, pipeline })
          assert.deepStrictEqual([last.received, last.loaded], [1, 1])
          assert.deepStrictEqual(last.tables, { orders: "raw.orders_v2", dailyRevenue: "analytics.daily_revenue_v2" })
        })))
    })
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(
      `[${backend.name}] replay dead letters`,
      (it) => {
        it.effect("a replay's dead letters become the pipeline's at the switch, once each; a failed one's are deleted", () =>
          Effect.scoped(Effect.gen(function*() {
            yield* DailyRevenue.setup
            const { stream, subject, consumer } = yield* testStream("fixstream.dlq")
            const events = OrderStream.events({ count: 60, seed: 11, badShare: 0.25, duplicateShare: 0 })
            yield* OrderStream.publish(events, { stream, subject })
            const pipeline = { batchSize: 25, batchWindow: "20 millis", badRecords: { threshold: 0.9 } } as const
            yield* consumeAll(stream, consumer, OrderStream.make(pipeline))

            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const all = ["new", "replayed", "discarded"] as const
            const letters = Effect.map(
              store.list(OrderStream.name, { status: all }),
              (ds) => ds.map((d) => `${d.id}/${d.position}/${d.status}/${d.attempts}`)
            )
            /** Dead letters in the store by pipeline name, both tables. */
            const byPipeline = sql<{ readonly pipeline: string; readonly n: number }>`
            SELECT pipeline, count(*)::int AS n FROM (
              SELECT pipeline FROM sluice.dead_letters UNION ALL SELECT pipeline FROM sluice.dead_letters_resolved
            ) d GROUP BY pipeline ORDER BY pipeline`
            const newCount = Effect.map(
              store.countByType(OrderStream.name),
              (cs) => cs.reduce((n, c) => n + c.count, 0)
            )

            const original = yield* store.list(OrderStream.name)
            const bad = original.length
            assert.isAbove(bad, 5)
            assert.isTrue(original.every((d) => d.status === "new" && d.attempts === 1))
            const discarded = original[0]!
            assert.strictEqual(yield* store.discard(OrderStream.name, { ids: [discarded.id] }), 1)

            // a full replay: the same bad messages, once each, with their ids; the discarded one stays discarded
            const full = yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 1 }, pipeline })
            assert.strictEqual(full.deadLettered, bad)
            assert.deepStrictEqual(full.deadLetters, { superseded: bad, adopted: bad })
            assert.deepStrictEqual(
              yield* letters,
              original.map((d) => `${d.id}/${d.position}/${d.id === discarded.id ? "discarded" : "new"}/2`)
            )
            assert.strictEqual(yield* newCount, bad - 1, "counted once, not twice")
            assert.deepStrictEqual(yield* byPipeline, [{ pipeline: OrderStream.name, n: bad }])

            // a replay from the middle supersedes the dead letters of its range only
            const middle = original[Math.floor(bad / 2)]!.position
            yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: middle }, pipeline })
            assert.deepStrictEqual(
              yield* letters,
              original.map((d) =>
                `${d.id}/${d.position}/${d.id === discarded.id ? "discarded" : "new"}/${d.position >= middle ? 3 : 2}`
              )
            )
            assert.deepStrictEqual(yield* byPipeline, [{ pipeline: OrderStream.name, n: bad }])

            // a failed replay leaves the pipeline's dead letters as they were and deletes its own
            const before = yield* letters
            const { exit: failed } = yield* failingReplay(stream, pipeline)
            assert.isTrue(Exit.isFailure(failed))
            assert.deepStrictEqual(yield* letters, before)
            assert.deepStrictEqual(yield* byPipeline, [{ pipeline: OrderStream.name, n: bad }])
            // and its event ids and keys: nothing will ever consume under its name
            const ledgerLeft = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM sluice.processed_events WHERE starts_with(pipeline, ${OrderStream.replayPrefix})`
            assert.strictEqual(ledgerLeft[0]?.n, 0, "the failed replay's ledger entries are deleted")
          })))

        it.effect("the live consumer behind a replay skips what the replay applied: each bad message dead-lettered once", () =>
          Effect.scoped(Effect.gen(function*() {
            yield* DailyRevenue.setup
            const { stream, subject, consumer } = yield* testStream("fixstream.behind")
            const events = OrderStream.events({ count: 40, seed: 12, badShare: 0.2, duplicateShare: 0.2 })
            // a re-sent order too: a DuplicateKey dead letter
            events.push({ eventId: "resent-0", payload: events.find((e) => e.payload.includes("order_date"))!.payload })
            yield* OrderStream.publish(events, { stream, subject })
            const pipeline = { batchSize: 10, batchWindow: "20 millis", badRecords: { threshold: 0.9 } } as const
            const drain = consumeAll(stream, consumer, OrderStream.make(pipeline))
            // the live consumer has not consumed (or is stopped before) what the replay goes through
            const replayed = yield* OrderStream.replay({ stream, startAt: { _tag: "Sequence", sequence: 1 }, pipeline })
            const store = yield* DeadLetter.DeadLetterStore
            const letters = Effect.map(
              store.list(OrderStream.name, { status: ["new", "replayed", "discarded"] }),
              // this test's stream only: the layer's database is shared with the test before
              (ds) =>
                ds.filter((d) => d.stage.endsWith(`@${stream}`)).map((d) =>
                  `${d.id}/${d.position}/${d.errorType}/${d.attempts}`
                )
            )
            const afterReplay = yield* letters
            assert.strictEqual(afterReplay.length, replayed.deadLettered)
            assert.isTrue(afterReplay.some((d) => d.includes("/DuplicateKey/")))
            const data = yield* snapshot
            // started after the switch, it resumes from its position: the replay's messages are not applied twice
            yield* drain
            assert.deepStrictEqual(yield* letters, afterReplay, "each bad message dead-lettered once")
            assert.deepStrictEqual(yield* snapshot, data)
            assert.deepStrictEqual(data, yield* batchResult(events))
            // more events: the live consumer goes on
            const more = OrderStream.events({ count: 10, seed: 13, badShare: 0.3, duplicateShare: 0 })
            yield* OrderStream.publish(more, { stream, subject })
            yield* drain
            assert.deepStrictEqual(yield* snapshot, yield* batchResult([...events, ...more]))
            const final = yield* letters
            assert.deepStrictEqual(final.slice(0, afterReplay.length), afterReplay)
            assert.strictEqual(
              final.length,
              afterReplay.length + more.filter((e) => !e.payload.includes("order_date")).length
            )
          })))
      }
    )
  }
})
