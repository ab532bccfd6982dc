/**
 * Retry policies: how transient failures are retried.
 *
 * A policy is plain data (so it can come from configuration) turned into an effect `Schedule`:
 * exponential backoff from `baseDelay` by `factor`, each delay jittered (×0.8–1.2) and then capped
 * at `maxDelay`, for at most `maxRetries` retries, and only while the failure says it is retryable.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Schedule } from "effect"
import * as SourceError from "./SourceError.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicy {
  readonly baseDelay: Duration.Duration
  readonly factor: number
  readonly maxDelay: Duration.Duration
  readonly maxRetries: number
  readonly jitter: boolean
}

/**
 * The default policy: 200 ms × 2ⁿ, jittered, capped at 10 s, at most 5 retries.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultPolicy: RetryPolicy = {
  baseDelay: Duration.millis(200),
  factor: 2,
  maxDelay: Duration.seconds(10),
  maxRetries: 5,
  jitter: true
}

/**
 * Makes a policy, filling the rest from {@link defaultPolicy}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly baseDelay?: Duration.Input | undefined
  readonly factor?: number | undefined
  readonly maxDelay?: Duration.Input | undefined
  readonly maxRetries?: number | undefined
  readonly jitter?: boolean | undefined
} = {}): RetryPolicy => ({
  baseDelay: options.baseDelay === undefined ? defaultPolicy.baseDelay : Duration.fromInputUnsafe(options.baseDelay),
  factor: options.factor ?? defaultPolicy.factor,
  maxDelay: options.maxDelay === undefined ? defaultPolicy.maxDelay : Duration.fromInputUnsafe(options.maxDelay),
  maxRetries: options.maxRetries ?? defaultPolicy.maxRetries,
  jitter: options.jitter ?? defaultPolicy.jitter
})

/**
 * Reads a policy from configuration (`SLUICE_RETRY_BASE_MS`, `SLUICE_RETRY_FACTOR`,
 * `SLUICE_RETRY_MAX_DELAY_MS`, `SLUICE_RETRY_MAX_RETRIES`, `SLUICE_RETRY_JITTER`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const config: Config.Config<RetryPolicy> = Config.all({
  baseDelay: Config.Int("SLUICE_RETRY_BASE_MS").pipe(Config.withDefault(200)),
  factor: Config.Number("SLUICE_RETRY_FACTOR").pipe(Config.withDefault(2)),
  maxDelay: Config.Int("SLUICE_RETRY_MAX_DELAY_MS").pipe(Config.withDefault(10_000)),
  maxRetries: Config.Int("SLUICE_RETRY_MAX_RETRIES").pipe(Config.withDefault(5)),
  jitter: Config.Boolean("SLUICE_RETRY_JITTER").pipe(Config.withDefault(true))
}).pipe(Config.map((c) =>
  make({
    baseDelay: Duration.millis(c.baseDelay),
    factor: c.factor,
    maxDelay: Duration.millis(c.maxDelay),
    maxRetries: c.maxRetries,
    jitter: c.jitter
  })
))

/**
 * The nominal (un-jittered, uncapped) delay before retry number `attempt` (1-based).
 *
 * @since 0.1.0
 * @category getters
 */
export const nominalDelay = (policy: RetryPolicy, attempt: number): Duration.Duration =>
  Duration.millis(Duration.toMillis(policy.baseDelay) * Math.pow(policy.factor, attempt - 1))

/**
 * The schedule of a policy. It retries only errors for which `isRetryable` holds
 * (by default: a retryable {@link SourceError.SourceError}) and calls `onRetry` before each retry.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RetryPolicy } from "@sluice/core"
 *
 * declare const fetchDay: Effect.Effect<string, unknown>
 * const robust = fetchDay.pipe(Effect.retry(RetryPolicy.schedule(RetryPolicy.make({ maxRetries: 3 }))))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = <E = unknown>(
  policy: RetryPolicy,
  options: {
    readonly isRetryable?: ((error: E) => boolean) | undefined
    readonly onRetry?: ((error: E, attempt: number, delay: Duration.Duration) => Effect.Effect<void>) | undefined
  } = {}
): Schedule.Schedule<Duration.Duration, E> => {
  const isRetryable = options.isRetryable ?? SourceError.isRetryable
  const capMillis = Duration.toMillis(policy.maxDelay)
  const base = Schedule.exponential(policy.baseDelay, policy.factor)
  const jittered = policy.jitter ? Schedule.jittered(base) : base
  return jittered.pipe(
    Schedule.modifyDelay(({ duration }) =>
      Effect.succeed(Duration.millis(Math.min(Duration.toMillis(duration), capMillis)))
    ),
    Schedule.setInputType<E>(),
    Schedule.while(({ input, attempt }) => attempt <= policy.maxRetries && isRetryable(input)),
    Schedule.tap(({ input, attempt, duration }) =>
      options.onRetry === undefined ? Effect.void : options.onRetry(input, attempt, duration)
    )
  )
}
