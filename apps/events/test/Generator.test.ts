import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { JsonLinesSource, Partition } from "@sluice/core"
import { Effect, FileSystem, Result, Stream } from "effect"
import { EventTransform } from "../src/Event.ts"
import * as Generator from "../src/Generator.ts"

const start = Partition.makeUnsafe("2024-03-01")
const options = { start, days: 10, seed: 7 } as const

describe("Generator", () => {
  it("is deterministic for a seed, and differs across seeds", () => {
    assert.deepStrictEqual(Generator.plan(options), Generator.plan(options))
    assert.notDeepEqual(Generator.plan(options), Generator.plan({ ...options, seed: 8 }))
  })

  it("writes a realistic feed: every kind of line, about 2% bad lines, held-back lines", () => {
    const days = Generator.plan({ ...options, days: 14 })
    const lines = days.flatMap((d) => [...d.lines, ...d.heldBack.map((h) => h.line)])
    const count = (kind: Generator.LineKind) => lines.filter((l) => l.kind === kind).length
    for (const kind of ["new", "duplicate", "correction", "late", "delete", "held_back", "bad"] as const) {
      assert.isAbove(count(kind), 0, kind)
    }
    assert.isTrue(count("bad") / lines.length > 0.01 && count("bad") / lines.length < 0.04)
    assert.isAtLeast(new Set(lines.flatMap((l) => l.bad === undefined ? [] : [l.bad])).size, 8)
    for (const d of days) assert.isTrue(d.lines.length >= 150 && d.lines.length <= 250)
  })

  it("never sends two different lines for one version of an event, so the view does not depend on arrival order", () => {
    const days = Generator.plan({ ...options, days: 14 })
    const texts = new Map<string, string>()
    for (const line of days.flatMap((d) => [...d.lines, ...d.heldBack.map((h) => h.line)])) {
      if (line.version === undefined) continue
      const key = `${line.version.eventId}@${line.version.updatedAt}`
      assert.strictEqual(texts.get(key) ?? line.text, line.text, key)
      texts.set(key, line.text)
    }
  })

  it("re-delivers a day's file with its held-back lines appended one and two days later", () => {
    const [first] = Generator.plan(options)
    const byDelay = (delay: number) => first!.heldBack.filter((h) => h.delay === delay).map((h) => h.line)
    assert.deepStrictEqual(Generator.fileAsOf(first!, Partition.addDays(start, -1)), [])
    assert.deepStrictEqual(Generator.fileAsOf(first!, start), first!.lines)
    assert.deepStrictEqual(Generator.fileAsOf(first!, Partition.addDays(start, 1)), [...first!.lines, ...byDelay(1)])
    assert.deepStrictEqual(
      Generator.fileAsOf(first!, Partition.addDays(start, 5)),
      [...first!.lines, ...byDelay(1), ...byDelay(2)]
    )
  })

  it.effect("writes the files as of a day, and EventTransform accepts exactly their good lines", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const asOf = Partition.addDays(start, 5)
      const manifest = yield* Generator.generate({ ...options, directory, asOf })
      assert.deepStrictEqual(manifest.days.map((d) => d.date), Partition.range(start, asOf))
      assert.strictEqual(manifest.records, manifest.good + manifest.bad)
      assert.isTrue(yield* fs.exists(`${directory}/${asOf}.jsonl`))
      assert.isFalse(yield* fs.exists(`${directory}/${Partition.addDays(asOf, 1)}.jsonl`))
      assert.deepStrictEqual(manifest.expected, Generator.expectedView(Generator.plan(options), asOf))
      const source = JsonLinesSource.make({ directory })
      for (const day of manifest.days) {
        const records = yield* Stream.runCollect(source.extract(day.date))
        assert.strictEqual(records.length, day.records)
        const bad = new Map(day.badLines.map((b) => [b.position, b.kind]))
        for (const record of records) {
          const result = EventTransform(record, day.date)
          const kind = bad.get(record.position)
          if (kind === undefined) assert.isTrue(Result.isSuccess(result), `${day.date}:${record.position}`)
          else {
            assert.strictEqual(
              Result.isFailure(result) ? result.failure.errorType : "ok",
              Generator.expectedErrorType[kind],
              `${day.date}:${record.position} ${kind} ${record.payload}`
            )
          }
        }
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
