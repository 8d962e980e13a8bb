import type {
  EventEnvelope,
  FlowRunStatus,
  KnownEnvelope,
  RunEnvironment,
  StepStatus,
} from '@flowruns/contracts';

/**
 * A row of `run_views` as the projection reasons about it. Times are ISO-8601 strings so that a
 * row loaded from Postgres and written back is bit-for-bit the row that was stored (a `Date`
 * would drop microseconds).
 */
export interface RunView {
  readonly id: string;
  readonly projectId: string;
  readonly flowId: string;
  readonly flowVersionId: string;
  readonly flowDisplayName: string;
  readonly status: FlowRunStatus;
  readonly environment: RunEnvironment;
  readonly triggeredBy: string | null;
  readonly tags: readonly string[];
  readonly stepsCount: number;
  readonly parentRunId: string | null;
  readonly failParentOnFailure: boolean;
  readonly retryOf: string | null;
  readonly failedStepName: string | null;
  readonly attempt: number;
  readonly startTime: string | null;
  readonly finishTime: string | null;
  readonly archivedAt: string | null;
  readonly purgedAt: string | null;
  readonly logsFileId: string | null;
  readonly triggerDataRef: string | null;
  readonly pauseRequestId: string | null;
  readonly pauseStepName: string | null;
  readonly created: string;
  /** The `seq` of the last event applied to this run (known or not). */
  readonly version: number;
}

