/**
 * Sluice on PostgreSQL (a server, or embedded PGlite): the database layer, Sluice's own tables,
 * SQL implementations of the core's storage contracts, and the partition-replacement sink.
 *
 * @since 0.1.0
 */
export * as AppendLog from "./AppendLog.ts"
export * as CopyIn from "./CopyIn.ts"
export * as Database from "./Database.ts"
export * as Merge from "./Merge.ts"
export * as Migrations from "./Migrations.ts"
export * as PartitionReplace from "./PartitionReplace.ts"
export * as Scd from "./Scd.ts"
export * as SluiceMigrations from "./SluiceMigrations.ts"
export * as SqlDeadLetterStore from "./SqlDeadLetterStore.ts"
export * as SqlPartitionLock from "./SqlPartitionLock.ts"
export * as SqlProcessedEventLedger from "./SqlProcessedEventLedger.ts"
export * as SqlRunLedger from "./SqlRunLedger.ts"
export * as SqlSchemaRegistry from "./SqlSchemaRegistry.ts"
export * as SqlSluice from "./SqlSluice.ts"
export * as SqlTransactor from "./SqlTransactor.ts"
export * as Table from "./Table.ts"
export * as TableContract from "./TableContract.ts"
export * as TableEvolution from "./TableEvolution.ts"
export * as Testing from "./Testing.ts"
export * as VersionedTable from "./VersionedTable.ts"
