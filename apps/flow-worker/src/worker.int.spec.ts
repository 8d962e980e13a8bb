import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { INTERNAL_TOKEN_HEADER, type RunExecution } from '@flowruns/contracts';
import { createTestDatabase, freePort, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { loadFlowWorkerConfig } from './config';
import { WorkerModule } from './worker.module';

/**
 * The worker against the real command service (the built app, as its own process, on a fresh
 * database), the real projector, and a real Kafka broker; the workers run in this process. Flow
 * steps call a local HTTP target, standing in for the outside world.
 *
 * Needs `npm run build` first (for `dist/apps/command-service` and `dist/apps/projector`).
 */

const root = path.resolve(__dirname, '../../..');
process.env.LOG_LEVEL = 'silent';

interface Proc {
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a built app as a process and waits until it is ready. */
async function spawnApp(name: string, portVar: string, env: Record<string, string>): Promise<Proc> {
  const main = path.join(root, 'dist/apps', name, 'src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` before this test`);
  const port = await freePort();
  let out = '';
  const child = spawn(process.execPath, [main], {
    cwd: root,
    env: { ...process.env, ...env, [portVar]: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  child.stderr?.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  const url = `http://127.0.0.1:${port}`;
  const proc: Proc = {
    url,
    child,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${out}`);
      return (await fetch(`${url}/health/ready`).catch(() => null))?.ok === true;
    },
    { timeoutMs: 60000, intervalMs: 200, what: `${name} ready` },
  ).catch((e) => {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- ${name} output ---\n${out}`);
  });
  return proc;
}

/** A local HTTP target that counts its calls; a few paths answer specially. */
async function startTarget() {
  const calls: { method: string; url: string; body: string }[] = [];
  let flaky = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', body });
      const json = (status: number, b: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(b));
      if (req.url === '/customers/42') return json(200, { id: 42, name: 'Ada' });
      if (req.url === '/flaky') return ++flaky === 1 ? json(503, { error: 'try later' }) : json(200, { ok: 'second time' });
      let echo: unknown = body || null;
      try {
        echo = body ? JSON.parse(body) : null;
      } catch {
        // a text body: echoed as it came
      }
      json(200, { echo, path: req.url });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    calls,
    count: (p: string) => calls.filter((c) => c.url === p).length,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

describe('flow worker against the command service, projector and Kafka', () => {
  const projectId = 'proj_worker_it';
  const token = `it-${uniqueName('token')}`;
  const topic = uniqueName('it-worker-runs');
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let commandService: Proc;
  let projector: Proc;
  let target: Awaited<ReturnType<typeof startTarget>>;
  const workers: INestApplication[] = [];

  /** A worker in this process, as main.ts wires it, listening on a free port. */
  async function startWorker(env: Record<string, string> = {}): Promise<INestApplication> {
    const config = loadFlowWorkerConfig({
      ...process.env,
      KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
      KAFKA_TOPIC: topic,
      KAFKA_TOPIC_PARTITIONS: '3',
      COMMAND_SERVICE_URL: commandService.url,
      INTERNAL_API_TOKEN: token,
      FLOW_WORKER_GROUP_ID: uniqueName('it-worker'),
      FLOW_WORKER_LEASE_TTL_MS: '3000',
      // The target is on 127.0.0.1, which the http step's SSRF guard blocks unless allowed.
      FLOW_WORKER_HTTP_ALLOW_PRIVATE: '127.0.0.1',
      ...env,
    });
    @Module({ imports: [WorkerModule.forConfig(config)] })
    class TestWorkerModule {}
    const app = await NestFactory.create(TestWorkerModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.ok === true, { timeoutMs: 30000, what: 'worker ready' });
    workers.push(app);
    return app;
  }

  async function stopWorker(app: INestApplication): Promise<void> {
    workers.splice(workers.indexOf(app), 1);
    await app.close();
  }

  const internal = async <T = Record<string, unknown>>(method: 'GET' | 'POST', p: string, body?: unknown) => {
    const res = await fetch(`${commandService.url}${p}`, {
      method,
      headers: { [INTERNAL_TOKEN_HEADER]: token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const createFlow = async (steps: unknown[]) => {
    const r = await internal<{ id: string }>('POST', '/internal/flows', { projectId, displayName: 'it flow', steps });
    expect({ status: r.status, body: r.status < 300 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id;
  };
  const trigger = async (flowId: string, payload: unknown = {}) => {
    const r = await internal<{ id: string }>('POST', `/internal/flows/${flowId}/runs`, { projectId, payload });
    expect({ status: r.status, body: r.status < 300 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id;
  };
  const execution = async (runId: string) => (await internal<RunExecution>('GET', `/internal/runs/${runId}/execution`)).body;
  const waitForRun = (runId: string, accept: (r: RunExecution) => boolean, timeoutMs = 30000) => {
    let last: RunExecution | undefined;
    return waitFor(
      async () => {
        last = await execution(runId);
        return accept(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `run ${runId}` },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)?.slice(0, 1500)}`);
    });
  };
  const status = (s: string) => (r: RunExecution) => r.status === s;

  beforeAll(async () => {
    db = await createTestDatabase('worker');
    target = await startTarget();
    const env = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
      KAFKA_TOPIC: topic,
      KAFKA_TOPIC_PARTITIONS: '3',
      INTERNAL_API_TOKEN: token,
      RELAY_POLL_INTERVAL_MS: '100',
      SUPERVISOR_INTERVAL_MS: '500',
      PROJECTOR_GROUP_ID: uniqueName('it-projector'),
    };
    commandService = await spawnApp('command-service', 'COMMAND_SERVICE_PORT', env);
    projector = await spawnApp('projector', 'PROJECTOR_PORT', env);
  }, 120000);

  afterAll(async () => {
    for (const w of [...workers]) await w.close().catch(() => undefined);
    await projector?.stop();
    await commandService?.stop();
    await target?.close();
    await db?.drop();
  }, 60000);

  afterEach(async () => {
    for (const w of [...workers]) await stopWorker(w);
  });

  it('runs a 3-step flow (http, transform with templates, http) to SUCCEEDED; the views show it', async () => {
    await startWorker();
    const flowId = await createFlow([
      { name: 'fetch', type: 'http', settings: { method: 'GET', url: `${target.url}/customers/{{trigger.customerId}}` } },
      {
        name: 'shape',
        type: 'transform',
        settings: { value: { name: '{{steps.fetch.output.body.name}}', greeting: 'Hello {{steps.fetch.output.body.name}}!', id: '{{trigger.customerId}}' } },
      },
      { name: 'notify', type: 'http', settings: { method: 'POST', url: `${target.url}/notify`, body: '{{steps.shape.output}}' } },
    ]);
    const runId = await trigger(flowId, { customerId: 42 });

    const done = await waitForRun(runId, status('SUCCEEDED'));
    expect(done.results.fetch).toMatchObject({ status: 'SUCCEEDED', output: { status: 200, body: { id: 42, name: 'Ada' } } });
    expect(done.results.shape.output).toEqual({ name: 'Ada', greeting: 'Hello Ada!', id: 42 });
    expect(done.results.notify).toMatchObject({ status: 'SUCCEEDED', output: { status: 200, body: { echo: { name: 'Ada', greeting: 'Hello Ada!', id: 42 } } } });
    expect(target.count('/customers/42')).toBe(1);
    expect(target.count('/notify')).toBe(1);

    // The projector's views, built from the events the worker's reports produced.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const view = await waitFor(async () => {
        const r = await pg.query('select status, failed_step_name from run_views where id = $1', [runId]);
        return r.rows[0]?.status === 'SUCCEEDED' ? r.rows[0] : undefined;
      });
      expect(view).toEqual({ status: 'SUCCEEDED', failed_step_name: null });
      const steps = await waitFor(async () => {
        const r = await pg.query('select step_name, step_type, status, duration_ms from step_views where run_id = $1 order by position', [runId]);
        return r.rows.length === 3 && r.rows.every((s) => s.status === 'SUCCEEDED') ? r.rows : undefined;
      });
      expect(steps.map((s) => [s.step_name, s.step_type])).toEqual([['fetch', 'http'], ['shape', 'transform'], ['notify', 'http']]);
      for (const s of steps) expect(typeof s.duration_ms).toBe('number');
    } finally {
      await pg.end();
    }
  });

  it('fails the run at an http step whose destination the SSRF guard refuses, without calling it; the allowed target is called', async () => {
    // Allowed: 127.0.0.1 only (startWorker). 127.0.0.2 is loopback as well, and the metadata address link-local.
    await startWorker();
    const metadata = await createFlow([
      { name: 'ok', type: 'http', settings: { method: 'GET', url: `${target.url}/guard/ok` } },
      { name: 'metadata', type: 'http', settings: { method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' } },
      { name: 'never', type: 'http', settings: { method: 'GET', url: `${target.url}/guard/never` } },
    ]);
    const otherLoopback = await createFlow([{ name: 'call', type: 'http', settings: { method: 'GET', url: `${target.url.replace('127.0.0.1', '127.0.0.2')}/guard/x` } }]);
    const runs = [await trigger(metadata), await trigger(otherLoopback)];
    const [first, second] = await Promise.all(runs.map((id) => waitForRun(id, status('FAILED'))));
    expect(first.results.ok).toMatchObject({ status: 'SUCCEEDED' });
    expect(first.results.metadata).toMatchObject({ status: 'FAILED' });
    expect(first.results.never).toBeUndefined();
    expect(second.results.call).toMatchObject({ status: 'FAILED' });
    expect(target.count('/guard/ok')).toBe(1);
    expect(target.count('/guard/never')).toBe(0);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const errors = await pg.query<{ step_name: string; error: unknown }>(
        "select step_name, error from execution_data where run_id = any($1) and error is not null order by step_name",
        [runs],
      );
      expect(errors.rows).toEqual([
        { step_name: 'call', error: { message: `GET ${target.url.replace('127.0.0.1', '127.0.0.2')}/guard/x: destination 127.0.0.2 is not allowed (loopback address)` } },
        { step_name: 'metadata', error: { message: 'GET http://169.254.169.254/latest/meta-data/: destination 169.254.169.254 is not allowed (link-local address)' } },
      ]);
    } finally {
      await pg.end();
    }
  });

  it('with two workers that both see every event, each run is driven by one of them: every step executes once', async () => {
    // Different consumer groups: both workers receive every event and race for every run; only
    // the lease decides. (In one group, Kafka alone would keep them apart.)
    await startWorker();
    await startWorker();
    const flowId = await createFlow([
      { name: 'a', type: 'http', settings: { method: 'POST', url: `${target.url}/race/{{trigger.i}}/a` } },
      { name: 'wait', type: 'delay', settings: { ms: 200 } },
      { name: 'b', type: 'http', settings: { method: 'POST', url: `${target.url}/race/{{trigger.i}}/b`, body: '{{steps.a.output.body.path}}' } },
    ]);
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => trigger(flowId, { i })));
    for (const id of ids) await waitForRun(id, status('SUCCEEDED'));
    for (let i = 0; i < 8; i++) {
      expect(target.count(`/race/${i}/a`)).toBe(1);
      expect(target.count(`/race/${i}/b`)).toBe(1);
    }
  });

  it('fails a run at its failing step; a retry FROM_FAILED_STEP goes on from there without calling earlier steps again', async () => {
    await startWorker();
    const flowId = await createFlow([
      { name: 'first', type: 'http', settings: { method: 'POST', url: `${target.url}/first-once` } },
      { name: 'flaky', type: 'http', settings: { method: 'GET', url: `${target.url}/flaky` } },
    ]);
    const runId = await trigger(flowId);
    const failed = await waitForRun(runId, status('FAILED'));
    expect(failed.results.flaky).toMatchObject({ status: 'FAILED', attempt: 1 });

    const retry = await internal('POST', `/internal/runs/${runId}/retry`, { projectId, strategy: 'FROM_FAILED_STEP' });
    expect(retry.status).toBe(200);
    const done = await waitForRun(runId, (r) => r.status === 'SUCCEEDED' && r.attempt === 2);
    expect(done.results.flaky).toMatchObject({ status: 'SUCCEEDED', output: { status: 200, body: { ok: 'second time' } } });
    expect(target.count('/first-once')).toBe(1);
  });

  it('pauses at an approval and goes on after the resume; a subflow child that fails its parent fails it', async () => {
    await startWorker();
    const approvalFlow = await createFlow([
      { name: 'approve', type: 'approval', settings: {} },
      { name: 'after', type: 'transform', settings: { value: 'comment: {{steps.approve.output.comment}}' } },
    ]);
    const paused = await waitForRun(await trigger(approvalFlow), status('PAUSED'));
    const resume = await internal('POST', `/internal/runs/${paused.runId}/resume`, { requestId: paused.pause?.requestId, body: { comment: 'ok!' } });
    expect(resume.status).toBe(200);
    expect((await waitForRun(paused.runId, status('SUCCEEDED'))).results.after.output).toBe('comment: ok!');

    const child = await createFlow([{ name: 'nope', type: 'fail', settings: { message: 'child failed' } }]);
    const strict = await createFlow([
      { name: 'call_child', type: 'subflow', settings: { flowId: child, payload: { from: 'parent' }, failParentOnFailure: true } },
      { name: 'never', type: 'http', settings: { method: 'GET', url: `${target.url}/never` } },
    ]);
    const lenient = await createFlow([
      { name: 'call_child', type: 'subflow', settings: { flowId: child } },
      { name: 'then', type: 'transform', settings: { value: '{{steps.call_child.output.status}}' } },
    ]);
    const strictRun = await trigger(strict);
    await waitForRun(strictRun, status('FAILED'));
    // The command service fails the parent itself when such a child fails, at the waiting step.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const failedAt = await waitFor(async () => {
        const r = await pg.query("select failed_step_name from run_views where id = $1 and status = 'FAILED'", [strictRun]);
        return r.rows[0]?.failed_step_name as string | undefined;
      });
      expect(failedAt).toBe('call_child');
    } finally {
      await pg.end();
    }
    const l = await waitForRun(await trigger(lenient), status('SUCCEEDED'));
    expect(l.results.then.output).toBe('FAILED');
    expect(target.count('/never')).toBe(0);
  });

  it('stops driving a run cancelled during a step: the next step never runs', async () => {
    await startWorker();
    const flowId = await createFlow([
      { name: 'wait', type: 'delay', settings: { ms: 1500 } },
      { name: 'after', type: 'http', settings: { method: 'GET', url: `${target.url}/after-cancel` } },
    ]);
    const runId = await trigger(flowId);
    await waitForRun(runId, (r) => r.results.wait?.status === 'RUNNING');
    expect((await internal('POST', `/internal/runs/${runId}/stop`, { reason: 'test' })).status).toBe(200);
    await waitForRun(runId, status('STOPPED'));
    // Longer than the delay: the worker had its chance to (wrongly) go on.
    await new Promise((r) => setTimeout(r, 2500));
    const after = await execution(runId);
    expect(after.status).toBe('STOPPED');
    expect(after.results.after).toBeUndefined();
    expect(target.count('/after-cancel')).toBe(0);
  });

  it('a worker that shuts down in the middle of a long step hands its run over; another worker finishes it', async () => {
    // One group: the second worker starts from the first one's committed offsets, so it never sees
    // the run's events; only claim-expired can bring the run to it.
    const group = uniqueName('it-worker-handover');
    const leaving = await startWorker({ FLOW_WORKER_SHUTDOWN_TIMEOUT_MS: '0', FLOW_WORKER_GROUP_ID: group });
    const flowId = await createFlow([
      { name: 'a', type: 'http', settings: { method: 'POST', url: `${target.url}/handover/a` } },
      { name: 'wait', type: 'delay', settings: { ms: 3000 } },
      { name: 'b', type: 'http', settings: { method: 'POST', url: `${target.url}/handover/b` } },
    ]);
    const runId = await trigger(flowId);
    await waitForRun(runId, (r) => r.results.wait?.status === 'RUNNING');
    await stopWorker(leaving); // past its (zero) deadline: the delay is abandoned, the lease handed over
    await startWorker({ FLOW_WORKER_CLAIM_INTERVAL_MS: '300', FLOW_WORKER_GROUP_ID: group });
    const done = await waitForRun(runId, status('SUCCEEDED'), 30000);
    expect(done.results.b.status).toBe('SUCCEEDED');
    expect(target.count('/handover/a')).toBe(1);
    expect(target.count('/handover/b')).toBe(1);
  });
});