/** A row of `step_views`: the latest state of one step of a run. */
export interface StepView {
  readonly runId: string;
  readonly stepName: string;
  readonly stepType: string;
  readonly status: StepStatus;
  readonly attempt: number;
  /** 1-based order in which the step first appeared in the run. Never changes afterwards. */
  readonly position: number;
  readonly durationMs: number | null;
  readonly dataRef: string | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

/** A run's view together with its steps, keyed by step name. */
export interface RunProjection {
  readonly view: RunView;
  readonly steps: Readonly<Record<string, StepView>>;
}

/**
 * Why an in-sequence event still cannot be applied. The projection never guesses, so the run stops
 * exactly as for a gap.
 */
export type UnprojectableReason =
  /** The run has no view yet and the event is not `flowrun.triggered.v1`. */
  | 'not-created'
  /** `flowrun.triggered.v1` arrived for a run whose view already exists. */
  | 'already-created';

export type EvolveResult =
  | { readonly ok: true; readonly projection: RunProjection }
  | { readonly ok: false; readonly reason: UnprojectableReason };

const assertNever = (x: never): never => {
  throw new Error(`unhandled event type: ${JSON.stringify(x)}`);
};

const nextPosition = (steps: Readonly<Record<string, StepView>>): number =>
  Object.values(steps).reduce((max, s) => Math.max(max, s.position), 0) + 1;

/**
 * Applies one known event, already checked to be the run's next `seq`, to the run's projection.
 * Pure and deterministic: every value comes from the event (times from the envelope's `time`), so
 * replaying the same history always gives the same rows.
 */
export function evolveRun(current: RunProjection | null, e: KnownEnvelope): EvolveResult {
  const time = e.time;
  if (e.type === 'flowrun.triggered.v1') {
    if (current) return { ok: false, reason: 'already-created' };
    const d = e.data;
    return {
      ok: true,
      projection: {
        view: {
          id: e.subject,
          projectId: e.projectId,
          flowId: e.flowId,
          flowVersionId: d.flowVersionId,
          flowDisplayName: d.flowDisplayName,
          status: 'RUNNING',
          environment: d.environment,
          triggeredBy: d.triggeredBy,
          tags: [...d.tags],
          stepsCount: d.stepsCount,
          parentRunId: d.parentRunId,
          failParentOnFailure: d.failParentOnFailure,
          retryOf: d.retryOf,
          failedStepName: null,
          attempt: 1,
          startTime: time,
          finishTime: null,
          archivedAt: null,
          purgedAt: null,
          logsFileId: d.logsFileId,
          triggerDataRef: d.triggerDataRef,
          pauseRequestId: null,
          pauseStepName: null,
          created: time,
          version: e.seq,
        },
        steps: {},
      },
    };
  }
  if (!current) return { ok: false, reason: 'not-created' };

  const view: RunView = { ...current.view, version: e.seq };
  const steps = current.steps;
  const runId = view.id;
  const done = (v: RunView, s: Readonly<Record<string, StepView>> = steps): EvolveResult => ({
    ok: true,
    projection: { view: v, steps: s },
  });
  // A finished run shows no pause: the request it waited on can no longer be answered.
  const finish = (status: FlowRunStatus, extra: Partial<RunView> = {}): EvolveResult =>
    done({ ...view, status, finishTime: time, pauseRequestId: null, pauseStepName: null, ...extra });

  switch (e.type) {
    case 'flowrun.step.started.v1': {
      const prev = steps[e.data.stepName];
      // A step started again (a retry from the failed step) shows the new attempt only: the
      // previous attempt's result no longer describes the step.
      const step: StepView = {
        runId,
        stepName: e.data.stepName,
        stepType: e.data.stepType,
        status: 'RUNNING',
        attempt: e.data.attempt,
        position: prev?.position ?? nextPosition(steps),
        durationMs: null,
        dataRef: null,
        startedAt: time,
        finishedAt: null,
      };
      return done(view, { ...steps, [step.stepName]: step });
    }
    case 'flowrun.step.succeeded.v1':
    case 'flowrun.step.failed.v1': {
      const prev = steps[e.data.stepName];
      // The finish carries everything a row needs, so a finish without a start still projects.
      const step: StepView = {
        runId,
        stepName: e.data.stepName,
        position: prev?.position ?? nextPosition(steps),
        startedAt: prev?.startedAt ?? null,
        stepType: e.data.stepType,
        status: e.type === 'flowrun.step.succeeded.v1' ? 'SUCCEEDED' : 'FAILED',
        attempt: e.data.attempt,
        durationMs: e.data.durationMs,
        dataRef: e.data.dataRef,
        finishedAt: time,
      };
      return done(view, { ...steps, [step.stepName]: step });
    }
    case 'flowrun.paused.v1': {
      const prev = steps[e.data.stepName];
      const v = { ...view, status: 'PAUSED' as const, pauseRequestId: e.data.requestId, pauseStepName: e.data.stepName };
      // Without a started step there is no step type to write; the run's pause fields still say it.
      return done(v, prev ? { ...steps, [prev.stepName]: { ...prev, status: 'PAUSED' } } : steps);
    }
    case 'flowrun.resumed.v1': {
      const prev = steps[e.data.stepName];
      const v = { ...view, status: 'RUNNING' as const, pauseRequestId: null, pauseStepName: null };
      const step: StepView | undefined = prev && {
        ...prev,
        status: 'SUCCEEDED',
        dataRef: e.data.dataRef,
        finishedAt: time,
      };
      return done(v, step ? { ...steps, [step.stepName]: step } : steps);
    }
    case 'flowrun.succeeded.v1':
      return finish('SUCCEEDED');
    case 'flowrun.failed.v1':
      return finish('FAILED', { failedStepName: e.data.failedStepName });
    case 'flowrun.stopped.v1':
      return finish('STOPPED');
    case 'flowrun.timed-out.v1':
      return finish('TIMEOUT');
    case 'flowrun.quota-exceeded.v1':
      return finish('QUOTA_EXCEEDED');
    case 'flowrun.internal-error.v1':
      return finish('INTERNAL_ERROR');
    case 'flowrun.retried.v1':
      switch (e.data.strategy) {
        case 'FROM_FAILED_STEP':
          return done({ ...view, status: 'RUNNING', attempt: e.data.attempt, finishTime: null, failedStepName: null });
        case 'ON_LATEST_VERSION':
          // The retry is a new run with its own stream; this run only records that it happened.
          return done(view);
        default:
          return assertNever(e.data.strategy);
      }
    case 'flowrun.archived.v1':
      return done({ ...view, archivedAt: time });
    case 'flowrun.execution-data-purged.v1':
    case 'flowrun.execution-data-purged-through.v1':
      // The run row says the data is gone (readers return no steps once `purgedAt` is set); the step
      // rows keep the references they had, so a purge writes one row, not one per step.
      return done({ ...view, purgedAt: time, logsFileId: null, triggerDataRef: null });
    default:
      return assertNever(e);
  }
}

/**
 * An event of a type this build does not know, at the run's next `seq`. Its meaning is unknown, so
 * nothing changes but the version: later events the build does know must still line up
 * (`seq = version + 1`), and a rebuild by a newer projector that knows the type gives the richer row.
 * A run with no view cannot hold a version, so an unknown first event cannot be applied.
 */
export function skipUnknown(current: RunProjection | null, e: EventEnvelope): EvolveResult {
  if (!current) return { ok: false, reason: 'not-created' };
  return { ok: true, projection: { view: { ...current.view, version: e.seq }, steps: current.steps } };
}
