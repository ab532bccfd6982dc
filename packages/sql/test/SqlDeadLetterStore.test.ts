import { assert, layer } from "@effect/vitest"
import { DeadLetter, type Partition, Source, Transform, Utf8 } from "@sluice/core"
import { SqlDeadLetterStore } from "@sluice/sql"
import { Arbitrary, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { deadLetterStoreSuite } from "../../core/test/DeadLetterStoreSuite.ts"
import { anyString, backends, day, suiteOptions, unique, withSluice } from "./fixtures.ts"

const deadLetter = (
  pipeline: string,
  partition: Partition.PartitionDate,
  position: number,
  overrides: Partial<DeadLetter.DeadLetter> = {}
): DeadLetter.DeadLetter => ({
  pipeline,
  partition,
  stage: "transform",
  position,
  originalRecord: `{"position":${position}}`,
  errorType: "SchemaMismatch",
  error: `record ${position} is wrong`,
  failedAt: 1_709_251_200_123 + position,
  runId: "run-1",
  ...overrides
})

const withoutId = (stored: DeadLetter.StoredDeadLetter): DeadLetter.DeadLetter => {
  const { attempts, id, status, ...rest } = stored
  assert.match(id, /^\d+$/)
  assert.strictEqual(status, "new")
  assert.strictEqual(attempts, 1)
  return rest
}

/** Payloads that break naive storage in PostgreSQL text, each with what makes it hard. */
const weirdPayloads: ReadonlyArray<readonly [string, string]> = [
  ["invalid JSON", "{id: r-1, \"amount\": 12.5"],
  ["truncated JSON", "{\"id\":\"r-1\",\"amo"],
  ["empty string", ""],
  ["only whitespace", " \t\r\n "],
  ["a lone NUL", "\u0000"],
  ["NULs inside JSON", "{\"id\":\"a\u0000b\",\"x\":\"\u0000\u0000\"}"],
  ["backslash-zero text (not a NUL)", "\\0"],
  ["backslash-u text (not an escape)", "\\u0000 and \\ud800"],
  ["a NUL next to escape-looking text", "\u0000\\0\\\\0\\u0000"],
  ["trailing backslash with a NUL", "\u0000\\"],
  ["a lone high surrogate", "\uD800"],
  ["a lone low surrogate", "x\uDFFFy"],
  ["a reversed surrogate pair", "\uDE00\uD83D"],
  ["a high surrogate at the end", "abc\uD83D"],
  ["emoji and combining marks", "😀 👩‍👩‍👧 é e\u0301 中文 𝕏"],
  ["control characters", "\u0001\u0007\b\f\u001f\u007f"],
  ["a BOM and U+FFFF", "\uFEFF{\"a\":1}\uFFFF"],
  ["a megabyte of text", "x".repeat(1_048_576)],
  ["a megabyte with NULs and surrogates", "ab\u0000\uD800\\".repeat(209_716)]
]

const between = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** A line of a source file: `ok` loads, any other is a bad line, its payload (a NUL is stored escaped). */
const line = Arbitrary.schema(Schema.Literals(["ok", "a", "b", "\u0000"]))

/**
 * A history of a pipeline's two partitions, whose files start alike: each step edits one file (lines
 * inserted, deleted or replaced), re-runs its partition (its bad lines written in 1–3 batches, in one
 * transaction) and may discard one `new` dead letter of the pipeline.
 */
const history = {
  initial: Arbitrary.array(line, { maxLength: 8 }),
  steps: Arbitrary.array(
    Arbitrary.all({
      partition: between(0, 1),
      edits: Arbitrary.array(
        Arbitrary.all({
          kind: Arbitrary.schema(Schema.Literals(["insert", "delete", "replace"])),
          at: between(0, 10),
          line
        }),
        { maxLength: 3 }
      ),
      batches: between(1, 3),
      discard: between(-1, 6)
    }),
    { minLength: 1, maxLength: 6 }
  )
}

/**
 * The dead letters of a store, comparable with another store's: an id is named by where it was made
 * (the step, partition and position of its first listing), as two stores number their rows apart.
 */
const comparable = (names: Map<string, string>, step: number, listed: ReadonlyArray<DeadLetter.StoredDeadLetter>) =>
  listed.map((d) => {
    const name = names.get(d.id) ?? `${step}/${d.partition}/${d.position}`
    names.set(d.id, name)
    return JSON.stringify([name, d.partition, d.position, d.originalRecord, d.status, d.attempts, d.runId, d.error])
  }).sort()

/** The store under test: dead letters reach the server by COPY (the default), or bound as arrays. */
const withStore = (backend: (typeof backends)[number], copy: boolean) =>
  Layer.provideMerge(
    Layer.effect(DeadLetter.DeadLetterStore, SqlDeadLetterStore.makeWith({ copy })),
    withSluice(backend)
  )

for (const backend of backends) {
  for (const copy of [true, false]) {
    layer(withStore(backend, copy), suiteOptions)(
      `SqlDeadLetterStore [${backend.name}, ${copy ? "COPY" : "arrays"}]`,
      (it) => {
        // how every store keeps a dead letter's identity across re-runs (the same suite runs in memory)
        deadLetterStoreSuite(it)

        it.effect.prop(
          "keeps ids, statuses and attempts as the in-memory store does, over random edits and re-runs",
          history,
          ({ initial, steps }) =>
            Effect.gen(function*() {
              const sql = yield* SqlClient.SqlClient
              const stores = [
                yield* DeadLetter.DeadLetterStore,
                yield* Effect.provide(
                  Effect.service(DeadLetter.DeadLetterStore),
                  Layer.fresh(DeadLetter.DeadLetterStore.layerMemory)
                )
              ] as const
              const names = [new Map<string, string>(), new Map<string, string>()] as const
              const pipeline = unique("dl_model")
              const files = [[...initial], [...initial]]
              for (const [s, step] of steps.entries()) {
                const file = files[step.partition]!
                for (const edit of step.edits) {
                  const at = Math.min(edit.at, file.length)
                  if (edit.kind === "insert") file.splice(at, 0, edit.line)
                  else if (at < file.length && edit.kind === "delete") file.splice(at, 1)
                  else if (at < file.length) file[at] = edit.line
                }
                const partition = day(step.partition)
                const bad = file.flatMap((payload, i) =>
                  payload === "ok" ?
                    [] :
                    [deadLetter(pipeline, partition, i + 1, { originalRecord: payload, runId: `run-${s}` })]
                )
                const size = Math.max(1, Math.ceil(bad.length / step.batches))
                const batches = Array.from({ length: Math.ceil(bad.length / size) }, (_, b) =>
                  bad.slice(b * size, (b + 1) * size))
                const [inSql, inMemory] = stores
                yield* sql.withTransaction(
                  Effect.andThen(
                    inSql.clearPartition(pipeline, partition),
                    Effect.forEach(batches, (batch) =>
                      inSql.write(batch), { discard: true })
                  )
                )
                yield* inMemory.clearPartition(pipeline, partition)
                yield* Effect.forEach(batches, (batch) => inMemory.write(batch), { discard: true })
                for (const store of stores) {
                  const fresh = yield* store.list(pipeline, { status: ["new"] })
                  const chosen = fresh[step.discard % Math.max(1, fresh.length)]
                  if (step.discard >= 0 && chosen !== undefined) yield* store.discard(pipeline, { ids: [chosen.id] })
                }
                const [got, expected] = yield* Effect.forEach(
                  stores,
                  (store, i) =>
                    Effect.map(
                      store.list(pipeline, { status: DeadLetter.statuses }),
                      (listed) => comparable(names[i]!, s, listed)
                    )
                )
                assert.deepStrictEqual(got, expected, `after step ${s}`)
                assert.deepStrictEqual(
                  yield* inSql.countByType(pipeline),
                  yield* inMemory.countByType(pipeline)
                )
                assert.deepStrictEqual(
                  yield* inSql.countByType(pipeline, { status: DeadLetter.statuses }),
                  yield* inMemory.countByType(pipeline, { status: DeadLetter.statuses })
                )
                assert.deepStrictEqual(
                  yield* inSql.countByTypeAndStatus(pipeline),
                  yield* inMemory.countByTypeAndStatus(pipeline)
                )
                const byTypeAndStatus = yield* inSql.countByTypeAndStatus(pipeline, { status: DeadLetter.statuses })
                assert.deepStrictEqual(
                  byTypeAndStatus,
                  yield* inMemory.countByTypeAndStatus(pipeline, { status: DeadLetter.statuses })
                )
                // the counts of each status, as countByType gives them one status at a time
                for (const status of DeadLetter.statuses) {
                  assert.deepStrictEqual(
                    byTypeAndStatus.filter((c) => c.status === status).map(({ count, errorType }) => ({
                      errorType,
                      count
                    })),
                    yield* inSql.countByType(pipeline, { status: [status] })
                  )
                }
                assert.deepStrictEqual(
                  yield* inSql.countByPartition(pipeline, { status: DeadLetter.statuses }),
                  yield* inMemory.countByPartition(pipeline, { status: DeadLetter.statuses })
                )
              }
            }),
          { arbitrary: { runs: 25 } }
        )

        it.effect("writes and lists dead letters with every field, in partition and position order", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl")
            const written = [
              deadLetter(pipeline, day(1), 2),
              deadLetter(pipeline, day(0), 7, { stage: "load", errorType: "InvalidJson", runId: "run-2" }),
              deadLetter(pipeline, day(1), 1, { errorType: "RuleViolation" }),
              deadLetter(pipeline, day(0), 3)
            ]
            yield* store.write(written)
            yield* store.write([deadLetter(unique("other"), day(0), 1)])
            const listed = yield* store.list(pipeline)
            assert.deepStrictEqual(listed.map(withoutId), [written[3], written[1], written[2], written[0]])
            assert.strictEqual(new Set(listed.map((d) => d.id)).size, 4, "each dead letter has an id of its own")
            for (const d of listed) assert.match(d.id, /^\d+$/)
            assert.deepStrictEqual(
              (yield* store.list(pipeline, { partition: day(1) })).map((d) => d.position),
              [1, 2]
            )
            assert.deepStrictEqual((yield* store.list(pipeline, { limit: 3 })).map((d) => d.position), [3, 7, 1])
            assert.deepStrictEqual(yield* store.list(pipeline, { limit: 0 }), [])
            assert.deepStrictEqual(yield* store.list(unique("nobody")), [])
          }))

        it.effect("writes several times in one transaction (a run's streams), each dead letter once", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const pipeline = unique("dl_tx")
            const first = [deadLetter(pipeline, day(0), 1), deadLetter(pipeline, day(0), 2)]
            const second = [deadLetter(pipeline, day(0), 3, { originalRecord: "x".repeat(100_000) })]
            yield* sql.withTransaction(
              Effect.gen(function*() {
                yield* store.write(first)
                yield* store.write(second)
                yield* store.write([])
              })
            )
            assert.deepStrictEqual((yield* store.list(pipeline)).map(withoutId), [...first, ...second])
            // a rolled back write leaves nothing, and the next transaction starts clean
            const rolledBack = yield* Effect.flip(
              sql.withTransaction(Effect.andThen(store.write([deadLetter(pipeline, day(1), 9)]), Effect.fail("abort")))
            )
            assert.strictEqual(rolledBack, "abort")
            yield* store.write([deadLetter(pipeline, day(1), 4)])
            assert.deepStrictEqual((yield* store.list(pipeline, { partition: day(1) })).map((d) => d.position), [4])
          }))

        it.effect("keeps a stream position beyond int4 (a long-lived stream's sequence), and its sequence column", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const pipeline = unique("dl_big")
            const positions = [2 ** 31, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER]
            const written = positions.map((p) =>
              deadLetter(pipeline, day(0), p, { stage: "transform@orders", failedAt: 1_709_251_200_123 })
            )
            yield* store.write(written)
            assert.deepStrictEqual((yield* store.list(pipeline)).map(withoutId), written)
            const columns = yield* sql<{ readonly stream: string; readonly sequence: string }>`
              SELECT stream, sequence::text AS sequence FROM sluice.dead_letters
              WHERE pipeline = ${pipeline} ORDER BY position`
            assert.deepStrictEqual(columns, positions.map((p) => ({ stream: "orders", sequence: String(p) })))
            // a re-run that dead-letters the same records again takes their rows back
            const ids = (yield* store.list(pipeline)).map((d) => d.id)
            yield* sql.withTransaction(
              Effect.andThen(store.clearPartition(pipeline, day(0)), store.write(written))
            )
            const again = yield* store.list(pipeline)
            assert.deepStrictEqual(again.map((d) => d.id), ids)
            assert.deepStrictEqual(again.map((d) => d.attempts), [2, 2, 2])
          }))

        it.effect("keeps failedAt to the millisecond and partitions as written, at calendar edges", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_edges")
            const partitions = ["0001-01-01", "1969-12-31", "1970-01-01", "2024-02-29", "2024-03-31", "9999-12-31"]
            const written = partitions.map((p, i) =>
              deadLetter(pipeline, p as Partition.PartitionDate, 1, {
                failedAt: [-1, 0, 1, 999, 1_700_000_000_001][i] ?? i
              })
            )
            yield* store.write(written)
            assert.deepStrictEqual((yield* store.list(pipeline)).map(withoutId), written)
          }))

        it.effect("counts by error type, most frequent first, ties by name, optionally for one partition", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_count")
            const types = [
              "SchemaMismatch",
              "InvalidJson",
              "SchemaMismatch",
              "RuleViolation",
              "InvalidJson",
              "DuplicateKey"
            ]
            yield* store.write(types.map((errorType, i) => deadLetter(pipeline, day(0), i + 1, { errorType })))
            yield* store.write([deadLetter(pipeline, day(1), 1, { errorType: "RuleViolation" })])
            assert.deepStrictEqual(yield* store.countByType(pipeline), [
              { errorType: "InvalidJson", count: 2 },
              { errorType: "RuleViolation", count: 2 },
              { errorType: "SchemaMismatch", count: 2 },
              { errorType: "DuplicateKey", count: 1 }
            ])
            assert.deepStrictEqual(yield* store.countByType(pipeline, { partition: day(1) }), [
              { errorType: "RuleViolation", count: 1 }
            ])
            assert.deepStrictEqual(yield* store.countByType(pipeline, { partition: day(5) }), [])
            // the other filters of a selection: error type, ids, status (new only by default)
            assert.deepStrictEqual(yield* store.countByType(pipeline, { errorType: "RuleViolation" }), [
              { errorType: "RuleViolation", count: 2 }
            ])
            const invalid = (yield* store.list(pipeline, { errorType: "InvalidJson" })).map((d) => d.id)
            assert.deepStrictEqual(yield* store.countByType(pipeline, { ids: invalid.slice(0, 1) }), [
              { errorType: "InvalidJson", count: 1 }
            ])
            assert.strictEqual(yield* store.discard(pipeline, { ids: invalid }), 2)
            assert.deepStrictEqual(yield* store.countByType(pipeline, { errorType: "InvalidJson" }), [])
            assert.deepStrictEqual(yield* store.countByType(pipeline, { status: ["discarded"] }), [
              { errorType: "InvalidJson", count: 2 }
            ])
            assert.strictEqual(
              (yield* store.countByType(pipeline, { status: DeadLetter.statuses })).reduce((n, c) => n + c.count, 0),
              7
            )
          }))

        it.effect("clearPartition removes one pipeline's partition and nothing else", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_clear")
            const other = unique("dl_clear_other")
            yield* store.write([
              deadLetter(pipeline, day(0), 1),
              deadLetter(pipeline, day(0), 2),
              deadLetter(pipeline, day(1), 1),
              deadLetter(other, day(0), 1)
            ])
            yield* store.clearPartition(pipeline, day(0))
            assert.deepStrictEqual((yield* store.list(pipeline)).map((d) => [d.partition, d.position]), [[day(1), 1]])
            assert.strictEqual((yield* store.list(other)).length, 1)
            yield* store.clearPartition(pipeline, day(9))
            yield* store.write([])
            assert.strictEqual((yield* store.list(pipeline)).length, 1)
          }))

        it.effect("writes a batch of 20,000 in one call", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_bulk")
            yield* store.write(Array.from({ length: 20_000 }, (_, i) => deadLetter(pipeline, day(0), i + 1)))
            const counts = yield* store.countByType(pipeline)
            assert.deepStrictEqual(counts, [{ errorType: "SchemaMismatch", count: 20_000 }])
          }))

        it.effect("a re-run writing 20,000 cleared dead letters again keeps each one's id and status", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_rerun")
            const all = Array.from({ length: 20_000 }, (_, i) => deadLetter(pipeline, day(0), i + 1))
            // the same record twice at one position (a line repeated in a source): two dead letters
            yield* store.write([...all, all[0]!])
            const first = yield* store.list(pipeline)
            assert.strictEqual(first.length, 20_001)
            const discarded = first.filter((d) => d.position % 1000 === 0).map((d) => d.id)
            assert.strictEqual(yield* store.discard(pipeline, { ids: discarded }), 20)
            const discardedIds = new Set(discarded)
            yield* store.clearPartition(pipeline, day(0))
            // the re-run: every record again, a new one, and another payload at position 7
            yield* store.write([
              ...all.map((d) => ({ ...d, runId: "run-2", error: `${d.error}, again` })),
              deadLetter(pipeline, day(0), 20_001, { runId: "run-2" }),
              deadLetter(pipeline, day(0), 7, { runId: "run-2", originalRecord: "{\"changed\":true}" })
            ])
            const now = yield* store.list(pipeline)
            assert.strictEqual(now.length, 20_002)
            const firstIds = new Set(first.map((d) => d.id))
            const byId = new Map(first.map((d) => [d.id, d]))
            const reused = now.filter((d) => firstIds.has(d.id))
            assert.strictEqual(reused.length, 20_000, "one row per cleared record is taken back")
            for (const d of reused) {
              const before = byId.get(d.id)!
              assert.deepStrictEqual(
                [d.position, d.originalRecord, d.runId, d.attempts, d.status],
                [before.position, before.originalRecord, "run-2", 2, discardedIds.has(d.id) ? "discarded" : "new"]
              )
              assert.strictEqual(d.error, `${before.error}, again`)
            }
            assert.strictEqual(reused.filter((d) => d.status === "discarded").length, 20)
            const fresh = now.filter((d) => !firstIds.has(d.id))
            assert.deepStrictEqual(
              fresh.map((d) => [d.position, d.originalRecord, d.attempts, d.status]).sort(),
              [[20_001, "{\"position\":20001}", 1, "new"], [7, "{\"changed\":true}", 1, "new"]].sort()
            )
            // the record written twice before and once now: its second row stays resolved
            const replayed = yield* store.list(pipeline, { status: ["replayed"] })
            assert.deepStrictEqual(replayed.map((d) => [d.position, d.attempts]).sort(), [[1, 1]])
            assert.isTrue(replayed.every((d) => firstIds.has(d.id) && !reused.some((r) => r.id === d.id)))
          }))

        it.effect("compresses a large payload once, with lz4 when the server has it and the store copies", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const pipeline = unique("dl_lz4")
            const payload = "{\"order_id\":\"" + "beauty ".repeat(8_000) + "\"}"
            yield* store.write([deadLetter(pipeline, day(0), 1, { originalRecord: payload })])
            const [offered] = yield* sql<{ readonly lz4: boolean }>`
              SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`
            const [stored] = yield* sql<{ readonly method: string | null; readonly size: number }>`
              SELECT pg_column_compression(original_record) AS method, pg_column_size(original_record) AS size
              FROM sluice.dead_letters WHERE pipeline = ${pipeline}`
            assert.strictEqual(stored?.method, copy && offered?.lz4 === true ? "lz4" : "pglz")
            assert.isBelow(stored!.size, payload.length / 10)
            assert.strictEqual((yield* store.list(pipeline))[0]?.originalRecord, payload)
          }))

        it.effect(
          "lists a dead letter larger than the driver's default message size (16 MiB), as written",
          () =>
            Effect.gen(function*() {
              const store = yield* DeadLetter.DeadLetterStore
              const pipeline = unique("dl_huge")
              // a 17 MiB line of a source file: its row comes back as one 17 MiB DataRow message
              const payload = `{"order_id":"${"x".repeat(17 * 1024 * 1024)}"}`
              yield* store.write([deadLetter(pipeline, day(0), 1, { originalRecord: payload })])
              const listed = yield* store.list(pipeline)
              assert.strictEqual(listed.length, 1)
              assert.isTrue(listed[0]?.originalRecord === payload)
            }),
          { timeout: 120_000 }
        )

        it.effect("returns every weird payload exactly as written", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_weird")
            yield* store.write(
              weirdPayloads.map(([, payload], i) => deadLetter(pipeline, day(0), i + 1, { originalRecord: payload }))
            )
            const listed = yield* store.list(pipeline)
            assert.strictEqual(listed.length, weirdPayloads.length)
            for (const [i, [what, payload]] of weirdPayloads.entries()) {
              const got = listed[i]?.originalRecord
              assert.isTrue(got === payload, `${what}: got ${JSON.stringify(got?.slice(0, 80))}`)
            }
          }))

        it.effect("stores ordinary payloads verbatim (readable in SQL) and flags only the escaped ones", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const pipeline = unique("dl_raw")
            const payloads = ["{\"a\":\"\\\\0\"}", "emoji 😀", "a\u0000b\\0", "\uD800\\"]
            yield* store.write(
              payloads.map((originalRecord, i) => deadLetter(pipeline, day(0), i + 1, { originalRecord }))
            )
            const raw = yield* sql<{ readonly original_record: string; readonly original_record_escaped: boolean }>`
          SELECT original_record, original_record_escaped FROM sluice.dead_letters
          WHERE pipeline = ${pipeline} ORDER BY position`
            assert.deepStrictEqual(raw.map((r) => [r.original_record, r.original_record_escaped]), [
              [payloads[0], false],
              [payloads[1], false],
              ["a\\0b\\\\0", true],
              ["\\ud800\\\\", true]
            ])
          }))

        it.effect("an InvalidEncoding dead letter round-trips: its escape back, and from it the original bytes", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const sql = yield* SqlClient.SqlClient
            const pipeline = unique("dl_utf8")
            const lines = [
              [0x7b, 0xff, 0x7d],
              [0x22, 0xed, 0xa0, 0x80, 0x5c, 0x78, 0x46, 0x46, 0x22],
              [0x00, 0xc0, 0xaf, 0x5c, 0x30, 0xe2, 0x82]
            ].map((bytes) => Uint8Array.from(bytes))
            yield* store.write(lines.map((bytes, i) => {
              const record = Source.invalidUtf8(bytes, i + 1)
              return DeadLetter.fromRecordError({
                pipeline,
                partition: day(0),
                stage: "transform",
                runId: "run-1",
                failedAt: 1_709_251_200_000,
                record,
                error: Transform.invalidEncoding(record.invalidBytes!)
              })
            }))
            const listed = yield* store.list(pipeline)
            assert.deepStrictEqual(listed.map((d) => [d.errorType, d.originalRecord]), [
              ["InvalidEncoding", "{\\xFF}"],
              ["InvalidEncoding", "\"\\xED\\xA0\\x80\\x5CxFF\""],
              ["InvalidEncoding", "\u0000\\xC0\\xAF\\0\\xE2\\x82"]
            ])
            assert.deepStrictEqual(listed.map((d) => Utf8.unescape(d.originalRecord)), lines)
            const raw = yield* sql<{ readonly escaped: boolean }>`
              SELECT original_record_escaped AS escaped FROM sluice.dead_letters
              WHERE pipeline = ${pipeline} ORDER BY position`
            assert.deepStrictEqual(raw.map((r) => r.escaped), [false, false, true], "stored verbatim but for the NUL")
          }))

        it.effect("a dead letter whose error text holds a NUL is still written (the text is escaped)", () =>
          Effect.gen(function*() {
            const store = yield* DeadLetter.DeadLetterStore
            const pipeline = unique("dl_error_text")
            yield* store.write([
              deadLetter(pipeline, day(0), 1, {
                error: "bad \u0000 byte",
                errorType: "Invalid\u0000",
                stage: "s\uD800"
              })
            ])
            const [stored] = yield* store.list(pipeline)
            assert.strictEqual(stored?.error, "bad \\0 byte")
            assert.strictEqual(stored?.errorType, "Invalid\\0")
            assert.strictEqual(stored?.stage, "s\\ud800")
          }))

        it.effect.prop(
          "any string round-trips as an original record",
          [anyString, anyString],
          ([a, b]) =>
            Effect.gen(function*() {
              const store = yield* DeadLetter.DeadLetterStore
              const pipeline = unique("dl_prop")
              yield* store.write([
                deadLetter(pipeline, day(0), 1, { originalRecord: a }),
                deadLetter(pipeline, day(0), 2, { originalRecord: b })
              ])
              const listed = yield* store.list(pipeline)
              assert.deepStrictEqual(listed.map((d) => d.originalRecord), [a, b])
            }),
          { arbitrary: { runs: 60 } }
        )
      }
    )
  }
}
