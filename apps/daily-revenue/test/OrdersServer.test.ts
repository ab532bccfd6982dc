import { NodeFileSystem, NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { HttpSource, JsonLinesSource, Partition, type SourceError } from "@sluice/core"
import { Effect, Exit, FileSystem, Layer, Stream } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import * as OrdersServer from "../src/OrdersServer.ts"

const day = Partition.makeUnsafe("2024-03-01")
const missingDay = Partition.makeUnsafe("2024-03-02")

const lines = [
  JSON.stringify({ order_id: "a", amount: 19.99, product_category: "café ☕" }),
  "",
  "{not json",
  JSON.stringify({ order_id: "b", amount: "0.10" }),
  "  ",
  JSON.stringify([1, 2])
]
const fileContent = lines.join("\r\n") // CRLF, no final newline

/** Runs `f` against an OrdersServer over a temp directory holding `2024-03-01.jsonl`. */
const withServer = <A, E>(
  options: Omit<OrdersServer.Options, "directory">,
  f: (baseUrl: string, dir: string) => Effect.Effect<A, E, HttpClient.HttpClient>,
  client: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    yield* fs.writeFileString(`${dir}/${day}.jsonl`, fileContent)
    const server = yield* Layer.build(OrdersServer.layer({ directory: dir, log: false, ...options }))
    const baseUrl = yield* OrdersServer.baseUrl.pipe(Effect.provideContext(server))
    return yield* f(baseUrl, dir).pipe(Effect.provide(client))
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))

