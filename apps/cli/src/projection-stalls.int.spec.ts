import { ormOptions, sqlRunner } from '@flowruns/database';
import { createTestDatabase } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { listStalls, stallsTable } from './projection-stalls';

/**
 * What `projection:stalls` reads: the stall rows as the projector writes them (and as they were
 * before the reason was kept), joined to the run's project when the run has a view.
 */
describe('listStalls against Postgres', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let orm: MikroORM;
  beforeAll(async () => {
    db = await createTestDatabase('cli_stalls');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 1 }));
  });
  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  const sql = () => sqlRunner(orm.em.fork());
  const view = (id: string, projectId: string) =>
    sql().execute(
      `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment, steps_count, attempt, created, version)
       values (?, ?, 'flow-1', 'fv-1', 'Sync', 'RUNNING', 'PRODUCTION', 1, 1, '2026-03-01T10:00:00Z', 4)`,
      [id, projectId],
    );
  const stall = (r: { runId: string; expected: number; received: number; eventId: string; eventType?: string; reason?: string; at: string }) =>
    sql().execute(
      `insert into projection_stalls (run_id, expected_seq, received_seq, event_id, event_type, reason, detected_at) values (?, ?, ?, ?, ?, ?, ?)`,
      [r.runId, r.expected, r.received, r.eventId, r.eventType ?? null, r.reason ?? null, r.at],
    );

  it('finds nothing on a database without stalls', async () => {
    expect(await listStalls(sql(), 50)).toEqual({ stalls: [], total: 0 });
  });

  it('lists them newest first with the run project (null without a view) and the reason (null on an older row), up to the limit', async () => {
    await view('run-gap', 'proj-a');
    await view('run-twice', 'proj-b');
    await stall({ runId: 'run-old', expected: 3, received: 5, eventId: 'evt-old', at: '2026-11-01T08:00:00.123456Z' });
    await stall({ runId: 'run-gap', expected: 5, received: 7, eventId: 'evt-g7', eventType: 'flowrun.step.started.v1', reason: 'gap', at: '2026-11-29T12:00:00Z' });
    // Two stalls of one batch share their detection time: run id order.
    const batch = '2026-11-29T14:00:00Z';
    await stall({ runId: 'run-twice', expected: 5, received: 5, eventId: 'evt-run-twice', eventType: 'flowrun.triggered.v1', reason: 'already-created', at: batch });
    await stall({ runId: 'run-orphan', expected: 1, received: 1, eventId: 'evt-run-orphan', eventType: 'flowrun.step.started.v1', reason: 'not-created', at: batch });

    const all = await listStalls(sql(), 50);
    expect(all.total).toBe(4);
    expect(all.stalls).toEqual([
      {
        runId: 'run-orphan',
        projectId: null,
        reason: 'not-created',
        eventType: 'flowrun.step.started.v1',
        expectedSeq: 1,
        receivedSeq: 1,
        eventId: 'evt-run-orphan',
        detectedAt: '2026-11-29T14:00:00.000Z',
      },
      {
        runId: 'run-twice',
        projectId: 'proj-b',
        reason: 'already-created',
        eventType: 'flowrun.triggered.v1',
        expectedSeq: 5,
        receivedSeq: 5,
        eventId: 'evt-run-twice',
        detectedAt: '2026-11-29T14:00:00.000Z',
      },
      {
        runId: 'run-gap',
        projectId: 'proj-a',
        reason: 'gap',
        eventType: 'flowrun.step.started.v1',
        expectedSeq: 5,
        receivedSeq: 7,
        eventId: 'evt-g7',
        detectedAt: '2026-11-29T12:00:00.000Z',
      },
      {
        runId: 'run-old',
        projectId: null,
        reason: null,
        eventType: null,
        expectedSeq: 3,
        receivedSeq: 5,
        eventId: 'evt-old',
        detectedAt: '2026-11-01T08:00:00.123Z',
      },
    ]);

    const newest = await listStalls(sql(), 2);
    expect(newest).toEqual({ stalls: all.stalls.slice(0, 2), total: 4 });

    expect(stallsTable(all.stalls)).toEqual([
      'RUN         PROJECT  REASON           EVENT TYPE               EXPECTED  RECEIVED  EVENT           DETECTED AT',
      'run-orphan  -        not-created      flowrun.step.started.v1  1         1         evt-run-orphan  2026-11-29T14:00:00.000Z',
      'run-twice   proj-b   already-created  flowrun.triggered.v1     5         5         evt-run-twice   2026-11-29T14:00:00.000Z',
      'run-gap     proj-a   gap              flowrun.step.started.v1  5         7         evt-g7          2026-11-29T12:00:00.000Z',
      'run-old     -        -                -                        3         5         evt-old         2026-11-01T08:00:00.123Z',
    ]);
  });
});
