import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { componentLogger } from '@flowruns/platform';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';
import { IdempotencyStore } from './idempotency-store';

/** Rows deleted per statement: short transactions, short row locks. */
const BATCH_SIZE = 1000;
/** Batches per sweep at most, so one sweep never runs for long; what is left waits for the next. */
const MAX_BATCHES = 50;

/**
 * Deletes expired `Idempotency-Key` rows so the table does not grow forever. Each gateway sweeps
 * on its own timer; concurrent sweeps skip each other's locked rows (`for update skip locked`), so
 * several gateways share the work without waiting on one another, and no coordination is needed.
 * Readers ignore expired rows anyway: sweeping is about space, never about correctness.
 */
@Injectable()
export class IdempotencySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = componentLogger('idempotency-sweeper');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    @Inject(IdempotencyStore) private readonly store: IdempotencyStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.config.GATEWAY_IDEMPOTENCY_SWEEP_INTERVAL_MS;
    if (every === 0) return;
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep (a sweep already under way is joined, not doubled); resolves to the rows deleted. */
  sweep(): Promise<number> {
    this.running ??= this.deleteBatches().finally(() => (this.running = undefined));
    return this.running;
  }

  private async deleteBatches(): Promise<number> {
    let total = 0;
    try {
      for (let i = 0; i < MAX_BATCHES; i++) {
        const deleted = await this.store.deleteExpired(BATCH_SIZE);
        total += deleted;
        if (deleted < BATCH_SIZE) break;
      }
      if (total > 0) this.log.debug({ deleted: total }, 'expired idempotency keys deleted');
    } catch (err) {
      // Postgres away: the next tick tries again.
      this.log.warn({ err, deleted: total }, 'idempotency key sweep failed');
    }
    return total;
  }
}
