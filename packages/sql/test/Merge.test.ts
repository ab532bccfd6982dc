import { assert, describe, it, layer } from "@effect/vitest"
import {
  DeadLetter,
  Partition,
  Pipeline,
  RetryPolicy,
  type Sink,
  Source,
  SourceError,
  Transactor,
  Transform
} from "@sluice/core"
import { Merge, SqlSluice, Table, Testing } from "@sluice/sql"
import { Arbitrary, Deferred, Effect, Exit, Fiber, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"

// ---------------------------------------------------------------------------
// The records, the table and the sink under test
// ---------------------------------------------------------------------------

/** A change of the row (tenant, id): a new value at `version`, or its deletion. Key and version may be null. */
const Change = Schema.Struct({
  tenant: Schema.NullOr(Schema.String),
  id: Schema.NullOr(Schema.Int),
  version: Schema.NullOr(Schema.Int),
  value: Schema.Int,
  deleted: Schema.Boolean
})
type Change = typeof Change.Type

const columns: ReadonlyArray<Table.Column> = [
  { name: "tenant", type: "text" },
  { name: "id", type: "int" },
  { name: "version", type: "int" },
  { name: "value", type: "int" },
  { name: "deleted", type: "bool" }
]

const specOf = (table: string): Merge.Spec<Change> => ({
  table,
  key: ["tenant", "id"],
  columns,
  orderBy: "version",
  deleted: "deleted",
  toRow: (c) => [c.tenant, c.id, c.version, c.value, c.deleted]
})

let counter = 0
/** A fresh table (and its tombstones) of its own; `value` must be non-negative, to make a load fail mid-way. */
const freshTable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const table = `merge_${++counter}`
  yield* sql`CREATE TABLE ${sql(table)} (
    tenant text NOT NULL, id int NOT NULL, version int NOT NULL, value int NOT NULL CHECK (value >= 0),
    PRIMARY KEY (tenant, id))`
  yield* Merge.migrate(specOf(table))
  return table
})

const day = (i: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), i)

/** The rows of the table and of its tombstones, sorted, as `tenant/id@version=value` and `tenant/id@version`. */
const snapshot = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ tenant: string; id: number; version: number; value: number }>`
      SELECT tenant, id, version, value FROM ${sql(table)} ORDER BY tenant, id`
    const tombs = yield* sql<{ tenant: string; id: number; version: number }>`
      SELECT tenant, id, version FROM ${sql(`${table}_tombstones`)} ORDER BY tenant, id`
    return {
      rows: rows.map((r) => `${r.tenant}/${r.id}@${r.version}=${r.value}`),
      tombstones: tombs.map((r) => `${r.tenant}/${r.id}@${r.version}`)
    }
  })

// ---------------------------------------------------------------------------
// The model: plain TypeScript, independent of SQL
// ---------------------------------------------------------------------------

interface ModelEntry {
  readonly tenant: string
  readonly id: number
  readonly version: number
  /** The index of the partition whose load wrote the version. */
  readonly partition: number
  readonly value: number
  readonly deleted: boolean
}

/**
 * The strategy, record by record in arrival order, for the records of partition `partition`: a
 * change with a key and a version replaces the key's current version (a row or a deletion) when
 * (version, partition) is at least as recent. Others are dead letters.
 */
const applyModel = (state: Map<string, ModelEntry>, changes: ReadonlyArray<Change>, partition: number): number => {
  let dead = 0
  for (const c of changes) {
    if (c.tenant === null || c.id === null || c.version === null) {
      dead++
      continue
    }
    const k = `${c.tenant}/${c.id}`
    const current = state.get(k)
    if (
      current === undefined || current.version < c.version ||
      (current.version === c.version && current.partition <= partition)
    ) {
      state.set(k, { tenant: c.tenant, id: c.id, version: c.version, partition, value: c.value, deleted: c.deleted })
    }
  }
  return dead
}

