import { isDomainError, type BulkRunRequest, type DomainError, type EventEnvelope, type FlowStep, type RunEvent } from '@flowruns/contracts';
import { fold, type RunState } from '@flowruns/run-domain';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { createTestDatabase, uniqueName } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { selectBulkPages } from './bulk';
import { RunCommands, type Transactor } from './run-commands';

function ok<T>(r: T | DomainError): T {
  if (isDomainError(r)) throw new Error(`unexpected ${r.code} ${JSON.stringify(r.params)}`);
  return r;
}

const steps: FlowStep[] = [
  { name: 'a', type: 'transform', settings: {} },
  { name: 'b', type: 'transform', settings: {} },
];

describe('bulk cancel / retry / archive (real Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let commands: RunCommands;
  /** Every transaction the use cases opened, so tests can see batching. */
  let transactions = 0;

  beforeAll(async () => {
    db = await createTestDatabase('bulk');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 8 }));
    const tx: Transactor = {
      transactional: (w) => {
        transactions++;
        return orm.em.fork().transactional((tem) => w(sqlRunner(tem)));
      },
    };
    // Pages of 3, so a dozen runs take several batches.
    commands = new RunCommands(tx, () => new Date(), { maxRetryAttempts: 3, pauseTimeoutSeconds: 3600, bulkBatchSize: 3 });
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => orm.em.fork().execute(sql, params) as Promise<T[]>;
  const stateOf = async (runId: string) =>
    (await q<{ status: string; archived: boolean; attempt: number }>(
      `select status, (state->>'archived')::boolean as archived, (state->>'attempt')::int as attempt from run_streams where run_id = ?`,
      [runId],
    ))[0];

  const flowOf = async (projectId: string) => ok(await commands.createFlow({ projectId, displayName: 'F', tags: [], steps }));
  const trigger = async (flowId: string, projectId: string, parentRunId: string | null = null, now?: Date) =>
    ok(
      await commands.trigger(
        flowId,
        { projectId, payload: { n: 1 }, environment: 'PRODUCTION', triggeredBy: 'k', parentRunId, failParentOnFailure: false },
        { now },
      ),
    );
  /** A run that failed at `stepName` (after `a` succeeded when it fails at `b`). */
  const failed = async (flowId: string, projectId: string, stepName: 'a' | 'b' = 'b') => {
    const run = await trigger(flowId, projectId);
    if (stepName === 'b') {
      ok(await commands.startStep(run.id, 'a', 'transform'));
      ok(await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: { a: 1 }, durationMs: 1 }));
    }
    ok(await commands.startStep(run.id, stepName, 'transform'));
    ok(await commands.finishStep(run.id, stepName, { status: 'FAILED', error: { message: 'boom' }, durationMs: 1 }));
    ok(await commands.fail(run.id, stepName));
    return run;
  };
  const bulk = async (req: BulkRunRequest) => ok(await commands.bulk(req));

  it('cancels every running or paused run of the project in batches, and counts only the runs it changed', async () => {
    const projectId = uniqueName('p_bulk');
    const other = uniqueName('p_other');
    const flow = await flowOf(projectId);
    const running = [];
    for (let i = 0; i < 8; i++) running.push(await trigger(flow.id, projectId));
    const done = await failed(flow.id, projectId);
    const foreign = await trigger((await flowOf(other)).id, other);

    const before = transactions;
    const r = await bulk({ action: 'cancel', projectId, reason: 'test', filter: {} });
    expect(r).toEqual({ action: 'cancel', changed: 8, examined: 8 });
    // 8 runs in pages of 3: the project's 9 runs in one read (12 candidates per read), and 3
    // batch transactions.
    expect(transactions - before).toBe(4);
    for (const run of running) expect((await stateOf(run.id)).status).toBe('STOPPED');
    expect((await stateOf(done.id)).status).toBe('FAILED');
    expect((await stateOf(foreign.id)).status).toBe('RUNNING');
    // Nothing left to cancel.
    expect(await bulk({ action: 'cancel', projectId, reason: 'test', filter: {} })).toEqual({ action: 'cancel', changed: 0, examined: 0 });
  });

  it('cancelling a parent stops its descendants, which are not counted as cancelled by the filter', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const parent = await trigger(flow.id, projectId);
    const child = await trigger(flow.id, projectId, parent.id);
    const grandchild = await trigger(flow.id, projectId, child.id);
    // A finished child does not shield its own running child.
    const finishedChild = await trigger(flow.id, projectId, parent.id);
    ok(await commands.succeed(finishedChild.id));
    const orphaned = await trigger(flow.id, projectId, finishedChild.id);
    const r = await bulk({ action: 'cancel', projectId, reason: 'test', filter: { flowRunIds: [parent.id] } });
    expect(r.changed).toBe(1);
    for (const run of [parent, child, grandchild, orphaned]) expect((await stateOf(run.id)).status).toBe('STOPPED');
    expect((await stateOf(finishedChild.id)).status).toBe('SUCCEEDED');
    const reasons = await q<{ reason: string }>(
      `select envelope->'data'->>'reason' as reason from run_events where run_id in (?) and type = 'flowrun.stopped.v1'`,
      [[grandchild.id, orphaned.id]],
    );
    expect(reasons.map((x) => x.reason)).toEqual([`ancestor run ${parent.id} stopped`, `ancestor run ${parent.id} stopped`]);
  });

  it('by ids: ignores the other filters, drops other projects’ and unknown ids, and changes each run once', async () => {
    const projectId = uniqueName('p_bulk');
    const other = uniqueName('p_other');
    const flow = await flowOf(projectId);
    const mine = [await trigger(flow.id, projectId), await trigger(flow.id, projectId)];
    const theirs = await trigger((await flowOf(other)).id, other);
    const r = await bulk({
      action: 'cancel',
      projectId,
      reason: 'test',
      filter: { flowRunIds: [mine[0].id, mine[0].id, mine[1].id, theirs.id, 'run_unknown'], flowId: 'not-this-flow', status: ['PAUSED'] },
    });
    expect(r).toEqual({ action: 'cancel', changed: 2, examined: 2 });
    expect((await stateOf(theirs.id)).status).toBe('RUNNING');
  });

  it('by filter: applies flowId, status, failedStepName, excludeFlowRunIds and the inclusive time window', async () => {
    const projectId = uniqueName('p_bulk');
    const flowA = await flowOf(projectId);
    const flowB = await flowOf(projectId);
    const atB = [await failed(flowA.id, projectId, 'b'), await failed(flowA.id, projectId, 'b'), await failed(flowA.id, projectId, 'b')];
    const atA = await failed(flowA.id, projectId, 'a');
    const otherFlow = await failed(flowB.id, projectId, 'b');

    const r = await bulk({
      action: 'archive',
      projectId,
      filter: { flowId: flowA.id, status: ['FAILED'], failedStepName: 'b', excludeFlowRunIds: [atB[2].id] },
    });
    expect(r.changed).toBe(2);
    expect((await stateOf(atB[0].id)).archived).toBe(true);
    expect((await stateOf(atB[1].id)).archived).toBe(true);
    for (const run of [atB[2], atA, otherFlow]) expect((await stateOf(run.id)).archived).toBe(false);

    // Time window, inclusive at both ends.
    const t0 = new Date('2030-01-01T00:00:00.000Z');
    const inside = [await trigger(flowB.id, projectId, null, t0), await trigger(flowB.id, projectId, null, new Date(t0.getTime() + 1000))];
    const outside = await trigger(flowB.id, projectId, null, new Date(t0.getTime() + 1001));
    const w = await bulk({
      action: 'cancel',
      projectId,
      reason: 'test',
      filter: { createdAfter: t0.toISOString(), createdBefore: new Date(t0.getTime() + 1000).toISOString() },
    });
    expect(w.changed).toBe(2);
    for (const run of inside) expect((await stateOf(run.id)).status).toBe('STOPPED');
    expect((await stateOf(outside.id)).status).toBe('RUNNING');
  });

  it('reads the project a few runs at a time: sparse matches across reads come in full pages, in creation order, none twice', async () => {
    const projectId = uniqueName('p_bulk');
    const flowA = await flowOf(projectId);
    const flowB = await flowOf(projectId);
    const runs = [];
    // Every third run is on flow A, the rest on flow B; then two of A's are excluded.
    for (let i = 0; i < 15; i++) runs.push(await trigger(i % 3 === 0 ? flowA.id : flowB.id, projectId));
    const ofA = runs.filter((_, i) => i % 3 === 0).map((r) => r.id).sort();
    const tx: Transactor = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    const read = async (filter: Parameters<typeof selectBulkPages>[2], pageSize: number, candidates: number) => {
      const pages: string[][] = [];
      for await (const page of selectBulkPages(tx, projectId, filter, ['RUNNING'], pageSize, candidates)) pages.push(page);
      return pages;
    };

    // 4 candidates per read, pages of 2: the 5 matches come as 2 + 2 + 1, whatever read found them.
    expect(await read({ flowId: flowA.id }, 2, 4)).toEqual([ofA.slice(0, 2), ofA.slice(2, 4), ofA.slice(4)]);
    const excluded = [ofA[1], ofA[3]];
    expect((await read({ flowId: flowA.id, excludeFlowRunIds: excluded }, 2, 1)).flat()).toEqual(ofA.filter((id) => !excluded.includes(id)));
    // Reads that end exactly at the last run, and one that holds them all.
    expect((await read({}, 5, 5)).flat()).toEqual(runs.map((r) => r.id).sort());
    expect(await read({}, 100, 100)).toEqual([runs.map((r) => r.id).sort()]);
    // Nothing selected: no page at all.
    expect(await read({ flowId: 'flow_none' }, 2, 4)).toEqual([]);
  });

  it('pages by creation, then run id: runs created in the same instant are each read once, the older runs first', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const t0 = new Date('2031-01-01T00:00:00.000Z');
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await trigger(flow.id, projectId, null, new Date(t0.getTime() + 1)));
    const earlier = [];
    for (let i = 0; i < 3; i++) earlier.push(await trigger(flow.id, projectId, null, t0));
    const tx: Transactor = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    const pages: string[][] = [];
    // One candidate per read: every cursor falls between runs of the same instant.
    for await (const page of selectBulkPages(tx, projectId, {}, ['RUNNING'], 2, 1)) pages.push(page);
    expect(pages.flat()).toEqual([...earlier.map((r) => r.id).sort(), ...later.map((r) => r.id).sort()]);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 2]);
  });

  it('archives once: a second archive counts nothing', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    for (let i = 0; i < 4; i++) await failed(flow.id, projectId);
    expect((await bulk({ action: 'archive', projectId, filter: {} })).changed).toBe(4);
    expect(await bulk({ action: 'archive', projectId, filter: {} })).toMatchObject({ changed: 0, examined: 4 });
  });

  it('retries FROM_FAILED_STEP every failed run (a new attempt each), skipping archived runs and other statuses', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await failed(flow.id, projectId));
    ok(await commands.bulk({ action: 'archive', projectId, filter: { flowRunIds: [runs[4].id] } }));
    const succeeded = await trigger(flow.id, projectId);
    ok(await commands.succeed(succeeded.id));

    const r = await bulk({ action: 'retry', projectId, strategy: 'FROM_FAILED_STEP', filter: {} });
    expect(r).toEqual({ action: 'retry', changed: 4, examined: 5 });
    for (const run of runs.slice(0, 4)) expect(await stateOf(run.id)).toMatchObject({ status: 'RUNNING', attempt: 2 });
    expect((await stateOf(runs[4].id)).status).toBe('FAILED');
    expect((await stateOf(succeeded.id)).status).toBe('SUCCEEDED');
  });

  it('retries ON_LATEST_VERSION into new runs linked to the originals; a refused run does not undo the batch', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs = [await failed(flow.id, projectId), await failed(flow.id, projectId), await failed(flow.id, projectId)];
    // The second run's trigger payload is gone: its retry is refused after the original recorded it.
    const triggerRef = (
      await q<{ ref: string }>(`select envelope->'data'->>'triggerDataRef' as ref from run_events where run_id = ? and seq = 1`, [runs[1].id])
    )[0].ref;
    await q('delete from execution_data where ref = ?', [triggerRef]);

    const r = await bulk({ action: 'retry', projectId, strategy: 'ON_LATEST_VERSION', filter: { flowRunIds: runs.map((x) => x.id) } });
    expect(r).toEqual({ action: 'retry', changed: 2, examined: 3 });
    const retries = await q<{ retry_of: string }>(
      `select e.envelope->'data'->>'retryOf' as retry_of from run_events e join run_streams s on s.run_id = e.run_id
       where s.project_id = ? and e.seq = 1 and e.envelope->'data'->>'retryOf' is not null`,
      [projectId],
    );
    expect(retries.map((x) => x.retry_of).sort()).toEqual([runs[0].id, runs[2].id].sort());
    // The refused original recorded nothing (rolled back to its savepoint).
    expect(await q(`select 1 from run_events where run_id = ? and type = 'flowrun.retried.v1'`, [runs[1].id])).toHaveLength(0);
  });

  it('retries ON_LATEST_VERSION a page together: each new run as a single retry starts it; a project with a quota run by run', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const [single, ...paged] = [await failed(flow.id, projectId), await failed(flow.id, projectId), await failed(flow.id, projectId)];
    const twin = ok(await commands.retry(single.id, { projectId, strategy: 'ON_LATEST_VERSION' }));
    expect(await bulk({ action: 'retry', projectId, strategy: 'ON_LATEST_VERSION', filter: { flowRunIds: paged.map((x) => x.id) } })).toEqual({
      action: 'retry',
      changed: 2,
      examined: 2,
    });
    /** A run's history and stream row, with what differs between twins (ids, times, references) left out. */
    const history = async (runId: string) => {
      const events = await q<{ seq: number; envelope: EventEnvelope }>('select seq, envelope from run_events where run_id = ? order by seq', [runId]);
      const [stream] = await q<{ state: RunState; status: string; version: number; parent_run_id: string | null; finished: boolean }>(
        'select state, status, version, parent_run_id, finished_at is not null as finished from run_streams where run_id = ?',
        [runId],
      );
      const [payload] = await q<{ output: unknown; bytes: number }>(`select output, bytes from execution_data where run_id = ? and kind = 'trigger'`, [runId]);
      const strip = (v: unknown): unknown =>
        JSON.parse(JSON.stringify(v), (k, x: unknown) =>
          ['triggerDataRef', 'dataRef', 'durationMs', 'newRunId', 'retryOf', 'runningSince'].includes(k) || (typeof x === 'string' && /^\d{4}-\d\d-\d\dT/.test(x))
            ? '<differs>'
            : x,
        );
      return { events: events.map((e) => ({ seq: e.seq, type: e.envelope.type, data: strip(e.envelope.data) })), stream: strip(stream), payload };
    };
    const newRunOf = async (original: string) =>
      (
        await q<{ id: string }>(`select envelope->'data'->>'newRunId' as id from run_events where run_id = ? and type = 'flowrun.retried.v1'`, [original])
      )[0].id;
    for (const original of paged) {
      const fresh = await newRunOf(original.id);
      expect(await history(fresh)).toEqual(await history(twin.id));
      // The payload, copied inside Postgres, is the original's (value and counted bytes).
      expect((await history(fresh)).payload).toEqual((await history(original.id)).payload);
      expect(await history(original.id)).toEqual(await history(single.id));
      const [first] = await q<{ retry_of: string }>(`select envelope->'data'->>'retryOf' as retry_of from run_events where run_id = ? and seq = 1`, [fresh]);
      expect(first.retry_of).toBe(original.id);
    }

    // A project with a quota: each new run counts the ones before it, so the page goes run by run.
    const quotaProject = uniqueName('p_bulk_quota');
    const quotaFlow = await flowOf(quotaProject);
    const runs = [await failed(quotaFlow.id, quotaProject), await failed(quotaFlow.id, quotaProject), await failed(quotaFlow.id, quotaProject)];
    await q('update projects set monthly_run_quota = 5 where id = ?', [quotaProject]);
    expect(await bulk({ action: 'retry', projectId: quotaProject, strategy: 'ON_LATEST_VERSION', filter: {} })).toEqual({
      action: 'retry',
      changed: 3,
      examined: 3,
    });
    const statuses = await Promise.all(runs.map(async (r) => (await stateOf(await newRunOf(r.id))).status));
    expect(statuses.sort()).toEqual(['QUOTA_EXCEEDED', 'RUNNING', 'RUNNING']);
  });

  it('skips a run that changed after its page was read (it no longer has a selected status)', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs = [await failed(flow.id, projectId), await failed(flow.id, projectId)];
    // "Someone else" retries the first run right after the page is read, before its batch locks it:
    // archiving is allowed in every status, so only the status check under the lock can skip it.
    let afterFirstRead: (() => Promise<unknown>) | null = () => commands.retry(runs[0].id, { projectId, strategy: 'FROM_FAILED_STEP' });
    const racing = new RunCommands(
      {
        transactional: async (w) => {
          const r = await orm.em.fork().transactional((tem) => w(sqlRunner(tem)));
          const hook = afterFirstRead;
          afterFirstRead = null;
          if (hook) await hook();
          return r;
        },
      },
      () => new Date(),
      { bulkBatchSize: 10 },
    );
    const r = ok(await racing.bulk({ action: 'archive', projectId, filter: { status: ['FAILED'] } }));
    expect(r).toEqual({ action: 'archive', changed: 1, examined: 2 });
    expect(await stateOf(runs[0].id)).toMatchObject({ status: 'RUNNING', archived: false });
    expect(await stateOf(runs[1].id)).toMatchObject({ status: 'FAILED', archived: true });
  });

  it('leaves every snapshot equal to the fold of its run’s events, each a version past the last, after retry, cancel and archive', async () => {
    // The bulk path writes snapshots as patches of the locked row (`snapshotPatch`) and the events
    // from one JSON document: the stored state must still be exactly what the history folds to.
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs = [await failed(flow.id, projectId), await failed(flow.id, projectId, 'a'), await trigger(flow.id, projectId)];
    expect(ok(await commands.bulk({ action: 'retry', projectId, strategy: 'FROM_FAILED_STEP', filter: {} })).changed).toBe(2);
    expect(ok(await commands.bulk({ action: 'cancel', projectId, reason: 'bulk', filter: {} })).changed).toBe(3);
    expect(ok(await commands.bulk({ action: 'archive', projectId, filter: {} })).changed).toBe(3);
    for (const run of runs) {
      const [stream] = await q<{ version: number; state: RunState; status: string }>(
        'select version, state, status from run_streams where run_id = ?',
        [run.id],
      );
      const events = await q<{ seq: number; envelope: EventEnvelope }>('select seq, envelope from run_events where run_id = ? order by position', [
        run.id,
      ]);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(stream.version).toBe(events.length);
      const folded = fold(events.map((e) => ({ event: { type: e.envelope.type, data: e.envelope.data } as RunEvent, time: e.envelope.time })));
      expect(stream.state).toEqual(JSON.parse(JSON.stringify(folded)));
      expect(stream).toMatchObject({ status: 'STOPPED', state: { archived: true } });
    }
  });

  it('archives, and records a retry on the latest version on each original, as heap-only updates of run_streams; a cancel is not one', async () => {
    // run_streams keeps half of each page free (fillfactor 50): a new version of a row whose indexed
    // columns (and index predicates' columns) stay the same fits on its page and takes no entry in
    // any of the table's indexes. A status change must still move the row: the supervisor's and
    // retention's partial indexes read the status. Counted inside one transaction (the counters of
    // pg_stat_get_xact_* are the transaction's own), every page of the operation in it.
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs: Awaited<ReturnType<typeof failed>>[] = [];
    for (let i = 0; i < 4; i++) runs.push(await failed(flow.id, projectId));
    const running = [await trigger(flow.id, projectId), await trigger(flow.id, projectId)];
    // The pages as in service, where pruning and autovacuum keep them: the runs' earlier versions
    // removed. Pruning them on the way is opportunistic (it skips versions that a just-committed
    // transaction left while its horizon is not yet seen to have passed), and a page still full of
    // them left one archive of two without room for a heap-only version (a CI run, session 25).
    await q('vacuum run_streams');

    const counted = await orm.em.fork().transactional(async (tem) => {
      const sql = sqlRunner(tem);
      const inTx = new RunCommands({ transactional: (w) => w(sql) }, () => new Date(), {
        maxRetryAttempts: 3,
        pauseTimeoutSeconds: 3600,
        bulkBatchSize: 3,
        bulkPagesInFlight: 1,
      });
      const updates = async () =>
        (
          await sql.execute<{ all: number; hot: number }>(
            `select pg_stat_get_xact_tuples_updated('run_streams'::regclass)::int as all,
                    pg_stat_get_xact_tuples_hot_updated('run_streams'::regclass)::int as hot`,
          )
        )[0];
      const during = async (req: BulkRunRequest) => {
        const before = await updates();
        expect(ok(await inTx.bulk(req)).changed).toBeGreaterThan(0);
        const after = await updates();
        return { all: after.all - before.all, hot: after.hot - before.hot };
      };
      return {
        archive: await during({ action: 'archive', projectId, filter: { flowRunIds: runs.slice(0, 2).map((r) => r.id) } }),
        retryOnLatest: await during({ action: 'retry', projectId, strategy: 'ON_LATEST_VERSION', filter: { flowRunIds: runs.slice(2).map((r) => r.id) } }),
        cancel: await during({ action: 'cancel', projectId, reason: 'bulk', filter: { flowRunIds: running.map((r) => r.id) } }),
      };
    });
    expect(counted).toEqual({ archive: { all: 2, hot: 2 }, retryOnLatest: { all: 2, hot: 2 }, cancel: { all: 2, hot: 0 } });
    // And the writes are the operations' own: the archived runs are archived, the originals retried.
    expect(await stateOf(runs[0].id)).toMatchObject({ status: 'FAILED', archived: true });
    expect((await q(`select 1 from run_events where run_id = ? and type = 'flowrun.retried.v1'`, [runs[2].id])).length).toBe(1);
  });

  it('with several pages in flight, changes every run exactly once; a page that fails ends the operation after the pages already started', async () => {
    const projectId = uniqueName('p_bulk');
    const flow = await flowOf(projectId);
    const runs = [];
    for (let i = 0; i < 20; i++) runs.push(await trigger(flow.id, projectId));
    // Pages of 2, three at once: ten pages, read while earlier ones are still being written.
    let started = 0;
    let open = 0;
    let maxOpen = 0;
    let failAt = 0;
    const tx: Transactor = {
      transactional: async (w) => {
        const n = ++started;
        open++;
        maxOpen = Math.max(maxOpen, open);
        try {
          return await orm.em.fork().transactional(async (tem) => {
            const r = await w(sqlRunner(tem));
            if (n === failAt) throw new Error('connection lost');
            return r;
          });
        } finally {
          open--;
        }
      },
    };
    const piped = new RunCommands(tx, () => new Date(), { maxRetryAttempts: 3, pauseTimeoutSeconds: 3600, bulkBatchSize: 2, bulkPagesInFlight: 3 });
    expect(ok(await piped.bulk({ action: 'archive', projectId, filter: {} }))).toEqual({ action: 'archive', examined: 20, changed: 20 });
    expect(maxOpen).toBeGreaterThan(1);
    const versions = await q<{ run_id: string; archives: number }>(
      `select run_id, count(*)::int as archives from run_events where run_id in (?) and type = 'flowrun.archived.v1' group by run_id`,
      [runs.map((r) => r.id)],
    );
    expect(versions).toHaveLength(20);
    expect(versions.every((v) => v.archives === 1)).toBe(true);

    // The sixth transaction of a cancel throws: the call rejects with that error, and only once
    // nothing it started is still open; pages after the failure are not read.
    started = 0;
    failAt = 6;
    await expect(piped.bulk({ action: 'cancel', projectId, reason: 'bulk', filter: {} })).rejects.toThrow('connection lost');
    expect(open).toBe(0);
    const afterFailure = started;
    const stopped = await q<{ n: number }>(`select count(*)::int as n from run_streams where project_id = ? and status = 'STOPPED'`, [projectId]);
    expect(stopped[0].n).toBeGreaterThan(0);
    expect(stopped[0].n).toBeLessThan(20);
    // The rest is still cancellable: nothing half-done, nothing started after the call returned.
    expect(started).toBe(afterFailure);
    failAt = 0;
    const rest = ok(await piped.bulk({ action: 'cancel', projectId, reason: 'bulk', filter: {} }));
    expect(rest.changed).toBe(20 - stopped[0].n);
  });
});
