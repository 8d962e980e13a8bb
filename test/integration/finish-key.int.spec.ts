import { isDomainError, parseEnvelope, type DomainError, type EventEnvelope, type FlowStep } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { projectEnvelopes } from '@flowruns/projection';
import { createTestDatabase, uniqueName } from '@flowruns/testing';
import { RunCommands, type Transactor } from '@flowruns/write-model';
import { MikroORM } from '@mikro-orm/postgresql';

function ok<T>(r: T | DomainError): T {
  if (isDomainError(r)) throw new Error(`unexpected ${r.code} ${JSON.stringify(r.params)}`);
  return r;
}

/**
 * Retention's ranges hold runs by finish key (the instant a run last finished, then its id) in the
 * write model (`run_streams.finished_at`) and in the views (`run_views.finish_time`): a run's purge is
 * read on both sides by comparing its key with the ranges, so the two instants must be the same for
 * every way a run can finish — one by one and in bulk, created finished over its quota, finished
 * again after a retry from the failed step. The views here are the projection's fold of the log.
 */
describe('a run’s finish instant is the same in the write model and in its view', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let commands: RunCommands;

  beforeAll(async () => {
    db = await createTestDatabase('finishkey');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
    const tx: Transactor = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    commands = new RunCommands(tx, () => new Date(), { maxRetryAttempts: 5 });
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  it('for every terminal status, one by one and in bulk', async () => {
    const projectId = uniqueName('p_finish');
    const steps: FlowStep[] = [{ name: 'a', type: 'transform', settings: {} }];
    const flow = ok(await commands.createFlow({ projectId, displayName: 'F', tags: [], steps }));
    const started = async () => {
      const run = ok(
        await commands.trigger(flow.id, { projectId, payload: { n: 1 }, environment: 'PRODUCTION', triggeredBy: null, parentRunId: null, failParentOnFailure: false }),
      );
      ok(await commands.startStep(run.id, 'a', 'transform'));
      return run.id;
    };
    const failed = async () => {
      const id = await started();
      ok(await commands.finishStep(id, 'a', { status: 'FAILED', input: {}, error: { message: 'x' }, durationMs: 1 }));
      ok(await commands.fail(id, 'a'));
      return id;
    };
    const succeeded = await started();
    ok(await commands.finishStep(succeeded, 'a', { status: 'SUCCEEDED', input: {}, output: {}, durationMs: 1 }));
    ok(await commands.succeed(succeeded));
    const failedRun = await failed();
    const stopped = await started();
    ok(await commands.stop(stopped, { projectId, reason: 'by hand' }));
    const timedOut = await started();
    ok(await commands.timeOut(timedOut, 'EXECUTION_TIME'));
    const internal = await started();
    ok(await commands.failInternally(internal, 'boom'));
    // Failed, retried from the failed step, failed again: the second finish is the one kept.
    const again = await failed();
    ok(await commands.retry(again, { projectId, strategy: 'FROM_FAILED_STEP' }));
    ok(await commands.startStep(again, 'a', 'transform'));
    ok(await commands.finishStep(again, 'a', { status: 'FAILED', input: {}, error: { message: 'y' }, durationMs: 1 }));
    ok(await commands.fail(again, 'a'));
    // Cancelled in bulk (the many-runs append path).
    const bulk = [await started(), await started()];
    expect(ok(await commands.bulk({ action: 'cancel', projectId, reason: 'bulk', filter: { flowRunIds: bulk } })).changed).toBe(2);
    // Created finished: over the project's monthly quota.
    await orm.em.fork().execute('insert into projects (id, monthly_run_quota) values (?, 1) on conflict (id) do update set monthly_run_quota = 1', [projectId]);
    const over = ok(
      await commands.trigger(flow.id, { projectId, payload: {}, environment: 'PRODUCTION', triggeredBy: null, parentRunId: null, failParentOnFailure: false }),
    );
    expect(over.status).toBe('QUOTA_EXCEEDED');

    // The views: the projection's fold of the whole log.
    const rows = await orm.em.fork().execute<{ envelope: EventEnvelope }[]>('select envelope from run_events order by position');
    await orm.em.fork().transactional((tem) =>
      projectEnvelopes(sqlRunner(tem), rows.map((r) => {
        const parsed = parseEnvelope(JSON.stringify(r.envelope));
        if (parsed.kind !== 'known') throw new Error(`unparsable event ${JSON.stringify(r.envelope)}`);
        return parsed;
      })),
    );
    const compared = await orm.em.fork().execute<{ run_id: string; status: string; same: boolean; finished: boolean }[]>(
      `select s.run_id, s.status, s.finished_at is not distinct from v.finish_time as same, s.finished_at is not null as finished
       from run_streams s join run_views v on v.id = s.run_id where s.project_id = ? order by s.status`,
      [projectId],
    );
    expect(compared.filter((c) => !c.same)).toEqual([]);
    const byStatus = Object.fromEntries(compared.map((c) => [c.status, c.finished]));
    expect(byStatus).toEqual({ SUCCEEDED: true, FAILED: true, STOPPED: true, TIMEOUT: true, INTERNAL_ERROR: true, QUOTA_EXCEEDED: true });
    expect(compared).toHaveLength(9);
    expect(compared.find((c) => c.run_id === again)).toMatchObject({ status: 'FAILED', same: true });
    for (const id of [succeeded, failedRun, stopped, timedOut, internal, ...bulk, over.id]) expect(compared.some((c) => c.run_id === id)).toBe(true);
  });
});
