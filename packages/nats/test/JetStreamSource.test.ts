import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, ProcessedEventLedger, SinkError, SourceError, Streaming, Utf8 } from "@sluice/core"
import { JetStreamSource, Testing as NatsTesting } from "@sluice/nats"
import { Database, Testing } from "@sluice/sql"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import {
  createTable,
  freshStream,
  natsServers,
  payloadOf,
  pending,
  readIds,
  sluiceOn,
  transform,
  upsertSink
} from "./fixtures.ts"

const reachable = await NatsTesting.reachableOrFail(it)

if (!reachable && !NatsTesting.required) {
  describe.skip(`JetStream tests: NATS does not answer at ${natsServers}; start nats-server -js to run them`, () => {
    it("skipped", () => {})
  })
}

/**
 * Waits (polling every 50 ms) until `observe` gives a value that `done` accepts, for at most `seconds`; on timeout
 * the test fails naming the condition and the last value seen. Gives the value accepted.
 */
const eventually = <A, E, R>(
  what: string,
  observe: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  seconds = 15
) =>
  observe.pipe(
    Effect.flatMap((a) =>
      done(a)
        ? Effect.succeed(a)
        : Effect.fail(new Error(`not within ${seconds} s: ${what} (last seen: ${JSON.stringify(a)})`))
    ),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: seconds * 20 }),
    Effect.orDie
  )

/** `effect`, failing at once with the run's cause if the streaming run `fiber` ends first (it should run until interrupted). */
const whileRunning = <E>(fiber: Fiber.Fiber<void, E>) => <A, E2, R>(effect: Effect.Effect<A, E2, R>) =>
  Effect.raceFirst(
    effect,
    Effect.flatMap(Fiber.await(fiber), (exit) =>
      Effect.die(
        new Error(`the streaming run ended: ${exit._tag === "Success" ? "with success" : Cause.pretty(exit.cause)}`)
      ))
  )

const isSettled = (p: { readonly pending: number; readonly ackPending: number }) =>
  p.pending === 0 && p.ackPending === 0

const publishAll = (subject: string, ids: ReadonlyArray<number>, bypassDedupe = true) =>
  Effect.forEach(ids, (id) => JetStreamSource.publish(subject, payloadOf(id), { eventId: `e${id}`, bypassDedupe }), {
    discard: true
  })

const expectedGood = (ids: ReadonlyArray<number>) =>
  [...new Set(ids)].filter((id) => id % 4 !== 0).map((id) => `e${id}`).sort()

let counter = 0
const unique = (prefix: string) => `${prefix}_${++counter}_${crypto.randomUUID().slice(0, 6).replaceAll("-", "")}`

