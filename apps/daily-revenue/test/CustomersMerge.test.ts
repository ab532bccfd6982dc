import { NodeFileSystem, NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { DeadLetter, Partition, Pipeline, RetryPolicy } from "@sluice/core"
import { SqlSluice, Testing } from "@sluice/sql"
import { Arbitrary, Effect, FileSystem, Layer, Result, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { CustomerTransform } from "../src/Customer.ts"
import * as CustomerFeed from "../src/CustomerFeed.ts"
import * as CustomersMerge from "../src/CustomersMerge.ts"
import * as DailyRevenue from "../src/DailyRevenue.ts"

const day = (i: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), i)
const noRetry = RetryPolicy.make({ maxRetries: 0 })

const appLayer = (backend: Testing.Backend) =>
  Layer.mergeAll(SqlSluice.layer, Layer.effectDiscard(DailyRevenue.setup)).pipe(
    Layer.provideMerge(backend.layer),
    Layer.merge(Layer.mergeAll(NodeFileSystem.layer, NodeHttpClient.layerUndici))
  )

/** `raw.customers` and its tombstones, sorted by id, timestamps as ISO text. */
const snapshot = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const iso = (column: string) => sql`to_char(${sql(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
  const rows = yield* sql<{ readonly row: string }>`
    SELECT concat_ws('|', customer_id, name, coalesce(email, '∅'), city, ${iso("updated_at")}) AS row
    FROM raw.customers ORDER BY customer_id`
  const tombs = yield* sql<{ readonly row: string }>`
    SELECT concat_ws('|', customer_id, ${iso("updated_at")}) AS row FROM raw.customers_tombstones ORDER BY customer_id`
  return { rows: rows.map((r) => r.row), tombstones: tombs.map((r) => r.row) }
})

const reset = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE raw.customers, raw.customers_tombstones`)

/**
 * The model of the merge over the feed's lines of day `day` in arrival order, on plain JSON
 * (independent of the app's schema and of SQL): per customer, the change with the greatest
 * `updated_at` wins, ties to the later day, then to the later arrival; a deletion is a change too.
 * Returns the number of changes without an id.
 */
interface Version {
  readonly at: number
  readonly day: string
  readonly row: string | undefined
}
const applyModel = (state: Map<number, Version>, lines: ReadonlyArray<string>, day: string): number => {
  let missing = 0
  for (const line of lines) {
    const c = JSON.parse(line) as Record<string, unknown>
    const id = c.customer_id as number | null | undefined
    if (id === null || id === undefined) {
      missing++
      continue
    }
    const at = Date.parse(c.updated_at as string)
    const current = state.get(id)
    if (current !== undefined && (current.at > at || (current.at === at && current.day > day))) continue
    const iso = new Date(at).toISOString()
    state.set(id, {
      at,
      day,
      row: c.deleted === true ? undefined : [id, c.name, c.email ?? "∅", c.city, iso].join("|")
    })
  }
  return missing
}
const modelSnapshot = (state: Map<number, Version>) => {
  const entries = [...state].sort(([a], [b]) => a - b)
  return {
    rows: entries.flatMap(([, v]) => v.row === undefined ? [] : [v.row]),
    tombstones: entries.flatMap(([id, v]) => v.row === undefined ? [`${id}|${new Date(v.at).toISOString()}`] : [])
  }
}

describe("CustomerFeed", () => {
  it("is deterministic, and has several changes per customer, deletions, late changes, ties and missing ids", () => {
    const lines = [0, 1, 2, 3, 4, 5, 6].flatMap((i) => CustomerFeed.day(day(i), { seed: 3 }))
    assert.deepStrictEqual(CustomerFeed.day(day(0), { seed: 3 }), CustomerFeed.day(day(0), { seed: 3 }))
    assert.notDeepEqual(CustomerFeed.day(day(0), { seed: 3 }), CustomerFeed.day(day(0), { seed: 4 }))
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    const perDay = CustomerFeed.day(day(0), { seed: 3 }).map((l) => (JSON.parse(l) as { customer_id?: number }))
    assert.isBelow(new Set(perDay.map((c) => c.customer_id)).size, perDay.length)
    assert.isTrue(records.some((r) => r.deleted === true))
    assert.isTrue(records.some((r) => r.customer_id === null || !("customer_id" in r)))
    const days = [0, 1, 2, 3, 4, 5, 6].map((i) =>
      CustomerFeed.day(day(i), { seed: 3 }).map((l) => JSON.parse(l) as { customer_id?: number; updated_at: string })
    )
    const late = days.flatMap((changes, i) => changes.filter((c) => !c.updated_at.startsWith(day(i))))
    assert.isNotEmpty(late)
    const ties = days.flatMap((changes) =>
      changes.filter((c, j) =>
        changes.findIndex((d) => d.customer_id === c.customer_id && d.updated_at === c.updated_at) !== j
      )
    )
    assert.isNotEmpty(ties)
    // every line decodes: the feed's only defect is a missing id, which the merge dead-letters
    for (const [i, payload] of lines.entries()) {
      assert.isTrue(Result.isSuccess(CustomerTransform({ payload, position: i + 1 }, day(0))), payload)
    }
  })
})

