import { isDomainError, type DomainError, type FlowStep } from '@flowruns/contracts';
import { ormOptions, PgTransactions, sqlRunner } from '@flowruns/database';
import { createTestDatabase, indexNodes, planRoot, uniqueName, waitFor } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { holdAgainstPurge } from './purge-lock';
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
  /** The same commands on the command service's own transactions (plain pg, `PgTransactions`). */
  let pg: PgTransactions;
  let pgCommands: RunCommands;
  const NOW = new Date('2031-06-01T00:00:00.000Z');
  const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY);

  beforeAll(async () => {
    db = await createTestDatabase('retention');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 8 }));
    tx = { transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) };
    commands = new RunCommands(tx, () => NOW, { maxRetryAttempts: 5 });
    pg = new PgTransactions({ url: db.url, max: 2 }, orm.em.getPlatform());
    pgCommands = new RunCommands(pg, () => NOW, { maxRetryAttempts: 5 });
  });

  afterAll(async () => {
    await pg?.close();
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
  /** The per-run purge events of a run (an erase's). */
  const purgeEvents = async (runId: string) =>
    (await q<{ reason: string }>(`select envelope->'data'->>'reason' as reason from run_events where run_id = ? and type = 'flowrun.execution-data-purged.v1'`, [runId])).map(
      (r) => r.reason,
    );
  interface Range {
    runId: string;
    from: { finishedAt: string; runId: string } | null;
    through: { finishedAt: string; runId: string };
    runs: number;
  }
  /** A project's retention ranges, in the order they were appended. */
  const ranges = async (projectId: string): Promise<Range[]> =>
    (
      await q<{ run_id: string; data: { fromFinishedAt: string | null; fromRunId: string | null; throughFinishedAt: string; runs: number } }>(
        `select run_id, envelope->'data' as data from run_events
         where type = 'flowrun.execution-data-purged-through.v1' and envelope->>'projectId' = ? order by position`,
        [projectId],
      )
    ).map(({ run_id, data: d }) => ({
      runId: run_id,
      from: d.fromFinishedAt === null || d.fromRunId === null ? null : { finishedAt: d.fromFinishedAt, runId: d.fromRunId },
      through: { finishedAt: d.throughFinishedAt, runId: run_id },
      runs: d.runs,
    }));
  /** Each range starts where the one before ended (the first at nothing) and ends at the run it is on; their runs add up. */
  const expectTiled = (rs: readonly Range[]) => {
    rs.forEach((r, i) => {
      expect(r.from).toEqual(i === 0 ? null : rs[i - 1].through);
      expect(r.through.runId).toBe(r.runId);
    });
    return rs.reduce((n, r) => n + r.runs, 0);
  };
  /** Whether the write model answers the run as purged (what the decider is given). */
  const readsPurged = async (runId: string) => ok(await commands.execution(runId)).purged;

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
    expect(await readsPurged(expired.id)).toBe(true);
    // One range, closed by the only expired run: from nothing through it.
    const [range, ...more] = await ranges(p.projectId);
    expect(more).toEqual([]);
    expect(range).toMatchObject({ runId: expired.id, from: null, through: { runId: expired.id }, runs: 1 });
    expect((await stream(expired.id)).status).toBe('SUCCEEDED');
    for (const run of [inside, paused, running]) {
      expect(await dataRecords(run.id)).toBeGreaterThan(0);
      expect(await readsPurged(run.id)).toBe(false);
    }
    // Both retry strategies need the data: refused with 410's code.
    for (const strategy of ['FROM_FAILED_STEP', 'ON_LATEST_VERSION'] as const) {
      const r = await commands.retry(expired.id, { projectId: p.projectId, strategy });
      expect(isDomainError(r) && r.code).toBe(strategy === 'FROM_FAILED_STEP' ? 'INVALID_TRANSITION' : 'EXECUTION_DATA_PURGED');
    }
  });

  it('failed runs whose data is purged cannot be retried: 410 EXECUTION_DATA_PURGED for both strategies, for the range’s last run and the runs before it', async () => {
    const p = await project();
    const covered = await runEnded(p, 46, 'fail');
    const last = await runEnded(p, 45, 'fail');
    await purgeAll();
    const [range] = await ranges(p.projectId);
    expect(range).toMatchObject({ runId: last.id, runs: 2 });
    // The run before the last has no event of its own: the mark says it is purged.
    expect(await q(`select 1 from run_events where run_id = ? and type like 'flowrun.execution-data-purged%'`, [covered.id])).toEqual([]);
    for (const run of [covered, last]) {
      expect(await dataRecords(run.id)).toBe(0);
      for (const strategy of ['FROM_FAILED_STEP', 'ON_LATEST_VERSION'] as const) {
        const r = await commands.retry(run.id, { projectId: p.projectId, strategy });
        expect(isDomainError(r) && r).toMatchObject({ code: 'EXECUTION_DATA_PURGED', params: { entityId: run.id } });
      }
      expect(await stream(run.id)).toMatchObject({ status: 'FAILED' });
    }
    // An erase of a run a range covers changes nothing.
    expect(ok(await commands.erase(covered.id, p.projectId))).toMatchObject({ eventsAppended: 0, runs: 0 });
  });

  it('a retry, a bulk retry and an erase that come during a purge batch wait for it, then see the purge', async () => {
    const p = await project();
    const covered = [await runEnded(p, 50, 'fail'), await runEnded(p, 49, 'fail'), await runEnded(p, 48, 'fail')];
    await runEnded(p, 47, 'fail');
    const advisoryWaits = async () =>
      (await q<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`))[0].n;
    let commandsInFlight: Promise<unknown[]> | null = null;
    await tx.transactional(async (sql) => {
      expect((await purgeExpiredBatch(sql, window(), 100, { now: NOW })).runs).toBeGreaterThanOrEqual(4);
      // Each command's hold on the project waits for this transaction; it is let go once all three are seen waiting.
      commandsInFlight = Promise.all([
        commands.retry(covered[0].id, { projectId: p.projectId, strategy: 'FROM_FAILED_STEP' }),
        commands.bulk({ action: 'retry', projectId: p.projectId, strategy: 'ON_LATEST_VERSION', filter: { flowRunIds: [covered[1].id] } }),
        commands.erase(covered[2].id, p.projectId),
      ]);
      await waitFor(async () => (await advisoryWaits()) === 3, { timeoutMs: 10000, what: 'the three commands to wait on the purge' });
    });
    const [retried, bulk, erased] = await commandsInFlight!;
    expect(isDomainError(retried) && retried).toMatchObject({ code: 'EXECUTION_DATA_PURGED', params: { entityId: covered[0].id } });
    expect(ok(bulk as Awaited<ReturnType<RunCommands['bulk']>>)).toEqual({ action: 'retry', examined: 1, changed: 0 });
    // The run was purged by the range: the erase appends nothing and deletes nothing.
    expect(ok(erased as Awaited<ReturnType<RunCommands['erase']>>)).toMatchObject({ eventsAppended: 0, runs: 0 });
    for (const run of covered) expect(await stream(run.id)).toMatchObject({ status: 'FAILED' });
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
    expect(await ranges(p.projectId)).toEqual([]);
    await purgeAll(window(), 2);
    for (const run of runs) {
      expect(await dataRecords(run.id)).toBe(0);
      expect(await readsPurged(run.id)).toBe(true);
    }
    expect(expectTiled(await ranges(p.projectId))).toBe(6);
  });

  it('two purgers at once take different projects (a project is purged by one at a time): every run purged exactly once', async () => {
    const projects = [await project(2), await project(2)];
    const runs = [];
    for (const p of projects) for (let i = 0; i < 12; i++) runs.push(await runEnded(p, 5));
    const purger = async () => {
      let n = 0;
      let after: PurgeCursor | null = null;
      for (;;) {
        const r: { runs: number; last: PurgeCursor | null } = ok(await commands.purgeExpired(window(), 3, {}, after));
        n += r.runs;
        if (r.runs < 3) return n;
        after = r.last;
      }
    };
    await Promise.all([purger(), purger()]);
    // What a purger passed over (the other held it) is left to the next pass.
    await purgeAll(window(), 3);
    for (const run of runs) expect(await dataRecords(run.id)).toBe(0);
    for (const p of projects) expect(expectTiled(await ranges(p.projectId))).toBe(12);
  });

  it('a project a retry or an erase holds is passed over, other projects purged; the next pass takes it', async () => {
    const held = await project(2);
    const other = await project(2);
    const heldRuns = [await runEnded(held, 5), await runEnded(held, 4)];
    const otherRuns = [await runEnded(other, 5), await runEnded(other, 4)];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const isHeld = new Promise<void>((resolve) => (holding = resolve));
    // What a retry or an erase does first, held open.
    const holder = tx.transactional(async (sql) => {
      await holdAgainstPurge(sql, held.projectId);
      holding();
      await released;
    });
    await isHeld;
    try {
      await purgeAll();
      // On plain pg too (the command service's runner): the wait times out, the batch goes on.
      expect(ok(await pgCommands.purgeExpired(window(), 100)).runs).toBe(0);
    } finally {
      release();
      await holder;
    }
    for (const run of otherRuns) expect(await dataRecords(run.id)).toBe(0);
    for (const run of heldRuns) {
      expect(await dataRecords(run.id)).toBeGreaterThan(0);
      expect(await readsPurged(run.id)).toBe(false);
    }
    expect(await ranges(held.projectId)).toEqual([]);
    await purgeAll();
    for (const run of heldRuns) expect(await dataRecords(run.id)).toBe(0);
    expect(expectTiled(await ranges(held.projectId))).toBe(2);
  });

  it('a project never free of holders (finishes overlapping without a gap) is still purged: the batch queues for its lock, later holders behind it', async () => {
    const busy = await project(2);
    const runs = [await runEnded(busy, 5), await runEnded(busy, 4)];
    let stop = false;
    let holds = 0;
    // Three lanes of holders (what every finishing append takes), each holding its project while its
    // transaction works (20 ms here), then taking the next hold: one of them holds at every instant,
    // so a batch that only tries the lock never gets it (a busy project was never purged).
    const lane = async () => {
      while (!stop) {
        await tx.transactional(async (sql) => {
          await holdAgainstPurge(sql, busy.projectId);
          holds++;
          await sql.execute(`select pg_sleep(0.02)::text as slept`);
        });
      }
    };
    const lanes: Promise<void>[] = [];
    try {
      for (let i = 1; i <= 3; i++) {
        lanes.push(lane());
        await waitFor(() => holds >= 2 * i, { timeoutMs: 10_000, what: `lane ${i} to hold` });
      }
      expect(await purgeAll()).toBe(2);
      const before = holds;
      // The holders went on after the batch (they queued behind it, not failed).
      await waitFor(() => holds >= before + 3, { timeoutMs: 10_000, what: 'the holders to go on' });
    } finally {
      stop = true;
      await Promise.all(lanes);
    }
    for (const run of runs) expect(await dataRecords(run.id)).toBe(0);
    expect(expectTiled(await ranges(busy.projectId))).toBe(2);
  });

  it('a run another command holds (an archive in flight) is purged with its range, without waiting for it', async () => {
    const p = await project(2);
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await runEnded(p, 10 - i));
    const held = runs[2];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = orm.em.fork().transactional(async (tem) => {
      await tem.execute('select 1 from run_streams where run_id = ? for update', [held.id]);
      locked();
      await released;
    });
    await isLocked;
    let first: { runs: number };
    try {
      first = ok(await commands.purgeExpired(window(), 100));
    } finally {
      release();
      await holder;
    }
    expect(first.runs).toBeGreaterThanOrEqual(5);
    expect(await ranges(p.projectId)).toEqual([expect.objectContaining({ from: null, through: expect.objectContaining({ runId: runs[4].id }), runs: 5 })]);
    for (const run of runs) {
      expect(await dataRecords(run.id)).toBe(0);
      expect(await readsPurged(run.id)).toBe(true);
    }
  });

  /**
   * Commands whose transactions, once their work is done, wait at a gate before committing: a
   * finish in flight. `parked` resolves when one is waiting there.
   */
  const heldCommands = () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let parkedNow!: () => void;
    const parked = new Promise<void>((resolve) => (parkedNow = resolve));
    const held: Transactor = {
      transactional: (w) =>
        orm.em.fork().transactional(async (tem) => {
          const out = await w(sqlRunner(tem));
          parkedNow();
          await gate;
          return out;
        }),
    };
    return { commands: new RunCommands(held, () => NOW, { maxRetryAttempts: 5 }), parked, open };
  };
  /** Advisory locks some session waits for (a finish waiting for a purge batch of its project). */
  const waitingAdvisoryLocks = async () =>
    (await q<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`))[0].n;

  it('a run whose finish is in flight while a range passes its finish key is purged with it, or the range waits: no run behind a mark keeps its data', async () => {
    const p = await project(2);
    // R's finish is decided 6 days ago but commits only after a run that finished 5 days ago.
    const r = await runEnded(p, 6, null);
    ok(await commands.finishStep(r.id, 'a', { status: 'SUCCEEDED', input: { i: 1 }, output: { o: 1 }, durationMs: 1 }, { now: daysAgo(6) }));
    const inFlight = heldCommands();
    const finishing = inFlight.commands.succeed(r.id, { now: daysAgo(6) });
    await inFlight.parked;
    const later = await runEnded(p, 5);
    try {
      await purgeAll();
    } finally {
      inFlight.open();
    }
    ok(await finishing);
    await purgeAll();
    for (const run of [r, later]) {
      expect(await dataRecords(run.id)).toBe(0);
      expect(await readsPurged(run.id)).toBe(true);
    }
    expect(expectTiled(await ranges(p.projectId))).toBe(2);
  });

  it('a finish that comes while a purge batch holds its project waits for it, then deletes its own data if the new mark covers it', async () => {
    const p = await project(2);
    const r = await runEnded(p, 6, null);
    ok(await commands.finishStep(r.id, 'a', { status: 'SUCCEEDED', input: { i: 1 }, output: { o: 1 }, durationMs: 1 }, { now: daysAgo(6) }));
    const later = await runEnded(p, 5);
    // A purge batch holding the project, its range (through `later`) decided, not committed.
    const purging = heldCommands();
    const batch = purging.commands.purgeExpired(window(), 100);
    await purging.parked;
    const finishing = commands.succeed(r.id, { now: daysAgo(6) });
    try {
      await waitFor(async () => (await waitingAdvisoryLocks()) > 0, { timeoutMs: 10_000, what: 'the finish to wait for the batch' });
    } finally {
      purging.open();
    }
    expect(ok(await batch).runs).toBeGreaterThanOrEqual(1);
    ok(await finishing);
    const rs = await ranges(p.projectId);
    expect(rs.map((x) => x.through.runId)).toEqual([later.id]);
    // R finished (6 days ago) behind the mark the batch set (5 days ago): purged by that range.
    expect(await dataRecords(r.id)).toBe(0);
    expect(await readsPurged(r.id)).toBe(true);
    expect(await dataRecords(later.id)).toBe(0);
  });

  it('the range ends at its latest run no other transaction holds, without waiting; the runs after it go with the next batch', async () => {
    const p = await project(2);
    const runs: { id: string }[] = [];
    for (let i = 0; i < 4; i++) runs.push(await runEnded(p, 10 - i));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // The latest run held (a finish of another run in the same transaction would then wait for the
    // batch: the batch must not wait for it).
    const holder = orm.em.fork().transactional(async (tem) => {
      await tem.execute('select 1 from run_streams where run_id = ? for update', [runs[3].id]);
      locked();
      await released;
    });
    await isLocked;
    try {
      await purgeAll();
      expect((await ranges(p.projectId)).map((r) => [r.through.runId, r.runs])).toEqual([[runs[2].id, 3]]);
      expect(await dataRecords(runs[3].id)).toBeGreaterThan(0);
    } finally {
      release();
      await holder;
    }
    await purgeAll();
    for (const run of runs) expect(await dataRecords(run.id)).toBe(0);
    expect(expectTiled(await ranges(p.projectId))).toBe(4);
  });

  it('ranges split runs finished at one instant by run id: each purged once, in (finish, run id) order; a longer window’s runs passed over', async () => {
    const short = await project(1);
    const long = await project(90);
    // Seven runs finishing at the same instant (as a bulk cancel finishes thousands), a longer
    // window's runs among them, and two more a day earlier.
    const sameInstant = [];
    for (let i = 0; i < 7; i++) sameInstant.push(await runEnded(short, 3));
    const kept = [await runEnded(long, 3), await runEnded(long, 4)];
    const earlier = [await runEnded(short, 4), await runEnded(short, 4)];
    // The window's `now` a minute before NOW: every run other tests left expired is purged by now.
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
    expect(cursors).toEqual([{ projectId: short.projectId }, { projectId: short.projectId }, { projectId: short.projectId }, null]);
    const rs = await ranges(short.projectId);
    expect(rs.map((r) => r.runs)).toEqual([3, 3, 3]);
    expect(expectTiled(rs)).toBe(9);
    // Oldest first: the two earlier runs and one of the seven, then the seven's other six in two
    // ranges that end at the same instant (the run id tells them apart).
    const threeDaysAgo = daysAgo(3).toISOString().replace('Z', '000Z');
    expect(rs.map((r) => r.through.finishedAt)).toEqual([threeDaysAgo, threeDaysAgo, threeDaysAgo]);
    for (const run of [...sameInstant, ...earlier]) {
      expect(await dataRecords(run.id)).toBe(0);
      expect(await readsPurged(run.id)).toBe(true);
    }
    for (const run of kept) {
      expect(await dataRecords(run.id)).toBeGreaterThan(0);
      expect(await readsPurged(run.id)).toBe(false);
    }
    expect(await ranges(long.projectId)).toEqual([]);
  });

  it('a batch reads a project’s candidates from its mark on (keyset in the index condition, not a filter)', async () => {
    const p = await project(1);
    for (let i = 0; i < 3; i++) await runEnded(p, 3 + i);
    await tx.transactional((sql) => purgeExpiredBatch(sql, window(), 1, { now: NOW }, { projectId: p.projectId }));
    const statements: { text: string; params: unknown[] }[] = [];
    await expect(
      tx.transactional(async (sql) => {
        const recording: SqlRunner = {
          execute: (text, params = []) => {
            statements.push({ text, params });
            return sql.execute(text, params);
          },
        };
        await purgeExpiredBatch(recording, window(), 1, { now: NOW }, { projectId: p.projectId });
        throw new Error('rolled back: only the statement was wanted');
      }),
    ).rejects.toThrow('rolled back');
    const select = statements.find((st) => st.text.includes('with bounds'));
    expect(select).toBeDefined();
    const [plan] = await q(`explain (format json) ${select!.text}`, select!.params);
    // One scan of the candidates, bounded in its index condition by the project and the mark.
    const [scan, ...others] = indexNodes(planRoot(plan)).filter((x) => x['Index Name'] === 'run_streams_retention_project_idx');
    expect(scan?.['Index Cond']).toContain('ROW(finished_at, run_id) >');
    expect(scan?.['Index Cond']).toContain('project_id =');
    expect(others).toEqual([]);
  });

  it('a batch looks up (and locks) one stream row for its range’s end, not every candidate’s', async () => {
    const p = await project(1);
    for (let i = 0; i < 6; i++) await runEnded(p, 3 + i);
    let analyzed: unknown;
    await expect(
      tx.transactional(async (sql) => {
        const recording: SqlRunner = {
          execute: async (text, params = []) => {
            if (text.includes('with bounds')) [analyzed] = await sql.execute(`explain (analyze, format json) ${text}`, params);
            return sql.execute(text, params);
          },
        };
        await purgeExpiredBatch(recording, window(), 100, { now: NOW }, { projectId: p.projectId });
        throw new Error('rolled back: only the plan was wanted');
      }),
    ).rejects.toThrow('rolled back');
    expect(analyzed).toBeDefined();
    // The candidates come from the retention index; each stream row looked up by primary key is a
    // row read: one, for the range's end (its six runs all free).
    const lookups = indexNodes(planRoot(analyzed)).filter((x) => x['Index Name'] === 'run_streams_pkey');
    expect(lookups.map((x) => x['Actual Loops'])).toEqual([1]);
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
