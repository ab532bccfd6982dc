/**
 * The slowly changing dimensions of `Scd`, on every database backend: property tests against
 * the pure model of `ScdModel.ts` for any sequence of change batches (re-runs, duplicates,
 * late and out-of-order changes, shuffled partitions), the invariants of type 2 histories,
 * and examples of the rules.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, Pipeline, RetryPolicy, Source, SourceError, Transform } from "@sluice/core"
import { Scd, SqlSluice, Testing } from "@sluice/sql"
import { Arbitrary, Deferred, Effect, Exit, Fiber, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import {
  attributes,
  base,
  createAll,
  dimensionXmin,
  dump,
  dumpType1,
  dumpType2,
  dumpType3,
  hour,
  load,
  partitions,
  type Rec,
  toChange,
  toLog,
  tracked,
  truncate,
  type1,
  type2,
  type3
} from "./ScdFixtures.ts"
import * as Model from "./ScdModel.ts"

// ---------------------------------------------------------------------------
// Arbitraries: few keys, values and instants, so that ties, repeats and deletes are frequent
// ---------------------------------------------------------------------------

const RecFields = Schema.Struct({
  id: Schema.Literals([1, 2, 3]),
  // hours after 2024-01-01T00:00Z; 0, 24 and 48 coincide with a partition's start; null: no timestamp
  at: Schema.NullOr(Schema.Literals([0, 1, 2, 24, 25, 26, 48, 49, 50])),
  a: Schema.Literals(["x", "y"]),
  b: Schema.NullOr(Schema.Literals(["p", "q"])),
  u: Schema.Literals(["1", "2"]),
  deleteOneIn5: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))
})

const AnyRec = Arbitrary.map(
  Arbitrary.schema(RecFields),
  ({ deleteOneIn5, ...r }): Rec => ({ ...r, deleted: deleteOneIn5 === 0 })
)

const Run = Arbitrary.all({
  partition: Arbitrary.schema(Schema.Literals([0, 1, 2])),
  batch: Arbitrary.array(AnyRec, { maxLength: 6 }),
  /** Re-deliver the partition's previous batch instead (a plain re-run). */
  rerun: Arbitrary.schema(Schema.Boolean),
  /** Repeat the batch's first records at its end (duplicates in one file). */
  echo: Arbitrary.schema(Schema.Literals([0, 1, 2])),
  /** Hand the batches to the sink as one stream (one COPY into the change log), not one by one. */
  stream: Arbitrary.schema(Schema.Boolean)
})

const Runs = Arbitrary.array(Run, { minLength: 1, maxLength: 6 })

type Runs = ReadonlyArray<typeof Run extends Arbitrary.Arbitrary<infer A> ? A : never>

/** Loads the runs, in order, into every dimension of `scds`; returns the final change log. */
const play = (scds: ReadonlyArray<Scd.Scd<Rec>>, runs: Runs) =>
  Effect.gen(function*() {
    yield* truncate(scds)
    const final = new Map<number, ReadonlyArray<Rec>>()
    for (const run of runs) {
      const previous = final.get(run.partition)
      const batch = run.rerun && previous !== undefined ? previous : [...run.batch, ...run.batch.slice(0, run.echo)]
      final.set(run.partition, batch)
      for (const scd of scds) yield* load(scd, partitions[run.partition]!, batch, run.stream)
    }
    const last = runs[runs.length - 1]!
    return {
      log: toLog(final),
      last: { partition: partitions[last.partition]!, batch: final.get(last.partition)!, stream: !last.stream }
    }
  })

/**
 * What holds for every dimension after any history: a full rebuild finds nothing to change (the
 * incremental loads touched every key they had to), and re-running the last partition with the
 * same batch rewrites no row (same `xmin`).
 */
