/**
 * NATS JetStream as an at-least-once streaming source: a durable pull consumer with explicit acks.
 *
 * - {@link JetStream} is the connection (a `Context.Service`); its layer connects and, when released,
 *   drains the connection (in-flight acks are flushed).
 * - {@link ensureConsumer} creates (or updates) a durable pull consumer with `ack_policy: explicit`
 *   and an `ack_wait`: a message not acknowledged within it is redelivered.
 * - {@link source} reads the consumer as core's `Streaming.StreamSource`. A message is acknowledged
 *   only by the streaming runner, after its batch committed; the client buffers at most
 *   `maxMessages` messages (backpressure: pulled only as the runner asks for more).
 *
 * A message's event id is its `Nats-Msg-Id` header (set by the publisher, also used by JetStream's
 * own de-duplication window), or `<stream>:<sequence>` without one.
 *
 * A message's payload is its text exactly, a leading byte order mark included (the streaming runner
 * decodes it without the mark; its dead letter keeps it).
 *
 * A message's bytes are decoded strictly: a message that is not valid UTF-8 is never read with
 * U+FFFD in place of its bad bytes. It keeps its bytes (`invalidBytes`, its payload their `\xHH`
 * escape, see core's `Utf8`), the runner dead-letters it as `InvalidEncoding`, and it is
 * acknowledged, like any message, only after its batch (and so its dead letter) committed.
 *
 * @since 0.1.0
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  JetStreamError,
  type JetStreamManager,
  jetstreamManager
} from "@nats-io/jetstream"
import { connect, headers, type NatsConnection } from "@nats-io/transport-node"
import { SourceError, type Streaming, Utf8 } from "@sluice/core"
import { Context, Duration, Effect, Layer, Schema, Stream } from "effect"

/**
 * A NATS operation failed (connection, stream or consumer management).
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsError extends Schema.TaggedError<NatsError>("@sluice/nats/NatsError")("NatsError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * NATS cannot be reached at `servers` (nothing listens there, the name does not resolve…).
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsUnavailable extends Schema.TaggedError<NatsUnavailable>("@sluice/nats/NatsUnavailable")(
  "NatsUnavailable",
  { servers: Schema.String, reason: Schema.String, cause: Schema.optional(Schema.Defect()) }
) {
  override get message(): string {
    return `NATS unavailable: ${this.servers}: ${this.reason}`
  }
}

/**
 * The NATS servers are not a comma-separated list of `host:port` or `nats://host:port` URLs: a
 * configuration error, found before connecting.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidNatsUrl extends Schema.TaggedError<InvalidNatsUrl>("@sluice/nats/InvalidNatsUrl")(
  "InvalidNatsUrl",
  { servers: Schema.String }
) {
  override get message(): string {
    return `invalid NATS URL ${JSON.stringify(this.servers)}: expected host:port or nats://host:port, comma-separated`
  }
}

/** Whether the client can parse `servers` (it reads a server without a scheme as `nats://…`). */
const parsable = (servers: string): boolean =>
  servers.split(",").every((server) => {
    const s = server.trim()
    return s.length > 0 && URL.canParse(s.includes("://") ? s : `nats://${s}`)
  })

const natsError = (operation: string) => (cause: unknown) =>
  new NatsError({ operation, message: cause instanceof Error ? cause.message : String(cause), cause })

/**
 * A connection to NATS with its JetStream client and manager.
 *
 * @since 0.1.0
 * @category services
 */
