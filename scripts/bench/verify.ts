import { parseEnvelope, type EventEnvelope, type KnownEnvelope } from '@flowruns/contracts';
import { isoMicrosSql } from '@flowruns/database';
import { evolveRun, loadRuns, type RunProjection } from '@flowruns/projection';
import { evolve, initialState, type RunState } from '@flowruns/run-domain';
import type { BenchDatabase } from './db';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:\d{2})?)$/;

/** Same value, timestamps in one spelling (Postgres renders `+00:00` and trims zeros; events say `.200Z`). */
function normalize(v: unknown): unknown {
  if (typeof v === 'string') return ISO.test(v) ? new Date(v).toISOString() : v;
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, normalize(x)]),
    );
  }
  return v;
}

const same = (a: unknown, b: unknown) => JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));

/**
 * Checks bulk-loaded runs against the real code: every loaded event must parse as a known event
 * (the contracts' schemas), the stream snapshot must be what the decider's `evolve` folds from those
 * events, and the view rows (read the way the projector reads them) what the projection's
 * `evolveRun` folds from them, with the same finish instant as the stream's. Throws with the first
 * difference.
 */
export async function verifySample(db: BenchDatabase, runIds: readonly string[]): Promise<{ runs: number; events: number }> {
  const rows = await db.q<{ run_id: string; envelope: EventEnvelope }>(
    'select run_id, envelope from run_events where run_id = any($1) order by run_id, seq',
    [runIds],
  );
  const byRun = new Map<string, KnownEnvelope[]>();
  for (const r of rows) {
    const parsed = parseEnvelope(JSON.stringify(r.envelope));
    if (parsed.kind !== 'known') throw new Error(`loaded event of run ${r.run_id} does not parse: ${JSON.stringify(parsed)}`);
    byRun.set(r.run_id, [...(byRun.get(r.run_id) ?? []), parsed.envelope]);
  }
  const streams = await db.q<{ run_id: string; state: RunState; version: number; finished_at: string | null }>(
    `select run_id, state, version, ${isoMicrosSql('finished_at')} as finished_at from run_streams where run_id = any($1)`,
    [runIds],
  );
  const views = await loadRuns(db.runner(), runIds);
  for (const id of runIds) {
    const events = byRun.get(id);
    if (!events?.length) throw new Error(`run ${id}: no events loaded`);
    let state = initialState();
    let projection: RunProjection | null = null;
    for (const e of events) {
      state = evolve(state, { type: e.type, data: e.data } as Parameters<typeof evolve>[1], e.time);
      const r = evolveRun(projection, e);
      if (!r.ok) throw new Error(`run ${id}: the projection refuses seq ${e.seq} (${r.reason})`);
      projection = r.projection;
    }
    const stream = streams.find((s) => s.run_id === id);
    if (!stream) throw new Error(`run ${id}: no stream row`);
    if (stream.version !== events.length) throw new Error(`run ${id}: stream version ${stream.version}, ${events.length} events`);
    if (!same(stream.state, state)) {
      throw new Error(`run ${id}: snapshot differs from evolve\n loaded: ${JSON.stringify(normalize(stream.state))}\n folded: ${JSON.stringify(normalize(state))}`);
    }
    const view = views.get(id)?.projection;
    if (!view) throw new Error(`run ${id}: no view row`);
    // Retention's ranges hold runs by finish key on both sides: the stream's and the view's must agree.
    if (!same(stream.finished_at, view.view.finishTime)) {
      throw new Error(`run ${id}: run_streams.finished_at ${stream.finished_at} but the view's finish_time ${view.view.finishTime}`);
    }
    if (!same(view, projection)) {
      throw new Error(`run ${id}: view differs from evolveRun\n loaded: ${JSON.stringify(normalize(view))}\n folded: ${JSON.stringify(normalize(projection))}`);
    }
  }
  return { runs: runIds.length, events: rows.length };
}

/**
 * Compares the views the real projector built with the bulk loader's (in `expected_*` tables): the
 * number of rows that differ, either way, over every column but `updated_at`.
 */
export async function compareViews(db: BenchDatabase): Promise<{ runRowsDiffering: number; stepRowsDiffering: number; runs: number; examples: unknown[] }> {
  const runCols = `id, project_id, flow_id, flow_version_id, flow_display_name, status, environment, triggered_by, tags, steps_count,
    parent_run_id, fail_parent_on_failure, retry_of, failed_step_name, attempt, start_time, finish_time, archived_at, purged_at,
    logs_file_id, trigger_data_ref, pause_request_id, pause_step_name, created, version`;
  const stepCols = 'run_id, step_name, step_type, status, attempt, position, duration_ms, data_ref, started_at, finished_at';
  const diff = async (cols: string, a: string, b: string) =>
    Number(
      (
        await db.one<{ n: string }>(
          `select ((select count(*) from (select ${cols} from ${a} except select ${cols} from ${b}) x)
                 + (select count(*) from (select ${cols} from ${b} except select ${cols} from ${a}) y))::text as n`,
        )
      ).n,
    );
  const examples = await db.q(
    `(select 'built' as side, ${runCols} from run_views except select 'built', ${runCols} from expected_run_views limit 2)
     union all
     (select 'loaded', ${runCols} from expected_run_views except select 'loaded', ${runCols} from run_views limit 2)`,
  );
  return {
    examples,
    runRowsDiffering: await diff(runCols, 'run_views', 'expected_run_views'),
    stepRowsDiffering: await diff(stepCols, 'step_views', 'expected_step_views'),
    runs: Number((await db.one<{ n: string }>('select count(*)::text as n from expected_run_views')).n),
  };
}
