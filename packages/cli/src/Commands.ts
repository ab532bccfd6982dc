/**
 * The `sluice` commands, generic over a registry of pipelines:
 * `run`, `backfill`, `status`, `dlq list`.
 *
 * The commands need the core services (run ledger, dead letter store, partition lock,
 * transactor, backfill executor) and whatever the registered pipelines need; the
 * application's `main` provides them (e.g. from `@sluice/sql`).
 *
 * @since 0.1.0
 */
import { Backfill, DeadLetter, Partition, Pipeline, RunLedger } from "@sluice/core"
import { SingleBar } from "cli-progress"
import { Console, Context, Effect, type Layer, Option, Ref, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as CliError from "./CliError.ts"
import type { PipelineEntry } from "./Registry.ts"
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
 * Where commands record the process's exit status (the worst one wins).
 *
 * @since 0.1.0
 * @category services
 */
export class ExitCode extends Context.Service<ExitCode, Ref.Ref<number>>()("@sluice/cli/ExitCode") {}

const raise = (code: number) =>
  Effect.flatMap(ExitCode, (ref) => Ref.update(ref, (current) => code === 0 ? current : Math.max(current, code)))

const parseDate = (flag: string, value: string) =>
  Partition.isDateString(value)
    ? Effect.succeed(Partition.makeUnsafe(value))
    : Effect.fail(
      new CliError.InvalidArgument({
        message: `invalid ${flag} ${JSON.stringify(value)}: expected a calendar date as YYYY-MM-DD`
      })
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
  layer: Layer.Layer<ROut, LE, LR>
) => {
  /** Arguments are checked first; only then is the database opened (the layer built). */
  const withServices = <A, E, R2>(effect: Effect.Effect<A, E, R2>) => Effect.provide(effect, layer)

  const lookup = (name: string) => {
    const found = entries.find((e) => e.name === name)
    return found === undefined
      ? Effect.fail(new CliError.UnknownPipeline({ name, known: entries.map((e) => e.name) }))
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
  const sourceFlag = Flag.String("source").pipe(
    Flag.withDescription("Where to read: a folder of YYYY-MM-DD.jsonl files or an http(s) URL"),
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
      const entry = yield* lookup(name)
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
          yield* Console.error(
            `ALERT: ${percent(report.failureRate)} of ${name} ${partition} was dead-lettered, above the ${
              percent(pipeline.failureThreshold)
            } threshold`
          )
          yield* raise(ExitStatus.alerted)
        }
      }))
    })
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
      const entry = yield* lookup(args.pipeline)
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
        const partitions = Backfill.plan({ start, end, mode, latestRuns: yield* ledger.latest(pipeline.name) })
        // lookback only for dates the backfill does not run itself: each date is built once
        const lookback = Pipeline.lookbackPlan(pipeline, partitions)
        if (args.dryRun) {
          yield* Console.log(
            `plan (${mode}): ${partitions.length} partition(s) of ${pipeline.name}, concurrency ${args.concurrency}`
          )
          for (const p of partitions) {
            const dates = lookback.get(p) ?? []
            yield* Console.log(`  ${p}${dates.length === 0 ? "" : ` (after its lookback: ${dates.join(", ")})`}`)
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
        const report = yield* Effect.acquireUseRelease(
          Effect.sync(() => bar.start(partitions.length, 0, { last: "" })),
          () =>
            executor.run({
              pipeline: pipeline.name,
              partitions,
              concurrency: args.concurrency,
              runPartition: (p) => Pipeline.run(pipeline, p, { lookback: lookback.get(p) }),
              onOutcome: (o) => Effect.sync(() => bar.increment({ last: `${o.partition} ${o._tag.toLowerCase()}` }))
            }),
          () => Effect.sync(() => bar.stop())
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
    })
  ).pipe(Command.withDescription("Run a pipeline over a date range, partition by partition"))

  const status = Command.make(
    "status",
    { pipeline: pipelineArg },
    Effect.fnUntraced(function*({ pipeline: name }) {
      const entry = yield* lookup(name)
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const ledger = yield* RunLedger.RunLedger
        const latest = yield* ledger.latest(name)
        if (latest.length === 0) {
          yield* Console.log(`${name}: no runs yet`)
          return
        }
        const runs = yield* ledger.list(name)
        const attempts = new Map<string, number>()
        for (const r of runs) attempts.set(r.partition, (attempts.get(r.partition) ?? 0) + 1)
        yield* Console.log(Table.format(
          ["date", "status", "read", "loaded", "dead", "rate", "alert", "runs", "last run", "error"],
          latest.map((r) => [
            r.partition,
            r.status,
            r.read,
            r.loaded,
            r.deadLettered,
            percent(r.failureRate),
            r.alerted ? "yes" : "",
            attempts.get(r.partition) ?? 0,
            new Date(r.startedAt).toISOString().replace("T", " ").slice(0, 19) + lookbackNote(r.runId),
            r.error === undefined ? "" : Table.truncate(`${r.errorType}: ${r.error}`, 60)
          ])
        ))
      }))
    })
  ).pipe(Command.withDescription("Show the latest run of every partition of a pipeline"))

  const dlqList = Command.make(
    "list",
    {
      pipeline: pipelineArg,
      date: Flag.String("date").pipe(Flag.withDescription("Only this partition"), Flag.optional),
      limit: Flag.Int("limit").pipe(Flag.withDescription("At most this many dead letters"), Flag.withDefault(50))
    },
    Effect.fnUntraced(function*({ pipeline: name, date, limit }) {
      const entry = yield* lookup(name)
      const partition = Option.isSome(date) ? yield* parseDate("--date", date.value) : undefined
      if (limit < 1) return yield* new CliError.InvalidArgument({ message: `--limit must be at least 1, got ${limit}` })
      return yield* withServices(Effect.gen(function*() {
        yield* entry.setup
        const store = yield* DeadLetter.DeadLetterStore
        const counts = yield* store.countByType(name, { partition })
        const total = counts.reduce((n, c) => n + c.count, 0)
        yield* Console.log(`${total} dead letter(s) for ${name}${partition === undefined ? "" : ` ${partition}`}`)
        if (total === 0) return
        yield* Console.log(Table.format(["error type", "count"], counts.map((c) => [c.errorType, c.count])))
        const letters = yield* store.list(name, { partition, limit })
        yield* Console.log("")
        yield* Console.log(Table.format(
          ["id", "date", "line", "error type", "error", "original record"],
          letters.map((d) => [
            d.id,
            d.partition,
            d.position,
            d.errorType,
            Table.truncate(Table.oneLine(d.error), 60),
            Table.truncate(d.originalRecord, 60)
          ])
        ))
        if (letters.length < total) yield* Console.log(`… ${total - letters.length} more (use --limit)`)
      }))
    })
  ).pipe(Command.withDescription("List dead letters with their error types"))

  const dlq = Command.make("dlq").pipe(
    Command.withDescription("Dead letter queue tools"),
    Command.withSubcommands([dlqList])
  )

  return { run, backfill, status, dlq }
}
