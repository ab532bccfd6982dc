/**
 * A table's schema contract, applied at load time: partition replacement (as `PartitionReplace`)
 * whose records are judged by a core `Contract` against the table as the database has it.
 *
 * In the load transaction:
 * 1. `prepare` compares the spec with the table ({@link TableEvolution.plan}): a dropped, renamed or
 *    retyped column fails the run (`TableChangeRefused`); a declared column the table lacks is
 *    added with its declared default under `evolve` (existing rows get the default), fails the run
 *    under `freeze`, and under `discard_*` its values are discarded with their rows or alone;
 * 2. the per-record `check` dead-letters the records that `discard_row` discards, with error type
 *    `ContractViolation` (so loaded + dead-lettered = read holds);
 * 3. `write` (or `writeBatches`, one COPY for as long as the batches fill the same columns)
 *    classifies each record's undeclared fields (kept on the record by `Contract.open`):
 *    under `evolve` a field becomes a column (`ALTER TABLE … ADD COLUMN`, type inferred from the
 *    value; a field whose name cannot be a column — see `Table.columnNameProblem` — dead-letters its
 *    record in `check`, as a `ContractViolation` with `change: "invalid_name"`; case is kept, so
 *    `Amount` and `amount` are two columns), under `discard_value` the value is dropped and counted
 *    (`Contract.valuesDiscarded`),
 *    and a record that breaks a `freeze` (or changes the type of an evolved column) fails the run
 *    with a `SinkError` whose cause is the `ContractViolation`: the transaction rolls back, the
 *    table is left untouched.
 *
 * **Details**
 *
 * Types inferred for new columns: a boolean is `bool`, a number `numeric` (exact, holds integers
 * and decimals alike), a string `text`, an array or object `jsonb`. A null value adds no column.
 * A value of an evolved column whose type it does not fit is a type change: judged by the column's
 * mode (under `evolve` it fails the run — a type change is not additive).
 *
 * **Gotchas**
 *
 * - The sink remembers the table's columns from its latest `prepare`, for the per-record checks: use
 *   one sink per database at a time (two databases of different shapes would confuse it).
 * - When the contract may evolve undeclared fields, every load of the table first takes a
 *   transaction-level advisory lock on it, so loads of that table run one at a time (two loads
 *   adding columns to one table would otherwise deadlock).
 * - Adding a column holds an `ACCESS EXCLUSIVE` lock on the table until the load commits: other
 *   loads and readers of the table wait for it. Evolve declared columns before loads
 *   (`TableEvolution.evolve` at set-up) where that matters.
 *
 * @since 0.1.0
 */
import type { Partition } from "@sluice/core"
import { Contract, RecordError, Sink, SinkError } from "@sluice/core"
import { Effect, Metric, Stream } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type * as Catalog from "./internal/catalog.ts"
import { fromSqlError } from "./internal/sinkError.ts"
import * as PartitionReplace from "./PartitionReplace.ts"
import * as Table from "./Table.ts"
import * as TableEvolution from "./TableEvolution.ts"

/**
 * A table written by partition replacement under a contract.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<A> extends Omit<PartitionReplace.TableSpec<A>, "columns"> {
  /** The declared columns, with their declared defaults (see `TableEvolution.ColumnSpec`). */
  readonly columns: ReadonlyArray<TableEvolution.ColumnSpec>
  readonly contract: Contract.Contract
  /**
   * The fields of a record that its schema does not declare, e.g. `Contract.undeclaredFields(schema)`
   * for records decoded with `Contract.open(schema)`. None by default.
   */
  readonly undeclared?: ((record: A) => ReadonlyArray<readonly [string, unknown]>) | undefined
}

/**
 * Whether a JSON value fits a column of `type` (a contract's type check of an evolved column).
 *
 * @since 0.1.0
 * @category classification
 */
