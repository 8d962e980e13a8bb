import { uniqueName } from '@flowruns/testing';
import { Client } from 'pg';
import { startCommandService, type TestCommandService } from './app.spec-helpers';

/**
 * `POST /internal/reports` (real Postgres and Kafka): a batch of engine reports decides exactly what
 * the single-report endpoints decide — the same events, snapshots and stored step data — and
 * answers each report on its own: a refusal, an unknown run or a lost lease does not touch the
 * other reports of the batch.
 */
describe('command service: engine reports in batches', () => {
  let svc: TestCommandService;
  let pg: Client;
  const projectId = uniqueName('p_reports');
  let flowId: string;
  let parentFlowId: string;

  beforeAll(async () => {
    svc = await startCommandService({ AP_PAUSE_TIMEOUT_SECONDS: '600' });
    pg = new Client({ connectionString: svc.databaseUrl });
    await pg.connect();
    const steps = [
      { name: 'a', type: 'transform', settings: {} },
      { name: 'b', type: 'transform', settings: {} },
    ];
    flowId = (await svc.call<{ id: string }>('POST', '/internal/flows', { projectId, displayName: 'Reports', tags: [], steps })).body.id;
    parentFlowId = (await svc.call<{ id: string }>('POST', '/internal/flows', { projectId, displayName: 'Parent', tags: [], steps })).body.id;
  });
  afterAll(async () => {
    await pg?.end();
    await svc?.close();
  });

  const trigger = async (extra: Record<string, unknown> = {}, flow = flowId) => {
    const r = await svc.call<{ id: string }>('POST', `/internal/flows/${flow}/runs`, { projectId, payload: { n: 1 }, ...extra });
    expect(r.status).toBe(201);
    return r.body.id;
  };
  const batch = (reports: unknown[], headers?: Record<string, string>) =>
    headers
      ? fetch(`${svc.url}/internal/reports`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-internal-token': 'test-internal-token-0123456789', ...headers },
          body: JSON.stringify({ reports }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { results: Record<string, unknown>[] } }))
      : svc.call<{ results: Record<string, unknown>[] }>('POST', '/internal/reports', { reports });

  /** A run's events and stored step data, with the ids, times and references that differ between twins left out. */
  const history = async (runId: string) => {
    const events = await pg.query<{ seq: number; type: string; envelope: { data: Record<string, unknown> } }>(
      'select seq, type, envelope from run_events where run_id = $1 order by seq',
      [runId],
    );
    const data = await pg.query(
      `select kind, step_name, attempt, input, output, error, bytes, input is null as no_input, error is null as no_error
         from execution_data where run_id = $1 and kind = 'step' order by step_name, attempt`,
      [runId],
    );
    const stream = await pg.query<{ version: number; status: string; state: Record<string, unknown> }>(
      'select version, status, state from run_streams where run_id = $1',
      [runId],
    );
    // References and request ids are fresh per run; times (and the run's duration) are the twins' own.
    const strip = (v: unknown): unknown =>
      JSON.parse(JSON.stringify(v), (k, x: unknown) =>
        ['dataRef', 'requestId', 'triggerDataRef', 'resumeDeadline'].includes(k) ? '<ref>'
        : typeof x === 'string' && /^\d{4}-\d\d-\d\dT/.test(x) ? '<time>'
        : x,
      );
    const runDuration = (type: string, data: Record<string, unknown>) =>
      /^flowrun\.(failed|succeeded)\./.test(type) ? { ...data, durationMs: '<duration>' } : data;
    return {
      events: events.rows.map((e) => ({ seq: e.seq, type: e.type, data: strip(runDuration(e.type, e.envelope.data)) })),
      data: data.rows,
      stream: { version: stream.rows[0].version, status: stream.rows[0].status, state: strip(stream.rows[0].state) },
    };
  };

  it('decides what the single endpoints decide: same events, snapshot and stored step data', async () => {
    const [single, batched] = [await trigger(), await trigger()];
    const finishA = { status: 'SUCCEEDED', input: { url: 'https://x.test', n: null }, output: { ok: true, list: [1, 'two'] }, durationMs: 7 };
    const finishB = { status: 'FAILED', output: null, error: { message: 'boom' }, durationMs: 3 };
    // One by one, as before.
    expect((await svc.call('POST', `/internal/runs/${single}/steps/a/start`, { stepType: 'transform' })).status).toBe(200);
    expect((await svc.call('POST', `/internal/runs/${single}/steps/a/finish`, finishA)).status).toBe(200);
    expect((await svc.call('POST', `/internal/runs/${single}/steps/b/start`, { stepType: 'transform' })).status).toBe(200);
    expect((await svc.call('POST', `/internal/runs/${single}/steps/b/finish`, finishB)).status).toBe(200);
    expect((await svc.call('POST', `/internal/runs/${single}/fail`, { failedStepName: 'b' })).status).toBe(200);
    // The same reports in one batch: one run several times, applied in the order sent.
    const r = await batch([
      { type: 'startStep', runId: batched, stepName: 'a', stepType: 'transform' },
      { type: 'finishStep', runId: batched, stepName: 'a', ...finishA },
      { type: 'startStep', runId: batched, stepName: 'b', stepType: 'transform' },
      { type: 'finishStep', runId: batched, stepName: 'b', ...finishB },
      { type: 'fail', runId: batched, failedStepName: 'b' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.results.map((x) => x.ok)).toEqual([
      { runId: batched, version: 2, status: 'RUNNING', eventsAppended: 1 },
      { runId: batched, version: 3, status: 'RUNNING', eventsAppended: 1 },
      { runId: batched, version: 4, status: 'RUNNING', eventsAppended: 1 },
      { runId: batched, version: 5, status: 'RUNNING', eventsAppended: 1 },
      { runId: batched, version: 6, status: 'FAILED', eventsAppended: 1 },
    ]);
    const [a, b] = [await history(single), await history(batched)];
    expect(b).toEqual(a);
    expect(b.data).toHaveLength(2);
    // No input sent is no value (SQL NULL), not a JSON null; an output of null is a JSON null.
    expect(b.data[1]).toMatchObject({ step_name: 'b', no_input: true, no_error: false, output: null });
  });

  it('answers each report on its own: unknown run, invalid transition and lost lease beside accepted reports', async () => {
    const [ok, finished, leased, paused] = [await trigger(), await trigger(), await trigger(), await trigger()];
    expect((await svc.call('POST', `/internal/runs/${finished}/succeed`, {})).status).toBe(200);
    expect((await svc.call<{ acquired: boolean }>('POST', `/internal/runs/${leased}/lease`, { workerId: 'w-holder', ttlMs: 60000 })).body.acquired).toBe(
      true,
    );
    const r = await batch([
      { type: 'startStep', runId: ok, stepName: 'a', stepType: 'transform' },
      { type: 'startStep', runId: 'run_does_not_exist', stepName: 'a', stepType: 'transform' },
      { type: 'startStep', runId: finished, stepName: 'a', stepType: 'transform' },
      { type: 'startStep', runId: leased, stepName: 'a', stepType: 'transform', workerId: 'w-intruder' },
      { type: 'pause', runId: paused, stepName: 'a' },
    ]);
    expect(r.status).toBe(200);
    const [first, unknown, ended, fenced, pause] = r.body.results;
    expect(first).toEqual({ ok: { runId: ok, version: 2, status: 'RUNNING', eventsAppended: 1 } });
    expect(unknown).toEqual({ error: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: expect.objectContaining({ entityId: 'run_does_not_exist' }) } });
    expect(ended).toMatchObject({ error: { statusCode: 409, code: 'INVALID_TRANSITION', params: { status: 'SUCCEEDED' } } });
    expect(fenced).toMatchObject({ error: { statusCode: 409, code: 'LEASE_LOST', params: { holder: 'w-holder', workerId: 'w-intruder' } } });
    expect(pause).toMatchObject({ ok: { runId: paused, status: 'PAUSED', eventsAppended: 1, requestId: expect.stringMatching(/^req_[\w-]{32}$/) } });
    const deadline = Date.parse(String((pause.ok as { resumeDeadline: string }).resumeDeadline));
    expect(deadline - Date.now()).toBeGreaterThan(590_000);
    // The refused reports changed nothing.
    const versions = await pg.query<{ run_id: string; version: number }>('select run_id, version from run_streams where run_id = any($1)', [
      [finished, leased],
    ]);
    expect(Object.fromEntries(versions.rows.map((v) => [v.run_id, v.version]))).toEqual({ [finished]: 2, [leased]: 1 });
    // The lease holder's own report goes through, in a later batch.
    const again = await batch([{ type: 'startStep', runId: leased, stepName: 'a', stepType: 'transform', workerId: 'w-holder' }]);
    expect(again.body.results[0]).toMatchObject({ ok: { version: 2, eventsAppended: 1 } });
    // A repeated report is accepted and appends nothing (engines retry), and stores no second record.
    const finish = { type: 'finishStep', runId: ok, stepName: 'a', status: 'SUCCEEDED', output: 1, durationMs: 1 };
    const twice = await batch([finish, finish]);
    expect(twice.body.results.map((x) => (x.ok as { eventsAppended: number }).eventsAppended)).toEqual([1, 0]);
    const records = await pg.query('select ref from execution_data where run_id = $1 and kind = $2', [ok, 'step']);
    expect(records.rows).toHaveLength(1);
  });

  it('keeps each report’s own trace, and a failing child fails its parent', async () => {
    const parent = await trigger({}, parentFlowId);
    const child = await trigger({ parentRunId: parent, failParentOnFailure: true });
    const other = await trigger();
    const tp = (n: string) => `00-${n.repeat(32)}-${'b'.repeat(16)}-01`;
    const r = await batch(
      [
        { type: 'fail', runId: child, failedStepName: null, traceparent: tp('1') },
        { type: 'startStep', runId: other, stepName: 'a', stepType: 'transform' },
      ],
      { traceparent: tp('2') },
    );
    expect(r.status).toBe(200);
    expect(r.body.results.every((x) => 'ok' in x)).toBe(true);
    const rows = await pg.query<{ run_id: string; traceparent: string }>(
      'select run_id, traceparent from run_events where run_id = any($1) and seq > 1 order by run_id',
      [[child, other]],
    );
    // A report with a span of its own stays in that trace; the others continue the call's (the request span, a child of its header).
    const stored = Object.fromEntries(rows.rows.map((x) => [x.run_id, x.traceparent]));
    // Each report's events carry its own span in the command service: a child of the report's traceparent, in its trace.
    expect(stored[child]).toMatch(/^00-1{32}-[0-9a-f]{16}-01$/);
    expect(stored[other]).toMatch(/^00-2{32}-[0-9a-f]{16}-01$/);
    const parentRow = await pg.query<{ status: string }>('select status from run_streams where run_id = $1', [parent]);
    expect(parentRow.rows[0].status).toBe('FAILED');
  });

  it('refuses a malformed report alone (naming it), and a body without 1 to 500 reports whole', async () => {
    const run = await trigger();
    let deep: unknown = 'bottom';
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const r = await batch([
      { type: 'startStep', runId: run, stepName: 'a', stepType: 'transform' },
      { type: 'startStep', runId: run, stepName: '', stepType: 'transform' },
      { type: 'teleport', runId: run },
      { type: 'finishStep', runId: run, stepName: 'a', status: 'SUCCEEDED', output: { text: 'nul \u0000 here' }, durationMs: 1 },
      { type: 'finishStep', runId: run, stepName: 'a', status: 'SUCCEEDED', output: deep, durationMs: 1 },
      null,
      { type: 'finishStep', runId: run, stepName: 'a', status: 'SUCCEEDED', output: { fine: true }, durationMs: 1 },
    ]);
    expect(r.status).toBe(200);
    const [start, noName, teleport, nul, tooDeep, nothing, finish] = r.body.results;
    expect(start).toMatchObject({ ok: { version: 2 } });
    expect(noName).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.1.stepName' } } });
    expect(teleport).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.2.type' } } });
    expect(nul).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.3', path: 'output.text' } } });
    expect(tooDeep).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.4', message: expect.stringMatching(/nested deeper/) } } });
    expect(nothing).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.5' } } });
    expect(finish).toMatchObject({ ok: { version: 3, eventsAppended: 1 } });
    const stored = await pg.query('select output from execution_data where run_id = $1 and kind = $2', [run, 'step']);
    expect(stored.rows).toEqual([{ output: { fine: true } }]);

    expect(await batch([])).toMatchObject({ status: 400, body: { code: 'VALIDATION', params: { field: 'reports' } } });
    const tooMany = Array.from({ length: 501 }, () => ({ type: 'succeed', runId: run }));
    expect(await batch(tooMany)).toMatchObject({ status: 400, body: { code: 'VALIDATION', params: { field: 'reports' } } });
    expect(await svc.call('POST', '/internal/reports', { reports: 'all of them' })).toMatchObject({ status: 400, body: { params: { field: 'reports' } } });
    // Nothing of the refused bodies was applied.
    const v = await pg.query<{ version: number }>('select version from run_streams where run_id = $1', [run]);
    expect(v.rows[0].version).toBe(3);
  });

  it('concurrent batches over the same runs neither deadlock nor lose a report', async () => {
    const runs = await Promise.all(Array.from({ length: 24 }, () => trigger()));
    // Eight batches, each starting step a of every run in a different order: each run starts once.
    const orders = Array.from({ length: 8 }, (_, k) => [...runs].sort((x, y) => ((x.charCodeAt(x.length - 1 - (k % 3)) * (k + 1)) % 7) - ((y.charCodeAt(y.length - 1 - (k % 3)) * (k + 1)) % 7)));
    const answers = await Promise.all(orders.map((o) => batch(o.map((runId) => ({ type: 'startStep', runId, stepName: 'a', stepType: 'transform' })))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const appended = answers.flatMap((a) => a.body.results.map((x) => (x.ok as { eventsAppended: number }).eventsAppended));
    expect(appended.reduce((s, n) => s + n, 0)).toBe(runs.length);
    const versions = await pg.query<{ version: number }>('select version from run_streams where run_id = any($1)', [runs]);
    expect(versions.rows.map((v) => v.version)).toEqual(runs.map(() => 2));
  });

  describe('single triggers in group commit (POST /internal/flows/:flowId/runs)', () => {
    const single = (flow: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      fetch(`${svc.url}/internal/flows/${flow}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-token': 'test-internal-token-0123456789', ...headers },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

    it('writes concurrent triggers in shared transactions, and answers each as its own', async () => {
      const parent = await trigger();
      const quotaProject = uniqueName('p_quota_group');
      const quotaFlow = (
        await svc.call<{ id: string }>('POST', '/internal/flows', { projectId: quotaProject, displayName: 'Quota', tags: [], steps: [{ name: 'a', type: 'transform', settings: {} }] })
      ).body.id;
      await pg.query('update projects set monthly_run_quota = 1 where id = $1', [quotaProject]);
      const tp = `00-${'4'.repeat(32)}-${'d'.repeat(16)}-01`;
      const answers = await Promise.all([
        ...Array.from({ length: 24 }, (_, n) => single(flowId, { projectId, payload: { n } })),
        single('flow_nowhere', { projectId, payload: {} }),
        single(flowId, { projectId, payload: {}, parentRunId: 'run_elsewhere' }),
        single(quotaFlow, { projectId: quotaProject, payload: {} }),
        single(quotaFlow, { projectId: quotaProject, payload: {} }),
        single(flowId, { projectId, payload: { n: 'child' }, parentRunId: parent, triggeredBy: 'group' }, { traceparent: tp }),
      ]);
      const [plain, [noFlow, noParent, quotaA, quotaB, child]] = [answers.slice(0, 24), answers.slice(24)];

      expect(plain.map((a) => a.status)).toEqual(plain.map(() => 201));
      const ids = plain.map((a) => a.body.id as string);
      expect(new Set(ids).size).toBe(24);
      // Each run holds its own request's payload.
      const payloads = await pg.query<{ run_id: string; output: { n: number } }>("select run_id, output from execution_data where kind = 'trigger' and run_id = any($1)", [ids]);
      const payloadOf = new Map(payloads.rows.map((r) => [r.run_id, r.output.n]));
      expect(ids.map((id) => payloadOf.get(id))).toEqual(ids.map((_, n) => n));

      expect(noFlow).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_nowhere' } } });
      expect(noParent).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow_run', field: 'ap-parent-run-id' } } });
      expect([quotaA.status, quotaB.status]).toEqual([201, 201]);
      expect([quotaA.body.status, quotaB.body.status].sort()).toEqual(['QUOTA_EXCEEDED', 'RUNNING']);
      expect(child).toMatchObject({ status: 201, body: { parentRunId: parent, triggeredBy: 'group', status: 'RUNNING' } });
      const traced = await pg.query<{ traceparent: string }>('select traceparent from run_events where run_id = $1', [child.body.id]);
      expect(traced.rows).toEqual([{ traceparent: expect.stringMatching(/^00-4{32}-[0-9a-f]{16}-01$/) }]);

      // Shared: rows written by one transaction carry its id (xmin); 24 runs in fewer transactions.
      const transactions = await pg.query<{ n: number }>('select count(distinct xmin::text)::int as n from run_streams where run_id = any($1)', [ids]);
      expect(transactions.rows[0].n).toBeLessThan(ids.length);
      // The refused triggers left nothing behind.
      const orphans = await pg.query(`select e.ref from execution_data e left join run_streams s on s.run_id = e.run_id where e.kind = 'trigger' and s.run_id is null`);
      expect(orphans.rows).toEqual([]);
    });

    it('writes large triggers each in a transaction of its own (a group holds at most 1 MB of bodies)', async () => {
      const big = 'x'.repeat(600_000);
      const answers = await Promise.all([0, 1, 2].map((n) => single(flowId, { projectId, payload: { n, big } })));
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
      const ids = answers.map((a) => a.body.id as string);
      const transactions = await pg.query<{ n: number }>('select count(distinct xmin::text)::int as n from run_streams where run_id = any($1)', [ids]);
      expect(transactions.rows[0].n).toBe(3);
      const stored = await pg.query<{ n: number; len: number }>(
        "select (output ->> 'n')::int as n, length(output ->> 'big') as len from execution_data where kind = 'trigger' and run_id = any($1) order by 1",
        [ids],
      );
      expect(stored.rows).toEqual([0, 1, 2].map((n) => ({ n, len: 600_000 })));
    });
  });

  describe('triggers in batches (POST /internal/triggers)', () => {
    const triggers = (items: unknown[], headers: Record<string, string> = {}) =>
      fetch(`${svc.url}/internal/triggers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-token': 'test-internal-token-0123456789', ...headers },
        body: JSON.stringify({ triggers: items }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { results: Record<string, unknown>[] } }));

    it('starts each run as a single trigger would, and answers each trigger on its own', async () => {
      const parent = await trigger();
      const quotaProject = uniqueName('p_quota_batch');
      const quotaFlow = (
        await svc.call<{ id: string }>('POST', '/internal/flows', {
          projectId: quotaProject,
          displayName: 'Quota',
          tags: [],
          steps: [{ name: 'a', type: 'transform', settings: {} }],
        })
      ).body.id;
      await pg.query('update projects set monthly_run_quota = 1 where id = $1', [quotaProject]);
      const tp = `00-${'3'.repeat(32)}-${'c'.repeat(16)}-01`;
      const r = await triggers([
        { flowId, projectId, payload: { n: 1 }, traceparent: tp },
        { flowId: 'flow_nowhere', projectId, payload: {} },
        { flowId, projectId, payload: { n: 2 }, parentRunId: 'run_elsewhere' },
        { flowId, projectId: 'p_other', payload: {} },
        { flowId, projectId, payload: { nul: 'a\u0000b' } },
        { projectId, payload: {} },
        { flowId: quotaFlow, projectId: quotaProject, payload: {} },
        { flowId: quotaFlow, projectId: quotaProject, payload: {} },
        { flowId, projectId, payload: { n: 3 }, parentRunId: parent, failParentOnFailure: true, environment: 'TESTING', triggeredBy: 'batch' },
      ]);
      expect(r.status).toBe(200);
      const [first, noFlow, noParent, otherProject, nul, noFlowId, underQuota, overQuota, child] = r.body.results;
      expect(first).toMatchObject({ ok: { flowId, projectId, status: 'RUNNING', stepsCount: 2, environment: 'PRODUCTION' } });
      expect(noFlow).toMatchObject({ error: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_nowhere' } } });
      expect(noParent).toMatchObject({ error: { statusCode: 404, params: { entityType: 'flow_run', field: 'ap-parent-run-id' } } });
      expect(otherProject).toMatchObject({ error: { statusCode: 404, params: { entityType: 'flow' } } });
      expect(nul).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'triggers.4', path: 'payload.nul' } } });
      expect(noFlowId).toMatchObject({ error: { statusCode: 400, code: 'VALIDATION', params: { field: 'triggers.5.flowId' } } });
      expect(underQuota).toMatchObject({ ok: { status: 'RUNNING' } });
      expect(overQuota).toMatchObject({ ok: { status: 'QUOTA_EXCEEDED' } });
      expect(child).toMatchObject({ ok: { parentRunId: parent, environment: 'TESTING', triggeredBy: 'batch', status: 'RUNNING' } });

      // The batch's run and a single trigger's twin have the same history.
      const firstId = (first.ok as { id: string }).id;
      const twin = await trigger({ payload: { n: 1 } });
      expect(await history(firstId)).toEqual(await history(twin));
      // Started together with the batch's other runs (one statement): the same stream row and stored payload as one by one.
      const columns = async (runId: string) =>
        (
          await pg.query(
            `select project_id, flow_id, parent_run_id, running_since = created_at as running_since_created, updated_at = created_at as untouched,
                    resume_deadline, finished_at, purged_at
               from run_streams where run_id = $1`,
            [runId],
          )
        ).rows;
      expect(await columns(firstId)).toEqual(await columns(twin));
      expect(await columns(firstId)).toEqual([expect.objectContaining({ project_id: projectId, running_since_created: true, untouched: true })]);
      expect(await columns((child.ok as { id: string }).id)).toEqual([expect.objectContaining({ parent_run_id: parent })]);
      const stored = async (runId: string) =>
        (await pg.query('select kind, step_name, attempt, input, output, error, bytes from execution_data where run_id = $1', [runId])).rows;
      expect(await stored(firstId)).toEqual(await stored(twin));
      expect(await stored(firstId)).toEqual([{ kind: 'trigger', step_name: null, attempt: null, input: null, output: { n: 1 }, error: null, bytes: 7 }]);
      const traced = await pg.query<{ traceparent: string }>('select traceparent from run_events where run_id = $1', [firstId]);
      expect(traced.rows).toEqual([{ traceparent: expect.stringMatching(/^00-3{32}-[0-9a-f]{16}-01$/) }]);
      // Refused triggers left nothing behind: only the accepted ones (and the twin) started runs.
      const runs = await pg.query<{ n: string }>('select count(*)::text as n from run_streams where project_id = any($1) and created_at > now() - interval \'1 minute\'', [
        [projectId, quotaProject, 'p_other'],
      ]);
      expect(Number(runs.rows[0].n)).toBeGreaterThanOrEqual(5);
      const orphans = await pg.query(
        `select e.ref from execution_data e left join run_streams s on s.run_id = e.run_id where e.kind = 'trigger' and s.run_id is null`,
      );
      expect(orphans.rows).toEqual([]);
    });

    it('refuses a body without 1 to 500 triggers whole', async () => {
      expect(await triggers([])).toMatchObject({ status: 400, body: { code: 'VALIDATION', params: { field: 'triggers' } } });
      expect(await svc.call('POST', '/internal/triggers', { triggers: {} })).toMatchObject({ status: 400, body: { params: { field: 'triggers' } } });
    });
  });
});
