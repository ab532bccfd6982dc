import { Partition } from "@sluice/core"
import { SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"

/** The backends every database suite runs on: PGlite always, PostgreSQL with `SLUICE_TEST_DATABASE_URL`. */
export const backends = Testing.backends()

/** A backend's database with Sluice's tables and services (ledger, dead letters, transactor, lock). */
export const withSluice = (backend: Testing.Backend) => SqlSluice.layer.pipe(Layer.provideMerge(backend.layer))

/**
 * Makes the server stall while it loads `table` (PostgreSQL): inserting a row whose `id` is one of
 * `ids` first sleeps `seconds`, so a test can hold a COPY or a statement mid-way. The trigger's
 * arguments are checked numbers; the function body is fixed.
 */
export const stallInserts = (table: string, ids: ReadonlyArray<number>, seconds: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    if (!ids.every(Number.isSafeInteger) || !(seconds >= 0 && seconds < 3600)) {
      return Effect.die(new Error(`stallInserts: bad ids ${ids.join(", ")} or seconds ${seconds}`))
    }
    const stall = `${table}_stall`
    return Effect.andThen(
      sql`CREATE FUNCTION ${sql(stall)}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.id::text = ANY (TG_ARGV[1:]) THEN PERFORM pg_sleep(TG_ARGV[0]::float8); END IF;
          RETURN NEW;
        END $$`,
      sql`CREATE TRIGGER stall BEFORE INSERT ON ${sql(table)} FOR EACH ROW
        EXECUTE FUNCTION ${sql(stall)}(${sql.literal([seconds, ...ids].join(", "))})`
    )
  })

/**
 * A suite's database is built once, with the live clock (the pool's timers and the connect timeout must
 * run), and its tests run with the live clock too; a test that drives time provides {@link withTestClock}.
 */
export const suiteOptions = { timeout: "60 seconds", excludeTestServices: true } as const

/** Runs a test with a `TestClock` (time starts at 0 and moves only with `TestClock.adjust`). */
export const withTestClock = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, TestClock.layer())

export const day = (offset: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), offset)

/** A name of its own for each test, so tests sharing a suite's database never see each other's rows. */
let counter = 0
export const unique = (prefix: string) => `${prefix}_${++counter}`

export const countRows = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(table)}`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0)
      )
  )

/** Any JavaScript string (any UTF-16 code units), biased towards the tricky ones. */
export { anyString } from "../../core/test/fixtures.ts"
