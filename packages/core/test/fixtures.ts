import {
  Backfill,
  DeadLetter,
  Partition,
  PartitionLock,
  RunLedger,
  Source,
  SourceError,
  Transactor,
  Transform
} from "@sluice/core"
import { Arbitrary, Effect, Layer, Schema, Stream } from "effect"

export const Reading = Schema.Struct({
  id: Schema.NonEmptyString,
  value: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  day: Schema.String
})
export type Reading = typeof Reading.Type

export const transform = Transform.fromSchema(Reading, {
  rules: [Transform.rule("day_in_partition", (r, day) => r.day === day ? undefined : `day ${r.day} is not ${day}`)]
})

export const kinds = ["good", "invalid_json", "truncated", "missing", "negative", "wrong_day", "array"] as const
export type Kind = typeof kinds[number]
export const Kind = Schema.Literals(kinds)

export const line = (kind: Kind, i: number, day: string): string => {
  const good = { id: `r-${day}-${i}`, value: i, day }
  switch (kind) {
    case "good":
      return JSON.stringify(good)
    case "invalid_json":
      return `{id: r-${i}`
    case "truncated":
      return JSON.stringify(good).slice(0, 9)
    case "missing":
      return JSON.stringify({ id: good.id, day })
    case "negative":
      return JSON.stringify({ ...good, value: -1 - i })
    case "wrong_day":
      return JSON.stringify({ ...good, day: "1999-01-01" })
    case "array":
      return JSON.stringify([good])
  }
}

/** A source over an in-memory map of day → lines; days not in the map fail with NotFound. */
export const mapSource = (days: ReadonlyMap<string, ReadonlyArray<string>>) =>
  Source.make("memory", (partition) => {
    const lines = days.get(partition)
    return lines === undefined
      ? Stream.fail(
        new SourceError.SourceError({
          source: "memory",
          reason: new SourceError.NotFound({ message: `no data for ${partition}` })
        })
      )
      : Stream.fromIterable(lines.map((payload, i) => ({ payload, position: i + 1 })))
  })

export const layerMemory = Layer.mergeAll(
  RunLedger.RunLedger.layerMemory,
  DeadLetter.DeadLetterStore.layerMemory,
  PartitionLock.PartitionLock.layerMemory,
  Transactor.Transactor.layerNone,
  Backfill.Backfill.layerLocal
)

export const day = (offset: number) => Partition.addDays(Partition.makeUnsafe("2024-03-01"), offset)

export const deadLetterSnapshot = (pipeline: string) =>
  Effect.gen(function*() {
    const store = yield* DeadLetter.DeadLetterStore
    const all = yield* store.list(pipeline)
    return all.map((d) => `${d.partition}|${d.position}|${d.errorType}|${d.originalRecord}`).sort()
  })

/**
 * Strings that are hard to store (in PostgreSQL `text`, say): NUL, lone and reversed surrogates, the escape
 * character and what escaped text looks like, next to ordinary and astral characters.
 */
const tricky = [
  "\u0000",
  "\\",
  "\\0",
  "\\u0000",
  "\\ud800",
  "0",
  "u",
  "\uD800",
  "\uDBFF",
  "\uDC00",
  "\uDFFF",
  "\uD83D\uDE00",
  "\uDE00\uD83D",
  "é",
  "\n",
  "\"",
  "'",
  "{",
  " "
] as const

const codeUnit = Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xFFFF })))

/** Any JavaScript string (any UTF-16 code units), biased towards the tricky ones. */
export const anyString: Arbitrary.Arbitrary<string> = Arbitrary.array(
  Arbitrary.all([Arbitrary.schema(Schema.Boolean), Arbitrary.schema(Schema.Literals(tricky)), codeUnit]),
  { maxLength: 60 }
).pipe(Arbitrary.map((parts) => parts.map(([pick, t, unit]) => pick ? t : String.fromCharCode(unit)).join("")))
