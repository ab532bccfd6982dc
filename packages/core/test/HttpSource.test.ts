import { assert, describe, it } from "@effect/vitest"
import { HttpSource, Partition, type SourceError } from "@sluice/core"
import { Effect, Exit, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientError, HttpClientRequest, HttpClientResponse } from "effect/http"
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
  it("splits top-level elements, each as its text in the body, with 1-based positions", () => {
    const exit = split([
      " [ {\"a\": \"x,]}\\\"\"",
      ", \"b\": [1, {\"c\": null}]}, 2 ,",
      "\"s\", [], {}, true, null ] \n"
    ])
    assert.deepStrictEqual(
      exit,
      Exit.succeed([
        { payload: "{\"a\": \"x,]}\\\"\", \"b\": [1, {\"c\": null}]}", position: 1 },
        { payload: "2", position: 2 },
        { payload: "\"s\"", position: 3 },
        { payload: "[]", position: 4 },
        { payload: "{}", position: 5 },
        { payload: "true", position: 6 },
        { payload: "null", position: 7 }
      ])
    )
  })

  it("keeps an element's numbers and keys as written (JSON.stringify would round 19.990000000000000001)", () => {
    assert.deepStrictEqual(
      split(["[{\"amount\": 19.990000000000000001, \"n\": 1.50},\n  12345678901234567890\n]"]),
      Exit.succeed([
        { payload: "{\"amount\": 19.990000000000000001, \"n\": 1.50}", position: 1 },
        { payload: "12345678901234567890", position: 2 }
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

  it("gives JSON.parse's elements, each as its text, however the body is cut into chunks", () => {
    const json = fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 8 })
    fc.assert(fc.property(json, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (values, cuts, pretty) => {
      const text = JSON.stringify(values, null, pretty ? 2 : undefined)
      const exit = split(cutAt(text, cuts))
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        const records = exit.value as ReadonlyArray<{ readonly payload: string; readonly position: number }>
        assert.deepStrictEqual(records.map((r) => r.position), values.map((_, i) => i + 1))
        assert.deepStrictEqual(records.map((r) => JSON.parse(r.payload)), JSON.parse(text))
        // compact: each payload is exactly JSON.stringify's text of its element; pretty: a piece of the body
        if (!pretty) assert.deepStrictEqual(records.map((r) => r.payload), values.map((v) => JSON.stringify(v)))
        else for (const r of records) assert.include(text, r.payload)
      }
    }))
  })
})

