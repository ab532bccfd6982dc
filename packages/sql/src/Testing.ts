/**
 * Database backends for tests: write a database test once and run it on every backend.
 *
 * - `pglite`: always; an in-memory PGlite per suite (nothing to clean up).
 * - `postgres`: when `SLUICE_TEST_DATABASE_URL` is set. Each suite gets a database of its own,
 *   `CREATE DATABASE sluice_test_<random>` on that server, dropped (`WITH (FORCE)`) when the
 *   suite's layer is released. Suites in parallel workers therefore never see each other's
 *   tables, and code under test keeps its real schema names (`sluice.runs`, `raw.orders`).
 *   The URL's role needs `CREATEDB`.
 *
 * **Gotchas**
 *
 * When `SLUICE_TEST_DATABASE_URL` is set, the server is required: an unreachable server fails the
 * suites (it never skips them), on CI and locally alike. Unset the variable to run on PGlite only.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import * as Database from "./Database.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Backend {
  readonly name: "pglite" | "postgres"
  readonly layer: Layer.Layer<Database.Services, Database.DatabaseUnavailable | Database.DataDirLocked>
}

/**
 * The PostgreSQL server for tests, from `SLUICE_TEST_DATABASE_URL` (unset or empty: none).
 *
 * @since 0.1.0
 * @category config
 */
export const postgresUrl = (): string | undefined => {
  const url = process.env["SLUICE_TEST_DATABASE_URL"]
  return url === undefined || url.trim() === "" ? undefined : url
}

/**
 * Creates a fresh, empty database on the server at `url` for the scope, and returns its URL.
 * The database is dropped when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Database, Testing } from "@sluice/sql"
 *
 * const program = Effect.gen(function*() {
 *   const url = yield* Testing.freshDatabase("postgres://postgres@127.0.0.1:5432/test")
 *   // two pools on one database, as two processes would have
 *   const a = yield* Effect.provide(Effect.void, Database.layerPostgres(url))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const freshDatabase = (
  url: string
): Effect.Effect<string, Database.DatabaseUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const admin = yield* Layer.build(Database.layerPostgres(url, { maxConnections: 1 })).pipe(
      Effect.map(Context.get(PgClient.PgClient))
    )
    const name = `sluice_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`
    const unavailable = (error: { readonly message: string }) =>
      new Database.DatabaseUnavailable({ target: url, reason: error.message.split("\n")[0] ?? "", cause: error })
    yield* Effect.acquireRelease(
      admin`CREATE DATABASE ${admin(name)}`.pipe(Effect.mapError(unavailable)),
      () => admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(Effect.ignore)
    )
    const fresh = new URL(url)
    fresh.pathname = `/${name}`
    return fresh.toString()
  })

/**
 * A PostgreSQL database of its own on the server at `url`, for one suite (see {@link freshDatabase}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPostgres = (
  url: string
): Layer.Layer<Database.Services, Database.DatabaseUnavailable> =>
  Layer.unwrap(Effect.map(freshDatabase(url), (fresh) => Database.layerPostgres(Redacted.make(fresh))))

/**
 * The backends to run database tests on: PGlite (in memory) always, PostgreSQL when
 * `SLUICE_TEST_DATABASE_URL` is set. Each use of a backend's layer is a fresh, empty database.
 *
 * @example
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Testing } from "@sluice/sql"
 *
 * for (const backend of Testing.backends()) {
 *   layer(backend.layer)(`my suite [${backend.name}]`, (it) => {
 *     it.effect("selects", () =>
 *       Effect.gen(function*() {
 *         const sql = yield* SqlClient.SqlClient
 *         const rows = yield* sql`SELECT 1 AS one`
 *         assert.deepStrictEqual(rows, [{ one: 1 }])
 *       }))
 *   })
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const backends = (): ReadonlyArray<Backend> => {
  const url = postgresUrl()
  const pglite: Backend = { name: "pglite", layer: Database.layerPglite({ dataDir: undefined }) }
  return url === undefined ? [pglite] : [pglite, { name: "postgres", layer: layerPostgres(url) }]
}
