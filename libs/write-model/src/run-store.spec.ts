import { isDomainError, type RunEvent } from '@flowruns/contracts';
import { decide, evolve, fold, type RunCommand, type RunState } from '@flowruns/run-domain';
import { snapshotPatch } from './run-store';

const T = '2026-01-15T10:30:00.000Z';
const ctx = { runId: 'run_1', now: new Date(T) };

/** A run that failed at its second step. */
const failedRun = (): RunState =>
  fold(
    (
      [
        {
          type: 'flowrun.triggered.v1',
          data: {
            flowVersionId: 'flowver_1',
            flowDisplayName: 'F',
            environment: 'PRODUCTION',
            triggeredBy: null,
            tags: [],
            stepsCount: 2,
            parentRunId: null,
            failParentOnFailure: false,
            retryOf: null,
            triggerDataRef: 'exd_t',
            logsFileId: null,
          },
        },
        { type: 'flowrun.step.started.v1', data: { stepName: 'a', stepType: 'transform' } },
        { type: 'flowrun.step.succeeded.v1', data: { stepName: 'a', stepType: 'transform', durationMs: 1, dataRef: 'exd_a' } },
        { type: 'flowrun.step.started.v1', data: { stepName: 'b', stepType: 'transform' } },
        { type: 'flowrun.step.failed.v1', data: { stepName: 'b', stepType: 'transform', durationMs: 1, dataRef: 'exd_b' } },
        { type: 'flowrun.failed.v1', data: { failedStepName: 'b', durationMs: 2 } },
      ] as RunEvent[]
    ).map((event) => ({ event, time: T })),
  );

/** The state after `command`, decided and evolved as the append path does. */
function after(state: RunState, command: RunCommand): RunState {
  const events = decide(command, state, ctx);
  if (isDomainError(events)) throw new Error(events.code);
  return events.reduce((s, e) => evolve(s, e, T), state);
}

/** What jsonb `s.state || patch` does: the patch's top-level keys replace the snapshot's. */
const applied = (before: RunState, patch: Record<string, unknown>) => JSON.parse(JSON.stringify({ ...before, ...patch }));
const json = (v: unknown) => JSON.parse(JSON.stringify(v));

describe('snapshotPatch (what a bulk append writes of a snapshot)', () => {
  const retry: RunCommand = { type: 'RetryRun', strategy: 'FROM_FAILED_STEP', maxAttempts: 5, newRunId: null };
  const cases: [string, RunState, RunCommand][] = [
    ['retry from the failed step', failedRun(), retry],
    ['cancel', after(failedRun(), retry), { type: 'StopRun', reason: 'bulk' }],
    ['archive', failedRun(), { type: 'ArchiveRun' }],
    ['purge', failedRun(), { type: 'PurgeExecutionData', reason: 'RETENTION' }],
  ];

  it.each(cases)('%s: only the top-level keys that changed, and applied to the snapshot it gives the new one', (_name, state, command) => {
    // As the append path has it: the snapshot as read from its row, and the decider's state after it.
    const before: RunState = json(state);
    const next = after(before, command);
    const patch = snapshotPatch(before, next);
    expect(patch).not.toBeNull();
    // The step map is untouched by these commands: it does not travel.
    expect(Object.keys(patch!)).not.toContain('steps');
    expect(Object.keys(patch!).length).toBeGreaterThan(0);
    expect(applied(before, patch!)).toEqual(json(next));
  });

  it('gives the whole snapshot up (null) when a key went away, which jsonb || could not express', () => {
    const before = { ...failedRun(), runningSince: T };
    expect(snapshotPatch(before, { ...before, runningSince: undefined })).toBeNull();
  });

  it('is empty when nothing changed, and compares values, not only references, for scalars', () => {
    const s = failedRun();
    expect(snapshotPatch(s, { ...s })).toEqual({});
    expect(snapshotPatch(s, { ...s, status: 'FAILED', archived: true })).toEqual({ archived: true });
  });
});
