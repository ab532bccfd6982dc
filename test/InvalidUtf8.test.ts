/**
 * Invalid UTF-8 in a JSON Lines file, through the `sluice` command line: lines whose bytes are not
 * valid UTF-8 (a lone 0xFF, a truncated sequence, an overlong encoding, an encoded UTF-16
 * surrogate) are dead-lettered as `InvalidEncoding` with the `\xHH` escape of their bytes — never
 * loaded with U+FFFD in place of the bytes, never fatal to the run — the good lines load, `dlq show`
 * prints the escape, and `dlq replay` loads them once the file is fixed. On the embedded database,
 * and on PostgreSQL when a server is configured.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Utf8 } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import { SqlClient } from "effect/sql"
import { layerOn } from "./fixtures.ts"
import * as SluiceCli from "./SluiceCli.ts"

/** Runs `sluice <args>` in `cwd` with `env`, checks its exit status and gives its stdout. */
const sluice = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string>, code = 0) =>
  Effect.map(SluiceCli.run(cwd, args, { env, code }), (result) => result.stdout)

const date = "2024-03-01"

/** Invalid UTF-8 put inside a string value of a line, and the escape its dead letter must show. */
const corruptions: ReadonlyArray<{ readonly bytes: ReadonlyArray<number>; readonly escape: string }> = [
  { bytes: [0xff], escape: "\\xFF" },
  { bytes: [0xe2, 0x82], escape: "\\xE2\\x82" },
  { bytes: [0xc0, 0xaf], escape: "\\xC0\\xAF" },
  { bytes: [0xed, 0xa0, 0x80], escape: "\\xED\\xA0\\x80" }
]

const concat = (...parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(parts.flatMap((p) => [...p]))

describe("invalid UTF-8 in a JSON Lines file", () => {
  for (const session of SluiceCli.sessions) {
    it.live(
      `is dead-lettered as InvalidEncoding with its bytes escaped, shown, and replayed once fixed [${session.backend}]`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const cwd = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-utf8-" })
          const { env, layer } = yield* session.database(cwd)
          yield* sluice(cwd, [
            "generate-orders",
            "--dir",
            "data/orders",
            "--start",
            date,
            "--days",
            "1",
            "--seed",
            "11",
            "--bad-share",
            "0"
          ], env)
          const file = `${cwd}/data/orders/${date}.jsonl`
          const original = yield* fs.readFile(file)
          const encoder = new TextEncoder()
          const lines = new TextDecoder("utf-8", { fatal: true }).decode(original).split("\n")
          const records = lines.filter((l) => l.trim() !== "").length
          // corrupt four lines spread over the file, inside a string value (after the first `":"`)
          const targets = lines.flatMap((l, i) => l.includes("\":\"") ? [i] : []).filter((_, k) => k % 37 === 5)
            .slice(0, corruptions.length)
          assert.strictEqual(targets.length, corruptions.length)
          const corrupted = lines.map((l, i) => {
            const k = targets.indexOf(i)
            if (k === -1) return encoder.encode(l)
            const at = l.indexOf("\":\"") + 3
            return concat(
              encoder.encode(l.slice(0, at)),
              Uint8Array.from(corruptions[k]!.bytes),
              encoder.encode(l.slice(at))
            )
          })
          const badBytes = targets.map((i) => corrupted[i]!)
          yield* fs.writeFile(file, concat(...corrupted.flatMap((l, i) => i === 0 ? [l] : [Uint8Array.of(10), l])))

          const run = yield* sluice(cwd, ["run", "daily-revenue", "--date", date], env)
          assert.match(
            run,
            new RegExp(
              `^daily-revenue ${date}: read ${records}, loaded ${records - 4}, dead-lettered 4 `,
              "m"
            )
          )

          const list = yield* sluice(cwd, ["dlq", "list", "daily-revenue", "--date", date], env)
          assert.strictEqual(list.split("\n")[0], `4 dead letter(s) for daily-revenue ${date}`)
          assert.match(list, /^InvalidEncoding\s+4$/m)

          const stored = yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const loaded = yield* sql<{ readonly n: number }>`
              SELECT count(*)::int4 AS n FROM raw.orders WHERE order_date = ${date}::date`
            const replacement = yield* sql<{ readonly n: number }>`
              SELECT count(*)::int4 AS n FROM raw.orders o WHERE strpos(o::text, ${"\uFFFD"}) > 0`
            const dead = yield* sql<
              {
                readonly id: string
                readonly position: number
                readonly error_type: string
                readonly original_record: string
              }
            >`
              SELECT id::text AS id, position::int4 AS position, error_type, original_record
              FROM sluice.dead_letters WHERE partition = ${date}::date ORDER BY position`
            return { loaded: loaded[0]!.n, replacement: replacement[0]!.n, dead }
          }).pipe(Effect.provide(layerOn(layer)))
          assert.strictEqual(stored.loaded, records - 4, "the good lines load")
          assert.strictEqual(stored.replacement, 0, "no U+FFFD loaded")
          assert.deepStrictEqual(stored.dead.map((d) => d.position), targets.map((i) => i + 1))
          for (const [k, d] of stored.dead.entries()) {
            assert.strictEqual(d.error_type, "InvalidEncoding")
            assert.include(d.original_record, corruptions[k]!.escape)
            assert.deepStrictEqual(Utf8.unescape(d.original_record), badBytes[k], "the original bytes, exactly")
          }

          const show = yield* sluice(cwd, ["dlq", "show", "daily-revenue", stored.dead[0]!.id], env)
          assert.match(show, /^error type:\s+InvalidEncoding$/m)
          assert.match(show, /^invalid UTF-8: byte 0xFF at offset \d+$/m)
          assert.include(show, `original record:\n${stored.dead[0]!.original_record}\n`)
          assert.include(show, "\\xFF")

          // the file still holds the bad bytes: the partition is rebuilt, they stay dead-lettered
          const again = yield* sluice(cwd, ["dlq", "replay", "daily-revenue", "--date", date], env)
          assert.include(again, "0 replayed, 4 still failing of 4 selected")

          // the file is fixed: the replay rebuilds the partition and every line loads
          yield* fs.writeFile(file, original)
          const replay = yield* sluice(cwd, ["dlq", "replay", "daily-revenue", "--date", date], env)
          assert.include(replay, "4 replayed, 0 still failing of 4 selected")
          const after = yield* sluice(cwd, ["dlq", "list", "daily-revenue", "--status", "all", "--date", date], env)
          assert.match(after, new RegExp(`^${stored.dead[0]!.id}\\s+${date}\\s+\\d+\\s+replayed\\s+2\\s`, "m"), after)
          const loaded = yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            return yield* sql<{ readonly n: number }>`
              SELECT count(*)::int4 AS n FROM raw.orders WHERE order_date = ${date}::date`
          }).pipe(Effect.provide(layerOn(layer)))
          assert.strictEqual(loaded[0]!.n, records)
        }).pipe(Effect.provide(NodeServices.layer)),
      { timeout: 150_000 }
    )
  }
})
