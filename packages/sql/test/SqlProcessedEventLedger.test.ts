import { assert, layer } from "@effect/vitest"
import { ProcessedEventLedger } from "@sluice/core"
import { SqlProcessedEventLedger } from "@sluice/sql"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { processedEventLedgerSuite } from "../../core/test/ProcessedEventLedgerSuite.ts"
import { backends, suiteOptions, withSluice } from "./fixtures.ts"

for (const backend of backends) {
  layer(SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(withSluice(backend))), suiteOptions)(
    `SqlProcessedEventLedger [${backend.name}]`,
    (it) => {
      // how every ledger purges (the same suite runs in memory)
      processedEventLedgerSuite(it)

      it.effect("an id stored as itself by an earlier version, now stored as a digest, is still claimed", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
          const p = `legacy_${Math.random().toString(36).slice(2, 8)}`
          // a long id that compresses: a B-tree entry held it, so earlier versions stored it as itself
          const id = "z".repeat(5_000)
          assert.notStrictEqual(SqlProcessedEventLedger.storedId(id), id)
          const at = new Date(Date.UTC(1910, 0, 1))
          for (const pipeline of [p, `${p}#key`]) {
            yield* sql`INSERT INTO sluice.processed_events (pipeline, event_id, stream, sequence, processed_at)
              VALUES (${pipeline}, ${id}, 'S', 7, ${at})`
          }
          const event = (sequence: number) => [{ eventId: id, stream: "S", sequence }]
          assert.deepStrictEqual([...(yield* ledger.claim(p, event(7), at.getTime()))], [], "processed already")
          assert.deepStrictEqual([...(yield* ledger.claim(p, event(8), at.getTime()))], [])
          // a key: still its message's, no other's
          assert.deepStrictEqual([...(yield* ledger.claimKeys(`${p}#key`, event(7), at.getTime()))], [id])
          assert.deepStrictEqual([...(yield* ledger.claimKeys(`${p}#key`, event(8), at.getTime()))], [])
          assert.strictEqual((yield* ledger.summary(p)).events, 1, "no second row")
        }))

      it.effect("purge's deletes can read the processed_at index instead of the whole table", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const cutoff = new Date(Date.UTC(1905, 0, 1))
          // the conditions of SqlProcessedEventLedger's purge, of every pipeline and of one; with sequential
          // scans ruled out the planner shows what it can read (a table this small is scanned otherwise)
          const plan = (where: ReturnType<typeof sql.and>) =>
            sql.withTransaction(Effect.gen(function*() {
              yield* sql`SET LOCAL enable_seqscan = off`
              const rows = yield* sql<Record<string, string>>`
                EXPLAIN DELETE FROM sluice.processed_events WHERE ${where}`
              return rows.map((row) => Object.values(row).join("")).join("\n")
            }))
          const all = yield* plan(sql.and([sql`processed_at < ${cutoff}`]))
          const one = yield* plan(sql.and([
            sql`processed_at < ${cutoff}`,
            sql`(pipeline = ${"p"} OR starts_with(pipeline, ${"p#"}))`
          ]))
          assert.include(all, "processed_events_processed_at_idx", all)
          // one pipeline's: the processed_at index, or the primary key's prefix range where the collation
          // is "C" (PGlite's; `starts_with` can become a range then)
          for (const explained of [all, one]) assert.notInclude(explained, "Seq Scan", explained)
        }))
    }
  )
}
