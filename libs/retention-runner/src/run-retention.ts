import type { PurgeBatchOutcomeResult, PurgeCursorInput } from '@flowruns/contracts';
import type { RetentionClient, RetentionWindowInput } from './retention-client';

export interface RetentionPassOptions {
  readonly window: RetentionWindowInput;
  /** Runs per batch (`RETENTION_BATCH_SIZE`). */
  readonly batchSize: number;
  /** Pause between batches (`RETENTION_BATCH_PAUSE_MS`), so a purge leaves room for the live load. */
  readonly pauseMs: number;
  /** Checked between batches: a stopping process finishes the batch in hand and no more. */
  readonly shouldStop?: () => boolean;
  /** Batches in flight at once (`RETENTION_CONCURRENCY`, default 1). */
  readonly concurrency?: number;
  /**
   * Most runs purged per second over the pass (`RETENTION_MAX_RUNS_PER_S`; 0 or absent: as fast as
   * the batches go). Batches start on a schedule every lane shares, one batch's worth of runs per
   * slot, so a backlog is purged as an even trickle instead of bursts that take the machine from
   * the live load.
   */
  readonly maxRunsPerS?: number;
  /**
   * Most of its time a lane spends in batches (`RETENTION_MAX_BUSY_SHARE`, in (0, 1]; 1 or absent:
   * no limit): after a batch that took `d`, the lane rests `d × (1 − share) / share` before its
   * next (or `pauseMs`, if longer). A cap in runs per second takes the same work from a slow or
   * busy machine as from an idle one; this backs off by itself as the batches slow down, so the
   * purge yields to the live load where the database is short of time.
   */
  readonly maxBusyShare?: number;
  /** The clock the schedule runs on (tests); the real one by default. */
  readonly clock?: PassClock;
  /** Called after every batch (metrics, progress). */
  readonly onBatch?: (outcome: PurgeBatchOutcomeResult, seconds: number) => void;
}

export interface PassClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const SLOT_WAIT_STEP_MS = 250;

const realClock: PassClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetentionPassResult {
  readonly runs: number;
  readonly records: number;
  readonly bytes: number;
  readonly batches: number;
  /** False when `shouldStop` ended the pass before the expired runs ran out. */
  readonly complete: boolean;
}

/**
 * One retention pass: batches until a batch comes back short (nothing more has expired, or the rest
 * is being purged by another instance right now). Each batch is one transaction in the command
 * service, so a pass killed at any point has lost nothing and purged nothing twice; the next pass
 * takes up where it stopped. With `concurrency` > 1 that many batches are in flight at once: a
 * project is purged by one batch at a time, so they take different projects, and a lane that gets a short batch
 * stops while the others go on until theirs is short too. With `maxRunsPerS` the batches start on
 * one schedule the lanes share (no faster than the cap, and never a burst to catch up after a slow
 * batch); with `maxBusyShare` each lane also rests after a batch in proportion to how long it
 * took. A failed batch stops every lane after its
 * batch in hand, and the pass fails with that error.
 *
 * Each lane starts its next batch after where its last one ended (the batch's `last`): a pass reads
 * the candidates' index once instead of from its head at every batch. What a lane passes over is
 * either not expired at the pass's `window.now` or in a project another transaction held (another
 * lane's batch, a retry or an erase): the next pass takes the latter.
 */
export async function runRetentionPass(client: RetentionClient, opts: RetentionPassOptions): Promise<RetentionPassResult> {
  let runs = 0;
  let records = 0;
  let bytes = 0;
  let batches = 0;
  let stopped = false;
  let failed: { error: unknown } | null = null;
  const clock = opts.clock ?? realClock;
  // Each batch takes the next slot of the shared schedule (a batch's worth of runs at the cap).
  const slotMs = opts.maxRunsPerS ? (opts.batchSize * 1000) / opts.maxRunsPerS : 0;
  let nextSlot = clock.now();
  // A slot or a rest can be far off (a low cap, a large batch, a slow one): it is waited for in
  // steps, so a stop or a failed lane is seen within one step rather than at its end.
  const waitUntil = async (at: number): Promise<void> => {
    while (clock.now() < at && !failed && !opts.shouldStop?.()) await clock.sleep(Math.min(at - clock.now(), SLOT_WAIT_STEP_MS));
  };
  const awaitSlot = async (): Promise<void> => {
    if (!slotMs) return;
    const at = Math.max(clock.now(), nextSlot);
    nextSlot = at + slotMs;
    await waitUntil(at);
  };
  const share = opts.maxBusyShare ?? 1;
  if (!(share > 0 && share <= 1)) throw new Error(`maxBusyShare: a number in (0, 1], not ${share}`);
  const lane = async (): Promise<void> => {
    let after: PurgeCursorInput | null = null;
    for (;;) {
      await awaitSlot();
      if (failed) return;
      if (opts.shouldStop?.()) {
        stopped = true;
        return;
      }
      const startedAt = clock.now();
      let outcome: PurgeBatchOutcomeResult;
      try {
        outcome = await client.purgeBatch(opts.window, opts.batchSize, after);
      } catch (error) {
        failed ??= { error };
        return;
      }
      const tookMs = clock.now() - startedAt;
      opts.onBatch?.(outcome, tookMs / 1000);
      batches++;
      runs += outcome.runs;
      records += outcome.records;
      bytes += outcome.bytes;
      if (outcome.runs < opts.batchSize) return;
      after = outcome.last ?? null;
      const restMs = Math.max(opts.pauseMs, (tookMs * (1 - share)) / share);
      if (restMs > 0) await waitUntil(clock.now() + restMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, lane));
  const failure = failed as { error: unknown } | null;
  if (failure) throw failure.error;
  return { runs, records, bytes, batches, complete: !stopped };
}
