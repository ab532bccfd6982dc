/**
 * `sluice schema …` as a user runs it: a run of daily-revenue registers the order schema at
 * start-up; `schema check` of an incompatible JSON Schema prints each violation and exits 1.
 * Two process starts (each costs seconds), on the embedded database.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DailyRevenue, Generator } from "@sluice-app/daily-revenue"
import { Partition, SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Database, SqlSluice } from "@sluice/sql"
import { Effect, FileSystem, Layer, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Path from "node:path"

const main = Path.resolve(import.meta.dirname, "../apps/sluice/src/main.ts")

const sluice = (cwd: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const handle = yield* spawner.spawn(ChildProcess.make("node", [main, ...args], {
      cwd,
      env: { DATABASE_URL: undefined, SLUICE_DATA_DIR: undefined, NO_COLOR: "1" },
      extendEnv: true
    }))
    const [stdout, stderr, exitCode] = yield* Effect.all([
      Stream.mkString(Stream.decodeText(handle.stdout)),
      Stream.mkString(Stream.decodeText(handle.stderr)),
      handle.exitCode
    ], { concurrency: 3 })
    return { exitCode: Number(exitCode), stdout, stderr }
  }).pipe(Effect.scoped)

describe("sluice schema", () => {
  it.live(
    "a run registers the order schema; check refuses an incompatible change with its violations",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-schema-" })
        const date = Partition.makeUnsafe("2024-03-01")
        yield* Generator.generate({ directory: Path.join(cwd, "data/orders"), start: date, days: 1, seed: 3 })

        const run = yield* sluice(cwd, ["run", "daily-revenue", "--date", date])
        assert.strictEqual(run.exitCode, 0, run.stderr)

        // customer_id becomes a string, and a required field appears
        yield* fs.writeFileString(
          Path.join(cwd, "orders-v2.json"),
          JSON.stringify({
            type: "object",
            properties: {
              order_id: { type: "string" },
              customer_id: { type: "string" },
              product_category: { type: "string" },
              amount: { anyOf: [{ type: "number" }, { type: "string" }] },
              order_date: { type: "string" },
              vat_rate: { type: "number" }
            },
            required: ["order_id", "customer_id", "product_category", "amount", "order_date", "vat_rate"]
          })
        )
        const check = yield* sluice(cwd, ["schema", "check", DailyRevenue.schemaSubject, "orders-v2.json"])
        assert.strictEqual(check.exitCode, 1, check.stdout + check.stderr)
        assert.deepStrictEqual(check.stdout.trimEnd().split("\n"), [
          `incompatible: ${DailyRevenue.schemaSubject} under BACKWARD (checked against version 1), 2 violation(s):`,
          "  - BACKWARD: field \"customer_id\" changed type from int (> 0) to string (incompatible change, against version 1)",
          "  - BACKWARD: field \"vat_rate\" added as required without a default (required field added, against version 1)"
        ])

        // what the run registered, read back from the database the commands used
        const subjects = yield* SchemaRegistry.SchemaRegistry.use((registry) => registry.subjects).pipe(
          Effect.provide(
            SqlSluice.layer.pipe(
              Layer.provideMerge(Database.layerPglite({ dataDir: Path.join(cwd, ".sluice", "pglite") }))
            )
          )
        )
        assert.deepStrictEqual(subjects.map((s) => [s.subject, s.versions, s.mode]), [
          [DailyRevenue.schemaSubject, 1, SchemaCompatibility.defaultMode]
        ])
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 60_000 }
  )
})
