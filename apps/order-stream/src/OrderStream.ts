/**
 * Order events streamed from NATS JetStream (stream `ORDERS`, subject `orders.created`) into
 * `raw.orders` and `analytics.daily_revenue`, with the same order schema, tables and revenue
 * definition as the batch daily-revenue app.
 *
 * - The transform is the order schema of the batch app (`Order`), without its rule that an order's
 *   date is the run's partition: a stream has no partition; the order's own date places it.
 * - The sink is idempotent per event: `raw.orders` is upserted by `(order_date, order_id)`, then
 *   `analytics.daily_revenue` is rebuilt for the dates the batch touched, with the batch app's own
 *   rebuild step (`DailyRevenue.derived`) — all in the micro-batch's transaction.
 * - An order is idempotent by its business key, `(order_date, order_id)` ({@link key}), as in the
 *   batch app (`key: order_id` within a date's partition): the same order re-sent as a distinct event
 *   (another event id) is dead-lettered as `DuplicateKey`, and the first version stays — counted
 *   once, with the same amount, by both.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { DailyRevenue, Order, Tables as OrderTables } from "@sluice-app/daily-revenue"
import {
  Contract,
  DeadLetter,
  Partition,
  PartitionLock,
  ProcessedEventLedger,
  SinkError,
  Streaming,
  Transform
} from "@sluice/core"
import { JetStreamSource } from "@sluice/nats"
import { PartitionReplace, Table, VersionedTable } from "@sluice/sql"
import { Effect, Fiber, Schema } from "effect"
import { SqlClient } from "effect/sql"

/**
 * @since 0.1.0
 * @category constants
 */
export const name = "order-stream"

/**
 * @since 0.1.0
 * @category constants
 */
export const stream = "ORDERS"

/**
 * @since 0.1.0
 * @category constants
 */
export const subject = "orders.created"

/**
 * The durable consumer of the pipeline.
 *
 * @since 0.1.0
 * @category constants
 */
export const consumer = "order-stream"

/**
 * The business key of an order: its date and id. The batch app's key is the order id within the
 * date's partition; a stream has no partition, so the date is part of the key.
 *
 * @since 0.1.0
 * @category constants
 */
export const key = (order: Order.Order): string => `${order.order_date}/${order.order_id}`

/**
 * The order transform of the batch app, without the partition rule (see the module documentation).
 *
 * @since 0.1.0
 * @category transforms
 */
export const transform: Transform.Transform<Order.Order> = Transform.fromSchema(Contract.open(Order.Order), {
  exactNumbers: true
})

const textArray = (values: ReadonlyArray<string | null>) => {
  const result = PgTypes.array(values, PgTypes.OID.text)
  if (result._tag === "Failure") throw result.failure
  return result.success
}

/**
 * The tables the pipeline writes: the live ones ({@link liveTables}), or fresh versions of them
 * being rebuilt by a {@link replay}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tables {
  readonly orders: string
  readonly dailyRevenue: string
}

/**
 * @since 0.1.0
 * @category constants
 */
export const liveTables: Tables = { orders: "raw.orders", dailyRevenue: "analytics.daily_revenue" }

/**
 * Upserts orders into `tables.orders` by `(order_date, order_id)` (the first record of a key in a
 * batch wins; the pipeline's {@link key} already dead-lettered later ones) and rebuilds `tables.dailyRevenue` for the dates touched, with the batch app's revenue
 * definition (`DailyRevenue.revenueOf`). Runs in the batch's transaction.
 *
 * Its record check is the batch app's (`Table.storable` over the columns of `raw.orders`): an order
 * whose text PostgreSQL cannot store exactly (a NUL character, a lone UTF-16 surrogate) is
 * dead-lettered as `RuleViolation storable_text`, not left to fail every commit of its batch.
 *
 * @since 0.1.0
 * @category sinks
 */