const killAndRestart = (fresh: string) =>
  Effect.scoped(Effect.gen(function*() {
    const { stream, subject, consumer } = yield* freshStream("kill")
    const table = unique("readings")
    const name = unique("stream")
    yield* createTable(table)
    yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "1 second" })
    const ids = [1, 2, 3, 5, 6, 7, 2, 9]
    yield* publishAll(subject, ids)
    // the child commits its first batch, then is killed before it acks
    yield* Effect.callback<void>((resume) => {
      const child = spawn(process.execPath, [
        fileURLToPath(new URL("./consumerChild.ts", import.meta.url)),
        fresh,
        stream,
        consumer,
        table,
        name
      ], { stdio: ["ignore", "pipe", "inherit"] })
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("committed")) child.kill("SIGKILL")
      })
      child.on("exit", () => resume(Effect.void))
    })
    assert.deepStrictEqual(yield* readIds(table), expectedGood(ids), "the child committed the batch")
    const left = yield* pending(stream, consumer)
    assert.isAbove(left.ackPending + left.pending, 0, "the child acked nothing")
    // restart in this process: everything is redelivered, and skipped by the ledger
    const sink = yield* upsertSink(table)
    const fiber = yield* Streaming.run(
      Streaming.make({ name, transform, sink, batchSize: 100, batchWindow: "20 millis" }),
      JetStreamSource.source({ stream, consumer })
    ).pipe(Effect.forkChild)
    yield* eventually("the consumer has nothing pending", pending(stream, consumer), isSettled)
    yield* Fiber.interrupt(fiber)
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(table)}`
    assert.strictEqual(rows[0]!.n, expectedGood(ids).length)
    assert.strictEqual(yield* (yield* ProcessedEventLedger.ProcessedEventLedger).count(name), new Set(ids).size)
  }))

const outage = (base: string, fresh: string) =>
  Effect.scoped(Effect.gen(function*() {
    const admin = yield* Layer.build(Database.layerPostgres(base, { maxConnections: 1 })).pipe(
      Effect.map(Context.get(SqlClient.SqlClient))
    )
    const database = new URL(fresh).pathname.slice(1)
    const { stream, subject, consumer } = yield* freshStream("outage")
    const table = unique("readings")
    const name = unique("stream")
    yield* createTable(table)
    yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "2 seconds" })
    const first = [1, 2, 3, 5]
    const second = [6, 7, 9, 10, 11, 2]
    yield* publishAll(subject, first)
    const sink = yield* upsertSink(table)
    const transitions: Array<string> = []
    const fiber = yield* Streaming.run(
      Streaming.make({
        name,
        transform,
        sink,
        batchSize: 100,
        batchWindow: "20 millis",
        breaker: { failures: 2, openDuration: "300 millis" }
      }),
      JetStreamSource.source({ stream, consumer }),
      { onEvent: (e) => Effect.sync(() => e._tag === "BreakerTransition" && transitions.push(`${e.from}->${e.to}`)) }
    ).pipe(Effect.forkChild)
    const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
    const running = whileRunning(fiber)
    yield* running(eventually("the ledger holds the first events", ledger.count(name), (n) => n === first.length))
    // the database goes away: no new connections, existing ones terminated
    yield* admin`ALTER DATABASE ${admin(database)} ALLOW_CONNECTIONS false`
    yield* admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${database}`
    yield* publishAll(subject, second)
    yield* running(eventually("the breaker opened", Effect.sync(() => transitions), (t) => t.includes("Closed->Open")))
    const during = yield* pending(stream, consumer)
    assert.isAbove(during.pending + during.ackPending, 0, "nothing acked while the database is away")
    yield* Effect.sleep("500 millis")
    yield* admin`ALTER DATABASE ${admin(database)} ALLOW_CONNECTIONS true`
    yield* running(eventually("the consumer has nothing pending", pending(stream, consumer), isSettled, 30))
    const all = new Set([...first, ...second]).size
    yield* running(eventually("the ledger holds every event", ledger.count(name), (n) => n === all))
    yield* Fiber.interrupt(fiber)
    assert.deepStrictEqual(yield* readIds(table), expectedGood([...first, ...second]))
    assert.include(transitions, "HalfOpen->Closed")
  }))

/**
 * The backend of a commit is terminated while the commit runs a statement (the sink's first write
 * sleeps): the commit fails with a retryable error, is retried, and the run goes on.
 */
