import type { EventEnvelope } from '@flowruns/contracts';
import { ormOptions } from '@flowruns/database';
import { MikroORM } from '@mikro-orm/postgresql';
import { createTestDatabase } from '@flowruns/testing';
import { applyBatch, projectEnvelopes, type TransactionalEm } from './apply-batch';
import { fullRunHistory, interleave, RunHistory, toProjectable } from './testing/run-events';

interface Db {
  orm: MikroORM;
  drop: () => Promise<void>;
}

const openDb = async (label: string): Promise<Db> => {
  const db = await createTestDatabase(label);
  const orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
  return { orm, drop: async () => (await orm.close(true), await db.drop()) };
};

const apply = (db: Db, events: readonly EventEnvelope[]) => applyBatch(db.orm.em.fork(), toProjectable(events));

/** Every row of the read model as JSON (timestamps at full precision); `updated_at` only if asked. */
async function dump(db: Db, opts: { withUpdatedAt?: boolean } = {}) {
  const strip = opts.withUpdatedAt ? '' : ` - 'updated_at'`;
  const em = db.orm.em.fork();
  const [runs, steps, stalls] = await Promise.all([
    em.execute(`select to_jsonb(r)${strip} as row from run_views r order by id`),
    em.execute(`select to_jsonb(s) as row from step_views s order by run_id, position`),
    em.execute(`select to_jsonb(s) - 'detected_at' as row from projection_stalls s order by run_id`),
  ]);
  const rows = (rs: ReadonlyArray<Record<string, unknown>>) => rs.map((r) => r.row);
  return { runs: rows(runs), steps: rows(steps), stalls: rows(stalls) };
}

