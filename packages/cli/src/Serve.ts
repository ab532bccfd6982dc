/**
 * `sluice serve`: a small HTTP server with Prometheus text exposition at `/metrics` and a web
 * dashboard at `/` (one HTML page, no build step) over JSON endpoints under `/api/pipelines`.
 *
 * The exposition has two parts:
 *
 * - this process's effect `Metric`s (`PipelineMetrics`: records read, loaded and dead-lettered,
 *   retries, run durations, failure-rate alerts, failed runs, labelled by pipeline), rendered by
 *   effect's `PrometheusMetrics`;
 * - gauges computed from the run ledger and the dead-letter store at each scrape, per registered
 *   pipeline, so the numbers mean something across processes (runs are made by other processes:
 *   the CLI, a scheduler): partitions by state, records of the latest run of every partition, runs
 *   by status, retries, alerted partitions, failure rate, new dead letters by error type, the start
 *   and duration of the latest run; for stream pipelines, their new dead letters by error type and
 *   what their processed-event ledger holds (events, the latest processed).
 *
 * Stream pipelines (`ServedStream`) are listed by the dashboard's API with their dead letters and
 * processed-event ledger; they have no partitions calendar and no batch actions: re-running a
 * partition or replaying its dead letters is refused with `BatchOnly` (400), naming the commands
 * that run them (`sluice stream`, `sluice replay`).
 *
 * A run left `running` by a process that died (its partition lock is free) is closed as failed
 * (`Abandoned`, `AbandonedRuns.close`) before the ledger is read, by `/metrics` and by the
 * dashboard's API alike, as by `sluice status`: it shows failed, not running forever.
 *
 * @since 0.1.0
 */
