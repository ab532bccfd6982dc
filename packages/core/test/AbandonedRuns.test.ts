import { assert, describe, it } from "@effect/vitest"
import { AbandonedRuns, PartitionLock, RunLedger } from "@sluice/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { day } from "./fixtures.ts"

const layer = Layer.mergeAll(RunLedger.RunLedger.layerMemory, PartitionLock.PartitionLock.layerMemory)

const statuses = (pipeline: string) =>
  Effect.map(
    Effect.flatMap(RunLedger.RunLedger, (ledger) => ledger.list(pipeline)),
    (runs) => Object.fromEntries(runs.map((r) => [r.runId, `${r.status}:${r.errorType ?? ""}`]))
  )

describe("AbandonedRuns", () => {
  it.effect("closes a running run whose lock nobody holds; a run whose lock is held stays running", () =>
    Effect.gen(function*() {
      const ledger = yield* RunLedger.RunLedger
      const lock = yield* PartitionLock.PartitionLock
      yield* ledger.start({ runId: "dead", pipeline: "p", partition: day(0), startedAt: 1_000 })
      yield* ledger.start({ runId: "done", pipeline: "p", partition: day(1), startedAt: 1_000 })
      yield* ledger.finish("done", {
        status: "succeeded",
        read: 1,
        loaded: 1,
        deadLettered: 0,
        retries: 0,
        failureRate: 0,
        alerted: false,
        endedAt: 1_500
      })
      const scope = yield* Scope.make()
      yield* Scope.provide(lock.acquire("p", day(2)), scope)
      yield* ledger.start({ runId: "live", pipeline: "p", partition: day(2), startedAt: 2_000 })
      yield* ledger.start({ runId: "other", pipeline: "q", partition: day(0), startedAt: 2_000 })

      const closed = yield* AbandonedRuns.close("p")
      assert.deepStrictEqual(closed.map((r) => r.runId), ["dead"])
      assert.deepStrictEqual(yield* statuses("p"), {
        dead: "failed:Abandoned",
        done: "succeeded:",
        live: "running:"
      })
      const dead = (yield* ledger.list("p")).find((r) => r.runId === "dead")
      assert.strictEqual(dead?.error, AbandonedRuns.error)
      assert.deepStrictEqual(yield* statuses("q"), { other: "running:" }, "other pipelines are not touched")
      assert.deepStrictEqual(yield* AbandonedRuns.close("p"), [], "nothing left to close")

      // once the live run's process lets go of the lock without finishing, it is abandoned too
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual((yield* AbandonedRuns.close("p")).map((r) => r.runId), ["live"])
      assert.strictEqual((yield* statuses("p"))["live"], "failed:Abandoned")
    }).pipe(Effect.provide(layer)))

  it.effect("the in-memory ledger's start closes a run of the same partition left running", () =>
    Effect.gen(function*() {
      const ledger = yield* RunLedger.RunLedger
      yield* ledger.start({ runId: "dead", pipeline: "p", partition: day(0), startedAt: 1_000 })
      yield* ledger.start({ runId: "other-day", pipeline: "p", partition: day(1), startedAt: 1_000 })
      yield* ledger.start({ runId: "next", pipeline: "p", partition: day(0), startedAt: 2_000 })
      assert.deepStrictEqual(yield* statuses("p"), {
        dead: "failed:Abandoned",
        "other-day": "running:",
        next: "running:"
      })
    }).pipe(Effect.provide(layer)))
})
