/**
 * `node bench/generatorPerBatch.ts`: why the runner's per-batch steps are not `Effect.gen`.
 *
 * Records are made in slices of 500 and handed on in batches of 5,000, as the runner does, and
 * each batch goes to one of three writers that do the same thing: an `Effect.gen` made per batch
 * and closing over it, an `Effect.fnUntraced` made once and given the batch, and
 * `Effect.suspend`. Each runs in a process of its own, two rounds of 2M records, and prints the
 * time and V8's time in young-generation collections (`PerformanceObserver` "gc" entries).
 * Measured on Node 24.21: in the first round the generator made per batch takes about 3× the time
 * of the others, its scavenges promoting about 10× the bytes to the old generation
 * (`--trace-gc-nvp`: 143 MB against 14 MB), although no batch outlives its write; once V8 has
 * optimized the code (the second round) it costs the same. In the runner, whose per-batch
 * generator suspended on every hand-over, it lasted the whole load (1M records).
 */
import { Effect, Stream } from "effect"
import { spawnSync } from "node:child_process"
import { constants, PerformanceObserver } from "node:perf_hooks"

interface Rec {
  readonly a: string
  readonly b: number
}

let written = 0
const writers: Record<string, (batch: ReadonlyArray<Rec>) => Effect.Effect<void>> = {
  "Effect.gen per batch": (batch) =>
    Effect.gen(function*() {
      written += batch.length
    }),
  "Effect.fnUntraced made once": Effect.fnUntraced(function*(batch: ReadonlyArray<Rec>) {
    written += batch.length
  }),
  "Effect.suspend": (batch) =>
    Effect.suspend(() => {
      written += batch.length
      return Effect.void
    })
}

let minorGcMs = 0
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const detail = (entry as { readonly detail?: { readonly kind?: number } }).detail
    if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      minorGcMs += entry.duration
    }
  }
})
observer.observe({ entryTypes: ["gc"] })

const run = (write: (batch: ReadonlyArray<Rec>) => Effect.Effect<void>, records: number) => {
  let batch: Array<Rec> = []
  return Stream.range(0, records - 1).pipe(
    Stream.rechunk(500),
    Stream.runForEachArray((slice) =>
      Effect.suspend(() => {
        for (const i of slice) batch.push({ a: `rec-${i}-${"x".repeat(i % 7)}`, b: i * 1.5 })
        if (batch.length < 5_000) return Effect.void
        const full = batch
        batch = []
        return write(full)
      })
    )
  )
}

const records = 2_000_000
const only = process.argv[2]
if (only === undefined) {
  // each writer in a process of its own: the effect shows while V8 has not optimized the code yet
  for (const name of Object.keys(writers)) {
    const child = spawnSync(process.execPath, [import.meta.filename, name], { encoding: "utf8" })
    process.stdout.write(child.stdout + child.stderr)
  }
} else {
  const write = writers[only]
  if (write === undefined) throw new Error(`no writer ${only}: one of ${Object.keys(writers).join(", ")}`)
  for (let round = 1; round <= 2; round++) {
    minorGcMs = 0
    written = 0
    const started = performance.now()
    Effect.runSync(run(write, records))
    const elapsed = performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50)) // the round's last gc entries
    console.log(
      `${only.padEnd(28)} round ${round}, ${written} records: ${elapsed.toFixed(0)} ms, young-generation GC ${
        minorGcMs.toFixed(0)
      } ms`
    )
  }
  observer.disconnect()
}