import { NodeHttpServer } from "@effect/platform-node"
import {
  AbandonedRuns,
  Calendar,
  DeadLetter,
  Partition,
  type PartitionLock,
  type Pipeline,
  type ProcessedEventLedger,
  type Replay,
  RunLedger
} from "@sluice/core"
import { Context, Effect, Layer, Schema } from "effect"
import { HttpRouter, type HttpServer, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import * as Dashboard from "./internal/dashboard.ts"

/** A label value, escaped as the exposition format requires. */
const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

interface Family {
  readonly name: string
  readonly help: string
  readonly type: "gauge" | "counter"
  readonly samples: Array<readonly [labels: Record<string, string>, value: number]>
}

const family = (name: string, type: Family["type"], help: string): Family => ({ name, help, type, samples: [] })

const render = (families: ReadonlyArray<Family>): string =>
  families.map((f) =>
    [
      `# HELP ${f.name} ${f.help}`,
      `# TYPE ${f.name} ${f.type}`,
      ...f.samples.map(([labels, value]) =>
        `${f.name}{${Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(",")}} ${value}`
      )
    ].join("\n")
  ).join("\n") + "\n"

/**
 * The gauges computed from the run ledger and the dead-letter store for the batch `pipelines`, and
 * from the dead-letter store and the processed-event ledger for the stream pipelines `streams`, in
 * the Prometheus text format.
 *
 * @since 0.1.0
 * @category metrics
 */
export const ledgerText = Effect.fn("Serve.ledgerText")(function*(
  pipelines: ReadonlyArray<string>,
  streams: ReadonlyArray<Pick<ServedStream, "name" | "processed">> = []
) {
  const ledger = yield* RunLedger.RunLedger
  const store = yield* DeadLetter.DeadLetterStore
  const partitions = family("sluice_partitions", "gauge", "Partitions by the state of their latest run")
  const read = family("sluice_partition_records_read", "gauge", "Records read by the latest run of every partition")
  const loaded = family(
    "sluice_partition_records_loaded",
    "gauge",
    "Records loaded by the latest run of every partition"
  )
  const dead = family(
    "sluice_partition_records_dead_lettered",
    "gauge",
    "Records dead-lettered by the latest run of every partition"
  )
  const runs = family("sluice_ledger_runs", "gauge", "Runs recorded in the run ledger, by status")
  const retries = family("sluice_ledger_retries", "gauge", "Retries of every run recorded in the run ledger")
  const alerted = family(
    "sluice_partitions_alerted",
    "gauge",
    "Partitions whose latest run raised a failure-rate alert"
  )
  const rate = family("sluice_failure_rate", "gauge", "Dead-lettered / read over the latest run of every partition")
  const letters = family("sluice_dead_letters", "gauge", "New dead letters, by error type")
  const lastStart = family("sluice_last_run_start_seconds", "gauge", "Start of the latest run (Unix seconds)")
  const lastDuration = family("sluice_last_run_duration_seconds", "gauge", "Duration of the latest finished run")
  const processed = family(
    "sluice_processed_events",
    "gauge",
    "Events in the processed-event ledger of a stream pipeline (applied once each)"
  )
  const lastProcessed = family(
    "sluice_last_processed_seconds",
    "gauge",
    "When a stream pipeline last processed an event (Unix seconds)"
  )
  for (const pipeline of pipelines) {
    // a run left running by a dead process is failed (Abandoned), not counted running forever
    yield* AbandonedRuns.close(pipeline)
    const all = yield* ledger.list(pipeline)
    const latest = yield* ledger.latest(pipeline)
    for (const state of ["succeeded", "failed", "running"] as const) {
      partitions.samples.push([{ pipeline, status: state }, latest.filter((r) => r.status === state).length])
      runs.samples.push([{ pipeline, status: state }, all.filter((r) => r.status === state).length])
    }
    const sum = (f: (r: RunLedger.RunRecord) => number) => latest.reduce((n, r) => n + f(r), 0)
    read.samples.push([{ pipeline }, sum((r) => r.read)])
    loaded.samples.push([{ pipeline }, sum((r) => r.loaded)])
    dead.samples.push([{ pipeline }, sum((r) => r.deadLettered)])
    retries.samples.push([{ pipeline }, all.reduce((n, r) => n + r.retries, 0)])
    alerted.samples.push([{ pipeline }, latest.filter((r) => r.alerted).length])
    const total = sum((r) => r.read)
    rate.samples.push([{ pipeline }, total === 0 ? 0 : sum((r) => r.deadLettered) / total])
    for (const c of yield* store.countByType(pipeline)) {
      letters.samples.push([{ pipeline, error_type: c.errorType }, c.count])
    }
    const newest = all.reduce<RunLedger.RunRecord | undefined>(
      (a, r) => a === undefined || r.startedAt > a.startedAt ? r : a,
      undefined
    )
    if (newest !== undefined) {
      lastStart.samples.push([{ pipeline }, newest.startedAt / 1000])
      const finished = all.filter((r) => r.endedAt !== undefined)
        .reduce<RunLedger.RunRecord | undefined>(
          (a, r) => a === undefined || r.startedAt > a.startedAt ? r : a,
          undefined
        )
      if (finished?.endedAt !== undefined) {
        lastDuration.samples.push([{ pipeline }, (finished.endedAt - finished.startedAt) / 1000])
      }
    }
  }
  for (const stream of streams) {
    for (const c of yield* store.countByType(stream.name)) {
      letters.samples.push([{ pipeline: stream.name, error_type: c.errorType }, c.count])
    }
    const summary = yield* stream.processed
    processed.samples.push([{ pipeline: stream.name }, summary.events])
    if (summary.lastProcessedAt !== undefined) {
      lastProcessed.samples.push([{ pipeline: stream.name }, summary.lastProcessedAt / 1000])
    }
  }
  return render([
    partitions,
    read,
    loaded,
    dead,
    runs,
    retries,
    alerted,
    rate,
    letters,
    lastStart,
    lastDuration,
    processed,
    lastProcessed
  ])
})

/**
 * The whole `/metrics` body: this process's effect metrics, then the ledger gauges.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metricsText = (
  pipelines: ReadonlyArray<string>,
  streams: ReadonlyArray<Pick<ServedStream, "name" | "processed">> = []
) =>
  Effect.map(
    Effect.all([PrometheusMetrics.format(), ledgerText(pipelines, streams)]),
    ([process, ledger]) => (process.length === 0 || process.endsWith("\n") ? process : process + "\n") + ledger
  )

/**
 * A pipeline as the server sees it: its name, start date, and the actions of the dashboard's buttons
 * (already provided with whatever the pipeline needs).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServedPipeline {
  readonly name: string
  readonly description: string
  readonly startDate: Partition.PartitionDate | undefined
  /** Re-runs a partition from its source (`Pipeline.run`). */
  readonly rerun: (partition: Partition.PartitionDate) => Effect.Effect<Pipeline.RunReport, unknown>
  /** Replays the new dead letters of a partition (`Replay.run`). */
  readonly replay: (partition: Partition.PartitionDate) => Effect.Effect<Replay.ReplayReport, unknown>
}

