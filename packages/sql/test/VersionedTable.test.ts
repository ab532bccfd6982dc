/**
 * Versioned tables, on every backend: a change that is not additive is deployed as `<table>_vN`,
 * created, backfilled (renames, casts, defaults) and switched to by the view `<table>` in one
 * transaction; a failing deploy changes nothing; sinks keep writing the view; readers of the view
 * during the switch never fail and always see one complete version.
 */
import { assert, layer } from "@effect/vitest"
import { Contract, Pipeline, RetryPolicy, Source, Transform } from "@sluice/core"
import { TableContract, TableEvolution, VersionedTable } from "@sluice/sql"
import { Effect, Exit, Fiber, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const v1: ReadonlyArray<TableEvolution.ColumnSpec> = [
  { name: "day", type: "date", nullable: false },
  { name: "id", type: "int", nullable: false },
  { name: "amount", type: "numeric", nullable: false },
  { name: "ts", type: "text" },
  { name: "note", type: "text" }
]

/** id widened to bigint, ts renamed ordered_at and cast to timestamptz, note dropped, currency new. */
const v2: ReadonlyArray<TableEvolution.ColumnSpec> = [
  { name: "day", type: "date", nullable: false },
  { name: "id", type: "bigint", nullable: false },
  { name: "amount", type: "numeric", nullable: false },
  { name: "ordered_at", type: "timestamptz", renamedFrom: "ts" },
  { name: "currency", type: "text", default: "USD", nullable: false }
]

const rows = (table: string, order = "id") =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly row: string }>`SELECT to_jsonb(t)::text AS row FROM ${sql(table)} t ORDER BY ${sql(order)}`.pipe(
        Effect.map((rs) => rs.map((r) => JSON.parse(r.row) as Record<string, unknown>))
      )
  )

const kindOf = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly kind: string | null }>`SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass(${
        table.split(".").map((p) => `"${p}"`).join(".")
      })) AS kind`.pipe(Effect.map((rs) => rs[0]?.kind ?? null))
  )

/** A plain table (version 1) with `n` rows of day 0. */
const setup = Effect.fnUntraced(function*(n: number) {
  const sql = yield* SqlClient.SqlClient
  const table = `versioned.${unique("orders")}`
  yield* TableEvolution.evolve({ table, columns: v1, primaryKey: ["day", "id"] })
  yield* sql`INSERT INTO ${sql(table)} (day, id, amount, ts, note)
    SELECT ${day(0)}::date, i, i + 0.25, '2024-03-01T10:00:00Z', 'n' || i FROM generate_series(1, ${n}) AS i`
  return table
})

const refusalOf = <A>(exit: Exit.Exit<A, unknown>) => {
  const failure = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  const error = failure?._tag === "Fail" ? failure.error : undefined
  assert.instanceOf(error, TableEvolution.TableChangeRefused, String(exit))
  return (error as TableEvolution.TableChangeRefused).changes.map((c) => c.change)
}

const changesOf = <A>(exit: Exit.Exit<A, unknown>) => {
  refusalOf(exit)
  const failure = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  return (failure?._tag === "Fail" ? failure.error as TableEvolution.TableChangeRefused : undefined)!.changes
}

