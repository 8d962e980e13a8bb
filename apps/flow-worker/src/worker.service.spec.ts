import type { CommandResult, FinishStepRequest, FlowRun, LeaseResult } from '@flowruns/contracts';
import { CommandServiceUnavailable, type CommandServicePort, type RunExecutionView } from '@flowruns/engine';
import type { Admin, Kafka, MessageBatch } from '@flowruns/messaging';
import { waitFor } from '@flowruns/testing';
import { loadFlowWorkerConfig } from './config';
import { WorkerService } from './worker.service';

process.env.LOG_LEVEL ??= 'silent';

/** Just enough of the command service for the batch handler: leases, views, reports. */
class StubCommandService implements CommandServicePort {
  runs = new Map<string, RunExecutionView>();
  leases = new Map<string, { holder: string; expiresAt: number }>();
  calls: string[] = [];
  down = false;

  add(runId: string, over: Partial<RunExecutionView> = {}): void {
    this.runs.set(runId, {
      runId, projectId: 'p', flowId: 'f', flowVersionId: 'v', status: 'RUNNING', attempt: 1, startTime: new Date().toISOString(),
      parentRunId: null, failParentOnFailure: false, steps: [{ name: 's', type: 'transform', settings: { value: 1 } }],
      trigger: {}, results: {}, pause: null, purged: false, ...over,
    });
  }
  private touch(op: string, runId: string) {
    this.calls.push(`${op}:${runId}`);
    if (this.down) throw new CommandServiceUnavailable('down');
  }
  private ok(runId: string): CommandResult {
    return { runId, version: 1, status: this.runs.get(runId)?.status ?? null, eventsAppended: 1 };
  }
  async getExecution(runId: string) {
    this.touch('execution', runId);
    const r = this.runs.get(runId);
    return r ? structuredClone(r) : null;
  }
  async acquireLease(runId: string, workerId: string, ttlMs: number): Promise<LeaseResult> {
    this.touch('lease', runId);
    const held = this.leases.get(runId);
    if (this.runs.get(runId)?.status !== 'RUNNING') return { acquired: false, holder: null, expiresAt: null };
    if (held && held.holder !== workerId && held.expiresAt > Date.now()) return { acquired: false, holder: held.holder, expiresAt: null };
    this.leases.set(runId, { holder: workerId, expiresAt: Date.now() + ttlMs });
    return { acquired: true, holder: workerId, expiresAt: null };
  }
  async releaseLease(runId: string) {
    this.touch('release', runId);
    this.leases.delete(runId);
  }
  async claimExpired() {
    return [];
  }
  async startStep(runId: string, stepName: string) {
    this.touch('start', runId);
    const r = this.runs.get(runId)!;
    r.results[stepName] = { status: 'RUNNING', attempt: 1 };
    return this.ok(runId);
  }
  async finishStep(runId: string, stepName: string, req: FinishStepRequest) {
    this.touch('finish', runId);
    const r = this.runs.get(runId)!;
    r.results[stepName] = { status: req.status, attempt: 1, output: req.output };
    return this.ok(runId);
  }
  async pause(runId: string) {
    return this.ok(runId);
  }
  async succeed(runId: string) {
    this.touch('succeed', runId);
    this.runs.get(runId)!.status = 'SUCCEEDED';
    return this.ok(runId);
  }
  async fail(runId: string) {
    this.runs.get(runId)!.status = 'FAILED';
    return this.ok(runId);
  }
  async timeOut(runId: string) {
    return this.ok(runId);
  }
  async internalError(runId: string) {
    return this.ok(runId);
  }
  async triggerRun(): Promise<FlowRun> {
    throw new Error('not used');
  }
}

const msg = (type: string, subject: string, data: Record<string, unknown>, offset = '0') => ({
  topic: 't',
  partition: 0,
  offset,
  key: subject,
  headers: {},
  value: Buffer.from(
    JSON.stringify({
      specversion: '1.0', id: `e_${offset}`, type, source: 'flow-runs/command-service', time: new Date().toISOString(), subject,
      projectId: 'p', flowId: 'f', seq: 1, datacontenttype: 'application/json', data,
    }),
  ),
});
const triggered = (runId: string, parentRunId: string | null = null) =>
  msg('flowrun.triggered.v1', runId, {
    flowVersionId: 'v', flowDisplayName: 'f', environment: 'PRODUCTION', triggeredBy: null, tags: [], stepsCount: 1,
    parentRunId, failParentOnFailure: false, retryOf: null, triggerDataRef: 'exd', logsFileId: null,
  });
