import { layer } from "@effect/vitest"
import { ProcessedEventLedger } from "@sluice/core"
import { processedEventLedgerSuite } from "./ProcessedEventLedgerSuite.ts"

layer(ProcessedEventLedger.ProcessedEventLedger.layerMemory)("ProcessedEventLedger.layerMemory", (it) => {
  // how every ledger purges (the same suite runs on SqlProcessedEventLedger)
  processedEventLedgerSuite(it)
})
