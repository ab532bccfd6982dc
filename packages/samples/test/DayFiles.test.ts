import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Partition } from "@sluice/core"
import { Effect, FileSystem } from "effect"
import * as DayFiles from "../src/DayFiles.ts"

describe("DayFiles", () => {
  it("names and counts days", () => {
    const dates = DayFiles.dates(Partition.makeUnsafe("2024-02-28"), 3)
    assert.deepStrictEqual(dates, ["2024-02-28", "2024-02-29", "2024-03-01"])
    assert.strictEqual(DayFiles.fileName(dates[0]!), "2024-02-28.jsonl")
    assert.deepStrictEqual(DayFiles.totals([{ records: 10, good: 9, bad: 1 }, { records: 5, good: 5, bad: 0 }]), {
      records: 15,
      good: 14,
      bad: 1
    })
  })

  it.effect("writes one file per day into a new folder, each line ended by a newline", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = `${yield* fs.makeTempDirectoryScoped({ prefix: "sluice-samples-" })}/nested/days`
      const [first, second] = DayFiles.dates(Partition.makeUnsafe("2024-03-01"), 2) as [
        Partition.PartitionDate,
        Partition.PartitionDate
      ]
      yield* DayFiles.write(directory, [{ date: first, lines: ["{\"a\":1}", "", "{\"a\":2}"] }, {
        date: second,
        lines: []
      }])
      assert.deepStrictEqual((yield* fs.readDirectory(directory)).sort(), ["2024-03-01.jsonl", "2024-03-02.jsonl"])
      assert.strictEqual(yield* fs.readFileString(`${directory}/2024-03-01.jsonl`), "{\"a\":1}\n\n{\"a\":2}\n")
      assert.strictEqual(yield* fs.readFileString(`${directory}/2024-03-02.jsonl`), "\n")
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})