export const fits = (type: Table.ColumnType, value: unknown): boolean => {
  switch (type) {
    case "text":
      return typeof value === "string"
    case "int":
      return typeof value === "number" && Number.isInteger(value) && Math.abs(value) <= 2_147_483_647
    case "bigint":
      return typeof value === "number" && Number.isSafeInteger(value)
    case "numeric":
      return typeof value === "number" && Number.isFinite(value)
    case "double precision":
      return typeof value === "number"
    case "bool":
      return typeof value === "boolean"
    case "date":
      return typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value) &&
        Table.unstorable("date", value) === undefined
    case "timestamptz":
      return typeof value === "number" && Number.isFinite(value)
    case "jsonb":
      return value !== undefined
  }
}

/**
 * The column type a new column gets from the first value of its field.
 *
 * @since 0.1.0
 * @category classification
 */
export const typeFor = (value: unknown): Table.ColumnType => {
  switch (Contract.kindOf(value)) {
    case "boolean":
      return "bool"
    case "integer":
    case "number":
      return "numeric"
    case "string":
      return "text"
    default:
      return "jsonb"
  }
}

const columnOf = (type: Table.ColumnType) => ({ type: Table.sqlTypeOf(type), fits: (v: unknown) => fits(type, v) })

/** A column declared by the spec under another field's name: never written twice. */
const taken = (type: Table.ColumnType) => ({ type: Table.sqlTypeOf(type), fits: () => false })

/** What `prepare` learnt of the table, for the checks and writes of the load. */
interface State {
  readonly relation: Catalog.Relation
  /** Columns of the table the spec does not declare (evolved ones), by name. */
  readonly undeclaredColumns: Map<string, Table.ColumnType>
  /** Declared columns the table lacks (their contract discards them), with their index. */
  readonly missing: ReadonlyArray<number>
  /** Declared columns the table has, by index. */
  readonly present: ReadonlyArray<number>
}

/**
 * A sink that replaces a partition of a table under a contract (see the module documentation).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Contract, Transform } from "@sluice/core"
 * import { TableContract } from "@sluice/sql"
 *
 * const Reading = Schema.Struct({ day: Schema.String, sensor: Schema.String, value: Schema.Finite })
 * const transform = Transform.fromSchema(Contract.open(Reading))
 * const sink = TableContract.partitionReplace<typeof Reading.Type>({
 *   table: "raw.readings",
 *   partitionColumn: "day",
 *   columns: [
 *     { name: "day", type: "date" },
 *     { name: "sensor", type: "text" },
 *     { name: "value", type: "double precision" },
 *     { name: "unit", type: "text", default: "°C" } // added with its default when missing
 *   ],
 *   toRow: (r) => [r.day, r.sensor, r.value, undefined],
 *   contract: Contract.make("evolve", { debug: "discard_value" }),
 *   undeclared: Contract.undeclaredFields(Reading)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const partitionReplace = <A>(spec: Spec<A>): Sink.Sink<A, SqlClient.SqlClient> => {
  TableEvolution.validate({ table: spec.table, columns: spec.columns })
  const table = spec.table
  const declared = spec.columns
  const declaredTypes = new Map(declared.map((column) => [column.name, column.type]))
  const undeclaredOf = spec.undeclared ?? (() => [])
  const contract = spec.contract
  const lock = contract.mode === "evolve" ||
    Object.entries(contract.columns).some(([name, mode]) => mode === "evolve" && !declaredTypes.has(name))
  const base = PartitionReplace.make<A>({
    table,
    partitionColumn: spec.partitionColumn,
    columns: declared,
    toRow: spec.toRow,
    derived: spec.derived
  })
  const storable = base.check
  let state: State | undefined

  const sinkError = (operation: string) => (error: SqlError.SqlError | TableEvolution.TableChangeRefused) =>
    error._tag === "SqlError"
      ? fromSqlError(operation)(error)
      : new SinkError.SinkError({ operation, message: error.message, retryable: false, cause: error })

  const load = Effect.fnUntraced(function*() {
    const relation = yield* TableEvolution.describe(table)
    if (relation === undefined) {
      return yield* new SinkError.SinkError({
        operation: `contract of ${table}`,
        message: `${table} does not exist: create it first (a migration, or TableEvolution.evolve)`,
        retryable: false
      })
    }
    return relation
  })

  const prepare = Effect.fnUntraced(function*(partition: Partition.PartitionDate) {
    const sql = yield* SqlClient.SqlClient
    if (lock) {
      yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sluice.contract ${table}`}, 0))`.pipe(
        Effect.mapError(sinkError(`lock ${table}`))
      )
    }
    const describe = load().pipe(Effect.mapError((e) => e._tag === "SinkError" ? e : sinkError(`describe ${table}`)(e)))
    /** The declared columns the table lacks that the contract adds; fails the run on a refused change or a freeze. */
    const judge = (relation: Catalog.Relation) =>
      Effect.gen(function*() {
        const { additions, refused } = TableEvolution.plan({ table, columns: declared }, relation.columns)
        if (refused.length > 0) {
          return yield* sinkError(`contract of ${table}`)(
            new TableEvolution.TableChangeRefused({ table, changes: refused })
          )
        }
        const evolving: Array<TableEvolution.ColumnSpec> = []
        for (const column of additions) {
          const verdict = Contract.classify(contract, table, [{ name: column.name, value: null, column: undefined }])
          if (verdict._tag === "Fail") return yield* Contract.failure(verdict.violation)
          if (Contract.modeOf(contract, column.name) === "evolve") evolving.push(column)
        }
        return evolving
      })
    let relation = yield* describe
    if ((yield* judge(relation)).length > 0) {
      // take the lock ALTER TABLE would take, before touching the table: concurrent loads wait here for
      // the first one to commit, then find the columns there (and none of them deadlocks)
      yield* sql`LOCK TABLE ${sql(relation.base)} IN ACCESS EXCLUSIVE MODE`.pipe(
        Effect.mapError(sinkError(`lock ${table}`))
      )
      relation = yield* describe
      const evolving = yield* judge(relation)
      if (evolving.length > 0) {
        yield* TableEvolution.addColumns(relation, evolving, { evolved: false }).pipe(
          Effect.mapError(sinkError(`add columns to ${table}`))
        )
        for (const column of evolving) {
          yield* Metric.update(Contract.forColumn(Contract.columnsAdded, table, column.name), 1)
        }
        relation = yield* describe
      }
    }
    const actual = new Set(relation.columns.map((column) => column.name))
    const undeclaredColumns = new Map<string, Table.ColumnType>()
    for (const column of relation.columns) {
      if (!declaredTypes.has(column.name) && column.type !== undefined) undeclaredColumns.set(column.name, column.type)
    }
    state = {
      relation,
      undeclaredColumns,
      missing: declared.flatMap((column, i) => actual.has(column.name) ? [] : [i]),
      present: declared.flatMap((column, i) => actual.has(column.name) ? [i] : [])
    }
    yield* base.prepare(partition)
  })

  /**
   * The violation of a field `evolve` would make a column but whose name cannot be one (see
   * `Table.columnNameProblem`): its record is dead-lettered, the rest of the load goes on.
   */
  const unnamable = (added: ReadonlyArray<Contract.Field>): RecordError.ContractViolation | undefined => {
    for (const field of added) {
      const problem = Table.columnNameProblem(field.name)
      if (problem === undefined) continue
      return new RecordError.ContractViolation({
        contract: "evolve",
        table,
        field: field.name,
        change: "invalid_name",
        message: `field ${JSON.stringify(field.name)} cannot be a column of ${table}: ${problem} ` +
          "(contract evolve: the record is discarded)"
      })
    }
    return undefined
  }

  /** The fields of a record a contract judges: declared ones the table lacks, and undeclared ones. */
  const fieldsOf = (
    current: State,
    values: ReadonlyArray<unknown>,
    undeclared: ReadonlyArray<readonly [string, unknown]>,
    pending?: ReadonlyMap<string, Table.ColumnType>
  ): Array<Contract.Field> => {
    const fields: Array<Contract.Field> = []
    for (const i of current.missing) fields.push({ name: declared[i]!.name, value: values[i], column: undefined })
    for (const [name, value] of undeclared) {
      const existing = current.undeclaredColumns.get(name) ?? pending?.get(name)
      const type = declaredTypes.get(name)
      fields.push({
        name,
        value,
        column: type !== undefined ? taken(type) : existing !== undefined ? columnOf(existing) : undefined
      })
    }
    return fields
  }

  const check = (record: A): RecordError.RecordError | undefined => {
    const rejected = storable?.(record)
    if (rejected !== undefined || state === undefined) return rejected
    const undeclared = undeclaredOf(record)
    if (undeclared.length === 0 && state.missing.length === 0) return undefined
    const verdict = Contract.classify(contract, table, fieldsOf(state, spec.toRow(record), undeclared))
    if (verdict._tag === "Discard") return Contract.recordError(verdict.violation)
    if (verdict._tag === "Fail") return undefined // `write` fails the run
    const badName = unnamable(verdict.added)
    if (badName !== undefined) return Contract.recordError(badName)
    // the undeclared values that will be stored must be storable too
    for (const [name, value] of undeclared) {
      if (value === null || (typeof value !== "string" && typeof value !== "object")) continue
      if (verdict.discarded.some((field) => field.name === name)) continue
      const type: Table.ColumnType = typeof value === "string" ? "text" : "jsonb"
      const bad = Table.storable(table, [{ name, type }], () => [value])(record)
      if (bad !== undefined) return bad
    }
    return undefined
  }

  /**
   * What a batch's rows become under the contract: the columns they fill (the table's present
   * declared columns, then the undeclared ones they carry) and their values; the columns to add
   * first and the values discarded, per column. Fails the run on a contract violation.
   */
  const plan = Effect.fnUntraced(function*(rows: ReadonlyArray<A>) {
    const current = state
    if (current === undefined) {
      return yield* new SinkError.SinkError({
        operation: `insert into ${table}`,
        message: "write before prepare",
        retryable: false
      })
    }
    const pending = new Map<string, Table.ColumnType>()
    const discarded = new Map<string, number>()
    const extraColumns = new Map<string, Table.ColumnType>()
    const judged: Array<{ readonly values: ReadonlyArray<unknown>; readonly extras: Map<string, unknown> }> = []
    for (const row of rows) {
      const values = spec.toRow(row)
      const undeclared = undeclaredOf(row)
      const extras = new Map<string, unknown>()
      if (undeclared.length > 0 || current.missing.length > 0) {
        const verdict = Contract.classify(contract, table, fieldsOf(current, values, undeclared, pending))
        if (verdict._tag !== "Load") return yield* Contract.failure(verdict.violation)
        // `check` dead-letters these records: a column is never named after one
        const badName = unnamable(verdict.added)
        if (badName !== undefined) return yield* Contract.failure(badName)
        for (const field of verdict.added) {
          if (!pending.has(field.name)) pending.set(field.name, typeFor(field.value))
        }
        const dropped = new Set<string>()
        for (const field of verdict.discarded) {
          dropped.add(field.name)
          discarded.set(field.name, (discarded.get(field.name) ?? 0) + 1)
        }
        for (const [name, value] of undeclared) {
          const type = current.undeclaredColumns.get(name) ?? pending.get(name)
          if (type === undefined || dropped.has(name) || declaredTypes.has(name)) continue
          extras.set(name, value)
          if (!extraColumns.has(name)) extraColumns.set(name, type)
        }
      }
      judged.push({ values, extras })
    }
    const extraNames = [...extraColumns.keys()]
    const columns: Array<Table.Column> = [
      ...current.present.map((i) => declared[i]!),
      ...extraNames.map((name) => ({ name, type: extraColumns.get(name)! }))
    ]
    const valueRows = judged.map(({ extras, values }) => [
      ...current.present.map((i) => values[i] === undefined ? (declared[i]!.default ?? null) : values[i]),
      ...extraNames.map((name) => extras.get(name) ?? null)
    ])
    return { current, pending, discarded, columns, valueRows }
  })

  type Plan = Effect.Success<ReturnType<typeof plan>>

  /** Adds a plan's new columns to the table and counts its discarded values. */
  const evolve = Effect.fnUntraced(function*({ current, discarded, pending }: Plan) {
    if (pending.size > 0) {
      const added = [...pending].map(([name, type]): TableEvolution.ColumnSpec => ({ name, type }))
      yield* TableEvolution.addColumns(current.relation, added, { evolved: true }).pipe(
        Effect.mapError(sinkError(`add columns to ${table}`))
      )
      for (const [name, type] of pending) {
        current.undeclaredColumns.set(name, type)
        yield* Metric.update(Contract.forColumn(Contract.columnsAdded, table, name), 1)
      }
    }
    for (const [name, n] of discarded) {
      yield* Metric.update(Contract.forColumn(Contract.valuesDiscarded, table, name), n)
    }
  })

  // the current version's table itself for a versioned table: a view cannot be bulk-loaded by COPY
  const rowsSink = ({ columns, current }: Plan) =>
    PartitionReplace.make<ReadonlyArray<unknown>>({
      table: current.relation.base,
      partitionColumn: spec.partitionColumn,
      columns,
      toRow: (values) => values,
      load: spec.load
    })

  const write = Effect.fnUntraced(function*(partition: Partition.PartitionDate, rows: ReadonlyArray<A>) {
    if (rows.length === 0) return
    const planned = yield* plan(rows)
    yield* evolve(planned)
    yield* rowsSink(planned).write(partition, planned.valueRows)
  })

  /**
   * One COPY for as long as batches fill the same columns and add none; a batch that adds columns
   * or fills others ends it (its columns are added between two COPYs) and starts the next.
   */
  const writeBatches = <E>(partition: Partition.PartitionDate, batches: Stream.Stream<ReadonlyArray<A>, E>) =>
    Effect.gen(function*() {
      let open: { readonly key: string; readonly feed: Sink.Feed<ReadonlyArray<unknown>> } | undefined
      const close = Effect.suspend(() => {
        const current = open
        open = undefined
        return current === undefined ? Effect.void : Effect.andThen(current.feed.close, current.feed.await)
      })
      yield* Stream.runForEach(batches, (rows) =>
        Effect.gen(function*() {
          if (rows.length === 0) return
          const planned = yield* plan(rows)
          const key = planned.columns.map((column) => `${column.name}:${column.type}`).join(",")
          // columns are added between two COPYs, never during one
          if (planned.pending.size > 0 || open?.key !== key) yield* close
          yield* evolve(planned)
          if (open === undefined) {
            const sink = rowsSink(planned)
            const feed = yield* Sink.feed(table, (valueRows: Stream.Stream<ReadonlyArray<ReadonlyArray<unknown>>>) =>
              sink.writeBatches === undefined
                ? Stream.runForEach(valueRows, (batch) =>
                  sink.write(partition, batch))
                : sink.writeBatches(partition, valueRows))
            open = { key, feed }
          }
          yield* open.feed.offer(planned.valueRows)
        })).pipe(
          Effect.andThen(close),
          Effect.onError(() => open === undefined ? Effect.void : open.feed.interrupt)
        )
    })

  return {
    target: table,
    check,
    prepare: (partition) =>
      prepare(partition).pipe(Effect.withSpan("TableContract.prepare", { attributes: { table } })),
    write: (partition, rows) =>
      write(partition, rows).pipe(Effect.withSpan("TableContract.write", { attributes: { table, rows: rows.length } })),
    writeBatches: spec.load === "unnest" ? undefined : <E>(
      partition: Partition.PartitionDate,
      batches: Stream.Stream<ReadonlyArray<A>, E>
    ) =>
      writeBatches(partition, batches).pipe(Effect.withSpan("TableContract.writeBatches", { attributes: { table } })),
    complete: (partition) => base.complete(partition)
  }
}