/**
 * A stream pipeline as the server sees it: listed with its dead letters and what its processed-event
 * ledger holds; it is run by commands of its own, which the errors of the batch actions name.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServedStream {
  readonly name: string
  readonly description: string
  /** The command that consumes it, e.g. `sluice stream order-stream`. */
  readonly consume: string
  /** The command that reprocesses it (its dead letters included), e.g. `sluice replay order-stream --from-seq N`. */
  readonly replay: string
  /** What its processed-event ledger holds (`ProcessedEventLedger.summary`), provided with the ledger. */
  readonly processed: Effect.Effect<ProcessedEventLedger.Summary, unknown>
}

/**
 * A batch action (a partition's calendar, re-run or dead-letter replay) asked of a stream pipeline:
 * the dashboard's API answers 400 with its message, which names the stream's own commands.
 *
 * @since 0.1.0
 * @category errors
 */
export class BatchOnly extends Schema.TaggedError<BatchOnly>("@sluice/cli/Serve/BatchOnly")("BatchOnly", {
  pipeline: Schema.String,
  message: Schema.String
}) {}

const message = (error: unknown): string => {
  const e = error as { readonly _tag?: unknown; readonly message?: unknown }
  const text = typeof e?.message === "string" ? e.message : String(error)
  return typeof e?._tag === "string" ? `${e._tag}: ${text}` : text
}

const jsonResponse = (body: unknown, status = 200) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers: { "x-content-type-options": "nosniff" } })