const idempotent = (
  scd: Scd.Scd<Rec>,
  last: {
    readonly partition: (typeof partitions)[number]
    readonly batch: ReadonlyArray<Rec>
    /** The re-run takes the other path than the last run did. */
    readonly stream: boolean
  }
) =>
  Effect.gen(function*() {
    const before = yield* dimensionXmin(scd)
    assert.deepStrictEqual(yield* scd.rebuild, { deleted: 0, updated: 0, inserted: 0 }, `rebuild of ${scd.dimension}`)
    yield* load(scd, last.partition, last.batch, last.stream)
    assert.deepStrictEqual(yield* dimensionXmin(scd), before, `re-run of ${scd.dimension} rewrote rows`)
  })

/** Instants every half hour around the generated ones, and the generated ones exactly. */
const probes = [
  ...Array.from({ length: 110 }, (_, i) => base + (i / 2 - 2) * hour),
  ...[0, 1, 2, 24, 25, 26, 48, 49, 50].map((h) => base + h * hour - 1)
]

/** SCD2 invariants, checked on the table alone, and its snapshots against the model's. */
const checkType2History = (
  rows: ReadonlyArray<Model.Type2Row>,
  log: Model.ChangeLog,
  deletes: "ignore" | "close" | "version"
) => {
  const byKey = new Map<number, Array<Model.Type2Row>>()
  for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row])
  const histories = Model.histories(log, { dropDeletes: deletes === "ignore" })
  for (const [key, history] of histories) {
    const versions = byKey.get(key) ?? []
    const hasLive = history.some((change) => !change.deleted)
    if (!hasLive) {
      assert.strictEqual(versions.length, 0, `key ${key} was never live`)
      continue
    }
    const closed = deletes === "close" && history[history.length - 1]!.deleted
    // exactly one current row per live key (the deleted version is current with "version")
    assert.strictEqual(versions.filter((v) => v.current).length, closed ? 0 : 1, `current rows of key ${key}`)
    versions.forEach((v, i) => {
      assert.isBelow(v.start, v.end, `key ${key}: empty interval`)
      assert.strictEqual(v.current, v.end === Model.openEnd, `key ${key}: is_current ⇔ open end`)
      const next = versions[i + 1]
      if (next === undefined) return
      // never an overlap; a gap only where a delete closed the version
      assert.isAtMost(v.end, next.start, `key ${key}: overlapping versions`)
      if (deletes !== "close") assert.strictEqual(v.end, next.start, `key ${key}: gap between versions`)
    })
  }
  for (const key of byKey.keys()) assert.isTrue(histories.has(key), `key ${key} has no change`)
  for (const at of probes) {
    const fromTable = new Map<number, { values: Record<string, string | null>; deleted: boolean }>()
    for (const row of rows) {
      if (row.start <= at && at < row.end) {
        assert.isFalse(fromTable.has(row.key), `two versions of key ${row.key} at ${new Date(at).toISOString()}`)
        fromTable.set(row.key, {
          values: Object.fromEntries(tracked.map((name) => [name, row.values[name] ?? null])),
          deleted: row.deleted
        })
      }
    }
    assert.deepStrictEqual(
      fromTable,
      Model.snapshotAt(log, tracked, deletes, at),
      `snapshot as of ${new Date(at).toISOString()}`
    )
  }
}

const sortRows = <A extends { readonly key: number; readonly start?: number }>(rows: Array<A>) =>
  rows.sort((x, y) => x.key - y.key || (x.start ?? 0) - (y.start ?? 0))

// ---------------------------------------------------------------------------
// Pipelines over in-memory lines, for the atomicity tests
// ---------------------------------------------------------------------------

const RecJson = Schema.Struct({
  id: Schema.NullOr(Schema.Int),
  at: Schema.NullOr(Schema.Finite),
  a: Schema.String,
  b: Schema.NullOr(Schema.String),
  u: Schema.String,
  deleted: Schema.Boolean
})

const linesSource = (lines: ReadonlyArray<Rec>, then: Stream.Stream<never, SourceError.SourceError> = Stream.empty) =>
  Source.make("memory", () =>
    Stream.concat(
      Stream.fromIterable(lines.map((r, i) => ({ payload: JSON.stringify(r), position: i + 1 }))),
      then
    ))

