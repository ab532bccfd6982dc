/**
 * The database Sluice writes to: a layer that provides effect's `SqlClient` (and `PgClient`).
 *
 * - With `DATABASE_URL` set, a pooled connection to a PostgreSQL server ({@link layerPostgres}).
 * - Otherwise an embedded PGlite persisted under `.sluice/pglite` (or `$SLUICE_DATA_DIR/pglite`),
 *   reached through an in-process wire-protocol link: no TCP, no server ({@link layerPglite}).
 *
 * Both speak the same SQL, through the same driver (`@effect/sql-pg`), so everything above this
 * module is written once.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as PgliteDuplex from "./internal/pgliteDuplex.ts"
import * as PgliteSession from "./internal/pgliteSession.ts"

/**
 * The database cannot be reached or opened (connection refused, authentication failed, the
 * PGlite data directory cannot be opened). Its `message` is one line, fit for a CLI.
 *
 * @example
 * ```ts
 * import { Database } from "@sluice/sql"
 *
 * new Database.DatabaseUnavailable({ target: "postgres://127.0.0.1:5432/app", reason: "connection refused" }).message
 * // "database unavailable: postgres://127.0.0.1:5432/app: connection refused"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>("@sluice/sql/DatabaseUnavailable")(
  "DatabaseUnavailable",
  {
    /** The database, without credentials: `postgres://host:port/db` or the PGlite data directory. */
    target: Schema.String,
    reason: Schema.String,
    cause: Schema.optional(Schema.Defect())
  }
) {
  override get message(): string {
    return `database unavailable: ${this.target}: ${this.reason}`
  }
}

/**
 * `DATABASE_URL` is not a PostgreSQL connection URL (`postgres://user@host:port/db` or
 * `postgresql://…`): a configuration error, found before any connection is tried. The message
 * never shows the URL's password; an unparseable URL is not shown at all.
 *
 * @example
 * ```ts
 * import { Database } from "@sluice/sql"
 *
 * new Database.InvalidDatabaseUrl({ url: "mysql://app@db/app", reason: "unsupported protocol \"mysql:\"" }).message
 * // "DATABASE_URL is not a PostgreSQL URL (postgres://user@host:port/db): mysql://app@db/app: unsupported protocol \"mysql:\""
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDatabaseUrl extends Schema.TaggedError<InvalidDatabaseUrl>("@sluice/sql/InvalidDatabaseUrl")(
  "InvalidDatabaseUrl",
  {
    /** The URL without its password, or `(unparseable)`. */
    url: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `DATABASE_URL is not a PostgreSQL URL (postgres://user@host:port/db): ${this.url}: ${this.reason}`
  }
}

/**
 * Checks that `url` is a PostgreSQL connection URL, before connecting.
 *
 * @since 0.1.0
 * @category constructors
 */
export const checkUrl = (url: string): Effect.Effect<void, InvalidDatabaseUrl> => {
  const parsed = URL.parse(url.trim())
  if (parsed === null) {
    return Effect.fail(new InvalidDatabaseUrl({ url: "(unparseable)", reason: "not a URL" }))
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return Effect.fail(
      new InvalidDatabaseUrl({ url: describeUrl(url), reason: `unsupported protocol "${parsed.protocol}"` })
    )
  }
  return Effect.void
}

/**
 * Another process has the PGlite data directory open. PGlite is a single-process database: two
 * processes writing one data directory corrupt it, so the second one is refused.
 *
 * @since 0.1.0
 * @category errors
 */
export class DataDirLocked extends Schema.TaggedError<DataDirLocked>("@sluice/sql/DataDirLocked")(
  "DataDirLocked",
  { dataDir: Schema.String, pid: Schema.Number }
) {
  override get message(): string {
    return `the database ${this.dataDir} is in use by process ${this.pid}; stop it or wait for it to finish`
  }
}

/**
 * Which kind of database the `SqlClient` talks to. Set by the layers of this module; code that
 * is given a `SqlClient` some other way sees the default, `"postgres"`.
 *
 * **Details**
 *
 * PGlite has one session: there is no second connection to reserve, and a session advisory lock
 * would exclude nothing. `SqlPartitionLock` uses this to decide whether to take one.
 *
 * @since 0.1.0
 * @category references
 */
export const Backend = Context.Reference<"postgres" | "pglite">("@sluice/sql/Database/Backend", {
  defaultValue: () => "postgres"
})

/**
 * The layers' output.
 *
 * @since 0.1.0
 * @category models
 */
export type Services = PgClient.PgClient | SqlClient.SqlClient