export const sinkFor = (tables: Tables): Streaming.StreamSink<Order.Order, SqlClient.SqlClient> => {
  const revenue = PartitionReplace.rebuild({
    table: tables.dailyRevenue,
    partitionColumn: "date",
    columns: ["date", "category", "revenue", "order_count"],
    select: (sql, date) => DailyRevenue.revenueOf(sql, tables.orders, date)
  })
  return {
    target: tables.orders,
    check: Table.storable(
      tables.orders,
      OrderTables.orders.columns,
      (o: Order.Order) => [
        o.order_date,
        o.order_id,
        o.customer_id,
        o.product_category,
        o.amount,
        o.currency,
        o.loyalty_points
      ]
    ),
    write: (orders) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const byKey = new Map<string, Order.Order>()
        for (const o of orders) if (!byKey.has(key(o))) byKey.set(key(o), o)
        const rows = [...byKey.values()]
        const column = (f: (o: Order.Order) => string | null) => textArray(rows.map(f))
        yield* sql`
        INSERT INTO ${
          sql(tables.orders)
        } (order_date, order_id, customer_id, product_category, amount, currency, loyalty_points)
        SELECT d::date, id, c::int8, cat, a::numeric, cur, lp::int4
        FROM unnest(${column((o) => o.order_date)}::text[], ${column((o) => o.order_id)}::text[],
                    ${column((o) => String(o.customer_id))}::text[], ${column((o) => o.product_category)}::text[],
                    ${column((o) => o.amount)}::text[], ${column((o) => o.currency)}::text[],
                    ${column((o) => o.loyalty_points === null ? null : String(o.loyalty_points))}::text[])
          AS t(d, id, c, cat, a, cur, lp)
        ON CONFLICT (order_date, order_id) DO UPDATE SET
          customer_id = excluded.customer_id, product_category = excluded.product_category,
          amount = excluded.amount, currency = excluded.currency, loyalty_points = excluded.loyalty_points`.pipe(
          Effect.mapError((e) =>
            new SinkError.SinkError({
              operation: `upsert ${tables.orders}`,
              message: e.message,
              retryable: e.isRetryable
            })
          )
        )
        const dates = [...new Set(rows.map((o) => o.order_date))].sort()
        for (const date of dates) yield* revenue.run(date)
      })
  }
}

/**
 * The sink over the live tables, `raw.orders` and `analytics.daily_revenue` ({@link sinkFor}).
 *
 * @since 0.1.0
 * @category sinks
 */
export const sink: Streaming.StreamSink<Order.Order, SqlClient.SqlClient> = sinkFor(liveTables)

/**
 * The streaming pipeline.
 *
 * @example
 * ```ts
 * import { Streaming } from "@sluice/core"
 * import { JetStreamSource } from "@sluice/nats"
 * import { OrderStream } from "@sluice-app/order-stream"
 *
 * const program = Streaming.run(OrderStream.make(), JetStreamSource.source({ stream: "ORDERS", consumer: "order-stream" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Omit<Parameters<typeof Streaming.make>[0], "name" | "transform" | "sink"> = {}) =>
  Streaming.make({ batchSize: 500, batchWindow: "200 millis", ...options, name, transform, sink, key })

/**
 * A seeded generator of order events: good orders over `days` dates from `start`, a share of bad
 * payloads, and a share of events sent twice (the second time bypassing JetStream's de-duplication).
 *
 * @since 0.1.0
 * @category generators
 */
