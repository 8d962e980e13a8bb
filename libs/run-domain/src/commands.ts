import type { RetryStrategy, RunEnvironment } from '@flowruns/contracts';

/** Commands are imperative and carry everything a decision needs; time comes in the context. */
export type RunCommand =
  | {
      readonly type: 'TriggerRun';
      readonly flowVersionId: string;
      readonly flowDisplayName: string;
      readonly environment: RunEnvironment;
      readonly triggeredBy: string | null;
      readonly tags: readonly string[];
      readonly stepsCount: number;
      readonly parentRunId: string | null;
      readonly failParentOnFailure: boolean;
      readonly retryOf: string | null;
      readonly triggerDataRef: string | null;
      readonly logsFileId: string | null;
      /**
       * Set when the project's monthly run quota is already used up: the run is still recorded
       * (so the client sees it) and ends at once as QUOTA_EXCEEDED. The value is the quota.
       */
      readonly exceededQuota?: number | null;
    }
  | { readonly type: 'StartStep'; readonly stepName: string; readonly stepType: string }
  | {
      readonly type: 'CompleteStep';
      readonly stepName: string;
      readonly outcome: 'SUCCEEDED' | 'FAILED';
      readonly durationMs: number;
      readonly dataRef: string;
    }
  | {
      readonly type: 'PauseRun';
      readonly stepName: string;
      readonly requestId: string;
      readonly resumeDeadline: string | null;
    }
  | { readonly type: 'ResumeRun'; readonly requestId: string; readonly dataRef: string }
  | { readonly type: 'SucceedRun' }
  | { readonly type: 'FailRun'; readonly failedStepName: string | null }
  | { readonly type: 'StopRun'; readonly reason: string }
  | { readonly type: 'TimeOutRun'; readonly reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST' }
  | { readonly type: 'ExceedQuota'; readonly quota: number }
  | { readonly type: 'FailInternally'; readonly reason: string }
  | {
      readonly type: 'RetryRun';
      readonly strategy: RetryStrategy;
      readonly maxAttempts: number;
      /** Required for ON_LATEST_VERSION: the id of the run the retry creates. */
      readonly newRunId: string | null;
    }
  | { readonly type: 'ArchiveRun' }
  | {
      readonly type: 'PurgeExecutionData';
      readonly reason: 'RETENTION' | 'ERASE';
      /**
       * A retention range (`flowrun.execution-data-purged-through.v1`): this run closes a range of
       * its project's runs purged together. Recorded even when the run's own data went before (an
       * erase), since the range speaks for the others too.
       */
      readonly range?: PurgeRange;
    };

/** A finish key: `finishedAt` with Postgres's microseconds (ISO 8601, UTC), then the run id. */
export interface FinishKey {
  readonly finishedAt: string;
  readonly runId: string;
}

/** Runs of one project purged together: finish keys in `(from, through]`, `runs` of them. */
export interface PurgeRange {
  readonly from: FinishKey | null;
  readonly through: FinishKey;
  readonly runs: number;
}

export type RunCommandType = RunCommand['type'];

export const RUN_COMMAND_TYPES: readonly RunCommandType[] = [
  'TriggerRun',
  'StartStep',
  'CompleteStep',
  'PauseRun',
  'ResumeRun',
  'SucceedRun',
  'FailRun',
  'StopRun',
  'TimeOutRun',
  'ExceedQuota',
  'FailInternally',
  'RetryRun',
  'ArchiveRun',
  'PurgeExecutionData',
];