const Order = Schema.Struct({ day: Schema.String, id: Schema.Int, amount: Schema.Finite })

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`VersionedTable [${backend.name}]`, (it) => {
    it.effect("a new version is created, backfilled with renames, casts and defaults, and the view switched to it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* setup(3)
        const deployed = yield* VersionedTable.deploy({ table, version: 2, columns: v2, primaryKey: ["day", "id"] })
        assert.deepStrictEqual(deployed, {
          table,
          from: 1,
          to: 2,
          relation: `${table}_v2`,
          backfilled: 3,
          added: []
        })
        assert.deepStrictEqual(
          [yield* kindOf(table), yield* kindOf(`${table}_v1`), yield* kindOf(`${table}_v2`)],
          ["v", "r", "r"]
        )
        const seen = yield* rows(table)
        assert.deepStrictEqual(
          seen.map((r) => Object.keys(r).toSorted()),
          seen.map(() => ["amount", "currency", "day", "id", "ordered_at"])
        )
        assert.deepStrictEqual(
          seen.map((r) => [r.id, r.amount, r.currency, new Date(r.ordered_at as string).toISOString()]),
          [
            [1, 1.25, "USD", "2024-03-01T10:00:00.000Z"],
            [2, 2.25, "USD", "2024-03-01T10:00:00.000Z"],
            [3, 3.25, "USD", "2024-03-01T10:00:00.000Z"]
          ]
        )
        // the old version is kept as it was
        assert.deepStrictEqual((yield* rows(`${table}_v1`)).map((r) => r.note), ["n1", "n2", "n3"])
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 2, relation: `${table}_v2` })

        // deploying the current version again changes nothing; adding a column to it is additive
        assert.strictEqual((yield* VersionedTable.deploy({ table, version: 2, columns: v2 })).backfilled, 0)
        const extended = [...v2, { name: "points", type: "int", default: 0 } as const]
        assert.deepStrictEqual((yield* VersionedTable.deploy({ table, version: 2, columns: extended })).added, [
          "points"
        ])
        assert.deepStrictEqual((yield* rows(table)).map((r) => r.points), [0, 0, 0])
        // an older version is refused; a non-additive change of the current version too
        assert.deepStrictEqual(
          refusalOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 1, columns: v1 }))),
          [
            "older_version"
          ]
        )
        assert.deepStrictEqual(
          refusalOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 2, columns: v2 }))),
          [
            "drop"
          ]
        )

        // sinks keep writing the view: partition replacement, and a contract that evolves the current version
        const sink = TableContract.partitionReplace<typeof Order.Type>({
          table,
          partitionColumn: "day",
          columns: extended,
          toRow: (o) => [o.day, o.id, o.amount, undefined, undefined, undefined],
          contract: Contract.make("evolve"),
          undeclared: Contract.undeclaredFields(Order)
        })
        const lines = [1, 2].map((id) => JSON.stringify({ day: day(1), id, amount: id, channel: `c${id}` }))
        const report = yield* Pipeline.run(
          Pipeline.make({
            name: unique("versioned"),
            source: Source.make(
              "memory",
              () => Stream.fromIterable(lines.map((payload, i) => ({ payload, position: i + 1 })))
            ),
            transform: Transform.fromSchema(Contract.open(Order)),
            sink,
            retry: RetryPolicy.make({ maxRetries: 0 })
          }),
          day(1)
        )
        assert.strictEqual(report.loaded, 2)
        assert.deepStrictEqual(
          (yield* rows(table, "day")).filter((r) => r.day === day(1)).map((
            r
          ) => [r.id, r.currency, r.points, r.channel]),
          [[1, "USD", 0, "c1"], [2, "USD", 0, "c2"]]
        )
        assert.strictEqual(
          (yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(`${table}_v2`)}`)[0]?.n,
          5
        )

        // version 3 from the view: drops the evolved column and currency
        const v3 = v2.filter((c) => c.name !== "currency").map((c) =>
          c.name === "ordered_at" ? { ...c, renamedFrom: undefined } : c
        )
        assert.deepStrictEqual((yield* VersionedTable.deploy({ table, version: 3, columns: v3 })).backfilled, 5)
        assert.deepStrictEqual(Object.keys((yield* rows(table))[0]!).toSorted(), ["amount", "day", "id", "ordered_at"])
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 3, relation: `${table}_v3` })
      }))

    it.effect("createNext makes an empty next version like the current one; switchTo switches, keeps, rolls back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* setup(2)
        const next = yield* VersionedTable.createNext(table)
        assert.deepStrictEqual(next, { version: 2, relation: `${table}_v2` })
        assert.strictEqual(yield* kindOf(table), "r", "readers are not switched yet")
        assert.deepStrictEqual(yield* rows(next.relation), [])
        // same columns, defaults and primary key
        yield* sql`INSERT INTO ${sql(next.relation)} (day, id, amount) VALUES (${day(0)}::date, 7, 7)`
        const duplicate = yield* Effect.exit(
          sql`INSERT INTO ${sql(next.relation)} (day, id, amount) VALUES (${day(0)}::date, 7, 8)`
        )
        assert.isTrue(Exit.isFailure(duplicate), "the primary key is copied")
        // a version left behind is skipped
        assert.deepStrictEqual((yield* VersionedTable.createNext(table)).version, 3)

        assert.deepStrictEqual(yield* VersionedTable.switchTo(table, 2), { table, from: 1, to: 2 })
        assert.deepStrictEqual(
          [yield* kindOf(table), yield* kindOf(`${table}_v1`)],
          ["v", "r"]
        )
        assert.deepStrictEqual((yield* rows(table)).map((r) => r.id), [7])
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 2, relation: `${table}_v2` })
        // rollback: the old version is kept
        assert.deepStrictEqual(yield* VersionedTable.switchTo(table, 1), { table, from: 2, to: 1 })
        assert.deepStrictEqual((yield* rows(table)).map((r) => r.id), [1, 2])
        // two switches in one transaction: a failing second one leaves the first undone
        const other = yield* setup(1)
        yield* VersionedTable.createNext(other)
        const exit = yield* Effect.exit(sql.withTransaction(Effect.andThen(
          VersionedTable.switchTo(other, 2),
          VersionedTable.switchTo(table, 9)
        )))
        assert.deepStrictEqual(refusalOf(exit), ["missing_version"])
        assert.strictEqual(yield* kindOf(other), "r")
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 1, relation: `${table}_v1` })
      }))

    it.effect("switchTo a version that does not exist, or is not a table, is refused typed; nothing changes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* setup(1)
        const refusal = (version: number) =>
          Effect.map(
            Effect.exit(VersionedTable.switchTo(table, version)),
            (exit) => changesOf(exit).map((c) => `${c.change} ${c.column}: ${c.detail}`)
          )
        assert.deepStrictEqual(yield* refusal(9), [`missing_version *: ${table}_v9 does not exist (its versions: 1)`])
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          assert.deepStrictEqual(yield* refusal(bad), [
            `missing_version *: version must be a positive integer, got ${bad}`
          ])
        }
        assert.deepStrictEqual(yield* refusal(2 ** 53), [
          `missing_version *: version must be a positive integer, got ${2 ** 53}`
        ])
        const long = `versioned.${"t".repeat(55)}`
        assert.deepStrictEqual(
          changesOf(yield* Effect.exit(VersionedTable.switchTo(long, 123_456_789))).map((c) => c.detail),
          [`${long}_v123456789 is longer than 63 characters: no table has that name`]
        )
        // a relation of that name that is not a table (an index, a view) is no version either
        yield* sql`CREATE VIEW ${sql(`${table}_v3`)} AS SELECT 1 AS one`
        assert.deepStrictEqual(yield* refusal(3), [`missing_version *: ${table}_v3 is not a table`])
        assert.strictEqual(yield* kindOf(table), "r")
        // a plain table is version 1: switching to it changes nothing
        assert.deepStrictEqual(yield* VersionedTable.switchTo(table, 1), { table, from: 1, to: 1 })
        assert.strictEqual(yield* kindOf(table), "r")
        // a table that does not exist at all
        const nowhere = `${table}_none`
        assert.deepStrictEqual(
          changesOf(yield* Effect.exit(VersionedTable.switchTo(nowhere, 2))).map((c) => c.detail),
          [`${nowhere}_v2 does not exist (${nowhere} does not exist)`]
        )
        assert.deepStrictEqual(
          changesOf(yield* Effect.exit(VersionedTable.switchTo("nowhere_schema.orders", 2))).map((c) => c.change),
          ["missing_version"]
        )
      }))

    it.effect("redeploying a version whose table exists is refused typed, naming what differs; nothing changes", () =>
      Effect.gen(function*() {
        const table = yield* setup(2)
        yield* VersionedTable.deploy({ table, version: 2, columns: v2, primaryKey: ["day", "id"] })
        yield* VersionedTable.switchTo(table, 1)
        const before = yield* rows(`${table}_v2`)
        // v2 again, readers on v1: with the same definition, or another one
        const same = changesOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 2, columns: v2 })))
        assert.deepStrictEqual(same.map((c) => `${c.change} ${c.column}: ${c.detail}`), [
          `version_exists *: ${table}_v2 already exists, with this definition: switch readers to it with ` +
          "switchTo, or discard it first to deploy it afresh"
        ])
        const other = changesOf(
          yield* Effect.exit(VersionedTable.deploy({
            table,
            version: 2,
            columns: [...v2.filter((c) => c.name !== "currency"), { name: "amount2", type: "int" as const }]
              .map((c) => c.name === "id" ? { ...c, type: "int" as const } : c)
          }))
        )
        assert.deepStrictEqual(other.map((c) => `${c.change} ${c.column}: ${c.detail}`), [
          `version_exists *: ${table}_v2 already exists, with another definition ` +
          "(type change of id: bigint to int4; drop of currency; new column amount2): " +
          "deploy it as a later version, or discard it first"
        ])
        // a version left by createNext is taken too
        const next = yield* VersionedTable.createNext(table)
        assert.deepStrictEqual(
          refusalOf(yield* Effect.exit(VersionedTable.deploy({ table, version: next.version, columns: v1 }))),
          ["version_exists"]
        )
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 1, relation: `${table}_v1` })
        assert.deepStrictEqual(yield* rows(`${table}_v2`), before)
        // a table whose view is gone but whose version 1 exists: deploying version 1 is refused too
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP VIEW ${sql(table)}`
        assert.deepStrictEqual(
          refusalOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 1, columns: v1 }))),
          ["version_exists"]
        )
      }))

    it.effect("discard drops a version readers are not on, never the current one", () =>
      Effect.gen(function*() {
        const table = yield* setup(1)
        const next = yield* VersionedTable.createNext(table)
        assert.strictEqual(yield* VersionedTable.discard(table, next.version), true)
        assert.strictEqual(yield* kindOf(next.relation), null)
        assert.strictEqual(yield* VersionedTable.discard(table, next.version), false, "already gone")
        assert.strictEqual(yield* VersionedTable.discard(table, 1), false, "a plain table is version 1")
        yield* VersionedTable.createNext(table)
        yield* VersionedTable.switchTo(table, 2)
        assert.strictEqual(yield* VersionedTable.discard(table, 2), false, "the current version is kept")
        assert.strictEqual(yield* kindOf(`${table}_v2`), "r")
        assert.strictEqual(yield* VersionedTable.discard(table, 1), true, "the old version may go")
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 2, relation: `${table}_v2` })
      }))

    it.effect("createNext marks a version as its owner's until switchTo; pending lists them; discard spares a read one", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* setup(1)
        const unowned = yield* VersionedTable.createNext(table)
        const left = yield* VersionedTable.createNext(table, { owner: "rebuild-a" })
        const switched = yield* VersionedTable.createNext(table, { owner: "rebuild-b's" })
        assert.deepStrictEqual([unowned.version, left.version, switched.version], [2, 3, 4])
        assert.deepStrictEqual(yield* VersionedTable.pending(table), [
          { version: 3, relation: `${table}_v3`, owner: "rebuild-a" },
          { version: 4, relation: `${table}_v4`, owner: "rebuild-b's" }
        ])
        // a version readers were switched to is no longer pending, even once switched away from
        yield* VersionedTable.switchTo(table, 4)
        assert.deepStrictEqual((yield* VersionedTable.pending(table)).map((v) => v.version), [3])
        yield* VersionedTable.switchTo(table, 1)
        assert.deepStrictEqual((yield* VersionedTable.pending(table)).map((v) => v.version), [3])
        // a comment of the user's is left alone, and is no owner
        yield* sql`COMMENT ON TABLE ${sql(`${table}_v2`)} IS 'kept for the audit'`
        yield* VersionedTable.switchTo(table, 2)
        assert.deepStrictEqual((yield* VersionedTable.pending(table)).map((v) => v.version), [3])
        const [comment] = yield* sql<{ readonly note: string | null }>`
          SELECT obj_description(to_regclass(${`${table}_v2`}), 'pg_class') AS note`
        assert.strictEqual(comment?.note, "kept for the audit")
        // another table's versions are not this one's (a name that extends it)
        const longer = `${table}_vip`
        yield* TableEvolution.evolve({ table: longer, columns: v1, primaryKey: ["day", "id"] })
        yield* VersionedTable.createNext(longer, { owner: "rebuild-c" })
        assert.deepStrictEqual((yield* VersionedTable.pending(longer)).map((v) => v.owner), ["rebuild-c"])
        assert.deepStrictEqual((yield* VersionedTable.pending(table)).map((v) => v.owner), ["rebuild-a"])
        // a version a view reads is not dropped (nor does discard fail)
        yield* sql`CREATE VIEW ${sql(`${table}_audit`)} AS SELECT * FROM ${sql(left.relation)}`
        assert.strictEqual(yield* VersionedTable.discard(table, left.version), false)
        assert.strictEqual(yield* kindOf(left.relation), "r")
        yield* sql`DROP VIEW ${sql(`${table}_audit`)}`
        assert.strictEqual(yield* VersionedTable.discard(table, left.version), true)
        assert.deepStrictEqual(yield* VersionedTable.pending(table), [])
      }))

    it.effect("a cast that can lose data is refused as lossy_cast, naming the column and both types, unless allowed", () =>
      Effect.gen(function*() {
        const table = yield* setup(3)
        yield* VersionedTable.deploy({ table, version: 2, columns: v2 })
        // amount numeric → int rounds 1.25 to 1; id bigint → int may not fit
        const narrowed = v2.map((c) => c.name === "amount" || c.name === "id" ? { ...c, type: "int" as const } : c)
        const exit = yield* Effect.exit(VersionedTable.deploy({ table, version: 3, columns: narrowed }))
        assert.deepStrictEqual(
          changesOf(exit).map((c) => [c.change, c.column, c.from, c.to]),
          [["lossy_cast", "id", "bigint", "int4"], ["lossy_cast", "amount", "numeric", "int4"]]
        )
        assert.match(
          Exit.isFailure(exit) ? String(exit.cause.reasons.map((r) => r._tag === "Fail" ? r.error : "")[0]) : "",
          /lossy cast of amount \(numeric → int4: fractions are rounded away/
        )
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 2, relation: `${table}_v2` })
        assert.strictEqual(yield* kindOf(`${table}_v3`), null)
        // a renamed source is named too, and the timestamp → date loss is seen
        const dated = v2.map((c) =>
          c.name === "ordered_at" ? { name: "ordered_on", type: "date" as const, renamedFrom: "ordered_at" } : c
        )
        assert.deepStrictEqual(
          changesOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 3, columns: dated }))).map((
            c
          ) => [c.column, c.from, c.to]),
          [["ordered_on", "timestamp with time zone", "date"]]
        )
        // widening is no loss: int → bigint, int → numeric
        assert.isUndefined(VersionedTable.lossOf("integer", "bigint"))
        assert.isUndefined(VersionedTable.lossOf("integer", "numeric"))
        assert.isDefined(VersionedTable.lossOf("numeric(12,2)", "bigint"))
        // allowed explicitly, the cast is made
        const deployed = yield* VersionedTable.deploy({
          table,
          version: 3,
          columns: narrowed,
          allowLossy: ["amount", "id"]
        })
        assert.strictEqual(deployed.backfilled, 3)
        assert.deepStrictEqual((yield* rows(table)).map((r) => [r.id, r.amount]), [[1, 1], [2, 2], [3, 3]])
      }))

    it.effect("a deploy that fails (a value that does not cast, a view reading the table) changes nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* setup(2)
        yield* VersionedTable.deploy({ table, version: 2, columns: v2 })
        const before = yield* rows(table)
        // currency 'USD' is no integer: the backfill fails, the transaction rolls back
        const exit = yield* Effect.exit(VersionedTable.deploy({
          table,
          version: 3,
          columns: [...v2, { name: "note_number", type: "int", renamedFrom: "currency" }]
        }))
        assert.deepStrictEqual(refusalOf(exit), ["backfill_failed"])
        // the refusal carries the server's own message, not the driver's generic one
        assert.match(
          changesOf(exit)[0]!.detail,
          new RegExp(
            `^backfill of ${table}_v3 from ${table}_v2: invalid input syntax for type integer: "USD" \\[22P02\\]$`
          )
        )
        assert.deepStrictEqual(yield* VersionedTable.current(table), { version: 2, relation: `${table}_v2` })
        assert.strictEqual(yield* kindOf(`${table}_v3`), null)
        assert.deepStrictEqual(yield* rows(table), before)

        const report = `${table}_report`
        yield* sql`CREATE VIEW ${sql(report)} AS SELECT count(*) AS n FROM ${sql(table)}`
        assert.deepStrictEqual(
          refusalOf(yield* Effect.exit(VersionedTable.deploy({ table, version: 3, columns: v2 }))),
          ["dependent_views"]
        )
        assert.strictEqual(yield* kindOf(`${table}_v3`), null)
      }))

    it.effect(
      "readers of the view during the switch never fail and always see one complete version",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const n = 20_000
          const table = yield* setup(n)
          const expectedSum = String((n * (n + 1)) / 2)
          const shapes = {
            v1: ["amount", "day", "id", "note", "ts"].join(","),
            v2: ["amount", "currency", "day", "id", "ordered_at"].join(","),
            v3: ["amount", "day", "id", "ordered_at"].join(",")
          }
          type Phase = "v1" | "to_v2" | "v2" | "to_v3" | "v3"
          let phase: Phase = "v1"
          const control = { done: false }
          const reads: Array<
            { readonly started: Phase; readonly ended: Phase; readonly shape: string; readonly ms: number }
          > = []
          const failures: Array<string> = []
          const read = sql<{ readonly n: number; readonly s: string; readonly sample: string }>`
            SELECT count(*)::int AS n, sum(id)::text AS s, max(to_jsonb(r)::text) FILTER (WHERE r.id = 1) AS sample
            FROM ${sql(table)} r`
          const reader = Effect.gen(function*() {
            while (!control.done) {
              const started = phase
              const t0 = performance.now()
              const exit = yield* Effect.exit(read)
              if (Exit.isFailure(exit)) {
                failures.push(String(exit.cause))
                continue
              }
              const [row] = exit.value
              if (row?.n !== n || row.s !== expectedSum) failures.push(`incomplete: ${JSON.stringify(row)}`)
              const shape = Object.keys(JSON.parse(row?.sample ?? "{}")).toSorted().join(",")
              reads.push({ started, ended: phase, shape, ms: performance.now() - t0 })
            }
          })
          const readers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(reader))
          const switchTo = (to: "to_v2" | "to_v3", after: "v2" | "v3", version: number, columns: typeof v2) =>
            Effect.gen(function*() {
              yield* Effect.sleep("100 millis")
              phase = to
              // the switch's transaction stays open a while after its DDL, so readers queue on it
              yield* sql.withTransaction(
                Effect.andThen(VersionedTable.deploy({ table, version, columns }), sql`SELECT pg_sleep(0.3)`)
              )
              phase = after
              yield* Effect.sleep("100 millis")
            })
          yield* switchTo("to_v2", "v2", 2, v2)
          yield* switchTo("to_v3", "v3", 3, v2.filter((c) => c.name !== "currency"))
          control.done = true
          yield* Fiber.joinAll(readers)

          assert.deepStrictEqual(failures, [])
          const allowed: Record<Phase, ReadonlyArray<string>> = {
            v1: [shapes.v1, shapes.v2],
            to_v2: [shapes.v1, shapes.v2],
            v2: [shapes.v2, shapes.v3],
            to_v3: [shapes.v2, shapes.v3],
            v3: [shapes.v3]
          }
          for (const r of reads) assert.include(allowed[r.started], r.shape, `a read started in ${r.started}`)
          // reads started after a switch committed see the new version (or, when the next switch committed
          // before the read reached the server on a loaded machine, the one after it): never the old one
          const afterV2 = reads.filter((r) => r.started === "v2")
          assert.isTrue(afterV2.every((r) => r.shape !== shapes.v1), "no read started after v2 committed sees v1")
          assert.isTrue(afterV2.filter((r) => r.ended === "v2").every((r) => r.shape === shapes.v2))
          const during = reads.filter((r) => r.started === "to_v2" || r.started === "to_v3")
          assert.isAbove(during.length, 0, "some reads ran while a switch was in progress")
          for (const shape of [shapes.v1, shapes.v2, shapes.v3]) {
            assert.isTrue(reads.some((r) => r.shape === shape), `some read saw ${shape}`)
          }
          if (process.env["SLUICE_TEST_VERBOSE"]) {
            const max = (rs: ReadonlyArray<{ readonly ms: number }>) => Math.max(0, ...rs.map((r) => r.ms)).toFixed(0)
            console.info(
              `[${backend.name}] ${reads.length} reads, ${during.length} started during a switch (max ${
                max(during)
              } ms), others max ${max(reads.filter((r) => !during.includes(r)))} ms, 0 failures`
            )
          }
        }),
      { timeout: 60_000 }
    )
  })
}