export const events = (options: {
  readonly count: number
  readonly seed: number
  readonly start?: string | undefined
  readonly days?: number | undefined
  readonly badShare?: number | undefined
  readonly duplicateShare?: number | undefined
}): Array<{ readonly eventId: string; readonly payload: string }> => {
  let state = options.seed >>> 0 || 1
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) >>> 0
    return state / 2 ** 32
  }
  const start = Date.parse(`${options.start ?? "2024-03-01"}T00:00:00Z`)
  const days = options.days ?? 3
  const categories = ["books", "games", "garden", "music"]
  const out: Array<{ readonly eventId: string; readonly payload: string }> = []
  for (let i = 0; i < options.count; i++) {
    const eventId = `order-event-${options.seed}-${i}`
    const bad = random() < (options.badShare ?? 0.05)
    const date = new Date(start + Math.floor(random() * days) * 86_400_000).toISOString().slice(0, 10)
    const payload = bad
      ? (random() < 0.5 ? `{"order_id":"o${i}",` : JSON.stringify({ order_id: `o${i}`, amount: -1 }))
      : JSON.stringify({
        order_id: `o${options.seed}-${i}`,
        customer_id: 1 + Math.floor(random() * 50),
        product_category: categories[Math.floor(random() * categories.length)],
        amount: (Math.floor(random() * 10_000) / 100).toFixed(2),
        order_date: date
      })
    out.push({ eventId, payload })
    if (random() < (options.duplicateShare ?? 0.1)) out.push({ eventId, payload })
  }
  return out
}

/**
 * Creates the `ORDERS` stream if needed and publishes events; a repeated event id is published
 * without JetStream's de-duplication header, so the consumer's ledger has to catch it.
 *
 * @since 0.1.0
 * @category publishing
 */
export const publish = Effect.fn("OrderStream.publish")(function*(
  batch: ReadonlyArray<{ readonly eventId: string; readonly payload: string }>,
  options: { readonly stream?: string | undefined; readonly subject?: string | undefined } = {}
) {
  const target = options.subject ?? subject
  yield* JetStreamSource.ensureStream({ stream: options.stream ?? stream, subjects: [target] })
  const seen = new Set<string>()
  for (const event of batch) {
    yield* JetStreamSource.publish(target, event.payload, {
      eventId: event.eventId,
      bypassDedupe: seen.has(event.eventId)
    })
    seen.add(event.eventId)
  }
  return batch.length
})

/**
 * The prefix of a replay's ledger and dead-letter name, `order-stream@replay-<id>` (see {@link replay}).
 *
 * @since 0.1.0
 * @category replay
 */
export const replayPrefix = `${name}@replay-`

/**
 * A replay holds the `PartitionLock` of its name over this date while it runs, from before it writes
 * anything until its dead letters are adopted or removed: a stream has no partition, and the lock says
 * that the replay is alive (on PostgreSQL, to other processes too; see {@link removeAbandonedReplays}).
 *
 * @since 0.1.0
 * @category replay
 */
export const replayLockPartition: Partition.PartitionDate = Partition.makeUnsafe("1970-01-01")

/**
 * Who holds the pipeline: its live consumer ({@link consume}, `sluice stream`) or a {@link replay}.
 *
 * @since 0.1.0
 * @category locks
 */
export type Holder = "live consumer" | "replay"

/**
 * The pipeline is held by a live consumer or a replay, so another cannot start: a replay while the
 * live consumer runs would switch readers away from what the consumer commits and drop the keys it
 * claims; a live consumer while a replay runs, the same; two of either would race each other. Nothing
 * was created or consumed. The CLI exits with status 1, as for a partition being run (`PartitionLocked`).
 *
 * @example
 * ```ts
 * import { OrderStream } from "@sluice-app/order-stream"
 *
 * const error = new OrderStream.PipelineBusy({ pipeline: "order-stream", starting: "replay", holder: "live consumer" })
 * // error.message: order-stream: a live consumer is running (sluice stream order-stream); stop it before a replay …
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PipelineBusy extends Schema.TaggedError<PipelineBusy>("@sluice-app/order-stream/PipelineBusy")(
  "PipelineBusy",
  {
    pipeline: Schema.String,
    starting: Schema.Literals(["live consumer", "replay"]),
    holder: Schema.Literals(["live consumer", "replay"])
  }
) {
  override get message(): string {
    const running = this.holder === "live consumer"
      ? `a live consumer is running (sluice stream ${this.pipeline})`
      : `a replay is running (sluice replay ${this.pipeline})`
    const advice = this.starting === "replay"
      ? this.holder === "live consumer"
        ? "stop it before a replay, and start it again after"
        : "not starting a second replay; wait for it to finish"
      : this.holder === "live consumer"
      ? "not starting a second live consumer"
      : "start the live consumer again once the replay has switched"
    return `${this.pipeline}: ${running}; ${advice}`
  }
}

/**
 * The lock the live consumer ({@link consume}) holds while it runs: the `PartitionLock` of the
 * pipeline's name over {@link replayLockPartition}.
 *
 * @since 0.1.0
 * @category locks
 */