const modelSnapshot = (state: Map<string, ModelEntry>) => {
  const entries = [...state.values()].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.id - b.id)
  return {
    rows: entries.filter((e) => !e.deleted).map((e) => `${e.tenant}/${e.id}@${e.version}=${e.value}`),
    tombstones: entries.filter((e) => e.deleted).map((e) => `${e.tenant}/${e.id}@${e.version}`)
  }
}

// ---------------------------------------------------------------------------
// Pipelines over in-memory partitions
// ---------------------------------------------------------------------------

const payloads = (changes: ReadonlyArray<Change>) =>
  changes.map((c, i) => ({ payload: JSON.stringify(c), position: i + 1 }))

const pipelineOf = (
  name: string,
  sink: Sink.Sink<Change, SqlClient.SqlClient>,
  extract: (partition: Partition.PartitionDate) => Stream.Stream<{ payload: string; position: number }, any>
) =>
  Pipeline.make({
    name,
    source: Source.make("memory", extract),
    transform: Transform.fromSchema(Change),
    sink,
    batchSize: 3,
    failureThreshold: 1,
    retry: RetryPolicy.make({ maxRetries: 0 })
  })

const inMemory = (partitions: ReadonlyArray<ReadonlyArray<Change>>) => (partition: Partition.PartitionDate) =>
  Stream.fromIterable(payloads(partitions[Partition.daysBetween(day(0), partition)] ?? []))

/** Writes batches straight through the sink, each in a transaction of its own. */
const writeBatches = (table: string, batches: ReadonlyArray<ReadonlyArray<Change>>) =>
  Effect.gen(function*() {
    const sink = Merge.make(specOf(table))
    const transactor = yield* Transactor.Transactor
    for (const batch of batches) yield* transactor.withTransaction(sink.write(day(0), batch))
  })

/** Writes the batches as one stream through the sink (one COPY into the staging table), in one transaction. */
const streamBatches = (table: string, batches: ReadonlyArray<ReadonlyArray<Change>>) =>
  Effect.gen(function*() {
    const sink = Merge.make(specOf(table))
    const transactor = yield* Transactor.Transactor
    yield* transactor.withTransaction(sink.writeBatches!(day(0), Stream.fromIterable(batches)))
  })

/** Both ways a sink takes batches: one by one (`write`), or as a stream (`writeBatches`). */
const writers = { write: writeBatches, stream: streamBatches } as const

const change = (
  tenant: string | null,
  id: number | null,
  version: number | null,
  value: number,
  deleted = false
): Change => ({ tenant, id, version, value, deleted })

// ---------------------------------------------------------------------------
// Arbitraries: small key and version domains, so that keys collide and versions tie
// ---------------------------------------------------------------------------

const small = (maximum: number) => Schema.Int.check(Schema.isBetween({ minimum: 0, maximum }))

const ChangeArbitrary = Arbitrary.schema(Schema.Struct({
  tenant: Schema.Literals(["a", "b"]),
  id: small(3),
  version: small(4),
  value: small(99),
  /** 0: a deletion. */
  kind: small(4),
  /** 0: the tenant is null, 1: the id is null, 2: the version is null. */
  hole: small(14)
})).pipe(Arbitrary.map((r): Change => ({
  tenant: r.hole === 0 ? null : r.tenant,
  id: r.hole === 1 ? null : r.id,
  version: r.hole === 2 ? null : r.version,
  value: r.value,
  deleted: r.kind === 0
})))

const Partitions = Arbitrary.array(Arbitrary.array(ChangeArbitrary, { maxLength: 8 }), { minLength: 1, maxLength: 4 })
const RunOrder = Arbitrary.array(Arbitrary.schema(small(3)), { minLength: 1, maxLength: 7 })

// ---------------------------------------------------------------------------

const withSluice = (backend: Testing.Backend) => SqlSluice.layer.pipe(Layer.provideMerge(backend.layer))