const killedMidCommit = Effect.scoped(Effect.gen(function*() {
  const { stream, subject, consumer } = yield* freshStream("midcommit")
  const table = unique("readings")
  const name = unique("stream")
  yield* createTable(table)
  yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "30 seconds" })
  const sql = yield* SqlClient.SqlClient
  const upsert = yield* upsertSink(table)
  const marker = `sluice_midcommit_${table}`
  let writes = 0
  const sink: Streaming.StreamSink<any> = {
    target: table,
    write: (rows) =>
      Effect.andThen(
        upsert.write(rows),
        writes++ === 0
          ? sql.unsafe(`SELECT pg_sleep(30) AS ${marker}`).pipe(
            Effect.mapError((e) => new SinkError.SinkError({ operation: "sleep", message: e.message, retryable: true }))
          )
          : Effect.void
      )
  }
  yield* publishAll(subject, [1, 2, 3])
  const failures: Array<string> = []
  const fiber = yield* Streaming.run(
    Streaming.make({ name, transform, sink, batchSize: 100, batchWindow: "20 millis" }),
    JetStreamSource.source({ stream, consumer }),
    { onEvent: (e) => Effect.sync(() => e._tag === "CommitFailed" && failures.push(e.error)) }
  ).pipe(Effect.forkChild)
  const running = whileRunning(fiber)
  const sleeping = sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
    WHERE state = 'active' AND query LIKE ${`%${marker}%`} AND pid <> pg_backend_pid()`
  const [backend] = yield* running(eventually("the first commit is sleeping", sleeping, (rows) => rows.length === 1))
  yield* sql`SELECT pg_terminate_backend(${backend!.pid})`
  const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
  yield* running(eventually("the ledger holds every event", ledger.count(name), (n) => n === 3))
  yield* running(eventually("the consumer has nothing pending", pending(stream, consumer), isSettled))
  yield* Fiber.interrupt(fiber)
  assert.deepStrictEqual(yield* readIds(table), expectedGood([1, 2, 3]))
  assert.strictEqual(failures.length, 1, `one failed commit: ${failures.join("; ")}`)
  assert.strictEqual(writes, 2)
}))

if (reachable) {
  for (const backend of Testing.backends()) {
    const services = Layer.mergeAll(sluiceOn(backend.layer), JetStreamSource.JetStream.layer(natsServers))
    layer(services, { timeout: "60 seconds", excludeTestServices: true })(
      `JetStream streaming [${backend.name}]`,
      (it) => {
        it.effect("duplicates, redeliveries and bad messages: each good event loaded once, every message acked", () =>
          Effect.scoped(Effect.gen(function*() {
            const { stream, subject, consumer } = yield* freshStream("dup")
            const table = unique("readings")
            const name = unique("stream")
            yield* createTable(table)
            // short ack wait: while the first commits fail (breaker), JetStream redelivers
            yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "1 second" })
            const ids = [1, 2, 3, 2, 4, 5, 1, 6, 4, 7, 8, 3, 9]
            yield* publishAll(subject, ids)
            const sink = yield* upsertSink(table, 3)
            const transitions: Array<string> = []
            const pipeline = Streaming.make({
              name,
              transform,
              sink,
              batchSize: 4,
              batchWindow: "20 millis",
              breaker: { failures: 2, openDuration: "300 millis" },
              badRecords: { threshold: 0.9, minimum: 100 }
            })
            const fiber = yield* Streaming.run(pipeline, JetStreamSource.source({ stream, consumer, maxMessages: 8 }), {
              onEvent: (e) =>
                Effect.sync(() => e._tag === "BreakerTransition" && transitions.push(`${e.from}->${e.to}`))
            }).pipe(Effect.forkChild)
            const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
            yield* eventually("the ledger holds every event", ledger.count(name), (n) => n === new Set(ids).size)
            yield* eventually("the consumer has nothing pending", pending(stream, consumer), isSettled)
            yield* Fiber.interrupt(fiber)
            assert.deepStrictEqual(yield* readIds(table), expectedGood(ids))
            const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
            assert.deepStrictEqual(dead.map((d) => d.originalRecord).sort(), [payloadOf(4), payloadOf(8)].sort())
            assert.isTrue(dead.every((d) => d.stage === `transform@${stream}`))
            assert.include(transitions, "Closed->Open")
          })))

        it.effect("a message that is not valid UTF-8 is dead-lettered as InvalidEncoding with its bytes, then acked", () =>
          Effect.scoped(Effect.gen(function*() {
            const { stream, subject, consumer } = yield* freshStream("utf8")
            const table = unique("readings")
            const name = unique("stream")
            yield* createTable(table)
            yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "1 second" })
            const encode = (text: string) => [...new TextEncoder().encode(text)]
            // a lone 0xFF, an overlong "/", an encoded surrogate: each inside the id's string
            const invalid = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80]].map((bad, i) =>
              Uint8Array.from([...encode(`{"id":"bad${i}`), ...bad, ...encode(`","value":${i}}`)])
            )
            yield* publishAll(subject, [1, 2])
            for (const [i, bytes] of invalid.entries()) {
              yield* JetStreamSource.publish(subject, bytes, { eventId: `bad${i}`, bypassDedupe: true })
            }
            yield* publishAll(subject, [3, 5])
            // the first commit fails: nothing is acked until the batch, dead letters included, commits
            const sink = yield* upsertSink(table, 1)
            const pipeline = Streaming.make({
              name,
              transform,
              sink,
              batchSize: 100,
              batchWindow: "20 millis",
              badRecords: { threshold: 0.9, minimum: 100 }
            })
            const fiber = yield* Streaming.run(pipeline, JetStreamSource.source({ stream, consumer })).pipe(
              Effect.forkChild
            )
            const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
            yield* eventually("the ledger holds every event", ledger.count(name), (n) => n === 7).pipe(
              whileRunning(fiber)
            )
            yield* eventually("the consumer has nothing pending", pending(stream, consumer), isSettled).pipe(
              whileRunning(fiber)
            )
            yield* Fiber.interrupt(fiber)
            assert.deepStrictEqual(yield* readIds(table), ["e1", "e2", "e3", "e5"])
            const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
            assert.deepStrictEqual(dead.map((d) => [d.errorType, d.originalRecord]), [
              ["InvalidEncoding", "{\"id\":\"bad0\\xFF\",\"value\":0}"],
              ["InvalidEncoding", "{\"id\":\"bad1\\xC0\\xAF\",\"value\":1}"],
              ["InvalidEncoding", "{\"id\":\"bad2\\xED\\xA0\\x80\",\"value\":2}"]
            ])
            for (const [i, d] of dead.entries()) assert.deepStrictEqual(Utf8.unescape(d.originalRecord), invalid[i])
            assert.isTrue(dead.every((d) => d.stage === `transform@${stream}` && d.attempts === 1))
          })))

        it.effect("a leading byte order mark: a good message loads, a bad one is dead-lettered with its BOM", () =>
          Effect.scoped(Effect.gen(function*() {
            const { stream, subject, consumer } = yield* freshStream("bom")
            const table = unique("readings")
            const name = unique("stream")
            yield* createTable(table)
            yield* JetStreamSource.ensureConsumer({ stream, consumer, ackWait: "1 second" })
            const bom = "\ufeff"
            const payloads = [`${bom}${payloadOf(1)}`, `${bom}{not json`, bom, `${bom}${bom}${payloadOf(2)}`]
            for (const [i, payload] of payloads.entries()) {
              yield* JetStreamSource.publish(subject, payload, { eventId: `bom${i}`, bypassDedupe: true })
            }
            const fiber = yield* Streaming.run(
              Streaming.make({
                name,
                transform,
                sink: yield* upsertSink(table),
                batchSize: 100,
                batchWindow: "20 millis",
                badRecords: { threshold: 0.9, minimum: 100 }
              }),
              JetStreamSource.source({ stream, consumer })
            ).pipe(Effect.forkChild)
            yield* eventually("the consumer has nothing pending", pending(stream, consumer), isSettled).pipe(
              whileRunning(fiber)
            )
            yield* Fiber.interrupt(fiber)
            assert.deepStrictEqual(yield* readIds(table), ["e1"])
            const dead = yield* (yield* DeadLetter.DeadLetterStore).list(name)
            // each dead letter is the message exactly as published, byte order marks included
            assert.deepStrictEqual(dead.map((d) => [d.errorType, d.originalRecord]), [
              ["InvalidJson", payloads[1]],
              ["InvalidJson", payloads[2]],
              ["InvalidJson", payloads[3]]
            ])
          })))

        it.effect("streaming equals batch: the same events give the same rows whatever the batch size", () =>
          Effect.scoped(Effect.gen(function*() {
            const { stream, subject } = yield* freshStream("eq")
            const ids = Array.from({ length: 60 }, (_, i) => (i * 7) % 23)
            yield* publishAll(subject, ids)
            const results: Array<ReadonlyArray<string>> = []
            for (const batchSize of [1, 7, 1_000]) {
              const consumer = unique("c")
              const table = unique("readings")
              const name = unique("stream")
              yield* createTable(table)
              yield* JetStreamSource.ensureConsumer({ stream, consumer })
              const sink = yield* upsertSink(table)
              const pipeline = Streaming.make({
                name,
                transform,
                sink,
                batchSize,
                batchWindow: "10 millis",
                badRecords: { threshold: 0.9, minimum: 1_000 }
              })
              const fiber = yield* Streaming.run(pipeline, JetStreamSource.source({ stream, consumer })).pipe(
                Effect.forkChild
              )
              yield* eventually("the consumer has nothing pending", pending(stream, consumer), isSettled)
              yield* Fiber.interrupt(fiber)
              results.push(yield* readIds(table))
            }
            assert.deepStrictEqual(results, [expectedGood(ids), expectedGood(ids), expectedGood(ids)])
          })))
      }
    )
  }

  const url = Testing.postgresUrl()
  describe.skipIf(url === undefined)("JetStream streaming on PostgreSQL, failures", () => {
    it.live(
      "a consumer killed (SIGKILL) between commit and ack: after restart, no duplicate rows",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const fresh = yield* Testing.freshDatabase(url!)
          yield* killAndRestart(fresh).pipe(Effect.provide(sluiceOn(Database.layerPostgres(fresh))))
        })).pipe(Effect.provide(JetStreamSource.JetStream.layer(natsServers))),
      { timeout: 60_000 }
    )

    it.live(
      "a backend terminated while a commit runs a statement: the commit is retried and the run goes on",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const fresh = yield* Testing.freshDatabase(url!)
          yield* killedMidCommit.pipe(Effect.provide(sluiceOn(Database.layerPostgres(fresh))))
        })).pipe(Effect.provide(JetStreamSource.JetStream.layer(natsServers))),
      { timeout: 60_000 }
    )

    it.live(
      "the database taken away mid-stream: the breaker opens, nothing is lost, it recovers and catches up",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const fresh = yield* Testing.freshDatabase(url!)
          yield* outage(url!, fresh).pipe(Effect.provide(sluiceOn(Database.layerPostgres(fresh))))
        })).pipe(Effect.provide(JetStreamSource.JetStream.layer(natsServers))),
      { timeout: 60_000 }
    )
  })
}

describe.skipIf(!reachable)("JetStreamSource.source", () => {
  it.live(
    "fails with NotFound when its consumer is deleted, instead of waiting for it silently",
    () =>
      Effect.gen(function*() {
        const { stream, subject, consumer } = yield* freshStream("deleted")
        yield* JetStreamSource.ensureConsumer({ stream, consumer })
        yield* JetStreamSource.publish(subject, "{}", { eventId: "e1" })
        const received = yield* Deferred.make<void>()
        const fiber = yield* JetStreamSource.source({ stream, consumer }).messages.pipe(
          Stream.runForEach((m) => Effect.andThen(m.ack, Deferred.succeed(received, undefined))),
          Effect.forkChild
        )
        yield* Deferred.await(received)
        yield* JetStreamSource.deleteConsumer(stream, consumer)
        const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("30 seconds"))
        assert.isTrue(Exit.isFailure(exit), `the source ended: ${exit}`)
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(error, SourceError.SourceError)
        assert.strictEqual((error as SourceError.SourceError).reason._tag, "NotFound")
        assert.isFalse((error as SourceError.SourceError).isRetryable)
      }).pipe(Effect.scoped, Effect.provide(JetStreamSource.JetStream.layer(natsServers))),
    { timeout: 60_000 }
  )
})

describe("JetStream.layer", () => {
  const failure = (servers: string) =>
    Effect.gen(function*() {
      yield* JetStreamSource.JetStream
    }).pipe(Effect.provide(JetStreamSource.JetStream.layer(servers)), Effect.flip)

  it.live("names NATS and its address when nothing answers there", () =>
    Effect.gen(function*() {
      const error = yield* failure("127.0.0.1:14299")
      assert.strictEqual(error._tag, "NatsUnavailable")
      assert.strictEqual(error.message, "NATS unavailable: 127.0.0.1:14299: connection refused")
    }))

  it.live("refuses servers it cannot parse before connecting", () =>
    Effect.gen(function*() {
      for (const servers of ["not a url", "127.0.0.1:99999", "127.0.0.1:4222,", ""]) {
        const error = yield* failure(servers)
        assert.strictEqual(error._tag, "InvalidNatsUrl", servers)
        assert.include(error.message, JSON.stringify(servers))
      }
    }))
})
