import { assert, describe, it, layer } from "@effect/vitest"
import { SchemaCompatibility, SchemaRegistry } from "@sluice/core"
import { Effect, Schema } from "effect"
import { registrySuite } from "./SchemaRegistrySuite.ts"

layer(SchemaRegistry.SchemaRegistry.layerMemory)("SchemaRegistry.layerMemory", (it) => {
  registrySuite(it)
})

describe("SchemaRegistry", () => {
  it.effect("register, from the context: records of the first version decode under the latest", () =>
    Effect.gen(function*() {
      const OrderV1 = Schema.Struct({ order_id: Schema.String, amount: Schema.Finite })
      const OrderV2 = Schema.Struct({
        ...OrderV1.fields,
        currency: SchemaCompatibility.withDefault(Schema.String, "USD"),
        loyalty_points: SchemaCompatibility.nullable(Schema.Int)
      })
      assert.strictEqual((yield* SchemaRegistry.register("orders", OrderV1)).version, 1)
      assert.strictEqual((yield* SchemaRegistry.register("orders", OrderV2)).version, 2)
      assert.deepStrictEqual(Schema.decodeUnknownSync(OrderV2)({ order_id: "a", amount: 3 }), {
        order_id: "a",
        amount: 3,
        currency: "USD",
        loyalty_points: null
      })
    }).pipe(Effect.provide(SchemaRegistry.SchemaRegistry.layerMemory)))
})
