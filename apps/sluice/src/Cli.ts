/**
 * The `sluice` command tree with every sample pipeline registered.
 *
 * @since 0.1.0
 */
import { Generator as CustomerGenerator } from "@sluice-app/customers"
import { Generator, OrdersServer } from "@sluice-app/daily-revenue"
import { Generator as EventGenerator } from "@sluice-app/events"
import { Commands as OrderStreamCommands } from "@sluice-app/order-stream"
import { CliError, Commands, SchemaCommands } from "@sluice/cli"
import { Partition } from "@sluice/core"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Registry from "./Registry.ts"

const pipelines = Commands.make(Registry.entries, Registry.layer, { streams: Registry.streams })
const streaming = OrderStreamCommands.make(Registry.layer, { batch: Registry.entries.map((e) => e.name) })

/** The flags of every `generate-*` command: where to write, from which date, how many days, which seed. */
const generatorFlags = (
  defaults: { readonly dir: string; readonly days: number; readonly dirDescription?: string }
) => ({
  dir: Flag.String("dir").pipe(
    Flag.withDescription(defaults.dirDescription ?? "Folder to write YYYY-MM-DD.jsonl files to"),
    Flag.withDefault(defaults.dir)
  ),
  start: Flag.String("start").pipe(Flag.withDescription("First date"), Flag.withDefault("2024-03-01")),
  days: Flag.Int("days").pipe(Flag.withDescription("Number of days"), Flag.withDefault(defaults.days)),
  seed: Flag.Int("seed").pipe(Flag.withDescription("Random seed (same seed, same files)"), Flag.withDefault(1))
})

/**
 * Checks `--start` and the other date flags given (YYYY-MM-DD, when set), then `--days`; returns the
 * start date.
 */
const checkGeneratorFlags = Effect.fnUntraced(function*(
  flags: { readonly start: string; readonly days: number },
  otherDates: ReadonlyArray<readonly [flag: string, value: string | undefined]> = []
) {
  for (const [flag, value] of [["--start", flags.start] as const, ...otherDates]) {
    if (value !== undefined && !Partition.isDateString(value)) {
      return yield* new CliError.InvalidArgument({
        message: `invalid ${flag} ${JSON.stringify(value)}: expected YYYY-MM-DD`
      })
    }
  }
  if (flags.days < 1 || flags.days > 3660) {
    return yield* new CliError.InvalidArgument({ message: "--days must be between 1 and 3660" })
  }
  return Partition.makeUnsafe(flags.start)
})

const generateOrders = Command.make(
  "generate-orders",
  {
    ...generatorFlags({ dir: "data/orders", days: 31 }),
    badShare: Flag.Finite("bad-share").pipe(Flag.withDescription("Share of bad lines, 0–1"), Flag.withDefault(0.03)),
    evolvedFrom: Flag.String("evolved-from").pipe(
      Flag.withDescription(
        "First day whose orders carry currency and loyalty_points (YYYY-MM-DD, or none); default: the middle day"
      ),
      Flag.optional
    ),
    evolution: Flag.Boolean("evolution").pipe(
      Flag.withDescription("Change the orders' record during the range (--no-evolution: the old record every day)"),
      Flag.withDefault(true)
    )
  },
  Effect.fnUntraced(function*({ dir, start, days, seed, badShare, evolvedFrom, evolution }) {
    const first = yield* checkGeneratorFlags({ start, days })
    if (!(badShare >= 0 && badShare <= 1)) {
      return yield* new CliError.InvalidArgument({ message: "--bad-share must be between 0 and 1" })
    }
    const from = Option.getOrUndefined(evolvedFrom)
    if (from !== undefined && from !== "none" && !Partition.isDateString(from)) {
      return yield* new CliError.InvalidArgument({
        message: `invalid --evolved-from ${JSON.stringify(from)}: expected YYYY-MM-DD or none`
      })
    }
    if (!evolution && from !== undefined && from !== "none") {
      return yield* new CliError.InvalidArgument({ message: `--no-evolution contradicts --evolved-from ${from}` })
    }
    // a date outside the range is fine: every day has the evolved record, or none has
    const off = !evolution || from === "none"
    const changeOn = off
      ? undefined
      : from === undefined
      ? Generator.middleDay(first, days)
      : Partition.makeUnsafe(from)
    const manifest = yield* Generator.generate({
      directory: dir,
      start: first,
      days,
      seed,
      badShare,
      evolvedFrom: changeOn
    })
    yield* Console.log(
      `wrote ${manifest.days.length} day(s) to ${dir}: ${manifest.records} records, ${manifest.good} good, ${manifest.bad} bad${
        changeOn === undefined ? "" : `; orders carry currency and loyalty_points from ${changeOn}`
      }`
    )
  })
).pipe(
  Command.withDescription(
    "Generate realistic daily order files with a few percent of bad lines; the record gains fields mid-range"
  )
)

