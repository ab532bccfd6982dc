/**
 * Everything Sluice needs from a database, in one layer: its migrations, the run ledger, the
 * dead-letter store, the transactor, the partition lock and the schema registry.
 *
 * @since 0.1.0
 */
import type { DeadLetter, PartitionLock, RunLedger, SchemaRegistry, Transactor } from "@sluice/core"
import { Layer } from "effect"
import type { Migrator, SqlClient, SqlError } from "effect/sql"
import * as SluiceMigrations from "./SluiceMigrations.ts"
import * as SqlDeadLetterStore from "./SqlDeadLetterStore.ts"
import * as SqlPartitionLock from "./SqlPartitionLock.ts"
import * as SqlRunLedger from "./SqlRunLedger.ts"
import * as SqlSchemaRegistry from "./SqlSchemaRegistry.ts"
import * as SqlTransactor from "./SqlTransactor.ts"

/**
 * The services provided by {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | RunLedger.RunLedger
  | DeadLetter.DeadLetterStore
  | Transactor.Transactor
  | PartitionLock.PartitionLock
  | SchemaRegistry.SchemaRegistry

/**
 * Runs Sluice's migrations, then provides the SQL run ledger, dead-letter store, transactor,
 * partition lock and schema registry on the given `SqlClient`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Database, SqlSluice } from "@sluice/sql"
 *
 * const SluiceLive = Layer.provide(SqlSluice.layer, Database.layer)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Services, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> = Layer
  .mergeAll(
    SqlRunLedger.layer,
    SqlDeadLetterStore.layer,
    SqlTransactor.layer,
    SqlPartitionLock.layer,
    SqlSchemaRegistry.layer
  ).pipe(
    Layer.provide(SluiceMigrations.layer)
  )
