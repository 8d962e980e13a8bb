import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { componentLogger } from '@flowruns/platform';
import { RunSupervisor } from '@flowruns/write-model';
import { Counter } from 'prom-client';
import { COMMAND_SERVICE_CONFIG, type CommandServiceConfig } from './config';

export const RUN_SUPERVISOR = Symbol('RUN_SUPERVISOR');

const timedOut = new Counter({
  name: 'flowruns_supervisor_timeouts_total',
  help: 'Runs the supervisor timed out, by reason',
  labelNames: ['reason'],
});

/**
 * Runs the supervisor every `SUPERVISOR_INTERVAL_MS`. Ticks never overlap within an instance;
 * across instances the supervisor's `skip locked` batches keep them apart. Shutdown waits for the
 * tick in hand.
 */
@Injectable()
export class SupervisorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = componentLogger('run-supervisor');
  private timer?: NodeJS.Timeout;
  private current: Promise<void> | null = null;
  lastError: string | null = null;

  constructor(
    @Inject(COMMAND_SERVICE_CONFIG) private readonly config: CommandServiceConfig,
    @Inject(RUN_SUPERVISOR) private readonly supervisor: RunSupervisor,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.config.SUPERVISOR_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.current;
  }

  private tick(): Promise<void> {
    if (this.current) return this.current;
    this.current = (async () => {
      try {
        const c = await this.supervisor.tick();
        this.lastError = null;
        if (c.pauseExpired) timedOut.inc({ reason: 'PAUSE_TIME' }, c.pauseExpired);
        if (c.executionTimedOut) timedOut.inc({ reason: 'EXECUTION_TIME' }, c.executionTimedOut);
        if (c.workerLost) timedOut.inc({ reason: 'WORKER_LOST' }, c.workerLost);
        if (c.pauseExpired + c.executionTimedOut + c.workerLost > 0) this.log.info({ ...c }, 'runs timed out');
      } catch (e) {
        this.lastError = (e as Error).message;
        this.log.warn({ err: this.lastError }, 'supervisor tick failed; next tick retries');
      } finally {
        this.current = null;
      }
    })();
    return this.current;
  }
}