/** `postgres://user@host:port/db` without the password, for messages. */
const describeUrl = (url: string): string => {
  const parsed = URL.parse(url)
  if (parsed === null) return "postgres (unparseable DATABASE_URL)"
  parsed.password = ""
  return parsed.toString()
}

/**
 * The driver's own error under effect's `SqlError` and its reason (`SqlError.cause` is the reason,
 * whose `cause` is the socket error or the server's ErrorResponse fields).
 */
const rootCause = (error: unknown): { readonly code?: unknown; readonly message?: unknown } | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 4; depth++) {
    const next: unknown = (current as { readonly cause?: unknown }).cause
    if (typeof next !== "object" || next === null) break
    current = next
  }
  return current === error ? undefined : current as { readonly code?: unknown; readonly message?: unknown }
}

const reasonOf = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const cause = rootCause(error)
  const code = typeof cause?.code === "string" ? cause.code : undefined
  if (code === "ECONNREFUSED") return "connection refused"
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found"
  if (code === "ETIMEDOUT") return "connection timed out"
  const detail = typeof cause?.message === "string" && cause.message.length > 0 ? cause.message : error.message
  return detail.split("\n")[0] ?? detail
}

/**
 * Every session's settings, sent at startup (they outrank the server's, database's and role's):
 * - dates are read back as text in places (`partition::text`), so they must print in ISO form
 *   (`SQL, DMY` prints 01/03/2024);
 * - transactions are `READ COMMITTED`: concurrent loads of one merged table, dimension or recomputed
 *   aggregate take a transaction-level advisory lock and then read what the previous one committed,
 *   which needs a snapshot per statement. Under a database default of `repeatable read` (or
 *   `serializable`) the load that waited read its transaction's first snapshot instead, and failed
 *   (`duplicate key value violates unique constraint`) or recomputed from rows no longer current.
 */
const sessionParameters = { datestyle: "ISO", default_transaction_isolation: "read committed" }

/**
 * The largest message read from the server: 1 GiB, PostgreSQL's own limit on a value (and on the
 * buffer a row is built in). The driver's default, 16 MiB, made every read of a row holding a
 * larger value fail: a dead letter of a 17 MB source line was written, then `dlq list`, `show` and
 * `replay` of its pipeline failed with `Message length … exceeds maxMessageSize`.
 */
const maxMessageSize = 2 ** 30

const probe = (client: PgClient.PgClient, target: string) =>
  client`SELECT 1`.pipe(
    Effect.mapError((error) => new DatabaseUnavailable({ target, reason: reasonOf(error), cause: error }))
  )

/**
 * A PostgreSQL server through a connection pool. The connection is checked when the layer is
 * built, so an unreachable server fails fast with {@link DatabaseUnavailable}. Its sessions use
 * the `DateStyle` `ISO, MDY` (PostgreSQL's default), whatever the server's, database's or role's:
 * Sluice reads dates back as text. Write date literals in your own SQL as `YYYY-MM-DD`. Their
 * transactions are `READ COMMITTED` (PostgreSQL's default) the same way: the locks serializing
 * loads of one table rely on each statement seeing what committed before it.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Database } from "@sluice/sql"
 *
 * const DatabaseLive = Database.layerPostgres(Redacted.make("postgres://postgres@127.0.0.1:5432/app"))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPostgres = (
  url: Redacted.Redacted<string> | string,
  options?: { readonly maxConnections?: number | undefined }
): Layer.Layer<Services, DatabaseUnavailable> => {
  const redacted = typeof url === "string" ? Redacted.make(url) : url
  const target = describeUrl(Redacted.value(redacted))
  return PgClient.layerFrom(
    Effect.gen(function*() {
      const client = yield* PgClient.make({
        url: redacted,
        connectTimeout: "5 seconds",
        maxConnections: options?.maxConnections ?? 10,
        applicationName: "sluice",
        startupParameters: sessionParameters,
        maxMessageSize
      }).pipe(
        Effect.mapError((error) => new DatabaseUnavailable({ target, reason: reasonOf(error), cause: error }))
      )
      yield* probe(client, target)
      return client
    })
  ).pipe(Layer.provideMerge(Layer.succeed(Backend, "postgres")))
}

const lockFileName = "pglite.lock"

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { readonly code?: unknown }).code === "EPERM"
  }
}

/**
 * Takes the data directory's lock file (`pglite.lock`, holding the pid), created exclusively.
 * A lock file left by a dead process is stale and replaced.
 */
