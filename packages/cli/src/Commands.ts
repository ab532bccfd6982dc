/**
 * The `sluice` commands, generic over a registry of pipelines:
 * `run`, `backfill`, `status`, `dlq list|show|replay|discard|purge`, `ledger purge`, `serve`.
 *
 * The commands need the core services (run ledger, dead letter store, partition lock,
 * transactor, backfill executor) and whatever the registered pipelines need; the
 * application's `main` provides them (e.g. from `@sluice/sql`).
 *
 * @since 0.1.0
 */
import {
  AbandonedRuns,
  Alert,
  Backfill,
  Calendar,
  DeadLetter,
  Partition,
  Pipeline,
  ProcessedEventLedger,
  RecordError,
  Replay,
  RunLedger
} from "@sluice/core"
import { SingleBar } from "cli-progress"
import { Clock, Config, Console, Context, Duration, Effect, Layer, Option, Ref, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as CliError from "./CliError.ts"
import type { PipelineEntry, StreamEntry } from "./Registry.ts"
import * as Serve from "./Serve.ts"
import * as Table from "./Table.ts"

/**
 * Exit statuses of the CLI.
 *
 * @since 0.1.0
 * @category models
 */
export const ExitStatus = {
  ok: 0,
  /** A run (or a partition of a backfill) failed. */
  failed: 1,
  /** Bad arguments or configuration. */
  usage: 2,
  /** Every run succeeded but at least one partition's failure rate was above its threshold. */
  alerted: 3
} as const

/**
 * The worse of two exit statuses: a usage error over a failed run, a failed run over an alert
 * (3 means every run succeeded), an alert over success; any other status (interrupted, internal)
 * over these.
 *
 * @since 0.1.0
 * @category models
 */
export const worstExitStatus = (a: number, b: number): number => (severity(a) >= severity(b) ? a : b)

const severity = (code: number): number =>
  code === ExitStatus.ok
    ? 0
    : code === ExitStatus.alerted
    ? 1
    : code === ExitStatus.failed
    ? 2
    : code === ExitStatus.usage
    ? 3
    : 4 + code

/**
 * Where commands record the process's exit status (the worst one wins, see {@link worstExitStatus}).
 *
 * @since 0.1.0
 * @category services
 */
export class ExitCode extends Context.Service<ExitCode, Ref.Ref<number>>()("@sluice/cli/ExitCode") {}

const raise = (code: number) =>
  Effect.flatMap(ExitCode, (ref) => Ref.update(ref, (current) => worstExitStatus(current, code)))

/**
 * The most partitions one backfill runs or `status` shows (100 years of days): a longer range is a
 * typo, not a plan (and `status` would hold a calendar of millions of days).
 */
const maxRangePartitions = 36_525

const checkRangeLength = (start: Partition.PartitionDate, end: Partition.PartitionDate, advice: string) => {
  const days = Partition.daysBetween(start, end) + 1
  return days > maxRangePartitions
    ? Effect.fail(
      new CliError.InvalidArgument({
        message:
          `the range ${start}..${end} has ${days} partitions, more than ${maxRangePartitions} (100 years); ${advice}`
      })
    )
    : Effect.void
}

/** The line `run` and `dlq replay` print on stderr for a run above its failure threshold. */
const alertLine = (name: string, partition: string, failureRate: number, threshold: number) =>
  Console.error(
    `ALERT: ${percent(failureRate)} of ${name} ${partition} was dead-lettered, above the ${
      percent(threshold)
    } threshold`
  )

const parseDate = (flag: string, value: string) =>
  Partition.isDateString(value)
    ? Effect.succeed(Partition.makeUnsafe(value))
    : Effect.fail(
      new CliError.InvalidArgument({
        message: `invalid ${flag} ${JSON.stringify(value)}: expected a calendar date as YYYY-MM-DD`
      })
    )

const ageUnits: Record<string, Duration.Unit> = {
  s: "seconds",
  m: "minutes",
  h: "hours",
  d: "days",
  w: "weeks"
}

/** A year of an age: 365 days (ages are spans of time, not calendar dates: no leap days). */
const daysPerYear = 365

/** The oldest age `dlq purge` and `ledger purge` accept: beyond it a cut-off date is meaningless (or overflows). */
const maxAgeMillis = 1000 * daysPerYear * 24 * 60 * 60 * 1000

/**
 * An age such as `30d`, `12h`, `2 weeks`, `90 minutes` or `5y` (`y`, `year`, `years`: 365 days each), of at
 * most 1000 years.
 */
const parseAge = (flag: string, value: string) => {
  const match = /^\s*(\d+)\s*([a-z]+)\s*$/i.exec(value)
  const word = match === null ? "" : match[2]!.toLowerCase()
  const years = word === "y" || word === "year" || word === "years"
  const unit = years ? "days" : ageUnits[word] ?? word
  if (match === null || Option.isNone(Duration.fromInput(`1 ${unit}` as Duration.Input))) {
    return Effect.fail(
      new CliError.InvalidArgument({
        message: `invalid ${flag} ${JSON.stringify(value)}: expected an age such as 30d, 12h, "2 weeks" or 1y`
      })
    )
  }
  const duration = years
    ? Option.some(Duration.days(Number(match[1]) * daysPerYear))
    : Duration.fromInput(`${Number(match[1])} ${unit}` as Duration.Input)
  const millis = Option.isSome(duration) ? Duration.toMillis(duration.value) : Number.POSITIVE_INFINITY
  return Option.isSome(duration) && Number.isFinite(millis) && millis <= maxAgeMillis
    ? Effect.succeed(duration.value)
    : Effect.fail(
      new CliError.InvalidArgument({ message: `invalid ${flag} ${JSON.stringify(value)}: at most 1000 years` })
    )
}

/**
 * A retention age: `--older-than` when given, else the environment variable `env`, else `fallback`
 * (both parsed by {@link parseAge}; a bad value is a usage error naming where it came from).
 */
const retentionAge = (olderThan: Option.Option<string>, env: string, fallback: string) =>
  Option.isSome(olderThan)
    ? parseAge("--older-than", olderThan.value)
    : Effect.flatMap(
      Config.String(env).pipe(Config.withDefault(fallback)),
      (value) => parseAge(env, value)
    ).pipe(
      Effect.catchTag("ConfigError", (e) => Effect.fail(new CliError.InvalidArgument({ message: e.message })))
    )

const percent = (rate: number) => `${(rate * 100).toFixed(2)}%`
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`

/** A row of the backfill table: a run's counts, or an empty row with the reason it has none. */
const reportRow = (partition: string, status: string, report: Pipeline.RunReport) => [
  partition,
  status,
  report.read,
  report.loaded,
  report.deadLettered,
  percent(report.failureRate),
  report.retries,
  seconds(report.endedAt - report.startedAt),
  ""
]
const emptyRow = (partition: string, status: string, why: string) => [partition, status, "", "", "", "", "", "", why]

const summary = (report: Pipeline.RunReport) =>
  `read ${report.read}, loaded ${report.loaded}, dead-lettered ${report.deadLettered} (${
    percent(report.failureRate)
  }), retries ${report.retries}, ${seconds(report.endedAt - report.startedAt)}`

/**
 * What a `--source` value is when it can be neither a folder nor an http(s) URL (`an empty value`,
 * `a "ftp:" URL`), or `undefined` when it can be one. Whether the folder exists is the run's to find (a mount may come later): a missing one is a
 * failed run, recorded in the ledger.
 */
const sourceProblem = (source: string): string | undefined => {
  if (source.trim() === "") return "an empty value"
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(source)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
    return `a "${scheme}:" URL`
  }
  if (scheme !== undefined && URL.parse(source) === null) return "an unparseable URL"
  return undefined
}

/** `YYYY-MM-DD HH:MM:SS` (UTC) of epoch millis. */
const dateTime = (millis: number) => new Date(millis).toISOString().replace("T", " ").slice(0, 19)

/** ` (lookback of D)` for a run triggered by the lookback of D's run. */
const lookbackNote = (runId: string) => {
  const trigger = Pipeline.triggerOf(runId)
  return trigger._tag === "Lookback" ? ` (lookback of ${trigger.of})` : ""
}

/** The exit status lookback outcomes call for: a failed one fails, an alerted one alerts. */
const lookbackStatus = (outcomes: ReadonlyArray<Pipeline.LookbackOutcome>) =>
  outcomes.some((o) => o._tag === "Failed")
    ? ExitStatus.failed
    : outcomes.some((o) => o._tag === "Succeeded" && o.report.alerted)
    ? ExitStatus.alerted
    : ExitStatus.ok

/**
 * Builds the `sluice` command tree for a registry of pipelines.
 *
 * `options.streams` are stream pipelines, run by commands of their own: the `dlq` commands
 * (`list`, `show`, `discard`, `purge`) work on their dead letters; `run`, `backfill`, `status`,
 * `dlq replay` and `serve --source` refuse them with a usage error naming their commands; `ledger purge`
 * deletes old entries of their processed-event ledger (it needs core's `ProcessedEventLedger` from the layer);
 * `serve` lists them with their dead letters and processed-event ledger, without batch actions.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Commands } from "@sluice/cli"
 *
 * declare const entries: ReadonlyArray<import("@sluice/cli").Registry.PipelineEntry<never>>
 * // the layer (e.g. the database) is built only once a command's arguments are valid
 * const cli = Commands.make(entries, Layer.empty)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R, ROut, LE, LR>(
  entries: ReadonlyArray<PipelineEntry<R>>,
  layer: Layer.Layer<ROut, LE, LR>,
  options: { readonly streams?: ReadonlyArray<StreamEntry<R>> | undefined } = {}
) => {
  const streams = options.streams ?? []
  const known = [...entries.map((e) => e.name), ...streams.map((e) => e.name)]
  /** Arguments are checked first; only then is the database opened (the layer built). */
  const withServices = <A, E, R2>(effect: Effect.Effect<A, E, R2>) => Effect.provide(effect, layer)

  /** A batch pipeline, for `command`: a stream pipeline is a usage error naming its own commands. */
  const lookup = (name: string, command: string) => {
    const found = entries.find((e) => e.name === name)
    if (found !== undefined) return Effect.succeed(found)
    const stream = streams.find((e) => e.name === name)
    return stream === undefined
      ? Effect.fail(new CliError.UnknownPipeline({ name, known }))
      : Effect.fail(
        new CliError.InvalidArgument({
          message: command === "dlq replay"
            ? `${name} is a stream pipeline: dlq replay re-runs batch partitions; reprocess the stream (its dead letters included) with ${stream.replay}`
            : `${name} is a stream pipeline: ${command} works on batch pipelines only; use ${stream.consume} or ${stream.replay}`
        })
      )
  }

  /** A pipeline whose dead letters the `dlq` commands handle: a batch one or a stream one. */
  const lookupDeadLetters = (name: string): Effect.Effect<
    { readonly name: string; readonly setup: Effect.Effect<void, unknown, R> },
    CliError.UnknownPipeline
  > => {
    const found = entries.find((e) => e.name === name) ?? streams.find((e) => e.name === name)
    return found === undefined
      ? Effect.fail(new CliError.UnknownPipeline({ name, known }))
      : Effect.succeed(found)
  }

  const open = Effect.fnUntraced(function*(entry: PipelineEntry<R>, source: Option.Option<string>) {
    const pipeline = yield* entry.make(Option.getOrElse(source, () => entry.defaultSource))
    yield* entry.setup
    return pipeline
  })

  const pipelineArg = Argument.String("pipeline").pipe(
    Argument.withDescription(`The pipeline: ${entries.map((e) => e.name).join(", ")}`)
  )
  const deadLetterPipelineArg = Argument.String("pipeline").pipe(
    Argument.withDescription(`The pipeline (batch or stream): ${known.join(", ")}`)
  )
  const sourceFlag = Flag.String("source").pipe(
    Flag.withDescription("Where to read: a folder of YYYY-MM-DD.jsonl files or an http(s) URL"),
    Flag.filter(
      (source) => sourceProblem(source) === undefined,
      (source) => `a folder or an http(s) URL, not ${sourceProblem(source)}`
    ),
    Flag.optional
  )

  const run = Command.make(
    "run",
    {
      pipeline: pipelineArg,
      date: Flag.String("date").pipe(Flag.withDescription("The partition to run (YYYY-MM-DD)")),
      source: sourceFlag
    },
    Effect.fnUntraced(function*({ pipeline: name, date, source }) {
      const partition = yield* parseDate("--date", date)
      const entry = yield* lookup(name, "run")
      return yield* withServices(Effect.gen(function*() {
        const pipeline = yield* open(entry, source)
        const result = yield* Effect.result(Pipeline.run(pipeline, partition))
        if (Result.isFailure(result)) {
          yield* Console.error(`${name} ${partition} FAILED: ${result.failure._tag}: ${result.failure.message}`)
          return yield* raise(ExitStatus.failed)
        }
        const report = result.success
        for (const o of report.lookback) {
          const label = `${name} ${o.partition} (lookback of ${partition})`
          if (o._tag === "Succeeded") yield* Console.log(`${label}: ${summary(o.report)}`)
          else if (o._tag === "Skipped") yield* Console.log(`${label}: skipped, ${o.reason}`)
          else yield* Console.error(`${label} FAILED: ${o.errorType}: ${o.error}`)
        }
        yield* raise(lookbackStatus(report.lookback))
        yield* Console.log(`${name} ${partition}: ${summary(report)}`)
        if (report.alerted) {
          yield* alertLine(name, partition, report.failureRate, pipeline.failureThreshold)
          yield* raise(ExitStatus.alerted)
        }
      }))
    }, Effect.provideService(Alert.Reported, true)) // the report's alert is printed below
  ).pipe(Command.withDescription("Run a pipeline for one partition (date)"))

  const backfill = Command.make(
    "backfill",
    {
      pipeline: pipelineArg,
      start: Flag.String("start").pipe(
        Flag.withDescription("First date (YYYY-MM-DD); the pipeline's start date when omitted"),
        Flag.optional
      ),
      end: Flag.String("end").pipe(Flag.withDescription("Last date (YYYY-MM-DD), included")),
      concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("Partitions run at once"), Flag.withDefault(2)),
      onlyFailed: Flag.Boolean("only-failed").pipe(
        Flag.withDescription("Re-run only partitions whose latest run failed"),
        Flag.withDefault(false)
      ),
      missing: Flag.Boolean("missing").pipe(
        Flag.withDescription("Run only partitions that never succeeded"),
        Flag.withDefault(false)
      ),
      dryRun: Flag.Boolean("dry-run").pipe(
        Flag.withDescription("Print the plan, run nothing"),
        Flag.withDefault(false)
      ),
      source: sourceFlag
    },
    Effect.fnUntraced(function*(args) {
      const entry = yield* lookup(args.pipeline, "backfill")
      const start = Option.isSome(args.start) ? yield* parseDate("--start", args.start.value) : entry.startDate
      if (start === undefined) {
        return yield* new CliError.InvalidArgument({
          message: `--start is required: ${entry.name} declares no start date`
        })
      }
      const end = yield* parseDate("--end", args.end)
      if (end < start) {
        return yield* new CliError.InvalidArgument({ message: `--end ${end} is before --start ${start}` })
      }
      yield* checkRangeLength(start, end, "split it, or check --start and --end")
      if (args.concurrency < 1 || args.concurrency > 64) {
        return yield* new CliError.InvalidArgument({
          message: `--concurrency must be between 1 and 64, got ${args.concurrency}`
        })
      }
      if (args.onlyFailed && args.missing) {
        return yield* new CliError.InvalidArgument({ message: "--only-failed and --missing cannot be combined" })
      }
      return yield* withServices(Effect.gen(function*() {
        const pipeline = yield* open(entry, args.source)
        const ledger = yield* RunLedger.RunLedger
        const mode: Backfill.Mode = args.onlyFailed ? "only-failed" : args.missing ? "missing" : "all"
        // a run left running by a dead process is failed (Abandoned), so it is planned again
        yield* AbandonedRuns.close(pipeline.name)
        const latestRuns = yield* ledger.latest(pipeline.name)
        const partitions = Backfill.plan({ start, end, mode, latestRuns })
        // lookback only for dates the backfill does not run itself: each date is built once
        const lookback = Pipeline.lookbackPlan(pipeline, partitions)
        if (args.dryRun) {
          yield* Console.log(
            `plan (${mode}): ${partitions.length} partition(s) of ${pipeline.name}, concurrency ${args.concurrency}`
          )
          // a lookback date never run before is skipped by the run (lookback rebuilds, it does not backfill)
          const ran = new Set<string>(latestRuns.map((r) => r.partition))
          for (const p of partitions) {
            const dates = lookback.get(p) ?? []
            const rebuilt = dates.filter((d) => ran.has(d))
            const skipped = dates.filter((d) => !ran.has(d))
            const notes = [
              ...(rebuilt.length === 0 ? [] : [`after its lookback: ${rebuilt.join(", ")}`]),
              ...(skipped.length === 0 ? [] : [`lookback skips, never run: ${skipped.join(", ")}`])
            ]
            yield* Console.log(`  ${p}${notes.length === 0 ? "" : ` (${notes.join("; ")})`}`)
          }
          return
        }
        if (partitions.length === 0) {
          yield* Console.log(`nothing to run: no partition of ${start}..${end} matches ${mode}`)
          return
        }
        const bar = new SingleBar({
          format: `${pipeline.name} {bar} {value}/{total} partitions | {eta_formatted} left | {last}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false
        })
        const executor = yield* Backfill.Backfill
        const finished: Array<Backfill.PartitionOutcome> = []
        const report = yield* Effect.acquireUseRelease(
          Effect.sync(() => bar.start(partitions.length, 0, { last: "" })),
          () =>
            executor.run({
              pipeline: pipeline.name,
              partitions,
              concurrency: args.concurrency,
              runPartition: (p) => Pipeline.run(pipeline, p, { lookback: lookback.get(p) }),
              onOutcome: (o) =>
                Effect.sync(() => {
                  finished.push(o)
                  bar.increment({ last: `${o.partition} ${o._tag.toLowerCase()}` })
                })
            }),
          () => Effect.sync(() => bar.stop())
        ).pipe(
          // Ctrl-C or SIGTERM: what was done, and how to go on (the runs in hand roll back, recorded failed)
          Effect.onInterrupt(() => {
            const succeeded = finished.filter((o) => o._tag === "Succeeded").length
            return Console.error(
              `interrupted: ${finished.length} of ${partitions.length} partition(s) finished (${succeeded} succeeded, ${
                finished.length - succeeded
              } failed); the runs in hand were rolled back and recorded failed (Interrupted), the rest not run; resume with: pnpm sluice backfill ${pipeline.name} --start ${start} --end ${end} --missing`
            )
          })
        )
        yield* Console.log(Table.format(
          ["date", "status", "read", "loaded", "dead", "rate", "retries", "time", "error"],
          report.outcomes.flatMap((o) => [
            ...(o._tag === "Succeeded" ? o.report.lookback : []).map((l) =>
              l._tag === "Succeeded"
                ? reportRow(l.partition, `${l.report.alerted ? "ALERT" : "ok"}, lookback of ${o.partition}`, l.report)
                : l._tag === "Skipped"
                ? emptyRow(l.partition, `skipped, lookback of ${o.partition}`, l.reason)
                : emptyRow(
                  l.partition,
                  `FAILED, lookback of ${o.partition}`,
                  `${l.errorType}: ${Table.truncate(l.error, 80)}`
                )
            ),
            o._tag === "Succeeded"
              ? reportRow(o.partition, o.report.alerted ? "ALERT" : "ok", o.report)
              : emptyRow(o.partition, "FAILED", `${o.errorType}: ${Table.truncate(o.error, 80)}`)
          ])
        ))
        yield* Console.log(
          `${report.succeeded} succeeded (${report.alerted} alerted), ${report.failed} failed of ${partitions.length}`
        )
        const lookbacks = report.outcomes.flatMap((o) => o._tag === "Succeeded" ? o.report.lookback : [])
        if (lookbacks.length > 0) {
          const count = (tag: Pipeline.LookbackOutcome["_tag"]) => lookbacks.filter((l) => l._tag === tag).length
          yield* Console.log(
            `lookback: ${count("Succeeded")} rebuilt, ${count("Failed")} failed, ${
              count("Skipped")
            } skipped (never run)`
          )
        }
        yield* raise(lookbackStatus(lookbacks))
        if (report.failed > 0) yield* raise(ExitStatus.failed)
        else if (report.alerted > 0) yield* raise(ExitStatus.alerted)
      }))
    }, Effect.provideService(Alert.Reported, true)) // the report's alert is printed below
  ).pipe(Command.withDescription("Run a pipeline over a date range, partition by partition"))

  const status = Command.make(
    "status",
    {
      pipeline: pipelineArg,
      since: Flag.String("since").pipe(
        Flag.withDescription("First date (YYYY-MM-DD); the pipeline's start date when omitted"),
        Flag.optional
      ),
      until: Flag.String("until").pipe(
        Flag.withDescription("Last date (YYYY-MM-DD); the last complete day (yesterday, UTC) when omitted"),
        Flag.optional
      )
    },
    Effect.fnUntraced(function*({ pipeline: name, since, until }) {
      const entry = yield* lookup(name, "status")
      const sinceDate = Option.isSome(since) ? yield* parseDate("--since", since.value) : undefined
      const untilDate = Option.isSome(until) ? yield* parseDate("--until", until.value) : undefined
      const end = untilDate ?? (yield* Calendar.lastCompleteDay)
      const emptyRange = (start: Partition.PartitionDate) =>
        new CliError.InvalidArgument({
          message: `the range ${start}..${end} is empty${
            untilDate === undefined ? ` (--until defaults to the last complete day, ${end})` : ""
          }`
        })
      // a range known without the ledger is checked before the database is opened
      const knownStart = sinceDate ?? entry.startDate
      if (knownStart !== undefined && end < knownStart) return yield* emptyRange(knownStart)
      const tooLong = (start: Partition.PartitionDate) =>
        checkRangeLength(start, end, "narrow it with --since and --until")
      if (knownStart !== undefined) yield* tooLong(knownStart)
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const ledger = yield* RunLedger.RunLedger
        // a run left running by a dead process shows failed (Abandoned), not running forever
        yield* AbandonedRuns.close(name)
        const runs = yield* ledger.list(name)
        const firstRun = runs.reduce<Partition.PartitionDate | undefined>(
          (first, r) => first === undefined || r.partition < first ? r.partition : first,
          undefined
        )
        const start = sinceDate ?? entry.startDate ?? firstRun
        if (start === undefined) {
          yield* Console.log(`${name}: no runs yet, and no start date declared (use --since)`)
          return
        }
        if (end < start) return yield* emptyRange(start)
        yield* tooLong(start)
        const days = Calendar.make({ start, end, runs })
        const rows: Array<ReadonlyArray<string | number>> = []
        for (let i = 0; i < days.length;) {
          const day = days[i]!
          const r = day.latest
          if (r === undefined) {
            // a gap of missing days is one row
            let j = i
            while (j + 1 < days.length && days[j + 1]!.state === "missing") j++
            const label = j === i ? day.partition : `${day.partition}..${days[j]!.partition}`
            rows.push([label, "missing", "", "", "", "", "", 0, "", j === i ? "" : `${j - i + 1} days`])
            i = j + 1
            continue
          }
          rows.push([
            day.partition,
            day.state,
            r.read,
            r.loaded,
            r.deadLettered,
            percent(r.failureRate),
            r.alerted ? "yes" : "",
            day.runs,
            dateTime(r.startedAt) + lookbackNote(r.runId),
            r.error === undefined ? "" : Table.truncate(`${r.errorType}: ${r.error}`, 60)
          ])
          i++
        }
        yield* Console.log(
          Table.format(["date", "status", "read", "loaded", "dead", "rate", "alert", "runs", "last run", "error"], rows)
        )
        // a failed (or still running) run changed nothing: the data in place is its last successful run's
        const serving = days.flatMap((d) =>
          d.state !== "done" && d.lastSucceeded !== undefined
            ? [{ partition: d.partition, state: d.state, run: d.lastSucceeded }]
            : []
        )
        if (serving.length > 0) {
          yield* Console.log(
            `data in place of the partitions not done (a failed or unfinished run leaves the previous data):`
          )
          for (const { partition, state, run } of serving) {
            yield* Console.log(
              `  ${partition} ${state}: serving its ${
                dateTime(run.startedAt)
              } run (read ${run.read}, loaded ${run.loaded}, dead-lettered ${run.deadLettered})`
            )
          }
        }
        const total = Calendar.summarize(days)
        yield* Console.log(
          `${name} ${start}..${end}: ${total.partitions} partition(s): ${total.done} done, ${total.failed} failed, ${total.running} running, ${total.missing} missing; read ${total.read}, loaded ${total.loaded}, dead-lettered ${total.deadLettered} (${
            percent(total.failureRate)
          }), ${total.alerted} alerted`
        )
        if (total.missing + total.failed > 0) {
          yield* Console.log(
            `catch up: pnpm sluice backfill ${name} --start ${start} --end ${end} --missing (--dry-run for the plan)`
          )
        }
      }))
    })
  ).pipe(
    Command.withDescription(
      "Show every partition from the start date to the last complete day: done, failed, running or missing"
    )
  )

  const statusFlag = Flag.String("status").pipe(
    Flag.withDescription("Only dead letters with this status: new, replayed, discarded or all"),
    Flag.withDefault("new")
  )
  const parseStatus = (value: string) =>
    value === "all"
      ? Effect.succeed(DeadLetter.statuses)
      : DeadLetter.statuses.includes(value as DeadLetter.Status)
      ? Effect.succeed([value as DeadLetter.Status])
      : Effect.fail(
        new CliError.InvalidArgument({
          message: `invalid --status ${JSON.stringify(value)}: expected new, replayed, discarded or all`
        })
      )
  const selectionFlags = {
    date: Flag.String("date").pipe(Flag.withDescription("Only this partition"), Flag.optional),
    errorType: Flag.String("error-type").pipe(
      Flag.withDescription("Only this error type, e.g. InvalidJson"),
      Flag.optional
    ),
    id: Flag.String("id").pipe(Flag.withDescription("Only this dead letter (its id)"), Flag.optional)
  }
  const parseId = (what: string, value: string) =>
    /^\d{1,18}$/.test(value)
      ? Effect.succeed(value)
      : Effect.fail(
        new CliError.InvalidArgument({
          message: `invalid ${what} ${JSON.stringify(value)}: expected a dead letter's id (a number)`
        })
      )
  /** A dead letter's error type is a record error's tag: another value would select nothing, silently. */
  const parseErrorType = (value: string) => {
    if (RecordError.isErrorType(value)) return Effect.succeed(value)
    const alike = RecordError.errorTypes.find((t) => t.toLowerCase() === value.trim().toLowerCase())
    return Effect.fail(
      new CliError.InvalidArgument({
        message: `invalid --error-type ${JSON.stringify(value)}: ${
          alike === undefined ? "" : `did you mean ${alike}? `
        }expected one of ${RecordError.errorTypes.join(", ")}`
      })
    )
  }
  const parseSelection = Effect.fnUntraced(function*(flags: {
    readonly date: Option.Option<string>
    readonly errorType: Option.Option<string>
    readonly id: Option.Option<string>
  }) {
    if (Option.isSome(flags.id)) yield* parseId("--id", flags.id.value)
    if (Option.isSome(flags.errorType)) yield* parseErrorType(flags.errorType.value)
    return {
      partition: Option.isSome(flags.date) ? yield* parseDate("--date", flags.date.value) : undefined,
      errorType: Option.getOrUndefined(flags.errorType),
      ids: Option.isSome(flags.id) ? [flags.id.value] : undefined
    } satisfies DeadLetter.Selection
  })

  const dlqList = Command.make(
    "list",
    {
      pipeline: deadLetterPipelineArg,
      ...selectionFlags,
      status: statusFlag,
      limit: Flag.Int("limit").pipe(Flag.withDescription("At most this many dead letters"), Flag.withDefault(50))
    },
    Effect.fnUntraced(function*({ pipeline: name, limit, ...flags }) {
      const entry = yield* lookupDeadLetters(name)
      const selection = yield* parseSelection(flags)
      const status = yield* parseStatus(flags.status)
      if (limit < 1) return yield* new CliError.InvalidArgument({ message: `--limit must be at least 1, got ${limit}` })
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const store = yield* DeadLetter.DeadLetterStore
        // the header counts what the filters select, as the list below does
        const counts = yield* store.countByType(name, { ...selection, status })
        const total = counts.reduce((n, c) => n + c.count, 0)
        const partition = selection.partition
        const filters = [
          ...(flags.status === "new" ? [] : [`status ${flags.status}`]),
          ...(selection.errorType === undefined ? [] : [`error type ${selection.errorType}`]),
          ...(selection.ids === undefined ? [] : [`id ${selection.ids.join(", ")}`])
        ]
        yield* Console.log(
          `${total} dead letter(s) for ${name}${partition === undefined ? "" : ` ${partition}`}${
            filters.length === 0 ? "" : ` (${filters.join(", ")})`
          }`
        )
        if (total > 0) {
          yield* Console.log(Table.format(["error type", "count"], counts.map((c) => [c.errorType, c.count])))
        }
        const letters = yield* store.list(name, { ...selection, status, limit: limit + 1 })
        if (letters.length === 0) return
        yield* Console.log("")
        yield* Console.log(Table.format(
          ["id", "date", "line", "status", "attempts", "error type", "error", "original record"],
          letters.slice(0, limit).map((d) => [
            d.id,
            d.partition,
            d.position,
            d.status,
            d.attempts,
            d.errorType,
            Table.truncate(Table.oneLine(d.error), 60),
            Table.truncate(d.originalRecord, 60)
          ])
        ))
        if (letters.length > limit) yield* Console.log(`… more (use --limit)`)
      }))
    })
  ).pipe(Command.withDescription("List dead letters with their status, attempts and error types"))

  const dlqShow = Command.make(
    "show",
    {
      pipeline: deadLetterPipelineArg,
      id: Argument.String("id").pipe(Argument.withDescription("The dead letter's id")),
      raw: Flag.Boolean("raw").pipe(
        Flag.withDescription(
          "Print the original record and error as stored, control characters included (default: shown as escapes)"
        ),
        Flag.withDefault(false)
      )
    },
    Effect.fnUntraced(function*({ pipeline: name, id, raw }) {
      const entry = yield* lookupDeadLetters(name)
      yield* parseId("id", id)
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const found = yield* (yield* DeadLetter.DeadLetterStore).get(name, id)
        if (Option.isNone(found)) {
          return yield* new CliError.InvalidArgument({ message: `${name} has no dead letter ${JSON.stringify(id)}` })
        }
        const d = found.value
        // a payload is data from outside: its terminal escapes are shown, not obeyed
        const shown = raw ? (text: string) => text : Table.showInvisible
        yield* Console.log(
          [
            `id:          ${d.id}`,
            `pipeline:    ${d.pipeline}`,
            `partition:   ${d.partition}`,
            `position:    ${d.position}`,
            `stage:       ${d.stage}`,
            `status:      ${d.status}`,
            `attempts:    ${d.attempts}`,
            `failed at:   ${new Date(d.failedAt).toISOString()}`,
            `run:         ${d.runId}`,
            `error type:  ${d.errorType}`,
            `error:`,
            shown(d.error),
            `original record:`,
            shown(d.originalRecord)
          ].join("\n")
        )
      }))
    })
  ).pipe(Command.withDescription("Show one dead letter: its full original payload and error"))

  const dlqReplay = Command.make(
    "replay",
    { pipeline: pipelineArg, ...selectionFlags, source: sourceFlag },
    Effect.fnUntraced(function*({ pipeline: name, source, ...flags }) {
      const entry = yield* lookup(name, "dlq replay")
      const selection = yield* parseSelection(flags)
      return yield* withServices(Effect.gen(function*() {
        const pipeline = yield* open(entry, source)
        const report = yield* Replay.run(pipeline, selection)
        if (report.selected === 0) {
          yield* Console.log(`nothing to replay: no new dead letter of ${name} matches`)
          return
        }
        yield* Console.log(Table.format(
          ["date", "selected", "replayed", "still failing", "rebuilt", "read", "loaded", "dead", "error"],
          report.partitions.map((p) => [
            p.partition,
            p.selected,
            p.replayed,
            p.stillFailing,
            p.failure !== undefined ? "FAILED" : p.rebuilt ? "yes" : "no",
            p.run?.read ?? "",
            p.run?.loaded ?? "",
            p.run?.deadLettered ?? "",
            p.failure === undefined ? "" : `${p.failure.errorType}: ${Table.truncate(p.failure.error, 60)}`
          ])
        ))
        yield* Console.log(
          `${report.replayed} replayed, ${report.stillFailing} still failing of ${report.selected} selected; ${
            report.partitions.filter((p) => p.rebuilt).length
          } partition(s) rebuilt, ${report.failed} failed`
        )
        // a rebuild is an ordinary run: its alert is reported, and exits 3, as `run`'s
        const alerted = report.partitions.flatMap((p) => p.run?.alerted === true ? [p.run] : [])
        for (const run of alerted) {
          yield* alertLine(name, run.partition, run.failureRate, pipeline.failureThreshold)
        }
        if (report.failed > 0) yield* raise(ExitStatus.failed)
        else if (alerted.length > 0) yield* raise(ExitStatus.alerted)
      }))
    }, Effect.provideService(Alert.Reported, true)) // the rebuilds' alerts are printed above
  ).pipe(
    Command.withDescription(
      "Re-decode dead letters with the current code; rebuild the partitions of those that now pass"
    )
  )

  const dlqDiscard = Command.make(
    "discard",
    { pipeline: deadLetterPipelineArg, ...selectionFlags },
    Effect.fnUntraced(function*({ pipeline: name, ...flags }) {
      const entry = yield* lookupDeadLetters(name)
      const selection = yield* parseSelection(flags)
      if (selection.partition === undefined && selection.errorType === undefined && selection.ids === undefined) {
        return yield* new CliError.InvalidArgument({
          message: "discard needs --date, --error-type or --id (it never discards everything by default)"
        })
      }
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const n = yield* (yield* DeadLetter.DeadLetterStore).discard(name, selection)
        yield* Console.log(`${n} dead letter(s) of ${name} discarded (kept for audit, excluded from counts)`)
      }))
    })
  ).pipe(Command.withDescription("Mark dead letters discarded: kept for audit, excluded from counts and replays"))

  const dlqPurge = Command.make(
    "purge",
    {
      pipeline: Argument.String("pipeline").pipe(
        Argument.withDescription("Only this pipeline (all pipelines when omitted)"),
        Argument.optional
      ),
      olderThan: Flag.String("older-than").pipe(
        Flag.withDescription(
          "Age of the last failure, e.g. 30d, 12h, \"2 weeks\", 1y (a year is 365 days; at most 1000 years) " +
            "(default: SLUICE_DLQ_RETENTION, 30d)"
        ),
        Flag.optional
      ),
      includeNew: Flag.Boolean("include-new").pipe(
        Flag.withDescription("Purge new dead letters too, not only replayed and discarded ones"),
        Flag.withDefault(false)
      )
    },
    Effect.fnUntraced(function*({ pipeline, olderThan, includeNew }) {
      if (Option.isSome(pipeline)) yield* lookupDeadLetters(pipeline.value)
      const age = yield* retentionAge(olderThan, "SLUICE_DLQ_RETENTION", "30d")
      return yield* withServices(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const statuses: ReadonlyArray<DeadLetter.Status> = includeNew
          ? DeadLetter.statuses
          : ["replayed", "discarded"]
        const n = yield* (yield* DeadLetter.DeadLetterStore).purge({
          pipeline: Option.getOrUndefined(pipeline),
          before: now - Duration.toMillis(age),
          statuses
        })
        yield* Console.log(
          `${n} ${statuses.join("/")} dead letter(s)${
            Option.isSome(pipeline) ? ` of ${pipeline.value}` : ""
          } older than ${Duration.format(age)} purged`
        )
      }))
    })
  ).pipe(Command.withDescription("Delete dead letters by age (retention: --older-than or SLUICE_DLQ_RETENTION)"))

  const dlq = Command.make("dlq").pipe(
    Command.withDescription("Dead letter queue tools"),
    Command.withSubcommands([dlqList, dlqShow, dlqReplay, dlqDiscard, dlqPurge])
  )

  const ledgerPurge = Command.make(
    "purge",
    {
      pipeline: Argument.String("pipeline").pipe(
        Argument.withDescription("Only this stream pipeline, its business keys included (all when omitted)"),
        Argument.optional
      ),
      olderThan: Flag.String("older-than").pipe(
        Flag.withDescription(
          "Age of the claim, e.g. 90d, \"26 weeks\", 1y (a year is 365 days; at most 1000 years) " +
            "(default: SLUICE_LEDGER_RETENTION, 90d); keep it longer " +
            "than the stream's redelivery horizon: a purged event id is processed again if redelivered"
        ),
        Flag.optional
      )
    },
    Effect.fnUntraced(function*({ pipeline, olderThan }) {
      if (Option.isSome(pipeline) && !streams.some((e) => e.name === pipeline.value)) {
        const name = pipeline.value
        return yield* entries.some((e) => e.name === name)
          ? new CliError.InvalidArgument({
            message: `${name} is a batch pipeline: ledger purge works on stream pipelines only`
          })
          : new CliError.UnknownPipeline({ name, known: streams.map((e) => e.name) })
      }
      const age = yield* retentionAge(olderThan, "SLUICE_LEDGER_RETENTION", "90d")
      return yield* withServices(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const n = yield* (yield* ProcessedEventLedger.ProcessedEventLedger).purge(
          Option.getOrUndefined(pipeline),
          new Date(now - Duration.toMillis(age))
        )
        yield* Console.log(
          `${n} processed-event ledger row(s)${Option.isSome(pipeline) ? ` of ${pipeline.value}` : ""} older than ${
            Duration.format(age)
          } purged`
        )
      }))
    })
  ).pipe(Command.withDescription(
    "Delete processed-event ledger entries of stream pipelines by age (retention: --older-than or " +
      "SLUICE_LEDGER_RETENTION)"
  ))

  const ledger = Command.make("ledger").pipe(
    Command.withDescription("Processed-event ledger tools (the event ids and keys stream pipelines applied)"),
    Command.withSubcommands([ledgerPurge])
  )

  const serve = Command.make(
    "serve",
    {
      port: Flag.Int("port").pipe(Flag.withDescription("Port to listen on"), Flag.withDefault(9464)),
      host: Flag.String("host").pipe(Flag.withDescription("Address to bind"), Flag.withDefault("127.0.0.1")),
      source: Flag.String("source").pipe(
        Flag.withDescription(
          "Where a pipeline's re-runs and replays read: PIPELINE=LOCATION, as run --source (repeatable; " +
            "the pipeline's default source otherwise)"
        ),
        Flag.atLeast(0)
      )
    },
    Effect.fnUntraced(function*({ host, port, source }) {
      if (port < 0 || port > 65_535) {
        return yield* new CliError.InvalidArgument({ message: `--port must be between 0 and 65535, got ${port}` })
      }
      const sources = new Map<string, string>()
      for (const value of source) {
        const at = value.indexOf("=")
        if (at <= 0 || at === value.length - 1) {
          return yield* new CliError.InvalidArgument({
            message: `invalid --source ${JSON.stringify(value)}: expected PIPELINE=LOCATION`
          })
        }
        const entry = yield* lookup(value.slice(0, at), "serve --source")
        if (sources.has(entry.name)) {
          return yield* new CliError.InvalidArgument({ message: `--source given twice for ${entry.name}` })
        }
        sources.set(entry.name, value.slice(at + 1))
      }
      return yield* withServices(Effect.gen(function*() {
        for (const entry of [...entries, ...streams]) yield* entry.setup
        const context = yield* Effect.context<R | Pipeline.Services | ProcessedEventLedger.ProcessedEventLedger>()
        const pipelines = entries.map((entry): Serve.ServedPipeline => {
          const source = Option.fromUndefinedOr(sources.get(entry.name))
          return {
            name: entry.name,
            description: entry.description,
            startDate: entry.startDate,
            rerun: (partition) =>
              Effect.provideContext(
                Effect.flatMap(open(entry, source), (pipeline) => Pipeline.run(pipeline, partition)),
                context
              ),
            replay: (partition) =>
              Effect.provideContext(
                Effect.flatMap(open(entry, source), (pipeline) => Replay.run(pipeline, { partition })),
                context
              )
          }
        })
        // stream pipelines are listed with their dead letters and processed-event ledger, without batch actions
        const served = streams.map((entry): Serve.ServedStream => ({
          name: entry.name,
          description: entry.description,
          consume: entry.consume,
          replay: entry.replay,
          processed: Effect.provideContext(
            Effect.flatMap(ProcessedEventLedger.ProcessedEventLedger, (ledger) => ledger.summary(entry.name)),
            context
          )
        }))
        return yield* Layer.launch(Serve.layer({ pipelines, streams: served, port, host }))
      }))
    })
  ).pipe(
    Command.withDescription(
      "Serve the dashboard at / and Prometheus metrics at /metrics (records, dead letters, runs per pipeline)"
    )
  )

  return { run, backfill, status, dlq, ledger, serve }
}
