import { layer } from "@effect/vitest"
import { SqlProcessedEventLedger } from "@sluice/sql"
import { Layer } from "effect"
import { processedEventLedgerSuite } from "../../core/test/ProcessedEventLedgerSuite.ts"
import { backends, suiteOptions, withSluice } from "./fixtures.ts"

for (const backend of backends) {
  layer(SqlProcessedEventLedger.layer.pipe(Layer.provideMerge(withSluice(backend))), suiteOptions)(
    `SqlProcessedEventLedger [${backend.name}]`,
    (it) => {
      // how every ledger purges (the same suite runs in memory)
      processedEventLedgerSuite(it)
    }
  )
}
