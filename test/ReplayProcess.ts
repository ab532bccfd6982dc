/**
 * A stream replay in a process of its own, for a test to kill: `node test/ReplayProcess.ts <stream>`
 * replays `<stream>` from its first message (`OrderStream.replay`) on the database of `Database.layer`
 * (`DATABASE_URL`, else the embedded one under `SLUICE_DATA_DIR`) and NATS at `SLUICE_TEST_NATS_URL`
 * (default `127.0.0.1:4222`). It prints `committed <first>-<last> <dead-lettered>` for each batch it
 * commits; once a batch with dead letters has committed, its sink's next write never returns, so the
 * replay stays alive, holding its lock and its dead letters, until the process is killed.
 */
import { NodeRuntime } from "@effect/platform-node"
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { Database, SqlProcessedEventLedger, SqlSluice } from "@sluice/sql"
import { Console, Effect, Layer, References } from "effect"
import { OrderStream } from "../apps/order-stream/src/index.ts"
import { JetStreamSource } from "../packages/nats/src/index.ts"

const stream = process.argv[2]
if (stream === undefined) throw new Error("usage: node test/ReplayProcess.ts <stream>")
let deadLettersCommitted = false

const program = Effect.gen(function*() {
  yield* DailyRevenue.setup
  yield* OrderStream.replay({
    stream,
    startAt: { _tag: "Sequence", sequence: 1 },
    pipeline: { batchSize: 5, batchWindow: "20 millis", badRecords: { threshold: 0.9 } },
    sink: (tables) => {
      const real = OrderStream.sinkFor(tables)
      return { ...real, write: (orders) => deadLettersCommitted ? Effect.never : real.write(orders) }
    },
    onEvent: (event) => {
      if (event._tag !== "Committed") return Effect.void
      const r = event.report
      if (r.deadLettered > 0) deadLettersCommitted = true
      return Console.log(`committed ${r.firstSequence}-${r.lastSequence} ${r.deadLettered}`)
    }
  })
  yield* Console.log("switched")
})

program.pipe(
  Effect.provide(Layer.mergeAll(
    SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(SqlSluice.layer), Layer.provideMerge(Database.layer)),
    JetStreamSource.JetStream.layer(process.env["SLUICE_TEST_NATS_URL"] ?? "127.0.0.1:4222"),
    Layer.succeed(References.MinimumLogLevel, "Error")
  )),
  NodeRuntime.runMain
)
