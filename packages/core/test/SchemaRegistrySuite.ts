/**
 * The behaviour every implementation of `SchemaRegistry` must have, written once: the in-memory
 * layer runs it here, `SqlSchemaRegistry` on every database backend.
 */
import { assert, type Vitest } from "@effect/vitest"
import { SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Effect, Result, Schema } from "effect"

let counter = 0
/** A subject of its own for each test, so tests sharing a registry never see each other's versions. */
export const uniqueSubject = (prefix: string) => `${prefix}-${++counter}-${Math.random().toString(36).slice(2, 8)}`

const V1 = Schema.Struct({ order_id: Schema.String, amount: Schema.Finite })
const V2 = Schema.Struct({ ...V1.fields, currency: SchemaCompatibility.withDefault(Schema.String, "USD") })
const V3 = Schema.Struct({ ...V2.fields, loyalty_points: SchemaCompatibility.nullable(Schema.Int) })

export const registrySuite = (it: Vitest.MethodsNonLive<SchemaRegistry.SchemaRegistry>) => {
  it.effect("register: the first version is 1, a compatible one is next, an identical one is returned again", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("orders")
      const v1 = yield* registry.register(subject, V1)
      assert.deepStrictEqual([v1.version, v1.created, v1.mode], [1, true, "BACKWARD"])
      const again = yield* registry.register(subject, V1)
      assert.deepStrictEqual([again.version, again.created, again.fingerprint], [1, false, v1.fingerprint])
      const v2 = yield* registry.register(subject, V2)
      const v3 = yield* registry.register(subject, V3)
      assert.deepStrictEqual([v2.version, v2.created, v3.version], [2, true, 3])
      // an identical schema returns its version, even an older one
      assert.deepStrictEqual((yield* registry.register(subject, V1)).version, 1)
      const versions = yield* registry.versions(subject)
      assert.deepStrictEqual(versions.map((v) => v.version), [1, 2, 3])
      assert.strictEqual(
        versions[2]!.definition.canonical,
        Result.getOrThrow(SchemaCompatibility.fromSchema(V3)).canonical
      )
    }))

  it.effect("get: the latest version, a given one, or SchemaNotFound", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("get")
      yield* registry.register(subject, V1)
      yield* registry.register(subject, V2)
      assert.strictEqual((yield* registry.get(subject)).version, 2)
      const first = yield* registry.get(subject, 1)
      assert.strictEqual(first.version, 1)
      assert.strictEqual(SchemaCompatibility.describe(first.definition), "{ order_id: string, amount: number }")
      const missing = yield* Effect.flip(registry.get(subject, 7))
      assert.deepStrictEqual([missing._tag, missing.message], [
        "SchemaNotFound",
        `subject "${subject}" has no version 7`
      ])
      const unknown = yield* Effect.flip(registry.get(uniqueSubject("nobody")))
      assert.strictEqual(unknown._tag, "SchemaNotFound")
      assert.deepStrictEqual(yield* registry.versions(uniqueSubject("nobody")), [])
    }))

  it.effect("refuses an incompatible version with every violation, and stores nothing", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("refuse")
      yield* registry.register(subject, V1)
      const V2bad = Schema.Struct({ order_id: Schema.Int, amount: Schema.Finite, customer_id: Schema.Int })
      const error = yield* Effect.flip(registry.register(subject, V2bad))
      assert.strictEqual(error._tag, "SchemaIncompatible")
      if (error._tag !== "SchemaIncompatible") return
      assert.deepStrictEqual(error.violations.map((v) => v.message), [
        "BACKWARD: field \"order_id\" changed type from string to int (incompatible change, against version 1)",
        "BACKWARD: field \"customer_id\" added as required without a default (required field added, against version 1)"
      ])
      assert.deepStrictEqual((yield* registry.versions(subject)).map((v) => v.version), [1])
      // a refused registration with a mode leaves the mode as it was
      yield* Effect.flip(registry.register(subject, V2bad, { mode: "FULL" }))
      assert.strictEqual(yield* registry.mode(subject), "BACKWARD")
    }))

  it.effect("modes: set per subject, by setMode or by register; NONE accepts anything", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("modes")
      assert.strictEqual(yield* registry.mode(subject), "BACKWARD")
      yield* registry.setMode(subject, "FORWARD")
      assert.strictEqual(yield* registry.mode(subject), "FORWARD")
      yield* registry.register(subject, V1)
      // FORWARD: adding a required field is fine, removing one is not
      const withVat = Schema.Struct({ ...V1.fields, vat: Schema.Finite })
      assert.strictEqual((yield* registry.register(subject, withVat)).version, 2)
      const error = yield* Effect.flip(registry.register(subject, Schema.Struct({ order_id: Schema.String })))
      assert.strictEqual(error._tag, "SchemaIncompatible")
      // NONE, given to register, is kept as the subject's mode
      const v3 = yield* registry.register(subject, Schema.Struct({ id: Schema.Boolean }), { mode: "NONE" })
      assert.deepStrictEqual([v3.version, v3.mode], [3, "NONE"])
      assert.strictEqual(yield* registry.mode(subject), "NONE")
      assert.deepStrictEqual((yield* registry.versions(subject)).map((v) => v.mode), ["FORWARD", "FORWARD", "NONE"])
    }))

  it.effect("transitive modes check every earlier version", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("transitive")
      yield* registry.register(
        subject,
        Schema.Struct({ id: Schema.String, discount: Schema.optionalKey(Schema.Finite) })
      )
      yield* registry.register(subject, Schema.Struct({ id: Schema.String }))
      const v3 = Schema.Struct({ id: Schema.String, discount: Schema.optionalKey(Schema.String) })
      yield* registry.setMode(subject, "BACKWARD_TRANSITIVE")
      const refused = yield* registry.check(subject, v3)
      assert.deepStrictEqual([refused.compatible, refused.against], [false, [1, 2]])
      assert.deepStrictEqual(refused.violations.map((v) => [v.rule, v.field, v.version]), [
        ["TYPE_CHANGED", "discount", 1]
      ])
      yield* registry.setMode(subject, "BACKWARD")
      const accepted = yield* registry.check(subject, v3)
      assert.deepStrictEqual([accepted.compatible, accepted.against], [true, [2]])
      assert.strictEqual((yield* registry.register(subject, v3)).version, 3)
    }))

  it.effect("check: what register would do, without registering", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("check")
      const fresh = yield* registry.check(subject, V1)
      assert.deepStrictEqual(
        [fresh.compatible, fresh.mode, fresh.against, fresh.identical, fresh.violations],
        [true, "BACKWARD", [], undefined, []]
      )
      yield* registry.register(subject, V1)
      assert.strictEqual((yield* registry.check(subject, V1)).identical, 1)
      const bad = yield* registry.check(subject, Schema.Struct({ order_id: Schema.String }))
      // removing a required field is refused: the table and its readers rely on it
      assert.deepStrictEqual(
        [bad.compatible, bad.violations.map((v) => `${v.rule} ${v.field}`)],
        [false, ["REQUIRED_FIELD_REMOVED amount"]]
      )
      const worse = yield* registry.check(subject, Schema.Struct({ ...V1.fields, vat: Schema.Finite }))
      assert.deepStrictEqual(worse.violations.map((v) => v.rule), ["REQUIRED_FIELD_ADDED"])
      assert.deepStrictEqual((yield* registry.versions(subject)).map((v) => v.version), [1])
    }))

  it.effect("checkVersion: against one version only, under the subject's mode; SchemaNotFound for another", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("check-version")
      yield* registry.register(subject, V1)
      yield* registry.register(subject, V2)
      // V1 without its amount: incompatible with both; against version 1 only, the violation is version 1's
      const dropped = Schema.Struct({ order_id: Schema.String })
      const one = yield* SchemaRegistry.checkVersion(subject, dropped, 1)
      assert.deepStrictEqual(
        [one.compatible, one.mode, one.against, one.identical, one.violations.map((v) => `${v.rule} ${v.version}`)],
        [false, "BACKWARD", [1], undefined, ["REQUIRED_FIELD_REMOVED 1"]]
      )
      assert.deepStrictEqual((yield* registry.check(subject, dropped)).against, [2])
      // V1 is version 1 itself, and compatible with version 2 (its currency has a default)
      assert.strictEqual((yield* SchemaRegistry.checkVersion(subject, V1, 1)).identical, 1)
      const v1AgainstV2 = yield* SchemaRegistry.checkVersion(subject, V1, 2)
      assert.deepStrictEqual([v1AgainstV2.compatible, v1AgainstV2.identical, v1AgainstV2.against], [true, undefined, [
        2
      ]])
      // one version even under a transitive mode; none under NONE
      yield* registry.setMode(subject, "FULL_TRANSITIVE")
      assert.deepStrictEqual((yield* SchemaRegistry.checkVersion(subject, dropped, 2)).against, [2])
      yield* registry.setMode(subject, "NONE")
      const none = yield* SchemaRegistry.checkVersion(subject, dropped, 1)
      assert.deepStrictEqual([none.compatible, none.against], [true, []])
      // an unknown version or subject
      const missing = yield* Effect.flip(SchemaRegistry.checkVersion(subject, V1, 3))
      assert.deepStrictEqual([missing._tag, missing.message], [
        "SchemaNotFound",
        `subject "${subject}" has no version 3`
      ])
      const unknown = yield* Effect.flip(SchemaRegistry.checkVersion(uniqueSubject("nothing"), V1, 1))
      assert.strictEqual(unknown._tag, "SchemaNotFound")
      assert.deepStrictEqual((yield* registry.versions(subject)).map((v) => v.version), [1, 2])
    }))

  it.effect("subjects: each with its mode, count and latest version; JSON Schema definitions register too", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const a = uniqueSubject("list-a")
      const b = uniqueSubject("list-b")
      yield* registry.register(a, V1)
      yield* registry.register(a, V2)
      const fromFile = Result.getOrThrow(SchemaCompatibility.fromJsonSchema({
        type: "object",
        properties: { id: { type: "integer" } },
        required: ["id"]
      }))
      yield* registry.register(b, fromFile, { mode: "FULL" })
      const listed = (yield* registry.subjects).filter((s) => s.subject === a || s.subject === b)
      assert.deepStrictEqual(
        listed.map((s) => [s.subject, s.mode, s.versions, s.latest]),
        [[a, "BACKWARD", 2, 2], [b, "FULL", 1, 1]]
      )
      assert.strictEqual(SchemaCompatibility.describe((yield* registry.get(b)).definition), "{ id: int }")
    }))

  it.effect("a JSON Schema that accepts anything (`{}`) is refused: it drops every required field", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("anything")
      yield* registry.register(subject, V1)
      const anything = Result.getOrThrow(SchemaCompatibility.fromJsonSchema({}))
      const checked = yield* registry.check(subject, anything)
      assert.deepStrictEqual(checked.violations.map((v) => `${v.rule} ${v.field}`), [
        "REQUIRED_FIELD_REMOVED order_id",
        "REQUIRED_FIELD_REMOVED amount"
      ])
      const refused = yield* Effect.flip(registry.register(subject, anything))
      assert.strictEqual(refused._tag, "SchemaIncompatible")
      assert.deepStrictEqual((yield* registry.versions(subject)).map((v) => v.version), [1])
    }))

  it.effect("a blank subject is refused (InvalidSchema), and nothing is stored", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      for (const subject of ["", "  "]) {
        const registered = yield* Effect.flip(registry.register(subject, V1))
        const checked = yield* Effect.flip(registry.check(subject, V1))
        assert.deepStrictEqual([registered._tag, registered.message], [
          "InvalidSchema",
          "the subject must not be blank"
        ])
        assert.strictEqual(checked._tag, "InvalidSchema")
      }
      assert.isFalse((yield* registry.subjects).some((s) => s.subject.trim() === ""))
    }))

  it.effect("concurrent registrations never share a version", () =>
    Effect.gen(function*() {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const subject = uniqueSubject("concurrent")
      yield* registry.register(subject, V1)
      // each candidate adds its own optional field: compatible with whichever version is latest
      const candidates = Array.from({ length: 8 }, (_, i) =>
        Schema.Struct({ ...V1.fields, [`extra_${i}`]: Schema.optionalKey(Schema.String) }))
      const registered = yield* Effect.forEach(candidates, (schema) =>
        registry.register(subject, schema), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(registered.map((r) => r.version).sort((x, y) => x - y), [2, 3, 4, 5, 6, 7, 8, 9])
      // the same schema registered at once by many: one version
      const same = Schema.Struct({ ...V1.fields, shared: Schema.optionalKey(Schema.Finite) })
      const twice = yield* Effect.forEach(Array.from({ length: 6 }), () => registry.register(subject, same), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(new Set(twice.map((r) => r.version)), new Set([10]))
      assert.strictEqual(twice.filter((r) => r.created).length, 1)
      assert.deepStrictEqual(
        (yield* registry.versions(subject)).map((v) => v.version),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      )
    }))
}
