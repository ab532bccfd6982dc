import { assert, describe, it, layer } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { SinkError } from "@sluice/core"
import { CopyIn, PartitionReplace, Table } from "@sluice/sql"
import { Arbitrary, Effect, Exit, Fiber, Option, Result, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import type { Duplex } from "node:stream"
import * as CopyText from "../src/internal/copyText.ts"
import * as PgCopy from "../src/internal/pgCopy.ts"
import * as PgliteDuplex from "../src/internal/pgliteDuplex.ts"
import * as PgliteSession from "../src/internal/pgliteSession.ts"
import { anyString, backends, countRows, day, stallInserts, suiteOptions, unique } from "./fixtures.ts"

/** Every column type, with an `id` to read rows back in order. */
const columns: ReadonlyArray<Table.Column> = [
  { name: "id", type: "int" },
  { name: "t", type: "text" },
  { name: "i", type: "int" },
  { name: "b", type: "bigint" },
  { name: "n", type: "numeric" },
  { name: "d", type: "date" },
  { name: "ts", type: "timestamptz" },
  { name: "f", type: "bool" },
  { name: "j", type: "jsonb" },
  { name: "dp", type: "double precision" }
]

type Row = ReadonlyArray<unknown>

const createTable = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE ${sql(table)} (
      id int PRIMARY KEY, t text, i int, b bigint, n numeric, d date, ts timestamptz, f bool, j jsonb,
      dp double precision)`)

/** A table's rows as text, exactly (`-0`, `NaN`, numeric scale, jsonb as PostgreSQL prints it). */
const readAll = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<Record<string, string | null>>`
      SELECT id::text AS id, t, i::text AS i, b::text AS b, n::text AS n, d::text AS d,
             (extract(epoch FROM ts) * 1000)::numeric(30, 0)::text AS ts, f::text AS f, j::text AS j, dp::text AS dp
      FROM ${sql(table)} ORDER BY id`)

const copyInto = (table: string) => CopyIn.make<Row>({ table, columns, toRow: (row) => row })

/** The same rows through `unnest`, the other write path. */
const unnestInto = (table: string, rows: ReadonlyArray<Row>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const arrays = yield* Table.toColumnArrays({ table, columns, rows, toRow: (row) => row })
    yield* sql`INSERT INTO ${sql(table)} (${Table.columnList(sql, columns.map((column) => column.name))}) ${
      Table.unnest(sql, columns, arrays)
    }`
  })

const inTransaction = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(self))

const tricky: ReadonlyArray<Row> = [
  [1, "tab\there", 0, 0n, "0", "2024-02-29", 0, true, { s: "tab\t nl\n cr\r bs\\ q\" \\N \\." }, 0],
  [2, "\\N", -2_147_483_648, -9_223_372_036_854_775_808n, "-0.000000001", "0001-01-01", -1, false, ["\\", "\n"], -0],
  [
    3,
    "\\.",
    2_147_483_647,
    9_223_372_036_854_775_807n,
    "12345678901234567890.123456789000",
    "9999-12-31",
    1,
    null,
    "\\",
    1e-300
  ],
  [
    4,
    "line1\nline2\r\nline3\\",
    7,
    "-42",
    0.1,
    null,
    new Date(Date.UTC(2024, 2, 1, 10, 0, 0, 123)),
    true,
    1.5,
    Number.NaN
  ],
  [
    5,
    "",
    null,
    9_007_199_254_740_991,
    10n,
    "1970-01-01",
    new Date(Date.UTC(-43, 2, 15, 12)),
    false,
    null,
    Number.POSITIVE_INFINITY
  ],
  [6, "😀 é 中文 ספרים كتب Cre\u0300me \u200f", 1, 1, "1e3", "2000-01-01", new Date(Date.UTC(10000, 0, 1)), true, {
    "ключ": "значение ☕"
  }, Number.NEGATIVE_INFINITY],
  [7, "\u0001\u001f\u007f", 2, "2", "NaN", "2024-03-01", 1_709_251_200_123, true, [], 5e-324],
  [8, null, null, null, null, null, null, null, null, null],
  [
    9,
    "x".repeat(100_000),
    3,
    3n,
    "0.10",
    "2024-12-31",
    undefined,
    true,
    { deep: { deeper: [1, { x: "y" }] } },
    0.1 + 0.2
  ]
]

describe("COPY text format (internal/copyText)", () => {
  it("escapes backslash, tab, newline and carriage return, and nothing else", () => {
    assert.strictEqual(CopyText.escape("a\\b\tc\nd\re"), "a\\\\b\\tc\\nd\\re")
    assert.strictEqual(CopyText.escape("\\N"), "\\\\N")
    assert.strictEqual(CopyText.escape("plain é ☕ \u0001"), "plain é ☕ \u0001")
    assert.strictEqual(CopyText.format("text", null), "\\N")
    assert.strictEqual(CopyText.format("double precision", -0), "-0")
    assert.strictEqual(CopyText.format("timestamptz", Date.UTC(-43, 2, 15, 12)), "0044-03-15 12:00:00.000+00 BC")
    assert.strictEqual(CopyText.format("jsonb", { a: "x\ny" }), "{\"a\":\"x\\\\ny\"}")
  })

  it("escapes a long value a piece at a time exactly as a whole, specials on the pieces' edges too", () => {
    const reference = (text: string) =>
      text.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]!)
    const specials = ["\\", "\t", "\n", "\r"]
    const long = Array.from({ length: 300_000 }, (_, i) => (i % 65_536 < 2 || i % 7 === 0 ? specials[i % 4] : "é"))
      .join("")
    assert.strictEqual(CopyText.escape(long), reference(long))
    assert.strictEqual(CopyText.escape("x".repeat(200_000)), "x".repeat(200_000))
  })

  it("escapes a value of 5 Mi backslashes in a heap of 96 MB (a dead letter of invalid bytes, \\xFF each)", () => {
    // one replace over it held a part per match until the string was built: a third of a gigabyte
    const module = Path.resolve(import.meta.dirname, "../src/internal/copyText.ts")
    const script = `const { escape } = await import(${JSON.stringify(module)})
const text = escape("\\\\xFF".repeat(5 * 1024 * 1024))
process.stdout.write(JSON.stringify([text.length, text.slice(0, 9)]))`
    const child = ChildProcess.spawnSync(
      process.execPath,
      ["--max-old-space-size=96", "--input-type=module", "-e", script],
      { encoding: "utf8", timeout: 60_000 }
    )
    assert.strictEqual(
      child.status,
      0,
      child.stderr.split("\n").find((l) => /heap|memory|Error/.test(l)) ?? child.stderr
    )
    assert.deepStrictEqual(JSON.parse(child.stdout), [5 * 1024 * 1024 * 5, "\\\\xFF\\\\xF"])
  }, 90_000)

  it("splits a large batch into CopyData messages of about 128 KiB, each a whole number of rows", () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => [i, `row ${i}`])
    const frames = CopyText.encode({
      columns: [{ name: "a", type: "int" }, { name: "b", type: "text" }],
      rows,
      toRow: (row) => row
    })
    assert.isAbove(frames.length, 2)
    for (const frame of frames) assert.isAtMost(frame.length, 128 * 1024)
    const text = frames.map((frame) => {
      assert.strictEqual(frame[0], 0x64)
      assert.strictEqual(Buffer.from(frame).readInt32BE(1), frame.length - 1)
      const body = Buffer.from(frame.subarray(5)).toString("utf8")
      assert.isTrue(body.endsWith("\n"))
      return body
    }).join("")
    assert.strictEqual(text, rows.map(([a, b]) => `${a}\t${b}\n`).join(""))
  })

  it("frames whole rows, a row larger than a frame included, and counts multi-byte text in bytes", () => {
    const big = "é☕𝄞".repeat(40_000) // 2 + 3 + 4 bytes, 360,000 bytes in all
    const rows = [[1, "before"], [2, big], [3, "after ☕"], ...Array.from({ length: 20_000 }, (_, i) => [i, "ok"])]
    const frames = CopyText.encode({
      columns: [{ name: "a", type: "int" }, { name: "b", type: "text" }],
      rows,
      toRow: (row) => row
    })
    const bodies = frames.map((frame) => {
      assert.strictEqual(frame[0], 0x64)
      assert.strictEqual(Buffer.from(frame).readInt32BE(1), frame.length - 1)
      return Buffer.from(frame.subarray(5)).toString("utf8")
    })
    assert.isAbove(frames.length, 2)
    for (const body of bodies) assert.isTrue(body.endsWith("\n"))
    assert.strictEqual(bodies.join(""), rows.map(([a, b]) => `${a}\t${b}\n`).join(""))
    // no frame is much larger than its share, but for the one carrying the big row
    assert.strictEqual(frames.filter((frame) => frame.length > 64 * 1024).length, 1)
  })

  const types: ReadonlyArray<Table.ColumnType> = Table.columnTypes
  const values: ReadonlyArray<unknown> = [
    null,
    undefined,
    "",
    "12",
    "-12",
    "1.5",
    "abc",
    0,
    -0,
    1.5,
    2 ** 53,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    5n,
    true,
    new Date(0),
    { a: 1 },
    [1, "x"]
  ]

  it("accepts exactly the values toColumnArrays accepts, with the same message", () => {
    for (const type of types) {
      for (const value of values) {
        // outside the domain: a number that is no instant
        if (type === "timestamptz" && typeof value === "number" && Number.isNaN(new Date(value).getTime())) continue
        // and a jsonb value JSON.stringify rejects (unnest fails when binding, COPY when encoding)
        if (type === "jsonb" && typeof value === "bigint") continue
        const cols = [{ name: "c", type }]
        const unnest = Effect.runSync(
          Effect.result(Table.toColumnArrays({ table: "t", columns: cols, rows: [[value]], toRow: (r) => r }))
        )
        const copy = Result.try(() => CopyText.encode({ columns: cols, rows: [[value]], toRow: (r) => r }))
        assert.strictEqual(
          Result.isFailure(copy) ? (copy.failure as Error).message : undefined,
          Result.isFailure(unnest) ? unnest.failure.message : undefined,
          `${type} ${typeof value} ${String(value)}`
        )
      }
    }
  })
})

/** One in five values is NULL. */
const nullable = <A>(arbitrary: Arbitrary.Arbitrary<A>): Arbitrary.Arbitrary<A | null> =>
  Arbitrary.all([Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))), arbitrary]).pipe(
    Arbitrary.map(([pick, value]) => pick === 0 ? null : value)
  )

/** Rows of every type but the id: what PostgreSQL can store (no NUL, no lone surrogate). */
const arbitraryRow: Arbitrary.Arbitrary<Row> = Arbitrary.all([
  // oxlint-disable-next-line no-control-regex
  nullable(anyString.pipe(Arbitrary.map((s) => s.replace(/\u0000|[\uD800-\uDFFF]/g, "?")))),
  nullable(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: -2_147_483_648, maximum: 2_147_483_647 })))),
  nullable(
    Arbitrary.schema(Schema.BigInt.check(Schema.isBetweenBigInt({ minimum: -(2n ** 63n), maximum: 2n ** 63n - 1n })))
  ),
  nullable(Arbitrary.schema(Schema.String.check(Schema.isPattern(/^-?\d{1,20}(\.\d{1,20})?$/)))),
  nullable(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: -700_000, maximum: 2_900_000 })))),
  // instants up to 2255: past it the driver's binary encoding (unnest) rounds (see the next test)
  nullable(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: -9e12, maximum: 9e12 })))),
  nullable(Arbitrary.schema(Schema.Boolean)),
  nullable(Arbitrary.schema(Schema.Struct({ k: Schema.String, n: Schema.Finite, xs: Schema.Array(Schema.String) }))),
  nullable(Arbitrary.schema(Schema.Number))
]).pipe(
  Arbitrary.map(([t, i, b, n, days, ts, f, j, dp]): Row => [
    t,
    i,
    b,
    n,
    days === null ? null : new Date(days * 86_400_000).toISOString().slice(0, 10),
    ts,
    f,
    // PostgreSQL's jsonb cannot hold NUL or lone surrogates either
    j === null ? null : JSON.parse(JSON.stringify(j).replace(/\\u0000|\\ud[89a-f][0-9a-f]{2}/gi, "?")),
    dp
  ])
)

for (const backend of backends) {
  layer(backend.layer, suiteOptions)(`CopyIn [${backend.name}]`, (it) => {
    it.effect("COPY is available on this driver and backend (not the unnest fallback)", () =>
      Effect.gen(function*() {
        assert.isTrue(yield* CopyIn.isSupported)
        assert.isUndefined(PgCopy.targetOf({} as never))
      }))

    it.effect("stores tricky values of every type exactly as unnest stores them", () =>
      Effect.gen(function*() {
        const copied = unique("copy_tricky")
        const inserted = unique("unnest_tricky")
        yield* createTable(copied)
        yield* createTable(inserted)
        assert.deepStrictEqual(yield* inTransaction(copyInto(copied)(tricky)), Option.some(tricky.length))
        yield* inTransaction(unnestInto(inserted, tricky))
        const rows = yield* readAll(copied)
        assert.deepStrictEqual(rows, yield* readAll(inserted))
        assert.deepStrictEqual(rows.map((row) => row.t), tricky.map((row) => row[1] as string | null))
        assert.deepStrictEqual(rows[1]?.dp, "-0")
        assert.deepStrictEqual(rows[2]?.n, "12345678901234567890.123456789000")
        assert.deepStrictEqual(rows[4]?.ts, String(Date.UTC(-43, 2, 15, 12)))
      }))

    it.effect.prop(
      "stores any rows exactly as unnest stores them",
      [Arbitrary.array(arbitraryRow, { maxLength: 40 })],
      ([generated]) =>
        Effect.gen(function*() {
          const rows = generated.map((row, id) => [id, ...row])
          const copied = unique("copy_any")
          const inserted = unique("unnest_any")
          yield* createTable(copied)
          yield* createTable(inserted)
          yield* inTransaction(copyInto(copied)(rows))
          yield* inTransaction(unnestInto(inserted, rows))
          assert.deepStrictEqual(yield* readAll(copied), yield* readAll(inserted))
        }),
      { arbitrary: { runs: 15 } }
    )

    it.effect("keeps instants exact to the millisecond at any date (the driver's binary encoding rounds after 2255)", () =>
      Effect.gen(function*() {
        const table = unique("copy_instants")
        yield* createTable(table)
        const instants = [87_907_718_746_227, -62_135_596_800_001, 8_639_999_999_999_999, Infinity, -Infinity]
        const rows = instants.map((ts, id) => [id, null, null, null, null, null, ts])
        yield* inTransaction(copyInto(table)(rows.map((row) => [...row, null, null, null])))
        const sql = yield* SqlClient.SqlClient
        const read = yield* sql<{ readonly ts: string }>`
          SELECT CASE WHEN isfinite(ts) THEN (extract(epoch FROM ts) * 1000)::text ELSE ts::text END AS ts
          FROM ${sql(table)} ORDER BY id`
        assert.deepStrictEqual(read.map((row) => row.ts), [
          "87907718746227.000000",
          "-62135596800001.000000",
          "8639999999999999.000000",
          "infinity",
          "-infinity"
        ])
      }))

    it.effect("copies a large batch (many CopyData messages) and an empty one", () =>
      Effect.gen(function*() {
        const table = unique("copy_large")
        yield* createTable(table)
        const rows = Array.from({ length: 200_000 }, (_, i) => [i, `row ${i} ☕`, i, i, `${i}.25`])
        const copy = CopyIn.make<Row>({ table, columns: columns.slice(0, 5), toRow: (row) => row })
        assert.deepStrictEqual(yield* inTransaction(copy(rows)), Option.some(200_000))
        assert.deepStrictEqual(yield* inTransaction(copy([])), Option.some(0))
        const sql = yield* SqlClient.SqlClient
        const [sums] = yield* sql<{ readonly n: string; readonly s: string }>`
          SELECT count(*)::text AS n, sum(n)::text AS s FROM ${sql(table)}`
        assert.deepStrictEqual(sums, { n: "200000", s: "19999950000.00" })
      }))

    it.effect("without a transaction, copies in a transaction of its own", () =>
      Effect.gen(function*() {
        const table = unique("copy_alone")
        yield* createTable(table)
        assert.deepStrictEqual(
          yield* copyInto(table)([[1], [2]].map((r) => [...r, ...columns.slice(1).map(() => null)])),
          Option.some(2)
        )
        assert.strictEqual(yield* countRows(table), 2)
      }))

    it.effect("a value the database rejects mid-COPY fails with its message; the transaction rolls back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("copy_reject")
        yield* sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY, n numeric CHECK (n >= 0))`
        const copy = CopyIn.make<Row>({
          table,
          columns: [{ name: "id", type: "int" }, { name: "n", type: "numeric" }],
          toRow: (row) => row
        })
        const rows = (bad: Row, at: number) =>
          Array.from({ length: 50_000 }, (_, i): Row => i === at ? bad : [i, `${i}.5`])
        const cases: ReadonlyArray<readonly [string, ReadonlyArray<Row>, RegExp]> = [
          ["a CHECK violation", rows([30_000, "-1"], 30_000), /violates check constraint .*\[23514\]$/],
          ["a duplicate key", rows([5, "1"], 40_000), /duplicate key value violates unique constraint .*\[23505\]$/],
          [
            "a value the column cannot parse",
            rows([20_000, "12,50"], 20_000),
            /invalid input syntax for type numeric.*\[22P02\]$/
          ],
          ["an integer out of range", rows([3_000_000_000, "1"], 10), /out of range for type integer.*\[22003\]$/]
        ]
        for (const [name, batch, message] of cases) {
          const error = yield* inTransaction(
            Effect.andThen(sql`INSERT INTO ${sql(table)} VALUES (-1, 0)`, copy(batch))
          ).pipe(Effect.flip)
          assert.instanceOf(error, SinkError.SinkError, name)
          assert.strictEqual((error as SinkError.SinkError).operation, `copy into ${table}`)
          assert.match(error.message, message, name)
          assert.isFalse((error as SinkError.SinkError).isRetryable, name)
          assert.strictEqual(yield* countRows(table), 0, `${name}: rolled back`)
        }
        // the connection is usable afterwards, for queries and for COPY
        yield* inTransaction(copy(rows([1, "1"], 1).slice(0, 10)))
        assert.strictEqual(yield* countRows(table), 10)
      }))

    it.effect("a bad value or a rejected row fails before anything is sent, naming the row and column", () =>
      Effect.gen(function*() {
        const table = unique("copy_types")
        yield* createTable(table)
        const copy = copyInto(table)
        const error = yield* inTransaction(
          copy([[1, "a"], [2, 3]].map((r) => [...r, ...columns.slice(2).map(() => null)]))
        )
          .pipe(Effect.flip)
        assert.strictEqual(error.message, "row 1, column t: expected a text value, got number")
        const rejected = yield* inTransaction(
          copy([[1, "a", ...columns.slice(2).map(() => null)]], (values) => values[1] === "a" ? "no a" : undefined)
        ).pipe(Effect.flip)
        assert.strictEqual(rejected.message, "row 0: no a")
        assert.strictEqual(yield* countRows(table), 0)
      }))

    it.effect(
      "a COPY interrupted at any point leaves nothing behind and the connection usable",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = unique("copy_interrupt")
          yield* sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY)`
          const copy = CopyIn.make<number>({ table, columns: [{ name: "id", type: "int" }], toRow: (id) => [id] })
          const rows = Array.from({ length: 100_000 }, (_, i) => i)
          let interrupted = 0
          for (const delay of [0, 1, 2, 5, 10, 20, 50]) {
            const fiber = yield* Effect.forkChild(inTransaction(copy(rows)))
            yield* Effect.sleep(delay)
            const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
            if (Exit.hasInterrupts(exit)) interrupted++
            assert.strictEqual(yield* countRows(table), Exit.isSuccess(exit) ? 100_000 : 0, `after ${delay} ms`)
            yield* sql`DELETE FROM ${sql(table)}`
          }
          assert.isAbove(interrupted, 0)
          assert.deepStrictEqual(yield* inTransaction(copy([1, 2, 3])), Option.some(3))
          assert.strictEqual(yield* countRows(table), 3)
        }),
      { timeout: 30_000 }
    )

    if (backend.name === "postgres") {
      it.effect(
        "an interrupted COPY is cancelled on the server, rolled back, and the connection stays usable",
        () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const table = unique("copy_cancel")
            yield* sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY)`
            // a row deep into the data makes the server wait, so the interruption lands mid-COPY
            yield* stallInserts(table, [100_000], 10)
            const copy = CopyIn.make<number>({ table, columns: [{ name: "id", type: "int" }], toRow: (id) => [id] })
            const rows = Array.from({ length: 200_000 }, (_, i) => i)
            const fiber = yield* Effect.forkChild(inTransaction(copy(rows)))
            yield* Effect.sleep("300 millis")
            const started = Date.now()
            const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
            assert.isTrue(Exit.hasInterrupts(exit))
            assert.isBelow(Date.now() - started, 5_000, "cancelled, not waited for")
            assert.strictEqual(yield* countRows(table), 0)
            yield* sql`DROP TRIGGER stall ON ${sql(table)}`
            assert.deepStrictEqual(yield* inTransaction(copy([1, 2, 3])), Option.some(3))
            assert.strictEqual(yield* countRows(table), 3)
          }),
        { timeout: 30_000 }
      )
    }

    it.effect("PartitionReplace loads the same rows with COPY and with unnest", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const tables = [unique("pr_copy"), unique("pr_unnest")] as const
        const p = day(0)
        const rows = tricky.map((row) => [p, ...row.slice(0, 9)])
        for (const [k, table] of tables.entries()) {
          yield* sql`CREATE TABLE ${sql(table)} (
            p date NOT NULL, id int, t text, i int, b bigint, n numeric, d date, ts timestamptz, f bool, j jsonb)`
          const sink = PartitionReplace.make<Row>({
            table,
            partitionColumn: "p",
            columns: [{ name: "p", type: "date" }, ...columns.slice(0, 9)],
            toRow: (row) => row,
            load: k === 0 ? "copy" : "unnest"
          })
          yield* inTransaction(Effect.andThen(sink.prepare(p), sink.write(p, rows)))
        }
        const read = (table: string) =>
          sql`SELECT p::text, id, t, i::text, b::text, n::text, d::text, ts::text, f::text, j::text
              FROM ${sql(table)} ORDER BY id`
        assert.deepStrictEqual(yield* read(tables[0]), yield* read(tables[1]))
        assert.strictEqual((yield* read(tables[0])).length, tricky.length)
      }))
  })
}

