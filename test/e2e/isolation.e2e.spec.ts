import { randomBytes } from 'node:crypto';
import type { FlowRun } from '@flowruns/contracts';
import { waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { assertContractAnswer, gatewayClient, httpRequest, newApiKey, revokeKey, type HttpAnswer } from './client';
import { startSystem } from './harness';

/**
 * Cross-project isolation over HTTP, against the running apps: a key of project A aimed at project
 * B's flows and runs through every public endpoint is refused (or changes nothing), the refusal
 * says no more than the one for an id that does not exist, and B's runs are exactly as they were
 * afterwards, as B's own key sees them — and nothing was written anywhere (the event log, the flows,
 * the execution data). Then authentication: no key, malformed keys, unknown keys and a key revoked
 * with the operator CLI answer 401 on every guarded endpoint, again changing nothing. The resume
 * routes take no key (the request id is the capability): under any credential, a request id that is
 * not the run's own is 404, the same as for a run that exists nowhere, and changes nothing (expiry
 * and single use: resume-requests.e2e.spec.ts).
 */

const A = 'proj_iso_a';
const B = 'proj_iso_b';
/** A third project, whose paused run lends the resume rows a real request id that is not B's. */
const C = 'proj_iso_c';

/** What one row of the matrix aims at: B's real flows and runs, or ids that exist nowhere. */
interface Targets {
  readonly project: string;
  /** B's flow with two versions; its run SUCCEEDED. */
  readonly flowId: string;
  readonly failingFlowId: string;
  readonly approvalFlowId: string;
  readonly slowFlowId: string;
  readonly failedRunId: string;
  readonly pausedRunId: string;
  readonly runningRunId: string;
  readonly succeededRunId: string;
}

const hex = () => randomBytes(8).toString('hex');
/** Ids of the same shapes that exist in no project: B's answers must be indistinguishable from these. */
const NOWHERE: Targets = {
  project: 'proj_iso_nobody',
  flowId: `flow_${hex()}`,
  failingFlowId: `flow_${hex()}`,
  approvalFlowId: `flow_${hex()}`,
  slowFlowId: `flow_${hex()}`,
  failedRunId: `run_${hex()}`,
  pausedRunId: `run_${hex()}`,
  runningRunId: `run_${hex()}`,
  succeededRunId: `run_${hex()}`,
};

interface Probe {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/**
 * What the caller holds besides its key: A's own flow, and a real resume request id of a paused run
 * that is not B's (project C's: an approval link anyone may hold, as the resume routes take no key).
 */
interface Own {
  readonly flowId: string;
  readonly pausedRunId: string;
  readonly requestId: string;
}

type Expectation =
  /** 404 ENTITY_NOT_FOUND of this entity type, naming the id it was asked about. */
  | { readonly notFound: 'flow_run' | 'flow' | 'project'; readonly entityId: (t: Targets) => string }
  /** 404 PAUSE_REQUEST_MISMATCH naming the request id that was sent. */
  | { readonly mismatch: (own: Own) => string }
  /** 200 with exactly this body (a bulk operation that selects nothing of B). */
  | { readonly ok: unknown }
  /** 200 NDJSON with no line at all (an export that selects nothing of B). */
  | { readonly ndjson: '' };

interface Row {
  readonly name: string;
  readonly probe: (t: Targets, own: Own) => Probe;
  readonly expect: Expectation;
}

const steps = [{ name: 'noop', type: 'transform', settings: { value: 1 } }];
const retryBody = (strategy: string, projectId = A) => ({ strategy, projectId });

const MATRIX: readonly Row[] = [
  // ---- runs: list and get ----
  { name: 'list B’s runs (projectId=B)', probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs?projectId=${t.project}` }), expect: { notFound: 'project', entityId: (t) => t.project } },
  {
    name: 'list own project filtered to B’s run ids',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs?projectId=${A}&includeArchived=true&flowRunIds=${t.failedRunId}&flowRunIds=${t.pausedRunId}` }),
    expect: { ok: { data: [], next: null, previous: null } },
  },
  {
    name: 'list own project filtered to B’s flow',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs?projectId=${A}&includeArchived=true&flowId=${t.flowId}` }),
    expect: { ok: { data: [], next: null, previous: null } },
  },
  { name: 'get B’s run', probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs/${t.succeededRunId}` }), expect: { notFound: 'flow_run', entityId: (t) => t.succeededRunId } },
  // ---- export (NDJSON) ----
  {
    name: 'export B’s runs (projectId=B)',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs/export?projectId=${t.project}` }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  {
    name: 'export own project filtered to B’s run ids',
    probe: (t) => ({
      method: 'GET',
      path: `/api/v1/flow-runs/export?projectId=${A}&includeArchived=true&flowRunIds=${t.succeededRunId}&flowRunIds=${t.failedRunId}&flowRunIds=${t.pausedRunId}&flowRunIds=${t.runningRunId}`,
    }),
    expect: { ndjson: '' },
  },
  {
    name: 'export own project filtered to B’s flow',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs/export?projectId=${A}&includeArchived=true&flowId=${t.flowId}` }),
    expect: { ndjson: '' },
  },
  // ---- erase ----
  { name: 'erase B’s succeeded run', probe: (t) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.succeededRunId}/erase` }), expect: { notFound: 'flow_run', entityId: (t) => t.succeededRunId } },
  { name: 'erase B’s failed run', probe: (t) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.failedRunId}/erase` }), expect: { notFound: 'flow_run', entityId: (t) => t.failedRunId } },
  {
    name: 'erase B’s succeeded run naming projectId=B',
    probe: (t) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.succeededRunId}/erase?projectId=${t.project}` }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  // ---- resume (keyless: the request id is the capability; the caller holds another run's id) ----
  ...([true, false] as const).map(
    (sync): Row => ({
      name: `resume B’s paused run with another run’s real request id${sync ? ' (/sync)' : ''}`,
      probe: (t, own) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.pausedRunId}/requests/${own.requestId}${sync ? '/sync' : ''}`, body: { approved: true } }),
      // No key and so no project scopes these routes: an id the run did not issue is what keeps a
      // run that exists from answering otherwise than one that does not (it used to be 404
      // ENTITY_NOT_FOUND for the unknown run).
      expect: { mismatch: (own) => own.requestId },
    }),
  ),
  {
    name: 'get B’s run naming projectId=B',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flow-runs/${t.succeededRunId}?projectId=${t.project}` }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  // ---- single retry ----
  ...(['FROM_FAILED_STEP', 'ON_LATEST_VERSION'] as const).flatMap((strategy): Row[] => [
    {
      name: `retry B’s failed run ${strategy}`,
      probe: (t) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.failedRunId}/retry`, body: retryBody(strategy) }),
      expect: { notFound: 'flow_run', entityId: (t) => t.failedRunId },
    },
    {
      name: `retry B’s failed run ${strategy} naming projectId=B`,
      probe: (t) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.failedRunId}/retry`, body: retryBody(strategy, t.project) }),
      expect: { notFound: 'project', entityId: (t) => t.project },
    },
  ]),
  // ---- bulk cancel ----
  {
    name: 'cancel B’s running and paused runs by ids',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/cancel', body: { flowRunIds: [t.runningRunId, t.pausedRunId] } }),
    expect: { ok: { cancelled: 0 } },
  },
  { name: 'cancel by B’s flow of the running run', probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/cancel', body: { flowId: t.slowFlowId } }), expect: { ok: { cancelled: 0 } } },
  {
    name: 'cancel by B’s flow of the paused run, status PAUSED',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/cancel', body: { flowId: t.approvalFlowId, status: ['PAUSED'] } }),
    expect: { ok: { cancelled: 0 } },
  },
  { name: 'cancel everything (no filter)', probe: () => ({ method: 'POST', path: '/api/v1/flow-runs/cancel', body: {} }), expect: { ok: { cancelled: 0 } } },
  {
    name: 'cancel naming projectId=B',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/cancel', body: { projectId: t.project, flowRunIds: [t.pausedRunId] } }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  // ---- bulk retry ----
  {
    name: 'bulk retry B’s failed run by ids',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/retry', body: { strategy: 'FROM_FAILED_STEP', flowRunIds: [t.failedRunId] } }),
    expect: { ok: { retried: 0 } },
  },
  {
    name: 'bulk retry by B’s flow of the failed run',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/retry', body: { strategy: 'ON_LATEST_VERSION', flowId: t.failingFlowId } }),
    expect: { ok: { retried: 0 } },
  },
  {
    name: 'bulk retry every failed run (no filter but status)',
    probe: () => ({ method: 'POST', path: '/api/v1/flow-runs/retry', body: { strategy: 'ON_LATEST_VERSION', status: ['FAILED'] } }),
    expect: { ok: { retried: 0 } },
  },
  {
    name: 'bulk retry naming projectId=B',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/retry', body: { projectId: t.project, strategy: 'FROM_FAILED_STEP', flowRunIds: [t.failedRunId] } }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  // ---- bulk archive ----
  {
    name: 'archive B’s runs by ids',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/archive', body: { flowRunIds: [t.succeededRunId, t.failedRunId, t.pausedRunId, t.runningRunId] } }),
    expect: { ok: { archived: 0 } },
  },
  { name: 'archive by B’s flow of the paused run', probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/archive', body: { flowId: t.approvalFlowId } }), expect: { ok: { archived: 0 } } },
  { name: 'archive everything (no filter)', probe: () => ({ method: 'POST', path: '/api/v1/flow-runs/archive', body: {} }), expect: { ok: { archived: 0 } } },
  {
    name: 'archive naming projectId=B',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flow-runs/archive', body: { projectId: t.project, flowRunIds: [t.succeededRunId] } }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  // ---- flows ----
  {
    name: 'create a flow in B',
    probe: (t) => ({ method: 'POST', path: '/api/v1/flows', body: { projectId: t.project, displayName: 'Intruder', steps } }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  { name: 'list B’s flows', probe: (t) => ({ method: 'GET', path: `/api/v1/flows?projectId=${t.project}` }), expect: { notFound: 'project', entityId: (t) => t.project } },
  { name: 'get B’s flow', probe: (t) => ({ method: 'GET', path: `/api/v1/flows/${t.flowId}` }), expect: { notFound: 'flow', entityId: (t) => t.flowId } },
  {
    name: 'get B’s flow naming projectId=B',
    probe: (t) => ({ method: 'GET', path: `/api/v1/flows/${t.flowId}?projectId=${t.project}` }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  {
    name: 'publish a version of B’s flow',
    probe: (t) => ({ method: 'POST', path: `/api/v1/flows/${t.flowId}/versions`, body: { steps } }),
    expect: { notFound: 'flow', entityId: (t) => t.flowId },
  },
  {
    name: 'publish a version of B’s flow naming projectId=B',
    probe: (t) => ({ method: 'POST', path: `/api/v1/flows/${t.flowId}/versions`, body: { projectId: t.project, steps } }),
    expect: { notFound: 'project', entityId: (t) => t.project },
  },
  { name: 'trigger B’s flow', probe: (t) => ({ method: 'POST', path: `/api/v1/flows/${t.flowId}/run`, body: { x: 1 } }), expect: { notFound: 'flow', entityId: (t) => t.flowId } },
  {
    name: 'trigger own flow as a child of B’s run (ap-parent-run-id)',
    probe: (t, own) => ({
      method: 'POST',
      path: `/api/v1/flows/${own.flowId}/run`,
      body: {},
      headers: { 'ap-parent-run-id': t.pausedRunId, 'ap-fail-parent-on-failure': 'true' },
    }),
    expect: { notFound: 'flow_run', entityId: (t) => t.pausedRunId },
  },
  {
    name: 'trigger own flow as a child of B’s running run (ap-parent-run-id alone)',
    probe: (t, own) => ({ method: 'POST', path: `/api/v1/flows/${own.flowId}/run`, body: { x: 1 }, headers: { 'ap-parent-run-id': t.runningRunId } }),
    expect: { notFound: 'flow_run', entityId: (t) => t.runningRunId },
  },
];

/** What B's runs look like from B's side; anything A did to them would show here. */
interface RunFacts {
  id: string;
  status: string;
  archivedAt: string | null;
  attempt: number;
  retryOf: string | null;
  parentRunId: string | null;
  executionDataPurgedAt: string | null;
  pausedOn: string | null;
}

/**
 * Everything the write side holds, counted straight from the database: a request that changed
 * anything anywhere (an event, a flow or version, a stored payload, a stream's version) shows here,
 * whether or not the views have caught up.
 */
async function storeFingerprint(databaseUrl: string) {
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query(`select
      (select count(*)::int from run_events) as events,
      (select coalesce(max(position), 0)::text from run_events) as "lastPosition",
      (select count(*)::int from run_streams) as streams,
      (select coalesce(sum(version), 0)::int from run_streams) as "streamVersions",
      (select count(*)::int from flows) as flows,
      (select count(*)::int from flow_versions) as "flowVersions",
      (select count(*)::int from execution_data) as "executionData",
      (select coalesce(sum(bytes), 0)::int from execution_data) as "executionBytes"`);
    return r.rows[0] as Record<string, number | string>;
  } finally {
    await c.end();
  }
}

describe('cross-project isolation and authentication over HTTP', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let url: string;
  let keyA: string;
  let keyB: string;
  let apiA: ReturnType<typeof gatewayClient>;
  let apiC: ReturnType<typeof gatewayClient>;
  let apiB: ReturnType<typeof gatewayClient>;
  let targetsB: Targets;
  let own: Own;
  const answers: { what: string; a: HttpAnswer }[] = [];

  const call = async (what: string, key: string | null, p: Probe, authorization?: string) => {
    const a = await httpRequest(url, p.method, p.path, { key, authorization, body: p.body, headers: p.headers });
    answers.push({ what, a });
    return a;
  };

  /** A project's runs (archived too) and flows, read with its own key. */
  const snapshotOf = async (api: ReturnType<typeof gatewayClient>, project: string) => {
    const runs = await api.get(`/api/v1/flow-runs?projectId=${project}&includeArchived=true&limit=100`);
    expect(runs.status).toBe(200);
    const flows = await api.get(`/api/v1/flows?projectId=${project}`);
    expect(flows.status).toBe(200);
    return {
      runs: (runs.body.data as FlowRun[])
        .map(
          (r): RunFacts => ({
            id: r.id,
            status: r.status,
            archivedAt: r.archivedAt,
            attempt: r.attempt,
            retryOf: r.retryOf,
            parentRunId: r.parentRunId,
            executionDataPurgedAt: r.executionDataPurgedAt,
            pausedOn: r.pause?.requestId ?? null,
          }),
        )
        .sort((x, y) => x.id.localeCompare(y.id)),
      flows: (flows.body.data as { id: string; version: { version: number } }[]).map((f) => ({ id: f.id, version: f.version.version })),
    };
  };
  const snapshotOfB = () => snapshotOf(apiB, B);

  beforeAll(async () => {
    system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker'], {
      // A revocation must show at once; and a long delay step must not hold the worker's shutdown.
      AUTH_CACHE_TTL_MS: '0',
      AUTH_NEGATIVE_CACHE_TTL_MS: '0',
      FLOW_WORKER_SHUTDOWN_TIMEOUT_MS: '0',
    });
    url = system.apps['api-gateway'].url;
    [keyA, keyB] = (await Promise.all([newApiKey(system.db.url, A), newApiKey(system.db.url, B)])).map((k) => k.key);
    apiB = gatewayClient(url, keyB);
    apiA = gatewayClient(url, keyA);

    const ownFlow = await apiA.post('/api/v1/flows', { projectId: A, displayName: 'A’s flow', steps });
    expect(ownFlow.status).toBe(201);
    // C's paused run: its real request id is what the resume rows send to B's paused run.
    apiC = gatewayClient(url, (await newApiKey(system.db.url, C)).key);
    const approvalC = await apiC.post('/api/v1/flows', { projectId: C, displayName: 'C waits', steps: [{ name: 'approve', type: 'approval', settings: {} }] });
    expect(approvalC.status).toBe(201);
    const runC = await apiC.post(`/api/v1/flows/${approvalC.body.id as string}/run`, {});
    expect(runC.status).toBe(201);
    const pausedC = await apiC.waitForRun(runC.body.id as string, 'PAUSED');
    own = { flowId: ownFlow.body.id as string, pausedRunId: pausedC.id, requestId: pausedC.pause!.requestId };

    const flowB = await apiB.post('/api/v1/flows', {
      projectId: B,
      displayName: 'B’s flow',
      tags: ['b'],
      steps: [{ name: 'first', type: 'transform', settings: { value: 1 } }],
    });
    expect(flowB.status).toBe(201);
    const flowId = flowB.body.id as string;
    // Version 2 is what B's runs run; A's publish attempts must leave B at version 2.
    const v2 = await apiB.post(`/api/v1/flows/${flowId}/versions`, {
      steps: [{ name: 'pick', type: 'transform', settings: { value: '{{trigger.path}}' } }],
    });
    expect(v2.status).toBe(201);

    const trigger = async (fid: string) => {
      const r = await apiB.post(`/api/v1/flows/${fid}/run`, {});
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    const flowOf = async (name: string, stepList: unknown[]) => {
      const r = await apiB.post('/api/v1/flows', { projectId: B, displayName: name, steps: stepList });
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    // Each status from its own small flow of B.
    const [failing, approval, slow] = await Promise.all([
      flowOf('B fails', [{ name: 'boom', type: 'fail', settings: { message: 'B failed' } }]),
      flowOf('B waits', [{ name: 'approve', type: 'approval', settings: {} }]),
      flowOf('B is slow', [{ name: 'wait', type: 'delay', settings: { ms: 120_000 } }]),
    ]);
    const [failedRunId, pausedRunId, runningRunId, succeededRunId] = await Promise.all([trigger(failing), trigger(approval), trigger(slow), trigger(flowId)]);
    await Promise.all([
      apiB.waitForRun(failedRunId, 'FAILED'),
      apiB.waitForRun(pausedRunId, 'PAUSED'),
      apiB.waitForRun(runningRunId, (r) => r.status === 'RUNNING' && r.steps.wait?.status === 'RUNNING'),
      apiB.waitForRun(succeededRunId, 'SUCCEEDED'),
    ]);
    targetsB = { project: B, flowId, failingFlowId: failing, approvalFlowId: approval, slowFlowId: slow, failedRunId, pausedRunId, runningRunId, succeededRunId };
  });

  afterAll(async () => {
    await system?.stop();
  });

  afterAll(() => {
    // Whatever a test asserted, no answer of this suite may be a 5xx or leave the envelope.
    for (const { what, a } of answers) assertContractAnswer(what, a);
  });

  describe('a key of project A aimed at project B', () => {
    let before: Awaited<ReturnType<typeof snapshotOfB>>;
    let beforeOfC: Awaited<ReturnType<typeof snapshotOfB>>;
    let storeBefore: Awaited<ReturnType<typeof storeFingerprint>>;
    const results = new Map<string, { real: HttpAnswer; unknown: HttpAnswer }>();

    beforeAll(async () => {
      before = await snapshotOfB();
      expect(before.runs.map((r) => r.status).sort()).toEqual(['FAILED', 'PAUSED', 'RUNNING', 'SUCCEEDED']);
      beforeOfC = await snapshotOf(apiC, C);
      storeBefore = await storeFingerprint(system.db.url);
      // Sequentially: each row against B's real ids, then against ids that exist nowhere.
      for (const row of MATRIX) {
        const real = await call(row.name, keyA, row.probe(targetsB, own));
        const unknown = await call(`${row.name} (unknown ids)`, keyA, row.probe(NOWHERE, own));
        results.set(row.name, { real, unknown });
      }
    });

    it.each(MATRIX.map((row) => [row.name, row] as const))('%s: refused or selects nothing', (_name, row) => {
      const { real } = results.get(row.name)!;
      if ('ok' in row.expect) {
        expect({ status: real.status, body: real.body }).toEqual({ status: 200, body: row.expect.ok });
      } else if ('ndjson' in row.expect) {
        expect({ status: real.status, type: real.headers.get('content-type'), text: real.text }).toEqual({
          status: 200,
          type: 'application/x-ndjson; charset=utf-8',
          text: row.expect.ndjson,
        });
      } else if ('mismatch' in row.expect) {
        expect(real.status).toBe(404);
        expect(real.body).toMatchObject({
          statusCode: 404,
          code: 'PAUSE_REQUEST_MISMATCH',
          params: { entityType: 'flow_run_request', entityId: row.expect.mismatch(own) },
        });
      } else {
        expect(real.status).toBe(404);
        expect(real.body).toMatchObject({
          statusCode: 404,
          code: 'ENTITY_NOT_FOUND',
          params: { entityType: row.expect.notFound, entityId: row.expect.entityId(targetsB) },
        });
      }
    });

    it.each(MATRIX.map((row) => [row.name, row] as const))('%s: answers exactly as for ids that exist nowhere', (_name, row) => {
      const { real, unknown } = results.get(row.name)!;
      // Replace each id by its role, so B's answer and the unknown one compare as text.
      const normalise = (a: HttpAnswer, t: Targets) => {
        let s = a.text;
        for (const [role, value] of Object.entries(t)) s = s.split(value).join(`<${role}>`);
        return { status: a.status, body: s };
      };
      expect(normalise(real, targetsB)).toEqual(normalise(unknown, NOWHERE));
    });

    it('wrote nothing anywhere: no event, flow, version or stored payload, in any project', async () => {
      expect(await storeFingerprint(system.db.url)).toEqual(storeBefore);
    });

    it('left every run and flow of B exactly as it was, as B’s key sees it', async () => {
      // A sentinel: B's own trigger, made after the matrix, is projected through the same relay and
      // projector; once it shows, anything A's requests had appended would have shown as well.
      const sentinel = await apiB.post(`/api/v1/flows/${targetsB.flowId}/run`, { path: 'sentinel' });
      expect(sentinel.status).toBe(201);
      await apiB.waitForRun(sentinel.body.id as string, 'SUCCEEDED');

      const after = await snapshotOfB();
      expect(after.flows).toEqual(before.flows);
      expect(after.runs.filter((r) => r.id !== sentinel.body.id)).toEqual(before.runs);
      expect(after.runs).toHaveLength(before.runs.length + 1);
      // A, whose bulk requests named no filter at all, has no runs and only its own flow; C's run
      // still waits on the request id that was sent to B's run.
      expect(await snapshotOf(apiA, A)).toEqual({ runs: [], flows: [{ id: own.flowId, version: 1 }] });
      const ofC = await snapshotOf(apiC, C);
      expect(ofC).toEqual(beforeOfC);
      expect(ofC.runs).toEqual([expect.objectContaining({ id: own.pausedRunId, status: 'PAUSED', pausedOn: own.requestId })]);
    });
  });

  describe('authentication', () => {
    let beforeB: Awaited<ReturnType<typeof snapshotOfB>>;
    let beforeC: Awaited<ReturnType<typeof snapshotOfB>>;
    let storeBefore: Awaited<ReturnType<typeof storeFingerprint>>;
    beforeAll(async () => {
      beforeB = await snapshotOfB();
      beforeC = await snapshotOf(apiC, C);
      storeBefore = await storeFingerprint(system.db.url);
    });

    /** Every endpoint behind the API key, with a request that would succeed with B's key. */
    const guarded = (t: Targets): Probe[] => [
      { method: 'GET', path: '/api/v1/me' },
      { method: 'GET', path: `/api/v1/flow-runs?projectId=${B}` },
      { method: 'GET', path: `/api/v1/flow-runs/export?projectId=${B}&includeArchived=true` },
      { method: 'GET', path: `/api/v1/flow-runs/${t.succeededRunId}` },
      { method: 'POST', path: `/api/v1/flow-runs/${t.failedRunId}/retry`, body: retryBody('FROM_FAILED_STEP', B) },
      { method: 'POST', path: '/api/v1/flow-runs/cancel', body: { flowRunIds: [t.pausedRunId] } },
      { method: 'POST', path: '/api/v1/flow-runs/retry', body: { strategy: 'FROM_FAILED_STEP', flowRunIds: [t.failedRunId] } },
      { method: 'POST', path: '/api/v1/flow-runs/archive', body: { flowRunIds: [t.succeededRunId] } },
      { method: 'POST', path: `/api/v1/flow-runs/${t.succeededRunId}/erase` },
      { method: 'POST', path: '/api/v1/flows', body: { projectId: B, displayName: 'x', steps } },
      { method: 'GET', path: `/api/v1/flows?projectId=${B}` },
      { method: 'GET', path: `/api/v1/flows/${t.flowId}` },
      { method: 'POST', path: `/api/v1/flows/${t.flowId}/versions`, body: { steps } },
      { method: 'POST', path: `/api/v1/flows/${t.flowId}/run`, body: {} },
      { method: 'POST', path: `/api/v1/flows/${t.flowId}/run`, body: {}, headers: { 'ap-parent-run-id': t.pausedRunId, 'ap-fail-parent-on-failure': 'true' } },
    ];
    /** The keyless resume routes, aimed at B's paused run with a real request id that is not its own. */
    const resumes = (t: Targets): Probe[] =>
      ['', '/sync'].map((sync) => ({ method: 'POST', path: `/api/v1/flow-runs/${t.pausedRunId}/requests/${own.requestId}${sync}`, body: { approved: true } }));
    const wellFormedUnknown = `sk-${randomBytes(32).toString('base64url')}`;
    const CREDENTIALS: readonly (readonly [string, string | undefined])[] = [
      ['no Authorization header', undefined],
      ['an empty bearer', 'Bearer '],
      ['a key without the sk- prefix', `Bearer ${randomBytes(32).toString('base64url')}`],
      ['a truncated key', `Bearer ${wellFormedUnknown.slice(0, 20)}`],
      ['a key with trailing garbage', `Bearer ${wellFormedUnknown}x`],
      ['two tokens', `Bearer ${wellFormedUnknown} ${wellFormedUnknown}`],
      ['Basic instead of Bearer', `Basic ${Buffer.from('user:pass').toString('base64')}`],
      ['a well-formed key that does not exist', `Bearer ${wellFormedUnknown}`],
    ];

    it.each(CREDENTIALS)('%s → 401 UNAUTHORIZED on every guarded endpoint, with WWW-Authenticate', async (what, authorization) => {
      for (const probe of guarded(targetsB)) {
        const a = await call(`${what}: ${probe.method} ${probe.path}`, null, probe, authorization);
        expect({ probe: `${probe.method} ${probe.path}`, status: a.status, code: a.body?.code }).toEqual({
          probe: `${probe.method} ${probe.path}`,
          status: 401,
          code: 'UNAUTHORIZED',
        });
        expect(a.headers.get('www-authenticate')).toBe('Bearer');
      }
    });

    it('a key revoked with the CLI answers 401 (AUTH_CACHE_TTL_MS=0), and B’s runs are untouched by its attempts', async () => {
      const { id, key } = await newApiKey(system.db.url, B);
      const list = { method: 'GET', path: `/api/v1/flow-runs?projectId=${B}` } as const;
      expect((await call('fresh key lists', key, list)).status).toBe(200);

      expect(await revokeKey(system.db.url, id)).toContain(`revoked ${id}`);
      await waitFor(async () => (await call('revoked key lists', key, list)).status === 401, { timeoutMs: 5000, what: 'the revoked key to be refused' });

      const before = await snapshotOfB();
      for (const probe of guarded(targetsB)) {
        const a = await call(`revoked: ${probe.method} ${probe.path}`, key, probe);
        expect({ probe: probe.path, status: a.status, code: a.body?.code }).toEqual({ probe: probe.path, status: 401, code: 'UNAUTHORIZED' });
      }
      // The other key of the same project still works.
      expect((await call('B’s other key lists', keyB, list)).status).toBe(200);
      expect(await snapshotOfB()).toEqual(before);
    });

    it.each([...CREDENTIALS, ['a revoked key', 'revoked'] as const])(
      'the keyless resume routes under %s: another run’s request id → 404 PAUSE_REQUEST_MISMATCH, never 401',
      async (what, authorization) => {
        let header = authorization;
        if (authorization === 'revoked') {
          const { id, key } = await newApiKey(system.db.url, B);
          expect(await revokeKey(system.db.url, id)).toContain(`revoked ${id}`);
          header = `Bearer ${key}`;
        }
        for (const probe of resumes(targetsB)) {
          const a = await call(`${what}: ${probe.method} ${probe.path}`, null, probe, header);
          expect({ probe: probe.path, status: a.status, code: a.body?.code, entityId: a.body?.params?.entityId }).toEqual({
            probe: probe.path,
            status: 404,
            code: 'PAUSE_REQUEST_MISMATCH',
            entityId: own.requestId,
          });
        }
      },
    );

    it('none of the refused requests above changed anything: B’s and C’s runs and flows, and the whole store', async () => {
      expect(await storeFingerprint(system.db.url)).toEqual(storeBefore);
      expect(await snapshotOfB()).toEqual(beforeB);
      expect(await snapshotOf(apiC, C)).toEqual(beforeC);
      expect(beforeB.runs.find((r) => r.id === targetsB.pausedRunId)).toMatchObject({ status: 'PAUSED', pausedOn: expect.any(String) });
      expect(beforeB.runs.find((r) => r.id === targetsB.succeededRunId)).toMatchObject({ status: 'SUCCEEDED', executionDataPurgedAt: null });
    });
  });
});
