/**
 * A sample orders HTTP API over a directory of `YYYY-MM-DD.jsonl` files, with injectable
 * transient failures, to exercise `HttpSource` and the pipeline's retries.
 *
 * `GET /orders?date=YYYY-MM-DD` answers the day's file as JSON Lines (`application/x-ndjson`),
 * or as a JSON array with `&format=json` (`application/json`); 404 when the day has no file, 400
 * for a bad `date` or `format`. Bodies are streamed from disk. In a JSON array, a line that is not
 * valid UTF-8 is sent as its bytes (the client dead-letters it with them, as from the file), a line
 * that is not JSON as a JSON string of its text (as it is, it would make the whole body invalid).
 *
 * Failures are transient and deterministic: the first `failFirst` requests of each date fail
 * (cycling through `kinds`), then each request fails with probability `failureRate`, drawn from a
 * PRNG seeded with `seed`. A failure is one of:
 * - `"503"`: `503 Service Unavailable` with `Retry-After: 1`;
 * - `"reset"`: the headers and a part of the body are sent, then the connection is destroyed;
 * - `"slow"`: the answer is delayed by `slowMs` (beyond a client's timeout).
 *
 * The server binds to 127.0.0.1 only.
 *
 * @since 0.1.0
 */
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { HttpSource, JsonLinesSource, Partition } from "@sluice/core"
import { SeededRandom } from "@sluice/samples"
import { Effect, FileSystem, Layer, Result, Schema, Stream } from "effect"
import { HttpRouter, HttpServer, type HttpServerError, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

/**
 * @since 0.1.0
 * @category models
 */
export type FailureKind = "503" | "reset" | "slow"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The directory of `YYYY-MM-DD.jsonl` files. */
  readonly directory: string
  /** 0 (the default) picks a free port; read it from `HttpServer.address` or {@link baseUrl}. */
  readonly port?: number | undefined
  /** Share of requests (after `failFirst`) that fail, 0–1; 0 by default. */
  readonly failureRate?: number | undefined
  /** The failures to inject; all three by default. */
  readonly kinds?: ReadonlyArray<FailureKind> | undefined
  /** Delay of a `"slow"` answer; 30 seconds by default. */
  readonly slowMs?: number | undefined
  /** Seed of the failure draws; 1 by default. */
  readonly seed?: number | undefined
  /** Fail the first `n` requests of each date (cycling through `kinds`); 0 by default. */
  readonly failFirst?: number | undefined
  /** Log requests and the listen address; `true` by default. */
  readonly log?: boolean | undefined
}

const allKinds: ReadonlyArray<FailureKind> = ["503", "reset", "slow"]

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

const encoder = new TextEncoder()

/** The bytes of `a` then `b`. */
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/**
 * Whether `bytes`, sent as an element of a JSON array, is read back by a client (`HttpSource`) as
 * exactly that one element, with exactly those bytes: true of a line that is not valid UTF-8 but
 * otherwise a JSON value (an invalid byte inside a string), or any text whose strings and brackets
 * are closed; false of one with a string or bracket left open, which would swallow what follows.
 */
const carriedAsIs = (bytes: Uint8Array): Effect.Effect<boolean> =>
  Stream.runCollect(
    HttpSource.jsonArrayBytesToRecords(
      "element",
      Stream.make(concat(Uint8Array.of(0x5b), concat(bytes, Uint8Array.of(0x5d))))
    )
  ).pipe(
    Effect.map((records) => {
      const [only] = records
      return records.length === 1 && only?.invalidBytes !== undefined && only.invalidBytes.length === bytes.length &&
        only.invalidBytes.every((b, i) => b === bytes[i])
    }),
    Effect.orElseSucceed(() => false)
  )

/**
 * The lines of a JSONL file as the elements of a JSON array, streamed, each as it is whenever a
 * JSON array can carry it:
 *
 * - a line that is JSON, as its text (the client re-serializes it);
 * - a line that is not valid UTF-8, as its bytes, invalid ones included, as long as its strings and
 *   brackets are closed: the client reads it back as from the file (`Source.invalidUtf8`, its
 *   original bytes) and dead-letters it as `InvalidEncoding`, as in JSON Lines;
 * - a line that is not JSON (or whose invalid bytes sit in a string left open) cannot be an element
 *   of a JSON array: as its text would break the whole body (the client then fails the day with
 *   `InvalidResponse`), it is sent as a JSON string of its text (of its `\xHH` escape when not UTF-8),
 *   so the client still gets one element per record, a string where an order is expected, which it
 *   dead-letters (`SchemaMismatch`) with that string as its payload, the line being `JSON.parse` of it.
 *
 * The last element is followed by `]` at once: no whitespace joins an element kept as bytes.
 */
const jsonArrayBody = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E> =>
  JsonLinesSource.bytesToRecords(bytes).pipe(
    Stream.mapEffect(Effect.fnUntraced(function*(record) {
      if (record.invalidBytes !== undefined && (yield* carriedAsIs(record.invalidBytes))) return record.invalidBytes
      return encoder.encode(
        Result.isSuccess(decodeJson(record.payload)) && record.invalidBytes === undefined
          ? record.payload
          : JSON.stringify(record.payload)
      )
    })),
    Stream.mapAccum(
      () => false,
      (started, element: Uint8Array) => [true, [encoder.encode(started ? ",\n" : "[\n"), element]] as const,
      {
        onHalt: (started) => [encoder.encode(started ? "]\n" : "[]\n")]
      }
    )
  )