describe("Merge.make (spec)", () => {
  it("rejects a spec whose key, ordering or deleted column is not a column, or is misused", () => {
    const base = specOf("t")
    const bad: ReadonlyArray<Partial<Merge.Spec<Change>>> = [
      { key: [] },
      { key: ["tenant", "nope"] },
      { key: ["tenant", "tenant"] },
      { orderBy: "nope" },
      { orderBy: "id" },
      { deleted: "value" },
      { deleted: "nope" },
      { table: "a.b.c" },
      { table: "t; DROP TABLE x" },
      { columns: [...columns, { name: "sluice_arrival", type: "int" }] },
      { columns: [...columns, { name: "sluice_partition", type: "date" }] }
    ]
    for (const override of bad) {
      assert.throws(() => Merge.make({ ...base, ...override }), /invalid table spec/)
    }
    assert.strictEqual(Merge.tombstoneTable(base), "t_tombstones")
    assert.strictEqual(Merge.tombstoneTable({ ...base, tombstones: "s.gone" }), "s.gone")
    assert.strictEqual(Merge.tombstoneTable({ ...base, deleted: undefined }), undefined)
  })

  it("checks records: a NULL key column is MissingKey, a NULL version a RuleViolation", () => {
    const { check } = Merge.make(specOf("t"))
    assert.isUndefined(check!(change("a", 1, 1, 1)))
    const missing = check!(change(null, null, 1, 1))
    assert.strictEqual(missing?.errorType, "MissingKey")
    assert.deepStrictEqual(missing?.reason._tag === "MissingKey" ? missing.reason.columns : [], ["tenant", "id"])
    assert.strictEqual(check!(change("a", 1, null, 1))?.errorType, "RuleViolation")
  })
})

