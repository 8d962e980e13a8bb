import type { PurgeOutcomeResult } from '@flowruns/contracts';
import type { RetentionClient, RetentionWindowInput } from './retention-client';

export interface RetentionPassOptions {
  readonly window: RetentionWindowInput;
  /** Runs per batch (`RETENTION_BATCH_SIZE`). */
  readonly batchSize: number;
  /** Pause between batches (`RETENTION_BATCH_PAUSE_MS`), so a purge leaves room for the live load. */
  readonly pauseMs: number;
  /** Checked between batches: a stopping process finishes the batch in hand and no more. */
  readonly shouldStop?: () => boolean;
  /** Called after every batch (metrics, progress). */
  readonly onBatch?: (outcome: PurgeOutcomeResult, seconds: number) => void;
}

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
 * takes up where it stopped.
 */
export async function runRetentionPass(client: RetentionClient, opts: RetentionPassOptions): Promise<RetentionPassResult> {
  let runs = 0;
  let records = 0;
  let bytes = 0;
  let batches = 0;
  for (;;) {
    if (opts.shouldStop?.()) return { runs, records, bytes, batches, complete: false };
    const started = process.hrtime.bigint();
    const outcome = await client.purgeBatch(opts.window, opts.batchSize);
    opts.onBatch?.(outcome, Number(process.hrtime.bigint() - started) / 1e9);
    batches++;
    runs += outcome.runs;
    records += outcome.records;
    bytes += outcome.bytes;
    if (outcome.runs < opts.batchSize) return { runs, records, bytes, batches, complete: true };
    if (opts.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, opts.pauseMs));
  }
}
