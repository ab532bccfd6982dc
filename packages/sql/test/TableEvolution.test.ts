/**
 * Additive table evolution, on every backend: missing columns are added with their declared
 * defaults (existing rows get them, not NULL); drops, renames, type changes and NOT NULL columns
 * without default are refused and change nothing; specs are validated when they are defined.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Table, TableEvolution } from "@sluice/sql"
import { Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import { backends, suiteOptions, unique, withSluice } from "./fixtures.ts"

const base: ReadonlyArray<TableEvolution.ColumnSpec> = [
  { name: "id", type: "int", nullable: false },
  { name: "name", type: "text" }
]

const rows = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly row: string }>`SELECT to_jsonb(t)::text AS row FROM ${sql(table)} t ORDER BY id`.pipe(
        Effect.map((rs) => rs.map((r) => JSON.parse(r.row) as Record<string, unknown>))
      )
  )

const refusal = <A>(exit: Exit.Exit<A, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  const failure = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  const error = failure?._tag === "Fail" ? failure.error : undefined
  assert.instanceOf(error, TableEvolution.TableChangeRefused)
  return (error as TableEvolution.TableChangeRefused)
}

describe("TableEvolution.plan and validate", () => {
  const actual = (name: string, type: Table.ColumnType, evolved = false): TableEvolution.ActualColumn => ({
    name,
    sqlType: Table.sqlTypeOf(type),
    type,
    nullable: true,
    evolved
  })

  it("adds what is missing and refuses everything that is not additive", () => {
    const plan = TableEvolution.plan({
      table: "t",
      columns: [
        { name: "id", type: "int" },
        { name: "amount", type: "text" }, // was numeric
        { name: "label", type: "text", renamedFrom: "name" },
        { name: "strict", type: "int", nullable: false },
        { name: "points", type: "int", default: 0 }
      ]
    }, [
      actual("id", "int"),
      actual("amount", "numeric"),
      actual("name", "text"),
      actual("gone", "text"),
      actual("extra", "jsonb", true)
    ])
    assert.deepStrictEqual(plan.additions.map((c) => c.name), ["points"])
    assert.deepStrictEqual(plan.refused.map((c) => `${c.change} ${c.column}: ${c.detail}`), [
      "type_change amount: numeric to text",
      "rename label: from name",
      "not_null strict: a new NOT NULL column needs a default",
      "drop gone: the spec no longer declares it"
    ])
  })

  it("validates identifiers, defaults and keys when a spec is defined", () => {
    const invalid = (spec: TableEvolution.Spec) =>
      assert.throws(() => TableEvolution.validate(spec), Table.InvalidTableSpec)
    invalid({ table: "t; DROP TABLE t", columns: base })
    invalid({ table: "t", columns: [{ name: "a b", type: "int" }] })
    invalid({ table: "t", columns: [{ name: "a", type: "int", default: "1" }] })
    invalid({ table: "t", columns: [{ name: "a", type: "int", default: 2 ** 40 }] })
    invalid({ table: "t", columns: [{ name: "a", type: "text", default: "nul\u0000" }] })
    invalid({ table: "t", columns: [{ name: "a", type: "date", default: "01/02/2024" }] })
    invalid({ table: "t", columns: [{ name: "a", type: "text", renamedFrom: "b\"" }] })
    invalid({ table: "t", columns: base, primaryKey: ["nope"] })
    TableEvolution.validate({ table: "s.t", columns: [...base, { name: "j", type: "jsonb", default: { a: [1] } }] })
  })
})

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`TableEvolution [${backend.name}]`, (it) => {
    it.effect("evolve creates a table, then adds columns whose defaults the existing rows get", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = `evolution.${unique("t")}`
        assert.deepStrictEqual(yield* TableEvolution.evolve({ table, columns: base, primaryKey: ["id"] }), [])
        yield* sql`INSERT INTO ${sql(table)} (id, name) VALUES (1, 'a'), (2, NULL)`
        const tricky = "O'Reilly \\ \"quoted\" ☕ $1 ${x} --"
        const v2: TableEvolution.Spec = {
          table,
          columns: [
            ...base,
            { name: "currency", type: "text", default: "USD" },
            { name: "points", type: "int", default: 0, nullable: false },
            { name: "loyalty", type: "int" },
            { name: "note", type: "text", default: tricky },
            { name: "rate", type: "numeric", default: "0.10" },
            { name: "flags", type: "jsonb", default: { vip: false, tags: ["a"] } },
            { name: "since", type: "date", default: "2024-02-29" },
            { name: "active", type: "bool", default: true }
          ]
        }
        const added = yield* TableEvolution.evolve(v2)
        assert.deepStrictEqual(added, ["currency", "points", "loyalty", "note", "rate", "flags", "since", "active"])
        const defaults = {
          currency: "USD",
          points: 0,
          loyalty: null,
          note: tricky,
          rate: 0.1,
          flags: { vip: false, tags: ["a"] },
          since: "2024-02-29",
          active: true
        }
        assert.deepStrictEqual(yield* rows(table), [
          { id: 1, name: "a", ...defaults },
          { id: 2, name: null, ...defaults }
        ])
        // idempotent: nothing left to add
        assert.deepStrictEqual(yield* TableEvolution.evolve(v2), [])
        assert.deepStrictEqual((yield* rows(table)).length, 2)
      }))

    it.effect("drops, renames, type changes and new NOT NULL columns without default are refused; nothing changes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = `evolution.${unique("t")}`
        yield* TableEvolution.evolve({ table, columns: base })
        yield* sql`INSERT INTO ${sql(table)} (id, name) VALUES (1, 'a')`
        const before = yield* rows(table)
        const cases: ReadonlyArray<readonly [ReadonlyArray<TableEvolution.ColumnSpec>, string]> = [
          [[base[0]!], "drop of name"],
          [[base[0]!, { name: "label", type: "text", renamedFrom: "name" }], "rename of label"],
          [[base[0]!, { name: "name", type: "int" }], "type change of name (text to int4)"],
          [[...base, { name: "must", type: "text", nullable: false }], "not null of must"]
        ]
        for (const [columns, expected] of cases) {
          const error = refusal(
            yield* Effect.exit(TableEvolution.evolve({ table, columns: [...columns, { name: "fine", type: "int" }] }))
          )
          assert.include(error.message, expected)
          assert.match(error.message, /declare a new table version instead$/)
        }
        // none of the refused evolutions added `fine`, though it alone was additive
        assert.deepStrictEqual(yield* rows(table), before)
      }))
  })
}