export const liveLock = name

/**
 * The lock every {@link replay} holds while it runs, besides the lock of its own name: the
 * `PartitionLock` of `order-stream@replay` over {@link replayLockPartition}.
 *
 * @since 0.1.0
 * @category locks
 */
export const replaysLock = `${name}@replay`

/**
 * Takes the pipeline's lock for a live consumer (`starting: "live consumer"`) or a replay, held until
 * the scope closes, and fails with {@link PipelineBusy} when the other one, or another of the same, runs.
 *
 * **Details**
 *
 * Each takes its own lock ({@link liveLock}, {@link replaysLock}), then looks whether the other's is
 * held (`PartitionLock.isHeld`). Of a live consumer and a replay starting together, at least one sees
 * the other's lock (each looks after taking its own), so they never both run; both may be refused.
 * On PostgreSQL the locks are advisory locks, seen by every process of the database; on PGlite only
 * this process's are seen, and the data directory's lock keeps every other process out.
 */
const holdPipeline = (starting: Holder) =>
  Effect.gen(function*() {
    const locks = yield* PartitionLock.PartitionLock
    const [own, other]: readonly [string, string] = starting === "replay"
      ? [replaysLock, liveLock]
      : [liveLock, replaysLock]
    const holder: Holder = starting === "replay" ? "live consumer" : "replay"
    const lock = yield* locks.acquire(own, replayLockPartition).pipe(
      Effect.catchTag("PartitionLocked", () =>
        Effect.fail(new PipelineBusy({ pipeline: name, starting, holder: starting })))
    )
    if (yield* locks.isHeld(other, replayLockPartition)) {
      return yield* new PipelineBusy({ pipeline: name, starting, holder })
    }
    return lock
  })

/**
 * The live consumer (`sluice stream order-stream`): runs the pipeline ({@link make}) on the durable
 * consumer `options.consumer` (default {@link consumer}, created if missing, as the stream is) until
 * interrupted, holding the pipeline's live lock ({@link liveLock}) all along. It refuses to start, with
 * {@link PipelineBusy}, while a {@link replay} of the pipeline or another live consumer runs; a replay
 * refuses to start while it runs. If its lock is lost while it runs (on PostgreSQL: its lock session ended
 * and another process took the lock before it was taken again), it stops with `PartitionLock.LockLost`
 * (`PartitionLock.guard`) rather than run beside a replay or a second consumer.
 *
 * @example
 * ```ts
 * import { OrderStream } from "@sluice-app/order-stream"
 * import { JetStreamSource } from "@sluice/nats"
 * import { SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
 * import { Effect, Layer } from "effect"
 *
 * const program = OrderStream.consume({ pipeline: { batchSize: 100 } }).pipe(
 *   Effect.provide(Layer.mergeAll(
 *     SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer)),
 *     JetStreamSource.JetStream.layer("127.0.0.1:4222")
 *   ))
 * )
 * ```
 *
 * @since 0.1.0
 * @category streaming
 */
export const consume = Effect.fn("OrderStream.consume")(function*(options: {
  readonly stream?: string | undefined
  readonly subject?: string | undefined
  readonly consumer?: string | undefined
  readonly pipeline?: Omit<Parameters<typeof Streaming.make>[0], "name" | "transform" | "sink"> | undefined
  readonly onEvent?: ((event: Streaming.Event) => Effect.Effect<void>) | undefined
  /** Called once the lock is held and the consumer exists, before the first message is pulled. */
  readonly onStart?: Effect.Effect<void> | undefined
}) {
  const target = options.stream ?? stream
  const durable = options.consumer ?? consumer
  const lock = yield* holdPipeline("live consumer")
  yield* JetStreamSource.ensureStream({ stream: target, subjects: [options.subject ?? subject] })
  yield* JetStreamSource.ensureConsumer({ stream: target, consumer: durable })
  if (options.onStart !== undefined) yield* options.onStart
  return yield* Streaming.run(
    make(options.pipeline),
    JetStreamSource.source({ stream: target, consumer: durable }),
    { onEvent: options.onEvent }
  ).pipe(
    // a replay could start once the lock is lost: the consumer stops (LockLost) rather than run beside it
    PartitionLock.guard(lock)
  )
}, Effect.scoped)

