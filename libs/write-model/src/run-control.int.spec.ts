import { randomUUID } from 'node:crypto';
import { isDomainError, type DomainError, type FlowRun, type FlowStep } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { createTestDatabase, uniqueName } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { newRequestId, RunCommands, type Transactor } from './run-commands';
import { RunSupervisor } from './supervisor';

/** Unwraps a use case's answer; a domain error fails the test with its code. */
function ok<T>(r: T | DomainError): T {
  if (isDomainError(r)) throw new Error(`unexpected ${r.code} ${JSON.stringify(r.params)}`);
  return r;
}
function err(r: unknown): DomainError {
  if (!isDomainError(r)) throw new Error(`expected a domain error, got ${JSON.stringify(r)}`);
  return r;
}
/** The one answer to a resume request id the run did not issue, whatever the run. */
const notIssued = (requestId: string): DomainError => ({
  code: 'PAUSE_REQUEST_MISMATCH',
  params: { entityType: 'flow_run_request', entityId: requestId },
});

const step = (name: string, type = 'transform', settings: Record<string, unknown> = {}): FlowStep => ({ name, type, settings });

describe('run control use cases (real Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let tx: Transactor;
  let commands: RunCommands;

  beforeAll(async () => {
    db = await createTestDatabase('runctl');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 8 }));
    tx = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    commands = new RunCommands(tx, () => new Date(), { maxRetryAttempts: 3, pauseTimeoutSeconds: 3600 });
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => orm.em.fork().execute(sql, params) as Promise<T[]>;
  const statusOf = async (runId: string) => (await q<{ status: string }>('select status from run_streams where run_id = ?', [runId]))[0]?.status;
  const eventTypes = async (runId: string) =>
    (await q<{ type: string }>('select type from run_events where run_id = ? order by seq', [runId])).map((r) => r.type);

  const newFlow = async (projectId: string, steps: FlowStep[] = [step('a'), step('b')]) =>
    ok(await commands.createFlow({ projectId, displayName: 'Flow', tags: ['t1'], steps }));

  const trigger = async (
    flowId: string,
    projectId: string,
    extra: Partial<{ payload: unknown; parentRunId: string | null; failParentOnFailure: boolean }> = {},
    now?: Date,
  ) =>
    commands.trigger(
      flowId,
      {
        projectId,
        payload: extra.payload ?? { n: 1 },
        environment: 'PRODUCTION',
        triggeredBy: 'key_1',
        parentRunId: extra.parentRunId ?? null,
        failParentOnFailure: extra.failParentOnFailure ?? false,
      },
      { now },
    );

  /** A run that failed at step b after a succeeded. */
  const failedRun = async (projectId: string, flowId: string) => {
    const run = ok(await trigger(flowId, projectId, { payload: { order: 42 } }));
    ok(await commands.startStep(run.id, 'a', 'transform'));
    ok(await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: { a: 1 }, durationMs: 3 }));
    ok(await commands.startStep(run.id, 'b', 'transform'));
    ok(await commands.finishStep(run.id, 'b', { status: 'FAILED', error: { message: 'boom' }, durationMs: 3 }));
    ok(await commands.fail(run.id, 'b'));
    return run;
  };

  describe('flows', () => {
    it('publishes a new latest version, renames, lists newest first and reads one, all scoped to the project', async () => {
      const projectId = uniqueName('p_flows');
      const first = await newFlow(projectId, [step('a')]);
      const second = await newFlow(projectId, [step('x')]);
      const published = ok(
        await commands.publishFlowVersion(first.id, { projectId, displayName: 'Renamed', steps: [step('a'), step('b', 'delay', { ms: 1 })] }),
      );
      expect(published).toMatchObject({ id: first.id, displayName: 'Renamed', version: { version: 2, displayName: 'Renamed' } });
      expect(published.version.steps.map((s) => s.name)).toEqual(['a', 'b']);
      expect(ok(await commands.getFlow(projectId, first.id)).version.id).toBe(published.version.id);
      expect(ok(await commands.listFlows(projectId)).data.map((f) => f.id)).toEqual([second.id, first.id]);
      expect(ok(await commands.listFlows(uniqueName('p_other'))).data).toEqual([]);

      // A run records the version it ran.
      const run = ok(await trigger(first.id, projectId));
      expect(run).toMatchObject({ flowVersionId: published.version.id, flowVersion: { displayName: 'Renamed' }, stepsCount: 2, tags: ['t1'] });
    });

    it("answers another project's flow, or an unknown one, as not found", async () => {
      const projectId = uniqueName('p_flows');
      const flow = await newFlow(projectId);
      const other = uniqueName('p_other');
      expect(err(await commands.publishFlowVersion(flow.id, { projectId: other, steps: [step('a')] }))).toMatchObject({
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'flow', entityId: flow.id },
      });
      expect(err(await commands.getFlow(other, flow.id)).code).toBe('ENTITY_NOT_FOUND');
      expect(err(await commands.getFlow(projectId, 'nope')).code).toBe('ENTITY_NOT_FOUND');
    });

    it.each([
      ['an unknown type', [step('a', 'teleport')], 'a', 'steps[0].type'],
      ['a duplicate name', [step('a'), step('a')], 'a', 'steps[1].name'],
      ['a template naming a later step', [step('a', 'transform', { value: '{{steps.b.output.x}}' }), step('b')], 'a', 'steps[0].settings.value'],
      ['a template naming the step itself', [step('a', 'transform', { value: { deep: ['{{ steps.a.output }}'] } })], 'a', 'steps[0].settings.value.deep.0'],
      ['a template naming an unknown step', [step('a'), step('b', 'http', { url: 'http://x/{{steps.zz.output.id}}' })], 'b', 'steps[1].settings.url'],
    ])('refuses %s on create and on publish, naming the step', async (_what, steps, stepName, field) => {
      const projectId = uniqueName('p_flows');
      const created = err(await commands.createFlow({ projectId, displayName: 'Bad', tags: [], steps }));
      expect(created).toMatchObject({ code: 'FLOW_DEFINITION_INVALID', params: { stepName, field } });
      const flow = await newFlow(projectId);
      const published = err(await commands.publishFlowVersion(flow.id, { projectId, steps }));
      expect(published).toMatchObject({ code: 'FLOW_DEFINITION_INVALID', params: { stepName, field } });
      // Nothing was published.
      expect(ok(await commands.getFlow(projectId, flow.id)).version.version).toBe(1);
    });

    it('accepts templates on the trigger and on earlier steps', async () => {
      const projectId = uniqueName('p_flows');
      ok(
        await commands.createFlow({
          projectId,
          displayName: 'Good',
          tags: [],
          steps: [
            step('a', 'transform', { value: '{{trigger.body.id}}' }),
            step('b', 'http', { method: 'POST', url: 'http://x', body: { id: '{{steps.a.output}}', t: '{{trigger}}' } }),
          ],
        }),
      );
    });
  });

  describe('triggers in one transaction (triggerMany)', () => {
    // The command service answers every single trigger through triggerMany (group commit), and
    // COMMAND_TRIGGER_GROUP=0 through trigger: both must start the same run.
    it('starts each run as trigger starts it: the same events, stream row and stored payload', async () => {
      const projectId = uniqueName('p_many');
      const flow = await newFlow(projectId);
      const parent = ok(await trigger(flow.id, projectId));
      const reqs = [
        { payload: { n: 1 }, parentRunId: null, failParentOnFailure: false },
        { payload: { child: true }, parentRunId: parent.id, failParentOnFailure: true },
      ];
      const base = { projectId, environment: 'TESTING' as const, triggeredBy: 'key_many' };
      const singles = await Promise.all(reqs.map((r) => commands.trigger(flow.id, { ...base, ...r }).then(ok)));
      const batched = ok(await commands.triggerMany(reqs.map((r) => ({ ...base, ...r, flowId: flow.id })))).map(ok);

      /** What a run is, without what differs between twins (ids, instants, references). */
      const shape = async (runId: string) => {
        const events = await q<{ seq: number; type: string; envelope: { data: Record<string, unknown> } }>(
          'select seq, type, envelope from run_events where run_id = ? order by seq',
          [runId],
        );
        const [stream] = await q<{ version: number; status: string; parent_run_id: string | null; state: { status: string; steps: unknown } }>(
          'select version, status, parent_run_id, state from run_streams where run_id = ?',
          [runId],
        );
        const payload = await q("select kind, output, bytes from execution_data where run_id = ? and kind = 'trigger'", [runId]);
        return {
          events: events.map((e) => ({ seq: e.seq, type: e.type, data: { ...e.envelope.data, triggerDataRef: typeof e.envelope.data.triggerDataRef } })),
          stream: { version: stream.version, status: stream.status, parent: stream.parent_run_id, state: { status: stream.state.status, steps: stream.state.steps } },
          payload,
        };
      };
      const answer = (r: FlowRun) => ({ ...r, id: typeof r.id, created: typeof r.created, startTime: typeof r.startTime });
      for (let i = 0; i < reqs.length; i++) {
        expect(answer(batched[i])).toEqual(answer(singles[i]));
        expect(await shape(batched[i].id)).toEqual(await shape(singles[i].id));
      }
      expect(batched[1]).toMatchObject({ parentRunId: parent.id, environment: 'TESTING', triggeredBy: 'key_many' });
    });
  });

  describe('monthly run quota', () => {
    it('records the run over quota as triggered + quota-exceeded in one append, answers it, and counts only this month', async () => {
      const projectId = uniqueName('p_quota');
      const flow = await newFlow(projectId);
      await q('update projects set monthly_run_quota = 2 where id = ?', [projectId]);
      // Last month's runs do not count.
      const lastMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1) - 1000);
      ok(await trigger(flow.id, projectId, {}, lastMonth));
      ok(await trigger(flow.id, projectId, {}, lastMonth));
      const r1 = ok(await trigger(flow.id, projectId));
      const r2 = ok(await trigger(flow.id, projectId));
      const over = ok(await trigger(flow.id, projectId));
      expect([r1.status, r2.status]).toEqual(['RUNNING', 'RUNNING']);
      expect(over).toMatchObject({ status: 'QUOTA_EXCEEDED', attempt: 1 });
      expect(over.finishTime).not.toBeNull();
      expect(await eventTypes(over.id)).toEqual(['flowrun.triggered.v1', 'flowrun.quota-exceeded.v1']);
      expect(await statusOf(over.id)).toBe('QUOTA_EXCEEDED');
      const data = await q<{ envelope: { data: { quota: number }; seq: number } }>(
        `select envelope from run_events where run_id = ? and type = 'flowrun.quota-exceeded.v1'`,
        [over.id],
      );
      expect(data[0].envelope).toMatchObject({ seq: 2, data: { quota: 2 } });
    });

    it('never overshoots under concurrent triggers', async () => {
      const projectId = uniqueName('p_quota');
      const flow = await newFlow(projectId);
      await q('update projects set monthly_run_quota = 3 where id = ?', [projectId]);
      const runs = await Promise.all(Array.from({ length: 8 }, () => trigger(flow.id, projectId).then(ok)));
      expect(runs.filter((r) => r.status === 'RUNNING')).toHaveLength(3);
      expect(runs.filter((r) => r.status === 'QUOTA_EXCEEDED')).toHaveLength(5);
    });

    it('leaves a project without a quota unlimited', async () => {
      const projectId = uniqueName('p_quota');
      const flow = await newFlow(projectId);
      for (let i = 0; i < 3; i++) expect(ok(await trigger(flow.id, projectId)).status).toBe('RUNNING');
    });
  });

  describe('stop', () => {
    it('stops a run and every RUNNING/PAUSED descendant, to the grandchildren, counting only runs changed', async () => {
      const projectId = uniqueName('p_stop');
      const flow = await newFlow(projectId);
      const root = ok(await trigger(flow.id, projectId));
      const child = ok(await trigger(flow.id, projectId, { parentRunId: root.id }));
      const doneChild = ok(await trigger(flow.id, projectId, { parentRunId: root.id }));
      ok(await commands.succeed(doneChild.id));
      const grandchild = ok(await trigger(flow.id, projectId, { parentRunId: child.id }));
      ok(await commands.startStep(grandchild.id, 'a', 'approval'));
      ok(await commands.pause(grandchild.id, 'a', null));
      const greatGrandchild = ok(await trigger(flow.id, projectId, { parentRunId: doneChild.id }));
      const unrelated = ok(await trigger(flow.id, projectId));

      const r = ok(await commands.stop(root.id, { projectId, reason: 'stopped by request' }));
      expect(r).toMatchObject({ runId: root.id, status: 'STOPPED', eventsAppended: 1, stopped: 4 });
      for (const id of [root.id, child.id, grandchild.id, greatGrandchild.id]) expect(await statusOf(id)).toBe('STOPPED');
      expect(await statusOf(doneChild.id)).toBe('SUCCEEDED');
      expect(await statusOf(unrelated.id)).toBe('RUNNING');

      expect(err(await commands.stop(root.id, { projectId, reason: 'again' }))).toMatchObject({
        code: 'INVALID_TRANSITION',
        params: { status: 'STOPPED' },
      });
    });

    it("answers another project's run as not found and leaves it alone", async () => {
      const projectId = uniqueName('p_stop');
      const flow = await newFlow(projectId);
      const run = ok(await trigger(flow.id, projectId));
      expect(err(await commands.stop(run.id, { projectId: 'someone-else', reason: 'x' }))).toMatchObject({
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'flow_run' },
      });
      expect(await statusOf(run.id)).toBe('RUNNING');
    });
  });

  describe('time-out and internal error', () => {
    it('ends an active run, and refuses an ended one with its status', async () => {
      const projectId = uniqueName('p_end');
      const flow = await newFlow(projectId);
      const a = ok(await trigger(flow.id, projectId));
      expect(ok(await commands.timeOut(a.id, 'EXECUTION_TIME'))).toMatchObject({ status: 'TIMEOUT', eventsAppended: 1 });
      expect(err(await commands.failInternally(a.id, 'crash'))).toMatchObject({ code: 'INVALID_TRANSITION', params: { status: 'TIMEOUT' } });
      const b = ok(await trigger(flow.id, projectId));
      expect(ok(await commands.failInternally(b.id, 'engine crashed'))).toMatchObject({ status: 'INTERNAL_ERROR' });
      expect(err(await commands.timeOut('missing', 'EXECUTION_TIME')).code).toBe('ENTITY_NOT_FOUND');
    });
  });

  describe('retry FROM_FAILED_STEP', () => {
    it('answers the same run in a new attempt, up to the maximum attempts', async () => {
      const projectId = uniqueName('p_retry');
      const flow = await newFlow(projectId);
      const run = await failedRun(projectId, flow.id);
      const retried = ok(await commands.retry(run.id, { projectId, strategy: 'FROM_FAILED_STEP' }));
      expect(retried).toMatchObject({
        id: run.id,
        status: 'RUNNING',
        attempt: 2,
        failedStepName: null,
        finishTime: null,
        flowVersionId: run.flowVersionId,
        created: run.created,
        startTime: run.startTime,
      });
      // The earlier step keeps its output; the failed one runs again.
      expect(err(await commands.startStep(run.id, 'a', 'transform')).code).toBe('STEP_ALREADY_FINISHED');
      ok(await commands.startStep(run.id, 'b', 'transform'));
      expect(err(await commands.retry(run.id, { projectId, strategy: 'FROM_FAILED_STEP' }))).toMatchObject({
        code: 'INVALID_TRANSITION',
        params: { status: 'RUNNING' },
      });
      ok(await commands.fail(run.id, 'b'));
      expect(ok(await commands.retry(run.id, { projectId, strategy: 'FROM_FAILED_STEP' })).attempt).toBe(3);
      ok(await commands.fail(run.id, 'b'));
      expect(err(await commands.retry(run.id, { projectId, strategy: 'FROM_FAILED_STEP' }))).toMatchObject({
        code: 'MAX_ATTEMPTS_REACHED',
        params: { attempts: 3, maxAttempts: 3 },
      });
    });

    it('refuses an archived run, a purged run, a succeeded run, and another project', async () => {
      const projectId = uniqueName('p_retry');
      const flow = await newFlow(projectId);
      const archived = await failedRun(projectId, flow.id);
      ok(await commands.apply(archived.id, () => ({ type: 'ArchiveRun' })));
      expect(err(await commands.retry(archived.id, { projectId, strategy: 'FROM_FAILED_STEP' })).code).toBe('RUN_ARCHIVED');
      const purged = await failedRun(projectId, flow.id);
      ok(await commands.apply(purged.id, () => ({ type: 'PurgeExecutionData', reason: 'RETENTION' })));
      expect(err(await commands.retry(purged.id, { projectId, strategy: 'FROM_FAILED_STEP' })).code).toBe('EXECUTION_DATA_PURGED');
      expect(err(await commands.retry(purged.id, { projectId, strategy: 'ON_LATEST_VERSION' })).code).toBe('EXECUTION_DATA_PURGED');
      const succeeded = ok(await trigger(flow.id, projectId));
      ok(await commands.succeed(succeeded.id));
      expect(err(await commands.retry(succeeded.id, { projectId, strategy: 'FROM_FAILED_STEP' }))).toMatchObject({
        code: 'INVALID_TRANSITION',
        params: { status: 'SUCCEEDED' },
      });
      const other = await failedRun(projectId, flow.id);
      expect(err(await commands.retry(other.id, { projectId: 'someone-else', strategy: 'FROM_FAILED_STEP' })).code).toBe('ENTITY_NOT_FOUND');
    });
  });

  describe('retry ON_LATEST_VERSION', () => {
    it('starts a new run of the latest version with a copy of the trigger payload, linked by retryOf, counting attempts', async () => {
      const projectId = uniqueName('p_retry');
      const flow = await newFlow(projectId);
      const original = await failedRun(projectId, flow.id);
      const v2 = ok(await commands.publishFlowVersion(flow.id, { projectId, steps: [step('a'), step('b'), step('c')] }));

      const fresh: FlowRun = ok(await commands.retry(original.id, { projectId, strategy: 'ON_LATEST_VERSION' }));
      expect(fresh).toMatchObject({ status: 'RUNNING', retryOf: original.id, flowVersionId: v2.version.id, stepsCount: 3, attempt: 1 });
      expect(fresh.id).not.toBe(original.id);
      const exec = ok(await commands.execution(fresh.id));
      expect(exec.trigger).toEqual({ order: 42 });
      expect(exec.steps.map((s) => s.name)).toEqual(['a', 'b', 'c']);
      // The copy is the new run's own record: purging the original leaves it.
      const refs = await q<{ run_id: string }>(`select run_id from execution_data where kind = 'trigger' and run_id in (?, ?)`, [
        original.id,
        fresh.id,
      ]);
      expect(refs.map((r) => r.run_id).sort()).toEqual([original.id, fresh.id].sort());

      const retried = await q<{ envelope: { data: Record<string, unknown> } }>(
        `select envelope from run_events where run_id = ? and type = 'flowrun.retried.v1'`,
        [original.id],
      );
      expect(retried[0].envelope.data).toMatchObject({ strategy: 'ON_LATEST_VERSION', newRunId: fresh.id });
      expect(await statusOf(original.id)).toBe('FAILED');

      ok(await commands.retry(original.id, { projectId, strategy: 'ON_LATEST_VERSION' }));
      expect(err(await commands.retry(original.id, { projectId, strategy: 'ON_LATEST_VERSION' }))).toMatchObject({
        code: 'MAX_ATTEMPTS_REACHED',
        params: { attempts: 3, maxAttempts: 3 },
      });
    });
  });

  describe('resume', () => {
    const pausedRun = async (resumeDeadline: string | null = null) => {
      const projectId = uniqueName('p_resume');
      const flow = await newFlow(projectId, [step('a'), step('approve', 'approval')]);
      const run = ok(await trigger(flow.id, projectId));
      ok(await commands.startStep(run.id, 'approve', 'approval'));
      const paused = ok(await commands.pause(run.id, 'approve', resumeDeadline));
      return { run, requestId: paused.requestId, resumeDeadline: paused.resumeDeadline };
    };

    it('resumes with the right id once: the body is stored and is the step output', async () => {
      const before = Date.now();
      const { run, requestId, resumeDeadline } = await pausedRun();
      // Without a deadline in the request, AP_PAUSE_TIMEOUT_SECONDS (3600 here) sets it.
      expect(new Date(resumeDeadline).getTime()).toBeGreaterThanOrEqual(before + 3600 * 1000);
      const answer = ok(await commands.resume(run.id, requestId, { approved: true }));
      expect(answer).toEqual({ runId: run.id, stepName: 'approve', output: { approved: true } });
      expect(await statusOf(run.id)).toBe('RUNNING');
      const stored = await q<{ kind: string; step_name: string; output: unknown }>(
        `select kind, step_name, output from execution_data where run_id = ? and kind = 'resume'`,
        [run.id],
      );
      expect(stored).toEqual([{ kind: 'resume', step_name: 'approve', output: { approved: true } }]);
      expect(ok(await commands.execution(run.id)).results.approve).toEqual({ status: 'SUCCEEDED', attempt: 1, output: { approved: true } });

      // Used once already: not found (single-use), and nothing changes.
      expect(err(await commands.resume(run.id, requestId, { again: true }))).toMatchObject({
        code: 'PAUSE_REQUEST_MISMATCH',
        params: { reason: 'ALREADY_USED' },
      });
    });

    it('refuses a wrong id (404), a run that is not paused (404 unless it issued the id), and an expired request (410)', async () => {
      const { run, requestId } = await pausedRun();
      expect(err(await commands.resume(run.id, 'req_wrong', {}))).toMatchObject({ code: 'PAUSE_REQUEST_MISMATCH' });
      expect(await statusOf(run.id)).toBe('PAUSED');

      const projectId = uniqueName('p_resume');
      const flow = await newFlow(projectId);
      const running = ok(await trigger(flow.id, projectId));
      // Another run's real id is not one this run issued: the same 404 as any guess.
      expect(err(await commands.resume(running.id, requestId, {}))).toEqual(notIssued(requestId));

      const expired = await pausedRun(new Date(Date.now() - 1000).toISOString());
      expect(err(await commands.resume(expired.run.id, expired.requestId, {}))).toMatchObject({
        code: 'PAUSE_EXPIRED',
        params: { entityId: expired.requestId },
      });
      expect(await q(`select 1 from execution_data where run_id = ? and kind = 'resume'`, [expired.run.id])).toEqual([]);
      // Once the supervisor timed it out, the id is still answered as expired.
      ok(await commands.timeOut(expired.run.id, 'PAUSE_TIME'));
      expect(err(await commands.resume(expired.run.id, expired.requestId, {})).code).toBe('PAUSE_EXPIRED');
    });
  });

  /**
   * The resume routes take no API key: the request id is the capability. A caller without an id the
   * run issued must learn nothing (not whether the run exists, its status, or that it waits on
   * another id), and its refusal must write nothing: no stream row, event (the outbox) or data.
   */
  describe('resume with an id the run did not issue', () => {
    /** What the write model holds of a run; a missing run holds nothing at all. */
    const stored = async (runId: string) => ({
      stream: await q('select version, status, state, resume_deadline, finished_at from run_streams where run_id = ?', [runId]),
      events: await q('select event_id, seq, type from run_events where run_id = ? order by seq', [runId]),
      data: await q('select ref, kind, step_name from execution_data where run_id = ? order by ref', [runId]),
      leases: await q('select worker_id from run_leases where run_id = ?', [runId]),
    });

    const approvalRun = async (projectId: string) => {
      const flow = await newFlow(projectId, [step('a'), step('approve', 'approval')]);
      const run = ok(await trigger(flow.id, projectId));
      ok(await commands.startStep(run.id, 'approve', 'approval'));
      return run;
    };

    it('answers one and the same 404 for an unknown run, a running, finished, cancelled or paused run, and writes nothing', async () => {
      const projectId = uniqueName('p_resume_guess');
      const paused = await approvalRun(projectId);
      const awaited = ok(await commands.pause(paused.id, 'approve', null)).requestId;
      const running = await approvalRun(projectId);
      const succeeded = await approvalRun(projectId);
      ok(await commands.succeed(succeeded.id));
      const cancelled = await approvalRun(projectId);
      ok(await commands.stop(cancelled.id, { projectId, reason: 'test' }));
      // Paused, resumed and finished: it issued an id, just not the one sent.
      const resumedOnce = await approvalRun(projectId);
      const used = ok(await commands.pause(resumedOnce.id, 'approve', null)).requestId;
      ok(await commands.resume(resumedOnce.id, used, { ok: true }));
      ok(await commands.succeed(resumedOnce.id));
      const unknown = randomUUID();

      const guess = newRequestId();
      const runIds = [unknown, running.id, succeeded.id, cancelled.id, paused.id, resumedOnce.id];
      const before = await Promise.all(runIds.map(stored));
      expect(before[0]).toEqual({ stream: [], events: [], data: [], leases: [] });
      for (const runId of runIds) {
        expect({ runId, answer: await commands.resume(runId, guess, { approved: true }) }).toEqual({ runId, answer: notIssued(guess) });
      }
      expect(await Promise.all(runIds.map(stored))).toEqual(before);
      // The paused run still waits on its own id, which resumes it.
      expect(ok(await commands.resume(paused.id, awaited, { approved: true }))).toEqual({ runId: paused.id, stepName: 'approve', output: { approved: true } });
    });

    it('tells the holder of a real id more: 200 once, then ALREADY_USED; 409 naming the status once the run was cancelled or failed while waiting', async () => {
      const projectId = uniqueName('p_resume_holder');
      const paused = await approvalRun(projectId);
      const requestId = ok(await commands.pause(paused.id, 'approve', null)).requestId;
      expect(ok(await commands.resume(paused.id, requestId, { approved: true }))).toEqual({ runId: paused.id, stepName: 'approve', output: { approved: true } });
      const afterResume = await stored(paused.id);
      expect(err(await commands.resume(paused.id, requestId, { approved: false }))).toEqual({
        code: 'PAUSE_REQUEST_MISMATCH',
        params: { entityType: 'flow_run_request', entityId: requestId, reason: 'ALREADY_USED' },
      });
      expect(await stored(paused.id)).toEqual(afterResume);

      const cancelled = await approvalRun(projectId);
      const x = ok(await commands.pause(cancelled.id, 'approve', null)).requestId;
      ok(await commands.stop(cancelled.id, { projectId, reason: 'test' }));
      const failed = await approvalRun(projectId);
      const y = ok(await commands.pause(failed.id, 'approve', null)).requestId;
      ok(await commands.fail(failed.id, 'approve'));
      const before = [await stored(cancelled.id), await stored(failed.id)];
      expect(err(await commands.resume(cancelled.id, x, {}))).toEqual({
        code: 'INVALID_TRANSITION',
        params: { entityType: 'flow_run', entityId: cancelled.id, status: 'STOPPED', command: 'ResumeRun' },
      });
      expect(err(await commands.resume(failed.id, y, {}))).toMatchObject({ code: 'INVALID_TRANSITION', params: { status: 'FAILED' } });
      // Each run's id is its own: presented to the other run, it is just not issued.
      expect(err(await commands.resume(failed.id, x, {}))).toEqual(notIssued(x));
      expect([await stored(cancelled.id), await stored(failed.id)]).toEqual(before);
    });
  });

  describe('leases and fencing', () => {
    const running = async () => {
      const projectId = uniqueName('p_lease');
      const flow = await newFlow(projectId);
      return ok(await trigger(flow.id, projectId));
    };

    it('grants a free run to exactly one of two workers racing for it; renews for the holder only', async () => {
      const run = await running();
      const [a, b] = await Promise.all([commands.acquireLease(run.id, 'w1', 30000), commands.acquireLease(run.id, 'w2', 30000)]).then((rs) =>
        rs.map(ok),
      );
      expect([a.acquired, b.acquired].sort()).toEqual([false, true]);
      const winner = a.acquired ? 'w1' : 'w2';
      const loser = a.acquired ? 'w2' : 'w1';
      expect((a.acquired ? b : a).holder).toBe(winner);
      expect(ok(await commands.acquireLease(run.id, winner, 30000))).toMatchObject({ acquired: true, holder: winner });
      expect(ok(await commands.acquireLease(run.id, loser, 30000))).toMatchObject({ acquired: false, holder: winner });
      expect(err(await commands.acquireLease('missing', 'w1', 30000)).code).toBe('ENTITY_NOT_FOUND');
    });

    it('leases only RUNNING runs, and drops the lease when the run leaves RUNNING', async () => {
      const run = await running();
      ok(await commands.acquireLease(run.id, 'w1', 30000));
      ok(await commands.succeed(run.id, { workerId: 'w1' }));
      expect(await q('select 1 from run_leases where run_id = ?', [run.id])).toEqual([]);
      expect(ok(await commands.acquireLease(run.id, 'w1', 30000))).toEqual({ acquired: false, holder: null, expiresAt: null });
    });

    it('lets another worker claim an expired lease; the old holder is then fenced out (LEASE_LOST)', async () => {
      const run = await running();
      const t0 = new Date();
      ok(await commands.acquireLease(run.id, 'w1', 1000, { now: t0 }));
      ok(await commands.startStep(run.id, 'a', 'transform', { workerId: 'w1', now: t0 }));
      const later = new Date(t0.getTime() + 5000);
      // Nothing expired yet at t0: nothing to claim.
      expect(ok(await commands.claimExpired('w2', 30000, 100, { now: t0 })).runIds).not.toContain(run.id);
      expect(ok(await commands.claimExpired('w2', 30000, 100, { now: later })).runIds).toContain(run.id);

      const lost = err(await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: 1, durationMs: 1 }, { workerId: 'w1', now: later }));
      expect(lost).toMatchObject({ code: 'LEASE_LOST', params: { workerId: 'w1', holder: 'w2' } });
      expect(await q(`select 1 from execution_data where run_id = ? and kind = 'step'`, [run.id])).toEqual([]);
      for (const r of [
        await commands.startStep(run.id, 'b', 'transform', { workerId: 'w1', now: later }),
        await commands.pause(run.id, 'b', null, { workerId: 'w1', now: later }),
        await commands.succeed(run.id, { workerId: 'w1', now: later }),
        await commands.fail(run.id, null, { workerId: 'w1', now: later }),
      ]) {
        expect(err(r).code).toBe('LEASE_LOST');
      }
      // The new holder's reports are taken; an unnamed report is not fenced.
      ok(await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: 1, durationMs: 1 }, { workerId: 'w2', now: later }));
      ok(await commands.startStep(run.id, 'b', 'transform', { now: later }));
      expect(ok(await commands.releaseLease(run.id, 'w1'))).toEqual({ released: false });
      expect(ok(await commands.releaseLease(run.id, 'w2'))).toEqual({ released: true });
      expect(err(await commands.succeed(run.id, { workerId: 'w2', now: later })).code).toBe('LEASE_LOST');
    });

    it('never gives the same expired run to two workers claiming at once', async () => {
      const t0 = new Date();
      const runs = await Promise.all(Array.from({ length: 6 }, running));
      for (const r of runs) ok(await commands.acquireLease(r.id, 'dead', 1000, { now: t0 }));
      const later = new Date(t0.getTime() + 60000);
      const [x, y] = await Promise.all([commands.claimExpired('w-x', 30000, 100, { now: later }), commands.claimExpired('w-y', 30000, 100, { now: later })]);
      const ids = new Set(runs.map((r) => r.id));
      const gotX = ok(x).runIds.filter((id) => ids.has(id));
      const gotY = ok(y).runIds.filter((id) => ids.has(id));
      expect(gotX.filter((id) => gotY.includes(id))).toEqual([]);
      expect(gotX.length + gotY.length).toBe(6);
    });
  });

  describe('execution view', () => {
    it('shows the version steps, the trigger payload, each result with succeeded outputs, the pause; and purge', async () => {
      const projectId = uniqueName('p_exec');
      const flow = await newFlow(projectId, [step('a'), step('b'), step('approve', 'approval')]);
      const run = ok(await trigger(flow.id, projectId, { payload: { hello: 'world' } }));
      ok(await commands.startStep(run.id, 'a', 'transform'));
      ok(await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', input: { i: 1 }, output: { o: 1 }, durationMs: 1 }));
      ok(await commands.startStep(run.id, 'b', 'transform'));
      ok(await commands.finishStep(run.id, 'b', { status: 'FAILED', error: 'nope', durationMs: 1 }));
      ok(await commands.startStep(run.id, 'approve', 'approval'));
      const { requestId } = ok(await commands.pause(run.id, 'approve', null));
      const exec = ok(await commands.execution(run.id));
      expect(exec).toMatchObject({
        runId: run.id,
        projectId,
        flowId: flow.id,
        flowVersionId: flow.version.id,
        status: 'PAUSED',
        attempt: 1,
        startTime: run.startTime,
        parentRunId: null,
        failParentOnFailure: false,
        trigger: { hello: 'world' },
        results: {
          a: { status: 'SUCCEEDED', attempt: 1, output: { o: 1 } },
          b: { status: 'FAILED', attempt: 1 },
          approve: { status: 'PAUSED', attempt: 1 },
        },
        pause: { requestId, stepName: 'approve' },
        purged: false,
      });
      expect(exec.steps.map((s) => s.name)).toEqual(['a', 'b', 'approve']);
      expect(exec.results.b).not.toHaveProperty('output');

      ok(await commands.stop(run.id, { reason: 'x' }));
      ok(await commands.apply(run.id, () => ({ type: 'PurgeExecutionData', reason: 'RETENTION' })));
      await q('delete from execution_data where run_id = ?', [run.id]);
      expect(ok(await commands.execution(run.id))).toMatchObject({ trigger: null, purged: true, results: { a: { status: 'SUCCEEDED' } } });
      expect(err(await commands.execution('missing')).code).toBe('ENTITY_NOT_FOUND');
    });
  });

  describe('supervisor', () => {
    const supervisor = () => new RunSupervisor(tx, { flowTimeoutSeconds: 60, orphanRunSeconds: 30, batchSize: 2 });

    it('times out paused runs past their deadline, runs past the flow timeout, and runs without a live lease', async () => {
      const projectId = uniqueName('p_sup');
      const flow = await newFlow(projectId);
      const t0 = new Date(Date.now() - 3600 * 1000); // all in the past, so the real clock sweeps them
      const at = (s: number) => new Date(t0.getTime() + s * 1000);

      const paused = ok(await trigger(flow.id, projectId, {}, t0));
      ok(await commands.pause(paused.id, 'a', at(10).toISOString(), { now: t0 }));
      const pausedLater = ok(await trigger(flow.id, projectId, {}, t0));
      ok(await commands.pause(pausedLater.id, 'a', new Date(Date.now() + 3600 * 1000).toISOString(), { now: t0 }));
      // Leased and renewed all along (lease live now): only the flow timeout ends it.
      const leased = ok(await trigger(flow.id, projectId, {}, t0));
      ok(await commands.acquireLease(leased.id, 'w1', 600000, { now: new Date() }));
      // Never picked up by a worker.
      const orphan = ok(await trigger(flow.id, projectId, {}, new Date(Date.now() - 40 * 1000)));
      // As old as the orphan, but waiting on a subflow child (no lease by design): left alone.
      const waitingParent = ok(await trigger(flow.id, projectId, {}, new Date(Date.now() - 40 * 1000)));
      ok(await commands.startStep(waitingParent.id, 'call_child', 'subflow'));
      // Recently started, with a worker: left alone.
      const healthy = ok(await trigger(flow.id, projectId));
      ok(await commands.acquireLease(healthy.id, 'w1', 600000));

      const sup = supervisor();
      const [c1, c2] = await Promise.all([sup.tick(), supervisor().tick()]);
      const total = (k: keyof typeof c1) => c1[k] + c2[k];
      expect(total('pauseExpired')).toBeGreaterThanOrEqual(1);

      const reasonOf = async (runId: string) =>
        (await q<{ envelope: { data: { reason: string } } }>(`select envelope from run_events where run_id = ? and type = 'flowrun.timed-out.v1'`, [runId])).map(
          (r) => r.envelope.data.reason,
        );
      expect(await reasonOf(paused.id)).toEqual(['PAUSE_TIME']);
      expect(await reasonOf(leased.id)).toEqual(['EXECUTION_TIME']);
      expect(await reasonOf(orphan.id)).toEqual(['WORKER_LOST']);
      expect(await statusOf(pausedLater.id)).toBe('PAUSED');
      expect(await statusOf(healthy.id)).toBe('RUNNING');
      expect(await statusOf(waitingParent.id)).toBe('RUNNING');
      // Exactly one timeout each, though two supervisors swept at once.
      expect(await eventTypes(paused.id)).toEqual(['flowrun.triggered.v1', 'flowrun.paused.v1', 'flowrun.timed-out.v1']);
    });

    it('sweeps for lost workers at most every tenth of the orphan time, and at the next tick after a sweep its batch bound cut short', async () => {
      const projectId = uniqueName('p_sup');
      const flow = await newFlow(projectId);
      // Started long before any other test's run: a sweep goes oldest first.
      const longAgo = (s: number) => new Date(Date.UTC(2000, 0, 1) + s * 1000);
      // Orphan time 30 s: sweeps at least 3 s apart. One run per batch: ten batches per sweep.
      const sup = new RunSupervisor(tx, { flowTimeoutSeconds: 10 ** 9, orphanRunSeconds: 30, batchSize: 1 });
      const t = Date.now();
      const at = (ms: number) => new Date(t + ms);
      // End whatever orphans earlier tests left; the last sweep of this finds none (a complete sweep).
      while ((await sup.tick(at(0))).workerLost > 0);

      const orphan = ok(await trigger(flow.id, projectId, {}, longAgo(0)));
      expect((await sup.tick(at(1000))).workerLost).toBe(0);
      expect(await statusOf(orphan.id)).toBe('RUNNING');
      expect((await sup.tick(at(3000))).workerLost).toBe(1);
      expect(await statusOf(orphan.id)).toBe('TIMEOUT');

      const many: FlowRun[] = [];
      for (let i = 0; i < 11; i++) many.push(ok(await trigger(flow.id, projectId, {}, longAgo(i + 1))));
      expect((await sup.tick(at(6000))).workerLost).toBe(10);
      // Not due for another 3 s, but the last sweep stopped at its bound with runs left: go on now.
      expect((await sup.tick(at(6500))).workerLost).toBe(1);
      for (const run of many) expect(await statusOf(run.id)).toBe('TIMEOUT');
      const reasons = await q<{ reason: string }>(
        `select envelope->'data'->>'reason' as reason from run_events where run_id in (?) and type = 'flowrun.timed-out.v1'`,
        [[orphan.id, ...many.map((r) => r.id)]],
      );
      expect(reasons.map((r) => r.reason)).toEqual(Array(12).fill('WORKER_LOST'));
    });

    it('measures the flow timeout from when the run last entered RUNNING (a resume restarts it)', async () => {
      const projectId = uniqueName('p_sup');
      const flow = await newFlow(projectId);
      const t0 = new Date(Date.now() - 3600 * 1000);
      const run = ok(await trigger(flow.id, projectId, {}, t0));
      ok(await commands.startStep(run.id, 'a', 'approval', { now: t0 }));
      const { requestId } = ok(await commands.pause(run.id, 'a', new Date(Date.now() + 3600 * 1000).toISOString(), { now: t0 }));
      ok(await commands.resume(run.id, requestId, {}));
      ok(await commands.acquireLease(run.id, 'w1', 600000));
      await supervisor().tick();
      expect(await statusOf(run.id)).toBe('RUNNING');
    });
  });

  describe('a failing child fails its parent when asked to', () => {
    const family = async () => {
      const projectId = uniqueName('p_family');
      const flow = await newFlow(projectId, [step('a'), step('sub', 'subflow')]);
      const parent = ok(await trigger(flow.id, projectId));
      ok(await commands.startStep(parent.id, 'sub', 'subflow'));
      return { projectId, flow, parent };
    };

    it.each([
      ['FAILED', (c: RunCommands, id: string) => c.fail(id, 'a')],
      ['TIMEOUT', (c: RunCommands, id: string) => c.timeOut(id, 'EXECUTION_TIME')],
      ['INTERNAL_ERROR', (c: RunCommands, id: string) => c.failInternally(id, 'crash')],
    ] as const)('child ends %s with failParentOnFailure: the parent fails at its subflow step, in the same transaction', async (_s, end) => {
      const { projectId, flow, parent } = await family();
      const child = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      ok(await end(commands, child.id));
      expect(await statusOf(parent.id)).toBe('FAILED');
      const failed = await q<{ envelope: { data: { failedStepName: string } } }>(
        `select envelope from run_events where run_id = ? and type = 'flowrun.failed.v1'`,
        [parent.id],
      );
      expect(failed[0].envelope.data.failedStepName).toBe('sub');
    });

    it('a child over quota at its trigger fails its parent; up the chain to the grandparent', async () => {
      const { projectId, flow, parent: grandparent } = await family();
      const parent = ok(await trigger(flow.id, projectId, { parentRunId: grandparent.id, failParentOnFailure: true }));
      await q('update projects set monthly_run_quota = 0 where id = ?', [projectId]);
      const child = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      expect(child.status).toBe('QUOTA_EXCEEDED');
      expect(await statusOf(parent.id)).toBe('FAILED');
      expect(await statusOf(grandparent.id)).toBe('FAILED');
    });

    it('fails a paused parent too', async () => {
      const { projectId, flow, parent } = await family();
      const child = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      ok(await commands.pause(parent.id, 'sub', null));
      ok(await commands.fail(child.id, 'a'));
      expect(await statusOf(parent.id)).toBe('FAILED');
    });

    it('leaves the parent alone without the flag, when the child succeeds or is stopped, or when the parent already ended', async () => {
      const { projectId, flow, parent } = await family();
      const quiet = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: false }));
      ok(await commands.fail(quiet.id, 'a'));
      const fine = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      ok(await commands.succeed(fine.id));
      const stopped = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      ok(await commands.stop(stopped.id, { reason: 'x' }));
      expect(await statusOf(parent.id)).toBe('RUNNING');

      ok(await commands.succeed(parent.id));
      const late = ok(await trigger(flow.id, projectId, { parentRunId: parent.id, failParentOnFailure: true }));
      ok(await commands.fail(late.id, 'a'));
      expect(await statusOf(parent.id)).toBe('SUCCEEDED');
    });
  });
});
