import { assert, layer } from "@effect/vitest"
import { Migrations, SluiceMigrations } from "@sluice/sql"
import { Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { backends, suiteOptions } from "./fixtures.ts"

const columnsOf = (schema: string, table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly column_name: string; readonly data_type: string; readonly is_nullable: string }>`
      SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = ${schema} AND table_name = ${table}`.pipe(
        Effect.map((rows) =>
          new Map(rows.map((r) => [r.column_name, `${r.data_type}${r.is_nullable === "NO" ? "!" : ""}`]))
        )
      )
  )

const indexesOf = (schema: string, table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly name: string; readonly definition: string }>`
      SELECT indexname AS name, indexdef AS definition FROM pg_indexes
      WHERE schemaname = ${schema} AND tablename = ${table} ORDER BY 1`
  )

const create = (statement: string) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement))

for (const backend of backends) {
  layer(backend.layer, suiteOptions)(`Migrations [${backend.name}]`, (it) => {
    it.effect("SluiceMigrations applies once: running it again applies nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const all = Object.keys(SluiceMigrations.migrations).map((key): [number, string] => {
          const [id, ...name] = key.split("_")
          return [Number(id), name.join("_")]
        })
        assert.deepStrictEqual(all.slice(0, 1), [[1, "create_runs_and_dead_letters"]])
        assert.deepStrictEqual(yield* SluiceMigrations.run, all)
        assert.deepStrictEqual(yield* SluiceMigrations.run, [])
        assert.deepStrictEqual(yield* SluiceMigrations.run, [])
        const history = yield* sql<{ readonly migration_id: number; readonly name: string }>`
          SELECT migration_id, name FROM sluice.migrations ORDER BY migration_id`
        assert.deepStrictEqual(history.map((r): [number, string] => [r.migration_id, r.name]), all)
      }))

    it.effect("creates sluice.dead_letters and sluice.runs with the columns the stores use", () =>
      Effect.gen(function*() {
        yield* SluiceMigrations.run
        const deadLetters = yield* columnsOf("sluice", "dead_letters")
        for (
          const [name, type] of [
            ["id", "bigint!"],
            ["pipeline", "text!"],
            ["partition", "date!"],
            ["stage", "text!"],
            ["position", "bigint!"],
            ["original_record", "text!"],
            ["original_record_escaped", "boolean!"],
            ["error_type", "text!"],
            ["error", "text!"],
            ["failed_at", "timestamp with time zone!"],
            ["run_id", "text!"]
          ]
        ) assert.strictEqual(deadLetters.get(name!), type, `sluice.dead_letters.${name}`)
        const runs = yield* columnsOf("sluice", "runs")
        for (
          const [name, type] of [
            ["run_id", "text!"],
            ["pipeline", "text!"],
            ["partition", "date!"],
            ["status", "text!"],
            ["records_read", "bigint!"],
            ["records_loaded", "bigint!"],
            ["records_dead_lettered", "bigint!"],
            ["retries", "integer!"],
            ["failure_rate", "double precision!"],
            ["alerted", "boolean!"],
            ["started_at", "timestamp with time zone!"],
            ["ended_at", "timestamp with time zone"],
            ["error_type", "text"],
            ["error", "text"]
          ]
        ) assert.strictEqual(runs.get(name!), type, `sluice.runs.${name}`)
      }))

    it.effect("upgrading a database whose dead letters hold int4 positions keeps them, and their stream columns", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const before = Object.fromEntries(
          Object.entries(SluiceMigrations.migrations).filter(([key]) => key < "0006")
        )
        yield* Migrations.run({ name: "sluice", table: SluiceMigrations.table, migrations: before })
        yield* sql`
          INSERT INTO sluice.dead_letters (pipeline, partition, stage, position, original_record, error_type, error,
                                           failed_at, run_id)
          VALUES ('p', '2024-03-01', 'transform@orders', 2147483647, '{', 'InvalidJson', 'e', now(), 'r1'),
                 ('p', '2024-03-01', 'transform', 3, '[', 'InvalidJson', 'e', now(), 'r1')`
        yield* sql`
          INSERT INTO sluice.dead_letters_resolved (id, pipeline, partition, stage, position, original_record,
                                                    original_record_escaped, error_type, error, failed_at,
                                                    run_id, status, attempts)
          VALUES (100, 'p', '2024-03-02', 'transform', 9, '!', false, 'InvalidJson', 'e', now(), 'r0', 'new', 1)`
        assert.deepStrictEqual((yield* SluiceMigrations.run).slice(0, 2), [
          [6, "dead_letter_position_bigint"],
          [7, "dead_letter_resolved_by_record"]
        ])
        const rows = yield* sql<
          { readonly position: string; readonly stream: string | null; readonly sequence: string | null }
        >`
          SELECT position::text AS position, stream, sequence::text AS sequence
          FROM sluice.dead_letters ORDER BY id`
        assert.deepStrictEqual(rows, [
          { position: "2147483647", stream: "orders", sequence: "2147483647" },
          { position: "3", stream: null, sequence: null }
        ])
        yield* sql`UPDATE sluice.dead_letters SET position = position + 1 WHERE stream = 'orders'`
        const grown = yield* sql<{ readonly sequence: string }>`
          SELECT sequence::text AS sequence FROM sluice.dead_letters WHERE stream = 'orders'`
        assert.deepStrictEqual(grown, [{ sequence: "2147483648" }])
        assert.strictEqual((yield* columnsOf("sluice", "dead_letters_resolved")).get("position"), "bigint!")
        const resolved = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM sluice.dead_letters_resolved`
        assert.deepStrictEqual(resolved, [{ n: 1 }])
        // resolved rows are found by their record, whatever their position (see SqlDeadLetterStore)
        const indexes = yield* sql<{ readonly name: string }>`
          SELECT indexname AS name FROM pg_indexes
          WHERE schemaname = 'sluice' AND tablename = 'dead_letters_resolved' ORDER BY 1`
        assert.deepStrictEqual(indexes.map((i) => i.name), [
          "dead_letters_resolved_failed_at_idx",
          "dead_letters_resolved_pkey",
          "dead_letters_resolved_record_idx"
        ])
      }).pipe(Effect.provide(Layer.fresh(backend.layer))))

    it.effect("indexes sluice.processed_events by processed_at, on a fresh database and on one at 0007", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const indexes = indexesOf("sluice", "processed_events")
        const processedAt = {
          name: "processed_events_processed_at_idx",
          definition:
            "CREATE INDEX processed_events_processed_at_idx ON sluice.processed_events USING btree (processed_at)"
        }
        // a database migrated to 0007 with ledger rows: 0008 indexes them and keeps them
        const before = Object.fromEntries(
          Object.entries(SluiceMigrations.migrations).filter(([key]) => key < "0008")
        )
        yield* Migrations.run({ name: "sluice", table: SluiceMigrations.table, migrations: before })
        yield* sql`
          INSERT INTO sluice.processed_events (pipeline, event_id, stream, sequence, processed_at)
          VALUES ('p', 'e1', 'S', 1, '2024-03-01T00:00:00Z'), ('p#key', 'k1', 'S', 1, '2024-03-02T00:00:00Z')`
        assert.deepStrictEqual((yield* indexes).map((i) => i.name), ["processed_events_pkey"])
        assert.deepStrictEqual((yield* SluiceMigrations.run)[0], [8, "processed_events_processed_at_index"])
        assert.deepStrictEqual((yield* indexes).find((i) => i.name === processedAt.name), processedAt)
        const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM sluice.processed_events`
        assert.deepStrictEqual(rows, [{ n: 2 }])
        // a fresh database gets it with the others
        const fresh = yield* Effect.gen(function*() {
          yield* SluiceMigrations.run
          return yield* indexes
        }).pipe(Effect.provide(Layer.fresh(backend.layer)))
        assert.deepStrictEqual(fresh.map((i) => i.name), ["processed_events_pkey", "processed_events_processed_at_idx"])
      }).pipe(Effect.provide(Layer.fresh(backend.layer))))

    it.effect("an app's migration set keeps its own history and applies only what is new", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* SluiceMigrations.run
        const v1 = {
          "0001_create_orders": create("CREATE TABLE shop.orders (id text PRIMARY KEY)"),
          "0002_add_amount": create("ALTER TABLE shop.orders ADD COLUMN amount numeric NOT NULL DEFAULT 0")
        }
        const set = { name: "shop", table: "shop.migrations", migrations: v1 }
        assert.deepStrictEqual(yield* Migrations.run(set), [[1, "create_orders"], [2, "add_amount"]])
        assert.deepStrictEqual(yield* Migrations.run(set), [])
        yield* sql`INSERT INTO shop.orders (id, amount) VALUES ('o-1', 1.5)`
        const v2 = {
          ...set,
          migrations: { ...v1, "0003_add_note": create("ALTER TABLE shop.orders ADD COLUMN note text") }
        }
        assert.deepStrictEqual(yield* Migrations.run(v2), [[3, "add_note"]])
        const orders = yield* sql<{ readonly id: string; readonly amount: string; readonly note: string | null }>`
          SELECT id, amount::text AS amount, note FROM shop.orders`
        assert.deepStrictEqual(orders, [{ id: "o-1", amount: "1.5", note: null }])
        const shop = yield* sql<{ readonly migration_id: number }>`SELECT migration_id FROM shop.migrations ORDER BY 1`
        assert.deepStrictEqual(shop.map((r) => r.migration_id), [1, 2, 3])
        const sluice = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM sluice.migrations`
        assert.strictEqual(
          sluice[0]?.n,
          Object.keys(SluiceMigrations.migrations).length,
          "Sluice's history is not touched by an app's set"
        )
      }))

    it.effect("a history table without a schema works too", () =>
      Effect.gen(function*() {
        const set = {
          name: "plain",
          table: "plain_migrations",
          migrations: { "0001_create": create("CREATE TABLE plain_things (id int)") }
        }
        assert.deepStrictEqual(yield* Migrations.run(set), [[1, "create"]])
        assert.deepStrictEqual(yield* Migrations.run(set), [])
      }))

    it.effect("a failing migration rolls back the whole set: nothing applied, nothing recorded", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const set = {
          name: "broken",
          table: "broken.migrations",
          migrations: {
            "0001_create": create("CREATE TABLE broken.things (id int)"),
            "0002_fail": create("ALTER TABLE broken.no_such_table ADD COLUMN x int")
          }
        }
        const exit = yield* Effect.exit(Migrations.run(set))
        assert.isTrue(Exit.isFailure(exit))
        const tables =
          yield* sql`SELECT 1 FROM information_schema.tables WHERE table_schema = 'broken' AND table_name = 'things'`
        assert.strictEqual(tables.length, 0, "0001 was rolled back with 0002")
        const history = yield* sql`SELECT 1 FROM broken.migrations`
        assert.strictEqual(history.length, 0)
        // fixed, the set applies from the start
        const fixed = { ...set, migrations: { ...set.migrations, "0002_fail": create("SELECT 1") } }
        assert.deepStrictEqual(yield* Migrations.run(fixed), [[1, "create"], [2, "fail"]])
      }))

    it.effect("Migrations.layer applies the set when built", () =>
      Effect.gen(function*() {
        const set = {
          name: "layered",
          table: "layered.migrations",
          migrations: { "0001_create": create("CREATE TABLE layered.things (id int)") }
        }
        yield* Effect.provide(Effect.void, Migrations.layer(set))
        const sql = yield* SqlClient.SqlClient
        assert.deepStrictEqual(yield* sql`SELECT count(*)::int AS n FROM layered.things`, [{ n: 0 }])
      }))
  })
}
