/**
 * `sluice serve`'s JSON API under bad requests: every one gets a clear JSON error with a 4xx status,
 * never an empty body nor a silent default. A calendar range that is empty (`since`, or the pipeline's
 * start date, after `until`)
 * or a `since`/`until` that is not a date or is given twice is a 400; a path the server does not
 * have is a JSON 404; a known path asked with another method (`GET` of a re-run) is a 405 naming
 * the methods (`Allow`), and runs nothing; a re-run of a partition another run holds
 * (`PartitionLocked`) is a 409, not a 500. A day's dead letters give at most
 * `Serve.payloadPreviewLength` of each payload (a day of 10 MB lines is not a gigabyte answer), with
 * the whole length; hostile payloads come back as stored, and the page inserts them as text only and
 * may not be framed by another site (clickjacking its buttons).
 * On every backend.
 */
import { assert, layer } from "@effect/vitest"
import { DeadLetter, Partition, PartitionLock } from "@sluice/core"
import { SqlSluice, Testing } from "@sluice/sql"
import { Effect, Layer, References } from "effect"
import { HttpServer } from "effect/http"
import * as Serve from "../packages/cli/src/Serve.ts"

for (const backend of Testing.backends()) {
  layer(
    SqlSluice.layer.pipe(
      Layer.provideMerge(backend.layer),
      Layer.merge(Layer.succeed(References.MinimumLogLevel, "Error"))
    ),
    { timeout: "90 seconds", excludeTestServices: true }
  )(`serve's API under bad requests [${backend.name}]`, (it) => {
    it.effect("answers each with a JSON 4xx error and runs nothing", () =>
      Effect.gen(function*() {
        const name = `serve-api-${Math.random().toString(36).slice(2, 8)}`
        const asked: Array<string> = []
        const pipeline: Serve.ServedPipeline = {
          name,
          description: "a batch pipeline",
          startDate: undefined,
          rerun: (partition) =>
            Effect.sync(() => asked.push(`run ${partition}`)).pipe(
              Effect.andThen(Effect.fail(new PartitionLock.PartitionLocked({ pipeline: name, partition })))
            ),
          replay: (partition) =>
            Effect.sync(() => asked.push(`replay ${partition}`)).pipe(Effect.andThen(Effect.die("not asked")))
        }
        const dated: Serve.ServedPipeline = {
          ...pipeline,
          name: `${name}-dated`,
          startDate: Partition.makeUnsafe("2024-01-01")
        }
        yield* Effect.gen(function*() {
          const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
          const send = (path: string, method = "GET") =>
            Effect.promise(() =>
              fetch(`${address}${path}`, { method }).then(async (r) => ({
                status: r.status,
                allow: r.headers.get("allow"),
                contentType: r.headers.get("content-type"),
                body: await r.text()
              }))
            )
          const expectError = function*(path: string, method: string, status: number, pattern: RegExp) {
            const response = yield* send(path, method)
            assert.strictEqual(response.status, status, `${method} ${path}: ${response.body}`)
            assert.match(response.contentType ?? "", /^application\/json/, `${method} ${path}`)
            assert.match((JSON.parse(response.body) as { readonly error: string }).error, pattern, `${method} ${path}`)
            return response
          }
          const calendar = `/api/pipelines/${name}/calendar`

          // a calendar's range: empty, not a date, given twice
          yield* expectError(
            `${calendar}?since=2024-03-05&until=2024-03-01`,
            "GET",
            400,
            /^the range 2024-03-05\.\.2024-03-01 is empty$/
          )
          yield* expectError(`${calendar}?since=9999-12-31&until=0001-01-01`, "GET", 400, /is empty/)
          yield* expectError(
            `/api/pipelines/${name}-dated/calendar?until=2023-12-31`,
            "GET",
            400,
            /^the range 2024-01-01\.\.2023-12-31 is empty \(since defaults to the pipeline's start date, 2024-01-01\)$/
          )
          yield* expectError(`${calendar}?since=2024-02-30`, "GET", 400, /^since is not a date .*2024-02-30/)
          yield* expectError(`${calendar}?until=abc`, "GET", 400, /^until is not a date .*abc/)
          yield* expectError(
            `${calendar}?until=2024-03-01&until=2024-03-02`,
            "GET",
            400,
            /^until is given 2 times/
          )
          // a good range still answers, and a huge one is bounded (at most ~3 years of days)
          const wide = yield* send(`${calendar}?since=0001-01-01&until=9999-12-31`)
          assert.strictEqual(wide.status, 200, wide.body)
          assert.isAtMost((JSON.parse(wide.body) as { readonly days: ReadonlyArray<unknown> }).days.length, 1101)

          // no such path: a JSON 404
          yield* expectError("/nope", "GET", 404, /^not found: GET \/nope$/)
          yield* expectError("/api/pipelines/x/partitions/2024-03-01/nope", "POST", 404, /^not found/)
          // a path the router cannot even match (a bad %-escape): a JSON 404 too
          yield* expectError("/api/pipelines/%E0%A4%A/calendar", "GET", 404, /^not found: GET /)
          yield* expectError("/api/pipelines/%ff/calendar", "GET", 404, /^not found: GET /)

          // a known path with another method: 405 with Allow, and nothing is run
          for (const action of ["run", "replay"]) {
            for (const method of ["GET", "PUT", "DELETE"]) {
              const refused = yield* expectError(
                `/api/pipelines/${name}/partitions/2024-03-01/${action}`,
                method,
                405,
                new RegExp(`^${method} is not allowed on .*/${action}: use POST$`)
              )
              assert.strictEqual(refused.allow, "POST")
            }
          }
          const post = yield* expectError("/metrics", "POST", 405, /use GET, HEAD$/)
          assert.strictEqual(post.allow, "GET, HEAD")
          // HEAD still answers as GET
          assert.strictEqual((yield* send("/metrics", "HEAD")).status, 200)
          assert.deepStrictEqual(asked, [])

          // a partition another run holds: 409, try again later
          yield* expectError(
            `/api/pipelines/${name}/partitions/2024-03-01/run`,
            "POST",
            409,
            /^PartitionLocked: .* is being run by another process/
          )
          assert.deepStrictEqual(asked, ["run 2024-03-01"])
        }).pipe(
          Effect.provide(Serve.layer({ pipelines: [pipeline, dated], port: 0, log: false })),
          Effect.scoped
        )
      }))

    it.effect("gives a day's dead letters with their payloads cut to a preview, hostile ones as stored", () =>
      Effect.gen(function*() {
        const name = `serve-api-${Math.random().toString(36).slice(2, 8)}`
        const day = Partition.makeUnsafe("2024-03-01")
        const cut = Serve.payloadPreviewLength
        // a 1 MB line whose cut falls inside a surrogate pair (😀 is two code units)
        const huge = "x".repeat(cut - 1) + "😀" + "y".repeat(1024 * 1024)
        const hostile =
          "{\"order_id\":\"<script>alert(1)</script>\",\"x\":\"\"><img src=x onerror=alert(1)>\u2028\u2029" +
          "</script>\u001b[2J\"}"
        const letter = (position: number, originalRecord: string): DeadLetter.DeadLetter => ({
          pipeline: name,
          partition: day,
          stage: "decode",
          position,
          originalRecord,
          errorType: "InvalidJson",
          error: originalRecord === hostile ? "Unexpected token" : `got "${originalRecord}"`,
          failedAt: Date.UTC(2024, 2, 2),
          runId: "r1"
        })
        yield* (yield* DeadLetter.DeadLetterStore).write(
          [1, 2, 3].map((n) => letter(n, huge + n)).concat([
            letter(4, hostile)
          ])
        )
        // a day with more dead letters than an answer lists
        const busy = Partition.makeUnsafe("2024-03-02")
        yield* (yield* DeadLetter.DeadLetterStore).write(
          Array.from(
            { length: Serve.deadLettersShown + 2 },
            (_, i) => ({ ...letter(i + 1, `{"n":${i}`), partition: busy })
          )
        )
        const pipeline: Serve.ServedPipeline = {
          name,
          description: "a batch pipeline",
          startDate: undefined,
          rerun: () => Effect.die("not asked"),
          replay: () => Effect.die("not asked")
        }
        yield* Effect.gen(function*() {
          const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
          const response = yield* Effect.promise(() =>
            fetch(`${address}/api/pipelines/${name}/partitions/${day}`).then((r) => r.text())
          )
          assert.isBelow(response.length, 7 * cut + 10_000, "a preview of each payload and error, not 6 MB")
          const detail = JSON.parse(response) as {
            readonly deadLetters: ReadonlyArray<
              { readonly originalRecord: string; readonly originalRecordLength: number; readonly truncated: boolean }
            >
          }
          assert.deepStrictEqual(
            detail.deadLetters.map((d) => [d.originalRecord, d.originalRecordLength, d.truncated]),
            [
              ...[1, 2, 3].map((n) => ["x".repeat(cut - 1), huge.length + String(n).length, true]),
              [hostile, hostile.length, false]
            ]
          )
          // a decoder's message quoting a whole value is cut the same way
          const errors = detail.deadLetters as unknown as ReadonlyArray<
            { readonly error: string; readonly errorLength: number }
          >
          assert.deepStrictEqual(errors.map((d) => [d.error.length, d.errorLength]), [
            ...[1, 2, 3].map((n) => [cut, huge.length + String(n).length + 6]),
            ["Unexpected token".length, "Unexpected token".length]
          ])
          assert.strictEqual((detail as unknown as { readonly deadLettersTotal: number }).deadLettersTotal, 4)
          const many = JSON.parse(
            yield* Effect.promise(() =>
              fetch(`${address}/api/pipelines/${name}/partitions/${busy}`).then((r) => r.text())
            )
          ) as { readonly deadLetters: ReadonlyArray<unknown>; readonly deadLettersTotal: number }
          assert.strictEqual(many.deadLetters.length, Serve.deadLettersShown)
          assert.strictEqual(many.deadLettersTotal, Serve.deadLettersShown + 2)
          // the page inserts every payload and error as text, never as markup
          const page = yield* Effect.promise(() => fetch(`${address}/`))
          const html = yield* Effect.promise(() => page.text())
          // no other site may frame it (clickjacking its buttons)
          assert.strictEqual(page.headers.get("content-security-policy"), "frame-ancestors 'none'")
          assert.strictEqual(page.headers.get("x-frame-options"), "DENY")
          assert.notMatch(html, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/)
          assert.match(html, /the whole record: sluice dlq show/)
          assert.match(html, /detail\.deadLettersTotal > detail\.deadLetters\.length/)
          // its script parses, and a click whose request fails says so (a non-JSON answer included) instead
          // of an unhandled rejection the on-call engineer never sees
          const script = html.split("<script>")[1]!.split("</script>")[0]!
          assert.doesNotThrow(() => new Function(script))
          assert.notMatch(script, /addEventListener\("click", \(\) => (?:select|act)\([^)]*\)\)\s*$/m)
          assert.lengthOf(
            script.match(/addEventListener\("click", \(\) => (?:select|act)\(.*\)\.catch\(report\)\)/g) ?? [],
            4
          )
          assert.notMatch(script, /await response\.json\(\)/)
        }).pipe(
          Effect.provide(Serve.layer({ pipelines: [pipeline], port: 0, log: false })),
          Effect.scoped
        )
      }))
  })
}