for (const backend of Testing.backends()) {
  layer(withSluice(backend), { timeout: "60 seconds", excludeTestServices: true })(
    `Merge.make [${backend.name}]`,
    (it) => {
      it.effect.prop(
        "for any sequence of partition runs (re-runs, duplicate keys, any arrival order, deletes, null keys) the table equals the model",
        [Partitions, RunOrder, Arbitrary.schema(Schema.Literals(["copy", "unnest"]))],
        ([partitions, order, load]) =>
          Effect.gen(function*() {
            const table = yield* freshTable
            const pipeline = pipelineOf(table, Merge.make({ ...specOf(table), load }), inMemory(partitions))
            const state = new Map<string, ModelEntry>()
            for (const i of order) {
              const index = i % partitions.length
              const batch = partitions[index]!
              const report = yield* Pipeline.run(pipeline, day(index))
              const dead = applyModel(state, batch, index)
              assert.strictEqual(report.read, batch.length)
              assert.strictEqual(report.deadLettered, dead)
              assert.strictEqual(report.loaded + report.deadLettered, report.read)
            }
            assert.deepStrictEqual(yield* snapshot(table), modelSnapshot(state))
          }),
        { arbitrary: { runs: 25 } }
      )

      it.effect("dead-letters records with a NULL key (MissingKey) or version at stage load, with their payload", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          const changes = [
            change("a", 1, 1, 10),
            change(null, 1, 1, 11),
            change("a", null, 2, 12),
            change("a", 2, null, 13),
            change("a", 2, 1, 14)
          ]
          const report = yield* Pipeline.run(pipelineOf(table, Merge.make(specOf(table)), inMemory([changes])), day(0))
          assert.deepStrictEqual([report.read, report.loaded, report.deadLettered], [5, 2, 3])
          const dead = yield* (yield* DeadLetter.DeadLetterStore).list(table)
          assert.deepStrictEqual(
            dead.map((d) => [d.position, d.stage, d.errorType, d.originalRecord]).sort(),
            [
              [2, "load", "MissingKey", JSON.stringify(changes[1])],
              [3, "load", "MissingKey", JSON.stringify(changes[2])],
              [4, "load", "RuleViolation", JSON.stringify(changes[3])]
            ]
          )
          assert.deepStrictEqual((yield* snapshot(table)).rows, ["a/1@1=10", "a/2@1=14"])
        }))

      for (const [via, writeAll] of Object.entries(writers)) {
        it.effect(`deduplicates a batch by key: latest version wins, ties to the later arrival, never a MERGE error (${via})`, () =>
          Effect.gen(function*() {
            const table = yield* freshTable
            yield* writeAll(table, [[
              change("a", 1, 3, 30),
              change("a", 1, 5, 50),
              change("a", 1, 1, 10),
              change("a", 1, 5, 51),
              change("a", 2, 2, 20),
              change("a", 2, 2, 21),
              change("a", 2, 2, 22),
              change("b", 1, 1, 1, true),
              change("b", 1, 0, 0)
            ]])
            assert.deepStrictEqual(yield* snapshot(table), {
              rows: ["a/1@5=51", "a/2@2=22"],
              tombstones: ["b/1@1"]
            })
            // out of order: an older version changes nothing, an equal one (a re-run) wins, a newer one wins
            yield* writeAll(table, [[change("a", 1, 4, 40)], [change("a", 2, 2, 23)], [change("a", 1, 6, 60)]])
            assert.deepStrictEqual((yield* snapshot(table)).rows, ["a/1@6=60", "a/2@2=23"])
          }))

        it.effect(`a deletion leaves a tombstone: an older upsert arriving later does not bring the row back (${via})`, () =>
          Effect.gen(function*() {
            const table = yield* freshTable
            yield* writeAll(table, [[change("a", 1, 5, 50)], [change("a", 1, 7, 0, true)]])
            assert.deepStrictEqual(yield* snapshot(table), { rows: [], tombstones: ["a/1@7"] })
            // late, older versions: ignored
            yield* writeAll(table, [[change("a", 1, 6, 60)], [change("a", 1, 2, 20), change("a", 1, 3, 30)]])
            assert.deepStrictEqual(yield* snapshot(table), { rows: [], tombstones: ["a/1@7"] })
            // a deletion of a key never seen also blocks its older versions
            yield* writeAll(table, [[change("b", 1, 4, 0, true)], [change("b", 1, 3, 30)]])
            assert.deepStrictEqual(yield* snapshot(table), { rows: [], tombstones: ["a/1@7", "b/1@4"] })
            // an older deletion of a live row changes nothing
            yield* writeAll(table, [[change("c", 1, 5, 50)], [change("c", 1, 4, 0, true)]])
            assert.deepStrictEqual((yield* snapshot(table)).rows, ["c/1@5=50"])
            // a version at least as recent as the deletion brings the key back and removes the tombstone
            yield* writeAll(table, [[change("a", 1, 7, 70)], [change("b", 1, 9, 90)]])
            assert.deepStrictEqual(yield* snapshot(table), {
              rows: ["a/1@7=70", "b/1@9=90", "c/1@5=50"],
              tombstones: []
            })
          }))

        it.effect(`refuses a batch with a NULL key (when called without the runner's check) and writes nothing (${via})`, () =>
          Effect.gen(function*() {
            const table = yield* freshTable
            const exit = yield* Effect.exit(
              writeAll(table, [[change("b", 1, 1, 1)], [change("a", 1, 1, 1), change("a", null, 1, 1)]])
            )
            assert.isTrue(Exit.isFailure(exit))
            // a stream is one COPY, whose rows are counted across its batches
            assert.match(String(exit), via === "stream" ? /row 2: id is null/ : /row 1: id is null/)
            // the first batch of `write` was merged in a transaction of its own; the stream merged nothing
            assert.deepStrictEqual(yield* snapshot(table), {
              rows: via === "stream" ? [] : ["b/1@1=1"],
              tombstones: []
            })
          }))
      }

      for (const load of ["copy", "unnest"] as const) {
        it.effect(`a tie on the version goes to the later partition, whatever order the partitions run in (${load})`, () =>
          Effect.gen(function*() {
            // every key has one version in both partitions: an upsert, or a deletion
            const partitions = [
              [change("a", 1, 1, 10), change("b", 1, 1, 0, true), change("c", 1, 1, 30), change("d", 1, 1, 40)],
              [change("a", 1, 1, 11), change("b", 1, 1, 21), change("c", 1, 1, 0, true), change("d", 1, 1, 40)]
            ]
            const expected = { rows: ["a/1@1=11", "b/1@1=21", "d/1@1=40"], tombstones: ["c/1@1"] }
            for (const order of [[0, 1], [1, 0], [0, 1, 0], [1, 0, 1, 0, 0]]) {
              const table = yield* freshTable
              const pipeline = pipelineOf(table, Merge.make({ ...specOf(table), load }), inMemory(partitions))
              for (const i of order) yield* Pipeline.run(pipeline, day(i))
              assert.deepStrictEqual(yield* snapshot(table), expected, `run order ${order.join(", ")}`)
            }
          }))
      }

      it.effect("migrate upgrades a table merged before it kept the partition: its rows lose every tie", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = `merge_${++counter}`
          // the table and its tombstones as they were created before the partition column existed
          yield* sql`CREATE TABLE ${sql(table)} (
            tenant text NOT NULL, id int NOT NULL, version int NOT NULL, value int NOT NULL, PRIMARY KEY (tenant, id))`
          yield* sql`CREATE TABLE ${sql(`${table}_tombstones`)} (
            tenant text NOT NULL, id int NOT NULL, version int NOT NULL, PRIMARY KEY (tenant, id))`
          yield* sql`INSERT INTO ${sql(table)} VALUES ('a', 1, 1, 10), ('a', 2, 2, 20)`
          yield* sql`INSERT INTO ${sql(`${table}_tombstones`)} VALUES ('b', 1, 1)`
          yield* Merge.migrate(specOf(table))
          yield* Merge.migrate(specOf(table))
          const transactor = yield* Transactor.Transactor
          yield* transactor.withTransaction(
            Merge.make(specOf(table)).write(day(0), [
              change("a", 1, 1, 11),
              change("a", 2, 1, 0),
              change("b", 1, 1, 12)
            ])
          )
          assert.deepStrictEqual(yield* snapshot(table), { rows: ["a/1@1=11", "a/2@2=20", "b/1@1=12"], tombstones: [] })
          const partitions = yield* sql<{ readonly p: string }>`
            SELECT ${sql(Merge.partitionColumn)}::text AS p FROM ${sql(table)} ORDER BY tenant, id`
          assert.deepStrictEqual(partitions.map((r) => r.p), [day(0), "-infinity", day(0)])
        }))

      it.effect("a deleted flag that is null or absent is false, batch by batch and in a stream", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          const transactor = yield* Transactor.Transactor
          // only deletions carry the flag: the other records leave it null
          const sink = Merge.make<Change>({
            ...specOf(table),
            toRow: (c) => [c.tenant, c.id, c.version, c.value, c.deleted || null]
          })
          yield* transactor.withTransaction(sink.write(day(0), [change("a", 1, 1, 10), change("a", 2, 1, 20, true)]))
          yield* transactor.withTransaction(
            sink.writeBatches!(day(0), Stream.make([change("b", 1, 1, 30)], [change("b", 2, 1, 40, true)]))
          )
          assert.deepStrictEqual(yield* snapshot(table), {
            rows: ["a/1@1=10", "b/1@1=30"],
            tombstones: ["a/2@1", "b/2@1"]
          })
        }))

      it.effect("a stream is staged in the session's own temporary table, whatever the search path holds", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE IF NOT EXISTS public.sluice_merge_staging (decoy int)`
          yield* sql.withTransaction(Effect.gen(function*() {
            yield* sql`SET LOCAL search_path = public, pg_temp`
            yield* Merge.make(specOf(table)).writeBatches!(day(0), Stream.make([change("a", 1, 1, 10)]))
          }))
          assert.deepStrictEqual((yield* snapshot(table)).rows, ["a/1@1=10"])
          const [decoys] = yield* sql<
            { readonly n: number }
          >`SELECT count(*)::int AS n FROM public.sluice_merge_staging`
          assert.strictEqual(decoys?.n, 0)
        }))

      it.effect("a load failing mid-way (a SQL error in a later batch, or the source) leaves the table as before", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          const sink = Merge.make(specOf(table))
          yield* writeBatches(table, [[change("a", 1, 1, 10), change("a", 2, 1, 20, true), change("a", 3, 1, 30)]])
          const before = yield* snapshot(table)
          // batches of 3: the first merges (updates a/1, deletes a/3, revives a/2), the second violates CHECK (value >= 0)
          const failing = [
            change("a", 1, 2, 11),
            change("a", 3, 2, 0, true),
            change("a", 2, 2, 21),
            change("b", 1, 1, 1),
            change("b", 2, 1, -1)
          ]
          const exit = yield* Effect.exit(Pipeline.run(pipelineOf(table, sink, inMemory([failing])), day(0)))
          assert.isTrue(Exit.isFailure(exit))
          assert.match(String(exit), /SinkError/)
          assert.deepStrictEqual(yield* snapshot(table), before)
          // the source fails after a batch was merged
          const sourceFails = (partition: Partition.PartitionDate) =>
            Stream.concat(
              inMemory([failing.slice(0, 3)])(partition),
              Stream.fail(
                new SourceError.SourceError({
                  source: "memory",
                  reason: new SourceError.NotFound({ message: "gone" })
                })
              )
            )
          const exit2 = yield* Effect.exit(Pipeline.run(pipelineOf(`${table}_b`, sink, sourceFails), day(0)))
          assert.isTrue(Exit.isFailure(exit2))
          assert.match(String(exit2), /NotFound/)
          assert.deepStrictEqual(yield* snapshot(table), before)
        }))

      it.effect("an interrupted load leaves the table as before, and the next load merges", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          yield* writeBatches(table, [[change("a", 1, 1, 10)]])
          const before = yield* snapshot(table)
          const sink = Merge.make(specOf(table))
          const written = yield* Deferred.make<void>()
          const signalling: Sink.Sink<Change, SqlClient.SqlClient> = {
            ...sink,
            write: (partition, rows) =>
              Effect.andThen(sink.write(partition, rows), Deferred.succeed(written, undefined)),
            // the stream path: once its first batch is on its way into the COPY
            writeBatches: (partition, batches) =>
              sink.writeBatches!(partition, Stream.tap(batches, () => Deferred.succeed(written, undefined)))
          }
          const hangs = (partition: Partition.PartitionDate) =>
            Stream.concat(
              inMemory([[change("a", 1, 2, 20), change("a", 2, 1, 1), change("b", 1, 1, 1)]])(partition),
              Stream.never
            )
          const fiber = yield* Effect.forkChild(Pipeline.run(pipelineOf(table, signalling, hangs), day(0)))
          yield* Deferred.await(written)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(yield* snapshot(table), before)
          yield* Pipeline.run(pipelineOf(table, sink, inMemory([[change("a", 1, 2, 20)]])), day(0))
          assert.deepStrictEqual((yield* snapshot(table)).rows, ["a/1@2=20"])
        }))

      it.effect("concurrent loads merging the same keys both succeed and converge (the table lock)", () =>
        Effect.gen(function*() {
          const table = yield* freshTable
          // distinct versions per key: the result does not depend on the order the loads commit in
          const partitions = [0, 1].map((p) =>
            Array.from({ length: 60 }, (_, i) => change("a", i % 20, i * 2 + p, i * 2 + p, (i + p) % 7 === 0))
          )
          const pipeline = pipelineOf(table, Merge.make(specOf(table)), inMemory(partitions))
          yield* Effect.all([Pipeline.run(pipeline, day(0)), Pipeline.run(pipeline, day(1))], { concurrency: 2 })
          const state = new Map<string, ModelEntry>()
          applyModel(state, [...partitions[0]!, ...partitions[1]!].sort((a, b) => a.version! - b.version!), 0)
          assert.deepStrictEqual(yield* snapshot(table), modelSnapshot(state))
        }))
    }
  )
}
