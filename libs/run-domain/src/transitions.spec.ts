import { ACTION_STATUSES, FLOW_RUN_STATUSES, isDomainError, RETRYABLE_FROM_FAILED_STEP, TERMINAL_STATUSES, type FlowRunStatus, type RunEvent } from '@flowruns/contracts';
import { RUN_COMMAND_TYPES, type RunCommandType } from './commands';
import { decide } from './decider';
import { apply, cmd, ev, expectValidEvents, NOW, RUN_ID, SAMPLE_COMMAND, stateOf } from './decider.spec-helpers';
import type { RunState } from './state';
import { ACCEPTED_IN, RESULTING_STATUS, resultingStatusOf, type FromStatus } from './transitions';

/** A realistic history that leaves a run in each status (NONE: the run does not exist). */
const HISTORY: Readonly<Record<FromStatus, readonly RunEvent[]>> = {
  NONE: [],
  RUNNING: [ev.triggered(), ev.stepStarted('a')],
  PAUSED: [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')],
  SUCCEEDED: [ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'), ev.succeeded()],
  FAILED: [ev.triggered(), ev.stepStarted('b'), ev.stepFailed('b'), ev.failed('b')],
  QUOTA_EXCEEDED: [ev.triggered(), ev.stepStarted('a'), ev.quotaExceeded()],
  INTERNAL_ERROR: [ev.triggered(), ev.stepStarted('a'), ev.internalError()],
  // Timed out while running: one that timed out waiting on req_1 answers ResumeRun('req_1') with
  // PAUSE_EXPIRED, a finer rule pinned in decider.spec.ts.
  TIMEOUT: [ev.triggered(), ev.stepStarted('a'), ev.timedOut('EXECUTION_TIME')],
  STOPPED: [ev.triggered(), ev.stepStarted('a'), ev.stopped()],
};

const FROM: readonly FromStatus[] = ['NONE', ...FLOW_RUN_STATUSES];
const statusOf = (history: readonly RunEvent[]): FromStatus => stateOf(history).status ?? 'NONE';

type Expected = { accepted: true; status: FlowRunStatus } | { accepted: false; code: string };

/**
 * What the table says a cell does. TriggerRun on an existing run has its own code,
 * RUN_ALREADY_EXISTS. ResumeRun (req_1) on a run that does not exist: it issued no request id,
 * which is answered before the table (decider.spec.ts).
 */
function expected(from: FromStatus, type: RunCommandType): Expected {
  if (type === 'ResumeRun' && from === 'NONE') return { accepted: false, code: 'PAUSE_REQUEST_MISMATCH' };
  if (ACCEPTED_IN[type].has(from)) {
    // Commands with no status of their own (steps, ON_LATEST_VERSION retry, archive, purge) keep the run's.
    return { accepted: true, status: RESULTING_STATUS[type] ?? (from as FlowRunStatus) };
  }
  if (from === 'NONE') return { accepted: false, code: 'ENTITY_NOT_FOUND' };
  if (type === 'TriggerRun') return { accepted: false, code: 'RUN_ALREADY_EXISTS' };
  return { accepted: false, code: 'INVALID_TRANSITION' };
}

/**
 * The state a cell is decided on. The table speaks to ResumeRun only for a request id the run
 * issued (any other is refused first, alike in every status: decider.spec.ts), so in a status that
 * is not waiting on req_1 the run once paused on req_1 and abandoned it (it was cancelled, then
 * retried: any status is reachable that way).
 */
function cellState(from: FromStatus, type: RunCommandType): RunState {
  const state = stateOf(HISTORY[from]);
  if (type !== 'ResumeRun' || from === 'NONE' || state.pause?.requestId === 'req_1') return state;
  return { ...state, requests: { ...state.requests, req_1: 'ABANDONED' } };
}

const cells = FROM.flatMap((from) =>
  RUN_COMMAND_TYPES.map((type) => {
    const e = expected(from, type);
    return [from, type, e.accepted ? `accepted → ${e.status}` : e.code] as const;
  }),
);

describe('the transition table', () => {
  it('has a row for every command type, and nothing else', () => {
    expect(Object.keys(ACCEPTED_IN).sort()).toEqual([...RUN_COMMAND_TYPES].sort());
    expect(new Set(RUN_COMMAND_TYPES).size).toBe(RUN_COMMAND_TYPES.length);
    for (const type of Object.keys(RESULTING_STATUS)) expect(RUN_COMMAND_TYPES).toContain(type);
  });

  it('names only real statuses', () => {
    for (const type of RUN_COMMAND_TYPES) {
      for (const from of ACCEPTED_IN[type]) expect(FROM).toContain(from);
      const to = RESULTING_STATUS[type];
      if (to !== undefined) expect(FLOW_RUN_STATUSES).toContain(to);
    }
  });

  it('lets a terminal run change only by retry, archive or purge', () => {
    for (const from of TERMINAL_STATUSES) {
      const accepted = RUN_COMMAND_TYPES.filter((type) => ACCEPTED_IN[type].has(from));
      expect(accepted.filter((t) => !['RetryRun', 'ArchiveRun', 'PurgeExecutionData'].includes(t))).toEqual([]);
    }
  });

  it('accepts only TriggerRun for a run that does not exist', () => {
    expect(RUN_COMMAND_TYPES.filter((type) => ACCEPTED_IN[type].has('NONE'))).toEqual(['TriggerRun']);
  });

  it('has a realistic history for every status (the non-existent run included)', () => {
    expect(Object.keys(HISTORY).sort()).toEqual([...FROM].sort());
    for (const from of FROM) expect(statusOf(HISTORY[from])).toBe(from);
  });

  it(`has ${FROM.length} × ${RUN_COMMAND_TYPES.length} cells`, () => {
    expect(cells).toHaveLength(9 * 14);
  });
});

describe('every status × every command', () => {
  it.each(cells)('from %s, %s: %s', (from, type) => {
    const state = cellState(from, type);
    const decision = decide(SAMPLE_COMMAND[type], state, { runId: RUN_ID, now: NOW });
    const want = expected(from, type);

    if (want.accepted) {
      if (isDomainError(decision)) {
        throw new Error(`${type} from ${from}: the table accepts it, the decider refused: ${decision.code} ${JSON.stringify(decision.params)}`);
      }
      expect(decision.length).toBeGreaterThan(0);
      expectValidEvents(decision);
      const after = apply(state, decision, NOW).status;
      expect(after).toBe(want.status);
      expect(resultingStatusOf(SAMPLE_COMMAND[type], from)).toBe(after);
      return;
    }
    if (!isDomainError(decision)) {
      throw new Error(`${type} from ${from}: the table refuses it, the decider emitted ${JSON.stringify(decision)}`);
    }
    const params =
      want.code === 'INVALID_TRANSITION'
        ? { entityType: 'flow_run', entityId: RUN_ID, status: from, command: type }
        : want.code === 'PAUSE_REQUEST_MISMATCH'
          ? { entityType: 'flow_run_request', entityId: 'req_1' }
          : { entityType: 'flow_run', entityId: RUN_ID };
    expect(decision).toEqual({ code: want.code, params: expect.objectContaining(params) });
  });
});

describe('the public actions\' statuses (ACTION_STATUSES: bulk defaults, dashboard buttons) are the table\'s', () => {
  it('cancel is StopRun, retry ON_LATEST_VERSION is RetryRun, archive is ArchiveRun', () => {
    expect(new Set(ACTION_STATUSES.cancel)).toEqual(ACCEPTED_IN.StopRun);
    expect(new Set(ACTION_STATUSES.retryOnLatestVersion)).toEqual(ACCEPTED_IN.RetryRun);
    expect(new Set(ACTION_STATUSES.archive)).toEqual(ACCEPTED_IN.ArchiveRun);
  });

  it('names them in the reference\'s order: retry FROM_FAILED_STEP the failures and STOPPED, cancel the active runs', () => {
    expect(ACTION_STATUSES.retryFromFailedStep).toEqual(['FAILED', 'QUOTA_EXCEEDED', 'INTERNAL_ERROR', 'TIMEOUT', 'STOPPED']);
    expect(ACTION_STATUSES.cancel).toEqual(['RUNNING', 'PAUSED']);
  });
});

describe('RetryRun FROM_FAILED_STEP narrows the table to runs with something to resume from', () => {
  it('is a subset of the statuses RetryRun is accepted in', () => {
    for (const s of RETRYABLE_FROM_FAILED_STEP) expect(ACCEPTED_IN.RetryRun.has(s)).toBe(true);
  });

  it.each(FROM.map((from) => [from, RETRYABLE_FROM_FAILED_STEP.has(from as FlowRunStatus)] as const))(
    'from %s: accepted = %s',
    (from, accepted) => {
      const state = stateOf(HISTORY[from]);
      const decision = decide(cmd.retry('FROM_FAILED_STEP'), state, { runId: RUN_ID, now: NOW });
      if (accepted) {
        if (isDomainError(decision)) throw new Error(`refused: ${decision.code}`);
        expectValidEvents(decision);
        expect(apply(state, decision, NOW)).toMatchObject({ status: 'RUNNING', attempt: 2, pause: null });
        expect(resultingStatusOf(cmd.retry('FROM_FAILED_STEP'), from)).toBe('RUNNING');
      } else if (from === 'NONE') {
        expect(decision).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
      } else {
        expect(decision).toEqual({ code: 'INVALID_TRANSITION', params: expect.objectContaining({ status: from, command: 'RetryRun' }) });
      }
    },
  );
});

describe('TriggerRun over the quota', () => {
  it('ends the new run at once in QUOTA_EXCEEDED, as resultingStatusOf says', () => {
    const command = cmd.trigger({ exceededQuota: 100 });
    const decision = decide(command, stateOf([]), { runId: RUN_ID, now: NOW });
    if (isDomainError(decision)) throw new Error(`refused: ${decision.code}`);
    expectValidEvents(decision);
    expect(stateOf(decision).status).toBe('QUOTA_EXCEEDED');
    expect(resultingStatusOf(command, 'NONE')).toBe('QUOTA_EXCEEDED');
  });
});
