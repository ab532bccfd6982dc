/**
 * Sluice core: typed pipeline stages that know nothing of any particular database.
 *
 * @since 0.1.0
 */
export * as Backfill from "./Backfill.ts"
export * as Calendar from "./Calendar.ts"
export * as Contract from "./Contract.ts"
export * as DeadLetter from "./DeadLetter.ts"
export * as HttpSource from "./HttpSource.ts"
export * as JsonLinesSource from "./JsonLinesSource.ts"
export * as Partition from "./Partition.ts"
export * as PartitionLock from "./PartitionLock.ts"
export * as Pipeline from "./Pipeline.ts"
export * as PipelineMetrics from "./PipelineMetrics.ts"
export * as ProcessedEventLedger from "./ProcessedEventLedger.ts"
export * as RecordError from "./RecordError.ts"
export * as Replay from "./Replay.ts"
export * as RetryPolicy from "./RetryPolicy.ts"
export * as RunLedger from "./RunLedger.ts"
export * as SchemaCompatibility from "./SchemaCompatibility.ts"
export * as SchemaRegistry from "./SchemaRegistry.ts"
export * as Sink from "./Sink.ts"
export * as SinkError from "./SinkError.ts"
export * as Source from "./Source.ts"
export * as SourceError from "./SourceError.ts"
export * as Streaming from "./Streaming.ts"
export * as Transactor from "./Transactor.ts"
export * as Transform from "./Transform.ts"
