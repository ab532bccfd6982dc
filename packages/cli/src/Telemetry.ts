/**
 * OpenTelemetry export for the CLI: when an OTLP endpoint is configured, the spans of a command
 * (`Pipeline.run`, its stages, …) and the pipeline metrics (`PipelineMetrics`) are sent over
 * OTLP/HTTP JSON with effect's built-in `effect/observability` exporters; when it is not, nothing
 * is installed.
 *
 * @since 0.1.0
 */
import { Config, type Duration, Effect, Layer, Option } from "effect"
import { FetchHttpClient, HttpClientRequest } from "effect/http"
import { OtlpExporter, OtlpMetrics, OtlpSerialization, OtlpTracer } from "effect/observability"

/**
 * Exports traces to `<baseUrl>/v1/traces` and metrics to `<baseUrl>/v1/metrics` (OTLP/HTTP JSON,
 * through `fetch`) for as long as the layer is in use.
 *
 * **Details**
 *
 * Spans are batched and sent every 5 seconds, metrics are snapshotted every 10 seconds, and both
 * are flushed when the layer's scope closes (bounded by `shutdownTimeout`, 3 seconds by default),
 * so a short command still exports everything it recorded before the process exits. Logs are not
 * exported: the CLI's output stays on the terminal.
 *
 * @example
 * ```ts
 * import { Telemetry } from "@sluice/cli"
 *
 * const telemetry = Telemetry.layer({ baseUrl: "http://localhost:4318", serviceName: "sluice" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly baseUrl: string
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  readonly shutdownTimeout?: Duration.Input | undefined
}): Layer.Layer<OtlpExporter.Flusher> => {
  const base = HttpClientRequest.get(options.baseUrl)
  const url = (path: string) => HttpClientRequest.appendUrl(base, path).url
  const resource = { serviceName: options.serviceName, serviceVersion: options.serviceVersion }
  const shutdownTimeout = options.shutdownTimeout
  return Layer.mergeAll(
    OtlpTracer.layer({ url: url("/v1/traces"), resource, shutdownTimeout }),
    OtlpMetrics.layer({ url: url("/v1/metrics"), resource, shutdownTimeout })
  ).pipe(Layer.provide([OtlpSerialization.layerJson, FetchHttpClient.layer]))
}

/**
 * {@link layer} configured from the standard OpenTelemetry environment variables:
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL, e.g. `http://localhost:4318`) and
 * `OTEL_SERVICE_NAME` (default `"sluice"`).
 *
 * **When to use**
 *
 * As the layer of `Main.run`, so that every command exports when an endpoint is set.
 *
 * **Gotchas**
 *
 * Without `OTEL_EXPORTER_OTLP_ENDPOINT` nothing is installed (only a `Flusher` with nothing to
 * flush): no tracer, no exporter, no request.
 * Only the base endpoint is read; the per-signal variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, …)
 * are not. (effect's own `OtlpTracer.layerFromConfig` also waits for `OTEL_TRACES_EXPORTER=otlp`,
 * which the OpenTelemetry SDKs take as the default.) A collector that cannot be reached is silent
 * but delays the exit by up to the shutdown timeout (3 seconds).
 *
 * @example
 * ```ts
 * import { Main, Telemetry } from "@sluice/cli"
 * import { Command } from "effect/cli"
 *
 * declare const root: Command.Command<"sluice", {}, {}, never, never>
 * Main.run(root, Telemetry.layerFromEnv({ serviceVersion: "0.1.0" }), { version: "0.1.0" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (
  options?: { readonly serviceVersion?: string | undefined }
): Layer.Layer<OtlpExporter.Flusher, Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const { endpoint, serviceName } = yield* Config.all({
      endpoint: Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT")),
      serviceName: Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault(""))
    })
    // an empty value counts as unset, as in the OpenTelemetry SDKs
    const baseUrl = Option.filter(endpoint, (url) => url.trim() !== "")
    return Option.isNone(baseUrl)
      ? OtlpExporter.layerFlusher
      : layer({
        baseUrl: baseUrl.value.trim(),
        serviceName: serviceName.trim() || "sluice",
        serviceVersion: options?.serviceVersion
      })
  }))