/**
 * Deletes what replays that are no longer running left behind: a replay killed outright (SIGKILL, a
 * lost machine) leaves its dead letters under `order-stream@replay-<id>`, where nothing counts or
 * adopts them, its ledger entries (event ids and keys) under the same name, its durable consumer `order-stream-replay-<id>` on the stream it replayed, and its
 * fresh table versions (`raw.orders_v<N>`, `analytics.daily_revenue_v<M>`), which no view points to;
 * a replay that failed after loading rows leaves its fresh versions too (kept for inspection until
 * then). A replay whose lock ({@link replayLockPartition}) is held is alive and keeps all of them.
 * Returns the names removed. {@link replay} calls it, for the stream it replays, once it holds its own
 * lock.
 *
 * **Details**
 *
 * A replay takes its lock before it creates its consumer, its fresh versions or a dead letter, and
 * releases it after it has deleted its consumer, adopted or removed its dead letters and switched the
 * views to its versions (or failed), so a replay whose lock is free is dead, failed, or has just
 * finished (its consumer and dead letters are gone then: deleting finds nothing). Its fresh versions
 * are found by their owner's mark (`VersionedTable.createNext(table, { owner })`, `VersionedTable.pending`),
 * which the switch clears: a version readers were ever switched to is never dropped (old versions are
 * kept for rollbacks), nor is the version a view serves or any version a view reads
 * (`VersionedTable.discard`). Versions left before replays marked them are not recognised. On PostgreSQL the lock is an advisory lock, seen from every session of the database (a dead
 * process's session has released it); on PGlite only this process's locks are seen, and the data
 * directory's lock keeps every other process out, so a replay not running here is not running at all.
 * Provide one `PartitionLock` layer per process. The consumers looked at are those of `options.stream`
 * (default {@link stream}) only.
 *
 * @example
 * ```ts
 * import { OrderStream } from "@sluice-app/order-stream"
 * import { JetStreamSource } from "@sluice/nats"
 * import { SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
 * import { Effect, Layer } from "effect"
 *
 * const program = OrderStream.removeAbandonedReplays().pipe(
 *   Effect.provide(
 *     Layer.mergeAll(SqlSluice.layer, SqlProcessedEventLedger.layer, JetStreamSource.JetStream.layer("127.0.0.1:4222"))
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category replay
 */
