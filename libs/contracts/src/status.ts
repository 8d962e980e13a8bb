import { z } from 'zod';

/** The eight run statuses of the Activepieces Flow Runs API, in the reference's order. */
export const FLOW_RUN_STATUSES = [
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'PAUSED',
  'QUOTA_EXCEEDED',
  'INTERNAL_ERROR',
  'TIMEOUT',
  'STOPPED',
] as const;

export const FlowRunStatusSchema = z.enum(FLOW_RUN_STATUSES);
export type FlowRunStatus = z.infer<typeof FlowRunStatusSchema>;

/** A run in one of these statuses has finished and will not change unless retried. */
export const TERMINAL_STATUSES: ReadonlySet<FlowRunStatus> = new Set([
  'SUCCEEDED',
  'FAILED',
  'QUOTA_EXCEEDED',
  'INTERNAL_ERROR',
  'TIMEOUT',
  'STOPPED',
]);

/** Terminal statuses that count as a failure (they fail a parent that asked for it). */
export const FAILURE_STATUSES: ReadonlySet<FlowRunStatus> = new Set([
  'FAILED',
  'QUOTA_EXCEEDED',
  'INTERNAL_ERROR',
  'TIMEOUT',
]);

/**
 * The statuses each public action accepts a run in: the run decider's rules for them (its
 * transition table is built on these), what a bulk request selects when it names no status, and
 * which of the dashboard's buttons a run's page enables. Finer refusals (archived, purged, retries
 * used up) come from the decider alone.
 */
export const ACTION_STATUSES = {
  /** Cancel (StopRun): an active run. */
  cancel: ['RUNNING', 'PAUSED'],
  /** Retry FROM_FAILED_STEP needs a step to resume from: failures, and runs stopped by hand. */
  retryFromFailedStep: FLOW_RUN_STATUSES.filter((s) => FAILURE_STATUSES.has(s) || s === 'STOPPED'),
  /** Retry ON_LATEST_VERSION: any finished run. */
  retryOnLatestVersion: FLOW_RUN_STATUSES.filter((s) => TERMINAL_STATUSES.has(s)),
  archive: [...FLOW_RUN_STATUSES],
} as const satisfies Record<string, readonly FlowRunStatus[]>;

/** `ACTION_STATUSES.retryFromFailedStep` as a set. */
export const RETRYABLE_FROM_FAILED_STEP: ReadonlySet<FlowRunStatus> = new Set(ACTION_STATUSES.retryFromFailedStep);

export const isTerminal = (s: FlowRunStatus): boolean => TERMINAL_STATUSES.has(s);
export const isFailure = (s: FlowRunStatus): boolean => FAILURE_STATUSES.has(s);

export const StepStatusSchema = z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'PAUSED']);
export type StepStatus = z.infer<typeof StepStatusSchema>;

export const RunEnvironmentSchema = z.enum(['PRODUCTION', 'TESTING']);
export type RunEnvironment = z.infer<typeof RunEnvironmentSchema>;

export const RetryStrategySchema = z.enum(['FROM_FAILED_STEP', 'ON_LATEST_VERSION']);
export type RetryStrategy = z.infer<typeof RetryStrategySchema>;