const pipelineOf = (scd: Scd.Scd<Rec>, source: Source.Source) =>
  Pipeline.make({
    name: `scd-${scd.dimension}`,
    source,
    transform: Transform.fromSchema(RecJson),
    sink: scd.sink,
    batchSize: 2,
    failureThreshold: 1,
    retry: RetryPolicy.make({ maxRetries: 0 })
  })

const rec = (id: number, at: number | null, a: string, extra: Partial<Rec> = {}): Rec => ({
  id,
  at,
  a,
  b: "p",
  u: "1",
  deleted: false,
  ...extra
})

const versionsOf = (scd: Scd.Scd<Rec>) =>
  Effect.map(
    dumpType2(scd),
    (rows) =>
      rows.map((r) =>
        `${r.key} ${r.values.a} [${(r.start - base) / hour}h, ${
          r.end === Model.openEnd ? "∞" : `${(r.end - base) / hour}h`
        })${r.current ? " current" : ""}${r.deleted ? " deleted" : ""}`
      )
  )

// ---------------------------------------------------------------------------

describe("Scd spec validation", () => {
  const spec = {
    changes: "raw.c",
    dimension: "dim.d",
    key: { name: "id", type: "int" } as const,
    attributes,
    toChange: () => ({ key: 1, values: [] })
  }
  const reasonOf = (f: () => unknown): string => {
    try {
      f()
    } catch (error) {
      assert.strictEqual((error as { readonly _tag?: unknown })._tag, "InvalidTableSpec")
      return (error as { readonly reason: string }).reason
    }
    return assert.fail("expected an InvalidTableSpec")
  }

  it("rejects tracked columns that are not attributes, reserved names and clashing columns", () => {
    assert.include(reasonOf(() => Scd.type2({ ...spec, tracked: ["zip"] })), "tracked column zip is not an attribute")
    assert.include(reasonOf(() => Scd.type3({ ...spec, tracked: ["a", "a"] })), "listed twice")
    assert.include(reasonOf(() => Scd.type1({ ...spec, dimension: "raw.c" })), "one table")
    assert.include(reasonOf(() => Scd.type1({ ...spec, dimension: "dim.d; drop table x" })), "expected `table`")
    assert.include(
      reasonOf(() => Scd.type2({ ...spec, attributes: [{ name: "is_current", type: "bool" }], tracked: [] })),
      "duplicate column is_current"
    )
    assert.include(
      reasonOf(() => Scd.type1({ ...spec, attributes: [{ name: "scd__x", type: "text" }] })),
      "scd__* is reserved"
    )
    assert.include(
      reasonOf(() => Scd.type1({ ...spec, attributes: [{ name: "is_deleted", type: "bool" }] })),
      "duplicate column is_deleted"
    )
    assert.include(
      reasonOf(() =>
        Scd.type3({ ...spec, attributes: [{ name: "c".repeat(60), type: "text" }], tracked: ["c".repeat(60)] })
      ),
      "invalid column name"
    )
  })
})