describe("PGlite wire link carries COPY FROM STDIN (internal/pgliteDuplex)", () => {
  const message = (type: string, body: Buffer): Buffer => {
    const bytes = Buffer.alloc(5 + body.length)
    bytes.write(type, 0)
    bytes.writeInt32BE(4 + body.length, 1)
    body.copy(bytes, 5)
    return bytes
  }
  const startup = (): Buffer => {
    const body = Buffer.from("user\0postgres\0database\0postgres\0\0")
    const bytes = Buffer.alloc(8 + body.length)
    bytes.writeInt32BE(bytes.length, 0)
    bytes.writeInt32BE(196608, 4)
    body.copy(bytes, 8)
    return bytes
  }
  const query = (sql: string) => message("Q", Buffer.from(`${sql}\0`))
  /** The backend messages (type, body) up to the next ReadyForQuery. */
  const untilReady = (link: Duplex) =>
    Effect.callback<Array<readonly [string, Buffer]>>((resume) => {
      let received = Buffer.alloc(0)
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk])
        const messages: Array<readonly [string, Buffer]> = []
        for (let at = 0; at + 5 <= received.length;) {
          const end = at + 1 + received.readInt32BE(at + 1)
          if (end > received.length) return
          messages.push([String.fromCharCode(received[at]!), received.subarray(at + 5, end)])
          at = end
        }
        if (messages.at(-1)?.[0] === "Z") {
          link.off("data", onData)
          resume(Effect.succeed(messages))
        }
      }
      link.on("data", onData)
      return Effect.sync(() => link.off("data", onData))
    })

  it.live("answers CopyInResponse, loads CopyData on CopyDone, and fails the transaction on CopyFail", () =>
    Effect.gen(function*() {
      const db = yield* Effect.acquireRelease(
        Effect.promise(() => PGlite.create()),
        (db) => Effect.promise(() => db.close())
      )
      yield* Effect.promise(() => db.exec("CREATE TABLE t (a int, b text)"))
      const link = PgliteDuplex.make(PgliteSession.inProcess(db))
      link.write(startup())
      yield* untilReady(link)

      link.write(Buffer.concat([query("BEGIN"), query("COPY t (a, b) FROM STDIN")]))
      yield* untilReady(link)
      link.write(message("d", Buffer.from("1\tone\n2\t")))
      link.write(Buffer.concat([message("d", Buffer.from("tw\\to\n")), message("c", Buffer.alloc(0))]))
      const done = yield* untilReady(link)
      assert.deepStrictEqual(done.map(([type]) => type), ["G", "C", "Z"])
      assert.strictEqual(done[1]![1].toString("utf8"), "COPY 2\0")
      assert.strictEqual(done[2]![1].toString("latin1"), "T")

      link.write(Buffer.concat([query("COPY t (a, b) FROM STDIN"), message("d", Buffer.from("3\tthree\n"))]))
      link.write(message("f", Buffer.from("the client gave up\0")))
      const failed = yield* untilReady(link)
      assert.deepStrictEqual(failed.map(([type]) => type), ["G", "E", "Z"])
      assert.include(failed[1]![1].toString("utf8"), "COPY from stdin failed: the client gave up")
      assert.include(failed[1]![1].toString("utf8"), "C57014")
      assert.strictEqual(failed[2]![1].toString("latin1"), "E")

      link.write(query("ROLLBACK"))
      yield* untilReady(link)
      link.write(
        Buffer.concat([
          query("COPY t (a, b) FROM STDIN"),
          message("d", Buffer.from("1\tone\n")),
          message("c", Buffer.alloc(0))
        ])
      )
      yield* untilReady(link)
      assert.deepStrictEqual((yield* Effect.promise(() => db.query("SELECT a, b FROM t"))).rows, [{ a: 1, b: "one" }])
      link.destroy()
    }))

  describe("loads a long text-format COPY in pieces of about 1 MiB inside a transaction", () => {
    const MiB = 1024 * 1024
    const { pieceBytes } = PgliteDuplex
    const alphabet = "abcdefghijklmnopqrstuvwxyz"
    /** Row `id`'s value, 100 characters (one of them two bytes in UTF-8), as SQL computes it in `exact`. */
    const value = (id: number) => `v${id}é${alphabet.repeat(4)}`.slice(0, 100)
    /** Text-format rows `from` until `to`; row `duplicate.at`, when given, has id `duplicate.id`. */
    const rows = (from: number, to: number, duplicate?: { readonly at: number; readonly id: number }) =>
      Buffer.from(
        Array.from({ length: to - from }, (_, i) => {
          const id = from + i
          return `${id === duplicate?.at ? duplicate.id : id}\t${value(id)}\n`
        }).join(""),
        "utf8"
      )
    /** The rows of `big`: how many, how many exactly as written, the ids' range and the characters. */
    const exact = `SELECT count(*)::int AS rows,
      (count(*) FILTER (WHERE t = left('v' || id || 'é' || repeat('${alphabet}', 4), 100)))::int AS exact,
      min(id) AS first, max(id) AS last, sum(length(t))::int AS chars FROM big`

    /**
     * A PGlite with a table `big`, a link to it past startup, and what the link answered and loaded.
     * `later`: the session answers each COPY piece that many milliseconds late, as a session in a
     * worker thread answers while this thread runs on. `lost`: loading a piece fails (as when the
     * worker thread is gone).
     */
    const openLink = (later = 0, lost = false) =>
      Effect.gen(function*() {
        const db = yield* Effect.acquireRelease(
          Effect.promise(() => PGlite.create()),
          (db) => Effect.promise(() => db.close())
        )
        yield* Effect.promise(() => db.exec("CREATE TABLE big (id int PRIMARY KEY, t text)"))
        const session = PgliteSession.inProcess(db)
        const link = yield* Effect.acquireRelease(
          Effect.sync(() =>
            PgliteDuplex.make({
              ...session,
              load: async (statement, data, onData) => {
                const acknowledged = state.written - link.writableLength
                await new Promise((resolve) => setTimeout(resolve, later))
                if (lost) throw new Error("the PGlite worker exited (code 1)")
                await session.load(statement, data, onData)
                state.whileLoading = Math.max(state.whileLoading, state.written - link.writableLength - acknowledged)
              }
            })
          ),
          (link) => Effect.sync(() => link.destroy())
        )
        const state = {
          /** Every backend message the link sent, in order. */
          messages: [] as Array<readonly [string, Buffer]>,
          taken: 0,
          /** Bytes of CopyData frames written to the link. */
          written: 0,
          /** The size of each blob PGlite loaded. */
          blobs: [] as Array<number>,
          /** The most data the link held at once (written, acknowledged, not loaded yet). */
          held: 0,
          /** The most data the link acknowledged while a piece was loading. */
          whileLoading: 0
        }
        let received = Buffer.alloc(0)
        const waiting = new Set<() => void>()
        link.on("data", (chunk: Buffer) => {
          received = Buffer.concat([received, chunk])
          let at = 0
          while (at + 5 <= received.length) {
            const end = at + 1 + received.readInt32BE(at + 1)
            if (end > received.length) break
            state.messages.push([String.fromCharCode(received[at]!), received.subarray(at + 5, end)])
            at = end
          }
          received = received.subarray(at)
          for (const check of waiting) check()
        })
        const handleBlob = db._handleBlob.bind(db)
        db._handleBlob = (blob) => {
          const loaded = state.blobs.reduce((sum, size) => sum + size, 0)
          state.held = Math.max(state.held, state.written - link.writableLength - loaded)
          if (blob !== undefined) state.blobs.push(blob.size)
          return handleBlob(blob)
        }
        /** The messages the link sent since the last answer, up to the next ReadyForQuery. */
        const answer = Effect.callback<Array<readonly [string, Buffer]>>((resume) => {
          const check = () => {
            const ready = state.messages.findIndex(([type], i) => i >= state.taken && type === "Z")
            if (ready < 0) return
            waiting.delete(check)
            const messages = state.messages.slice(state.taken, ready + 1)
            state.taken = ready + 1
            resume(Effect.succeed(messages))
          }
          waiting.add(check)
          check()
          return Effect.sync(() => waiting.delete(check))
        })
        /** Writes `data` as CopyData frames of `size` bytes (rows split across them), pausing as the driver does. */
        const send = (data: Buffer, size = 65_521) =>
          Effect.promise(async () => {
            for (let at = 0; at < data.length; at += size) {
              const frame = message("d", data.subarray(at, at + size))
              state.written += frame.length
              link.write(frame)
              if (link.writableLength > 8 * MiB) await new Promise((resolve) => link.once("drain", resolve))
            }
          })
        link.write(startup())
        yield* answer
        /** Opens a transaction and a `COPY big FROM STDIN` in it. */
        const beginCopy = Effect.andThen(
          Effect.sync(() => link.write(Buffer.concat([query("BEGIN"), query("COPY big (id, t) FROM STDIN")]))),
          answer
        )
        /** Copies `data` in a new transaction (left open) and returns the answer to `CopyDone`. */
        const copyAll = (data: Buffer) =>
          Effect.gen(function*() {
            yield* beginCopy
            yield* send(data)
            link.write(message("c", Buffer.alloc(0)))
            return yield* answer
          })
        return { db, link, state, answer, send, beginCopy, copyAll }
      })
    /** What {@link exact} finds after the 300k rows `rows(0, 300_000)`. */
    const allExact = { rows: 300_000, exact: 300_000, first: 0, last: 299_999, chars: 300_000 * 100 }
    const types = (messages: ReadonlyArray<readonly [string, Buffer]>) => messages.map(([type]) => type)
    const text = (messages: ReadonlyArray<readonly [string, Buffer]>, index: number) =>
      messages[index]![1].toString("utf8")

    it.live(
      "answers one COPY for 300k rows (~30 MiB) loaded exactly, holding about two pieces at most",
      () =>
        Effect.gen(function*() {
          const { answer, copyAll, db, link, state } = yield* openLink()
          const data = rows(0, 300_000)
          assert.isAbove(data.length, 30 * MiB)
          const done = yield* copyAll(data)
          assert.deepStrictEqual(types(done), ["G", "C", "Z"])
          assert.strictEqual(text(done, 1), "COPY 300000\0")
          assert.strictEqual(text(done, 2), "T")
          link.write(query("COMMIT"))
          assert.deepStrictEqual(types(yield* answer), ["C", "Z"])

          // pieces of about 1 MiB, whole rows, the last one the rest
          assert.isAtLeast(state.blobs.length, data.length / (pieceBytes + 65_521))
          assert.strictEqual(state.blobs.reduce((sum, size) => sum + size, 0), data.length)
          for (const size of state.blobs) assert.isAtMost(size, pieceBytes + 65_521)
          assert.isAtMost(state.held, 3 * pieceBytes)
          assert.deepStrictEqual((yield* Effect.promise(() => db.query(exact))).rows, [allExact])
        }),
      120_000
    )

    it.live(
      "a row longer than a piece is kept whole: the piece waits for its end",
      () =>
        Effect.gen(function*() {
          const { answer, copyAll, db, link, state } = yield* openLink()
          const long = "x".repeat(Math.floor(2.5 * pieceBytes))
          const data = Buffer.concat([rows(0, 5_000), Buffer.from(`5000\t${long}\n`), rows(5_001, 30_000)])
          const done = yield* copyAll(data)
          assert.strictEqual(text(done, 1), "COPY 30000\0")
          link.write(query("COMMIT"))
          yield* answer
          // a piece before the long row, one that holds all of it, and the rest
          assert.isAtLeast(state.blobs.length, 3)
          assert.strictEqual(state.blobs.reduce((sum, size) => sum + size, 0), data.length)
          assert.isTrue(state.blobs.some((size) => size > long.length))
          const counted = yield* Effect.promise(() =>
            db.query("SELECT count(*)::int AS rows, max(length(t))::int AS longest FROM big")
          )
          assert.deepStrictEqual(counted.rows, [{ rows: 30_000, longest: long.length }])
        }),
      120_000
    )

    it.live(
      "acknowledges the next piece's data while a piece loads, holding at most two pieces",
      () =>
        Effect.gen(function*() {
          const { answer, copyAll, db, link, state } = yield* openLink(50)
          const done = yield* copyAll(rows(0, 300_000))
          assert.strictEqual(text(done, 1), "COPY 300000\0")
          link.write(query("COMMIT"))
          yield* answer
          // within 50 ms, the writer sends (and the link takes) much of the next piece
          assert.isAbove(state.whileLoading, pieceBytes / 2)
          assert.isAtMost(state.held, 3 * pieceBytes)
          assert.deepStrictEqual((yield* Effect.promise(() => db.query(exact))).rows, [allExact])
        }),
      120_000
    )

    it.live(
      "a piece that cannot be loaded (the session is gone) ends the link with its error, never unhandled",
      () =>
        Effect.gen(function*() {
          const { beginCopy, link } = yield* openLink(0, true)
          const unhandled: Array<unknown> = []
          const onUnhandled = (reason: unknown) => unhandled.push(reason)
          process.on("unhandledRejection", onUnhandled)
          yield* Effect.addFinalizer(() => Effect.sync(() => process.off("unhandledRejection", onUnhandled)))
          yield* beginCopy
          const ended = Effect.callback<Error | undefined>((resume) => {
            link.once("error", (error) => resume(Effect.succeed(error)))
            link.once("close", () => resume(Effect.succeed(undefined)))
          })
          // the first piece fails to load while the link collects the next one
          const data = rows(0, 100_000)
          for (let at = 0; at < data.length; at += 65_521) link.write(message("d", data.subarray(at, at + 65_521)))
          const error = yield* ended
          yield* Effect.sleep("50 millis")
          assert.strictEqual(error?.message, "the PGlite worker exited (code 1)")
          assert.deepStrictEqual(unhandled, [])
        }),
      60_000
    )

    it.live(
      "forwards a piece's error at once, then drops the COPY's data and end; the rollback undoes every piece",
      () =>
        Effect.gen(function*() {
          const { answer, beginCopy, db, link, send, state } = yield* openLink()
          yield* Effect.promise(() => db.exec("INSERT INTO big VALUES (-1, 'before')"))
          // row 120000 (line 120001, about 12 MiB in: a later piece) repeats id 7
          const data = rows(0, 280_000, { at: 120_000, id: 7 })
          const bad = data.indexOf("\n7\tv120000") + 1
          yield* beginCopy
          yield* send(data.subarray(0, 20 * MiB))
          const failed = yield* answer
          assert.deepStrictEqual(types(failed), ["G", "E", "Z"])
          assert.include(text(failed, 1), "C23505")
          assert.include(text(failed, 1), "Key (id)=(7) already exists.")
          assert.include(text(failed, 1), "COPY big, line 120001")
          assert.strictEqual(text(failed, 2), "E")
          // the piece with the bad row is the last one loaded
          const loaded = state.blobs.reduce((sum, size) => sum + size, 0)
          assert.isAbove(loaded, bad)
          assert.isAtMost(loaded - state.blobs.at(-1)!, bad)
          const pieces = state.blobs.length

          // the rest of the data and CopyDone answer nothing; the next statement is answered as usual
          yield* send(data.subarray(20 * MiB))
          link.write(Buffer.concat([message("c", Buffer.alloc(0)), query("ROLLBACK")]))
          const rolledBack = yield* answer
          assert.deepStrictEqual(types(rolledBack), ["C", "Z"])
          assert.strictEqual(text(rolledBack, 0), "ROLLBACK\0")
          assert.strictEqual(state.blobs.length, pieces)
          link.write(query("SELECT count(*) FROM big"))
          const counted = yield* answer
          assert.deepStrictEqual(types(counted), ["T", "D", "C", "Z"])
          assert.strictEqual(text(counted, 3), "I")
          assert.deepStrictEqual((yield* Effect.promise(() => db.query("SELECT id, t FROM big"))).rows, [
            { id: -1, t: "before" }
          ])
        }),
      120_000
    )

    it.live(
      "a CopyFail after some pieces fails the COPY as before; the rollback undoes the pieces",
      () =>
        Effect.gen(function*() {
          const { answer, beginCopy, db, link, send, state } = yield* openLink()
          yield* beginCopy
          yield* send(rows(0, 200_000))
          link.write(message("f", Buffer.from("the client gave up\0")))
          const failed = yield* answer
          assert.deepStrictEqual(types(failed), ["G", "E", "Z"])
          assert.include(text(failed, 1), "COPY from stdin failed: the client gave up")
          assert.include(text(failed, 1), "C57014")
          assert.strictEqual(text(failed, 2), "E")
          assert.isAtLeast(state.blobs.length, 2)
          link.write(query("ROLLBACK"))
          assert.deepStrictEqual(types(yield* answer), ["C", "Z"])
          assert.deepStrictEqual((yield* Effect.promise(() => db.query(exact))).rows, [
            { rows: 0, exact: 0, first: null, last: null, chars: null }
          ])
        }),
      120_000
    )

    it.live(
      "outside a transaction, or in another format, a long COPY is loaded whole on CopyDone",
      () =>
        Effect.gen(function*() {
          const { answer, db, link, send, state } = yield* openLink()
          const data = rows(0, 200_000)
          link.write(query("COPY big (id, t) FROM STDIN"))
          yield* send(data)
          link.write(message("c", Buffer.alloc(0)))
          const done = yield* answer
          // (PGlite reports its parameters after the session's first statement)
          assert.deepStrictEqual(types(done).filter((type) => type !== "S"), ["G", "C", "Z"])
          assert.strictEqual(text(done, 1), "COPY 200000\0")
          assert.strictEqual(done.at(-1)![1].toString("latin1"), "I")
          assert.deepStrictEqual(state.blobs, [data.length])

          link.write(Buffer.concat([query("BEGIN"), query("COPY big (id, t) FROM STDIN WITH (FORMAT text)")]))
          yield* answer
          yield* send(rows(200_000, 300_000))
          link.write(Buffer.concat([message("c", Buffer.alloc(0)), query("COMMIT")]))
          const copied = yield* answer
          assert.deepStrictEqual(types(copied), ["G", "C", "Z"])
          assert.strictEqual(text(copied, 1), "COPY 100000\0")
          assert.deepStrictEqual(types(yield* answer), ["C", "Z"])
          assert.strictEqual(state.blobs.length, 2)
          assert.deepStrictEqual((yield* Effect.promise(() => db.query(exact))).rows, [allExact])
        }),
      120_000
    )

    it.live(
      "from a piece with a line \\. or a carriage return on, the rest is loaded whole, as before",
      () =>
        Effect.gen(function*() {
          const { answer, beginCopy, db, link, send, state } = yield* openLink()
          // an end-of-data line after row 49,999 (~5 MiB in), then ~5 MiB more that PGlite ignores
          const data = rows(0, 100_000)
          const marker = data.indexOf("\n50000\t") + 1
          yield* beginCopy
          yield* send(Buffer.concat([data.subarray(0, marker), Buffer.from("\\.\n"), data.subarray(marker)]))
          link.write(message("c", Buffer.alloc(0)))
          const ended = yield* answer
          assert.deepStrictEqual(types(ended), ["G", "C", "Z"])
          assert.strictEqual(text(ended, 1), "COPY 50000\0")
          // pieces up to the one with the marker, which is loaded with the rest, whole
          assert.isAbove(state.blobs.length, 1)
          assert.strictEqual(state.blobs.reduce((sum, size) => sum + size, 0), data.length + 3)
          assert.isAtMost(data.length + 3 - state.blobs.at(-1)!, marker)
          assert.isAbove(state.blobs.at(-1)!, data.length - marker)
          const before = state.blobs.length

          // line ends \r\n throughout (PostgreSQL takes their style from the first line)
          link.write(query("COPY big (id, t) FROM STDIN"))
          yield* send(Buffer.from(rows(100_000, 200_000).toString("utf8").replaceAll("\n", "\r\n")))
          link.write(Buffer.concat([message("c", Buffer.alloc(0)), query("COMMIT")]))
          const crlf = yield* answer
          assert.deepStrictEqual(types(crlf), ["G", "C", "Z"])
          assert.strictEqual(text(crlf, 1), "COPY 100000\0")
          assert.deepStrictEqual(types(yield* answer), ["C", "Z"])
          assert.strictEqual(state.blobs.length, before + 1)
          assert.deepStrictEqual((yield* Effect.promise(() => db.query(exact))).rows, [
            { rows: 150_000, exact: 150_000, first: 0, last: 199_999, chars: 150_000 * 100 }
          ])
        }),
      120_000
    )

    const pglite = backends.find((backend) => backend.name === "pglite")!
    layer(pglite.layer, suiteOptions)("through the driver (CopyIn.makeStream on PGlite)", (it) => {
      const streamed = (table: string) =>
        CopyIn.makeStream<number>({
          table,
          columns: [{ name: "id", type: "int" }, { name: "t", type: "text" }],
          toRow: (id) => [id >= 1_000_000 ? id - 1_000_000 : id, value(id % 1_000_000)]
        })
      /** 2,500 batches of 100 rows (~27 MiB); the id of row `duplicate` is 1,000,000 more (row 7 again). */
      const batches = (duplicate?: number) =>
        Stream.range(0, 2_499).pipe(
          Stream.map((b) => Array.from({ length: 100 }, (_, i) => b * 100 + i === duplicate ? 1_000_007 : b * 100 + i))
        )

      it.effect("a stream of ~27 MiB loads through one COPY in pieces, exactly", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE big (id int PRIMARY KEY, t text)`
          assert.deepStrictEqual(yield* inTransaction(streamed("big")(batches())), Option.some(250_000))
          assert.deepStrictEqual(yield* sql.unsafe(exact), [
            { rows: 250_000, exact: 250_000, first: 0, last: 249_999, chars: 250_000 * 100 }
          ])
        }))

      it.effect("a row rejected in a later piece fails the COPY with the server's error; nothing is left", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE big_reject (id int PRIMARY KEY, t text)`
          const error = yield* inTransaction(streamed("big_reject")(batches(150_000))).pipe(Effect.flip)
          assert.instanceOf(error, SinkError.SinkError)
          assert.match(error.message, /duplicate key value violates unique constraint .*\[23505\]$/)
          assert.strictEqual(yield* countRows("big_reject"), 0)
          // the connection goes on, for queries and for COPY
          assert.deepStrictEqual(
            yield* inTransaction(streamed("big_reject")(Stream.make([1, 2, 3]))),
            Option.some(3)
          )
          assert.strictEqual(yield* countRows("big_reject"), 3)
        }))
    })
  })
})

