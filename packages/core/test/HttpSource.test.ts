import { assert, describe, it } from "@effect/vitest"
import { HttpSource, Partition, type SourceError } from "@sluice/core"
import { Effect, Exit, Stream } from "effect"
import { FetchHttpClient, HttpClientError, HttpClientRequest, HttpClientResponse } from "effect/http"
import * as fc from "fast-check"

const day = Partition.makeUnsafe("2024-03-01")

const split = (chunks: ReadonlyArray<string>) =>
  Effect.runSync(
    Stream.runCollect(HttpSource.jsonArrayToRecords("test", Stream.fromIterable(chunks))).pipe(Effect.exit)
  )

const failureTag = <A>(exit: Exit.Exit<A, SourceError.SourceError>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  return reason !== undefined && reason._tag === "Fail" ? reason.error.reason._tag : "defect"
}

const cutAt = (text: string, cuts: ReadonlyArray<number>) => {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].toSorted((a, b) => a - b)
  const chunks: Array<string> = []
  let from = 0
  for (const p of points) {
    chunks.push(text.slice(from, p))
    from = p
  }
  chunks.push(text.slice(from))
  return chunks.filter((c) => c.length > 0)
}

describe("HttpSource.jsonArrayToRecords", () => {
  it("splits top-level elements, re-serializing each, with 1-based positions", () => {
    const exit = split([
      " [ {\"a\": \"x,]}\\\"\"",
      ", \"b\": [1, {\"c\": null}]}, 2 ,",
      "\"s\", [], {}, true, null ] \n"
    ])
    assert.deepStrictEqual(
      exit,
      Exit.succeed([
        { payload: "{\"a\":\"x,]}\\\"\",\"b\":[1,{\"c\":null}]}", position: 1 },
        { payload: "2", position: 2 },
        { payload: "\"s\"", position: 3 },
        { payload: "[]", position: 4 },
        { payload: "{}", position: 5 },
        { payload: "true", position: 6 },
        { payload: "null", position: 7 }
      ])
    )
  })

  it("an empty array has no records", () => {
    assert.deepStrictEqual(split(["[", " ]"]), Exit.succeed([]))
  })

  it.each(
    [
      ["not an array", ["{\"a\": 1}"]],
      ["empty body", []],
      ["unterminated", ["[1, 2"]],
      ["a trailing comma", ["[1, 2, ]"]],
      ["an invalid element", ["[1, {a: 2}]"]],
      ["data after the array", ["[1] 2"]]
    ] as const
  )("%s is InvalidResponse", (_, chunks) => {
    assert.strictEqual(failureTag(split(chunks)), "InvalidResponse")
  })

  it("gives JSON.parse's elements, however the body is cut into chunks", () => {
    const json = fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 8 })
    fc.assert(fc.property(json, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (values, cuts, pretty) => {
      const text = JSON.stringify(values, null, pretty ? 2 : undefined)
      const expected = (JSON.parse(text) as Array<unknown>).map((v, i) => ({
        payload: JSON.stringify(v),
        position: i + 1
      }))
      assert.deepStrictEqual(split(cutAt(text, cuts)), Exit.succeed(expected))
    }))
  })
})

describe("HttpSource.bodyFormat", () => {
  it("chooses the format from the content type", () => {
    assert.strictEqual(HttpSource.bodyFormat(undefined), "JsonLines")
    assert.strictEqual(HttpSource.bodyFormat("application/x-ndjson"), "JsonLines")
    assert.strictEqual(HttpSource.bodyFormat("text/plain; charset=utf-8"), "JsonLines")
    assert.strictEqual(HttpSource.bodyFormat("application/json; charset=utf-8"), "JsonArray")
    assert.strictEqual(HttpSource.bodyFormat("application/vnd.orders+json"), "JsonArray")
    assert.strictEqual(HttpSource.bodyFormat("image/png"), undefined)
  })
})

describe("HttpSource.fromHttpClientError", () => {
  const request = HttpClientRequest.get("http://127.0.0.1/orders")
  const transport = (cause: unknown) =>
    HttpSource.fromHttpClientError(
      "x",
      new HttpClientError.HttpClientError({ reason: new HttpClientError.TransportError({ request, cause }) })
    ).reason._tag
  const withCode = (code: string) => Object.assign(new Error("boom"), { code })

  it("maps transport failures by the error code of the cause chain, not the message", () => {
    assert.strictEqual(transport(withCode("ECONNREFUSED")), "ConnectionRefused")
    assert.strictEqual(transport(new AggregateError([withCode("ECONNREFUSED")], "connect failed")), "ConnectionRefused")
    assert.strictEqual(transport(new TypeError("fetch failed", { cause: withCode("ECONNRESET") })), "ConnectionReset")
    assert.strictEqual(transport(withCode("UND_ERR_SOCKET")), "ConnectionReset")
    assert.strictEqual(transport(withCode("ETIMEDOUT")), "Timeout")
    assert.strictEqual(transport(withCode("UND_ERR_HEADERS_TIMEOUT")), "Timeout")
    assert.strictEqual(transport(withCode("ENOTFOUND")), "MalformedConfig")
    // a message saying "ECONNRESET" is not a code
    assert.strictEqual(transport(new Error("ECONNRESET")), "ConnectionRefused")
  })

  it("maps status errors: 404 is NotFound, others HttpStatus", () => {
    const status = (code: number) =>
      HttpSource.fromHttpClientError(
        "x",
        new HttpClientError.HttpClientError({
          reason: new HttpClientError.StatusCodeError({
            request,
            response: HttpClientResponse.fromWeb(request, new Response(null, { status: code }))
          })
        })
      )
    assert.strictEqual(status(404).reason._tag, "NotFound")
    assert.isFalse(status(404).isRetryable)
    assert.strictEqual(status(429).reason._tag, "HttpStatus")
    assert.isTrue(status(429).isRetryable)
    assert.isFalse(status(403).isRetryable)
  })
})

describe("HttpSource.make", () => {
  it.effect.each(["not a url", "ftp://example.com/orders", ""])(
    "a bad URL %j is MalformedConfig",
    (url) =>
      Effect.gen(function*() {
        const exit = yield* Stream.runCollect(HttpSource.make({ url: () => url }).extract(day)).pipe(Effect.exit)
        assert.strictEqual(failureTag(exit), "MalformedConfig")
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.effect("byDate builds <baseUrl><path>?date=YYYY-MM-DD and rejects an invalid base URL", () =>
    Effect.gen(function*() {
      const source = HttpSource.byDate({ baseUrl: "http://[bad", path: "orders" })
      assert.strictEqual(source.location, "http://[bad/orders")
      const exit = yield* Stream.runCollect(source.extract(day)).pipe(Effect.exit)
      assert.strictEqual(failureTag(exit), "MalformedConfig")
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
