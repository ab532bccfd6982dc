/**
 * `sluice schema …` as a user runs it: a run of daily-revenue registers the order schema at
 * start-up; `schema check` of an incompatible JSON Schema prints each violation and exits 1, and
 * `schema check --version N` checks against version N only. On the embedded database, and `--version`
 * on PostgreSQL too when `SLUICE_TEST_DATABASE_URL` is set.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DailyRevenue, Generator } from "@sluice-app/daily-revenue"
import { Partition, SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Database, SqlSluice } from "@sluice/sql"
import { Effect, FileSystem, Layer, Result } from "effect"
import * as Path from "node:path"
import * as SluiceCli from "./SluiceCli.ts"

const sluice = (cwd: string, args: ReadonlyArray<string>, env?: SluiceCli.Env) => SluiceCli.run(cwd, args, { env })

/** An order schema whose `currency` is `currency`: version 1 has none, version 2 a text one, with a default. */
const orderSchema = (currency?: unknown) => ({
  type: "object",
  properties: {
    order_id: { type: "string" },
    amount: { type: "number" },
    ...(currency === undefined ? {} : { currency })
  },
  required: ["order_id", "amount", ...(currency === undefined ? [] : ["currency"])]
})

describe("sluice schema", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `check --version N checks against version N only, under the subject's mode; a bad version is a usage error [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-schema-version-" })
          const { env, layer: database } = yield* session.database(cwd)
          const definition = (document: unknown) => Result.getOrThrow(SchemaCompatibility.parse(document))
          yield* Effect.gen(function*() {
            const registry = yield* SchemaRegistry.SchemaRegistry
            yield* registry.register("orders", definition(orderSchema()))
            yield* registry.register("orders", definition(orderSchema({ type: "string", default: "USD" })))
            yield* registry.setMode("payments", "FULL")
          }).pipe(Effect.provide(SqlSluice.layer.pipe(Layer.provideMerge(database))))
          const write = (name: string, document: unknown) =>
            fs.writeFileString(Path.join(cwd, name), JSON.stringify(document))
          yield* write("orders-v1.json", orderSchema())
          // a currency that becomes a number: it breaks version 2 (the latest, which `check` compares with),
          // and is a compatible addition (it has a default) to version 1
          yield* write("orders-numeric.json", orderSchema({ type: "number", default: 0 }))
          yield* write("anything.json", {})
          const run = (args: ReadonlyArray<string>, code: number) =>
            Effect.map(SluiceCli.run(cwd, ["schema", "check", ...args], { env, code }), (r) => r.stdout.trimEnd())
          const usage = (args: ReadonlyArray<string>, line: string) =>
            Effect.map(
              SluiceCli.run(cwd, ["schema", "check", ...args], { env, code: 2 }),
              (result) => assert.strictEqual(result.stderr.trim(), `error: ${line}`)
            )

          assert.match(
            yield* run(["orders", "orders-numeric.json"], 1),
            /^incompatible: orders under BACKWARD \(checked against version 2\), 1 violation\(s\):\n {2}- BACKWARD: field "currency" changed type/
          )
          assert.strictEqual(
            yield* run(["orders", "orders-numeric.json", "--version", "1"], 0),
            "compatible: orders under BACKWARD (checked against version 1)"
          )
          assert.strictEqual(
            yield* run(["orders", "orders-v1.json", "--version", "1"], 0),
            "compatible: identical to orders version 1"
          )
          assert.deepStrictEqual((yield* run(["orders", "anything.json", "--version", "2"], 1)).split("\n"), [
            "incompatible: orders under BACKWARD (checked against version 2), 2 violation(s):",
            "  - BACKWARD: required field \"order_id\" removed (required field removed, against version 2)",
            "  - BACKWARD: required field \"amount\" removed (required field removed, against version 2)"
          ])
          yield* usage(
            ["orders", "orders-v1.json", "--version", "9"],
            "subject \"orders\" has no version 9 (its versions: 1, 2)"
          )
          yield* usage(["orders", "orders-v1.json", "--version", "0"], "--version must be at least 1, got 0")
          yield* usage(
            ["payments", "orders-v1.json", "--version", "1"],
            "subject \"payments\" has no version 1 (it has no version yet; register one with `sluice schema register`)"
          )
          yield* usage(
            ["invoices", "orders-v1.json", "--version", "1"],
            "no schema registered under subject \"invoices\"; `sluice schema list` shows the subjects " +
              "(`sluice schema register` makes a first version)"
          )
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
      { timeout: 120_000 }
    )
  }

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

  it.live(
    "bad schema files, blank or unknown subjects and versions are usage errors; `{}` drops required fields",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-schema-" })
        const write = (name: string, document: unknown) =>
          fs.writeFileString(Path.join(cwd, name), JSON.stringify(document))
        const order = (amount: unknown) => ({
          type: "object",
          properties: { order_id: { type: "string" }, amount },
          required: ["order_id", "amount"]
        })
        yield* write("typo.json", order({ type: "strnig" }))
        yield* write("keyword.json", order({ type: "number", minimun: 0 }))
        yield* write("orders.json", order({ type: "number" }))
        yield* write("anything.json", {})
        const usage = (result: { exitCode: number; stdout: string; stderr: string }, line: string) => {
          assert.strictEqual(result.exitCode, 2, result.stdout + result.stderr)
          assert.strictEqual(result.stderr.trim(), `error: ${line}`)
        }

        usage(
          yield* sluice(cwd, ["schema", "register", "orders", "typo.json"]),
          "typo.json: properties.amount.type: unknown type \"strnig\" " +
            "(known: null, boolean, object, array, number, integer, string)"
        )
        usage(
          yield* sluice(cwd, ["schema", "check", "orders", "keyword.json"]),
          "keyword.json: properties.amount.minimun: unknown keyword \"minimun\""
        )
        usage(yield* sluice(cwd, ["schema", "check", " ", "orders.json"]), "the subject must not be blank")
        usage(
          yield* sluice(cwd, ["schema", "show", "orders"]),
          "no schema registered under subject \"orders\"; `sluice schema list` shows the subjects"
        )
        usage(
          yield* sluice(cwd, ["schema", "check", "orders", "orders.json"]),
          "no schema registered under subject \"orders\"; `sluice schema list` shows the subjects " +
            "(`sluice schema register` makes a first version)"
        )

        const registered = yield* sluice(cwd, ["schema", "register", "orders", "orders.json"])
        assert.strictEqual(registered.exitCode, 0, registered.stderr)
        usage(
          yield* sluice(cwd, ["schema", "show", "orders", "--version", "9"]),
          "subject \"orders\" has no version 9 (its versions: 1)"
        )
        const anything = yield* sluice(cwd, ["schema", "check", "orders", "anything.json"])
        assert.strictEqual(anything.exitCode, 1, anything.stdout + anything.stderr)
        assert.deepStrictEqual(anything.stdout.trimEnd().split("\n"), [
          "incompatible: orders under BACKWARD (checked against version 1), 2 violation(s):",
          "  - BACKWARD: required field \"order_id\" removed (required field removed, against version 1)",
          "  - BACKWARD: required field \"amount\" removed (required field removed, against version 1)"
        ])

        // a field added with a "default" is a compatible addition; "additionalProperties": false is refused
        yield* write("orders-default.json", {
          ...order({ type: "number" }),
          properties: { order_id: { type: "string" }, amount: { type: "number" }, currency: { default: "USD" } },
          required: ["order_id", "amount", "currency"]
        })
        const defaulted = yield* sluice(cwd, ["schema", "check", "orders", "orders-default.json"])
        assert.strictEqual(defaulted.exitCode, 0, defaulted.stdout + defaulted.stderr)
        assert.strictEqual(defaulted.stdout.trim(), "compatible: orders under BACKWARD (checked against version 1)")
        yield* write("closed.json", { ...order({ type: "number" }), additionalProperties: false })
        usage(
          yield* sluice(cwd, ["schema", "register", "orders", "closed.json"]),
          "closed.json: additionalProperties: \"additionalProperties\": false is not supported: a record's " +
            "undeclared fields are dropped or kept for its table's contract, never rejected by its schema; " +
            "omit it, and refuse unknown fields with a Contract (freeze or discard_row)"
        )

        // a subject with a mode but no version yet: nothing to check against, said so
        yield* SchemaRegistry.SchemaRegistry.use((registry) => registry.setMode("payments", "FULL")).pipe(
          Effect.provide(
            SqlSluice.layer.pipe(
              Layer.provideMerge(Database.layerPglite({ dataDir: Path.join(cwd, ".sluice", "pglite") }))
            )
          )
        )
        const first = yield* sluice(cwd, ["schema", "check", "payments", "orders.json"])
        assert.strictEqual(first.exitCode, 0, first.stdout + first.stderr)
        assert.strictEqual(
          first.stdout.trim(),
          "compatible: payments has no version yet, so there is nothing to check against; " +
            "`sluice schema register` would make this its version 1"
        )
        usage(
          yield* sluice(cwd, ["schema", "show", "payments"]),
          "subject \"payments\" has no version yet; register one with `sluice schema register`"
        )
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 240_000 }
  )
})
