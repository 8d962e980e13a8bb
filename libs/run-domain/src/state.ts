import type { FlowRunStatus, StepStatus } from '@flowruns/contracts';

export interface StepState {
  readonly type: string;
  readonly status: StepStatus;
  /** The run attempt in which the step last changed. */
  readonly attempt: number;
}

/**
 * Everything a decision about a run needs. It is the snapshot the command service stores next to
 * the stream's version, so it must stay small and JSON-serialisable.
 */
export interface RunState {
  readonly exists: boolean;
  readonly status: FlowRunStatus | null;
  readonly attempt: number;
  readonly retryCount: number;
  readonly archived: boolean;
  readonly purged: boolean;
  readonly startTime: string | null;
  readonly failedStepName: string | null;
  readonly pause: { readonly requestId: string; readonly stepName: string } | null;
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
  failedStepName: null,
  pause: null,
  steps: {},
});