describe('applyBatch against Postgres', () => {
  let db: Db;
  beforeEach(async () => {
    db = await openDb('projection');
  });
  afterEach(async () => {
    await db.drop();
  });

  it('projects a full run into the run and step rows the API reads', async () => {
    const h = fullRunHistory('run-full', { projectId: 'proj-7', flowId: 'flow-7' });
    const stats = await apply(db, h.events);
    expect(stats).toEqual({ applied: 16, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });

    const e = h.events;
    // Postgres writes timestamps back as +00:00; the instants are the events' own, to the microsecond.
    const pg = (iso: string) => iso.replace('Z', '+00:00');
    const { runs, steps, stalls } = await dump(db);
    expect(runs).toEqual([
      {
        id: 'run-full',
        project_id: 'proj-7',
        flow_id: 'flow-7',
        flow_version_id: 'fv-1',
        flow_display_name: 'Sync leads',
        status: 'SUCCEEDED',
        environment: 'PRODUCTION',
        triggered_by: 'user-1',
        tags: ['crm', 'nightly'],
        steps_count: 3,
        parent_run_id: null,
        fail_parent_on_failure: false,
        retry_of: null,
        failed_step_name: null,
        attempt: 2,
        start_time: pg(e[0].time),
        finish_time: pg(e[12].time),
        archived_at: pg(e[14].time),
        purged_at: pg(e[15].time),
        logs_file_id: null,
        trigger_data_ref: null,
        pause_request_id: null,
        pause_step_name: null,
        created: pg(e[0].time),
        version: 16,
      },
    ]);
    expect(steps).toEqual([
      {
        run_id: 'run-full',
        step_name: 'fetch',
        step_type: 'PIECE',
        status: 'SUCCEEDED',
        attempt: 1,
        position: 1,
        duration_ms: 120,
        data_ref: 'run-full:fetch:1',
        started_at: pg(e[1].time),
        finished_at: pg(e[2].time),
      },
      {
        run_id: 'run-full',
        step_name: 'approve',
        step_type: 'APPROVAL',
        status: 'SUCCEEDED',
        attempt: 1,
        position: 2,
        duration_ms: null,
        data_ref: 'run-full:approve:resume',
        started_at: pg(e[3].time),
        finished_at: pg(e[5].time),
      },
      {
        run_id: 'run-full',
        step_name: 'push',
        step_type: 'PIECE',
        status: 'SUCCEEDED',
        attempt: 2,
        position: 3,
        duration_ms: 95,
        data_ref: 'run-full:push:2',
        started_at: pg(e[10].time),
        finished_at: pg(e[11].time),
      },
    ]);
    expect(stalls).toEqual([]);
  });

  it('shows the intermediate states a client polls: paused, then failed with its step', async () => {
    const e = fullRunHistory('run-mid').events;
    await apply(db, e.slice(0, 5));
    let rows = await dump(db);
    expect(rows.runs[0]).toMatchObject({ status: 'PAUSED', pause_request_id: 'req-1', pause_step_name: 'approve', version: 5 });
    expect(rows.steps.map((s) => (s as { status: string }).status)).toEqual(['SUCCEEDED', 'PAUSED']);

    await apply(db, e.slice(5, 9));
    rows = await dump(db);
    expect(rows.runs[0]).toMatchObject({ status: 'FAILED', failed_step_name: 'push', pause_request_id: null, version: 9 });
    expect(rows.steps[2]).toMatchObject({ step_name: 'push', status: 'FAILED', data_ref: 'run-mid:push:1', attempt: 1 });
  });

  it('changes nothing, not even updated_at, when a whole batch is delivered again', async () => {
    const events = interleave(fullRunHistory('run-a').events, fullRunHistory('run-b').events);
    await apply(db, events);
    const before = await dump(db, { withUpdatedAt: true });
    const again = await apply(db, events);
    expect(again).toEqual({ applied: 0, duplicates: 32, gaps: 0, unknown: 0, stalls: [] });
    expect(await dump(db, { withUpdatedAt: true })).toEqual(before);
  });

  it('stalls only the run with a gap, records it once, and never fills the gap later', async () => {
    const a = fullRunHistory('run-gap').events;
    const b = fullRunHistory('run-ok').events;
    const stats = await apply(db, interleave([a[0], a[1], a[3], a[4]], b));
    expect(stats).toMatchObject({ applied: 2 + 16, gaps: 2 });
    expect(stats.stalls).toEqual([
      { runId: 'run-gap', eventId: a[3].id, eventType: a[3].type, expectedSeq: 3, receivedSeq: 4, reason: 'gap' },
    ]);

    // The missing event shows up late, then more: the run stays where it stopped.
    const later = await apply(db, [a[2], ...a.slice(5)]);
    expect(later).toEqual({ applied: 0, duplicates: 0, gaps: 1 + 11, unknown: 0, stalls: [] });

    const { runs, stalls } = await dump(db);
    expect(runs.map((r) => [(r as { id: string }).id, (r as { version: number }).version])).toEqual([
      ['run-gap', 2],
      ['run-ok', 16],
    ]);
    expect(stalls).toEqual([
      { run_id: 'run-gap', expected_seq: 3, received_seq: 4, event_id: a[3].id, event_type: a[3].type, reason: 'gap' },
    ]);
  });

  it('records a gap before the run exists (the trigger was lost) without creating a view', async () => {
    const a = fullRunHistory('run-late').events;
    const stats = await apply(db, a.slice(1, 3));
    expect(stats.stalls.map((s) => [s.expectedSeq, s.receivedSeq, s.reason])).toEqual([[1, 2, 'gap']]);
    const { runs, stalls } = await dump(db);
    expect(runs).toEqual([]);
    expect(stalls).toEqual([
      { run_id: 'run-late', expected_seq: 1, received_seq: 2, event_id: a[1].id, event_type: a[1].type, reason: 'gap' },
    ]);
  });

  it('records why each run stalled and the type of the event it stalled on: not-created, already-created', async () => {
    // A known event first, an unknown type first: neither has a row to apply to.
    const known = new RunHistory('run-known-first');
    known.stepStarted('fetch');
    const unknown = new RunHistory('run-unknown-first');
    unknown.addRaw('flowrun.triggered.v2', {});
    const twice = new RunHistory('run-twice');
    twice.triggered();
    twice.triggered();
    const stats = await apply(db, [...known.events, ...unknown.events, ...twice.events]);
    expect(stats.stalls.map((s) => [s.runId, s.reason])).toEqual([
      ['run-known-first', 'not-created'],
      ['run-unknown-first', 'not-created'],
      ['run-twice', 'already-created'],
    ]);

    const row = (e: EventEnvelope, expected: number, reason: string) => ({
      run_id: e.subject,
      expected_seq: expected,
      received_seq: e.seq,
      event_id: e.id,
      event_type: e.type,
      reason,
    });
    expect((await dump(db)).stalls).toEqual([
      row(known.events[0], 1, 'not-created'),
      row(twice.events[1], 2, 'already-created'),
      row(unknown.events[0], 1, 'not-created'),
    ]);
  });

  it('skips an unknown event type without stalling: the version moves and later events apply', async () => {
    const h = new RunHistory('run-new-type');
    h.triggered();
    h.addRaw('flowrun.annotated.v1', { note: 'from a newer producer' });
    h.stepStarted('fetch');
    const stats = await apply(db, h.events);
    expect(stats).toEqual({ applied: 2, duplicates: 0, gaps: 0, unknown: 1, stalls: [] });
    const { runs, steps, stalls } = await dump(db);
    expect(runs[0]).toMatchObject({ status: 'RUNNING', version: 3 });
    expect(steps).toHaveLength(1);
    expect(stalls).toEqual([]);
  });

  it('writes nothing of a batch whose transaction fails, and applies it all when redelivered', async () => {
    const events = interleave(fullRunHistory('run-a').events, fullRunHistory('run-b').events);
    await apply(db, events.slice(0, 6));
    const before = await dump(db, { withUpdatedAt: true });

    // The work runs for real inside the transaction; the failure comes after it (a lost connection
    // at commit time looks the same to the caller).
    const failing: TransactionalEm = {
      transactional: (work) =>
        db.orm.em.fork().transactional(async (tem) => {
          await work(tem);
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
        }),
    };
    await expect(applyBatch(failing, toProjectable(events))).rejects.toThrow('Connection terminated');
    expect(await dump(db, { withUpdatedAt: true })).toEqual(before);

    const retried = await apply(db, events);
    expect(retried).toMatchObject({ applied: 26, duplicates: 6 });
    expect((await dump(db)).runs.map((r) => (r as { version: number }).version)).toEqual([16, 16]);
  });

  it('keeps a run from moving backwards when two transactions project it at once (rebalance overlap)', async () => {
    const e = fullRunHistory('run-race').events;
    await apply(db, e.slice(0, 2));
    // A stale consumer re-applies an older slice while the owner applies everything.
    const results = await Promise.all([apply(db, e.slice(0, 8)), apply(db, e), apply(db, e.slice(0, 4))]);
    expect(results.reduce((n, r) => n + r.applied, 0)).toBe(14);
    const { runs } = await dump(db);
    expect(runs[0]).toMatchObject({ version: 16, status: 'SUCCEEDED' });

    // A run with no row yet has nothing to lock: the version guard on the upsert decides, and the
    // loser's step rows are not written either.
    const n = fullRunHistory('run-race-new').events;
    await Promise.all([apply(db, n.slice(0, 9)), apply(db, n), apply(db, n.slice(0, 12))]);
    const clean = await openDb('race_ref');
    try {
      await apply(clean, n);
      const pick = async (d: Db) => {
        const all = await dump(d);
        const mine = (r: unknown) => (r as { id?: string; run_id?: string }).id === 'run-race-new' || (r as { run_id?: string }).run_id === 'run-race-new';
        return { runs: all.runs.filter(mine), steps: all.steps.filter(mine) };
      };
      expect(await pick(db)).toEqual(await pick(clean));
    } finally {
      await clean.drop();
    }
  });
});