export const removeAbandonedReplays = Effect.fn("OrderStream.removeAbandonedReplays")(function*(
  options: { readonly stream?: string | undefined } = {}
) {
  const target = options.stream ?? stream
  const store = yield* DeadLetter.DeadLetterStore
  const locks = yield* PartitionLock.PartitionLock
  const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
  const running = (replayName: string) => locks.isHeld(replayName, replayLockPartition)
  // its event ids and keys (`<name>#key`): nothing will consume under its name again
  const forget = (replayName: string) =>
    Effect.flatMap(ledger.purge(replayName, new Date(8.64e15)), (n) =>
      n > 0
        ? Effect.logWarning(`${replayName}: ${n} ledger entr(ies) of a replay no longer running removed`)
        : Effect.void)
  const deadLetters: Array<string> = []
  for (const replayName of yield* store.pipelines(replayPrefix)) {
    if (yield* running(replayName)) continue
    yield* forget(replayName)
    const n = yield* store.remove(replayName)
    if (n > 0) {
      deadLetters.push(replayName)
      yield* Effect.logWarning(`${replayName}: ${n} dead letter(s) of a replay no longer running removed`)
    }
  }
  const consumers: Array<string> = []
  const consumerPrefix = `${consumer}-replay-`
  for (const name of yield* JetStreamSource.consumers(target)) {
    if (!name.startsWith(consumerPrefix)) continue
    if (yield* running(`${replayPrefix}${name.slice(consumerPrefix.length)}`)) continue
    yield* forget(`${replayPrefix}${name.slice(consumerPrefix.length)}`)
    yield* JetStreamSource.deleteConsumer(target, name)
    consumers.push(name)
    yield* Effect.logWarning(`${target}/${name}: consumer of a replay no longer running deleted`)
  }
  const tables: Array<string> = []
  for (const table of [liveTables.orders, liveTables.dailyRevenue]) {
    for (const version of yield* VersionedTable.pending(table)) {
      if (!version.owner.startsWith(replayPrefix) || (yield* running(version.owner))) continue
      yield* forget(version.owner)
      if (!(yield* VersionedTable.discard(table, version.version))) continue
      tables.push(version.relation)
      yield* Effect.logWarning(`${version.relation}: fresh version of ${version.owner}, no longer running, dropped`)
    }
  }
  return { deadLetters, consumers, tables }
})

/**
 * Kappa replay: reprocesses the stream from a sequence or a time with the same pipeline into fresh
 * versions of its tables, then switches readers to them.
 *
 * 1. Creates `raw.orders_v<N>` and `analytics.daily_revenue_v<M>`, empty, shaped like the current
 *    versions (`VersionedTable.createNext`).
 * 2. Consumes from the start point through a temporary consumer, under a ledger name of its own
 *    (`order-stream@replay-<id>`), with the pipeline's transform and its sink over the fresh tables
 *    ({@link sinkFor}); stops once the consumer has caught up with the stream, and deletes it.
 * 3. Switches the views `raw.orders` and `analytics.daily_revenue` to the fresh versions, both in
 *    one transaction (`VersionedTable.switchTo`): readers see the old versions or the new ones.
 *    In the same transaction the replay's dead letters become the pipeline's (`DeadLetter.adopt`):
 *    the pipeline's dead letters of the replayed sequences are resolved, and the replay's written
 *    under `order-stream` — a record dead-lettered again keeps its id and status (`discarded`
 *    included), one that now loads reads `replayed`. So `dlq list order-stream` shows the dead
 *    letters of the data readers see, each bad message once.
 *
 * Before it consumes, the replay takes the pipeline's replay lock ({@link replaysLock}) and the lock of
 * its name ({@link replayLockPartition}), held until it ends, and deletes the dead letters, consumers and
 * fresh table versions of replays that are no longer running ({@link removeAbandonedReplays}): a replay
 * killed outright cannot delete its own. If either lock is lost while it runs (see {@link consume}), it
 * stops with `PartitionLock.LockLost` before its switch, or its switch rolls back, as a failed replay.
 *
 * The start point is checked first (`JetStreamSource.checkStartAt`): a sequence or a time after the
 * stream's last message fails with `InvalidStartAt` before anything is created — a replay from there
 * would switch readers to empty tables.
 *
 * A failure before the switch leaves the readers on the old versions and the pipeline's dead
 * letters as they were; the replay's own dead letters and ledger entries (event ids, keys) are deleted. Fresh tables that received
 * rows stay, for inspection, until the next replay drops them ({@link removeAbandonedReplays});
 * empty ones are dropped at once (`VersionedTable.discard`). The old versions are kept: switching
 * back to them (`VersionedTable.switchTo("raw.orders", n)`) is a rollback.
 *
 * **The live consumer**
 *
 * A replay refuses to start ({@link PipelineBusy}) while the live consumer ({@link consume}, `stream`)
 * or another replay runs, and holds the pipeline until it ends, so that no live consumer starts
 * meanwhile: what a live consumer committed between the replay's catch-up and the switch would land in
 * the old versions only, and the keys it claimed would be dropped at the switch. Stop the live consumer
 * before the replay and start it again after: it resumes from its durable position and writes through
 * the views, i.e. into the new versions. The replay's event ids become the pipeline's at the switch
 * (`ProcessedEventLedger.merge`), so a live consumer resuming behind the replayed range skips the
 * events the replay applied (their rows are in the new versions, their dead letters the pipeline's)
 * instead of dead-lettering each bad message a second time.
 *
 * **Business keys** follow the data: at the switch the pipeline's key claims (`order-stream#key`)
 * become the replay's (`ProcessedEventLedger.replace`), each still held by the message that claimed
 * it. An order re-sent after a replay from sequence N loads when its key was only seen before N (the
 * new versions do not hold it), and is a `DuplicateKey` when the replayed range holds it; the live
 * consumer applying a message the replay applied (its event id purged since) keeps that message's key
 * (`claimKeys`).
 *
 * **Gotchas**
 *
 * - A new version holds what the stream holds from the start point: rows that only a batch load wrote
 *   to `raw.orders` are not in it.
 * - After the first switch `raw.orders` is a view: the streaming sink writes through it (`INSERT … ON
 *   CONFLICT` on a simple view), the batch app's `TableContract` sink writes its current version.
 *
 * @since 0.1.0
 * @category replay
 */
