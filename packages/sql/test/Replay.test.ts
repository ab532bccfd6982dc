import { assert, layer } from "@effect/vitest"
import { DeadLetter, Pipeline, Replay, RunLedger, Source, Transform } from "@sluice/core"
import { PartitionReplace } from "@sluice/sql"
import { Effect, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const Reading = Schema.Struct({ id: Schema.NonEmptyString, value: Schema.Int, day: Schema.String })
type Reading = typeof Reading.Type

/** The first release refuses values of 100 and more; the fix accepts them. */
const strict = Transform.fromSchema(Reading, {
  rules: [Transform.rule("small", (r) => r.value < 100 ? undefined : `value ${r.value} is too large`)]
})
const fixed = Transform.fromSchema(Reading)

const good = (d: string, id: string, value: number) => JSON.stringify({ id, value, day: d })

/** Per day: a good line, a large value (fails `strict` only), invalid JSON (fails both), a good line. */
const data = new Map<string, ReadonlyArray<string>>(
  [0, 1].map((i) => [day(i), [good(day(i), "a", 1), good(day(i), "b", 150), "{not json", good(day(i), "c", 2)]])
)
data.set(day(2), ["{still not json"])

const source = Source.make(
  "memory",
  (partition) => Stream.fromIterable((data.get(partition) ?? []).map((payload, i) => ({ payload, position: i + 1 })))
)

const pipelineOf = (name: string, transform: Transform.Transform<Reading>) =>
  Pipeline.make({
    name,
    source,
    transform,
    failureThreshold: 1,
    sink: PartitionReplace.make<Reading>({
      table: name,
      partitionColumn: "day",
      columns: [{ name: "day", type: "date" }, { name: "id", type: "text" }, { name: "value", type: "int" }],
      toRow: (r) => [r.day, r.id, r.value]
    })
  })

const setup = Effect.fnUntraced(function*(prefix: string) {
  const name = unique(prefix)
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE ${sql(name)} (day date NOT NULL, id text NOT NULL, value int NOT NULL)`
  const before = pipelineOf(name, strict)
  for (const i of [0, 1, 2]) yield* Pipeline.run(before, day(i))
  return { name, before, after: pipelineOf(name, fixed) }
})

const rowsOf = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly day: string; readonly n: number }>`
      SELECT day::text AS day, count(*)::int4 AS n FROM ${sql(table)} GROUP BY day ORDER BY day`)

const view = (ds: ReadonlyArray<DeadLetter.StoredDeadLetter>) =>
  ds.map((d) => `${d.partition}#${d.position} ${d.status} x${d.attempts} ${d.errorType}`)

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`Replay [${backend.name}]`, (it) => {
    it.effect("loads dead letters that now pass, keeps ids, totals and the rest with attempts + 1", () =>
      Effect.gen(function*() {
        const store = yield* DeadLetter.DeadLetterStore
        const ledger = yield* RunLedger.RunLedger
        const { after, name } = yield* setup("replay")
        const all = DeadLetter.statuses
        const first = yield* store.list(name, { status: all })
        assert.deepStrictEqual(view(first), [
          `${day(0)}#2 new x1 RuleViolation`,
          `${day(0)}#3 new x1 InvalidJson`,
          `${day(1)}#2 new x1 RuleViolation`,
          `${day(1)}#3 new x1 InvalidJson`,
          `${day(2)}#1 new x1 InvalidJson`
        ])
        // an operator gives up on day 1's invalid line
        assert.strictEqual(yield* store.discard(name, { ids: [first[3]!.id] }), 1)
        assert.strictEqual(yield* store.discard(name, { ids: [first[3]!.id] }), 0, "only new ones are discarded")

        const report = yield* Replay.run(after, {})
        assert.deepStrictEqual(
          report.partitions.map((p) => [p.partition, p.selected, p.replayed, p.stillFailing, p.rebuilt]),
          [[day(0), 2, 1, 1, true], [day(1), 1, 1, 0, true], [day(2), 1, 0, 1, false]]
        )
        assert.deepStrictEqual([report.selected, report.replayed, report.stillFailing, report.failed], [4, 2, 2, 0])

        const now = yield* store.list(name, { status: all })
        assert.deepStrictEqual(now.map((d) => d.id), first.map((d) => d.id), "every dead letter keeps its id")
        assert.deepStrictEqual(view(now), [
          `${day(0)}#2 replayed x1 RuleViolation`,
          `${day(0)}#3 new x2 InvalidJson`,
          `${day(1)}#2 replayed x1 RuleViolation`,
          `${day(1)}#3 discarded x2 InvalidJson`,
          `${day(2)}#1 new x2 InvalidJson`
        ])
        // totals: every rebuilt partition adds up, and its table holds exactly the loaded records
        const latest = yield* ledger.latest(name)
        assert.deepStrictEqual(latest.map((r) => [r.partition, r.read, r.loaded, r.deadLettered]), [
          [day(0), 4, 3, 1],
          [day(1), 4, 3, 1],
          [day(2), 1, 0, 1]
        ])
        assert.deepStrictEqual(yield* rowsOf(name), [{ day: day(0), n: 3 }, { day: day(1), n: 3 }])
        assert.strictEqual((yield* ledger.list(name, { start: day(2), end: day(2) })).length, 1, "day 2 not rebuilt")
        // counts are of new dead letters only; the default list is the partitions' dead letters as they stand
        assert.deepStrictEqual(yield* store.countByType(name), [{ errorType: "InvalidJson", count: 2 }])
        assert.deepStrictEqual((yield* store.list(name)).map((d) => d.status), ["new", "discarded", "new"])
        const shown = yield* store.get(name, first[0]!.id)
        assert.strictEqual(shown._tag === "Some" ? shown.value.originalRecord : "", good(day(0), "b", 150))

        // a second replay: nothing passes, the new ones get attempts + 1, nothing is rebuilt
        const again = yield* Replay.run(after, {})
        assert.deepStrictEqual([again.selected, again.replayed, again.stillFailing], [2, 0, 2])
        assert.deepStrictEqual(view(yield* store.list(name, { status: ["new"] })), [
          `${day(0)}#3 new x3 InvalidJson`,
          `${day(2)}#1 new x3 InvalidJson`
        ])

        // purge by age: only replayed and discarded ones, only those failed before the cutoff
        assert.strictEqual(yield* store.purge({ pipeline: name, before: 0, statuses: all }), 0)
        assert.strictEqual(
          yield* store.purge({ pipeline: name, before: Number.MAX_SAFE_INTEGER, statuses: ["replayed", "discarded"] }),
          3
        )
        assert.deepStrictEqual(view(yield* store.list(name, { status: all })), [
          `${day(0)}#3 new x3 InvalidJson`,
          `${day(2)}#1 new x3 InvalidJson`
        ])
      }))

    it.effect("replays by error type and by id; a re-run with the old code brings a replayed one back", () =>
      Effect.gen(function*() {
        const store = yield* DeadLetter.DeadLetterStore
        const { after, before, name } = yield* setup("replay_filter")
        const invalid = yield* Replay.run(after, { errorType: "InvalidJson" })
        assert.deepStrictEqual([invalid.selected, invalid.replayed, invalid.stillFailing], [3, 0, 3])
        const [rule] = yield* store.list(name, { partition: day(1), errorType: "RuleViolation" })
        const one = yield* Replay.run(after, { ids: [rule!.id] })
        assert.deepStrictEqual(one.partitions.map((p) => [p.partition, p.replayed, p.rebuilt]), [[day(1), 1, true]])
        assert.deepStrictEqual(view(yield* store.list(name, { status: DeadLetter.statuses })), [
          `${day(0)}#2 new x1 RuleViolation`,
          `${day(0)}#3 new x2 InvalidJson`,
          `${day(1)}#2 replayed x1 RuleViolation`,
          `${day(1)}#3 new x3 InvalidJson`,
          `${day(2)}#1 new x2 InvalidJson`
        ])
        // the old code again: day 1's large value fails again, and takes its dead letter back
        yield* Pipeline.run(before, day(1))
        const day1 = yield* store.list(name, { partition: day(1), status: DeadLetter.statuses })
        assert.deepStrictEqual(view(day1), [`${day(1)}#2 new x2 RuleViolation`, `${day(1)}#3 new x4 InvalidJson`])
        assert.strictEqual(day1[0]!.id, rule!.id)
      }))
  })
}
