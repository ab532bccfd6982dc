/**
 * Fixtures of the `Scd` tests: a small change record, one dimension per type and delete mode,
 * loads through the sink, and dumps of the tables in the model's shapes.
 */
import { Partition } from "@sluice/core"
import { Scd, type Table } from "@sluice/sql"
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type * as Model from "./ScdModel.ts"

/** A change record of the tests: `at` in hours after 2024-01-01T00:00Z, `null` for none. */
export interface Rec {
  /** Never null in generated batches; null tests the dead-lettering of a missing key. */
  readonly id: number | null
  readonly at: number | null
  readonly a: string
  readonly b: string | null
  readonly u: string
  readonly deleted: boolean
}

export const hour = 3_600_000
export const base = Date.UTC(2024, 0, 1)
export const partitions = [0, 1, 2].map((i) => Partition.addDays(Partition.makeUnsafe("2024-01-01"), i))

export const attributes: ReadonlyArray<Table.Column> = [
  { name: "a", type: "text" },
  { name: "b", type: "text" },
  { name: "u", type: "text" }
]
export const attributeNames = ["a", "b", "u"] as const
/** Type 2 tracks `a` and `b`; `u` is untracked. Type 3 keeps the previous `a` and `b`. */
export const tracked = ["a", "b"] as const

export const toChange = (r: Rec): Scd.Change => ({
  key: r.id,
  changedAt: r.at === null ? undefined : base + r.at * hour,
  values: [r.a, r.b, r.u],
  deleted: r.deleted
})

const common = (name: string) => ({
  changes: `raw.changes_${name}`,
  dimension: `dim.${name}`,
  key: { name: "id", type: "int" } as const,
  attributes,
  toChange
})

export const type1 = {
  ignore: Scd.type1<Rec>({ ...common("t1_ignore"), deletes: "ignore" }),
  delete: Scd.type1<Rec>({ ...common("t1_delete"), deletes: "delete" })
}
export const type2 = {
  ignore: Scd.type2<Rec>({ ...common("t2_ignore"), tracked, deletes: "ignore" }),
  close: Scd.type2<Rec>({ ...common("t2_close"), tracked, deletes: "close" }),
  version: Scd.type2<Rec>({ ...common("t2_version"), tracked, deletes: "version" })
}
export const type3 = {
  ignore: Scd.type3<Rec>({ ...common("t3_ignore"), tracked, deletes: "ignore" }),
  delete: Scd.type3<Rec>({ ...common("t3_delete"), tracked, deletes: "delete" })
}
export const all: ReadonlyArray<Scd.Scd<Rec>> = [
  ...Object.values(type1),
  ...Object.values(type2),
  ...Object.values(type3)
]

export const createAll = Effect.forEach(all, (scd) => scd.createTables, { discard: true })

export const truncate = (scds: ReadonlyArray<Scd.Scd<Rec>>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`TRUNCATE ${sql.csv(scds.flatMap((scd) => [sql`${sql(scd.changes)}`, sql`${sql(scd.dimension)}`]))}`
  )

/**
 * One load of a partition through the sink, in a transaction, in batches of at most 2 records:
 * written one by one, or (`stream`) as one stream, the way `Pipeline.run` hands them to the sink.
 */
export const load = (
  scd: Scd.Scd<Rec>,
  partition: Partition.PartitionDate,
  batch: ReadonlyArray<Rec>,
  stream = false
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* scd.sink.prepare(partition)
      const batches = Array.from({ length: Math.ceil(batch.length / 2) }, (_, i) => batch.slice(2 * i, 2 * i + 2))
      if (stream) yield* scd.sink.writeBatches!(partition, Stream.fromIterable(batches))
      else for (const rows of batches) yield* scd.sink.write(partition, rows)
      yield* scd.sink.complete(partition)
    })))

/** The change log of the model: each partition's final batch, with missing timestamps defaulted. */
export const toLog = (final: ReadonlyMap<number, ReadonlyArray<Rec>>): Model.ChangeLog =>
  partitions.map((_, p) =>
    (final.get(p) ?? []).map((r) => ({
      key: r.id as number,
      at: r.at === null ? base + p * 24 * hour : base + r.at * hour,
      values: { a: r.a, b: r.b, u: r.u },
      deleted: r.deleted
    }))
  )

const millis = (value: unknown): number => value instanceof Date ? value.getTime() : Date.parse(String(value))

const valuesOf = (row: Record<string, unknown>) =>
  Object.fromEntries(attributeNames.map((name) => [name, (row[name] ?? null) as string | null]))

const byKeyThenStart = <A extends { readonly key: number; readonly start?: number }>(rows: Array<A>) =>
  rows.sort((x, y) => x.key - y.key || (x.start ?? 0) - (y.start ?? 0))

export const dumpType1 = (scd: Scd.Scd<Rec>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<Record<string, unknown>>`SELECT * FROM ${sql(scd.dimension)}`,
      (rows) =>
        byKeyThenStart(rows.map((row): Model.Type1Row => ({
          key: row.id as number,
          values: valuesOf(row),
          lastChangedAt: millis(row.last_changed_at)
        })))
    ))

export const dumpType2 = (scd: Scd.Scd<Rec>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<Record<string, unknown>>`SELECT * FROM ${sql(scd.dimension)}`,
      (rows) =>
        byKeyThenStart(rows.map((row): Model.Type2Row => ({
          key: row.id as number,
          values: valuesOf(row),
          start: millis(row.effective_start),
          end: millis(row.effective_end),
          current: row.is_current as boolean,
          deleted: (row.is_deleted ?? false) as boolean
        })))
    ))

export const dumpType3 = (scd: Scd.Scd<Rec>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<Record<string, unknown>>`SELECT * FROM ${sql(scd.dimension)}`,
      (rows) =>
        byKeyThenStart(rows.map((row): Model.Type3Row => ({
          key: row.id as number,
          values: valuesOf(row),
          previous: Object.fromEntries(
            tracked.map((name) => [name, (row[`previous_${name}`] ?? null) as string | null])
          ),
          lastChangedAt: millis(row.last_changed_at)
        })))
    ))

/** The dimension with each row's `xmin`: equal dumps mean no row was written. */
export const dimensionXmin = (scd: Scd.Scd<Rec>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`SELECT *, xmin::text AS xmin FROM ${sql(scd.dimension)} ORDER BY 1, ${
        sql.literal(scd.type === 2 ? "effective_start" : "1")
      }`
  )

/** Both tables of `scd`, ordered: equal dumps mean equal contents. */
export const dump = (scd: Scd.Scd<Rec>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all({
      changes: sql`SELECT * FROM ${sql(scd.changes)} ORDER BY 1, 2`,
      dimension: sql`SELECT * FROM ${sql(scd.dimension)} ORDER BY 1, ${
        sql.literal(scd.type === 2 ? "effective_start" : "1")
      }`
    }))
