import { isDomainError, type DomainError, type FlowStep } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { createTestDatabase, indexNodes, planRoot, uniqueName } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { purgeExpiredBatch, type PurgeCursor } from './retention';
import type { SqlRunner } from './sql';
import { RunCommands, type Transactor } from './run-commands';

function ok<T>(r: T | DomainError): T {
  if (isDomainError(r)) throw new Error(`unexpected ${r.code} ${JSON.stringify(r.params)}`);
  return r;
}

const DAY = 86_400_000;
const steps: FlowStep[] = [{ name: 'a', type: 'transform', settings: {} }];

describe('retention purge and erase (real Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let tx: Transactor;
  let commands: RunCommands;
  const NOW = new Date('2031-06-01T00:00:00.000Z');
  const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY);

  beforeAll(async () => {
    db = await createTestDatabase('retention');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 8 }));
    tx = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    commands = new RunCommands(tx, () => NOW, { maxRetryAttempts: 5 });
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => orm.em.fork().execute(sql, params) as Promise<T[]>;
  const dataRecords = async (runId: string) => (await q<{ n: number }>('select count(*)::int as n from execution_data where run_id = ?', [runId]))[0].n;
  const stream = async (runId: string) =>
    (await q<{ status: string; finished_at: string | null; purged_at: string | null; purged: boolean }>(
      `select status, finished_at, purged_at, (state->>'purged')::boolean as purged from run_streams where run_id = ?`,
      [runId],
    ))[0];
  const purgeEvents = async (runId: string) =>
    (await q<{ reason: string }>(`select envelope->'data'->>'reason' as reason from run_events where run_id = ? and type = 'flowrun.execution-data-purged.v1'`, [runId])).map(
      (r) => r.reason,
    );

  /** A project of its own (optionally with its own window), and a flow in it. */
  const project = async (retentionDays: number | null = null) => {
    const projectId = uniqueName('p_ret');
    await q('insert into projects (id, retention_days) values (?, ?)', [projectId, retentionDays]);
    const flow = ok(await commands.createFlow({ projectId, displayName: 'F', tags: [], steps }));
    return { projectId, flowId: flow.id };
  };
  /** A run triggered and (unless `end` is null) ended `d` days before NOW, with a step output and a payload. */
  const runEnded = async (
    p: { projectId: string; flowId: string },
    d: number,
    end: 'succeed' | 'fail' | 'pause' | null = 'succeed',
    startedDaysAgo = d,
  ) => {
    const at = { now: daysAgo(d) };
    const run = ok(
      await commands.trigger(
        p.flowId,
        { projectId: p.projectId, payload: { secret: 'marker' }, environment: 'PRODUCTION', triggeredBy: 'k', parentRunId: null, failParentOnFailure: false },
        { now: daysAgo(startedDaysAgo) },
      ),
    );
    ok(await commands.startStep(run.id, 'a', 'transform', at));
    if (end === 'pause') {
      ok(await commands.pause(run.id, 'a', null, at));
      return run;
    }
    ok(await commands.finishStep(run.id, 'a', { status: end === 'fail' ? 'FAILED' : 'SUCCEEDED', input: { i: 1 }, output: { o: 1 }, durationMs: 1 }, at));
    if (end === 'succeed') ok(await commands.succeed(run.id, at));
    if (end === 'fail') ok(await commands.fail(run.id, 'a', at));
    return run;
  };
  const window = (now = NOW, defaultDays = 30) => ({ now, defaultDays });
  const purgeAll = async (w = window(), limit = 100) => {
    let total = 0;
    for (;;) {
      const r = ok(await commands.purgeExpired(w, limit));
      total += r.runs;
      if (r.runs < limit) return total;
    }
  };

  it('purges a run finished before the window, keeps its metadata; keeps runs inside it, paused and running ones', async () => {
    const p = await project();
    const expired = await runEnded(p, 31);
    const inside = await runEnded(p, 29);
    const paused = await runEnded(p, 60, 'pause');
    const running = await runEnded(p, 60, null);
    expect(await dataRecords(expired.id)).toBe(2); // the trigger payload, the step's input and output

    const plan = ok(await commands.retentionPlan(window()));
    expect(plan.runs).toBeGreaterThanOrEqual(1);
    expect(await dataRecords(expired.id)).toBe(2); // planning changes nothing

    await purgeAll();
    expect(await dataRecords(expired.id)).toBe(0);
    expect(await stream(expired.id)).toMatchObject({ status: 'SUCCEEDED', purged: true, purged_at: expect.anything() });
    expect(await purgeEvents(expired.id)).toEqual(['RETENTION']);
    for (const run of [inside, paused, running]) {
      expect(await dataRecords(run.id)).toBeGreaterThan(0);
      expect(await purgeEvents(run.id)).toEqual([]);
    }
    // Both retry strategies need the data: refused with 410's code.
    for (const strategy of ['FROM_FAILED_STEP', 'ON_LATEST_VERSION'] as const) {
      const r = await commands.retry(expired.id, { projectId: p.projectId, strategy });
      expect(isDomainError(r) && r.code).toBe(strategy === 'FROM_FAILED_STEP' ? 'INVALID_TRANSITION' : 'EXECUTION_DATA_PURGED');
    }
  });

  it('a failed run whose data is purged cannot be retried: 410 EXECUTION_DATA_PURGED for both strategies', async () => {
    const p = await project();
    const failed = await runEnded(p, 45, 'fail');
    await purgeAll();
    expect(await dataRecords(failed.id)).toBe(0);
    for (const strategy of ['FROM_FAILED_STEP', 'ON_LATEST_VERSION'] as const) {
      const r = await commands.retry(failed.id, { projectId: p.projectId, strategy });
      expect(isDomainError(r) && r).toMatchObject({ code: 'EXECUTION_DATA_PURGED', params: { entityId: failed.id } });
    }
    expect(await stream(failed.id)).toMatchObject({ status: 'FAILED' });
  });

  it('counts from the finish, not the start, and a later --now expires what is inside the window today', async () => {
    const p = await project();
    // Started 40 days ago, finished 29 days ago: inside the window.
    const run = await runEnded(p, 29, 'succeed', 40);
    expect(ok(await commands.purgeExpired(window(), 1000)).runs).toBe(0);
    expect(await dataRecords(run.id)).toBeGreaterThan(0);
    await purgeAll(window(new Date(NOW.getTime() + 2 * DAY)));
    expect(await dataRecords(run.id)).toBe(0);
  });

  it('honours a project’s own window', async () => {
    const short = await project(7);
    const long = await project(90);
    const a = await runEnded(short, 10);
    const b = await runEnded(long, 60);
    await purgeAll();
    expect(await dataRecords(a.id)).toBe(0);
    expect(await dataRecords(b.id)).toBeGreaterThan(0);
  });

  it('a retry from the failed step restarts the clock: the run is not finished while it runs again', async () => {
    const p = await project();
    const run = await runEnded(p, 40, 'fail');
    expect((await stream(run.id)).finished_at).not.toBeNull();
    ok(await commands.retry(run.id, { projectId: p.projectId, strategy: 'FROM_FAILED_STEP' }));
    expect((await stream(run.id)).finished_at).toBeNull();
    await purgeAll();
    expect(await dataRecords(run.id)).toBeGreaterThan(0);
  });

  it('a batch that dies before commit changes nothing; the next run finishes the work, each run purged once', async () => {
    const p = await project(1);
    const runs = [];
    for (let i = 0; i < 6; i++) runs.push(await runEnded(p, 3));
    await expect(
      tx.transactional(async (sql) => {
        const r = await purgeExpiredBatch(sql, window(), 100, { now: NOW });
        expect(r.runs).toBeGreaterThanOrEqual(6);
        throw new Error('killed mid-batch');
      }),
    ).rejects.toThrow('killed mid-batch');
    for (const run of runs) expect(await dataRecords(run.id)).toBeGreaterThan(0);
    await purgeAll(window(), 2);
    for (const run of runs) {
      expect(await dataRecords(run.id)).toBe(0);
      expect(await purgeEvents(run.id)).toEqual(['RETENTION']);
    }
  });

  it('two purgers at once take different runs (skip locked): every run purged exactly once', async () => {
    const p = await project(2);
    const runs = [];
    for (let i = 0; i < 24; i++) runs.push(await runEnded(p, 5));
    const purger = async () => {
      let n = 0;
      for (;;) {
        const r = ok(await commands.purgeExpired(window(), 3));
        n += r.runs;
        if (r.runs === 0) return n;
      }
    };
    const [x, y] = await Promise.all([purger(), purger()]);
    expect(x + y).toBeGreaterThanOrEqual(24);
    for (const run of runs) expect(await purgeEvents(run.id)).toEqual(['RETENTION']);
  });

  it('a pass continues each batch after the last one’s end: runs finished at one instant split across batches, each purged once; a longer window’s runs passed over', async () => {
    const short = await project(1);
    const long = await project(90);
    // Seven runs finishing at the same instant (as a bulk cancel finishes thousands), a longer
    // window's runs among them, and two more a day earlier.
    const sameInstant = [];
    for (let i = 0; i < 7; i++) sameInstant.push(await runEnded(short, 3));
    const kept = [await runEnded(long, 3), await runEnded(long, 4)];
    const earlier = [await runEnded(short, 4), await runEnded(short, 4)];
    // The window's `now` a minute before NOW: nothing else in the database (other tests' runs, all
    // finished at whole days before NOW) is purged by this pass but these projects' runs.
    const w = window(new Date(NOW.getTime() - 60_000), 36500);

    const cursors: (PurgeCursor | null)[] = [];
    let after: PurgeCursor | null = null;
    let purged = 0;
    for (;;) {
      const r = await tx.transactional((sql) => purgeExpiredBatch(sql, w, 3, { now: NOW }, after));
      cursors.push(r.last);
      purged += r.runs;
      if (r.runs < 3) break;
      after = r.last;
    }
    expect(purged).toBe(9);
    // Oldest first: the two earlier runs and one of the seven, then the seven's other six in two
    // batches that end at the same instant (the run id tells them apart), then an empty batch.
    const threeDaysAgo = daysAgo(3).toISOString().replace('Z', '000Z');
    expect(cursors.map((c) => c && c.finishedAt)).toEqual([threeDaysAgo, threeDaysAgo, threeDaysAgo, null]);
    // Strictly increasing in (finish, run id): no batch took a run again or went back.
    const keys = cursors.filter((c): c is PurgeCursor => c !== null).map((c) => `${c.finishedAt} ${c.runId}`);
    expect([...keys].sort()).toEqual(keys);
    expect(new Set(keys).size).toBe(keys.length);
    for (const run of [...sameInstant, ...earlier]) expect(await purgeEvents(run.id)).toEqual(['RETENTION']);
    for (const run of kept) expect(await dataRecords(run.id)).toBeGreaterThan(0);
  });

  it('a batch after a position reads the candidates’ index from that position on (keyset in the index condition, not a filter)', async () => {
    const statements: { text: string; params: unknown[] }[] = [];
    const after: PurgeCursor = { finishedAt: '2031-05-01T00:00:00.000001Z', runId: 'r' };
    await expect(
      tx.transactional(async (sql) => {
        const recording: SqlRunner = {
          execute: (text, params = []) => {
            statements.push({ text, params });
            return sql.execute(text, params);
          },
        };
        await purgeExpiredBatch(recording, window(), 5, { now: NOW }, after);
        throw new Error('rolled back: only the statement was wanted');
      }),
    ).rejects.toThrow('rolled back');
    const select = statements.find((st) => st.text.includes('skip locked'));
    expect(select).toBeDefined();
    const [plan] = await q(`explain (format json) ${select!.text}`, select!.params);
    const retention = indexNodes(planRoot(plan)).find((x) => x['Index Name'] === 'run_streams_retention_key_idx');
    expect(retention?.['Index Cond']).toContain('ROW(finished_at, run_id) >');
  });

  it('erase: removes one finished run’s data now, recorded as ERASE; idempotent; 409 while it runs; not found across projects', async () => {
    const p = await project();
    const done = await runEnded(p, 0);
    const running = await runEnded(p, 0, null);
    const r = ok(await commands.erase(done.id, p.projectId));
    expect(r).toMatchObject({ runId: done.id, status: 'SUCCEEDED', eventsAppended: 1, runs: 1, records: 2 });
    expect(r.bytes).toBeGreaterThan(0);
    expect(await dataRecords(done.id)).toBe(0);
    expect(await purgeEvents(done.id)).toEqual(['ERASE']);
    expect(ok(await commands.erase(done.id, p.projectId))).toMatchObject({ eventsAppended: 0, runs: 0 });
    const refused = await commands.erase(running.id, p.projectId);
    expect(isDomainError(refused) && refused).toMatchObject({ code: 'INVALID_TRANSITION', params: { status: 'RUNNING' } });
    expect(await dataRecords(running.id)).toBeGreaterThan(0);
    const foreign = await commands.erase(done.id, 'someone-else');
    expect(isDomainError(foreign) && foreign.code).toBe('ENTITY_NOT_FOUND');
  });
});
