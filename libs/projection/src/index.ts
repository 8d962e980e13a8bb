export { applyBatch, projectEnvelopes, type ExecutesSql, type TransactionalEm } from './apply-batch';
export { ProjectionBatchHandler, type BatchOutcome, type ProjectionHandlerOptions } from './batch-handler';
export { DEAD_LETTER_HEADERS, deadLetterMessage, type DeadLetterValueEncoding } from './dead-letter';
export {
  checkSeq,
  foldBatch,
  type FoldResult,
  type LoadedRun,
  type ProjectableEnvelope,
  type RunProjectionStats,
  type SeqCheck,
  type StallReason,
  type StallReport,
} from './fold';
export { loadRuns, saveRuns, type SqlRunner } from './store';
export {
  evolveRun,
  skipUnknown,
  type EvolveResult,
  type RunProjection,
  type RunView,
  type StepView,
  type UnprojectableReason,
} from './view';