describe("COPY text encoding, byte for byte (internal/copyText)", () => {
  /** What the encoder must send: each value's `format`ted text, joined, as UTF-8 (`Buffer.from`). */
  const reference = (rows: ReadonlyArray<Row>): Buffer =>
    Buffer.from(
      rows.map((row) => row.map((value, c) => CopyText.format(columns[c]!.type, value)).join("\t") + "\n").join(""),
      "utf8"
    )

  const bodies = (frames: ReadonlyArray<Uint8Array>): Buffer =>
    Buffer.concat(frames.map((frame) => {
      assert.strictEqual(frame[0], 0x64)
      assert.strictEqual(Buffer.from(frame).readInt32BE(1), frame.length - 1)
      return frame.subarray(5)
    }))

  /** Any text: the four escaped characters, non-ASCII, astral, NUL and lone surrogates included. */
  const anyRow: Arbitrary.Arbitrary<Row> = Arbitrary.all([arbitraryRow, nullable(anyString)]).pipe(
    Arbitrary.map(([row, text]): Row => [row.length, text, ...row.slice(1)])
  )

  it.prop(
    "writes exactly the UTF-8 of the formatted values, any text included",
    [Arbitrary.array(anyRow, { maxLength: 60 })],
    ([rows]) => {
      const frames = CopyText.encode({ columns, rows, toRow: (row) => row })
      assert.deepStrictEqual(bodies(frames), reference(rows))
    },
    { arbitrary: { runs: 300 } }
  )

  it("writes integers of every size as String does, long text, and the same bytes across frame boundaries", () => {
    const integers = [0, -0, 7, -7, 10, 99, 100, 2 ** 31, -(2 ** 31), 2 ** 53 - 1, -(2 ** 53 - 1), 123456789012345]
    const rows: Array<Row> = []
    for (let i = 0; i < 30_000; i++) {
      const n = integers[i % integers.length]!
      const text = i === 5
        ? "tab\t bs\\ nl\n".repeat(3_000) + "é☕𝄞\ud800" // longer than 16k units: escaped, then measured
        : i % 7 === 0
        ? "tab\there \\ \n\r é☕ 𝄞 \t"
        : `row ${i}`
      rows.push([i, text, n % 2 ** 31, n, String(n)])
    }
    const frames = CopyText.encode({ columns: columns.slice(0, 5), rows, toRow: (row) => row })
    assert.isAbove(frames.length, 10)
    for (const frame of frames) assert.strictEqual(frame[frame.length - 1], 0x0a)
    assert.deepStrictEqual(
      bodies(frames),
      Buffer.from(rows.map((row) => row.map((v, c) => CopyText.format(columns[c]!.type, v)).join("\t") + "\n").join(""))
    )
  })
})