describe("CustomerTransform updated_at", () => {
  const updatedAt = (updated_at: string) => {
    const payload = JSON.stringify({ customer_id: 1, name: "Ann", city: "Oslo", updated_at })
    const result = CustomerTransform({ payload, position: 1 }, day(0))
    return Result.isSuccess(result) ? new Date(result.success.updated_at).toISOString() : result.failure.errorType
  }

  it("rejects what Date.parse would roll over to another instant: impossible dates, 24:00, offsets past 14 hours", () => {
    for (
      const text of [
        "2024-02-30T10:00:00Z",
        "2023-02-29T10:00:00Z",
        "2024-04-31T10:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T10:00:00+23:59",
        "2024-03-01T10:00:00+14:60",
        "2024-03-01T10:00:00+14:01",
        "2024-03-01T10:00:00+14:30",
        "2024-03-01T10:00:00-14:59"
      ]
    ) {
      assert.strictEqual(updatedAt(text), "SchemaMismatch", text)
    }
  })

  it("decodes real instants to the instant they name", () => {
    assert.strictEqual(updatedAt("2024-02-29T23:59:59.999Z"), "2024-02-29T23:59:59.999Z")
    assert.strictEqual(updatedAt("2024-03-01T00:30:00+14:00"), "2024-02-29T10:30:00.000Z")
    assert.strictEqual(updatedAt("2024-03-01T10:00:00-12:00"), "2024-03-01T22:00:00.000Z")
    assert.strictEqual(updatedAt("2024-03-01T10:00:00-14:00"), "2024-03-02T00:00:00.000Z")
    assert.strictEqual(updatedAt("2024-03-01T10:00:00+05:45"), "2024-03-01T04:15:00.000Z")
  })

  it("decodes the epoch and the instants before it: 0 and negative milliseconds are instants too", () => {
    for (const text of ["1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.000Z", "0001-01-01T00:00:00.000Z"]) {
      assert.strictEqual(updatedAt(text), text)
    }
    assert.strictEqual(updatedAt("1970-01-01T01:00:00+01:00"), "1970-01-01T00:00:00.000Z")
  })
})

