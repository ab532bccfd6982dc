import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { JsonLinesSource, Partition } from "@sluice/core"
import { Effect, FileSystem, Result, Stream } from "effect"
import { CustomerTransform } from "../src/Customer.ts"
import * as Generator from "../src/Generator.ts"

const start = Partition.makeUnsafe("2024-03-01")

describe("Generator", () => {
  it("is deterministic for a seed, and differs across seeds", () => {
    const a = Generator.generateAll({ start, days: 5, seed: 42 })
    const b = Generator.generateAll({ start, days: 5, seed: 42 })
    const c = Generator.generateAll({ start, days: 5, seed: 43 })
    assert.deepStrictEqual(a, b)
    assert.notDeepEqual(a.files, c.files)
  })

  it("writes realistic files: late, duplicated and unchanged changes, deletes, several changes a day, ~3% bad", () => {
    const { files, manifest } = Generator.generateAll({ start, days: 14, seed: 1 })
    const sum = (f: (d: Generator.DayManifest) => number) => manifest.days.reduce((n, d) => n + f(d), 0)
    assert.isAbove(sum((d) => d.late), 20)
    assert.isAbove(sum((d) => d.duplicates), 5)
    assert.isAbove(sum((d) => d.deletes), 5)
    assert.isAbove(sum((d) => d.unchanged), 50)
    assert.isAbove(sum((d) => d.severalChanges), 50)
    assert.isTrue(manifest.customers.some((c) => c.deleted) && manifest.customers.some((c) => !c.deleted))
    assert.isTrue(manifest.customers.some((c) => c.previousCity !== null && c.previousName !== null))
    const share = manifest.bad / manifest.records
    assert.isTrue(share > 0.015 && share < 0.05, `bad share ${share}`)
    assert.isAtLeast(new Set(manifest.days.flatMap((d) => d.badLines.map((b) => b.kind))).size, 6)
    // out of order: some file lists a change before an earlier one
    const outOfOrder = files.some(({ lines }) => {
      const times = lines.flatMap((line) => {
        const match = /"changed_at":"([^"]+Z)"/.exec(line)
        return match === null ? [] : [Date.parse(match[1]!)]
      })
      return times.some((t, i) => i > 0 && t < times[i - 1]!)
    })
    assert.isTrue(outOfOrder)
    assert.isTrue(files.some(({ lines }) => lines.some((l) => /[+-]\d\d:\d\d"/.test(l))), "offsets")
    assert.isTrue(files.some(({ lines }) => lines.some((l) => l.includes("\"source\""))), "unknown fields")
  })

  it.effect("writes files whose lines match the manifest; the transform accepts exactly the good lines", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "sluice-customers-" })
      const manifest = yield* Generator.generate({ directory, start, days: 14, seed: 7 })
      const source = JsonLinesSource.make({ directory })
      for (const day of manifest.days) {
        const records = yield* Stream.runCollect(source.extract(day.date))
        assert.strictEqual(records.length, day.records)
        const bad = new Map(day.badLines.map((b) => [b.position, b.kind]))
        for (const record of records) {
          const result = CustomerTransform(record, day.date)
          const kind = bad.get(record.position)
          if (kind === undefined) assert.isTrue(Result.isSuccess(result), `${day.file}:${record.position}`)
          else {
            assert.isTrue(Result.isFailure(result), `${day.file}:${record.position} (${kind}) was accepted`)
            if (Result.isFailure(result)) {
              assert.strictEqual(
                result.failure.errorType,
                Generator.expectedErrorType[kind],
                `${kind}: ${record.payload}`
              )
            }
          }
        }
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
