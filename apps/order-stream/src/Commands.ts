/**
 * The streaming commands of the CLI: `stream <pipeline> [--metrics-port N]` (runs until interrupted;
 * Ctrl-C finishes the batch in hand, stops pulling and exits; with `--metrics-port` it serves its own
 * metrics at `/metrics`, since a streaming pipeline's metrics live only in its process), `replay <pipeline> --from-seq N | --from-time T`
 * and `publish-orders` (sample events with duplicates and bad ones). `stream` and `replay` of one pipeline
 * exclude each other, and a second of either: the one starting fails with `PipelineBusy` (exit 1).
 *
 * NATS is at `NATS_URL` (default `127.0.0.1:4222`): an unparsable one is a configuration error (exit
 * 2), an unreachable one fails with `NATS unavailable: <url>: <reason>` (exit 1).
 *
 * @since 0.1.0
 */
import { DailyRevenue } from "@sluice-app/daily-revenue"
import { CliError, Serve } from "@sluice/cli"
import { Alert, Streaming } from "@sluice/core"
import { JetStreamSource } from "@sluice/nats"
import { SqlProcessedEventLedger, type SqlSluice } from "@sluice/sql"
import { Config, Console, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { SqlClient } from "effect/sql"
import * as OrderStream from "./OrderStream.ts"

const natsLayer = Layer.unwrap(
  Effect.map(
    Config.String("NATS_URL").pipe(Config.withDefault("127.0.0.1:4222")),
    (servers) => JetStreamSource.JetStream.layer(servers)
  )
).pipe(
  // an unparsable NATS_URL is a configuration error (exit 2); an unreachable one fails the command (exit 1)
  Layer.catchTag(
    "InvalidNatsUrl",
    (error) =>
      Layer.effect(
        JetStreamSource.JetStream,
        Effect.fail(new CliError.InvalidArgument({ message: `NATS_URL: ${error.message}` }))
      )
  )
)

const pipelines = [OrderStream.name] as const

/**
 * An ISO 8601 date or date-time (`2026-12-08`, `2026-12-08T10:00`, `…:30.5Z`, `…+05:00`; a space for the
 * `T`): JavaScript's `Date` also reads "0", "12" or "March 7" (as years 2000 and 2001, in local time), a
 * start point the user never meant.
 */
const isoTime = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i

const pipelineArg = Argument.String("pipeline").pipe(
  Argument.withDescription(`The streaming pipeline: ${pipelines.join(", ")}`)
)

/**
 * A stream pipeline, for `command`: a batch pipeline of the same CLI (`batch`) is a usage error naming
 * its own commands; any other name is unknown.
 */
const check = (name: string, command: "stream" | "replay", batch: ReadonlyArray<string>) =>
  pipelines.includes(name as typeof OrderStream.name)
    ? Effect.void
    : batch.includes(name)
    ? Effect.fail(
      new CliError.InvalidArgument({
        message: `${name} is a batch pipeline: ${command} works on stream pipelines (${
          pipelines.join(", ")
        }) only; load its partitions with sluice run ${name} --date D or sluice backfill ${name} --start D --end D`
      })
    )
    : Effect.fail(new CliError.UnknownPipeline({ name, known: [...pipelines] }))

const logEvent = (event: Streaming.Event) => {
  switch (event._tag) {
    case "Committed": {
      const r = event.report
      return Console.log(
        `seq ${r.firstSequence}–${r.lastSequence}: ${r.received} received, ${r.loaded} loaded, ${r.deadLettered} dead-lettered, ${r.skipped} skipped`
      )
    }
    case "BreakerTransition":
      return Console.error(`circuit ${event.from} → ${event.to}`)
    case "CommitFailed":
      return Console.error(`commit failed: ${event.error}`)
    case "BadRecordRateAlert":
      return Console.error(`ALERT: ${event.error.message}`)
    case "BadRecordRateGaveUp":
      return Console.error(
        `ALERT: bad-record rate still above the threshold after ${event.pauses} pause(s) on one batch; ${
          event.action === "deadLetter" ? "dead-lettering its bad messages and going on" : "stopping"
        }`
      )
  }
}

/**
 * Makes the commands over a database layer providing Sluice's SQL services (e.g. the CLI's).
 * `options.batch` names the CLI's batch pipelines, so that `stream` or `replay` of one of them is
 * told which commands run it instead of "unknown pipeline".
 *
 * @since 0.1.0
 * @category commands
 */
export const make = <E>(
  database: Layer.Layer<SqlSluice.Services | SqlClient.SqlClient, E>,
  options: { readonly batch?: ReadonlyArray<string> | undefined } = {}
) => {
  const batch = options.batch ?? []
  const services = Layer.mergeAll(
    SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(database)),
    natsLayer
  )

  const stream = Command.make(
    "stream",
    {
      pipeline: pipelineArg,
      metricsPort: Flag.Int("metrics-port").pipe(
        Flag.withDescription("Serve this process's Prometheus metrics at /metrics on this port (0: any free one)"),
        Flag.optional
      ),
      metricsHost: Flag.String("metrics-host").pipe(
        Flag.withDescription("Address the metrics server binds (with --metrics-port)"),
        Flag.withDefault("127.0.0.1")
      ),
      badRateMaxPauses: Flag.Int("bad-rate-max-pauses").pipe(
        Flag.withDescription(
          "Pauses of the bad-record-rate breaker on the same batch before it gives up (--bad-rate-on-persist)"
        ),
        Flag.withDefault(3)
      ),
      badRateOnPersist: Flag.ChoiceWithValue("bad-rate-on-persist", [
        ["dead-letter", "deadLetter" as const],
        ["fail", "fail" as const]
      ]).pipe(
        Flag.withDescription(
          "When the breaker gives up: dead-letter the batch's bad messages and go on, or fail (exit 1, batch unacked)"
        ),
        Flag.withDefault("deadLetter" as const)
      )
    },
    Effect.fnUntraced(function*({ pipeline, metricsPort, metricsHost, badRateMaxPauses, badRateOnPersist }) {
      yield* check(pipeline, "stream", batch)
      if (badRateMaxPauses < 0) {
        return yield* new CliError.InvalidArgument({
          message: `--bad-rate-max-pauses must be 0 or more, got ${badRateMaxPauses}`
        })
      }
      // checked here, before NATS or the database is reached
      if (Option.isSome(metricsPort) && (metricsPort.value < 0 || metricsPort.value > 65_535)) {
        return yield* new CliError.InvalidArgument({
          message: `--metrics-port must be between 0 and 65535, got ${metricsPort.value}`
        })
      }
      // the streaming pipeline's metrics live only in this process: it serves them itself
      const metrics = Option.isSome(metricsPort)
        ? Serve.metricsLayer({ port: metricsPort.value, host: metricsHost })
        : Layer.empty
      return yield* Effect.gen(function*() {
        yield* DailyRevenue.setup
        // refused while a replay (or another live consumer) of the pipeline runs: PipelineBusy, exit 1
        yield* OrderStream.consume({
          pipeline: { badRecords: { maxPauses: badRateMaxPauses, onPersist: badRateOnPersist } },
          onEvent: logEvent,
          onStart: Console.log(
            `${pipeline}: consuming ${OrderStream.stream}/${OrderStream.consumer}; Ctrl-C to stop`
          )
        })
      }).pipe(
        Effect.provide(Layer.merge(services, metrics)),
        // alerts are printed from the stream's events (logEvent)
        Effect.provideService(Alert.Reported, true)
      )
    })
  ).pipe(Command.withDescription(
    "Consume a stream until interrupted (Ctrl-C drains and exits); --metrics-port serves its /metrics"
  ))

  const replay = Command.make(
    "replay",
    {
      pipeline: pipelineArg,
      fromSeq: Flag.Int("from-seq").pipe(Flag.withDescription("First stream sequence to reprocess"), Flag.optional),
      fromTime: Flag.String("from-time").pipe(
        Flag.withDescription("Reprocess events published from this time (ISO 8601)"),
        Flag.optional
      )
    },
    Effect.fnUntraced(function*({ pipeline, fromSeq, fromTime }) {
      yield* check(pipeline, "replay", batch)
      if (Option.isSome(fromSeq) === Option.isSome(fromTime)) {
        return yield* new CliError.InvalidArgument({ message: "give exactly one of --from-seq and --from-time" })
      }
      // checked here, before NATS or the database is reached
      if (Option.isSome(fromSeq) && fromSeq.value < 1) {
        return yield* new CliError.InvalidArgument({
          message: `invalid --from-seq ${fromSeq.value}: stream sequences start at 1`
        })
      }
      const time = Option.map(fromTime, (t) => new Date(t))
      if (
        Option.isSome(fromTime) && Option.isSome(time) &&
        (!isoTime.test(fromTime.value.trim()) || Number.isNaN(time.value.getTime()))
      ) {
        return yield* new CliError.InvalidArgument({
          message: `invalid --from-time ${JSON.stringify(fromTime.value)}: expected an ISO 8601 time`
        })
      }
      return yield* Effect.gen(function*() {
        yield* DailyRevenue.setup
        const report = yield* OrderStream.replay({
          startAt: Option.isSome(fromSeq)
            ? { _tag: "Sequence", sequence: fromSeq.value }
            : { _tag: "Time", time: Option.getOrThrow(time) },
          onEvent: logEvent
        }).pipe(
          // alerts are printed from the stream's events (logEvent)
          Effect.provideService(Alert.Reported, true),
          // a start point the stream has nothing after is a usage error: nothing was created or switched
          Effect.catchTag(
            "InvalidStartAt",
            (error) => Effect.fail(new CliError.InvalidArgument({ message: error.message }))
          )
        )
        yield* Console.log(
          `${pipeline}: replay caught up: ${report.received} events, ${report.loaded} loaded, ${report.deadLettered} dead-lettered, ${report.skipped} skipped (duplicates); readers switched to ${report.tables.orders}, ${report.tables.dailyRevenue}; dead letters: ${report.deadLetters.adopted} now ${pipeline}'s, ${report.deadLetters.superseded} superseded`
        )
      }).pipe(Effect.provide(services))
    })
  ).pipe(Command.withDescription(
    "Reprocess a stream from a sequence or a time into fresh table versions, then switch readers to them"
  ))

  const publishOrders = Command.make(
    "publish-orders",
    {
      count: Flag.Int("count").pipe(Flag.withDescription("Order events"), Flag.withDefault(1_000)),
      seed: Flag.Int("seed").pipe(Flag.withDefault(1)),
      badShare: Flag.Finite("bad-share").pipe(Flag.withDefault(0.03)),
      duplicateShare: Flag.Finite("duplicate-share").pipe(Flag.withDefault(0.1))
    },
    Effect.fnUntraced(function*({ count, seed, badShare, duplicateShare }) {
      // checked here, before NATS is reached
      if (count < 0) {
        return yield* new CliError.InvalidArgument({ message: `--count must be 0 or more, got ${count}` })
      }
      for (const [flag, share] of [["--bad-share", badShare], ["--duplicate-share", duplicateShare]] as const) {
        if (share < 0 || share > 1) {
          return yield* new CliError.InvalidArgument({ message: `${flag} must be between 0 and 1, got ${share}` })
        }
      }
      const n = yield* OrderStream.publish(OrderStream.events({ count, seed, badShare, duplicateShare })).pipe(
        Effect.provide(natsLayer)
      )
      yield* Console.log(`published ${n} order events to ${OrderStream.stream} (${OrderStream.subject})`)
    })
  ).pipe(Command.withDescription("Publish sample order events (with duplicates and bad ones) to NATS JetStream"))

  return { stream, replay, publishOrders }
}