/**
 * The routes of the server: `GET /metrics` (Prometheus text), `GET /healthz`, the dashboard at
 * `GET /` and its JSON endpoints under `/api/pipelines` (batch pipelines and `streams`).
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (pipelines: ReadonlyArray<ServedPipeline>, streams: ReadonlyArray<ServedStream> = []) =>
  HttpRouter.use(Effect.fnUntraced(function*(router) {
    const services = yield* Effect.context<
      RunLedger.RunLedger | DeadLetter.DeadLetterStore | PartitionLock.PartitionLock
    >()
    const names = pipelines.map((p) => p.name)
    /**
     * Runs a handler with the stores; any failure is a JSON error (404 for a bad pipeline or date, 400
     * for a batch action asked of a stream pipeline).
     */
    const handle = <A>(
      f: (
        params: Readonly<Record<string, string | undefined>>,
        search: Readonly<Record<string, string | ReadonlyArray<string>>>
      ) => Effect.Effect<A, unknown, RunLedger.RunLedger | DeadLetter.DeadLetterStore | PartitionLock.PartitionLock>
    ) =>
      Effect.gen(function*() {
        const params = yield* HttpRouter.params
        const search = yield* HttpServerRequest.ParsedSearchParams
        return yield* f(params, search).pipe(
          Effect.provideContext(services),
          Effect.map((body) => jsonResponse(body)),
          Effect.catch((error) =>
            Effect.succeed(
              jsonResponse({ error: message(error) }, statusOf(error))
            )
          )
        )
      })
    /** The batch pipeline of `params.name`, for `action`: a stream pipeline is a `BatchOnly` naming its commands. */
    const pipelineOf = (
      params: Readonly<Record<string, string | undefined>>,
      action: "calendar" | "run" | "replay"
    ): Effect.Effect<ServedPipeline, NotFound | BatchOnly> => {
      const found = pipelines.find((p) => p.name === params.name)
      if (found !== undefined) return Effect.succeed(found)
      const stream = streams.find((s) => s.name === params.name)
      if (stream === undefined) return Effect.fail(new NotFound(`unknown pipeline ${params.name}`))
      const name = stream.name
      return Effect.fail(
        new BatchOnly({
          pipeline: name,
          message: action === "run"
            ? `${name} is a stream pipeline: re-running a partition works on batch pipelines only; use ${stream.consume} or ${stream.replay}`
            : action === "replay"
            ? `${name} is a stream pipeline: replaying dead letters re-runs batch partitions; reprocess the stream (its dead letters included) with ${stream.replay}`
            : `${name} is a stream pipeline: it has no partition calendar (runs of batch partitions); see /api/pipelines/${name}/stream, run it with ${stream.consume} or ${stream.replay}`
        })
      )
    }
    /** A pipeline whose dead letters are read: a batch one or a stream one. */
    const anyPipelineOf = (params: Readonly<Record<string, string | undefined>>) => {
      const found = pipelines.find((p) => p.name === params.name) ?? streams.find((s) => s.name === params.name)
      return found === undefined ? Effect.fail(new NotFound(`unknown pipeline ${params.name}`)) : Effect.succeed(found)
    }
    const dateOf = (value: unknown) =>
      typeof value === "string" && Partition.isDateString(value)
        ? Effect.succeed(Partition.makeUnsafe(value))
        : Effect.fail(new NotFound(`not a date: ${String(value)}`))
    /**
     * The date of the query parameter `name`, if given: a bad one (not a date, given twice) is a
     * `BadRequest` (400), not silently ignored.
     */
    const queryDateOf = (
      search: Readonly<Record<string, string | ReadonlyArray<string>>>,
      name: string
    ): Effect.Effect<Partition.PartitionDate | undefined, BadRequest> => {
      const value = search[name]
      if (value === undefined) return Effect.succeed(undefined)
      if (typeof value !== "string") {
        return Effect.fail(new BadRequest(`${name} is given ${value.length} times: give it once`))
      }
      return Partition.isDateString(value)
        ? Effect.succeed(Partition.makeUnsafe(value))
        : Effect.fail(new BadRequest(`${name} is not a date (YYYY-MM-DD): ${JSON.stringify(value)}`))
    }

    yield* router.add(
      "GET",
      "/metrics",
      metricsText(names, streams).pipe(
        Effect.provideContext(services),
        Effect.map((body) =>
          HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
        ),
        Effect.catch((error) => Effect.succeed(HttpServerResponse.text(`error: ${message(error)}\n`, { status: 503 })))
      )
    )
    yield* router.add("GET", "/healthz", Effect.succeed(HttpServerResponse.text("ok\n")))
    // the page may not be framed by another site, which could otherwise trick a click on its re-run and
    // replay buttons (clickjacking: the framed page's POSTs come from its own origin)
    yield* router.add(
      "GET",
      "/",
      Effect.succeed(HttpServerResponse.setHeaders(HttpServerResponse.html(Dashboard.html), {
        "content-security-policy": "frame-ancestors 'none'",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff"
      }))
    )
    yield* router.add(
      "GET",
      "/api/pipelines",
      Effect.succeed(jsonResponse([
        ...pipelines.map((p) => ({
          name: p.name,
          kind: "batch",
          description: p.description,
          startDate: p.startDate ?? null
        })),
        ...streams.map((s) => ({
          name: s.name,
          kind: "stream",
          description: s.description,
          startDate: null,
          consume: s.consume,
          replay: s.replay
        }))
      ]))
    )
    yield* router.add(
      "GET",
      "/api/pipelines/:name/stream",
      handle((params) =>
        Effect.gen(function*() {
          const stream = streams.find((s) => s.name === params.name)
          if (stream === undefined) {
            return yield* Effect.fail(
              new NotFound(
                pipelines.some((p) => p.name === params.name)
                  ? `${params.name} is a batch pipeline: see /api/pipelines/${params.name}/calendar`
                  : `unknown pipeline ${params.name}`
              )
            )
          }
          const store = yield* DeadLetter.DeadLetterStore
          const byType = yield* store.countByTypeAndStatus(stream.name, { status: DeadLetter.statuses })
          // the days (publication days) with dead letters, the latest first
          const days = new Map<string, Record<DeadLetter.Status, number>>()
          for (const c of yield* store.countByPartition(stream.name, { status: DeadLetter.statuses })) {
            const day = days.get(c.partition) ?? { new: 0, replayed: 0, discarded: 0 }
            day[c.status] += c.count
            days.set(c.partition, day)
          }
          const summary = yield* stream.processed
          return {
            pipeline: stream.name,
            kind: "stream",
            description: stream.description,
            consume: stream.consume,
            replay: stream.replay,
            processed: {
              events: summary.events,
              firstProcessedAt: summary.firstProcessedAt ?? null,
              lastProcessedAt: summary.lastProcessedAt ?? null
            },
            deadLetters: {
              byType,
              days: [...days].sort(([a], [b]) => a < b ? 1 : a > b ? -1 : 0).map(([partition, counts]) => ({
                partition,
                ...counts
              }))
            }
          }
        })
      )
    )
    yield* router.add(
      "GET",
      "/api/pipelines/:name/calendar",
      handle((params, search) =>
        Effect.gen(function*() {
          const pipeline = yield* pipelineOf(params, "calendar")
          yield* AbandonedRuns.close(pipeline.name)
          const runs = yield* (yield* RunLedger.RunLedger).list(pipeline.name)
          const first = runs.reduce<Partition.PartitionDate | undefined>(
            (a, r) => a === undefined || r.partition < a ? r.partition : a,
            undefined
          )
          const since = yield* queryDateOf(search, "since")
          const until = yield* queryDateOf(search, "until")
          const end = until ?? (yield* Calendar.lastCompleteDay)
          const start = since ?? pipeline.startDate ?? first ?? end
          // a range asked for that is empty (as `sluice status` refuses it): the pipeline's start date
          // or since after until
          if ((since !== undefined || until !== undefined) && start > end) {
            return yield* Effect.fail(
              new BadRequest(
                `the range ${start}..${end} is empty${
                  since === undefined ? ` (since defaults to the pipeline's start date, ${start})` : ""
                }${until === undefined ? ` (until defaults to the last complete day, ${end})` : ""}`
              )
            )
          }
          // at most ~3 years of days in one answer
          const from = Partition.daysBetween(start, end) > 1100 ? Partition.addDays(end, -1100) : start
          const days = Calendar.make({ start: from, end, runs })
          const newByDay = new Map<string, number>()
          for (const c of yield* (yield* DeadLetter.DeadLetterStore).countByPartition(pipeline.name)) {
            newByDay.set(c.partition, c.count)
          }
          return {
            pipeline: pipeline.name,
            start: from,
            end,
            summary: Calendar.summarize(days),
            days: days.map((d) => ({
              partition: d.partition,
              state: d.state,
              runs: d.runs,
              read: d.latest?.read ?? 0,
              loaded: d.latest?.loaded ?? 0,
              deadLettered: d.latest?.deadLettered ?? 0,
              newDeadLetters: newByDay.get(d.partition) ?? 0,
              failureRate: d.latest?.failureRate ?? 0,
              alerted: d.latest?.alerted ?? false,
              lastRun: d.latest?.startedAt ?? null,
              error: d.latest?.error === undefined ? null : `${d.latest.errorType}: ${d.latest.error}`,
              // the data in place when the latest run failed or is running: its last successful run's
              serving: d.state === "done" || d.lastSucceeded === undefined ? null : {
                runId: d.lastSucceeded.runId,
                startedAt: d.lastSucceeded.startedAt,
                read: d.lastSucceeded.read,
                loaded: d.lastSucceeded.loaded,
                deadLettered: d.lastSucceeded.deadLettered
              }
            }))
          }
        })
      )
    )
    yield* router.add(
      "GET",
      "/api/pipelines/:name/partitions/:date",
      handle((params) =>
        Effect.gen(function*() {
          const pipeline = yield* anyPipelineOf(params)
          const date = yield* dateOf(params.date)
          yield* AbandonedRuns.close(pipeline.name, { start: date, end: date })
          const runs = yield* (yield* RunLedger.RunLedger).list(pipeline.name, { start: date, end: date })
          const store = yield* DeadLetter.DeadLetterStore
          const deadLetters = yield* store.list(pipeline.name, {
            partition: date,
            status: DeadLetter.statuses,
            limit: deadLettersShown
          })
          // how many the day has in all: the page says when it shows only the first ones
          const deadLettersTotal = deadLetters.length < deadLettersShown
            ? deadLetters.length
            : (yield* store.countByPartition(pipeline.name, { partition: date, status: DeadLetter.statuses }))
              .reduce((n, c) => n + c.count, 0)
          return {
            pipeline: pipeline.name,
            partition: date,
            runs,
            deadLetters: deadLetters.map(preview),
            deadLettersTotal
          }
        })
      )
    )
    yield* router.add(
      "POST",
      "/api/pipelines/:name/partitions/:date/run",
      handle((params) =>
        Effect.gen(function*() {
          const pipeline = yield* pipelineOf(params, "run")
          return yield* pipeline.rerun(yield* dateOf(params.date))
        })
      )
    )
    yield* router.add(
      "POST",
      "/api/pipelines/:name/partitions/:date/replay",
      handle((params) =>
        Effect.gen(function*() {
          const pipeline = yield* pipelineOf(params, "replay")
          return yield* pipeline.replay(yield* dateOf(params.date))
        })
      )
    )
    // any other request: a JSON error, not an empty 404 (405 naming the methods of a known path); HEAD is
    // left to the router, which answers it as the GET of its path
    const fallback = (request: HttpServerRequest.HttpServerRequest) => {
      const allowed = allowedMethods(request.url)
      return Effect.succeed(
        allowed === undefined
          ? jsonResponse({ error: `not found: ${request.method} ${pathOf(request.url)}` }, 404)
          : HttpServerResponse.jsonUnsafe(
            { error: `${request.method} is not allowed on ${pathOf(request.url)}: use ${allowed}` },
            { status: 405, headers: { allow: allowed } }
          )
      )
    }
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const) {
      yield* router.add(method, "/*", fallback)
    }
  }))

/** The path of a request's URL, without its query. */
const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query < 0 ? url : url.slice(0, query)
}

/** The methods a path of the server answers (`GET, HEAD` or `POST`), or `undefined` when it has no route. */
const allowedMethods = (url: string): string | undefined => {
  const path = pathOf(url)
  if (/^\/api\/pipelines\/[^/]+\/partitions\/[^/]+\/(?:run|replay)$/.test(path)) return "POST"
  return /^\/(?:metrics|healthz|api\/pipelines(?:\/[^/]+\/(?:stream|calendar|partitions\/[^/]+))?)?$/.test(path)
    ? "GET, HEAD"
    : undefined
}

class NotFound extends Error {}

/**
 * The most dead letters a day's answer lists (the first, in line order); `deadLettersTotal` says how many
 * it has in all.
 *
 * @since 0.1.0
 * @category api
 */
export const deadLettersShown = 500

/**
 * The most of a dead letter's payload a partition's answer gives (UTF-16 code units): a day of 500
 * dead letters of 10 MB lines would otherwise be a 5 GB answer, and the page a 5 GB table.
 *
 * @since 0.1.0
 * @category api
 */
export const payloadPreviewLength = 64 * 1024

/** `text` cut to {@link payloadPreviewLength} code units, never inside a surrogate pair. */
const cut = (text: string): string => {
  if (text.length <= payloadPreviewLength) return text
  const high = text.charCodeAt(payloadPreviewLength - 1)
  return text.slice(0, high >= 0xd800 && high <= 0xdbff ? payloadPreviewLength - 1 : payloadPreviewLength)
}

/**
 * A dead letter as a partition's answer gives it: its payload cut to {@link payloadPreviewLength},
 * with `originalRecordLength` (the whole payload's length) and `truncated`, and its error cut the same
 * way, with `errorLength` (a decoder's message can quote a whole value: `got "…3 MB…"`); `sluice dlq
 * show PIPELINE ID` prints the whole of both.
 */
const preview = (d: DeadLetter.StoredDeadLetter) => ({
  ...d,
  originalRecord: cut(d.originalRecord),
  originalRecordLength: d.originalRecord.length,
  truncated: d.originalRecord.length > payloadPreviewLength,
  error: cut(d.error),
  errorLength: d.error.length
})

/** A request the API cannot answer as asked (a bad or repeated query parameter, an empty range): 400. */
class BadRequest extends Error {}

/**
 * The HTTP status of a failed API request: 404 for an unknown pipeline or a bad date in the path,
 * 400 for a bad query or a batch action asked of a stream pipeline, 409 for a re-run or replay of a
 * partition another run holds (`PartitionLocked`: try again once it is over), else 500.
 */
const statusOf = (error: unknown): number => {
  if (error instanceof NotFound) return 404
  if (error instanceof BadRequest || error instanceof BatchOnly) return 400
  const tag = (error as { readonly _tag?: unknown } | undefined)?._tag
  return tag === "PartitionLocked" ? 409 : 500
}

/** The host name of a `Host` header or an origin's authority (`[::1]:80` → `::1`), lower-cased. */
const hostName = (authority: string): string => {
  const lower = authority.trim().toLowerCase()
  if (lower.startsWith("[")) return lower.slice(1, lower.indexOf("]") < 0 ? undefined : lower.indexOf("]"))
  const colon = lower.lastIndexOf(":")
  return colon < 0 ? lower : lower.slice(0, colon)
}

const isLoopback = (name: string): boolean =>
  name === "localhost" || name.endsWith(".localhost") || name === "::1" || /^127(?:\.\d{1,3}){3}$/.test(name)

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"])

/**
 * Why a request is refused, or `undefined`: the server's defence against other web sites.
 *
 * - **DNS rebinding.** Bound to a loopback address (the default), the server answers only requests
 *   addressed to a loopback name (`Host: localhost`, `127.0.0.1`, `[::1]`, with any port): a page
 *   of another site whose name was made to resolve to 127.0.0.1 still sends its own name, and would
 *   otherwise read the dashboard's JSON (dead letters hold the source's payloads). Bound to another
 *   address, the server was exposed on purpose and every name is accepted.
 * - **Cross-site requests.** A request that changes something (`POST`: re-run, replay) is refused
 *   when a browser says it comes from another origin (`Origin` other than the server's own, or
 *   `Sec-Fetch-Site: cross-site`); clients that are not browsers (curl, scripts) send neither and
 *   are accepted, as are the dashboard's own buttons.
 *
 * @since 0.1.0
 * @category security
 */
export const refusal = (
  request: { readonly method: string; readonly headers: Readonly<Record<string, string | undefined>> },
  boundHost: string
): string | undefined => {
  const host = request.headers["host"] ?? ""
  if (isLoopback(boundHost.trim().toLowerCase().replace(/^\[|\]$/g, "")) && !isLoopback(hostName(host))) {
    return `this server answers requests to localhost only, not to ${JSON.stringify(host)}`
  }
  if (safeMethods.has(request.method.toUpperCase())) return undefined
  const origin = request.headers["origin"]
  if (origin !== undefined && origin !== "null") {
    let authority: string
    try {
      authority = new URL(origin).host
    } catch {
      return `a ${request.method} from the origin ${JSON.stringify(origin)} is refused`
    }
    if (authority.toLowerCase() !== host.trim().toLowerCase()) {
      return `a ${request.method} from another site (${origin}) is refused`
    }
  } else if (origin === "null" || request.headers["sec-fetch-site"] === "cross-site") {
    return `a ${request.method} from another site is refused`
  }
  return undefined
}

/** {@link refusal} as a global middleware: a refused request gets 403 and a JSON error. */
const guard = (boundHost: string) =>
  HttpRouter.middleware(
    (httpEffect) =>
      Effect.withFiber((fiber) => {
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        const refused = refusal(request, boundHost)
        if (refused !== undefined) return Effect.succeed(jsonResponse({ error: refused }, 403))
        // a path the router cannot match at all (a bad %-escape, a too long segment): a JSON 404 too
        return Effect.catchIf(
          httpEffect,
          (error) => HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound",
          () => Effect.succeed(jsonResponse({ error: `not found: ${request.method} ${pathOf(request.url)}` }, 404))
        ) as typeof httpEffect
      }),
    { global: true }
  )

/**
 * The server on `host:port` (`port` 0 picks a free one; read it from `HttpServer.address`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Serve } from "@sluice/cli"
 *
 * declare const pipelines: ReadonlyArray<Serve.ServedPipeline>
 * declare const streams: ReadonlyArray<Serve.ServedStream>
 * const server = Serve.layer({ pipelines, streams, port: 9464 })
 * // Layer.launch(server) with the run ledger, dead-letter store and partition lock provided
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly pipelines: ReadonlyArray<ServedPipeline>
  readonly streams?: ReadonlyArray<ServedStream> | undefined
  readonly port: number
  readonly host?: string | undefined
  readonly log?: boolean | undefined
}): Layer.Layer<
  HttpServer.HttpServer,
  HttpServerError.ServeError,
  RunLedger.RunLedger | DeadLetter.DeadLetterStore | PartitionLock.PartitionLock
> =>
  HttpRouter.serve(Layer.merge(routes(options.pipelines, options.streams ?? []), guard(options.host ?? "127.0.0.1")), {
    disableLogger: options.log !== true,
    disableListenLog: options.log === false
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )

/** This process's effect metrics, as the Prometheus text exposition. */
const processMetrics = HttpRouter.use(Effect.fnUntraced(function*(router) {
  yield* router.add(
    "GET",
    "/metrics",
    Effect.map(
      PrometheusMetrics.format(),
      (body) => HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
    )
  )
  yield* router.add("GET", "/healthz", Effect.succeed(HttpServerResponse.text("ok\n")))
}))

/**
 * A server of this process's metrics only, `GET /metrics` (effect's `PrometheusMetrics`: records,
 * dead letters, alerts, the circuit breaker's state…) and `GET /healthz`, on `host:port`, for a
 * long-running process whose metrics live only in it (`sluice stream --metrics-port`). Requests are
 * refused as by {@link layer} ({@link refusal}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Serve } from "@sluice/cli"
 *
 * declare const consume: Effect.Effect<void>
 * // /metrics is served while the stream is consumed
 * const program = consume.pipe(Effect.provide(Serve.metricsLayer({ port: 9465 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const metricsLayer = (options: {
  readonly port: number
  readonly host?: string | undefined
  readonly log?: boolean | undefined
}): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError> =>
  HttpRouter.serve(Layer.merge(processMetrics, guard(options.host ?? "127.0.0.1")), {
    disableLogger: options.log !== true,
    disableListenLog: options.log === false
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )
