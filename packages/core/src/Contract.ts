/**
 * Schema contracts: what becomes of data that does not fit its table — like dlt's schema contracts,
 * but never silent.
 *
 * A record schema types the fields it declares; a value it rejects is a `SchemaMismatch` dead letter,
 * as always. A contract governs the rest: a field the table has **no column for** (an undeclared
 * field of the payload, or a declared field the table has not gained yet), and a value that its
 * column's type **cannot hold** (a type change of a column the schema does not type, e.g. one an
 * earlier load evolved). Per table (a default mode) and per column (overrides), one of:
 *
 * | mode            | a field without a column                                  | a value its column cannot hold          |
 * | --------------- | --------------------------------------------------------- | --------------------------------------- |
 * | `evolve`        | becomes a new column (its type inferred, or declared)     | fails the run: a type change is not additive |
 * | `freeze`        | fails the run                                             | fails the run                           |
 * | `discard_row`   | the record is dead-lettered as a `ContractViolation`     | the same                                |
 * | `discard_value` | the value is dropped, and counted in {@link valuesDiscarded} | the same                             |
 *
 * This module is the generic part: the modes, the per-record {@link classify}, the typed reason
 * (`RecordError.ContractViolation`) and the metrics. Applying a verdict to a table (adding columns,
 * writing, failing the load) is the table side's work, e.g. `TableContract` of `@sluice/sql`.
 *
 * **Details**
 *
 * `Transform.fromSchema` with a `Schema.Struct` drops undeclared fields; decode with {@link open}
 * instead, so that they stay on the record for the contract to see ({@link undeclaredFields}).
 *
 * @since 0.1.0
 */
import { Metric, Schema } from "effect"
import * as RecordError from "./RecordError.ts"
import * as SinkError from "./SinkError.ts"

/**
 * The contract modes.
 *
 * @since 0.1.0
 * @category models
 */
export const Mode = Schema.Literals(["evolve", "freeze", "discard_row", "discard_value"])

/**
 * @since 0.1.0
 * @category models
 */
export type Mode = typeof Mode.Type

/**
 * A table's contract: a mode for the table, and modes for some columns (by field name) that
 * override it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Contract {
  readonly mode: Mode
  readonly columns: Readonly<Record<string, Mode>>
}

/**
 * Makes a contract: `mode` for every field and column of the table, except the `columns` named.
 *
 * @example
 * ```ts
 * import { Contract } from "@sluice/core"
 *
 * // unknown fields are dropped (and counted); loyalty_points may become a column
 * const contract = Contract.make("discard_value", { loyalty_points: "evolve" })
 * Contract.modeOf(contract, "coupon") // "discard_value"
 * Contract.modeOf(contract, "loyalty_points") // "evolve"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (mode: Mode, columns: Readonly<Record<string, Mode>> = {}): Contract => ({
  mode,
  columns: { ...columns }
})

/**
 * The mode governing one column (or undeclared field) of a table.
 *
 * @since 0.1.0
 * @category accessors
 */
export const modeOf = (contract: Contract, column: string): Mode =>
  Object.hasOwn(contract.columns, column) ? contract.columns[column]! : contract.mode

/**
 * The JSON kind of a value, from which a table infers the type of a new column.
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = "null" | "boolean" | "integer" | "number" | "string" | "array" | "object"

/**
 * @example
 * ```ts
 * import { Contract } from "@sluice/core"
 *
 * Contract.kindOf(3) // "integer"
 * Contract.kindOf(3.5) // "number"
 * Contract.kindOf({ a: 1 }) // "object"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const kindOf = (value: unknown): Kind => {
  if (value === null || value === undefined) return "null"
  if (typeof value === "boolean") return "boolean"
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number"
  if (typeof value === "string") return "string"
  if (Array.isArray(value)) return "array"
  return "object"
}

/**
 * One field of a record, as a contract sees it: its name, its value and, when the table has a
 * column for it, whether that column's type can hold the value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Field {
  readonly name: string
  readonly value: unknown
  /** `undefined`: the table has no column for the field. */
  readonly column: { readonly type: string; readonly fits: (value: unknown) => boolean } | undefined
}

/**
 * What a contract decides for one record.
 *
 * - `Load`: load it; `added` are the fields that become new columns (`evolve`), `discarded` the
 *   fields whose value is dropped (`discard_value`).
 * - `Discard`: dead-letter it with the violation (`discard_row`).
 * - `Fail`: fail the run with the violation (`freeze`, or a type change under `evolve`).
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict =
  | {
    readonly _tag: "Load"
    readonly added: ReadonlyArray<Field>
    readonly discarded: ReadonlyArray<Field>
  }
  | { readonly _tag: "Discard"; readonly violation: RecordError.ContractViolation }
  | { readonly _tag: "Fail"; readonly violation: RecordError.ContractViolation }

const loadAll: Verdict = { _tag: "Load", added: [], discarded: [] }

const describeValue = (value: unknown): string => {
  const kind = kindOf(value)
  if (kind === "string") {
    const text = value as string
    return `the string ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`
  }
  if (kind === "integer" || kind === "number" || kind === "boolean") return `the ${kind} ${String(value)}`
  return kind === "array" ? "an array" : kind === "object" ? "an object" : "null"
}

const violation = (table: string, field: Field, contract: Mode): RecordError.ContractViolation => {
  const change = field.column === undefined ? "new_column" : "type_change"
  const what = change === "new_column"
    ? `field ${field.name} has no column in ${table}`
    : `${describeValue(field.value)} does not fit column ${field.name} (${field.column!.type}) of ${table}`
  const consequence = contract === "freeze"
    ? "the table is frozen"
    : contract === "evolve"
    ? "a type change is not additive: declare a new table version"
    : "the record is discarded"
  return new RecordError.ContractViolation({
    contract,
    table,
    field: field.name,
    change,
    message: `${what} (contract ${contract}: ${consequence})`
  })
}

/**
 * Classifies the fields of one record that a table may not fit — every field the table has no
 * column for, and every value of a column whose type the record schema does not check — against
 * the table's contract. Pure and synchronous: it runs once per record.
 *
 * **Details**
 *
 * Fields are judged in order; the first one that discards the row or fails the run decides. A null
 * (or absent) value always fits an existing column, and a null field under `evolve` adds no column
 * (there is nothing to store, and no type to infer). Under `freeze` and `discard_row` a field
 * without a column is a violation even when it is null: its presence says the record changed.
 *
 * @example
 * ```ts
 * import { Contract } from "@sluice/core"
 *
 * const verdict = Contract.classify(Contract.make("discard_row"), "raw.orders", [
 *   { name: "coupon", value: "SAVE10", column: undefined }
 * ])
 * verdict._tag // "Discard"
 * ```
 *
 * @since 0.1.0
 * @category classification
 */
export const classify = (contract: Contract, table: string, fields: Iterable<Field>): Verdict => {
  let added: Array<Field> | undefined
  let discarded: Array<Field> | undefined
  for (const field of fields) {
    const isNull = field.value === null || field.value === undefined
    if (field.column !== undefined && (isNull || field.column.fits(field.value))) continue
    const mode = modeOf(contract, field.name)
    switch (mode) {
      case "evolve":
        if (field.column !== undefined) return { _tag: "Fail", violation: violation(table, field, mode) }
        if (!isNull) (added ??= []).push(field)
        break
      case "freeze":
        return { _tag: "Fail", violation: violation(table, field, mode) }
      case "discard_row":
        return { _tag: "Discard", violation: violation(table, field, mode) }
      case "discard_value":
        ;(discarded ??= []).push(field)
        break
    }
  }
  return added === undefined && discarded === undefined
    ? loadAll
    : { _tag: "Load", added: added ?? [], discarded: discarded ?? [] }
}

/**
 * The record error of a verdict that discards the row, for a sink's per-record check.
 *
 * @since 0.1.0
 * @category classification
 */
export const recordError = (violation: RecordError.ContractViolation): RecordError.RecordError =>
  new RecordError.RecordError({ reason: violation })

/**
 * The failure of a load whose record broke a contract that fails the run (`freeze`, or a type
 * change under `evolve`): a non-retryable `SinkError` whose `cause` is the violation — the load
 * transaction rolls back, so the table is left as it was. See {@link violationOf}.
 *
 * @since 0.1.0
 * @category classification
 */
export const failure = (violation: RecordError.ContractViolation): SinkError.SinkError =>
  new SinkError.SinkError({
    operation: `contract of ${violation.table}`,
    message: `ContractViolation: ${violation.message}`,
    retryable: false,
    cause: violation
  })

/**
 * The contract violation that failed a run, if that is what failed it.
 *
 * @example
 * ```ts
 * import { Effect, Exit } from "effect"
 * import { Contract, Pipeline, Partition } from "@sluice/core"
 *
 * declare const pipeline: Pipeline.Pipeline<unknown>
 * const program = Effect.gen(function*() {
 *   const exit = yield* Effect.exit(Pipeline.run(pipeline, Partition.makeUnsafe("2024-03-01")))
 *   if (Exit.isFailure(exit)) {
 *     const error = exit.cause.reasons.find((r) => r._tag === "Fail")
 *     const violation = error?._tag === "Fail" ? Contract.violationOf(error.error) : undefined
 *     // violation?.field, violation?.contract
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category classification
 */
export const violationOf = (error: unknown): RecordError.ContractViolation | undefined => {
  const cause = SinkError.isSinkError(error) ? error.cause : error
  return cause instanceof RecordError.ContractViolation ? cause : undefined
}

/**
 * A struct schema that keeps the payload's undeclared fields on the decoded record (as they were
 * parsed), instead of dropping them, so that a contract can judge them. The declared fields are
 * decoded exactly as by `schema`; the record's type is still `schema`'s.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Contract, Transform } from "@sluice/core"
 *
 * const Reading = Schema.Struct({ sensor: Schema.String, value: Schema.Finite })
 * const transform = Transform.fromSchema(Contract.open(Reading))
 * // { sensor: "a", value: 1, unit: "°C" }: `unit` stays, for the table's contract
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const open = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S
): Schema.Decoder<S["Type"], S["DecodingServices"]> =>
  Schema.StructWithRest(schema, [Schema.Record(Schema.String, Schema.Unknown)]) as unknown as Schema.Decoder<
    S["Type"],
    S["DecodingServices"]
  >

/**
 * The fields of a record that `schema` does not declare (kept by {@link open}), in payload order.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Contract } from "@sluice/core"
 *
 * const Reading = Schema.Struct({ sensor: Schema.String })
 * Contract.undeclaredFields(Reading)({ sensor: "a", unit: "°C" }) // [["unit", "°C"]]
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const undeclaredFields = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S
): (record: object) => ReadonlyArray<readonly [string, unknown]> => {
  const declared = new Set(Object.keys(schema.fields))
  return (record) => {
    let out: Array<readonly [string, unknown]> | undefined
    for (const key in record) {
      if (!declared.has(key) && Object.hasOwn(record, key)) {
        ;(out ??= []).push([key, (record as Record<string, unknown>)[key]])
      }
    }
    return out ?? []
  }
}

/**
 * Values dropped by `discard_value`, labelled by `table` and `column`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const valuesDiscarded = Metric.counter("sluice_contract_values_discarded_total", {
  description: "Values dropped by a discard_value contract",
  incremental: true
})

/**
 * Columns added to tables by `evolve`, labelled by `table` and `column`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const columnsAdded = Metric.counter("sluice_contract_columns_added_total", {
  description: "Columns added to tables by an evolve contract",
  incremental: true
})

/**
 * A contract metric labelled by its table and column.
 *
 * @since 0.1.0
 * @category metrics
 */
export const forColumn = <M extends Metric.Metric<any, any>>(metric: M, table: string, column: string): M =>
  Metric.withAttributes(metric, { table, column }) as M
