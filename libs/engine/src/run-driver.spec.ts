import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FlowStep } from '@flowruns/contracts';
import { CommandServiceError } from './command-port';
import { FakeCommandService } from './fake-command-service.spec-helpers';
import { RunDriver, type RunDriverOptions, type StepExecutionOutcome } from './run-driver';
import { defaultExecutors, parseAllowList } from './steps';
import type { StepOutcome } from './steps/types';

process.env.LOG_LEVEL ??= 'silent';

/** The driver against a fake command service (the port) and a local HTTP target (the outside world). */
describe('RunDriver', () => {
  let server: http.Server;
  let target: string;
  const hits: { method: string; url: string; body: string }[] = [];
  const count = (url: string) => hits.filter((h) => h.url === url).length;
  let flaky = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        hits.push({ method: req.method ?? '', url: req.url ?? '', body });
        const json = (status: number, b: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(b));
        if (req.url === '/customers/42') return json(200, { id: 42, name: 'Ada' });
        if (req.url === '/flaky') return ++flaky === 1 ? json(503, { error: 'try later' }) : json(200, { ok: 'second time' });
        return json(200, { echo: body ? JSON.parse(body) : null, path: req.url });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  let fake: FakeCommandService;
  const executed: { stepName: string; stepType: string; outcome: StepExecutionOutcome }[] = [];
  beforeEach(() => {
    fake = new FakeCommandService();
    executed.length = 0;
    hits.length = 0;
    flaky = 0;
  });

  const driver = (over: Partial<RunDriverOptions> = {}) =>
    new RunDriver({
      client: fake,
      workerId: 'worker-a',
      leaseTtlMs: 3000,
      flowTimeoutSeconds: 600,
      // The target is on loopback, which the http step's SSRF guard blocks unless allowed.
      executors: defaultExecutors({ timeoutMs: 2000, allow: parseAllowList('127.0.0.1') }),
      hooks: { onStepExecuted: (e) => executed.push({ stepName: e.stepName, stepType: e.stepType, outcome: e.outcome }) },
      ...over,
    });
  const step = (name: string, type: string, settings: Record<string, unknown> = {}): FlowStep => ({ name, type, settings });

  it('runs every step in order, reporting start and finish with resolved input, output and duration, then succeeds', async () => {
    fake.addRun('run1', [
      step('fetch', 'http', { method: 'GET', url: `${target}/customers/{{trigger.customerId}}` }),
      step('shape', 'transform', { value: { name: '{{steps.fetch.output.body.name}}', greeting: 'Hello {{steps.fetch.output.body.name}}!', id: '{{trigger.customerId}}' } }),
      step('notify', 'http', { method: 'POST', url: `${target}/notify`, body: '{{steps.shape.output}}' }),
    ], { trigger: { customerId: 42 } });

    const result = await driver().drive('run1');

    expect(result).toEqual({ outcome: 'succeeded', stepsExecuted: 3 });
    expect(fake.ops('run1')).toEqual([
      'lease', 'execution',
      'start:fetch', 'finish:fetch',
      'start:shape', 'finish:shape',
      'start:notify', 'finish:notify',
      'succeed', 'release',
    ]);
    expect(fake.bodyOf('start', 'fetch')).toEqual({ stepType: 'http', workerId: 'worker-a' });
    expect(fake.bodyOf('finish', 'fetch')).toMatchObject({
      status: 'SUCCEEDED',
      input: { method: 'GET', url: `${target}/customers/42` },
      output: { status: 200, body: { id: 42, name: 'Ada' } },
      durationMs: expect.any(Number),
      workerId: 'worker-a',
    });
    expect(fake.bodyOf('finish', 'shape')).toMatchObject({ output: { name: 'Ada', greeting: 'Hello Ada!', id: 42 } });
    expect(JSON.parse(hits.find((h) => h.url === '/notify')!.body)).toEqual({ name: 'Ada', greeting: 'Hello Ada!', id: 42 });
    expect(fake.run('run1').status).toBe('SUCCEEDED');
    expect(fake.leases.has('run1')).toBe(false);
    expect(executed.map((e) => `${e.stepType}:${e.outcome}`)).toEqual(['http:succeeded', 'transform:succeeded', 'http:succeeded']);
  });

  it('fails the run at a failing step, with failedStepName, and runs nothing after it', async () => {
    fake.addRun('run1', [
      step('first', 'transform', { value: 1 }),
      step('boom', 'fail', { message: 'v1 is broken' }),
      step('never', 'http', { method: 'GET', url: `${target}/never` }),
    ]);
    const result = await driver().drive('run1');
    expect(result.outcome).toBe('failed');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:first', 'finish:first', 'start:boom', 'finish:boom', 'fail:boom', 'release']);
    expect(fake.bodyOf('finish', 'boom')).toMatchObject({ status: 'FAILED', error: { message: 'v1 is broken' }, input: { message: 'v1 is broken' } });
    expect(fake.bodyOf('fail')).toEqual({ failedStepName: 'boom', workerId: 'worker-a' });
    expect(count('/never')).toBe(0);
  });

  it('resumes a retried run at the failed step: steps that succeeded before are not executed again', async () => {
    fake.addRun('run1', [
      step('first', 'http', { method: 'POST', url: `${target}/first-once` }),
      step('flaky', 'http', { method: 'GET', url: `${target}/flaky` }),
      step('after', 'transform', { value: '{{steps.first.output.body.path}} then {{steps.flaky.output.body.ok}}' }),
    ]);
    expect((await driver().drive('run1')).outcome).toBe('failed');
    expect(fake.bodyOf('finish', 'flaky')).toMatchObject({ status: 'FAILED', error: { status: 503 } });

    fake.retryFromFailedStep('run1'); // FROM_FAILED_STEP: RUNNING again, attempt 2, results kept
    fake.calls.length = 0;
    const result = await driver().drive('run1');

    expect(result).toEqual({ outcome: 'succeeded', stepsExecuted: 2 });
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:flaky', 'finish:flaky', 'start:after', 'finish:after', 'succeed', 'release']);
    expect(count('/first-once')).toBe(1);
    expect(count('/flaky')).toBe(2);
    // The earlier step's output still feeds the templates.
    expect(fake.bodyOf('finish', 'after')).toMatchObject({ output: '/first-once then second time' });
  });

  it('runs nothing when another worker holds the lease', async () => {
    fake.addRun('run1', [step('x', 'http', { method: 'GET', url: `${target}/x` })]);
    fake.leases.set('run1', { holder: 'worker-b', expiresAt: Date.now() + 10000 });
    const result = await driver().drive('run1');
    expect(result).toEqual({ outcome: 'not-acquired', stepsExecuted: 0 });
    expect(fake.ops('run1')).toEqual(['lease']);
    expect(count('/x')).toBe(0);
    expect(fake.leases.get('run1')?.holder).toBe('worker-b');
  });

  it('stops quietly when a report is refused with 409 (the run was cancelled): no further step, no fail, lease released', async () => {
    fake.addRun('run1', [step('a', 'transform', { value: 1 }), step('b', 'http', { method: 'GET', url: `${target}/b` })]);
    fake.refuse = (c) => {
      if (c.op === 'finish' && c.stepName === 'a') {
        fake.set('run1', { status: 'STOPPED' });
        return new CommandServiceError(409, 'INVALID_TRANSITION', { status: 'STOPPED' });
      }
      return undefined;
    };
    const result = await driver().drive('run1');
    expect(result).toMatchObject({ outcome: 'stopped', detail: 'INVALID_TRANSITION' });
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:a', 'finish:a', 'release']);
    expect(count('/b')).toBe(0);
  });

  it('stops quietly on 409 LEASE_LOST and leaves the lease to its new holder', async () => {
    fake.addRun('run1', [step('a', 'transform', { value: 1 }), step('b', 'transform', { value: 2 })]);
    fake.refuse = (c) => {
      if (c.op === 'start' && c.stepName === 'b') {
        fake.leases.set('run1', { holder: 'worker-b', expiresAt: Date.now() + 10000 });
        return undefined; // the fake's fencing answers LEASE_LOST
      }
      return undefined;
    };
    const result = await driver().drive('run1');
    expect(result.outcome).toBe('lease-lost');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:a', 'finish:a', 'start:b']);
    expect(fake.leases.get('run1')?.holder).toBe('worker-b');
  });

  it('pauses at an approval step and stops driving; after the resume it goes on from the next step', async () => {
    fake.addRun('run1', [
      step('before', 'transform', { value: 'x' }),
      step('approve', 'approval'),
      step('after', 'transform', { value: 'comment: {{steps.approve.output.comment}}' }),
    ]);
    expect((await driver().drive('run1')).outcome).toBe('paused');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:before', 'finish:before', 'start:approve', 'pause:approve', 'release']);
    expect(fake.bodyOf('pause')).toEqual({ stepName: 'approve', workerId: 'worker-a' });
    expect(fake.run('run1').status).toBe('PAUSED');
    expect(await driver().drive('run1')).toMatchObject({ outcome: 'not-acquired', stepsExecuted: 0 });

    fake.resume('run1', { approved: true, comment: 'Looks good!' });
    fake.calls.length = 0;
    expect((await driver().drive('run1')).outcome).toBe('succeeded');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:after', 'finish:after', 'succeed', 'release']);
    expect(fake.bodyOf('finish', 'after')).toMatchObject({ output: 'comment: Looks good!' });
  });

  it('starts a subflow step, triggers the child with this run as parent, and stops; a later drive keeps waiting', async () => {
    fake.addRun('run1', [
      step('call_child', 'subflow', { flowId: 'flow_child', payload: { from: '{{trigger.who}}' }, failParentOnFailure: true }),
      step('never', 'http', { method: 'GET', url: `${target}/never` }),
    ], { trigger: { who: 'parent' }, projectId: 'proj_9' });
    expect((await driver().drive('run1')).outcome).toBe('waiting');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:call_child', 'trigger', 'release']);
    expect(fake.children).toEqual([
      { id: 'child_1', flowId: 'flow_child', req: { projectId: 'proj_9', payload: { from: 'parent' }, parentRunId: 'run1', failParentOnFailure: true, triggeredBy: null } },
    ]);
    expect(fake.run('run1').results.call_child.status).toBe('RUNNING');

    fake.calls.length = 0;
    expect(await driver().drive('run1')).toEqual({ outcome: 'waiting', stepsExecuted: 0 });
    expect(fake.children).toHaveLength(1);
    expect(count('/never')).toBe(0);
  });

  it('fails the subflow step (and the run) when the child cannot be started', async () => {
    fake.addRun('run1', [step('call_child', 'subflow', { flowId: 'flow_missing' })]);
    fake.refuse = (c) => (c.op === 'trigger' ? new CommandServiceError(404, 'ENTITY_NOT_FOUND', { entityType: 'flow' }) : undefined);
    expect((await driver().drive('run1')).outcome).toBe('failed');
    expect(fake.bodyOf('finish', 'call_child')).toMatchObject({ status: 'FAILED', error: { status: 404, code: 'ENTITY_NOT_FOUND' } });
    expect(fake.bodyOf('fail')).toMatchObject({ failedStepName: 'call_child' });
  });

  it('fails the run when the waiting subflow step was finished FAILED (its child failed it)', async () => {
    fake.addRun('run1', [step('call_child', 'subflow', { flowId: 'f' }), step('never', 'transform', { value: 1 })], {
      results: { call_child: { status: 'FAILED', attempt: 1 } },
    });
    expect(await driver().drive('run1')).toEqual({ outcome: 'failed', stepsExecuted: 0 });
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'fail:call_child', 'release']);
  });

  it('goes on after a subflow step that succeeded, with the child result as its output', async () => {
    fake.addRun('run1', [step('call_child', 'subflow', { flowId: 'f' }), step('then', 'transform', { value: '{{steps.call_child.output.status}}' })], {
      results: { call_child: { status: 'SUCCEEDED', attempt: 1, output: { status: 'FAILED', output: null } } },
    });
    expect((await driver().drive('run1')).outcome).toBe('succeeded');
    expect(fake.bodyOf('finish', 'then')).toMatchObject({ output: 'FAILED' });
  });

  it('runs a step again when its worker died in the middle of it (RUNNING, not a subflow)', async () => {
    fake.addRun('run1', [step('a', 'transform', { value: 1 }), step('b', 'http', { method: 'POST', url: `${target}/b` })], {
      results: { a: { status: 'SUCCEEDED', attempt: 1, output: 1 }, b: { status: 'RUNNING', attempt: 1 } },
    });
    expect((await driver().drive('run1')).outcome).toBe('succeeded');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:b', 'finish:b', 'succeed', 'release']);
    expect(count('/b')).toBe(1);
  });

  it('times out a run past its maximum execution time before the next step, executing nothing', async () => {
    fake.addRun('run1', [step('a', 'http', { method: 'GET', url: `${target}/a` })], {
      startTime: new Date(Date.now() - 601_000).toISOString(),
    });
    expect(await driver().drive('run1')).toEqual({ outcome: 'timed-out', stepsExecuted: 0 });
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'time-out', 'release']);
    expect(fake.bodyOf('time-out')).toEqual({ reason: 'EXECUTION_TIME' });
    expect(count('/a')).toBe(0);
  });

  it('counts the execution time from when the run last entered RUNNING, never from an older start', async () => {
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    // The view says when (runningSince).
    fake.addRun('since', [step('a', 'transform', { value: 1 })], { startTime: hourAgo, runningSince: new Date().toISOString() });
    expect((await driver().drive('since')).outcome).toBe('succeeded');
    // The event that caused the drive says when (a resume just now).
    fake.addRun('hinted', [step('a', 'transform', { value: 1 })], { startTime: hourAgo });
    expect((await driver().drive('hinted', { runningSince: new Date().toISOString() })).outcome).toBe('succeeded');
    // Nobody says, and the run was retried: startTime is not when it re-entered RUNNING, so the
    // supervisor (which knows) is left to judge.
    fake.addRun('retried', [step('a', 'transform', { value: 1 })], { startTime: hourAgo, attempt: 2 });
    expect((await driver().drive('retried')).outcome).toBe('succeeded');
    // ... likewise after a resume.
    fake.addRun('resumed', [step('ok', 'approval'), step('a', 'transform', { value: 1 })], {
      startTime: hourAgo,
      results: { ok: { status: 'SUCCEEDED', attempt: 1, output: {} } },
    });
    expect((await driver().drive('resumed')).outcome).toBe('succeeded');
    // An old hint does time it out.
    fake.addRun('late', [step('a', 'transform', { value: 1 })], { startTime: hourAgo, attempt: 2 });
    expect((await driver().drive('late', { runningSince: hourAgo })).outcome).toBe('timed-out');
  });

  it('cuts a step short when the maximum execution time passes during it, and records the timeout instead of a finish', async () => {
    fake.addRun('run1', [step('wait', 'delay', { ms: 10000 }), step('after', 'transform', { value: 1 })], {
      startTime: new Date(Date.now() - 1000).toISOString(),
    });
    const started = Date.now();
    const result = await driver({ flowTimeoutSeconds: 1.2 }).drive('run1');
    expect(result).toEqual({ outcome: 'timed-out', stepsExecuted: 1 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:wait', 'time-out', 'release']);
    expect(fake.run('run1').status).toBe('TIMEOUT');
  });

  it('treats a 409 to its own timeout report as fine (the supervisor recorded it first)', async () => {
    fake.addRun('run1', [step('a', 'transform', { value: 1 })], { startTime: new Date(Date.now() - 700_000).toISOString() });
    fake.refuse = (c) => (c.op === 'time-out' ? new CommandServiceError(409, 'INVALID_TRANSITION') : undefined);
    expect((await driver().drive('run1')).outcome).toBe('timed-out');
  });

  it('does nothing for a run that is not RUNNING or does not exist (the command service leases neither)', async () => {
    fake.addRun('done', [step('a', 'transform')], { status: 'SUCCEEDED' });
    expect((await driver().drive('done')).outcome).toBe('not-acquired');
    expect(fake.ops('done')).toEqual(['lease']);
    expect(await driver().drive('ghost')).toMatchObject({ outcome: 'not-acquired', detail: 'ENTITY_NOT_FOUND' });
  });

  it('does nothing for a run that stopped running between the lease and the read', async () => {
    fake.addRun('run1', [step('a', 'transform')]);
    fake.refuse = (c) => (c.op === 'execution' ? (fake.set('run1', { status: 'STOPPED' }), undefined) : undefined);
    expect((await driver().drive('run1')).outcome).toBe('not-running');
    expect(fake.ops('run1')).toEqual(['lease', 'execution', 'release']);
  });

  it('fails a step of an unknown type', async () => {
    fake.addRun('run1', [step('x', 'teleport', {})]);
    expect((await driver().drive('run1')).outcome).toBe('failed');
    expect(fake.bodyOf('finish', 'x')).toMatchObject({ status: 'FAILED', error: { message: 'unknown step type "teleport"' } });
  });

  it('fails the step, not the engine, when an executor throws', async () => {
    fake.addRun('run1', [step('x', 'weird', {})]);
    const executors = { weird: async () => { throw new TypeError('boom'); } };
    expect((await driver({ executors }).drive('run1')).outcome).toBe('failed');
    expect(fake.bodyOf('finish', 'x')).toMatchObject({ status: 'FAILED', error: { message: 'step crashed: boom' } });
  });

  it('records a step whose output is too large to record as failed', async () => {
    fake.addRun('run1', [step('x', 'transform', { value: 'big' })]);
    let refused = false;
    fake.refuse = (c) => {
      if (c.op === 'finish' && !refused) {
        refused = true;
        return new CommandServiceError(413, 'PAYLOAD_TOO_LARGE', { limit: '5mb' });
      }
      return undefined;
    };
    expect((await driver().drive('run1')).outcome).toBe('failed');
    const finishes = fake.calls.filter((c) => c.op === 'finish').map((c) => c.body);
    expect(finishes[1]).toMatchObject({ status: 'FAILED', error: { message: 'step output too large to record' } });
  });

  it.each(['SUCCEEDED', 'FAILED'])('records a step whose %s result the command service refuses to store as failed, without the result', async (status) => {
    const executors = {
      odd: async (): Promise<StepOutcome> =>
        status === 'SUCCEEDED' ? { kind: 'succeeded', output: { text: 'nul \u0000' } } : { kind: 'failed', error: { message: 'nul \u0000' } },
    };
    fake.addRun('run1', [step('x', 'odd', {}), step('y', 'transform', { value: 1 })]);
    let refused = false;
    fake.refuse = (c) => {
      if (c.op === 'finish' && !refused) {
        refused = true;
        return new CommandServiceError(400, 'VALIDATION', { field: 'body', path: 'output.text' });
      }
      return undefined;
    };
    expect((await driver({ executors }).drive('run1')).outcome).toBe('failed');
    const finishes = fake.calls.filter((c) => c.op === 'finish').map((c) => c.body);
    expect(finishes).toHaveLength(2);
    expect(finishes[1]).toEqual({
      status: 'FAILED',
      error: { message: expect.stringMatching(/^step result cannot be recorded/), code: 'VALIDATION' },
      durationMs: expect.any(Number),
      workerId: expect.any(String),
    });
    expect(fake.ops('run1')).not.toContain('start:y');
  });

  it('leaves the run for a later drive when the command service is unavailable (no INTERNAL_ERROR)', async () => {
    const { CommandServiceUnavailable } = await import('./command-port');
    fake.addRun('run1', [step('a', 'transform', { value: 1 })]);
    fake.refuse = (c) => (c.op === 'start' ? new CommandServiceUnavailable('ECONNREFUSED') : undefined);
    expect((await driver().drive('run1')).outcome).toBe('error');
    expect(fake.ops('run1')).not.toContain('internal-error');
    expect(fake.ops('run1').at(-1)).toBe('lease'); // handed over for a later drive
    expect(fake.run('run1').status).toBe('RUNNING');
  });

  it('records INTERNAL_ERROR for a running run whose execution data is gone', async () => {
    fake.addRun('run1', [step('a', 'transform')], { purged: true, trigger: null });
    expect((await driver().drive('run1')).outcome).toBe('internal-error');
    expect(fake.run('run1').status).toBe('INTERNAL_ERROR');
  });

  describe('leases and draining', () => {
    it('renews the lease while a step runs', async () => {
      fake.addRun('run1', [step('wait', 'delay', { ms: 450 })]);
      expect((await driver({ leaseTtlMs: 300 }).drive('run1')).outcome).toBe('succeeded');
      expect(fake.ops('run1').filter((o) => o === 'lease').length).toBeGreaterThanOrEqual(3);
    });

    it('abandons the step in flight when the lease goes to another worker, without reporting it or releasing', async () => {
      fake.addRun('run1', [step('wait', 'delay', { ms: 5000 }), step('after', 'transform')]);
      setTimeout(() => fake.leases.set('run1', { holder: 'worker-b', expiresAt: Date.now() + 60000 }), 150);
      const started = Date.now();
      expect(await driver({ leaseTtlMs: 300 }).drive('run1')).toEqual({ outcome: 'lease-lost', stepsExecuted: 1 });
      expect(Date.now() - started).toBeLessThan(1500);
      expect(fake.ops('run1').filter((o) => o !== 'lease')).toEqual(['execution', 'start:wait']);
      expect(fake.leases.get('run1')?.holder).toBe('worker-b');
    });

    it('abandons the step in flight when the lease cannot be renewed before it would expire', async () => {
      fake.addRun('run1', [step('wait', 'delay', { ms: 5000 })]);
      const { CommandServiceUnavailable } = await import('./command-port');
      let leases = 0;
      fake.refuse = (c) => (c.op === 'lease' && ++leases > 1 ? new CommandServiceUnavailable('down') : undefined);
      expect((await driver({ leaseTtlMs: 300 }).drive('run1')).outcome).toBe('lease-lost');
      expect(fake.ops('run1')).not.toContain('finish:wait');
    });

    it('stops at the next step boundary when draining: the step in hand finishes and is reported', async () => {
      fake.addRun('run1', [step('wait', 'delay', { ms: 200 }), step('after', 'transform')]);
      const drain = new AbortController();
      setTimeout(() => drain.abort(), 50);
      expect(await driver().drive('run1', { drain: drain.signal })).toEqual({ outcome: 'interrupted', stepsExecuted: 1 });
      // Handed over, not deleted: a lease about to expire is what claim-expired gives to a live worker.
      expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:wait', 'finish:wait', 'lease']);
      expect(fake.calls.at(-1)?.body).toEqual({ workerId: 'worker-a', ttlMs: 1000 });
      expect(fake.run('run1').status).toBe('RUNNING');
      fake.now = () => Date.now() + 1001;
      expect(await fake.claimExpired('worker-b', 3000, 10)).toEqual(['run1']);
    });

    it('abandons the step in flight past the shutdown deadline, and hands the lease over to another worker', async () => {
      fake.addRun('run1', [step('wait', 'delay', { ms: 5000 })]);
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 50);
      expect((await driver().drive('run1', { abort: abort.signal })).outcome).toBe('interrupted');
      expect(fake.ops('run1')).toEqual(['lease', 'execution', 'start:wait', 'lease']);
      expect(fake.calls.at(-1)?.body).toEqual({ workerId: 'worker-a', ttlMs: 1000 });
      expect(fake.run('run1').results.wait.status).toBe('RUNNING');
    });
  });
});