const failureOf = <A>(exit: Exit.Exit<A, SourceError.SourceError>): SourceError.SourceError => {
  if (Exit.isSuccess(exit)) return assert.fail(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") return assert.fail(`expected a typed failure: ${exit.cause}`)
  return reason.error
}

const extract = (source: ReturnType<typeof HttpSource.byDate>, partition = day) =>
  Stream.runCollect(source.extract(partition)).pipe(Effect.exit)

/** What JsonLinesSource reads from the same file. */
const expectedRecords = Effect.runSync(
  Stream.runCollect(JsonLinesSource.linesToRecords(Stream.make(fileContent)))
)

describe("OrdersServer + HttpSource", () => {
  it.live("serves a day as JSON Lines: the same records (payloads, positions) as the file", () =>
    withServer({}, (baseUrl) =>
      Effect.gen(function*() {
        const exit = yield* extract(HttpSource.byDate({ baseUrl }))
        assert.isTrue(Exit.isSuccess(exit))
        if (Exit.isSuccess(exit)) assert.deepStrictEqual(exit.value, expectedRecords)
      })))

  it.live("serves a day as a JSON array: one element per record, re-serialized, a line that is not JSON as a string", () =>
    withServer({}, (baseUrl) =>
      Effect.gen(function*() {
        const exit = yield* extract(HttpSource.byDate({ baseUrl, query: { format: "json" } }))
        assert.isTrue(Exit.isSuccess(exit))
        if (Exit.isSuccess(exit)) {
          assert.deepStrictEqual(exit.value.map((r) => r.payload), [
            JSON.stringify({ order_id: "a", amount: 19.99, product_category: "café ☕" }),
            JSON.stringify("{not json"),
            JSON.stringify({ order_id: "b", amount: "0.10" }),
            "[1,2]"
          ])
          assert.deepStrictEqual(exit.value.map((r) => r.position), [1, 2, 3, 4])
        }
      })))

  it.live("a line that is not UTF-8 goes as its bytes: read back as from the file, to be dead-lettered with them", () =>
    withServer({}, (baseUrl, dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const text = (s: string) => [...new TextEncoder().encode(s)]
        const bytes = Uint8Array.from([
          ...text(`${JSON.stringify({ order_id: "a" })}\n`),
          // an invalid byte in a string (Latin-1 é)
          ...text("{\"order_id\":\"caf"),
          0xe9,
          ...text("\",\"amount\":\"1.00\"}\n"),
          // invalid bytes in a line that is not JSON either: still one element
          0xff,
          0xfe,
          ...text(" not json\n"),
          // an invalid byte in a string that is never closed: no array could carry it as it is
          ...text("{\"order_id\":\""),
          0xff,
          0x0a,
          ...text(JSON.stringify({ order_id: "b" }))
        ])
        yield* fs.writeFile(`${dir}/${missingDay}.jsonl`, bytes)
        const fromFile = [...yield* Stream.runCollect(JsonLinesSource.bytesToRecords(Stream.make(bytes)))]
        assert.deepStrictEqual(fromFile.map((r) => r.invalidBytes !== undefined), [false, true, true, true, false])
        const exit = yield* extract(HttpSource.byDate({ baseUrl, query: { format: "json" } }), missingDay)
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        if (Exit.isFailure(exit)) return
        const served = [...exit.value]
        assert.deepStrictEqual(served.slice(0, 3), [
          { payload: JSON.stringify({ order_id: "a" }), position: 1 },
          fromFile[1],
          fromFile[2]
        ])
        // the unclosed one as a JSON string of its escape: the rest of the day still arrives
        assert.deepStrictEqual(served.slice(3), [
          { payload: JSON.stringify(fromFile[3]!.payload), position: 4 },
          { payload: JSON.stringify({ order_id: "b" }), position: 5 }
        ])
      }).pipe(Effect.provide(NodeFileSystem.layer))))

  it.live("an empty day is an empty JSON array", () =>
    withServer({}, (baseUrl, dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(`${dir}/${missingDay}.jsonl`, "\n")
        const exit = yield* extract(HttpSource.byDate({ baseUrl, query: { format: "json" } }), missingDay)
        assert.deepStrictEqual(exit, Exit.succeed([]))
      }).pipe(Effect.provide(NodeFileSystem.layer))))

  it.live("a missing day is NotFound, not retryable", () =>
    withServer({}, (baseUrl) =>
      Effect.gen(function*() {
        const error = failureOf(yield* extract(HttpSource.byDate({ baseUrl }), missingDay))
        assert.strictEqual(error.reason._tag, "NotFound")
        assert.isFalse(error.isRetryable)
      })))

  it.live("a bad date parameter is a permanent HttpStatus 400", () =>
    withServer({}, (baseUrl) =>
      Effect.gen(function*() {
        const source = HttpSource.make({ url: () => `${baseUrl}/orders?date=2024-02-30` })
        const error = failureOf(yield* extract(source))
        assert.strictEqual(error.reason._tag, "HttpStatus")
        assert.strictEqual((error.reason as SourceError.HttpStatus).status, 400)
        assert.isFalse(error.isRetryable)
      })))

  it.live("503 is a retryable HttpStatus, and the next request succeeds (failFirst)", () =>
    withServer({ failFirst: 1, kinds: ["503"] }, (baseUrl) =>
      Effect.gen(function*() {
        const source = HttpSource.byDate({ baseUrl })
        const error = failureOf(yield* extract(source))
        assert.strictEqual(error.reason._tag, "HttpStatus")
        assert.strictEqual((error.reason as SourceError.HttpStatus).status, 503)
        assert.isTrue(error.isRetryable)
        assert.deepStrictEqual(yield* extract(source), Exit.succeed(expectedRecords))
      })))

  for (
    const [name, client] of [["undici", NodeHttpClient.layerUndici], ["node:http", NodeHttpClient.layerNodeHttp], [
      "fetch",
      FetchHttpClient.layer
    ]] as const
  ) {
    it.live(`a connection reset mid-body is a retryable ConnectionReset (${name})`, () =>
      withServer(
        { failFirst: 1, kinds: ["reset"] },
        (baseUrl) =>
          Effect.gen(function*() {
            const error = failureOf(yield* extract(HttpSource.byDate({ baseUrl })))
            assert.strictEqual(error.reason._tag, "ConnectionReset", error.message)
            assert.isTrue(error.isRetryable)
          }),
        client
      ))

    it.live(`a refused connection is a retryable ConnectionRefused (${name})`, () =>
      Effect.gen(function*() {
        // a port that was just free: bind a server, note its port, close it
        const baseUrl = yield* Effect.scoped(
          Effect.flatMap(Layer.build(OrdersServer.layer({ directory: ".", log: false })), (ctx) =>
            OrdersServer.baseUrl.pipe(Effect.provideContext(ctx)))
        )
        const error = failureOf(yield* extract(HttpSource.byDate({ baseUrl })))
        assert.strictEqual(error.reason._tag, "ConnectionRefused", error.message)
        assert.isTrue(error.isRetryable)
      }).pipe(Effect.provide(client)))
  }

  it.live("a slow answer beyond the timeout is a retryable Timeout", () =>
    withServer({ failFirst: 1, kinds: ["slow"], slowMs: 5_000 }, (baseUrl) =>
      Effect.gen(function*() {
        const source = HttpSource.byDate({ baseUrl, timeout: "300 millis" })
        const started = Date.now()
        const error = failureOf(yield* extract(source))
        assert.strictEqual(error.reason._tag, "Timeout")
        assert.isTrue(error.isRetryable)
        assert.isBelow(Date.now() - started, 3_000)
        assert.deepStrictEqual(yield* extract(source), Exit.succeed(expectedRecords))
      })))

  it.live("failFirst cycles through kinds per date, then the date is served", () =>
    withServer({ failFirst: 2, kinds: ["503", "reset"] }, (baseUrl) =>
      Effect.gen(function*() {
        const source = HttpSource.byDate({ baseUrl })
        assert.strictEqual(failureOf(yield* extract(source)).reason._tag, "HttpStatus")
        assert.strictEqual(failureOf(yield* extract(source)).reason._tag, "ConnectionReset")
        assert.deepStrictEqual(yield* extract(source), Exit.succeed(expectedRecords))
        // another date has its own count
        assert.strictEqual(failureOf(yield* extract(source, missingDay)).reason._tag, "HttpStatus")
      })))

  it.live("failureRate fails about that share of requests, deterministically for a seed", () =>
    Effect.gen(function*() {
      const outcomes = (seed: number) =>
        withServer({ failureRate: 0.5, kinds: ["503"], seed }, (baseUrl) =>
          Effect.forEach(
            Array.from({ length: 40 }),
            () => Effect.map(extract(HttpSource.byDate({ baseUrl })), Exit.isSuccess)
          ))
      const a = yield* outcomes(7)
      const b = yield* outcomes(7)
      assert.deepStrictEqual(a, b)
      const failures = a.filter((ok) => !ok).length
      assert.isTrue(failures >= 8 && failures <= 32, `failures: ${failures}`)
    }))
})