const textResponse = (status: number, body: string, headers?: Record<string, string>) =>
  HttpServerResponse.text(body, { status, ...(headers === undefined ? {} : { headers }) })

/**
 * The `GET /orders` route, as a layer to add to an `HttpRouter`.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import * as OrdersServer from "@sluice-app/daily-revenue/OrdersServer"
 * import { createServer } from "node:http"
 *
 * const server = HttpRouter.serve(OrdersServer.routes({ directory: "./data/orders" })).pipe(
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080, host: "127.0.0.1" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (options: Options) =>
  HttpRouter.use(Effect.fnUntraced(function*(router) {
    const fs = yield* FileSystem.FileSystem
    const kinds = options.kinds === undefined || options.kinds.length === 0 ? allKinds : options.kinds
    const failureRate = options.failureRate ?? 0
    const failFirst = options.failFirst ?? 0
    const slowMs = options.slowMs ?? 30_000
    const random = SeededRandom.make(options.seed ?? 1)
    const requestsPerDate = new Map<string, number>()

    const failureFor = (date: string): FailureKind | undefined => {
      const n = requestsPerDate.get(date) ?? 0
      requestsPerDate.set(date, n + 1)
      if (n < failFirst) return kinds[n % kinds.length]
      if (failureRate > 0 && random.chance(failureRate)) return random.pick(kinds)
      return undefined
    }

    const serveFile = (path: string, format: "jsonl" | "json") =>
      format === "jsonl"
        ? HttpServerResponse.stream(fs.stream(path), { contentType: "application/x-ndjson" })
        : HttpServerResponse.stream(jsonArrayBody(fs.stream(path)), {
          contentType: "application/json"
        })

    const reset = (request: HttpServerRequest.HttpServerRequest, path: string) => {
      const destroy = Effect.sleep("50 millis").pipe(
        Effect.andThen(Effect.sync(() => NodeHttpServerRequest.toServerResponse(request).destroy()))
      )
      const partial = fs.stream(path, { bytesToRead: 512 }).pipe(
        Stream.concat(Stream.fromEffectDrain(destroy)),
        Stream.concat(Stream.never)
      )
      return HttpServerResponse.stream(partial, { contentType: "application/x-ndjson" })
    }

    yield* router.add(
      "GET",
      "/orders",
      Effect.fnUntraced(function*(
        request: HttpServerRequest.HttpServerRequest
      ): Effect.fn.Return<HttpServerResponse.HttpServerResponse, HttpServerError.HttpServerError> {
        const params = new URL(request.url, "http://127.0.0.1").searchParams
        const date = params.get("date")
        if (date === null || !Partition.isDateString(date)) {
          return textResponse(400, `expected ?date=YYYY-MM-DD, got ${JSON.stringify(date)}\n`)
        }
        const formatParam = params.get("format") ?? "jsonl"
        const format = formatParam === "json" ? "json" : formatParam === "jsonl" || formatParam === "ndjson"
          ? "jsonl"
          : undefined
        if (format === undefined) {
          return textResponse(400, `expected format=jsonl or format=json, got ${JSON.stringify(formatParam)}\n`)
        }
        const path = JsonLinesSource.fileOf(options.directory, Partition.makeUnsafe(date))
        const failure = failureFor(date)
        if (failure === "503") return textResponse(503, "Service Unavailable\n", { "retry-after": "1" })
        if (failure === "slow") yield* Effect.sleep(slowMs)
        const exists = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))
        if (!exists) return textResponse(404, `no orders for ${date}\n`)
        if (failure === "reset") return reset(request, path)
        return serveFile(path, format)
      })
    )
  }))

/**
 * The orders server on 127.0.0.1 (`port` 0 = a free port), as a layer providing the running
 * `HttpServer` (its `address` gives the port).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as OrdersServer from "@sluice-app/daily-revenue/OrdersServer"
 *
 * const program = Effect.gen(function*() {
 *   const url = yield* OrdersServer.baseUrl // e.g. "http://127.0.0.1:53121"
 * }).pipe(Effect.provide(OrdersServer.layer({ directory: "./data/orders", failFirst: 1, kinds: ["503"] })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError> =>
  HttpRouter.serve(routes(options), {
    disableLogger: options.log === false,
    disableListenLog: options.log === false
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port ?? 0, host: "127.0.0.1" }))
  )

/**
 * The server's base URL, e.g. `http://127.0.0.1:53121`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressFormattedWith(
  Effect.succeed
)

/**
 * Runs the server until interrupted, logging its address. Run it with `NodeRuntime.runMain`
 * (so that Ctrl-C shuts it down gracefully), e.g. from a CLI command.
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import * as OrdersServer from "@sluice-app/daily-revenue/OrdersServer"
 *
 * OrdersServer.run({ directory: "./data/orders", port: 8080, failureRate: 0.2 }).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<never, HttpServerError.ServeError> =>
  Layer.launch(layer(options)) as Effect.Effect<never, HttpServerError.ServeError>