const batchOf = (...messages: ReturnType<typeof msg>[]): MessageBatch => ({ topic: 't', partition: 0, messages, isRunning: () => true });

describe('WorkerService.handleBatch', () => {
  let stub: StubCommandService;
  let worker: WorkerService;

  beforeEach(() => {
    stub = new StubCommandService();
    const config = loadFlowWorkerConfig({ FLOW_WORKER_LEASE_TTL_MS: '3000', FLOW_WORKER_CONCURRENCY: '2' });
    worker = new WorkerService(config, {} as Kafka, {} as Admin, stub);
  });
  afterEach(async () => {
    await worker.beforeApplicationShutdown();
  });

  it('returns once the drives hold their leases, then drives them in the background', async () => {
    stub.add('r1');
    stub.add('r2');
    stub.add('r3');
    // Drives block until the test lets them go: the handler must not wait for them.
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const original = stub.getExecution.bind(stub);
    stub.getExecution = async (runId) => {
      await gate;
      return original(runId);
    };
    await worker.handleBatch(
      batchOf(triggered('r1'), triggered('r2'), triggered('r3'), msg('flowrun.teleported.v1', 'r1', {}), {
        ...msg('x', 'r1', {}),
        value: Buffer.from('not json'),
      }),
    );
    for (const r of ['r1', 'r2', 'r3']) expect(stub.leases.get(r)?.holder).toBe(worker.workerId);
    expect(worker.status()).toMatchObject({ active: 2, queued: 1 }); // concurrency 2
    expect([...stub.runs.values()].every((r) => r.status === 'RUNNING')).toBe(true);
    letGo();
    await waitFor(() => ['r1', 'r2', 'r3'].every((r) => stub.runs.get(r)?.status === 'SUCCEEDED'), { timeoutMs: 5000 });
    await waitFor(() => stub.leases.size === 0, { timeoutMs: 2000 });
  });

  it('schedules a run that another worker holds no more than a few tries, and drives nothing then', async () => {
    stub.add('r1');
    stub.leases.set('r1', { holder: 'other', expiresAt: Date.now() + 60000 });
    await worker.handleBatch(batchOf(triggered('r1')));
    expect(stub.calls.filter((c) => c === 'lease:r1').length).toBe(4);
    expect(stub.calls).not.toContain('execution:r1');
  });

  it('does not drive a run that is not running', async () => {
    stub.add('r1', { status: 'SUCCEEDED' });
    await worker.handleBatch(batchOf(triggered('r1')));
    expect(stub.calls).toEqual(['lease:r1']);
  });

  it('throws (the batch is delivered again) when the command service is unreachable', async () => {
    stub.add('r1');
    stub.down = true;
    await expect(worker.handleBatch(batchOf(triggered('r1')))).rejects.toBeInstanceOf(CommandServiceUnavailable);
  });

  it('finishes the waiting subflow step of a parent when its child ends', async () => {
    stub.add('parent', {
      steps: [{ name: 'call', type: 'subflow', settings: { flowId: 'f' } }],
      results: { call: { status: 'RUNNING', attempt: 1 } },
    });
    stub.add('child', { status: 'SUCCEEDED', parentRunId: 'parent', results: { s: { status: 'SUCCEEDED', attempt: 1, output: 7 } } });
    await worker.handleBatch(batchOf(msg('flowrun.succeeded.v1', 'child', { durationMs: 1 })));
    expect(stub.runs.get('parent')?.results.call).toEqual({ status: 'SUCCEEDED', attempt: 1, output: { status: 'SUCCEEDED', output: 7 } });
  });

  it('skips the lookup for an ended run it saw triggered without a parent', async () => {
    stub.add('r1', { status: 'SUCCEEDED' });
    await worker.handleBatch(batchOf(triggered('r1'), msg('flowrun.succeeded.v1', 'r1', { durationMs: 1 }, '1')));
    expect(stub.calls).toEqual(['lease:r1']);
  });
});