for (const backend of Testing.backends()) {
  layer(
    Layer.mergeAll(SqlSluice.layer, Layer.effectDiscard(createAll)).pipe(Layer.provideMerge(backend.layer)),
    { timeout: "120 seconds", excludeTestServices: true }
  )(`Scd [${backend.name}]`, (it) => {
    it.effect.prop(
      "type 1 equals the model for any batches, re-runs, duplicates and partition order (deletes ignored or applied)",
      [Runs],
      ([runs]) =>
        Effect.gen(function*() {
          const { last, log } = yield* play([type1.ignore, type1.delete], runs)
          assert.deepStrictEqual(yield* dumpType1(type1.ignore), sortRows(Model.type1(log, "ignore")))
          assert.deepStrictEqual(yield* dumpType1(type1.delete), sortRows(Model.type1(log, "delete")))
          yield* idempotent(type1.delete, last)
        }),
      { timeout: 60_000, arbitrary: { runs: 15 } }
    )

    it.effect.prop(
      "type 2 equals the model and keeps its invariants, for any history and each way of handling deletes",
      [Runs],
      ([runs]) =>
        Effect.gen(function*() {
          const { last, log } = yield* play([type2.ignore, type2.close, type2.version], runs)
          for (const deletes of ["ignore", "close", "version"] as const) {
            const rows = yield* dumpType2(type2[deletes])
            assert.deepStrictEqual(rows, sortRows(Model.type2(log, tracked, deletes)), `deletes: ${deletes}`)
            checkType2History(rows, log, deletes)
          }
          yield* idempotent(type2.close, last)
          yield* idempotent(type2.version, last)
        }),
      { timeout: 60_000, arbitrary: { runs: 20 } }
    )

    it.effect.prop(
      "type 3 equals the model: latest values and the value before each tracked column's last change",
      [Runs],
      ([runs]) =>
        Effect.gen(function*() {
          const { last, log } = yield* play([type3.ignore, type3.delete], runs)
          assert.deepStrictEqual(yield* dumpType3(type3.ignore), sortRows(Model.type3(log, tracked, "ignore")))
          assert.deepStrictEqual(yield* dumpType3(type3.delete), sortRows(Model.type3(log, tracked, "delete")))
          yield* idempotent(type3.delete, last)
        }),
      { timeout: 60_000, arbitrary: { runs: 15 } }
    )

    it.effect("load: unnest writes the change log batch by batch; the default streams it", () =>
      Effect.sync(() => {
        const spec = {
          changes: "raw.c",
          dimension: "dim.d",
          key: { name: "id", type: "int" },
          attributes,
          toChange
        } as const
        assert.isUndefined(Scd.type2<Rec>({ ...spec, tracked, load: "unnest" }).sink.writeBatches)
        assert.isDefined(Scd.type2<Rec>({ ...spec, tracked }).sink.writeBatches)
        assert.isDefined(type1.delete.sink.writeBatches)
      }))

    it.effect("a late change lands at its place in history; only its neighbour is rewritten", () =>
      Effect.gen(function*() {
        const scd = type2.close
        yield* truncate([scd])
        yield* load(scd, partitions[0]!, [rec(1, 1, "x")])
        yield* load(scd, partitions[1]!, [rec(1, 26, "y"), rec(1, 30, "y", { u: "2" })])
        assert.deepStrictEqual(yield* versionsOf(scd), ["1 x [1h, 26h)", "1 y [26h, ∞) current"])
        const before = yield* dimensionXmin(scd)
        // day 2 brings a change of hour 10: between the two versions
        yield* load(scd, partitions[2]!, [rec(1, 10, "z")])
        assert.deepStrictEqual(yield* versionsOf(scd), ["1 x [1h, 10h)", "1 z [10h, 26h)", "1 y [26h, ∞) current"])
        const after = yield* dimensionXmin(scd)
        assert.notDeepEqual(after[0], before[0], "the version before the late change is re-linked")
        assert.deepStrictEqual(after[2], before[1], "the version after it is not rewritten")
        // the untracked u of the current version is its latest change's
        assert.strictEqual((after[2] as { readonly u: string }).u, "2")
        // re-delivering day 2 without the change puts history back
        yield* load(scd, partitions[2]!, [])
        assert.deepStrictEqual(yield* versionsOf(scd), ["1 x [1h, 26h)", "1 y [26h, ∞) current"])
      }))

    it.effect("deletes close the current row, or add a deleted version; a later change re-opens", () =>
      Effect.gen(function*() {
        const history = [rec(1, 1, "x"), rec(1, 5, "x", { deleted: true }), rec(1, 7, "x", { deleted: true })]
        yield* truncate([type2.close, type2.version, type2.ignore])
        for (const scd of [type2.close, type2.version, type2.ignore]) yield* load(scd, partitions[0]!, history)
        assert.deepStrictEqual(yield* versionsOf(type2.close), ["1 x [1h, 5h)"])
        assert.deepStrictEqual(yield* versionsOf(type2.version), ["1 x [1h, 5h)", "1 x [5h, ∞) current deleted"])
        assert.deepStrictEqual(yield* versionsOf(type2.ignore), ["1 x [1h, ∞) current"])
        for (const scd of [type2.close, type2.version]) yield* load(scd, partitions[1]!, [rec(1, 30, "x")])
        assert.deepStrictEqual(yield* versionsOf(type2.close), ["1 x [1h, 5h)", "1 x [30h, ∞) current"])
        assert.deepStrictEqual(yield* versionsOf(type2.version), [
          "1 x [1h, 5h)",
          "1 x [5h, 30h) deleted",
          "1 x [30h, ∞) current"
        ])
      }))

    it.effect("changes of one key with the same timestamp: the later arrival wins, across partitions too", () =>
      Effect.gen(function*() {
        const scd = type1.delete
        yield* truncate([scd])
        yield* load(scd, partitions[1]!, [rec(1, 5, "x"), rec(1, 5, "y")])
        assert.deepStrictEqual((yield* dumpType1(scd)).map((r) => r.values.a), ["y"])
        // an earlier partition arrived earlier, whenever it is (re-)loaded
        yield* load(scd, partitions[0]!, [rec(1, 5, "x")])
        assert.deepStrictEqual((yield* dumpType1(scd)).map((r) => r.values.a), ["y"])
        yield* load(scd, partitions[2]!, [rec(1, 5, "x")])
        assert.deepStrictEqual((yield* dumpType1(scd)).map((r) => r.values.a), ["x"])
        // a delete with the same timestamp that arrives later deletes
        yield* load(scd, partitions[2]!, [rec(1, 5, "x"), rec(1, 5, "x", { deleted: true })])
        assert.deepStrictEqual(yield* dumpType1(scd), [])
      }))

    it.effect("a record without a change timestamp changes at the start of its partition's day", () =>
      Effect.gen(function*() {
        const scd = type2.ignore
        yield* truncate([scd])
        yield* load(scd, partitions[1]!, [rec(1, 30, "y"), rec(1, null, "x")])
        assert.deepStrictEqual(yield* versionsOf(scd), ["1 x [24h, 30h)", "1 y [30h, ∞) current"])
      }))

    it.effect("records without a key, or changed at or after 9999-12-31, are dead-lettered at stage load", () =>
      Effect.gen(function*() {
        const scd = type1.delete
        yield* truncate([scd])
        const pipeline = pipelineOf(
          scd,
          linesSource([
            rec(1, 1, "x"),
            { ...rec(1, 1, "x"), id: null },
            rec(2, (Scd.openEndMillis - base) / hour, "x"),
            rec(3, (Scd.openEndMillis - base) / hour - 1, "x")
          ])
        )
        const report = yield* Pipeline.run(pipeline, partitions[0]!)
        assert.deepInclude(report, { read: 4, loaded: 2, deadLettered: 2 })
        const dead = yield* (yield* DeadLetter.DeadLetterStore).list(pipeline.name)
        assert.deepStrictEqual(dead.map((d) => [d.position, d.stage, d.errorType]).sort(), [
          [2, "load", "MissingKey"],
          [3, "load", "RuleViolation"]
        ])
        assert.deepStrictEqual((yield* dumpType1(scd)).map((r) => r.key), [1, 3])
      }))

    it("a change timestamp out of range is dead-lettered naming its value and the range", () => {
      const messageAt = (millis: number) => {
        const error = type1.delete.sink.check!(rec(1, (millis - base) / hour, "x"))
        assert.strictEqual(error?.reason._tag, "RuleViolation")
        return error?.reason._tag === "RuleViolation" ? error.reason.message : ""
      }
      const range = "from 0001-01-01T00:00:00.000Z to before 9999-12-31T00:00:00.000Z"
      // an hour before the earliest: the instant of 0001-01-01T00:00:00+01:00
      assert.strictEqual(
        messageAt(Date.parse("0000-12-31T23:00:00Z")),
        `changed_at 0000-12-31T23:00:00.000Z is out of range: a change timestamp must be ${range}`
      )
      assert.strictEqual(
        messageAt(Scd.openEndMillis),
        `changed_at 9999-12-31T00:00:00.000Z is out of range: a change timestamp must be ${range}`
      )
      assert.strictEqual(
        messageAt(Number.NaN),
        `changed_at NaN is out of range: a change timestamp must be ${range}`
      )
      assert.isUndefined(type1.delete.sink.check!(rec(1, (Date.parse("0001-01-01T00:00:00Z") - base) / hour, "x")))
    })

    it.effect("a load failing mid-way, in the source or in the dimension, leaves both tables as before", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const scd = Scd.type2<Rec>({
          changes: "raw.changes_atomic",
          dimension: "dim.atomic",
          key: { name: "id", type: "int" },
          attributes,
          tracked,
          toChange
        })
        yield* scd.createTables
        yield* sql`ALTER TABLE dim.atomic ADD CONSTRAINT no_boom CHECK (a <> 'boom')`
        yield* Pipeline.run(
          pipelineOf(scd, linesSource([rec(1, 1, "x"), rec(2, 2, "x"), rec(1, 3, "y")])),
          partitions[0]!
        )
        const before = yield* dump(scd)
        assert.strictEqual(before.dimension.length, 3)

        // the dimension step fails after the change log was replaced
        const boom = [rec(1, 2, "z"), rec(2, 1, "boom"), rec(3, 1, "x")]
        for (const partition of [partitions[0]!, partitions[1]!]) {
          const exit = yield* Effect.exit(Pipeline.run(pipelineOf(scd, linesSource(boom)), partition))
          assert.isTrue(Exit.isFailure(exit))
          assert.deepStrictEqual(yield* dump(scd), before)
        }

        // the source fails after a batch was written
        const failing = Stream.fail(
          new SourceError.SourceError({ source: "memory", reason: new SourceError.NotFound({ message: "gone" }) })
        )
        const exit = yield* Effect.exit(
          Pipeline.run(
            pipelineOf(scd, linesSource([rec(1, 2, "z"), rec(4, 1, "x"), rec(5, 1, "x")], failing)),
            partitions[0]!
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.deepStrictEqual(yield* dump(scd), before)
      }))

    it.effect("an interrupted load leaves both tables as before", () =>
      Effect.gen(function*() {
        const scd = type2.version
        yield* truncate([scd])
        yield* Pipeline.run(pipelineOf(scd, linesSource([rec(1, 1, "x"), rec(2, 2, "x")])), partitions[0]!)
        const before = yield* dump(scd)
        const written = yield* Deferred.make<void>()
        const hang = Stream.fromEffect(Deferred.succeed(written, undefined).pipe(Effect.andThen(Effect.never)))
        const fiber = yield* Effect.forkChild(
          Pipeline.run(
            pipelineOf(scd, linesSource([rec(1, 2, "z"), rec(1, 3, "y", { deleted: true }), rec(3, 1, "x")], hang)),
            partitions[0]!
          )
        )
        yield* Deferred.await(written)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* dump(scd), before)
      }))

    it.effect("concurrent loads of different partitions see each other's changes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const scd = type2.close
        yield* truncate([scd])
        const written = [yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
        const day = (p: 0 | 1, recs: ReadonlyArray<Rec>) =>
          sql.withTransaction(Effect.gen(function*() {
            yield* scd.sink.prepare(partitions[p]!)
            yield* scd.sink.write(partitions[p]!, recs)
            // on PostgreSQL (two connections) both loads are now between write and complete;
            // PGlite has one connection, so its transactions cannot overlap
            if (backend.name === "postgres") {
              yield* Deferred.succeed(written[p], undefined)
              yield* Deferred.await(written[1 - p]!)
            }
            yield* scd.sink.complete(partitions[p]!)
          }))
        const batches = [[rec(1, 1, "x"), rec(2, 30, "y")], [rec(1, 26, "y"), rec(2, 2, "x")]] as const
        yield* Effect.all([day(0, batches[0]), day(1, batches[1])], { concurrency: 2 })
        const log = toLog(new Map([[0, batches[0]], [1, batches[1]]]))
        assert.deepStrictEqual(yield* dumpType2(scd), sortRows(Model.type2(log, tracked, "close")))
      }))
  })
}
