/**
 * Named sets of migrations, each with its own migrations table, run through effect's `Migrator`.
 *
 * Sluice keeps its own tables under `sluice` ({@link SluiceMigrations}); an app keeps its tables
 * and their history elsewhere (e.g. `raw.daily_revenue_migrations`), so the two never collide.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"

/**
 * A named set of migrations: `migrations` maps `<id>_<name>` to the effect that applies it.
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrationSet {
  /** Names the set in logs and errors. */
  readonly name: string
  /** The history table, optionally schema-qualified (`sluice.migrations`); its schema is created. */
  readonly table: string
  readonly migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>
}

const migrator = Migrator.make({})

/**
 * Applies the pending migrations of a set, in id order, in one transaction. Running it again
 * applies nothing; concurrent runs serialize on the migrations table.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Migrations } from "@sluice/sql"
 *
 * const program = Migrations.run({
 *   name: "shop",
 *   table: "shop.migrations",
 *   migrations: {
 *     "0001_create_orders": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE shop.orders (id text)`)
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("Migrations.run")(function*(set: MigrationSet) {
  const sql = yield* SqlClient.SqlClient
  const dot = set.table.indexOf(".")
  if (dot > 0) yield* ensureSchema(sql, set.table.slice(0, dot))
  return yield* migrator({ loader: Migrator.fromRecord(set.migrations), table: set.table }).pipe(
    Effect.annotateLogs("migrations", set.name)
  )
})

/** `CREATE SCHEMA IF NOT EXISTS` races with itself on PostgreSQL (a unique violation). */
const ensureSchema = (sql: SqlClient.SqlClient, schema: string): Effect.Effect<void, SqlError.SqlError> =>
  sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`.pipe(
    Effect.asVoid,
    Effect.catchTag(
      "SqlError",
      (error) =>
        error.reason._tag === "UniqueViolation" || error.reason._tag === "ConstraintError"
          ? Effect.void
          : Effect.fail(error)
    )
  )

/**
 * A layer that applies a set's pending migrations when it is built.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Database, Migrations } from "@sluice/sql"
 *
 * const AppMigrations = Migrations.layer({ name: "shop", table: "shop.migrations", migrations: {} }).pipe(
 *   Layer.provide(Database.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  set: MigrationSet
): Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> => Layer.effectDiscard(run(set))
