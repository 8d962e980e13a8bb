import { FLOW_RUN_STATUSES, isDomainError, type RunEvent } from '@flowruns/contracts';
import { RUN_COMMAND_TYPES, type RunCommand, type RunCommandType } from './commands';
import { decide, evolve } from './decider';
import { cmd, ev, NOW, RUN_ID, stateOf } from './decider.spec-helpers';
import { ACCEPTED_IN, RESULTING_STATUS, type FromStatus } from './transitions';

/** A realistic history that leaves a run in each status (NONE: no history at all). */
const HISTORY: Record<FromStatus, readonly RunEvent[]> = {
  NONE: [],
  RUNNING: [ev.triggered(), ev.stepStarted('a')],
  PAUSED: [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')],
  SUCCEEDED: [ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'), ev.succeeded()],
  FAILED: [ev.triggered(), ev.stepStarted('b'), ev.stepFailed('b'), ev.failed('b')],
  QUOTA_EXCEEDED: [ev.triggered(), ev.quota()],
  INTERNAL_ERROR: [ev.triggered(), ev.stepStarted('a'), ev.internalError()],
  TIMEOUT: [ev.triggered(), ev.stepStarted('a'), ev.timedOut()],
  STOPPED: [ev.triggered(), ev.stepStarted('a'), ev.stopped()],
};

/** One well-formed command of each type, so only the status decides (steps named to fit each history). */
const COMMAND: Record<RunCommandType, RunCommand> = {
  TriggerRun: cmd.trigger(),
  StartStep: cmd.start('next'),
  CompleteStep: cmd.complete('a'),
  PauseRun: cmd.pause('a', 'req_2'),
  ResumeRun: cmd.resume('req_1'),
  SucceedRun: cmd.succeed(),
  FailRun: cmd.fail('a'),
  StopRun: cmd.stop(),
  TimeOutRun: cmd.timeOut(),
  ExceedQuota: cmd.exceedQuota(),
  FailInternally: cmd.failInternally(),
  // ON_LATEST_VERSION: FROM_FAILED_STEP has a finer rule (failures only), pinned in decider.spec.ts.
  RetryRun: cmd.retry('ON_LATEST_VERSION'),
  ArchiveRun: cmd.archive(),
  PurgeExecutionData: cmd.purge(),
};

const FROM: FromStatus[] = ['NONE', ...FLOW_RUN_STATUSES];
const cells = FROM.flatMap((from) => RUN_COMMAND_TYPES.map((command) => [from, command] as const));

describe('the transition table, every status × every command', () => {
  it('covers every command type and every status', () => {
    expect(Object.keys(ACCEPTED_IN).sort()).toEqual([...RUN_COMMAND_TYPES].sort());
    expect(Object.keys(COMMAND).sort()).toEqual([...RUN_COMMAND_TYPES].sort());
    expect(cells).toHaveLength(9 * 14);
    for (const from of FROM) expect(stateOf(HISTORY[from]).status ?? 'NONE').toBe(from);
  });

  it.each(cells)('from %s, %s', (from, type) => {
    const state = stateOf(HISTORY[from]);
    const decision = decide(COMMAND[type], state, { runId: RUN_ID, now: NOW });
    if (ACCEPTED_IN[type].has(from)) {
      if (isDomainError(decision)) throw new Error(`expected ${type} to be accepted in ${from}, got ${decision.code}`);
      expect(decision.length).toBeGreaterThan(0);
      const after = decision.reduce((s, e) => evolve(s, e, NOW.toISOString()), state);
      const expected = RESULTING_STATUS[type] ?? from; // commands without their own status keep the run's
      expect(after.status).toBe(expected);
    } else if (from === 'NONE') {
      expect(decision).toEqual({ code: 'ENTITY_NOT_FOUND', params: expect.objectContaining({ entityType: 'flow_run', entityId: RUN_ID }) });
    } else if (type === 'TriggerRun') {
      expect(decision).toEqual({ code: 'RUN_ALREADY_EXISTS', params: expect.objectContaining({ entityId: RUN_ID }) });
    } else {
      expect(decision).toEqual({
        code: 'INVALID_TRANSITION',
        params: expect.objectContaining({ status: from, command: type }),
      });
    }
  });
});