export const replay = Effect.fn("OrderStream.replay")(function*(options: {
  readonly startAt: JetStreamSource.StartAt
  readonly stream?: string | undefined
  readonly onEvent?: ((event: Streaming.Event) => Effect.Effect<void>) | undefined
  readonly pipeline?: Omit<Parameters<typeof Streaming.make>[0], "name" | "transform" | "sink"> | undefined
  /** The sink over the fresh tables (default {@link sinkFor}). */
  readonly sink?: ((tables: Tables) => Streaming.StreamSink<Order.Order, SqlClient.SqlClient>) | undefined
}) {
  const target = options.stream ?? stream
  const id = crypto.randomUUID().slice(0, 8)
  const replayConsumer = `${consumer}-replay-${id}`
  const replayName = `${replayPrefix}${id}`
  const js = yield* JetStreamSource.JetStream
  const sql = yield* SqlClient.SqlClient
  // refused while the live consumer or another replay runs, before anything is looked at or created
  const pipelineLock = yield* holdPipeline("replay")
  // nothing is created for a start point the stream has nothing after
  yield* JetStreamSource.checkStartAt(target, options.startAt)
  // held until the scope closes, after the adoption or the removal of this replay's dead letters: first
  // taken, last released
  const ownLock = yield* Effect.flatMap(
    PartitionLock.PartitionLock,
    (locks) => locks.acquire(replayName, replayLockPartition)
  )
  yield* removeAbandonedReplays({ stream: target })
  yield* Effect.acquireRelease(
    JetStreamSource.ensureConsumer({ stream: target, consumer: replayConsumer, startAt: options.startAt }),
    () => JetStreamSource.deleteConsumer(target, replayConsumer)
  )
  const committed: Array<Streaming.BatchReport> = []
  const created: Array<readonly [table: string, version: number]> = []
  let run: Fiber.Fiber<void, Streaming.RunError> | undefined
  // a failed replay that loaded nothing leaves no empty versions behind (once its run has stopped), and
  // no dead letters: they never become the pipeline's
  const discardEmpty = Effect.andThen(
    Effect.suspend(() => run === undefined ? Effect.void : Fiber.interrupt(run)),
    Effect.andThen(
      Effect.suspend(() =>
        committed.some((r) => r.loaded > 0)
          ? Effect.void
          : Effect.forEach(created, ([table, version]) => VersionedTable.discard(table, version), { discard: true })
      ).pipe(Effect.catchCause((cause) => Effect.logWarning("replay: could not drop its fresh versions", cause))),
      Effect.andThen(
        Effect.flatMap(DeadLetter.DeadLetterStore, (store) => store.remove(replayName)).pipe(
          Effect.catchCause((cause) => Effect.logWarning("replay: could not delete its dead letters", cause))
        ),
        // its event ids and keys (`<name>#key`): nothing will consume under its name again
        Effect.flatMap(
          ProcessedEventLedger.ProcessedEventLedger,
          (ledger) => ledger.purge(replayName, new Date(8.64e15))
        ).pipe(
          Effect.catchCause((cause) => Effect.logWarning("replay: could not delete its ledger entries", cause))
        )
      )
    )
  )
  return yield* Effect.gen(function*() {
    const orders = yield* VersionedTable.createNext(liveTables.orders, { owner: replayName })
    created.push([liveTables.orders, orders.version])
    const revenue = yield* VersionedTable.createNext(liveTables.dailyRevenue, { owner: replayName })
    created.push([liveTables.dailyRevenue, revenue.version])
    const tables: Tables = { orders: orders.relation, dailyRevenue: revenue.relation }
    run = yield* Streaming.run(
      Streaming.make({
        ...make(options.pipeline),
        name: replayName,
        sink: (options.sink ?? sinkFor)(tables)
      }),
      JetStreamSource.source({ stream: target, consumer: replayConsumer }),
      {
        onEvent: (event) =>
          Effect.andThen(
            Effect.sync(() => event._tag === "Committed" && committed.push(event.report)),
            options.onEvent?.(event) ?? Effect.void
          )
      }
    ).pipe(Effect.forkScoped)
    const caughtUp = Effect.promise(() => js.manager.consumers.info(target, replayConsumer)).pipe(
      Effect.map((info) => info.num_pending === 0 && info.num_ack_pending === 0)
    )
    const running = run
    while (!(yield* caughtUp)) {
      if (running.pollUnsafe() !== undefined) break
      yield* Effect.sleep("100 millis")
    }
    const exit = running.pollUnsafe()
    if (exit !== undefined && exit._tag === "Failure") return yield* Effect.failCause(exit.cause)
    yield* Fiber.interrupt(running)
    // the sequences the replay went through: the pipeline's dead letters there are superseded by its own
    // (none when it committed nothing: from 1 to 0)
    const first = committed.length === 0
      ? 1
      : options.startAt._tag === "Sequence"
      ? options.startAt.sequence
      : Math.min(...committed.map((r) => r.firstSequence))
    const last = committed.length === 0 ? 0 : Math.max(...committed.map((r) => r.lastSequence))
    const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
    const deadLetters = yield* sql.withTransaction(Effect.gen(function*() {
      yield* VersionedTable.switchTo(liveTables.orders, orders.version)
      yield* VersionedTable.switchTo(liveTables.dailyRevenue, revenue.version)
      // the business keys of the data readers now see: the replay's claims, each with its message
      yield* ledger.replace(`${replayName}#key`, `${name}#key`)
      // the replay's event ids become the pipeline's: the live consumer, resuming behind them, skips what
      // the replay applied (its rows are in the new versions, its dead letters the pipeline's) instead of
      // dead-lettering each bad message again
      yield* ledger.merge(replayName, name)
      return yield* DeadLetter.adopt({
        from: replayName,
        to: name,
        supersedes: { positions: { from: first, to: last } }
      })
    }))
    return {
      tables,
      received: committed.reduce((n, r) => n + r.received, 0),
      loaded: committed.reduce((n, r) => n + r.loaded, 0),
      deadLettered: committed.reduce((n, r) => n + r.deadLettered, 0),
      /** Events skipped as already claimed (duplicates): received = loaded + dead-lettered + skipped. */
      skipped: committed.reduce((n, r) => n + r.skipped, 0),
      /** The pipeline's dead letters of the replayed sequences, resolved; the replay's, made the pipeline's. */
      deadLetters
    }
  }).pipe(
    // either lock lost: a live consumer or another replay could start (or remove this one's versions);
    // the replay stops with LockLost before the switch, or its switch rolls back
    PartitionLock.guard(pipelineLock),
    PartitionLock.guard(ownLock),
    Effect.onError(() => discardEmpty)
  )
}, Effect.scoped)