const acquireDataDirLock = (dataDir: string): Effect.Effect<void, DataDirLocked | DatabaseUnavailable, Scope.Scope> => {
  const file = Path.join(dataDir, lockFileName)
  const pid = process.pid
  const tryCreate = Effect.try({
    try: (): { readonly _tag: "Acquired" } | { readonly _tag: "Held"; readonly pid: number } => {
      Fs.mkdirSync(dataDir, { recursive: true })
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          Fs.writeFileSync(file, String(pid), { flag: "wx" })
          return { _tag: "Acquired" }
        } catch (error) {
          if ((error as { readonly code?: unknown }).code !== "EEXIST") throw error
        }
        const holder = Number.parseInt(Fs.readFileSync(file, "utf8").trim(), 10)
        if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return { _tag: "Held", pid: holder }
        // Stale (dead holder, or a half-written file): remove and try again.
        Fs.rmSync(file, { force: true })
      }
      throw new Error(`cannot take ${file}`)
    },
    catch: (cause) =>
      new DatabaseUnavailable({
        target: dataDir,
        reason: `cannot lock the data directory: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })
  return Effect.acquireRelease(
    Effect.flatMap(
      tryCreate,
      (result) => result._tag === "Held" ? Effect.fail(new DataDirLocked({ dataDir, pid: result.pid })) : Effect.void
    ),
    () =>
      Effect.sync(() => {
        try {
          if (Fs.readFileSync(file, "utf8").trim() === String(pid)) Fs.rmSync(file, { force: true })
        } catch {
          // already gone
        }
      })
  )
}

/**
 * Opens PGlite (persisted in `dataDir`, or in memory) for the scope, and a single-connection
 * `PgClient` over the in-process duplex.
 */
const makePglite = Effect.fnUntraced(function*(dataDir: string | undefined) {
  const target = dataDir ?? "pglite (in memory)"
  if (dataDir !== undefined) yield* acquireDataDirLock(dataDir)
  const session = yield* Effect.acquireRelease(
    Effect.tryPromise({
      // PGlite runs in a worker thread of its own, which imports it: a process on a PostgreSQL
      // server never loads PGlite, and this thread runs on while PGlite executes a statement
      try: () => PgliteSession.open(dataDir),
      catch: (cause) =>
        new DatabaseUnavailable({
          target,
          reason: `cannot open PGlite: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }),
    (session) => Effect.promise(() => session.close()).pipe(Effect.ignore)
  )
  const client = yield* PgClient.makeClient({
    stream: () => PgliteDuplex.make(session),
    username: "postgres",
    database: "postgres",
    applicationName: "sluice",
    startupParameters: sessionParameters,
    maxMessageSize
  }).pipe(Effect.mapError((error) => new DatabaseUnavailable({ target, reason: reasonOf(error), cause: error })))
  yield* probe(client, target)
  return client
})

/**
 * An embedded PGlite database. With a `dataDir` it is persisted there and guarded by a lock
 * file against a second process; without one it lives in memory (tests).
 *
 * **Details**
 *
 * PGlite has a single session, so the client has one connection: statements from concurrent
 * fibers queue, and a transaction holds the connection until it ends. PGlite is closed when the
 * layer's scope closes.
 *
 * @example
 * ```ts
 * import { Database } from "@sluice/sql"
 *
 * const InMemory = Database.layerPglite({ dataDir: undefined })
 * const OnDisk = Database.layerPglite({ dataDir: ".sluice/pglite" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPglite = (options: {
  readonly dataDir?: string | undefined
}): Layer.Layer<Services, DatabaseUnavailable | DataDirLocked> =>
  PgClient.layerFrom(makePglite(options.dataDir === undefined ? undefined : Path.resolve(options.dataDir))).pipe(
    Layer.provideMerge(Layer.succeed(Backend, "pglite"))
  )

/**
 * The database from the environment:
 *
 * - `DATABASE_URL` set: PostgreSQL ({@link layerPostgres}), once {@link checkUrl} has found it a
 *   `postgres:` or `postgresql:` URL (otherwise {@link InvalidDatabaseUrl});
 * - otherwise PGlite in `$SLUICE_DATA_DIR/pglite`, `SLUICE_DATA_DIR` defaulting to `.sluice`
 *   in the working directory ({@link layerPglite}).
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
export const layer: Layer.Layer<
  Services,
  DatabaseUnavailable | DataDirLocked | InvalidDatabaseUrl | Config.ConfigError
> = Layer.unwrap(
  Effect.gen(function*() {
    const url = yield* Config.option(Config.Redacted("DATABASE_URL"))
    if (Option.isSome(url) && Redacted.value(url.value).trim() !== "") {
      yield* checkUrl(Redacted.value(url.value))
      return layerPostgres(url.value)
    }
    const dataDir = yield* Config.String("SLUICE_DATA_DIR").pipe(Config.withDefault(".sluice"))
    return layerPglite({ dataDir: Path.join(dataDir, "pglite") })
  })
)
