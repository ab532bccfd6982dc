/**
 * Sluice's own tables, in schema `sluice`, with their history in `sluice.migrations`.
 *
 * - `sluice.runs`: the run ledger (`SqlRunLedger`).
 * - `sluice.dead_letters`, `sluice.dead_letters_resolved`: the dead-letter store (`SqlDeadLetterStore`).
 * - `sluice.schemas`, `sluice.schema_subjects`: the schema registry (`SqlSchemaRegistry`).
 * - `sluice.processed_events`: the processed-event ledger of streaming runs (`SqlProcessedEventLedger`).
 *
 * @since 0.1.0
 */
import { Effect, type Layer } from "effect"
import { type Migrator, SqlClient, type SqlError } from "effect/sql"
import * as Migrations from "./Migrations.ts"

/**
 * The migrations, keyed `<id>_<name>`. Append new ones; never edit an applied one.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_create_runs_and_dead_letters": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SCHEMA IF NOT EXISTS sluice`
    yield* sql`
      CREATE TABLE sluice.runs (
        run_id text PRIMARY KEY,
        pipeline text NOT NULL,
        partition date NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        records_read bigint NOT NULL DEFAULT 0,
        records_loaded bigint NOT NULL DEFAULT 0,
        records_dead_lettered bigint NOT NULL DEFAULT 0,
        retries integer NOT NULL DEFAULT 0,
        failure_rate double precision NOT NULL DEFAULT 0,
        alerted boolean NOT NULL DEFAULT false,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        error_type text,
        error text
      )`
    yield* sql`CREATE INDEX runs_pipeline_partition_started_idx ON sluice.runs (pipeline, partition, started_at DESC)`
    yield* sql`
      CREATE TABLE sluice.dead_letters (
        id bigserial PRIMARY KEY,
        pipeline text NOT NULL,
        partition date NOT NULL,
        stage text NOT NULL,
        position integer NOT NULL,
        original_record text NOT NULL,
        original_record_escaped boolean NOT NULL DEFAULT false,
        error_type text NOT NULL,
        error text NOT NULL,
        failed_at timestamptz NOT NULL,
        run_id text NOT NULL,
        status text NOT NULL DEFAULT 'new',
        attempts integer NOT NULL DEFAULT 1
      )`
    yield* sql`CREATE INDEX dead_letters_pipeline_partition_idx ON sluice.dead_letters (pipeline, partition)`
  }),
  "0002_create_schemas": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const modes = sql.literal(
      "('BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE')"
    )
    yield* sql`
      CREATE TABLE sluice.schema_subjects (
        subject text PRIMARY KEY,
        mode text CHECK (mode IN ${modes}),
        updated_at timestamptz NOT NULL
      )`
    yield* sql`
      CREATE TABLE sluice.schemas (
        subject text NOT NULL REFERENCES sluice.schema_subjects (subject),
        version integer NOT NULL CHECK (version > 0),
        representation jsonb NOT NULL,
        fingerprint text NOT NULL,
        mode text NOT NULL CHECK (mode IN ${modes}),
        created_at timestamptz NOT NULL,
        PRIMARY KEY (subject, version)
      )`
    yield* sql`CREATE INDEX schemas_subject_fingerprint_idx ON sluice.schemas (subject, fingerprint)`
  }),
  "0003_dead_letter_lifecycle": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`
      ALTER TABLE sluice.dead_letters
        ADD CONSTRAINT dead_letters_status_check CHECK (status IN ('new', 'discarded'))`
    yield* sql`CREATE INDEX dead_letters_failed_at_idx ON sluice.dead_letters (failed_at)`
    // dead letters whose record a later run of the partition loaded (status `replayed`), kept for audit
    // with the status they had; a record that fails again takes its row back (same id, attempts + 1)
    yield* sql`
      CREATE TABLE sluice.dead_letters_resolved (
        id bigint PRIMARY KEY,
        pipeline text NOT NULL,
        partition date NOT NULL,
        stage text NOT NULL,
        position integer NOT NULL,
        original_record text NOT NULL,
        original_record_escaped boolean NOT NULL,
        error_type text NOT NULL,
        error text NOT NULL,
        failed_at timestamptz NOT NULL,
        run_id text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL
      )`
    yield* sql`
      CREATE INDEX dead_letters_resolved_key_idx ON sluice.dead_letters_resolved (pipeline, partition, position)`
    yield* sql`CREATE INDEX dead_letters_resolved_failed_at_idx ON sluice.dead_letters_resolved (failed_at)`
  }),
  "0004_create_processed_events": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // the processed-event ledger of streaming runs: one row per applied event (SqlProcessedEventLedger)
    yield* sql`
      CREATE TABLE sluice.processed_events (
        pipeline text NOT NULL,
        event_id text NOT NULL,
        stream text NOT NULL,
        sequence bigint NOT NULL,
        processed_at timestamptz NOT NULL,
        PRIMARY KEY (pipeline, event_id)
      )`
  }),
  "0005_dead_letter_stream_columns": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // a dead letter from a stream names its stream and sequence: the stage is `<stage>@<stream>` and the
    // position is the stream sequence (see core's Streaming); both are shown as columns of their own
    yield* sql`
      ALTER TABLE sluice.dead_letters
        ADD COLUMN stream text GENERATED ALWAYS AS (
          CASE WHEN position('@' IN stage) > 0 THEN substr(stage, position('@' IN stage) + 1) END
        ) STORED,
        ADD COLUMN sequence bigint GENERATED ALWAYS AS (
          CASE WHEN position('@' IN stage) > 0 THEN position END
        ) STORED`
  }),
  "0006_dead_letter_position_bigint": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // a stream's sequence outgrows int4 in a long-lived stream (a JetStream sequence is a uint64): the
    // position becomes int8; `sequence` is computed from it, so it is dropped and added back around the
    // change of type (PostgreSQL refuses to change a column a generated column reads)
    yield* sql`
      ALTER TABLE sluice.dead_letters
        DROP COLUMN sequence,
        ALTER COLUMN position TYPE bigint,
        ADD COLUMN sequence bigint GENERATED ALWAYS AS (
          CASE WHEN position('@' IN stage) > 0 THEN position END
        ) STORED`
    yield* sql`ALTER TABLE sluice.dead_letters_resolved ALTER COLUMN position TYPE bigint`
  }),
  "0007_dead_letter_resolved_by_record": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // a re-written dead letter finds its resolved row by its record, not its line: a line added or
    // removed above it (a fixed source file) moves it. A payload can outgrow a B-tree entry (a 50 kB
    // line), so the index holds its md5, as a uuid (16 bytes compared as bytes, where md5's text is
    // compared by the collation); the store compares the payloads themselves as well
    yield* sql`
      CREATE INDEX dead_letters_resolved_record_idx
        ON sluice.dead_letters_resolved (pipeline, partition, (md5(original_record)::uuid))`
    yield* sql`DROP INDEX sluice.dead_letters_resolved_key_idx`
  }),
  "0008_processed_events_processed_at_index": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // the ledger's retention (`purge`) deletes the rows claimed before a cut-off, of every pipeline or of
    // one (`pipeline = p OR starts_with(pipeline, 'p#')`, which the primary key cannot serve): both read
    // this index's range below the cut-off instead of the whole table. Rows are claimed with the time of
    // their batch, so they are appended at its right end
    yield* sql`CREATE INDEX processed_events_processed_at_idx ON sluice.processed_events (processed_at)`
  })
}

/**
 * The migrations table of Sluice's own tables.
 *
 * @since 0.1.0
 * @category constants
 */
export const table = "sluice.migrations"

/**
 * Applies Sluice's pending migrations; idempotent.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Database, SluiceMigrations } from "@sluice/sql"
 *
 * const program = SluiceMigrations.run.pipe(Effect.provide(Database.layerPglite({})))
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> = Migrations.run({ name: "sluice", table, migrations })

/**
 * A layer that applies Sluice's pending migrations when built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> = Migrations
  .layer({ name: "sluice", table, migrations })
