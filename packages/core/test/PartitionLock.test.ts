import { assert, describe, it } from "@effect/vitest"
import { Partition, PartitionLock } from "@sluice/core"
import { Deferred, Effect, Exit, Fiber } from "effect"

const day = Partition.makeUnsafe("2024-03-01")

describe("PartitionLock", () => {
  it.effect("guard: the work's own result while the lock is held", () =>
    Effect.gen(function*() {
      const lost = yield* Deferred.make<never, PartitionLock.LockLost>()
      const held: PartitionLock.Held = { lost: Deferred.await(lost) }
      assert.strictEqual(yield* Effect.succeed(42).pipe(PartitionLock.guard(held)), 42)
      assert.deepStrictEqual(yield* Effect.flip(PartitionLock.guard(Effect.fail("boom"), held)), "boom")
    }))

  it.effect("guard: a lost lock interrupts the work (its finalizers run) and fails with LockLost", () =>
    Effect.gen(function*() {
      const lost = yield* Deferred.make<never, PartitionLock.LockLost>()
      const started = yield* Deferred.make<void>()
      let finalized = false
      const work = Deferred.succeed(started, undefined).pipe(
        Effect.andThen(Effect.never),
        Effect.ensuring(Effect.sync(() => {
          finalized = true
        }))
      )
      const fiber = yield* Effect.forkChild(PartitionLock.guard(work, { lost: Deferred.await(lost) }))
      yield* Deferred.await(started)
      const error = new PartitionLock.LockLost({ pipeline: "orders", partition: day })
      yield* Deferred.fail(lost, error)
      assert.deepStrictEqual(yield* Effect.flip(Fiber.join(fiber)), error)
      assert.isTrue(finalized)
      assert.match(error.message, /^orders 2024-03-01: the lock was lost/)
    }))

  it.effect("the in-memory lock is never lost", () =>
    Effect.gen(function*() {
      const locks = yield* PartitionLock.PartitionLock
      const held = yield* locks.acquire("orders", day)
      assert.strictEqual(held, PartitionLock.neverLost)
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(Effect.succeed(1).pipe(PartitionLock.guard(held)))))
    }).pipe(Effect.scoped, Effect.provide(PartitionLock.PartitionLock.layerMemory)))
})
