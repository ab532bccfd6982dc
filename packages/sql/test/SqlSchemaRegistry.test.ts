import { assert, describe, it, layer } from "@effect/vitest"
import { SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Database, SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { registrySuite, uniqueSubject } from "../../core/test/SchemaRegistrySuite.ts"
import { backends, suiteOptions, withSluice } from "./fixtures.ts"

const Order = Schema.Struct({
  order_id: Schema.String.check(Schema.isMinLength(1)),
  amount: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
})

for (const backend of backends) {
  layer(withSluice(backend), suiteOptions)(`SqlSchemaRegistry [${backend.name}]`, (it) => {
    // the behaviour every registry has (the same suite runs on the in-memory layer)
    registrySuite(it)

    it.effect("stores each version in sluice.schemas: its definition as jsonb, fingerprint, mode and time", () =>
      Effect.gen(function*() {
        const registry = yield* SchemaRegistry.SchemaRegistry
        const sql = yield* SqlClient.SqlClient
        const subject = uniqueSubject("stored")
        const registered = yield* registry.register(subject, Order)
        const rows = yield* sql<{
          readonly version: number
          readonly fingerprint: string
          readonly mode: string
          readonly kind: string
          readonly tag: string
        }>`SELECT version, fingerprint, mode, jsonb_typeof(representation) AS kind,
                  representation #>> '{representation,_tag}' AS tag
           FROM sluice.schemas WHERE subject = ${subject}`
        assert.deepStrictEqual(rows, [{
          version: 1,
          fingerprint: registered.fingerprint,
          mode: "BACKWARD",
          kind: "object",
          tag: "Objects"
        }])
        // read back, the definition is the one registered
        const read = yield* registry.get(subject, 1)
        assert.strictEqual(read.definition.canonical, registered.definition.canonical)
        assert.strictEqual(yield* SchemaCompatibility.fingerprint(read.definition), registered.fingerprint)
        assert.strictEqual(read.createdAt, registered.createdAt)
      }))

    it.effect("a version number is unique per subject, whatever writes the table", () =>
      Effect.gen(function*() {
        const registry = yield* SchemaRegistry.SchemaRegistry
        const sql = yield* SqlClient.SqlClient
        const subject = uniqueSubject("unique")
        const registered = yield* registry.register(subject, Order)
        const duplicate = yield* Effect.flip(sql`
          INSERT INTO sluice.schemas (subject, version, representation, fingerprint, mode, created_at)
          SELECT subject, version, representation, 'other', mode, created_at
          FROM sluice.schemas WHERE subject = ${subject} AND version = ${registered.version}`)
        assert.strictEqual(duplicate._tag, "SqlError")
      }))

    it.effect("a version of a subject another subject has is its own", () =>
      Effect.gen(function*() {
        const registry = yield* SchemaRegistry.SchemaRegistry
        const a = uniqueSubject("shared-a")
        const b = uniqueSubject("shared-b")
        const [ra, rb] = yield* Effect.all([registry.register(a, Order), registry.register(b, Order)], {
          concurrency: 2
        })
        assert.deepStrictEqual([ra.version, rb.version, ra.created, rb.created], [1, 1, true, true])
      }))
  })
}

const postgresUrl = Testing.postgresUrl()

describe.skipIf(postgresUrl === undefined)("SqlSchemaRegistry [postgres, two processes]", () => {
  it.live("registrations from two pools at once get distinct, consecutive versions", () =>
    Effect.gen(function*() {
      const url = yield* Testing.freshDatabase(postgresUrl!)
      const processes = yield* Effect.all([
        Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url)))),
        Layer.build(SqlSluice.layer.pipe(Layer.provideMerge(Database.layerPostgres(url))))
      ], { concurrency: 2 })
      const subject = "orders"
      const candidates = Array.from({ length: 12 }, (_, i) =>
        Schema.Struct({ ...Order.fields, [`extra_${i}`]: Schema.optionalKey(Schema.String) }))
      const registered = yield* Effect.forEach(
        candidates,
        (schema, i) =>
          Effect.provideContext(
            SchemaRegistry.register(subject, schema),
            processes[i % 2]!
          ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        registered.map((r) =>
          r.version
        ).sort((x, y) => x - y),
        Array.from({ length: 12 }, (_, i) => i + 1)
      )
      const versions = yield* Effect.provideContext(
        SchemaRegistry.SchemaRegistry.use((registry) => registry.versions(subject)),
        processes[1]
      )
      assert.strictEqual(versions.length, 12)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
