/**
 * Two processes on one PostgreSQL database, played by two connection pools (two
 * `Database.layerPostgres` on the same fresh database, each with its own Sluice services): runs of
 * one pipeline and partition never write twice, the second one fails with `PartitionLocked`.
 * PostgreSQL only: PGlite is single-process by construction (its data directory is locked).
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import type { Generator } from "@sluice-app/daily-revenue"
import { Pipeline, Source } from "@sluice/core"
import { Database, Testing } from "@sluice/sql"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { assertLoaded, backfill, generate, layerOn, type OrdersPipeline, pipelineOn, runs } from "./fixtures.ts"

const url = Testing.postgresUrl()

/** Two pools on one fresh database, built at once, as two processes starting together would. */
const twoPools = Effect.gen(function*() {
  const database = yield* Testing.freshDatabase(url!)
  return yield* Effect.all([
    Layer.build(layerOn(Database.layerPostgres(database))),
    Layer.build(layerOn(Database.layerPostgres(database)))
  ], { concurrency: 2 })
})

const isLocked = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Fail" && r.error._tag === "PartitionLocked")

describe.runIf(url !== undefined)("two pools on one PostgreSQL database", () => {
  it.live("a run of a partition held by the other pool fails with PartitionLocked and writes nothing", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoPools
      const { directory, manifest } = yield* generate({ start: "2024-12-01", days: 2, seed: 31 })
      const [day, other] = manifest.days as readonly [Generator.DayManifest, Generator.DayManifest]
      const base = pipelineOn(directory)
      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const gated: OrdersPipeline = {
        ...base,
        batchSize: 50,
        source: Source.make(base.source.location, (p) =>
          Stream.concat(
            base.source.extract(p),
            Stream.fromEffectDrain(Effect.andThen(Deferred.succeed(held, undefined), Deferred.await(release)))
          ))
      }
      const first = yield* Effect.forkChild(Pipeline.run(gated, day.date).pipe(Effect.provideContext(a)))
      yield* Deferred.await(held) // a has loaded every batch in its open transaction
      const second = yield* Effect.exit(Pipeline.run(base, day.date).pipe(Effect.provideContext(b)))
      assert.isTrue(isLocked(second), `expected PartitionLocked, got ${second}`)
      // the lock is the partition's: b loads another day meanwhile
      yield* Pipeline.run(base, other.date).pipe(Effect.provideContext(b))
      yield* Deferred.succeed(release, undefined)
      const report = yield* Fiber.join(first)
      assert.strictEqual(report.loaded, day.good)

      for (const context of [a, b]) {
        yield* Effect.gen(function*() {
          yield* assertLoaded(directory, day)
          yield* assertLoaded(directory, other)
          assert.deepStrictEqual(
            (yield* runs).map((r) => [r.partition, r.status]).toSorted(),
            [[day.date, "succeeded"], [other.date, "succeeded"]],
            "the locked-out run recorded nothing"
          )
        }).pipe(Effect.provideContext(context))
      }
      // once released, the other pool can run the partition
      yield* Pipeline.run(base, day.date).pipe(Effect.provideContext(b))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  it.live("racing runs of one partition from two pools end as one run's load", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoPools
      const { directory, manifest } = yield* generate({ start: "2024-12-10", days: 1, seed: 32 })
      const day = manifest.days[0]!
      const pipeline = pipelineOn(directory)
      let succeeded = 0
      let locked = 0
      for (let i = 0; i < 8; i++) {
        const exits = yield* Effect.all([
          Effect.exit(Pipeline.run(pipeline, day.date).pipe(Effect.provideContext(a))),
          Effect.exit(Pipeline.run(pipeline, day.date).pipe(Effect.provideContext(b)))
        ], { concurrency: 2 })
        for (const exit of exits) {
          if (Exit.isSuccess(exit)) succeeded++
          else if (isLocked(exit)) locked++
          else assert.fail(`a racing run failed otherwise: ${exit}`)
        }
        assert.isTrue(exits.some(Exit.isSuccess), "one of two racing runs loads")
      }
      assert.strictEqual(succeeded + locked, 16)
      assert.isAbove(locked, 0, "the racing runs overlapped")
      yield* Effect.gen(function*() {
        yield* assertLoaded(directory, day)
        const ledger = yield* runs
        assert.strictEqual(ledger.length, succeeded, "one run per load, none for a locked-out attempt")
        assert.isTrue(ledger.every((r) => r.status === "succeeded"))
      }).pipe(Effect.provideContext(a))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  // Every advisory lock of a process is held by one session, so a backfill with more partitions in
  // flight than the pool has connections still completes (each run needs one connection at a time).
  it.live("a backfill with more partitions in flight than the pool has connections completes", () =>
    Effect.gen(function*() {
      const database = yield* Testing.freshDatabase(url!)
      const context = yield* Layer.build(layerOn(Database.layerPostgres(database, { maxConnections: 3 })))
      const { directory, partitions } = yield* generate({ start: "2024-12-20", days: 6, seed: 33 })
      const report = yield* backfill(pipelineOn(directory), partitions, 6).pipe(
        Effect.provideContext(context),
        Effect.timeoutOption("60 seconds")
      )
      assert.isTrue(Option.isSome(report), "the backfill hung")
      assert.deepStrictEqual(
        Option.getOrThrow(report).outcomes.map((o) => o._tag),
        partitions.map(() => "Succeeded")
      )
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})