export class JetStream extends Context.Service<JetStream, {
  readonly servers: string
  readonly connection: NatsConnection
  readonly client: JetStreamClient
  readonly manager: JetStreamManager
}>()("@sluice/nats/JetStream") {
  /**
   * Connects to `servers` (e.g. `127.0.0.1:4222`); drains the connection when released. Fails
   * with {@link InvalidNatsUrl} before connecting when `servers` cannot be parsed, with
   * {@link NatsUnavailable} (naming `servers`) when the connection fails.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { JetStreamSource } from "@sluice/nats"
   *
   * const program = Effect.gen(function*() {
   *   const js = yield* JetStreamSource.JetStream
   *   yield* Effect.log(js.servers)
   * }).pipe(Effect.provide(JetStreamSource.JetStream.layer("127.0.0.1:4222")))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer = (servers: string): Layer.Layer<JetStream, NatsError | NatsUnavailable | InvalidNatsUrl> =>
    Layer.effect(
      JetStream,
      Effect.gen(function*() {
        if (!parsable(servers)) return yield* new InvalidNatsUrl({ servers })
        const connection = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => connect({ servers, timeout: 2_000, reconnect: true, maxReconnectAttempts: -1 }),
            catch: (cause) =>
              new NatsUnavailable({ servers, reason: cause instanceof Error ? cause.message : String(cause), cause })
          }),
          (nc) => Effect.promise(() => nc.drain().catch(() => undefined))
        )
        const manager = yield* Effect.tryPromise({
          try: () => jetstreamManager(connection),
          catch: natsError("jetstream manager")
        })
        return JetStream.of({ servers, connection, client: jetstream(connection), manager })
      })
    )
}

/**
 * Creates the stream `stream` over `subjects` if it does not exist.
 *
 * @since 0.1.0
 * @category management
 */
export const ensureStream = Effect.fn("JetStreamSource.ensureStream")(function*(options: {
  readonly stream: string
  readonly subjects: ReadonlyArray<string>
}) {
  const { manager } = yield* JetStream
  yield* Effect.tryPromise({
    try: () =>
      manager.streams.info(options.stream).catch(() =>
        manager.streams.add({ name: options.stream, subjects: [...options.subjects] })
      ),
    catch: natsError(`ensure stream ${options.stream}`)
  })
})

/**
 * Where a new consumer starts: the whole stream, a sequence, or a time.
 *
 * @since 0.1.0
 * @category models
 */
export type StartAt =
  | { readonly _tag: "All" }
  | { readonly _tag: "Sequence"; readonly sequence: number }
  | { readonly _tag: "Time"; readonly time: Date }

/**
 * A start point a consumer cannot start from: a sequence below 1, an invalid time, or a point after
 * the stream's last message (a consumer from there would read nothing: a replay from it would
 * rebuild empty tables).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStartAt extends Schema.TaggedError<InvalidStartAt>("@sluice/nats/InvalidStartAt")(
  "InvalidStartAt",
  { stream: Schema.String, message: Schema.String }
) {}

const describeStartAt = (startAt: StartAt): string =>
  startAt._tag === "All"
    ? "the beginning"
    : startAt._tag === "Sequence"
    ? `sequence ${startAt.sequence}`
    : `time ${Number.isNaN(startAt.time.getTime()) ? "(invalid)" : startAt.time.toISOString()}`

/**
 * Checks that `startAt` is a valid start point of `stream` that still has messages to read: a
 * sequence is an integer from 1 to the stream's last sequence, a time is at or before its last
 * message's. Fails with {@link InvalidStartAt} otherwise (e.g. before a replay creates anything),
 * with a {@link NatsError} when the stream cannot be read (e.g. it does not exist).
 *
 * @example
 * ```ts
 * import { JetStreamSource } from "@sluice/nats"
 *
 * const program = JetStreamSource.checkStartAt("ORDERS", { _tag: "Sequence", sequence: 10 })
 * ```
 *
 * @since 0.1.0
 * @category management
 */
export const checkStartAt = Effect.fn("JetStreamSource.checkStartAt")(function*(stream: string, startAt: StartAt) {
  const invalid = (why: string) => new InvalidStartAt({ stream, message: `cannot start ${stream} at ${why}` })
  if (startAt._tag === "Sequence" && !(Number.isSafeInteger(startAt.sequence) && startAt.sequence >= 1)) {
    return yield* invalid(`${describeStartAt(startAt)}: stream sequences start at 1`)
  }
  if (startAt._tag === "Time" && Number.isNaN(startAt.time.getTime())) return yield* invalid("an invalid time")
  const { manager } = yield* JetStream
  const { state } = yield* Effect.tryPromise({
    try: () => manager.streams.info(stream),
    catch: natsError(`stream info ${stream}`)
  })
  if (startAt._tag === "All") return
  if (state.messages === 0) return yield* invalid(`${describeStartAt(startAt)}: the stream holds no messages`)
  const beyond = startAt._tag === "Sequence"
    ? startAt.sequence > state.last_seq
    : startAt.time.getTime() > Date.parse(state.last_ts)
  if (beyond) {
    return yield* invalid(
      `${describeStartAt(startAt)}: after its last message (sequence ${state.last_seq}, published ${state.last_ts})`
    )
  }
})

/**
 * Creates or updates the durable pull consumer `consumer` of `stream`, with explicit acks.
 *
 * @since 0.1.0
 * @category management
 */
export const ensureConsumer = Effect.fn("JetStreamSource.ensureConsumer")(function*(options: {
  readonly stream: string
  readonly consumer: string
  readonly ackWait?: Duration.Input | undefined
  readonly startAt?: StartAt | undefined
  readonly filterSubject?: string | undefined
}) {
  const { manager } = yield* JetStream
  const startAt = options.startAt ?? { _tag: "All" }
  const ackWait = Duration.toMillis(Duration.fromInputUnsafe(options.ackWait ?? "30 seconds"))
  yield* Effect.tryPromise({
    try: () =>
      manager.consumers.add(options.stream, {
        durable_name: options.consumer,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWait * 1_000_000,
        max_ack_pending: 10_000,
        ...(options.filterSubject === undefined ? {} : { filter_subject: options.filterSubject }),
        ...(startAt._tag === "All"
          ? { deliver_policy: DeliverPolicy.All }
          : startAt._tag === "Sequence"
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startAt.sequence }
          : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: startAt.time.toISOString() })
      }),
    catch: natsError(`ensure consumer ${options.stream}/${options.consumer}`)
  })
})