const generateCustomers = Command.make(
  "generate-customers",
  generatorFlags({ dir: "data/customers", days: 14 }),
  Effect.fnUntraced(function*({ dir, start, days, seed }) {
    const first = yield* checkGeneratorFlags({ start, days })
    const m = yield* CustomerGenerator.generate({ directory: dir, start: first, days, seed })
    yield* Console.log(
      `wrote ${m.days.length} day(s) to ${dir}: ${m.records} records, ${m.good} good, ${m.bad} bad, ${m.changes} changes of ${m.customers.length} customers`
    )
  })
).pipe(Command.withDescription("Generate daily customer change files: late, out-of-order, duplicated changes, deletes"))

const generateEvents = Command.make(
  "generate-events",
  {
    ...generatorFlags({
      dir: "data/events",
      days: 14,
      dirDescription: "Folder to write YYYY-MM-DD.jsonl files to (one per arrival day)"
    }),
    asOf: Flag.String("as-of").pipe(
      Flag.withDescription("Write the folder as it stands at the end of this day (re-delivered files included)"),
      Flag.optional
    )
  },
  Effect.fnUntraced(function*({ dir, start, days, seed, asOf }) {
    const first = yield* checkGeneratorFlags({ start, days }, [["--as-of", Option.getOrUndefined(asOf)]])
    const m = yield* EventGenerator.generate({
      directory: dir,
      start: first,
      days,
      seed,
      asOf: Option.isSome(asOf) ? Partition.makeUnsafe(asOf.value) : undefined
    })
    yield* Console.log(
      `wrote ${m.days.length} day(s) of events to ${dir} as of ${m.asOf}: ${m.records} records, ${m.good} good, ${m.bad} bad`
    )
  })
).pipe(Command.withDescription("Generate daily event files: duplicates, re-sent and late events, deletes, bad lines"))

const serveOrders = Command.make(
  "serve-orders",
  {
    dir: Flag.String("dir").pipe(
      Flag.withDescription("Folder of YYYY-MM-DD.jsonl files"),
      Flag.withDefault("data/orders")
    ),
    port: Flag.Int("port").pipe(Flag.withDescription("Port on 127.0.0.1"), Flag.withDefault(8787)),
    failureRate: Flag.Finite("failure-rate").pipe(
      Flag.withDescription("Share of requests that fail transiently"),
      Flag.withDefault(0)
    ),
    slowMs: Flag.Int("slow-ms").pipe(Flag.withDescription("Delay of a slow answer"), Flag.withDefault(30_000)),
    seed: Flag.Int("seed").pipe(Flag.withDefault(1))
  },
  Effect.fnUntraced(function*({ dir, port, failureRate, slowMs, seed }) {
    if (!(failureRate >= 0 && failureRate <= 1)) {
      return yield* new CliError.InvalidArgument({ message: "--failure-rate must be between 0 and 1" })
    }
    return yield* OrdersServer.run({ directory: dir, port, failureRate, slowMs, seed })
  })
).pipe(Command.withDescription("Serve order files over HTTP (GET /orders?date=D), optionally failing some requests"))

/**
 * @since 0.1.0
 * @category commands
 */
export const root = Command.make("sluice").pipe(
  Command.withDescription("Sluice: typed, idempotent, backfillable data pipelines"),
  Command.withSubcommands([
    pipelines.run,
    pipelines.backfill,
    pipelines.status,
    pipelines.dlq,
    pipelines.ledger,
    pipelines.serve,
    SchemaCommands.make(Registry.layer),
    generateOrders,
    generateCustomers,
    generateEvents,
    serveOrders,
    streaming.stream,
    streaming.replay,
    streaming.publishOrders
  ])
)

/**
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"
