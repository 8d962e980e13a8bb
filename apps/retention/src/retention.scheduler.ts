import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { componentLogger } from '@flowruns/platform';
import { RetentionClient, retentionClientOptions, runRetentionPass, type RetentionPassResult } from '@flowruns/retention-runner';
import { RETENTION_CONFIG, type RetentionAppConfig } from './config';
import { retentionMetrics } from './metrics';

/**
 * Runs a retention pass on start and then every `RETENTION_INTERVAL_MS`, one at a time. Several
 * instances may run at once: the command service hands each batch different projects (a project's purge lock).
 * On shutdown the pass in hand finishes its current batch and stops.
 */
@Injectable()
export class RetentionScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = componentLogger('retention');
  private readonly client: RetentionClient;
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<RetentionPassResult | null> | null = null;
  private stopping = false;

  constructor(@Inject(RETENTION_CONFIG) private readonly config: RetentionAppConfig) {
    this.client = new RetentionClient(retentionClientOptions(config));
  }

  onApplicationBootstrap(): void {
    if (this.config.RETENTION_INTERVAL_MS === 0) {
      this.log.info('no schedule (RETENTION_INTERVAL_MS=0): purges run on demand only');
      return;
    }
    const tick = () => {
      void this.runOnce().finally(() => {
        if (!this.stopping) this.timer = setTimeout(tick, this.config.RETENTION_INTERVAL_MS);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** One pass now (none if one is running); null when it failed (logged, counted, tried again next time). */
  runOnce(now = new Date(Date.now() + this.config.RETENTION_CLOCK_AHEAD_MS)): Promise<RetentionPassResult | null> {
    this.current ??= this.pass(now).finally(() => (this.current = null));
    return this.current;
  }

  private async pass(now: Date): Promise<RetentionPassResult | null> {
    const window = { now, defaultDays: this.config.AP_EXECUTION_DATA_RETENTION_DAYS };
    const started = Date.now();
    try {
      const result = await runRetentionPass(this.client, {
        window,
        batchSize: this.config.RETENTION_BATCH_SIZE,
        pauseMs: this.config.RETENTION_BATCH_PAUSE_MS,
        concurrency: this.config.RETENTION_CONCURRENCY,
        maxRunsPerS: this.config.RETENTION_MAX_RUNS_PER_S,
        maxBusyShare: this.config.RETENTION_MAX_BUSY_SHARE,
        shouldStop: () => this.stopping,
        onBatch: (outcome, seconds) => {
          retentionMetrics.runs.inc(outcome.runs);
          retentionMetrics.records.inc(outcome.records);
          retentionMetrics.bytes.inc(outcome.bytes);
          retentionMetrics.batchSeconds.observe(seconds);
        },
      });
      retentionMetrics.passes.inc({ result: result.complete ? 'complete' : 'stopped' });
      if (!this.stopping) retentionMetrics.waiting.set((await this.client.plan(window)).runs);
      this.log.info({ ...result, ms: Date.now() - started, defaultDays: window.defaultDays }, 'retention pass done');
      return result;
    } catch (e) {
      retentionMetrics.passes.inc({ result: 'failed' });
      this.log.warn({ err: e, ms: Date.now() - started }, 'retention pass failed; the next one takes up where it stopped');
      return null;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }
}
