import type { FlowRunStatus } from '@flowruns/contracts';
import { FakeCommandService } from './fake-command-service.spec-helpers';
import { completeSubflowStep, lastOutput, ParentLeaseBusy } from './subflow-completion';

process.env.LOG_LEVEL ??= 'silent';

describe('completeSubflowStep', () => {
  let fake: FakeCommandService;
  const opts = () => ({ client: fake, workerId: 'worker-a', leaseTtlMs: 3000, leaseBackoffMs: 10 });

  const parentWaiting = (settings: Record<string, unknown> = { flowId: 'flow_child', failParentOnFailure: true }) =>
    fake.addRun('parent', [
      { name: 'before', type: 'transform', settings: { value: 'x' } },
      { name: 'call_child', type: 'subflow', settings },
      { name: 'after', type: 'transform', settings: { value: 1 } },
    ], {
      trigger: { childFlow: 'flow_child' },
      results: { before: { status: 'SUCCEEDED', attempt: 1, output: 'x' }, call_child: { status: 'RUNNING', attempt: 1 } },
    });
  const child = (status: FlowRunStatus, failParentOnFailure: boolean) =>
    fake.addRun('child', [
      { name: 'one', type: 'transform', settings: {} },
      { name: 'two', type: 'transform', settings: {} },
      { name: 'three', type: 'fail', settings: {} },
    ], {
      flowId: 'flow_child',
      status,
      parentRunId: 'parent',
      failParentOnFailure,
      startTime: new Date(Date.now() - 1500).toISOString(),
      results: {
        one: { status: 'SUCCEEDED', attempt: 1, output: { n: 1 } },
        two: { status: 'SUCCEEDED', attempt: 1, output: { n: 2 } },
        three: { status: 'FAILED', attempt: 1 },
      },
    });

  beforeEach(() => {
    fake = new FakeCommandService();
  });

  it("fails the parent's step when the child failed and was asked to fail its parent", async () => {
    parentWaiting();
    child('FAILED', true);
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'reported', parentRunId: 'parent', stepName: 'call_child', status: 'FAILED' });
    expect(fake.ops('parent')).toEqual(['lease', 'execution', 'finish:call_child', 'release']);
    expect(fake.bodyOf('finish', 'call_child')).toEqual({
      status: 'FAILED',
      input: { flowId: 'flow_child', failParentOnFailure: true },
      output: { status: 'FAILED', output: { n: 2 } },
      error: { message: 'child run child ended FAILED', childRunId: 'child', childStatus: 'FAILED' },
      durationMs: expect.any(Number),
      workerId: 'worker-a',
    });
    expect((fake.bodyOf('finish', 'call_child') as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(1500);
    expect(fake.leases.has('parent')).toBe(false);
  });

  it("succeeds the parent's step with the child's status when the child failed without failing its parent", async () => {
    parentWaiting({ flowId: '{{trigger.childFlow}}' });
    child('TIMEOUT', false);
    expect(await completeSubflowStep('child', opts())).toMatchObject({ result: 'reported', status: 'SUCCEEDED' });
    expect(fake.bodyOf('finish', 'call_child')).toMatchObject({ status: 'SUCCEEDED', output: { status: 'TIMEOUT', output: { n: 2 } } });
    expect(fake.bodyOf('finish', 'call_child')).not.toHaveProperty('error');
  });

  it('succeeds the step for a child that succeeded, or was stopped (not a failure status)', async () => {
    parentWaiting();
    child('STOPPED', true);
    expect(await completeSubflowStep('child', opts())).toMatchObject({ result: 'reported', status: 'SUCCEEDED' });
  });

  it('does nothing for a run without a parent, a child still running, or a parent that no longer waits', async () => {
    fake.addRun('lonely', [], { status: 'SUCCEEDED' });
    expect(await completeSubflowStep('lonely', opts())).toEqual({ result: 'no-parent' });
    expect(await completeSubflowStep('ghost', opts())).toEqual({ result: 'not-found' });

    parentWaiting();
    child('RUNNING', true);
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'child-not-finished' });

    child('SUCCEEDED', true);
    fake.set('parent', { results: { call_child: { status: 'SUCCEEDED', attempt: 1, output: {} } } });
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'parent-not-waiting' });
    expect(fake.ops('parent')).not.toContain('finish:call_child');
    expect(fake.leases.has('parent')).toBe(false);

    // A parent that ended (here: failed by the command service itself, as a failParentOnFailure
    // child's failure does) is not leased to anyone: answered at once, never retried as "busy".
    fake.set('parent', { status: 'FAILED', results: { call_child: { status: 'RUNNING', attempt: 1 } } });
    fake.calls.length = 0;
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'parent-not-waiting' });
    expect(fake.ops('parent')).toEqual(['lease']);
  });

  it('does not finish a waiting step of another flow, or of an earlier attempt', async () => {
    parentWaiting({ flowId: 'other_flow' });
    child('SUCCEEDED', false);
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'parent-not-waiting' });
    parentWaiting();
    fake.set('parent', { attempt: 2 });
    expect(await completeSubflowStep('child', opts())).toEqual({ result: 'parent-not-waiting' });
  });

  it("waits for the parent's last drive to let go of its lease, and gives up with ParentLeaseBusy", async () => {
    parentWaiting();
    child('SUCCEEDED', false);
    fake.leases.set('parent', { holder: 'worker-b', expiresAt: Date.now() + 60000 });
    setTimeout(() => fake.leases.delete('parent'), 30);
    expect(await completeSubflowStep('child', { ...opts(), leaseAttempts: 10 })).toMatchObject({ result: 'reported' });

    fake.set('parent', { results: { call_child: { status: 'RUNNING', attempt: 1 } } });
    fake.leases.set('parent', { holder: 'worker-b', expiresAt: Date.now() + 60000 });
    await expect(completeSubflowStep('child', { ...opts(), leaseAttempts: 3 })).rejects.toBeInstanceOf(ParentLeaseBusy);
  });

  it('takes the output of the last step that succeeded', () => {
    fake.addRun('c', [{ name: 'a', type: 'x', settings: {} }, { name: 'b', type: 'x', settings: {} }], {
      results: { a: { status: 'SUCCEEDED', attempt: 1, output: 'A' } },
    });
    expect(lastOutput(fake.run('c'))).toBe('A');
    fake.addRun('d', [], {});
    expect(lastOutput(fake.run('d'))).toBeNull();
  });
});