/**
 * The names of the stream's consumers, in code-unit order (e.g. to find the temporary consumers of
 * replays whose process died).
 *
 * @since 0.1.0
 * @category management
 */
export const consumers = Effect.fn("JetStreamSource.consumers")(function*(stream: string) {
  const { manager } = yield* JetStream
  return yield* Effect.tryPromise({
    try: async () => {
      const names: Array<string> = []
      for await (const info of manager.consumers.list(stream)) names.push(info.name)
      return names.sort()
    },
    catch: natsError(`list the consumers of ${stream}`)
  })
})

/**
 * Deletes the consumer (e.g. after a replay), ignoring one that does not exist.
 *
 * @since 0.1.0
 * @category management
 */
export const deleteConsumer = Effect.fn("JetStreamSource.deleteConsumer")(function*(stream: string, consumer: string) {
  const { manager } = yield* JetStream
  yield* Effect.promise(() => manager.consumers.delete(stream, consumer).catch(() => false))
})

/**
 * Publishes `payload` on `subject` with `Nats-Msg-Id: eventId`, waiting for JetStream's ack.
 * JetStream drops a message whose id it saw within its de-duplication window; pass
 * `bypassDedupe: true` to publish without that header (a duplicate the broker cannot catch: the
 * consumer's ledger must). The event id always travels in `Sluice-Event-Id`.
 *
 * @since 0.1.0
 * @category publishing
 */
export const publish = Effect.fn("JetStreamSource.publish")(function*(
  subject: string,
  payload: string | Uint8Array,
  options: { readonly eventId: string; readonly bypassDedupe?: boolean | undefined }
) {
  const { client } = yield* JetStream
  const h = headers()
  if (options.bypassDedupe !== true) h.set("Nats-Msg-Id", options.eventId)
  h.set("Sluice-Event-Id", options.eventId)
  return yield* Effect.tryPromise({
    try: () => client.publish(subject, payload, { headers: h }),
    catch: natsError(`publish ${subject}`)
  })
})

