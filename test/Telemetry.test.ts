/**
 * OpenTelemetry export as an operator sets it up: `OTEL_EXPORTER_OTLP_ENDPOINT` points `sluice` at a
 * collector, here a tiny in-process HTTP server recording what is POSTed to `/v1/traces` and
 * `/v1/metrics` (OTLP/HTTP JSON). A `run` of `daily-revenue` in a child process must deliver its
 * `Pipeline.run` span and its records-read counter, both labelled with the pipeline, before it exits.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as SluiceCli from "./SluiceCli.ts"

interface Received {
  readonly path: string
  readonly body: unknown
}

/** A collector on a free port that keeps every request body, closed with the scope. */
const collector = Effect.acquireRelease(
  Effect.callback<{ readonly endpoint: string; readonly received: Array<Received>; readonly server: Http.Server }>(
    (resume) => {
      const received: Array<Received> = []
      const server = Http.createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          received.push({ path: request.url ?? "", body: text.length > 0 ? JSON.parse(text) : undefined })
          response.writeHead(200, { "content-type": "application/json" })
          response.end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ endpoint: `http://127.0.0.1:${port}`, received, server }))
      })
    }
  ),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Runs `sluice <args>` in `cwd` on the embedded database and checks that it succeeds. */
const sluice = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  Effect.map(SluiceCli.run(cwd, args, { env, code: 0 }), (result) => result.stdout)

interface KeyValue {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: number | string; readonly asDouble?: number }
}
interface OtlpSpan {
  readonly name: string
  readonly attributes: ReadonlyArray<KeyValue>
}
interface OtlpDataPoint {
  readonly attributes: ReadonlyArray<KeyValue>
  readonly asInt?: number | string
  readonly asDouble?: number
}
interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly dataPoints: ReadonlyArray<OtlpDataPoint> }
}
interface Scoped<A> {
  readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
  readonly items: ReadonlyArray<A>
}

const attribute = (attributes: ReadonlyArray<KeyValue>, key: string) =>
  attributes.find((a) => a.key === key)?.value.stringValue

const spansOf = (received: ReadonlyArray<Received>): ReadonlyArray<Scoped<OtlpSpan>> =>
  received.filter((r) => r.path === "/v1/traces").flatMap((r) =>
    (r.body as {
      readonly resourceSpans: ReadonlyArray<
        Scoped<never> & { readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }> }
      >
    }).resourceSpans.map((rs) => ({ resource: rs.resource, items: rs.scopeSpans.flatMap((s) => s.spans) }))
  )

const metricsOf = (received: ReadonlyArray<Received>): ReadonlyArray<Scoped<OtlpMetric>> =>
  received.filter((r) => r.path === "/v1/metrics").flatMap((r) =>
    (r.body as {
      readonly resourceMetrics: ReadonlyArray<
        Scoped<never> & { readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<OtlpMetric> }> }
      >
    }).resourceMetrics.map((rm) => ({ resource: rm.resource, items: rm.scopeMetrics.flatMap((s) => s.metrics) }))
  )

describe("OpenTelemetry export", () => {
  it.live(
    "a run sends its spans and metrics to OTEL_EXPORTER_OTLP_ENDPOINT before it exits",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-otel-" })
        const { endpoint, received } = yield* collector
        const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: "sluice-test" }

        yield* sluice(cwd, ["generate-orders", "--dir", "data/orders", "--start", "2024-03-01", "--days", "1"], {
          OTEL_EXPORTER_OTLP_ENDPOINT: undefined
        })

        const stdout = yield* sluice(
          cwd,
          ["run", "daily-revenue", "--date", "2024-03-01", "--source", "data/orders"],
          otel
        )
        const read = Number(/^daily-revenue 2024-03-01: read (\d+),/.exec(stdout)?.[1])
        assert.isAbove(read, 0, stdout)

        const spans = spansOf(received)
        assert.isAbove(spans.length, 0, `traces received: ${received.map((r) => r.path).join(", ")}`)
        for (const { resource } of spans) {
          assert.strictEqual(attribute(resource.attributes, "service.name"), "sluice-test")
        }
        const run = spans.flatMap((s) => s.items).find((span) => span.name === "Pipeline.run")
        assert.isDefined(run, "a Pipeline.run span")
        assert.strictEqual(attribute(run!.attributes, "pipeline"), "daily-revenue")
        assert.strictEqual(attribute(run!.attributes, "partition"), "2024-03-01")

        const metrics = metricsOf(received)
        assert.isAbove(metrics.length, 0, `metrics received: ${received.map((r) => r.path).join(", ")}`)
        const points = metrics.flatMap((m) => m.items)
          .filter((metric) => metric.name === "sluice_records_read_total")
          .flatMap((metric) => metric.sum?.dataPoints ?? [])
          .filter((point) => attribute(point.attributes, "pipeline") === "daily-revenue")
        assert.isAbove(points.length, 0, "a sluice_records_read_total point for daily-revenue")
        assert.strictEqual(Number(points.at(-1)!.asInt ?? points.at(-1)!.asDouble), read)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 60_000 }
  )
})
