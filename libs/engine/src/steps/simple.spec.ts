import { defaultExecutors, STEP_TYPES } from './index';
import { approvalStep, delayStep, failStep, subflowStep, transformStep } from './simple';
import type { StepContext } from './types';

const ctx = (signal = new AbortController().signal): StepContext => ({ runId: 'r1', stepName: 's1', signal });

describe('transform step', () => {
  it('outputs its value', async () => {
    expect(await transformStep({ value: { a: [1, 'x'] } }, ctx())).toEqual({ kind: 'succeeded', output: { a: [1, 'x'] } });
    expect(await transformStep({ value: 'text' }, ctx())).toEqual({ kind: 'succeeded', output: 'text' });
    expect(await transformStep({}, ctx())).toEqual({ kind: 'succeeded', output: null });
  });
});

describe('fail step', () => {
  it('fails with its message', async () => {
    expect(await failStep({ message: 'v1 is broken' }, ctx())).toEqual({ kind: 'failed', error: { message: 'v1 is broken' } });
    expect(await failStep({}, ctx())).toEqual({ kind: 'failed', error: { message: 'failed by a fail step' } });
    expect(await failStep({ message: 42 }, ctx())).toEqual({ kind: 'failed', error: { message: '42' } });
  });
});

describe('delay step', () => {
  it('waits the given milliseconds', async () => {
    const started = Date.now();
    expect(await delayStep({ ms: 60 }, ctx())).toEqual({ kind: 'succeeded', output: { delayedMs: 60 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(await delayStep({ ms: '5' }, ctx())).toEqual({ kind: 'succeeded', output: { delayedMs: 5 } });
  });

  it('is cut short by the abort signal, rejecting with its reason', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const pending = delayStep({ ms: 10000 }, ctx(ac.signal));
    setTimeout(() => ac.abort(new Error('cancelled')), 20);
    await expect(pending).rejects.toThrow('cancelled');
    expect(Date.now() - started).toBeLessThan(1000);

    const already = new AbortController();
    already.abort(new Error('before'));
    await expect(delayStep({ ms: 10 }, ctx(already.signal))).rejects.toThrow('before');
  });

  it('fails on settings that do not fit', async () => {
    expect(await delayStep({ ms: -1 }, ctx())).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/^invalid settings\.ms/) } });
    expect(await delayStep({}, ctx())).toMatchObject({ kind: 'failed' });
  });
});

describe('approval step', () => {
  it('asks the driver to pause', async () => {
    expect(await approvalStep({}, ctx())).toEqual({ kind: 'pause' });
  });
});

describe('subflow step', () => {
  it('asks the driver to start the child and wait', async () => {
    expect(await subflowStep({ flowId: 'flow_1', payload: { a: 1 }, failParentOnFailure: true }, ctx())).toEqual({
      kind: 'subflow',
      flowId: 'flow_1',
      payload: { a: 1 },
      failParentOnFailure: true,
    });
    expect(await subflowStep({ flowId: 'flow_1' }, ctx())).toEqual({ kind: 'subflow', flowId: 'flow_1', payload: {}, failParentOnFailure: false });
  });

  it('fails without a flow id', async () => {
    expect(await subflowStep({ payload: {} }, ctx())).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/settings\.flowId/) } });
  });
});

describe('defaultExecutors', () => {
  it('has an executor for every step type', () => {
    const executors = defaultExecutors({ timeoutMs: 1000 });
    expect(Object.keys(executors).sort()).toEqual([...STEP_TYPES].sort());
  });
});