/**
 * Strict UTF-8: throws on invalid bytes; keeps a leading byte order mark, so that a message's payload (and
 * its dead letter) is its text exactly (the streaming runner decodes it without the mark).
 */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** A message's text, or `undefined` when its bytes are not valid UTF-8. */
const decodeStrict = (bytes: Uint8Array): string | undefined => {
  try {
    return strictDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * Whether the client stopped because the consumer or its stream is gone: a consumer deleted while it is
 * consumed ends the pull with status 409, which `consume` turns into an error only for a deleted consumer
 * (with `abort_on_missing_resource`; its other 409s it retries); a consumer or stream found missing when
 * the client checks on it, after missed heartbeats, is an API error with its code.
 */
const isMissingResource = (cause: unknown): boolean =>
  cause instanceof JetStreamApiError
    ? cause.code === JetStreamApiCodes.ConsumerNotFound || cause.code === JetStreamApiCodes.StreamNotFound
    : cause instanceof JetStreamError && (cause as { readonly code?: unknown }).code === 409

const sourceError = (location: string) => (cause: unknown) => {
  const message = cause instanceof Error ? cause.message : String(cause)
  return new SourceError.SourceError({
    source: location,
    // a consumer or stream that is gone stays gone: restarting recreates the consumer (`ensureConsumer`)
    reason: isMissingResource(cause)
      ? new SourceError.NotFound({ message })
      : new SourceError.ConnectionReset({ message })
  })
}

/**
 * The durable consumer `consumer` of `stream` as a streaming source. The consumer must exist
 * ({@link ensureConsumer}). On interruption the pull stops and the messages in the client's buffer
 * are left unacknowledged (JetStream redelivers them after `ack_wait`). A consumer or stream deleted
 * while it is consumed fails the stream with a `SourceError` `NotFound` (at once for a deleted
 * consumer, after missed heartbeats otherwise) rather than a silent wait for it to come back.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Streaming } from "@sluice/core"
 * import { JetStreamSource } from "@sluice/nats"
 *
 * declare const pipeline: Streaming.StreamingPipeline<unknown>
 * const program = Effect.gen(function*() {
 *   yield* JetStreamSource.ensureConsumer({ stream: "ORDERS", consumer: "daily-revenue" })
 *   yield* Streaming.run(pipeline, JetStreamSource.source({ stream: "ORDERS", consumer: "daily-revenue" }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const source = (options: {
  readonly stream: string
  readonly consumer: string
  /** The most messages buffered in the client (default 256). */
  readonly maxMessages?: number | undefined
}): Streaming.StreamSource<JetStream> => {
  const location = `nats:${options.stream}/${options.consumer}`
  return {
    location,
    messages: Stream.unwrap(Effect.gen(function*() {
      const { client } = yield* JetStream
      const consumer = yield* Effect.tryPromise({
        try: () => client.consumers.get(options.stream, options.consumer),
        catch: sourceError(location)
      })
      const messages = yield* Effect.acquireRelease(
        Effect.tryPromise({
          // a consumer (or stream) deleted while consumed fails the source, instead of a silent wait for it
          // to be created again that a stream created again never ends
          try: () => consumer.consume({ max_messages: options.maxMessages ?? 256, abort_on_missing_resource: true }),
          catch: sourceError(location)
        }),
        (messages) => Effect.promise(() => Promise.resolve(messages.close()).catch(() => undefined))
      )
      return Stream.fromAsyncIterable(messages, sourceError(location)).pipe(
        Stream.map((m): Streaming.Message => {
          const text = decodeStrict(m.data)
          const message: Streaming.Message = {
            eventId: m.headers?.get("Sluice-Event-Id") || m.headers?.get("Nats-Msg-Id") || `${m.info.stream}:${m.seq}`,
            payload: text ?? Utf8.escape(m.data),
            stream: m.info.stream,
            sequence: m.seq,
            publishedAt: Number(m.timestampNanos / 1_000_000n),
            ack: Effect.sync(() => m.ack())
          }
          return text === undefined ? { ...message, invalidBytes: m.data.slice() } : message
        })
      )
    }))
  }
}
