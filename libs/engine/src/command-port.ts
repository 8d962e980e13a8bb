import { CommandServiceError, CommandServiceUnavailable } from '@flowruns/platform';
import type {
  CommandResult,
  FinishStepRequest,
  FlowRun,
  LeaseResult,
  RunExecution,
  TriggerRunRequestInput,
} from '@flowruns/contracts';

/**
 * The execution view as the engine reads it. `runningSince` (when the run last entered RUNNING: its
 * trigger, a retry from the failed step, a resume) is used when the command service sends it; the
 * maximum execution time then counts from it instead of from `startTime`.
 */
export type RunExecutionView = RunExecution & { readonly runningSince?: string | null };

/**
 * What the engine needs from the command service: its internal HTTP API, as a port. The worker
 * wires the HTTP adapter (`HttpCommandClient`); tests wire a fake. Every method rejects with a
 * `CommandServiceError` when the command service refuses (an envelope), or with
 * `CommandServiceUnavailable` when it cannot be reached or answers nonsense.
 */
export interface CommandServicePort {
  /** The run as an engine drives it; null when the run does not exist. */
  getExecution(runId: string): Promise<RunExecutionView | null>;
  /** Acquires the run's lease for `workerId`, or renews it when `workerId` already holds it. */
  acquireLease(runId: string, workerId: string, ttlMs: number): Promise<LeaseResult>;
  releaseLease(runId: string, workerId: string): Promise<void>;
  /** RUNNING runs whose lease expired, now leased to `workerId`. */
  claimExpired(workerId: string, ttlMs: number, limit: number): Promise<string[]>;
  startStep(runId: string, stepName: string, req: { stepType: string; workerId?: string }): Promise<CommandResult>;
  finishStep(runId: string, stepName: string, req: FinishStepRequest): Promise<CommandResult>;
  /** Pauses the run on `stepName`; the command service picks the request id. */
  pause(runId: string, req: { stepName: string; workerId?: string }): Promise<CommandResult & { requestId?: string }>;
  succeed(runId: string, req: { workerId?: string }): Promise<CommandResult>;
  fail(runId: string, req: { failedStepName: string | null; workerId?: string }): Promise<CommandResult>;
  timeOut(runId: string, req: { reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST' }): Promise<CommandResult>;
  internalError(runId: string, req: { reason: string }): Promise<CommandResult>;
  /** Triggers a run of `flowId` (a subflow's child). Not idempotent: never retried blindly. */
  triggerRun(flowId: string, req: TriggerRunRequestInput): Promise<FlowRun>;
}

/** Where the command service's refusals and outages are defined (shared by every internal caller). */
export { CommandServiceError, CommandServiceUnavailable };

/**
 * An answer that means "stop driving this run, quietly": 409 (the lease is someone else's, the run
 * was cancelled or timed out, the step is no longer running), 404 (the run is gone), 410 (its data
 * was purged). The run is in a state an engine must not argue with.
 */
export const isStopAnswer = (e: unknown): e is CommandServiceError =>
  e instanceof CommandServiceError && (e.status === 409 || e.status === 404 || e.status === 410);
