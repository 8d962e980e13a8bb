import type { FlowRunStatus, StepStatus } from '@flowruns/contracts';

export interface StepState {
  readonly type: string;
  readonly status: StepStatus;
  /** The run attempt in which the step last changed. */
  readonly attempt: number;
  /** The execution-data record of its last result (output of a succeeded step, or the resume body). */
  readonly dataRef?: string | null;
}

export interface PauseState {
  readonly requestId: string;
  readonly stepName: string;
  /** Past this instant the request can no longer resume the run (null: no deadline). */
  readonly resumeDeadline?: string | null;
}

/**
 * What became of a resume request once the run stopped waiting on it: used, expired (the run timed
 * out waiting), or abandoned (the run was cancelled, failed or crashed while it waited).
 */
export type ClosedRequest = 'RESUMED' | 'EXPIRED' | 'ABANDONED';

/**
 * Everything a decision about a run needs. It is the snapshot the command service stores next to
 * the stream's version, so it must stay small and JSON-serialisable. Fields added after the first
 * release are optional: snapshots written before them are still read.
 */
export interface RunState {
  readonly exists: boolean;
  readonly status: FlowRunStatus | null;
  readonly attempt: number;
  readonly retryCount: number;
  readonly archived: boolean;
  readonly purged: boolean;
  readonly startTime: string | null;
  /** When the run last entered RUNNING (trigger, a retry from the failed step, a resume). */
  readonly runningSince?: string | null;
  readonly failedStepName: string | null;
  readonly pause: PauseState | null;
  /**
   * Request ids the run waited on and no longer does. With `pause`, every id the run issued: only
   * their holders get a precise answer (used, expired, not waiting); any other id is just unknown.
   * Ids abandoned before `ABANDONED` existed are not here, and are answered as unknown.
   */
  readonly requests?: Readonly<Record<string, ClosedRequest>>;
  readonly steps: Readonly<Record<string, StepState>>;
}

export const initialState = (): RunState => ({
  exists: false,
  status: null,
  attempt: 0,
  retryCount: 0,
  archived: false,
  purged: false,
  startTime: null,
  runningSince: null,
  failedStepName: null,
  pause: null,
  requests: {},
  steps: {},
});
