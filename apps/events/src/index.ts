/**
 * The events sample app: an at-least-once event feed loaded by immutable append, deduplicated at
 * read time, with a two-day lookback for late deliveries.
 *
 * @since 0.1.0
 */
export * as Event from "./Event.ts"
export * as Events from "./Events.ts"
export * as Generator from "./Generator.ts"
export * as Tables from "./Tables.ts"
