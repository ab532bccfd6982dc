/**
 * How every implementation of `ProcessedEventLedger` summarizes and purges its entries, written once: the in-memory
 * layer runs it here, `SqlProcessedEventLedger` on every database backend.
 */
import { assert, type Vitest } from "@effect/vitest"
import { ProcessedEventLedger } from "@sluice/core"
import { Effect } from "effect"

let counter = 0
/** A pipeline of its own for each test, so tests sharing a ledger never see each other's entries. */
const uniquePipeline = (prefix: string) => `${prefix}_${++counter}_${Math.random().toString(36).slice(2, 8)}`

// claims dated 1900–1910: no other test claims then, so purging "all pipelines" before 1905 deletes
// only this suite's entries even on a database shared with other suites
const old = Date.UTC(1900, 0, 1)
const cutoff = new Date(Date.UTC(1905, 0, 1))
const recent = Date.UTC(1910, 0, 1)

const events = (...ids: ReadonlyArray<string>) => ids.map((eventId, i) => ({ eventId, stream: "S", sequence: i + 1 }))

/**
 * The suite.
 */
export const processedEventLedgerSuite = (it: Vitest.MethodsNonLive<ProcessedEventLedger.ProcessedEventLedger>) => {
  it.effect("summary(pipeline) counts its entries, with the first and latest claim, of that name only", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const p = uniquePipeline("summary")
      assert.deepStrictEqual(yield* ledger.summary(p), {
        events: 0,
        firstProcessedAt: undefined,
        lastProcessedAt: undefined
      })
      // claimed out of time order: neither the first nor the last claim is the oldest or the latest
      yield* ledger.claim(p, events("a", "b"), recent + 2_000)
      yield* ledger.claim(p, events("c"), recent + 5_000)
      yield* ledger.claim(p, events("d"), recent)
      // a redelivery claims nothing, so changes nothing
      yield* ledger.claim(p, events("a"), recent + 9_000)
      yield* ledger.claim(p, events("e"), recent + 3_000)
      // its business keys, and a pipeline whose name starts with p's, are counted under their own names
      yield* ledger.claim(`${p}#key`, events("k"), recent + 7_000)
      yield* ledger.claim(`${p}x`, events("z"), recent + 8_000)
      assert.deepStrictEqual(yield* ledger.summary(p), {
        events: 5,
        firstProcessedAt: recent,
        lastProcessedAt: recent + 5_000
      })
      assert.deepStrictEqual(yield* ledger.summary(`${p}#key`), {
        events: 1,
        firstProcessedAt: recent + 7_000,
        lastProcessedAt: recent + 7_000
      })
    }))

  it.effect("purge(pipeline) deletes its entries and its #key entries claimed before the cut-off, no others", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const p = uniquePipeline("purge")
      // another pipeline, and one whose name starts with p's: untouched
      const others = [uniquePipeline("other"), `${p}x`, `${p}x#key`]
      yield* ledger.claim(p, events("a", "b", "c"), old)
      yield* ledger.claim(p, events("d"), recent)
      yield* ledger.claim(`${p}#key`, events("k1", "k2"), old)
      yield* ledger.claim(`${p}#key`, events("k3"), recent)
      for (const other of others) yield* ledger.claim(other, events("a", "z"), old)

      assert.strictEqual(yield* ledger.purge(p, cutoff), 5)
      assert.strictEqual(yield* ledger.count(p), 1)
      assert.strictEqual(yield* ledger.count(`${p}#key`), 1)
      for (const other of others) assert.strictEqual(yield* ledger.count(other), 2)
      // a purged id can be claimed again (the trade-off); a kept one cannot
      assert.deepStrictEqual([...(yield* ledger.claim(p, events("a", "d"), recent))], ["a"])
      assert.deepStrictEqual([...(yield* ledger.claim(`${p}#key`, events("k1", "k3"), recent))], ["k1"])
      // nothing left before the cut-off
      assert.strictEqual(yield* ledger.purge(p, cutoff), 0)
    }))

  it.effect("purge(undefined) deletes the entries of every pipeline claimed before the cut-off", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const p = uniquePipeline("all")
      const q = uniquePipeline("all")
      yield* ledger.claim(p, events("a", "b"), old)
      yield* ledger.claim(p, events("c"), recent)
      yield* ledger.claim(`${q}#key`, events("k"), old)
      yield* ledger.claim(q, events("x"), recent)

      assert.isAtLeast(yield* ledger.purge(undefined, cutoff), 3)
      assert.strictEqual(yield* ledger.count(p), 1)
      assert.strictEqual(yield* ledger.count(`${q}#key`), 0)
      assert.strictEqual(yield* ledger.count(q), 1)
    }))

  it.effect("claimKeys: a key stays with the message that claimed it; claim never gives an id twice", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const p = uniquePipeline("keys")
      const key = (eventId: string, sequence: number, stream = "S") => ({ eventId, stream, sequence })
      assert.deepStrictEqual([...(yield* ledger.claimKeys(p, [key("k1", 1), key("k2", 2)], recent))].sort(), [
        "k1",
        "k2"
      ])
      // the same messages again (a replay's events re-applied): they keep their keys
      assert.deepStrictEqual([...(yield* ledger.claimKeys(p, [key("k1", 1), key("k2", 2)], recent + 1))].sort(), [
        "k1",
        "k2"
      ])
      // another message with a claimed key (a re-sent record), or the same sequence of another stream: not theirs
      assert.deepStrictEqual(
        [...(yield* ledger.claimKeys(p, [key("k1", 3), key("k2", 2, "T"), key("k3", 4)], recent))],
        [
          "k3"
        ]
      )
      // claim keeps its meaning: an id claimed once is never claimed again, by any message
      assert.deepStrictEqual([...(yield* ledger.claim(p, [key("k3", 4), key("k4", 5)], recent))], ["k4"])
      assert.deepStrictEqual(yield* ledger.summary(p), {
        events: 4,
        firstProcessedAt: recent,
        lastProcessedAt: recent
      })
    }))

  it.effect("any id is claimed once: long ones, a NUL, lone surrogates, ids that look like a stored digest", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const p = uniquePipeline("ids")
      const long = "x".repeat(12_000)
      // random text does not compress: a B-tree entry cannot hold it
      let random = ""
      for (let i = 0; i < 3_000; i++) random += String.fromCharCode(0x4e00 + Math.floor(Math.random() * 0x5000))
      const ids = [
        long,
        `${long}y`,
        random,
        "a\u0000b",
        "\ud800",
        "\udc00",
        "sha256:0",
        `sha256:${"0".repeat(64)}`,
        "plain"
      ]
      const message = (eventId: string, i: number) => ({ eventId, stream: "S", sequence: i + 1 })
      const all = ids.map(message)
      assert.deepStrictEqual([...(yield* ledger.claim(p, all, recent))].sort(), [...ids].sort())
      // redelivered, one by one or together: claimed by nobody
      for (const event of all) assert.deepStrictEqual([...(yield* ledger.claim(p, [event], recent))], [])
      assert.deepStrictEqual([...(yield* ledger.claim(p, all, recent))], [])
      // as keys: each stays with the message that claimed it
      const keys = `${p}#key`
      assert.deepStrictEqual([...(yield* ledger.claimKeys(keys, all, recent))].sort(), [...ids].sort())
      assert.deepStrictEqual([...(yield* ledger.claimKeys(keys, all, recent))].sort(), [...ids].sort())
      assert.deepStrictEqual(
        [...(yield* ledger.claimKeys(keys, ids.map((id, i) => message(id, i + 100)), recent))],
        []
      )
      assert.strictEqual((yield* ledger.summary(p)).events, ids.length)
      assert.strictEqual((yield* ledger.summary(keys)).events, ids.length)
    }))

  it.effect("replace(from, to): to's entries become from's, with their messages; from is left empty", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const live = uniquePipeline("live")
      const replay = uniquePipeline("replay")
      const other = uniquePipeline("other")
      yield* ledger.claimKeys(live, [{ eventId: "before", stream: "S", sequence: 1 }], recent)
      yield* ledger.claimKeys(live, [{ eventId: "both", stream: "S", sequence: 5 }], recent)
      yield* ledger.claimKeys(replay, [{ eventId: "both", stream: "S", sequence: 5 }], recent + 1)
      yield* ledger.claimKeys(replay, [{ eventId: "after", stream: "S", sequence: 9 }], recent + 2)
      yield* ledger.claim(other, events("x"), recent)
      assert.strictEqual(yield* ledger.replace(replay, live), 2)
      assert.deepStrictEqual(yield* ledger.summary(live), {
        events: 2,
        firstProcessedAt: recent + 1,
        lastProcessedAt: recent + 2
      })
      assert.strictEqual(yield* ledger.count(replay), 0)
      assert.strictEqual(yield* ledger.count(other), 1)
      // "before" is free again; "after" keeps its message
      const again = yield* ledger.claimKeys(live, [
        { eventId: "before", stream: "S", sequence: 12 },
        { eventId: "after", stream: "S", sequence: 9 },
        { eventId: "both", stream: "S", sequence: 13 }
      ], recent)
      assert.deepStrictEqual([...again].sort(), ["after", "before"])
      // replacing with an empty name empties the target
      assert.strictEqual(yield* ledger.replace(uniquePipeline("empty"), live), 0)
      assert.strictEqual(yield* ledger.count(live), 0)
    }))

  it.effect("merge(from, to): from's entries join to's, to's own claim kept where both hold one; from is left empty", () =>
    Effect.gen(function*() {
      const ledger = yield* ProcessedEventLedger.ProcessedEventLedger
      const live = uniquePipeline("live")
      const replay = uniquePipeline("replay")
      const other = uniquePipeline("other")
      yield* ledger.claim(live, [{ eventId: "before", stream: "S", sequence: 1 }], recent)
      yield* ledger.claim(live, [{ eventId: "both", stream: "S", sequence: 5 }], recent)
      yield* ledger.claim(replay, [{ eventId: "both", stream: "S", sequence: 5 }], recent + 1)
      yield* ledger.claim(replay, [{ eventId: "after", stream: "S", sequence: 9 }], recent + 2)
      yield* ledger.claim(other, events("x"), recent)
      assert.strictEqual(yield* ledger.merge(replay, live), 1)
      assert.deepStrictEqual(yield* ledger.summary(live), {
        events: 3,
        firstProcessedAt: recent,
        lastProcessedAt: recent + 2
      })
      assert.strictEqual(yield* ledger.count(replay), 0)
      assert.strictEqual(yield* ledger.count(other), 1)
      // every id is claimed under live now: none is claimed again
      const again = yield* ledger.claim(live, [
        { eventId: "before", stream: "S", sequence: 1 },
        { eventId: "both", stream: "S", sequence: 5 },
        { eventId: "after", stream: "S", sequence: 9 }
      ], recent)
      assert.strictEqual(again.size, 0)
      // merging an empty name, or a name into itself, changes nothing
      assert.strictEqual(yield* ledger.merge(uniquePipeline("empty"), live), 0)
      assert.strictEqual(yield* ledger.merge(live, live), 0)
      assert.strictEqual(yield* ledger.count(live), 3)
    }))
}
