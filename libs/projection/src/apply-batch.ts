import { componentLogger } from '@flowruns/platform';
import { foldBatch, type ProjectableEnvelope, type RunProjectionStats } from './fold';
import { createRuns, lockRuns, loadRuns, patchOf, patchRuns, recordPurgeRanges, saveRuns, type RunPatch, type SqlRunner } from './store';
import { evolveRun, type RunView } from './view';

/** Runs raw SQL; a MikroORM `EntityManager` (a fork or a transactional one) is one. */
export interface ExecutesSql {
  execute(sql: string, params?: unknown[]): Promise<unknown>;
}

/** What `applyBatch` needs from MikroORM's `EntityManager`: a transaction that runs raw SQL. */
export interface TransactionalEm {
  transactional<T>(work: (tem: ExecutesSql) => Promise<T>): Promise<T>;
}

const log = componentLogger('projection');

const runner = (em: ExecutesSql): SqlRunner => ({
  execute: async <T>(sql: string, params: unknown[] = []) => (await em.execute(sql, params)) as T[],
});

/**
 * Splits off the runs whose only event in the batch takes a short path: a patch event (`patchOf`:
 * an archive, a purge, a retry on the latest version), or the run's trigger (`seq` 1, which the
 * fold would apply to a run with no view: `createRuns`) when every other event of the batch is one
 * — beside a fold the insert would be one statement more, not one fewer (an ingest's batches). The
 * rest keep their delivery order.
 */
function splitShortPaths(items: readonly ProjectableEnvelope[]) {
  const perRun = new Map<string, number>();
  for (const i of items) perRun.set(i.envelope.subject, (perRun.get(i.envelope.subject) ?? 0) + 1);
  const alone = (i: ProjectableEnvelope): i is Extract<ProjectableEnvelope, { kind: 'known' }> =>
    i.kind === 'known' && perRun.get(i.envelope.subject) === 1;
  const patches: RunPatch[] = [];
  const rest: ProjectableEnvelope[] = [];
  for (const i of items) {
    const patch = alone(i) ? patchOf(i.envelope) : null;
    if (patch) patches.push(patch);
    else rest.push(i);
  }
  if (!rest.every((i) => alone(i) && i.envelope.type === 'flowrun.triggered.v1' && i.envelope.seq === 1)) return { patches, creates: [], rest };
  const creates: RunView[] = [];
  for (const i of rest) {
    const r = i.kind === 'known' ? evolveRun(null, i.envelope) : null;
    // A trigger the fold would stall on: the fold takes the whole rest.
    if (!r?.ok) return { patches, creates: [], rest };
    creates.push(r.projection.view);
  }
  return { patches, creates, rest: [] };
}

async function fold(sql: SqlRunner, items: readonly ProjectableEnvelope[]): Promise<RunProjectionStats> {
  if (items.length === 0) return { applied: 0, duplicates: 0, gaps: 0, unknown: 0, stalls: [] };
  const loaded = await loadRuns(
    sql,
    items.map((i) => i.envelope.subject),
  );
  const folded = foldBatch(loaded, items);
  await saveRuns(sql, { runs: folded.changedRuns, steps: folded.changedSteps, stalls: folded.stats.stalls });
  return folded.stats;
}

/**
 * Projects events inside a transaction the caller already opened: loads and locks the batch's runs,
 * folds the events over them, writes the result. Prefer `applyBatch`, which opens the transaction.
 *
 * A run whose only event in the batch is an archive, a purge or a retry on the latest version
 * takes a shorter path: one `update` of its view row, no load, no fold (a bulk archive, a
 * retention purge, the originals of a bulk retry on the latest version are batches of these); one
 * whose only event is its trigger, one `insert` of its first row (the new runs of a bulk retry on
 * the latest version) when no other event of the batch needs the fold. A patch or a new row that
 * does not apply cleanly (a duplicate, a gap, a stalled run) goes through the fold like any other
 * event, so the outcome is the fold's in every case.
 */
export async function projectEnvelopes(sql: SqlRunner, items: readonly ProjectableEnvelope[]): Promise<RunProjectionStats> {
  if (items.length === 0) return { applied: 0, duplicates: 0, gaps: 0, unknown: 0, stalls: [] };
  await recordPurgeRanges(
    sql,
    items.flatMap((i) => (i.kind === 'known' ? [i.envelope] : [])),
  );
  const { patches, creates, rest } = splitShortPaths(items);
  if (patches.length === 0 && creates.length === 0) return fold(sql, items);
  // The patch and the fold lock existing rows; taking those locks first, in one order, keeps them
  // deadlock-free. A new run's insert locks no existing row (one that exists already, redelivered,
  // is left to the fold: only a redelivery overlapping another consumer's batch could then lock out
  // of order, and Postgres would end that deadlock with an error and the batch be redelivered).
  if (rest.length && patches.length) await lockRuns(sql, [...patches.map((p) => p.runId), ...rest.map((i) => i.envelope.subject)]);
  const patched = await patchRuns(sql, patches);
  const created = await createRuns(sql, creates);
  const shortened = patched.size + created.size;
  // A run that took a short path had no other event in the batch; the rest keep their delivery order.
  const left = shortened === patches.length + creates.length ? rest : items.filter((i) => !patched.has(i.envelope.subject) && !created.has(i.envelope.subject));
  const stats = await fold(sql, left);
  return { ...stats, applied: stats.applied + shortened };
}

/**
 * Applies a batch of parsed events to the read model in ONE transaction: either every event of the
 * batch is reflected, or (on any error, which is rethrown) none is, so the caller can leave the
 * batch's offsets uncommitted and have it redelivered. Idempotent: redelivered events are counted
 * as duplicates and change nothing.
 *
 * Stalls are logged here, loudly, with the ids as fields; the caller turns the returned stats into
 * metrics.
 */
export async function applyBatch(em: TransactionalEm, items: readonly ProjectableEnvelope[]): Promise<RunProjectionStats> {
  if (items.length === 0) return { applied: 0, duplicates: 0, gaps: 0, unknown: 0, stalls: [] };
  const stats = await em.transactional((tem) => projectEnvelopes(runner(tem), items));
  // Logged after the commit so a rolled-back (and retried) batch does not report a stall twice.
  for (const s of stats.stalls) {
    log.error(
      {
        runId: s.runId,
        eventId: s.eventId,
        eventType: s.eventType,
        expectedSeq: s.expectedSeq,
        receivedSeq: s.receivedSeq,
        reason: s.reason,
      },
      'run projection stalled: its events cannot be applied in order; later events of the run are skipped until a rebuild',
    );
  }
  return stats;
}
