/**
 * A consumer process for the kill test: consumes the stream into the table and, at the first
 * commit, prints `committed` before acknowledging — then hangs, to be killed with SIGKILL between
 * the commit and the ack.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Streaming } from "@sluice/core"
import { JetStreamSource } from "@sluice/nats"
import { Database } from "@sluice/sql"
import { Effect, Layer, Stream } from "effect"
import { natsServers, sluiceOn, transform, upsertSink } from "./fixtures.ts"

const [url, stream, consumer, table, name] = process.argv.slice(2) as [string, string, string, string, string]

const program = Effect.gen(function*() {
  const sink = yield* upsertSink(table)
  const pipeline = Streaming.make({ name, transform, sink, batchSize: 1_000, batchWindow: "100 millis" })
  const source = JetStreamSource.source({ stream, consumer })
  let first = true
  yield* Streaming.run(pipeline, {
    location: source.location,
    messages: source.messages.pipe(Stream.map((m) => ({
      ...m,
      ack: Effect.suspend(() => {
        if (!first) return Effect.never
        first = false
        return Effect.andThen(Effect.sync(() => process.stdout.write("committed\n")), Effect.never)
      })
    })))
  })
}).pipe(
  Effect.provide(Layer.mergeAll(sluiceOn(Database.layerPostgres(url)), JetStreamSource.JetStream.layer(natsServers)))
)

NodeRuntime.runMain(program)
