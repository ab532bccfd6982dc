import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@sluice/nats"
import { Effect } from "effect"
import * as Net from "node:net"

/** A port of this machine nothing listens on: one the system gave a server that is closed since. */
const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** A server that accepts connections (and says nothing), for the scope. */
const listening = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer((socket) => socket.destroy())
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** The tests `reachableOrFail` registers, run: the error each throws. */
const registered = () => {
  const tests: Array<{ readonly name: string; readonly body: () => void }> = []
  const errors = () =>
    tests.map((t) => {
      try {
        t.body()
        return `${t.name}: passed`
      } catch (error) {
        return `${t.name}: ${(error as Error).message}`
      }
    })
  return { test: (name: string, body: () => void) => tests.push({ name, body }), errors }
}

describe("Testing.reachableOrFail", () => {
  it.live("an unreachable server, required (CI): false, and a failing test naming the server", () =>
    Effect.gen(function*() {
      const servers = `127.0.0.1:${yield* Effect.promise(closedPort)}`
      const { errors, test } = registered()
      assert.isFalse(yield* Effect.promise(() => Testing.reachableOrFail(test, { servers, required: true })))
      assert.deepStrictEqual(errors(), [
        `NATS JetStream is reachable: NATS is required on CI (CI is set) and does not answer at ${servers}`
      ])
    }))

  it.live("an unreachable server, not required: false, and no test (the suites are skipped)", () =>
    Effect.gen(function*() {
      const servers = `127.0.0.1:${yield* Effect.promise(closedPort)}`
      const { errors, test } = registered()
      assert.isFalse(yield* Effect.promise(() => Testing.reachableOrFail(test, { servers, required: false })))
      assert.deepStrictEqual(errors(), [])
    }))

  it.live("a reachable server, required: true, and no test", () =>
    Effect.gen(function*() {
      const server = yield* listening
      const servers = `nats://127.0.0.1:${(server.address() as Net.AddressInfo).port}`
      const { errors, test } = registered()
      assert.isTrue(yield* Effect.promise(() => Testing.reachableOrFail(test, { servers, required: true })))
      assert.deepStrictEqual(errors(), [])
    }).pipe(Effect.scoped))
})