describe('archive, purge and a retry on the latest version alone in their batch (the patch path)', () => {
  let db: Db;
  beforeEach(async () => {
    db = await openDb('projection_patch');
  });
  afterEach(async () => {
    await db.drop();
  });

  /** The rows of a database where every event went through the fold (each run's history in one batch). */
  const foldedReference = async (events: readonly EventEnvelope[]) => {
    const ref = await openDb('projection_patch_ref');
    try {
      await apply(ref, events);
      return await dump(ref);
    } finally {
      await ref.drop();
    }
  };

  /** Projects `events` in a transaction of their own; answers the stats and the statements it sent. */
  const counted = (events: readonly EventEnvelope[]) => {
    const statements: string[] = [];
    return db.orm.em
      .fork()
      .transactional((tem) =>
        projectEnvelopes(
          {
            execute: async <T>(sql: string, params: unknown[] = []) => {
              statements.push(sql);
              return (await tem.execute(sql, params)) as T[];
            },
          },
          toProjectable(events),
        ),
      )
      .then((stats) => ({ stats, statements }));
  };

  it('gives the rows the fold gives, beside other runs\' events in the same batch', async () => {
    const a = fullRunHistory('run-a').events;
    const b = fullRunHistory('run-b').events;
    const c = fullRunHistory('run-c').events;
    await apply(db, [...a.slice(0, 13), ...b.slice(0, 15)]);
    // run-a's retry on the latest version alone in a batch: one statement, the patch (its new run
    // has a stream of its own; the original only moves its version).
    expect(a[13]).toMatchObject({ type: 'flowrun.retried.v1', data: { strategy: 'ON_LATEST_VERSION' } });
    const retried = await counted([a[13]]);
    expect(retried.stats).toEqual({ applied: 1, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(retried.statements).toHaveLength(1);
    expect(retried.statements[0]).toMatch(/update run_views/);
    // run-a: its archive alone; run-b: its purge alone; run-c: a whole history (the fold).
    const stats = await apply(db, [a[14], ...c, b[15]]);
    expect(stats).toEqual({ applied: 18, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    // run-a's purge alone in a batch of its own: one statement, the patch (the fold takes four).
    const alone = await counted([a[15]]);
    expect(alone.stats).toEqual({ applied: 1, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(alone.statements).toHaveLength(1);
    expect(alone.statements[0]).toMatch(/update run_views/);

    const got = await dump(db);
    expect(got.runs.map((r) => (r as { purged_at: string | null }).purged_at)).toEqual([
      a[15].time.replace('Z', '+00:00'),
      b[15].time.replace('Z', '+00:00'),
      c[15].time.replace('Z', '+00:00'),
    ]);
    expect(got).toEqual(await foldedReference([...a, ...b, ...c]));
  });

  it('a retention range: its run is patched as a purge, the range recorded once — through the patch, the fold, a redelivery and a stalled run alike', async () => {
    /** The run's history with its last event (the purge) replaced by the range it closes. */
    const withRange = (runId: string, runs: number, from: { at: string; id: string } | null) => {
      const events = fullRunHistory(runId, { projectId: 'p-ranges' }).events;
      const last = events[15];
      const data = { reason: 'RETENTION', fromFinishedAt: from?.at ?? null, fromRunId: from?.id ?? null, throughFinishedAt: events[12].time, runs };
      return [...events.slice(0, 15), { ...last, type: 'flowrun.execution-data-purged-through.v1', data }];
    };
    const a = withRange('run-ra', 3, null);
    const b = withRange('run-rb', 2, { at: a[15].data.throughFinishedAt as string, id: 'run-ra' });
    const c = withRange('run-rc', 4, { at: b[15].data.throughFinishedAt as string, id: 'run-rb' });
    await apply(db, a.slice(0, 15));
    // Alone in its batch: the range's insert and the patch of its run.
    const alone = await counted([a[15]]);
    expect(alone.stats).toEqual({ applied: 1, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(alone.statements).toHaveLength(2);
    expect(alone.statements[0]).toMatch(/insert into run_view_purge_ranges/);
    expect(alone.statements[1]).toMatch(/update run_views/);
    // Redelivered: a duplicate, and the same range.
    expect((await counted([a[15]])).stats).toMatchObject({ applied: 0, duplicates: 1 });
    // A whole history in one batch: the fold.
    expect(await apply(db, b)).toMatchObject({ applied: 16 });
    // A run whose projection stalled (a gap before the range) still has its range recorded: it is its project's.
    const stalled = await apply(db, [...c.slice(0, 5), c[15]]);
    expect(stalled.stalls).toHaveLength(1);

    const got = await dump(db);
    const purgedAt = Object.fromEntries(got.runs.map((r) => [(r as { id: string }).id, (r as { purged_at: string | null }).purged_at]));
    expect(purgedAt).toEqual({ 'run-ra': a[15].time.replace('Z', '+00:00'), 'run-rb': b[15].time.replace('Z', '+00:00'), 'run-rc': null });
    const ranges = await db.orm.em
      .fork()
      .execute(
        `select through_run_id, from_run_id, runs, to_char(purged_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as purged_at
         from run_view_purge_ranges where project_id = 'p-ranges' order by through_finished_at, through_run_id`,
      );
    expect(ranges).toEqual([
      { through_run_id: 'run-ra', from_run_id: null, runs: 3, purged_at: a[15].time },
      { through_run_id: 'run-rb', from_run_id: 'run-ra', runs: 2, purged_at: b[15].time },
      { through_run_id: 'run-rc', from_run_id: 'run-rb', runs: 4, purged_at: c[15].time },
    ]);
  });

  it('a run\'s trigger alone in a batch: one statement, the insert of the row the fold gives; redelivered, a duplicate; a stalled run\'s, left to the fold', async () => {
    const t = fullRunHistory('run-created').events;
    const u = fullRunHistory('run-created-2').events;
    expect(t[0]).toMatchObject({ type: 'flowrun.triggered.v1', seq: 1 });
    const created = await counted([t[0], u[0]]);
    expect(created.stats).toEqual({ applied: 2, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(created.statements).toHaveLength(1);
    expect(created.statements[0]).toMatch(/insert into run_views[\s\S]*on conflict \(id\) do nothing/);
    // Redelivered: nothing written, counted as the fold counts it.
    const again = await counted([t[0]]);
    expect(again.stats).toEqual({ applied: 0, duplicates: 1, gaps: 0, unknown: 0, stalls: [] });
    // A run whose later event came first stalled without a view; its trigger, late, is not projected.
    const late = fullRunHistory('run-created-late').events;
    expect((await apply(db, [late[2]])).stalls).toHaveLength(1);
    expect(await counted([late[0]]).then((r) => r.stats)).toEqual({ applied: 0, duplicates: 0, gaps: 1, unknown: 0, stalls: [] });
    // Beside an event the fold takes, a trigger is folded too (the insert would be a statement more).
    const v = fullRunHistory('run-created-3').events;
    const mixed = await counted([v[0], t[1]]);
    expect(mixed.stats).toEqual({ applied: 2, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(mixed.statements.some((q) => /do nothing/.test(q))).toBe(false);
    // The rest of the histories, then the rows the fold alone gives.
    await apply(db, [...t.slice(2), ...u.slice(1), ...v.slice(1)]);
    const got = await dump(db);
    const reference = await foldedReference([...t, ...u, ...v]);
    const only = (d: typeof got, ids: readonly string[]) => ({
      runs: d.runs.filter((r) => ids.includes((r as { id: string }).id)),
      steps: d.steps.filter((r) => ids.includes((r as { run_id: string }).run_id)),
    });
    const ids = ['run-created', 'run-created-2', 'run-created-3'];
    expect(only(got, ids)).toEqual(only(reference, ids));
    expect(only(got, ids).runs).toHaveLength(3);
    expect(got.runs.some((r) => (r as { id: string }).id === 'run-created-late')).toBe(false);
  });

  it('writes text a client chose exactly as sent, through the insert and the fold alike (quotes, escapes, unicode, array syntax)', async () => {
    const name = 'Say "hi" \\ back\n\ttab — ünïcødé 𝄞 $json$ \'x\' {a,b} \u0001';
    const tags = ['a,b', '{c}', 'd"e', 'f\\g', '', 'NULL', ' sp ', '日本'];
    const created = new RunHistory('run-text-created');
    created.triggered({ flowDisplayName: name, tags });
    const folded = new RunHistory('run-text-folded');
    folded.triggered({ flowDisplayName: name, tags });
    folded.stepStarted(name);
    // The first alone (the insert), the second with a step (the fold's upsert and a step row).
    await apply(db, created.events);
    await apply(db, folded.events);
    const { runs, steps } = await dump(db);
    expect(runs).toEqual([
      expect.objectContaining({ id: 'run-text-created', flow_display_name: name, tags }),
      expect.objectContaining({ id: 'run-text-folded', flow_display_name: name, tags }),
    ]);
    expect(steps).toEqual([expect.objectContaining({ run_id: 'run-text-folded', step_name: name })]);
  });

  it('folds a retry from the failed step even alone in a batch: it changes the status and the steps', async () => {
    const d = fullRunHistory('run-fold-retry').events;
    await apply(db, d.slice(0, 9));
    expect(d[9]).toMatchObject({ type: 'flowrun.retried.v1', data: { strategy: 'FROM_FAILED_STEP' } });
    const retried = await counted([d[9]]);
    expect(retried.stats.applied).toBe(1);
    expect(retried.statements.some((q) => /update run_views/.test(q))).toBe(false);
    const row = (await dump(db)).runs.find((r) => (r as { id: string }).id === 'run-fold-retry');
    expect(row).toMatchObject({ status: 'RUNNING', attempt: 2, failed_step_name: null });
  });

  it('leaves a duplicate, a gap, a stalled run and a run with no view to the fold, which records them', async () => {
    const dup = fullRunHistory('run-dup').events;
    const gap = fullRunHistory('run-gap').events;
    const stalled = fullRunHistory('run-stalled').events;
    const missing = fullRunHistory('run-missing').events;
    await apply(db, [...dup, ...gap.slice(0, 13), ...stalled.slice(0, 3), stalled[4]]);
    const before = await dump(db, { withUpdatedAt: true });

    const stats = await apply(db, [dup[15], gap[15], stalled[14], missing[14]]);
    expect(stats.applied).toBe(0);
    expect(stats.duplicates).toBe(1);
    expect(stats.gaps).toBe(3);
    expect(stats.stalls.map((s) => [s.runId, s.expectedSeq, s.receivedSeq, s.reason])).toEqual([
      ['run-gap', 14, 16, 'gap'],
      ['run-missing', 1, 15, 'gap'],
    ]);
    const after = await dump(db, { withUpdatedAt: true });
    expect(after.runs).toEqual(before.runs);
    // The event each run stalled on, whichever path it came through.
    const stalledOn = (r: Record<string, unknown>) => [r.run_id, r.received_seq, r.event_type, r.reason];
    expect(after.stalls.map((s) => stalledOn(s as Record<string, unknown>))).toEqual([
      ['run-gap', 16, 'flowrun.execution-data-purged.v1', 'gap'],
      ['run-missing', 15, 'flowrun.archived.v1', 'gap'],
      ['run-stalled', 5, stalled[4].type, 'gap'],
    ]);
  });

  it('does not deadlock or lose a write when two transactions patch and fold overlapping runs at once', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `run-${String(i).padStart(2, '0')}`);
    const hs = ids.map((id) => fullRunHistory(id).events);
    await apply(db, hs.flatMap((e) => e.slice(0, 14)));
    // Each batch patches some runs and folds the others' archive + purge; the two batches take the
    // runs in opposite orders, as two consumers in a rebalance overlap could.
    const batch = (order: readonly number[], alone: (i: number) => boolean) =>
      order.flatMap((i) => (alone(i) ? [hs[i][14]] : [hs[i][14], hs[i][15]]));
    const up = ids.map((_, i) => i);
    await Promise.all([apply(db, batch(up, (i) => i % 2 === 0)), apply(db, batch([...up].reverse(), (i) => i % 2 === 1))]);
    await apply(db, hs.flatMap((e) => e.slice(14)));
    expect(await dump(db)).toEqual(await foldedReference(hs.flat()));
  });
});

describe('rebuild determinism', () => {
  const dbs: Db[] = [];
  afterAll(async () => {
    await Promise.all(dbs.map((d) => d.drop()));
  });

  it('gives identical rows (but updated_at) whether the history is projected in one batch or one event per batch', async () => {
    const histories = [fullRunHistory('run-a'), fullRunHistory('run-b', { projectId: 'proj-2' })];
    const extra = new RunHistory('run-c', { flowId: 'flow-3' });
    extra.triggered({ tags: [], triggeredBy: null, parentRunId: 'run-a', failParentOnFailure: true });
    extra.stepStarted('only');
    extra.addRaw('flowrun.future.v1', {});
    extra.add('flowrun.paused.v1', { stepName: 'only', requestId: 'req-c', resumeDeadline: '2026-03-02T00:00:00Z' });
    const gap = fullRunHistory('run-d').events.filter((x) => x.seq !== 4);
    const events = interleave(...histories.map((h) => h.events), extra.events, gap);

    const [once, oneByOne] = await Promise.all([openDb('rebuild_a'), openDb('rebuild_b')]);
    dbs.push(once, oneByOne);
    await apply(once, events);
    for (const e of events) await apply(oneByOne, [e]);

    const a = await dump(once);
    const b = await dump(oneByOne);
    expect(a.runs).toHaveLength(4);
    expect(a.steps.length).toBeGreaterThan(6);
    const stalledOn = gap.find((x) => x.seq === 5)!;
    expect(a.stalls).toEqual([
      { run_id: 'run-d', expected_seq: 4, received_seq: 5, event_id: stalledOn.id, event_type: stalledOn.type, reason: 'gap' },
    ]);
    expect(b).toEqual(a);
  });

  it('can run inside a transaction the caller opened (projectEnvelopes)', async () => {
    const db = await openDb('caller_tx');
    dbs.push(db);
    const h = fullRunHistory('run-x');
    const stats = await db.orm.em.fork().transactional((tem) =>
      projectEnvelopes(
        { execute: async <T>(sql: string, params: unknown[] = []) => (await tem.execute(sql, params)) as T[] },
        toProjectable(h.events),
      ),
    );
    expect(stats.applied).toBe(16);
  });
});
