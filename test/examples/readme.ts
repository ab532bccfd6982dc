import { JsonLinesSource, Pipeline, RetryPolicy, Transform } from "@sluice/core"
import { PartitionReplace } from "@sluice/sql"
import { Schema } from "effect"

const Reading = Schema.Struct({
  sensor_id: Schema.NonEmptyString,
  value: Schema.Finite,
  day: Schema.String
})

export const readings = Pipeline.make({
  name: "readings",
  source: JsonLinesSource.make({ directory: "data/readings" }), // <dir>/YYYY-MM-DD.jsonl
  transform: Transform.fromSchema(Reading, {
    rules: [Transform.rule("day_in_partition", (r, day) => r.day === day ? undefined : `day ${r.day} is not ${day}`)]
  }),
  sink: PartitionReplace.make<typeof Reading.Type>({
    table: "raw.readings",
    partitionColumn: "day",
    columns: [
      { name: "sensor_id", type: "text" },
      { name: "value", type: "double precision" },
      { name: "day", type: "date" }
    ],
    toRow: (r) => [r.sensor_id, r.value, r.day]
  }),
  failureThreshold: 0.05,
  retry: RetryPolicy.make({ baseDelay: "200 millis", maxDelay: "10 seconds", maxRetries: 5 })
})

// Pipeline.run(readings, Partition.makeUnsafe("2024-03-01")) — an Effect<RunReport, RunError, …>
