import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy, SourceError } from "@sluice/core"
import { Clock, Duration, Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"

const transient = new SourceError.SourceError({
  source: "test",
  reason: new SourceError.HttpStatus({ status: 503, message: "Service Unavailable" })
})
const permanent = new SourceError.SourceError({
  source: "test",
  reason: new SourceError.HttpStatus({ status: 404, message: "Not Found" })
})

const PolicyInput = Schema.Struct({
  baseMs: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2_000 })),
  factor: Schema.Number.check(Schema.isBetween({ minimum: 1, maximum: 4 })),
  capMs: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 60_000 })),
  maxRetries: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 8 })),
  jitter: Schema.Boolean
})

/** Runs an always-failing effect under the policy, returning the attempt timestamps. */
const attemptTimes = (policy: RetryPolicy.RetryPolicy, error: SourceError.SourceError) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const fiber = yield* Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => Effect.sync(() => times.push(now))),
      Effect.andThen(Effect.fail(error)),
      Effect.retry(RetryPolicy.schedule(policy)),
      Effect.flip,
      Effect.forkChild
    )
    yield* TestClock.adjust(Duration.days(1))
    const failure = yield* Fiber.join(fiber)
    assert.strictEqual(failure, error)
    return times
  })

describe("RetryPolicy", () => {
  it.effect.prop(
    "retries transient errors with bounded, growing, capped, jittered delays",
    [PolicyInput],
    ([input]) =>
      Effect.gen(function*() {
        const policy = RetryPolicy.make({
          baseDelay: Duration.millis(input.baseMs),
          factor: input.factor,
          maxDelay: Duration.millis(input.capMs),
          maxRetries: input.maxRetries,
          jitter: input.jitter
        })
        const times = yield* attemptTimes(policy, transient)
        assert.strictEqual(times.length, input.maxRetries + 1, "one attempt plus maxRetries retries")
        for (let i = 1; i < times.length; i++) {
          const delay = times[i]! - times[i - 1]!
          const nominal = Duration.toMillis(RetryPolicy.nominalDelay(policy, i))
          const spread = input.jitter ? 0.2 : 0
          const lo = Math.min(nominal * (1 - spread), input.capMs)
          const hi = Math.min(nominal * (1 + spread), input.capMs)
          assert.isTrue(delay >= lo - 1e-6 && delay <= hi + 1e-6, `delay ${i} = ${delay} not in [${lo}, ${hi}]`)
          assert.isTrue(delay <= input.capMs + 1e-6, "the cap holds")
          if (i > 1) {
            assert.isTrue(
              Duration.toMillis(RetryPolicy.nominalDelay(policy, i)) >=
                Duration.toMillis(RetryPolicy.nominalDelay(policy, i - 1)),
              "nominal delays never shrink"
            )
          }
        }
      })
  )

  it.effect.prop("never retries a permanent error", [PolicyInput], ([input]) =>
    Effect.gen(function*() {
      const policy = RetryPolicy.make({ baseDelay: Duration.millis(input.baseMs), maxRetries: input.maxRetries })
      const times = yield* attemptTimes(policy, permanent)
      assert.strictEqual(times.length, 1)
    }))

  it("classifies reasons by type", () => {
    const reason = (r: SourceError.SourceErrorReason) =>
      new SourceError.SourceError({ source: "s", reason: r }).isRetryable
    assert.isTrue(reason(new SourceError.Timeout({ message: "t" })))
    assert.isTrue(reason(new SourceError.ConnectionRefused({ message: "t" })))
    assert.isTrue(reason(new SourceError.ConnectionReset({ message: "t" })))
    assert.isTrue(reason(new SourceError.HttpStatus({ status: 429, message: "t" })))
    assert.isTrue(reason(new SourceError.HttpStatus({ status: 500, message: "t" })))
    assert.isFalse(reason(new SourceError.HttpStatus({ status: 400, message: "t" })))
    assert.isFalse(reason(new SourceError.HttpStatus({ status: 403, message: "t" })))
    assert.isFalse(reason(new SourceError.NotFound({ message: "t" })))
    assert.isFalse(reason(new SourceError.MalformedConfig({ message: "t" })))
    assert.isFalse(reason(new SourceError.InvalidResponse({ message: "t" })))
  })
})
