import { ACTION_STATUSES, FLOW_RUN_STATUSES, TERMINAL_STATUSES, type FlowRunStatus } from '@flowruns/contracts';
import type { RunCommand, RunCommandType } from './commands';

/** `NONE` is the status of a run that does not exist yet. */
export type FromStatus = FlowRunStatus | 'NONE';

const ALL: readonly FlowRunStatus[] = FLOW_RUN_STATUSES;
/** The active statuses: what a cancel (StopRun) accepts, from the public actions' rules. */
const ACTIVE: readonly FlowRunStatus[] = ACTION_STATUSES.cancel;
const TERMINAL: readonly FlowRunStatus[] = ALL.filter((s) => TERMINAL_STATUSES.has(s));

/**
 * The one transition table: for each command, the run statuses it is accepted in. Every other
 * status answers INVALID_TRANSITION (or ENTITY_NOT_FOUND for a run that does not exist). Finer
 * rules (archived, purged, attempts, the awaited request id) are checked in `decide`.
 */
export const ACCEPTED_IN: Readonly<Record<RunCommandType, ReadonlySet<FromStatus>>> = {
  TriggerRun: new Set<FromStatus>(['NONE']),
  StartStep: new Set(['RUNNING']),
  CompleteStep: new Set(['RUNNING']),
  PauseRun: new Set(['RUNNING']),
  ResumeRun: new Set(['PAUSED']),
  SucceedRun: new Set(['RUNNING']),
  // PAUSED too: a child that fails its parent may end a parent waiting on a pause.
  FailRun: new Set(ACTIVE),
  StopRun: new Set(ACTIVE),
  TimeOutRun: new Set(ACTIVE),
  ExceedQuota: new Set(['RUNNING']),
  FailInternally: new Set(ACTIVE),
  RetryRun: new Set(TERMINAL),
  ArchiveRun: new Set(ALL),
  PurgeExecutionData: new Set(TERMINAL),
};

/**
 * The status a run is in after an accepted command, where the command decides it alone.
 * (`TriggerRun` with `exceededQuota` ends in QUOTA_EXCEEDED: see `resultingStatusOf`.)
 */
export const RESULTING_STATUS: Readonly<Partial<Record<RunCommandType, FlowRunStatus>>> = {
  TriggerRun: 'RUNNING',
  PauseRun: 'PAUSED',
  ResumeRun: 'RUNNING',
  SucceedRun: 'SUCCEEDED',
  FailRun: 'FAILED',
  StopRun: 'STOPPED',
  TimeOutRun: 'TIMEOUT',
  ExceedQuota: 'QUOTA_EXCEEDED',
  FailInternally: 'INTERNAL_ERROR',
};

/** The status an accepted command leaves a run in (`from` when the command does not decide it). */
export function resultingStatusOf(command: RunCommand, from: FlowRunStatus): FlowRunStatus;
export function resultingStatusOf(command: RunCommand, from: FromStatus): FromStatus;
export function resultingStatusOf(command: RunCommand, from: FromStatus): FromStatus {
  if (command.type === 'TriggerRun' && (command.exceededQuota ?? null) !== null) return 'QUOTA_EXCEEDED';
  if (command.type === 'RetryRun' && command.strategy === 'FROM_FAILED_STEP') return 'RUNNING';
  return RESULTING_STATUS[command.type] ?? from;
}
