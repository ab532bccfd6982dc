/**
 * The schema registry in PostgreSQL: core's `SchemaRegistry` on tables `sluice.schemas` (one row
 * per version: the definition as `jsonb`, its fingerprint, the mode it was checked under) and
 * `sluice.schema_subjects` (one row per subject: its mode).
 *
 * **Details**
 *
 * A registration is one transaction: it takes the subject's row `FOR UPDATE` (creating it if
 * needed), reads the subject's versions, decides with `SchemaRegistry.decide` (the same decision
 * as the in-memory registry), and inserts the next version. Registrations of one subject are
 * therefore serialized — across connections and processes — so two never get the same version;
 * the primary key `(subject, version)` backs this up. Registrations of different subjects do not
 * wait for each other.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { SchemaCompatibility, SchemaRegistry, SinkError } from "@sluice/core"
import { Clock, Effect, Layer, Result } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { fromSqlError } from "./internal/sinkError.ts"

interface VersionRow {
  readonly subject: string
  readonly version: number
  readonly representation: unknown
  readonly fingerprint: string
  readonly mode: SchemaCompatibility.Mode
  readonly created_at: Date
}

interface SubjectRow {
  readonly subject: string
  readonly mode: SchemaCompatibility.Mode | null
  readonly updated_at: Date
  readonly versions: number
  readonly latest: number | null
}

const toVersion = (row: VersionRow): Effect.Effect<SchemaRegistry.SchemaVersion, SinkError.SinkError> => {
  const definition = SchemaCompatibility.fromJson(row.representation)
  return Result.isFailure(definition)
    ? Effect.fail(
      new SinkError.SinkError({
        operation: "read schema",
        message: `${row.subject} version ${row.version}: ${definition.failure.message}`,
        retryable: false
      })
    )
    : Effect.succeed({
      subject: row.subject,
      version: row.version,
      definition: definition.success,
      fingerprint: row.fingerprint,
      mode: row.mode,
      createdAt: row.created_at.getTime()
    })
}

/** Maps the database's errors to `SinkError`, leaving the registry's own errors as they are. */
const storage = (operation: string) => <A, E, R>(self: Effect.Effect<A, E | SqlError.SqlError, R>) =>
  Effect.catchTag(
    self as Effect.Effect<A, SqlError.SqlError, R>,
    "SqlError",
    (error) => Effect.fail(fromSqlError(operation)(error))
  ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | SinkError.SinkError, R>

/**
 * Builds the registry over the current `SqlClient`. The tables must exist (`SluiceMigrations`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const columns = sql`subject, version, representation, fingerprint, mode, created_at`

  const load = (subject: string) =>
    sql<VersionRow>`SELECT ${columns} FROM sluice.schemas WHERE subject = ${subject} ORDER BY version`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, toVersion))
    )

  const register = Effect.fn("SqlSchemaRegistry.register")(function*(
    subject: string,
    schema: SchemaRegistry.Input,
    options?: { readonly mode?: SchemaCompatibility.Mode | undefined }
  ) {
    yield* SchemaRegistry.requireSubject(subject)
    const prepared = yield* SchemaRegistry.prepare(schema)
    const now = PgTypes.timestamptz(yield* Clock.currentTimeMillis)
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`
        INSERT INTO sluice.schema_subjects (subject, mode, updated_at) VALUES (${subject}, NULL, ${now})
        ON CONFLICT (subject) DO NOTHING`
      // the subject's row lock serializes its registrations, in every process
      const [locked] = yield* sql<{ readonly mode: SchemaCompatibility.Mode | null }>`
        SELECT mode FROM sluice.schema_subjects WHERE subject = ${subject} FOR UPDATE`
      const mode = options?.mode ?? locked?.mode ?? SchemaCompatibility.defaultMode
      const versions = yield* load(subject)
      const decision = yield* SchemaRegistry.decide({ subject, mode, ...prepared, versions })
      if (options?.mode !== undefined) {
        yield* sql`UPDATE sluice.schema_subjects SET mode = ${options.mode}, updated_at = ${now}
                   WHERE subject = ${subject}`
      }
      if (decision._tag === "Existing") return { ...decision.version, created: false }
      const [row] = yield* sql<VersionRow>`
        INSERT INTO sluice.schemas (subject, version, representation, fingerprint, mode, created_at)
        VALUES (${subject}, ${PgTypes.int4(decision.version)}, ${PgTypes.jsonb(prepared.definition.json)},
                ${prepared.fingerprint}, ${mode}, ${now})
        RETURNING ${columns}`
      yield* sql`UPDATE sluice.schema_subjects SET updated_at = ${now} WHERE subject = ${subject}`
      return { ...yield* toVersion(row!), created: true }
    })).pipe(storage("register schema"))
  })

  const check = Effect.fn("SqlSchemaRegistry.check")(function*(subject: string, schema: SchemaRegistry.Input) {
    yield* SchemaRegistry.requireSubject(subject)
    const prepared = yield* SchemaRegistry.prepare(schema)
    const [mode, versions] = yield* Effect.all([modeOf(subject), load(subject).pipe(storage("read schemas"))])
    return SchemaRegistry.evaluate({ subject, mode, ...prepared, versions })
  })

  const get = Effect.fn("SqlSchemaRegistry.get")(function*(subject: string, version?: number | undefined) {
    const [row] = version === undefined
      ? yield* sql<VersionRow>`
          SELECT ${columns} FROM sluice.schemas WHERE subject = ${subject} ORDER BY version DESC LIMIT 1`
      : yield* sql<VersionRow>`
          SELECT ${columns} FROM sluice.schemas WHERE subject = ${subject} AND version = ${PgTypes.int4(version)}`
    if (row === undefined) {
      return yield* new SchemaRegistry.SchemaNotFound(version === undefined ? { subject } : { subject, version })
    }
    return yield* toVersion(row)
  }, storage("read schema"))

  const modeOf = (subject: string) =>
    sql<{ readonly mode: SchemaCompatibility.Mode | null }>`
      SELECT mode FROM sluice.schema_subjects WHERE subject = ${subject}`.pipe(
      Effect.map((rows) => rows[0]?.mode ?? SchemaCompatibility.defaultMode),
      storage("read schema mode"),
      Effect.withSpan("SqlSchemaRegistry.mode")
    )

  const setMode = (subject: string, mode: SchemaCompatibility.Mode) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      sql`
        INSERT INTO sluice.schema_subjects (subject, mode, updated_at)
        VALUES (${subject}, ${mode}, ${PgTypes.timestamptz(now)})
        ON CONFLICT (subject) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at`).pipe(
        Effect.asVoid,
        storage("set schema mode"),
        Effect.withSpan("SqlSchemaRegistry.setMode")
      )

  const subjects = sql<SubjectRow>`
    SELECT s.subject, s.mode, s.updated_at, count(v.version)::int4 AS versions, max(v.version) AS latest
    FROM sluice.schema_subjects s LEFT JOIN sluice.schemas v ON v.subject = s.subject
    GROUP BY s.subject, s.mode, s.updated_at
    ORDER BY s.subject COLLATE "C"`.pipe(
    Effect.map((rows) =>
      rows.map((row): SchemaRegistry.Subject => ({
        subject: row.subject,
        mode: row.mode ?? SchemaCompatibility.defaultMode,
        versions: row.versions,
        latest: row.latest ?? undefined,
        updatedAt: row.updated_at.getTime()
      }))
    ),
    storage("list schema subjects"),
    Effect.withSpan("SqlSchemaRegistry.subjects")
  )

  return SchemaRegistry.SchemaRegistry.of({
    register,
    check,
    get,
    versions: (subject) => load(subject).pipe(storage("read schemas"), Effect.withSpan("SqlSchemaRegistry.versions")),
    subjects,
    mode: modeOf,
    setMode
  })
})

/**
 * Core's `SchemaRegistry` on `sluice.schemas` and `sluice.schema_subjects`.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { SchemaRegistry } from "@sluice/core"
 * import { Database, SluiceMigrations, SqlSchemaRegistry } from "@sluice/sql"
 *
 * const Registry = SqlSchemaRegistry.layer.pipe(
 *   Layer.provide(SluiceMigrations.layer),
 *   Layer.provideMerge(Database.layerPglite({}))
 * )
 * const program = SchemaRegistry.register("orders", Schema.Struct({ order_id: Schema.String })).pipe(
 *   Effect.provide(Registry)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SchemaRegistry.SchemaRegistry, never, SqlClient.SqlClient> = Layer.effect(
  SchemaRegistry.SchemaRegistry,
  make
)