for (const backend of Testing.backends()) {
  layer(appLayer(backend), { timeout: "60 seconds", excludeTestServices: true })(
    `customers-merge [${backend.name}]`,
    (it) => {
      it.effect.prop(
        "any sequence of runs (re-runs, days in any order) gives the model's table; missing ids are dead letters",
        [
          Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))),
          Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))), {
            minLength: 1,
            maxLength: 6
          })
        ],
        ([seed, order]) =>
          Effect.gen(function*() {
            yield* reset
            const pipeline = CustomersMerge.make(`generated:${seed}`, { retry: noRetry })
            const state = new Map<number, Version>()
            for (const i of order) {
              const report = yield* Pipeline.run(pipeline, day(i))
              const missing = applyModel(state, CustomerFeed.day(day(i), { seed }), day(i))
              assert.strictEqual(report.deadLettered, missing)
              assert.strictEqual(report.loaded + report.deadLettered, report.read)
              const dead = yield* (yield* DeadLetter.DeadLetterStore).countByType(CustomersMerge.name, {
                partition: day(i)
              })
              assert.deepStrictEqual(dead, missing === 0 ? [] : [{ errorType: "MissingKey", count: missing }])
            }
            assert.deepStrictEqual(yield* snapshot, modelSnapshot(state))
          }),
        { arbitrary: { runs: 8 } }
      )

      it.effect("reads the same feed from files: a deletion is not undone by a late, older change", () =>
        Effect.gen(function*() {
          yield* reset
          const fs = yield* FileSystem.FileSystem
          const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-customers-" })
          yield* CustomerFeed.generate({ directory, start: day(0), days: 2, seed: 5 })
          const files = CustomersMerge.make(directory, { retry: noRetry })
          yield* Pipeline.run(files, day(0))
          yield* Pipeline.run(files, day(1))
          const state = new Map<number, Version>()
          applyModel(state, CustomerFeed.day(day(0), { seed: 5 }), day(0))
          applyModel(state, CustomerFeed.day(day(1), { seed: 5 }), day(1))
          assert.deepStrictEqual(yield* snapshot, modelSnapshot(state))
          // day 2: customer 7 deleted at noon, then a change of the morning arrives
          const lines = [
            { customer_id: 7, name: "Ada Lovelace", city: "Lisbon", updated_at: `${day(2)}T08:00:00Z` },
            { customer_id: 7, updated_at: `${day(2)}T12:00:00Z`, deleted: true },
            { customer_id: 7, name: "Ada L.", city: "Kraków", updated_at: `${day(2)}T10:00:00+01:00` },
            { customer_id: 8, name: "Grace Hopper", city: "Zürich", updated_at: `${day(2)}T09:00:00Z` }
          ].map((l) => JSON.stringify(l))
          yield* fs.writeFileString(`${directory}/${day(2)}.jsonl`, lines.join("\n") + "\n")
          yield* Pipeline.run(files, day(2))
          applyModel(state, lines, day(2))
          const after = yield* snapshot
          assert.deepStrictEqual(after, modelSnapshot(state))
          assert.isFalse(after.rows.some((r) => r.startsWith("7|")))
          assert.include(after.tombstones, `7|${day(2)}T12:00:00.000Z`)
          assert.include(after.rows, `8|Grace Hopper|∅|Zürich|${day(2)}T09:00:00.000Z`)
        }))

      it.effect("merges changes at the epoch and before it, the latest winning", () =>
        Effect.gen(function*() {
          yield* reset
          const fs = yield* FileSystem.FileSystem
          const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-customers-" })
          const lines = [
            { customer_id: 3, name: "Cy", city: "Oslo", updated_at: "1970-01-01T00:00:00Z" },
            { customer_id: 3, name: "Cy", city: "Bergen", updated_at: "1969-12-31T23:59:59Z" },
            { customer_id: 4, name: "Di", city: "Rome", updated_at: "1969-12-31T23:59:59Z" },
            { customer_id: 5, name: "Ed", city: "Ur", updated_at: "0001-01-01T00:00:00Z" },
            { customer_id: 6, updated_at: "1969-12-31T23:59:59Z", deleted: true }
          ].map((l) => JSON.stringify(l))
          yield* fs.writeFileString(`${directory}/${day(0)}.jsonl`, lines.join("\n") + "\n")
          const summary = yield* Pipeline.run(CustomersMerge.make(directory, { retry: noRetry }), day(0))
          assert.deepStrictEqual([summary.read, summary.deadLettered], [5, 0])
          assert.deepStrictEqual(yield* snapshot, {
            rows: [
              "3|Cy|∅|Oslo|1970-01-01T00:00:00.000Z",
              "4|Di|∅|Rome|1969-12-31T23:59:59.000Z",
              "5|Ed|∅|Ur|0001-01-01T00:00:00.000Z"
            ],
            tombstones: ["6|1969-12-31T23:59:59.000Z"]
          })
        }))

      it.effect("re-running an older day never undoes a newer day's change with the same updated_at", () =>
        Effect.gen(function*() {
          yield* reset
          const fs = yield* FileSystem.FileSystem
          const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-customers-" })
          const at = `${day(0)}T10:00:00Z`
          const write = (i: number, city: string) =>
            fs.writeFileString(
              `${directory}/${day(i)}.jsonl`,
              JSON.stringify({ customer_id: 2, name: "Bob", city, updated_at: at }) + "\n"
            )
          yield* write(0, "Bergen")
          yield* write(1, "Tie")
          const files = CustomersMerge.make(directory, { retry: noRetry })
          const cities: Array<string> = []
          for (const i of [0, 1, 0, 1, 0]) {
            yield* Pipeline.run(files, day(i))
            cities.push((yield* snapshot).rows[0]!.split("|")[3]!)
          }
          assert.deepStrictEqual(cities, ["Bergen", "Tie", "Tie", "Tie", "Tie"])
        }))
    }
  )
}
