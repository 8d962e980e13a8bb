import {
  EVENT_SOURCE,
  EVENT_SPEC_VERSION,
  parseEnvelope,
  type EventEnvelope,
  type RunEventData,
  type RunEventType,
} from '@flowruns/contracts';
import type { ProjectableEnvelope } from '../fold';

/**
 * Builds a run's event history for tests: ids, `seq` and times are assigned in order, times from a
 * fixed clock (microsecond precision on purpose: the read model must keep it).
 */
export class RunHistory {
  readonly events: EventEnvelope[] = [];
  private seq = 0;

  constructor(
    readonly runId: string,
    private readonly opts: { projectId?: string; flowId?: string; startMs?: number } = {},
  ) {}

  private timeOf(seq: number): string {
    const ms = (this.opts.startMs ?? Date.UTC(2026, 2, 1, 10, 0, 0)) + seq * 1000;
    // Sub-millisecond digits that a JS Date would lose on a round trip.
    return new Date(ms).toISOString().replace('Z', `${String(seq % 1000).padStart(3, '0')}Z`);
  }

  /** Appends an event of a known type with the next seq. */
  add<T extends RunEventType>(type: T, data: RunEventData<T>): EventEnvelope {
    return this.addRaw(type, data as Record<string, unknown>);
  }

  /** Appends any envelope (unknown types, bad data) with the next seq, or the given one. */
  addRaw(type: string, data: Record<string, unknown>, seq?: number): EventEnvelope {
    const s = seq ?? this.seq + 1;
    this.seq = Math.max(this.seq, s);
    const e: EventEnvelope = {
      specversion: EVENT_SPEC_VERSION,
      id: `${this.runId}-evt-${String(s).padStart(4, '0')}`,
      type,
      source: EVENT_SOURCE,
      time: this.timeOf(s),
      subject: this.runId,
      projectId: this.opts.projectId ?? 'proj-1',
      flowId: this.opts.flowId ?? 'flow-1',
      seq: s,
      datacontenttype: 'application/json',
      data,
    };
    this.events.push(e);
    return e;
  }

  triggered(overrides: Partial<RunEventData<'flowrun.triggered.v1'>> = {}): EventEnvelope {
    return this.add('flowrun.triggered.v1', {
      flowVersionId: 'fv-1',
      flowDisplayName: 'Sync leads',
      environment: 'PRODUCTION',
      triggeredBy: 'user-1',
      tags: ['crm', 'nightly'],
      stepsCount: 3,
      parentRunId: null,
      failParentOnFailure: false,
      retryOf: null,
      triggerDataRef: `${this.runId}:trigger`,
      logsFileId: `${this.runId}:logs`,
      ...overrides,
    });
  }

  stepStarted(stepName: string, attempt = 1, stepType = 'PIECE'): EventEnvelope {
    return this.add('flowrun.step.started.v1', { stepName, stepType, attempt });
  }

  stepSucceeded(stepName: string, attempt = 1, durationMs = 120, stepType = 'PIECE'): EventEnvelope {
    return this.add('flowrun.step.succeeded.v1', {
      stepName,
      stepType,
      attempt,
      durationMs,
      dataRef: `${this.runId}:${stepName}:${attempt}`,
    });
  }

  stepFailed(stepName: string, attempt = 1, durationMs = 80, stepType = 'PIECE'): EventEnvelope {
    return this.add('flowrun.step.failed.v1', {
      stepName,
      stepType,
      attempt,
      durationMs,
      dataRef: `${this.runId}:${stepName}:${attempt}`,
    });
  }
}

/**
 * A run that goes through every kind of event: steps, a pause and resume, a failure, a retry from
 * the failed step, success, archive, purge. 16 events.
 */
export function fullRunHistory(runId: string, opts: { projectId?: string; flowId?: string } = {}): RunHistory {
  const h = new RunHistory(runId, opts);
  h.triggered();
  h.stepStarted('fetch');
  h.stepSucceeded('fetch', 1, 120);
  h.stepStarted('approve', 1, 'APPROVAL');
  h.add('flowrun.paused.v1', { stepName: 'approve', requestId: 'req-1', resumeDeadline: null });
  h.add('flowrun.resumed.v1', { stepName: 'approve', requestId: 'req-1', dataRef: `${runId}:approve:resume` });
  h.stepStarted('push');
  h.stepFailed('push', 1, 80);
  h.add('flowrun.failed.v1', { failedStepName: 'push', durationMs: 9000 });
  h.add('flowrun.retried.v1', { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'push', newRunId: null });
  h.stepStarted('push', 2);
  h.stepSucceeded('push', 2, 95);
  h.add('flowrun.succeeded.v1', { durationMs: 12000 });
  h.add('flowrun.retried.v1', { strategy: 'ON_LATEST_VERSION', attempt: 2, fromStepName: null, newRunId: `${runId}-new` });
  h.add('flowrun.archived.v1', {});
  h.add('flowrun.execution-data-purged.v1', { reason: 'RETENTION' });
  return h;
}

/** Parses envelopes the way the consumer does; fails the test on anything it would dead-letter. */
export function toProjectable(envelopes: readonly EventEnvelope[]): ProjectableEnvelope[] {
  return envelopes.map((e) => {
    const p = parseEnvelope(JSON.stringify(e));
    switch (p.kind) {
      case 'known':
        return { kind: 'known', envelope: p.envelope };
      case 'unknown-type':
        return { kind: 'unknown-type', envelope: p.envelope };
      case 'invalid':
        throw new Error(`fixture ${e.id} is invalid: ${p.reason}`);
      default: {
        const never: never = p;
        throw new Error(`unhandled parse result ${JSON.stringify(never)}`);
      }
    }
  });
}

/** Interleaves several histories the way one partition would carry them (round robin). */
export function interleave(...lists: readonly (readonly EventEnvelope[])[]): EventEnvelope[] {
  const out: EventEnvelope[] = [];
  for (let i = 0; out.length < lists.reduce((n, l) => n + l.length, 0); i++) {
    for (const l of lists) if (i < l.length) out.push(l[i]);
  }
  return out;
}
