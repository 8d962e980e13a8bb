import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { EVENT_HEADERS, parseEnvelope } from '@flowruns/contracts';
import {
  CommandServiceError,
  HAND_OVER_TTL_MS,
  ParentLeaseBusy,
  RunDriver,
  completeSubflowStep,
  defaultExecutors,
  type CommandServicePort,
  type DriveResult,
} from '@flowruns/engine';
import { consumerLag, ResilientConsumer, type Admin, type Kafka, type MessageBatch } from '@flowruns/messaging';
import { componentLogger, withSpan } from '@flowruns/platform';
import { claimIntervalOf, FLOW_WORKER_CONFIG, type FlowWorkerConfig } from './config';
import { DrivePool, type DriveRequest } from './drive-pool';
import { eventLogFields, routeEvent, type WorkerAction } from './event-router';
import { workerMetrics as m } from './metrics';

export const KAFKA = Symbol('KAFKA');
export const KAFKA_ADMIN = Symbol('KAFKA_ADMIN');
export const COMMAND_CLIENT = Symbol('COMMAND_CLIENT');

/** `hostname-pid-random`: unique per process, and says where the process runs. */
export const newWorkerId = (): string => `${hostname().slice(0, 64)}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Parent links seen in triggered events, so that most ended runs (no parent) cost no request. */
class ParentCache {
  private readonly map = new Map<string, string | null>();
  constructor(private readonly max = 50000) {}
  set(runId: string, parent: string | null): void {
    this.map.delete(runId);
    this.map.set(runId, parent);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  /** undefined: not seen here (another worker's partition before a rebalance, or a restart). */
  get(runId: string): string | null | undefined {
    return this.map.get(runId);
  }
}

/** Maps over items with at most `limit` in flight. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  });
  await Promise.all(lanes);
  return out;
}

export interface WorkerStatus {
  readonly workerId: string;
  readonly running: boolean;
  readonly groupId: string;
  readonly lastError: string | null;
  readonly active: number;
  readonly queued: number;
}

/**
 * The flow worker: consumes run events in its own group and drives runs. A batch handler only
 * decides and leases; the drives run in an in-process pool, so a long step never holds a partition.
 * The batch is committed once its drives hold their leases: if this process dies after the commit,
 * the leases expire and a `claim-expired` loop (every worker runs one) takes the runs over.
 */
@Injectable()
export class WorkerService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly log = componentLogger('flow-worker');
  readonly workerId: string;
  private readonly driver: RunDriver;
  private readonly pool: DrivePool;
  private readonly parents = new ParentCache();
  private readonly drain = new AbortController();
  private readonly abort = new AbortController();
  private readonly consumer: ResilientConsumer;
  private claimTimer?: NodeJS.Timeout;
  private claiming?: Promise<void>;
  private lagTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    @Inject(FLOW_WORKER_CONFIG) private readonly config: FlowWorkerConfig,
    @Inject(KAFKA) kafka: Kafka,
    @Inject(KAFKA_ADMIN) private readonly admin: Admin,
    @Inject(COMMAND_CLIENT) private readonly client: CommandServicePort,
  ) {
    this.workerId = newWorkerId();
    this.driver = new RunDriver({
      client,
      workerId: this.workerId,
      leaseTtlMs: config.FLOW_WORKER_LEASE_TTL_MS,
      flowTimeoutSeconds: config.AP_FLOW_TIMEOUT_SECONDS,
      executors: defaultExecutors({ timeoutMs: config.ENGINE_HTTP_TIMEOUT_MS, allow: config.FLOW_WORKER_HTTP_ALLOW_PRIVATE }),
      hooks: {
        onStepExecuted: (e) => {
          m.steps.inc({ type: e.stepType, outcome: e.outcome });
          if (e.outcome !== 'aborted') m.stepSeconds.observe({ type: e.stepType }, e.durationMs / 1000);
        },
      },
    });
    this.pool = new DrivePool(config.FLOW_WORKER_CONCURRENCY, (req) => this.runDrive(req), (active, queued) => {
      m.drivesActive.set(active);
      m.drivesQueued.set(queued);
    });
    this.consumer = new ResilientConsumer(kafka, {
      name: 'flow-worker',
      admin,
      groupId: config.FLOW_WORKER_GROUP_ID,
      topics: [config.KAFKA_TOPIC],
      ensureTopics: [{ topic: config.KAFKA_TOPIC, numPartitions: config.KAFKA_TOPIC_PARTITIONS }],
      // A new group starts from the first event: a run triggered before any worker existed is
      // still driven. Events of runs long finished cost one read each and do nothing.
      fromBeginning: true,
      handleBatch: (batch) => this.handleBatch(batch),
    });
  }

  status(): WorkerStatus {
    return {
      workerId: this.workerId,
      ...this.consumer.status(),
      groupId: this.config.FLOW_WORKER_GROUP_ID,
      active: this.pool.active,
      queued: this.pool.queued,
    };
  }

  /** The group's lag on each partition of the topic; also feeds the gauges. */
  async lag(): Promise<number> {
    const total = await consumerLag(this.admin, this.config.FLOW_WORKER_GROUP_ID, this.config.KAFKA_TOPIC, (partition, n) =>
      m.partitionLag.set({ partition: String(partition) }, n),
    );
    m.lag.set(total);
    return total;
  }

  onApplicationBootstrap(): void {
    this.log.info({ workerId: this.workerId, concurrency: this.config.FLOW_WORKER_CONCURRENCY }, 'flow worker starting');
    const allow = this.config.FLOW_WORKER_HTTP_ALLOW_PRIVATE;
    if (allow.any) this.log.warn('FLOW_WORKER_HTTP_ALLOW_PRIVATE=*: http steps may call any address, private and metadata ones included');
    else if (allow.entries.length) this.log.info({ allow: allow.entries }, 'http steps may call these private destinations');
    // In the background: the HTTP side (health, metrics) is up while Kafka is not.
    this.consumer.start();
    this.claimTimer = setInterval(() => {
      this.claiming ??= this.claimExpired().finally(() => (this.claiming = undefined));
    }, claimIntervalOf(this.config));
    this.claimTimer.unref();
    this.lagTimer = setInterval(() => {
      this.lag().catch((e: Error) => this.log.debug({ err: e.message }, 'lag refresh failed'));
    }, this.config.FLOW_WORKER_LAG_INTERVAL_MS);
    this.lagTimer.unref();
  }

  /**
   * SIGTERM: stop consuming and claiming (the batch in hand finishes and commits; the group is
   * left), let each drive finish the step it is in (up to the shutdown deadline; past it the step
   * is abandoned and runs again elsewhere), and hand every lease over so that other workers claim
   * the runs at once.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.claimTimer);
    clearInterval(this.lagTimer);
    await this.consumer.stop();
    await this.claiming;
    await this.handOver(this.pool.close().map((r) => r.runId));
    this.drain.abort();
    const deadline = this.config.FLOW_WORKER_SHUTDOWN_TIMEOUT_MS;
    if (!(await this.pool.idle(deadline))) {
      this.log.warn({ active: this.pool.active, deadlineMs: deadline }, 'shutdown deadline passed; abandoning the steps in flight');
      this.abort.abort();
      await this.pool.idle(5000);
    }
    this.log.info('flow worker stopped');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.admin.disconnect().catch(() => undefined);
  }

  // ---- consuming ----

  /**
   * One partition batch: decide what each event asks, finish the waiting steps of parents whose
   * children ended, and lease + schedule the drives. Throws (the batch is delivered again) when
   * something that must happen could not, so no event is dropped on a transient failure.
   */
  async handleBatch(batch: MessageBatch): Promise<void> {
    const drives = new Map<string, DriveRequest>();
    const ended: string[] = [];
    const debug = this.log.isLevelEnabled('debug');
    for (const msg of batch.messages) {
      const parsed = parseEnvelope(msg.value);
      const action: WorkerAction = routeEvent(parsed);
      const handled = parsed.kind === 'known' ? action.kind : parsed.kind;
      m.messages.inc({ action: handled });
      if (debug) this.log.debug({ ...eventLogFields(parsed, msg), action: handled }, 'event handled');
      if (action.kind === 'drive') {
        if (action.parentRunId !== undefined) this.parents.set(action.runId, action.parentRunId);
        const prior = drives.get(action.runId);
        drives.set(action.runId, {
          runId: action.runId,
          runningSince: action.runningSince ?? prior?.runningSince,
          traceparent: msg.headers[EVENT_HEADERS.traceparent] ?? prior?.traceparent,
        });
      } else if (action.kind === 'child-ended') {
        // A run never seen with a parent is looked up (cache miss); one seen without is skipped.
        if (this.parents.get(action.runId) !== null) ended.push(action.runId);
        else m.subflowCompletions.inc({ result: 'no-parent' });
      }
    }

    const failures: Error[] = [];
    for (const runId of ended) {
      try {
        const r = await completeSubflowStep(runId, {
          client: this.client,
          workerId: this.workerId,
          leaseTtlMs: this.config.FLOW_WORKER_LEASE_TTL_MS,
        });
        m.subflowCompletions.inc({ result: r.result });
      } catch (e) {
        if (e instanceof CommandServiceError && e.status < 500 && e.status !== 401 && e.status !== 403) {
          // Refused for a reason a retry will not change: logged, not retried forever.
          this.log.error({ childRunId: runId, status: e.status, code: e.code }, 'could not finish the parent step of an ended child');
          m.subflowCompletions.inc({ result: 'refused' });
        } else {
          failures.push(e as Error);
          m.subflowCompletions.inc({ result: e instanceof ParentLeaseBusy ? 'lease-busy' : 'error' });
        }
      }
    }

    await mapLimit([...drives.values()], 16, async (req) => {
      try {
        await this.schedule(req);
      } catch (e) {
        failures.push(e as Error);
      }
    });

    if (failures.length > 0) {
      this.log.warn(
        { partition: batch.partition, firstOffset: batch.messages[0]?.offset, failures: failures.length, err: failures[0].message },
        'batch not fully handled; it is not committed and will be delivered again',
      );
      throw failures[0];
    }
  }

  /**
   * Leases the run, then hands it to the pool. A run this process already drives is only marked to
   * be driven again. A lease held by another worker is asked for a few more times: usually its
   * holder is letting go right now (it paused or failed the run, and this event resumes or retries it).
   */
  private async schedule(req: DriveRequest): Promise<void> {
    if (this.pool.holds(req.runId)) {
      this.pool.submit(req);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      let lease;
      try {
        lease = await this.client.acquireLease(req.runId, this.workerId, this.config.FLOW_WORKER_LEASE_TTL_MS);
      } catch (e) {
        // Unknown run, or one that cannot be leased: nothing to drive.
        if (e instanceof CommandServiceError && e.status < 500 && e.status !== 401 && e.status !== 403) return;
        throw e;
      }
      if (lease.acquired) break;
      // Not RUNNING (holder null): nothing to drive. Held elsewhere: patience, then leave it to the holder.
      if (lease.holder === null || attempt >= 3) return;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    if (this.pool.submit(req) === 'closed') await this.handOver([req.runId]);
  }

  private async runDrive(req: DriveRequest): Promise<void> {
    let result: DriveResult;
    try {
      // One span per drive, a child of the event that asked for it (a new trace when it had none).
      result = await withSpan('flow-worker.drive', { parent: req.traceparent ?? null, attributes: { 'run.id': req.runId } }, (span) =>
        this.driver.drive(req.runId, { runningSince: req.runningSince, drain: this.drain.signal, abort: this.abort.signal }).then((r) => {
          span.setAttribute('drive.outcome', r.outcome);
          return r;
        }),
      );
    } catch (e) {
      this.log.error({ err: e, runId: req.runId }, 'drive failed unexpectedly');
      m.drives.inc({ outcome: 'crashed' });
      return;
    }
    m.drives.inc({ outcome: result.outcome });
    this.log.debug({ runId: req.runId, ...result }, 'drive ended');
  }

  // ---- takeover ----

  /** Takes over runs whose worker died (their lease expired), as many as there are free slots. */
  private async claimExpired(): Promise<void> {
    if (this.stopping) return;
    const free = this.pool.free;
    if (free <= 0) return;
    try {
      const runIds = await this.client.claimExpired(this.workerId, this.config.FLOW_WORKER_LEASE_TTL_MS, Math.min(free, 100));
      if (runIds.length === 0) return;
      m.leasesClaimed.inc(runIds.length);
      this.log.info({ runIds }, 'claimed runs with expired leases');
      const closed = runIds.filter((runId) => this.pool.submit({ runId }) === 'closed');
      await this.handOver(closed);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'claiming expired leases failed; next interval retries');
    }
  }

  /** Shortens leases this worker will not use, so that another worker claims the runs at once. */
  private async handOver(runIds: readonly string[]): Promise<void> {
    await mapLimit(runIds, 16, (runId) =>
      this.client.acquireLease(runId, this.workerId, HAND_OVER_TTL_MS).then(
        () => undefined,
        (e: Error) => this.log.warn({ runId, err: e.message }, 'could not hand the lease over; it expires on its own'),
      ),
    );
  }
}