describe("HttpSource.jsonArrayBytesToRecords", () => {
  const encode = (text: string) => [...new TextEncoder().encode(text)]
  const splitBytes = (chunks: ReadonlyArray<Uint8Array>) =>
    Effect.runSync(
      Stream.runCollect(HttpSource.jsonArrayBytesToRecords("test", Stream.fromIterable(chunks))).pipe(Effect.exit)
    )
  /** Every way to cut `bytes` in two and in three pieces. */
  const cuts = (bytes: Uint8Array) =>
    Array.from({ length: bytes.length + 1 }, (_, i) => i).flatMap((i) =>
      [[bytes.slice(0, i), bytes.slice(i)]].concat(
        Array.from(
          { length: bytes.length - i + 1 },
          (_, j) => [bytes.slice(0, i), bytes.slice(i, i + j), bytes.slice(i + j)]
        )
      ).map((pieces) => pieces.filter((p) => p.length > 0))
    )

  it("keeps an element that is not valid UTF-8 as its bytes, never U+FFFD, however the body is cut", () => {
    const bytes = Uint8Array.from([
      ...encode("[{\"a\": \"é\"}, {\"a\": \""),
      0xff,
      ...encode("\"}, \""),
      0xe2,
      0x82,
      ...encode("\", \"😀\", {\"b\":"),
      0xc0,
      0xaf,
      ...encode("}]")
    ])
    const expected = Exit.succeed([
      { payload: "{\"a\": \"é\"}", position: 1 },
      {
        payload: "{\"a\": \"\\xFF\"}",
        position: 2,
        invalidBytes: Uint8Array.from([...encode("{\"a\": \""), 0xff, ...encode("\"}")])
      },
      { payload: "\"\\xE2\\x82\"", position: 3, invalidBytes: Uint8Array.from([0x22, 0xe2, 0x82, 0x22]) },
      { payload: "\"😀\"", position: 4 },
      {
        payload: "{\"b\":\\xC0\\xAF}",
        position: 5,
        invalidBytes: Uint8Array.from([...encode("{\"b\":"), 0xc0, 0xaf, 0x7d])
      }
    ])
    for (const pieces of cuts(bytes)) assert.deepStrictEqual(splitBytes(pieces), expected)
  })

  it("invalid bytes outside the array break it (InvalidResponse); inside, they belong to an element", () => {
    assert.strictEqual(failureTag(splitBytes([Uint8Array.of(0xff, 0x5b, 0x5d)])), "InvalidResponse")
    assert.strictEqual(failureTag(splitBytes([Uint8Array.of(0x5b, 0x31, 0x5d, 0xff)])), "InvalidResponse")
    assert.deepStrictEqual(
      splitBytes([Uint8Array.of(0x5b, 0x31, 0xff, 0x2c, 0x32, 0x5d)]),
      Exit.succeed([{ payload: "1\\xFF", position: 1, invalidBytes: Uint8Array.of(0x31, 0xff) }, {
        payload: "2",
        position: 2
      }])
    )
  })

  it("gives the records of the decoded text for valid UTF-8, however the bytes are cut", () => {
    const json = fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 8 })
    fc.assert(fc.property(json, fc.array(fc.nat(), { maxLength: 12 }), (values, points) => {
      const text = JSON.stringify(values)
      const bytes = new TextEncoder().encode(text)
      const sorted = [...new Set(points.map((c) => c % (bytes.length + 1)))].toSorted((a, b) => a - b)
      const pieces = [0, ...sorted].map((from, i) => bytes.slice(from, [...sorted, bytes.length][i]))
      assert.deepStrictEqual(splitBytes(pieces.filter((p) => p.length > 0)), split([text]))
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

  it.effect.each(["application/json", "application/x-ndjson"])(
    "a %s body with invalid UTF-8: its record keeps its bytes (dead-lettered), never U+FFFD",
    (contentType) =>
      Effect.gen(function*() {
        const encode = (text: string) => [...new TextEncoder().encode(text)]
        const [open, separator, close] = contentType === "application/json" ? ["[", ",", "]"] : ["", "\n", "\n"]
        const body = Uint8Array.from([
          ...encode(`${open}{"a":"é"}${separator}{"a":"`),
          0xed,
          0xa0,
          0x80,
          ...encode(`"}${close}`)
        ])
        const client = HttpClient.make((request) =>
          Effect.succeed(
            HttpClientResponse.fromWeb(request, new Response(body, { headers: { "content-type": contentType } }))
          )
        )
        const records = yield* Stream.runCollect(HttpSource.make({ url: () => "http://127.0.0.1/orders" }).extract(day))
          .pipe(Effect.provideService(HttpClient.HttpClient, client))
        assert.deepStrictEqual(records, [
          { payload: "{\"a\":\"é\"}", position: 1 },
          {
            payload: "{\"a\":\"\\xED\\xA0\\x80\"}",
            position: 2,
            invalidBytes: Uint8Array.from([...encode("{\"a\":\""), 0xed, 0xa0, 0x80, ...encode("\"}")])
          }
        ])
      })
  )

  it.effect("byDate builds <baseUrl><path>?date=YYYY-MM-DD and rejects an invalid base URL", () =>
    Effect.gen(function*() {
      const source = HttpSource.byDate({ baseUrl: "http://[bad", path: "orders" })
      assert.strictEqual(source.location, "http://[bad/orders")
      const exit = yield* Stream.runCollect(source.extract(day)).pipe(Effect.exit)
      assert.strictEqual(failureTag(exit), "MalformedConfig")
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
