/**
 * Sluice on NATS JetStream: a durable pull consumer as a streaming source.
 *
 * @since 0.1.0
 */
export * as JetStreamSource from "./JetStreamSource.ts"
export * as Testing from "./Testing.ts"
