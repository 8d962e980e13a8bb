import { EVENT_HEADERS, schemaVersionOf } from '@flowruns/contracts';
import type { EventPublisher, OutgoingMessage } from '@flowruns/messaging';
import { componentLogger } from '@flowruns/platform';
import { Client } from 'pg';
import { OUTBOX_CHANNEL } from './run-store';

export interface RelayOptions {
  readonly databaseUrl: string;
  readonly topic: string;
  readonly publisher: EventPublisher;
  readonly batchSize?: number;
  /** Fallback poll when no wake-up arrives (lost NOTIFY, relay restart). */
  readonly pollIntervalMs?: number;
  /**
   * Wake-ups are coalesced: a batch that was not full is followed by the next one no sooner than
   * this many ms after it started, and `appendCommitted` sends at most one NOTIFY per this many ms.
   * Bounds the relay (and, downstream, the projector) to ~1000/coalesceMs small batches a second
   * however many commands commit, at the cost of at most this much latency. Default 10.
   */
  readonly coalesceMs?: number;
  /** Fault injection for tests: runs after a batch was published and before it leaves the queue. */
  readonly afterPublish?: (positions: readonly string[]) => Promise<void> | void;
  readonly onPublished?: (count: number) => void;
}

interface OutboxRow {
  position: string;
  run_id: string;
  event_id: string;
  type: string;
  /** The envelope's JSON as Postgres writes jsonb out: published as it comes, never parsed here. */
  envelope: string;
  traceparent: string | null;
}

/** One relay per database publishes: the lock keeps the log's order on the topic across instances. */
const RELAY_LOCK_KEY = 'flow-runs:outbox-relay';

/**
 * Publishes the event log's unpublished rows — the positions queued in `run_events_outbox`, which
 * a trigger fills on every insert into `run_events` — to Kafka in log order (key = run id), then
 * takes them off the queue. Several command-service instances may run: a session advisory lock
 * elects the one that publishes; the others stand by and take over when its connection drops. A
 * crash between publish and dequeue republishes the batch: consumers see a duplicate `seq` and
 * skip it.
 *
 * Wake-ups: the process that committed an append calls `appendCommitted()` after its commit. If
 * this relay leads, that is an in-process signal; otherwise it sends one `NOTIFY` (outside any
 * transaction, at most one per `coalesceMs`) that the leading relay, in another process, LISTENs
 * for. Appends made without that hook (tests, scripts) notify inside their transaction. A slow
 * poll is the safety net for a wake-up that never arrives. Why not a NOTIFY in every transaction:
 * Postgres serialises the commits of notifying transactions on one global lock held until each
 * commit's WAL flush ends (docs/architecture.md, "Waking the relay").
 */
export class OutboxRelay {
  private readonly log = componentLogger('outbox-relay');
  private client?: Client;
  private running = false;
  private leader = false;
  private wake?: () => void;
  /** A notification arrived while the relay was busy: do not sleep before the next batch. */
  private pending = false;
  private loop?: Promise<void>;
  private lastError: string | null = null;
  /** When the last batch started (ms since epoch): wake-ups are spaced `coalesceMs` from it. */
  private lastBatchAt = 0;
  /** A cross-process NOTIFY is scheduled (appendCommitted while another relay leads). */
  private notifyTimer?: NodeJS.Timeout;
  published = 0;

  constructor(private readonly opts: RelayOptions) {}

  status(): { running: boolean; leader: boolean; published: number; lastError: string | null } {
    return { running: this.running, leader: this.leader, published: this.published, lastError: this.lastError };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * A transaction that appended to the log has committed: wakes this relay if it leads (in
   * process, nothing sent to Postgres), else schedules one NOTIFY for the relay that leads, sent
   * at most once per `coalesceMs` for every commit in between.
   */
  appendCommitted(): void {
    if (this.leader) {
      this.pending = true;
      this.wake?.();
      return;
    }
    if (this.notifyTimer || !this.running) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      // No connection now: the leader's poll (and this relay's own, should it take over) covers it.
      this.client?.query(`select pg_notify('${OUTBOX_CHANNEL}', '')`).catch((e: Error) => {
        this.log.warn({ err: e.message }, 'relay wake-up notification failed; the poll will pick the events up');
      });
    }, this.coalesceMs);
    this.notifyTimer.unref();
  }

  private get coalesceMs(): number {
    return this.opts.coalesceMs ?? 10;
  }

  /** Stops after the batch in hand is published and dequeued. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.notifyTimer);
    this.notifyTimer = undefined;
    this.wake?.();
    await this.loop;
    await this.disconnect();
  }

  private async connect(): Promise<Client> {
    if (this.client) return this.client;
    const client = new Client({ connectionString: this.opts.databaseUrl, application_name: 'outbox-relay' });
    client.on('error', (e) => {
      this.log.warn({ err: e.message }, 'relay connection error');
      this.lastError = e.message;
    });
    client.on('end', () => {
      if (this.client === client) {
        this.client = undefined;
        this.leader = false;
      }
    });
    client.on('notification', (msg) => {
      // Its own cross-process wake-up (sent while another relay led) is not news to this relay.
      if (msg.processId === (client as unknown as { processID?: number }).processID) return;
      this.pending = true;
      this.wake?.();
    });
    await client.connect();
    await client.query(`listen ${OUTBOX_CHANNEL}`);
    this.client = client;
    return client;
  }

  private async disconnect(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.leader = false;
    if (c) await c.end().catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    if (this.pending || !this.running) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        // Only this sleep's own wake: a stale one, called while a batch runs, would reset
        // `pending` and lose the wake-up that arrived meanwhile (it then waited for the poll).
        if (this.wake === done) this.wake = undefined;
        this.pending = false;
        resolve();
      };
      const t: NodeJS.Timeout = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Coalescing: after a wake-up, waits out the rest of `coalesceMs` since the last batch started. */
  private async spaceFromLastBatch(): Promise<void> {
    const rest = this.lastBatchAt + this.coalesceMs - Date.now();
    if (rest > 0 && this.running) await new Promise((resolve) => setTimeout(resolve, rest));
  }

  private async run(): Promise<void> {
    const poll = this.opts.pollIntervalMs ?? 1000;
    let backoff = 200;
    while (this.running) {
      try {
        const client = await this.connect();
        if (!this.leader) {
          const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [RELAY_LOCK_KEY]);
          this.leader = r.rows[0].ok;
          if (!this.leader) {
            await this.sleep(poll);
            continue;
          }
          this.log.info('relay is the leader');
        }
        this.lastBatchAt = Date.now();
        const n = await this.publishBatch(client);
        this.lastError = null;
        backoff = 200;
        if (n < (this.opts.batchSize ?? 500)) {
          await this.sleep(poll);
          await this.spaceFromLastBatch();
        }
      } catch (e) {
        this.lastError = (e as Error).message;
        this.log.warn({ err: (e as Error).message }, 'relay batch failed; retrying');
        if (!this.client) this.leader = false;
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  private async publishBatch(client: Client): Promise<number> {
    this.pending = false;
    const { rows } = await client.query<OutboxRow>(
      // The queue's head first, then its events by their primary key: `= any(array(…))` is an index
      // lookup per position whatever the statistics say. A join with the head (even materialized)
      // was planned for the LIMIT's 500 rows as a hash join over a sequential scan of the whole log
      // until the log outgrew that (~10^5 events): a young database read every event it held per
      // batch, 1.1–1.3 ms of the relay's Postgres CPU per trigger at ~400 triggers/s (session 24).
      // Ordered by the bigint column, not the text alias: as text, position 10 sorts before 9.
      `select e.position::text as position, e.run_id, e.event_id, e.type, e.envelope::text as envelope, e.traceparent
         from run_events e
        where e.position = any(array(select position from run_events_outbox order by position limit $1))
        order by e.position`,
      [this.opts.batchSize ?? 500],
    );
    if (rows.length === 0) return 0;
    const messages: OutgoingMessage[] = rows.map((r) => {
      const headers: Record<string, string> = {
        [EVENT_HEADERS.type]: r.type,
        [EVENT_HEADERS.schemaVersion]: String(schemaVersionOf(r.type)),
        [EVENT_HEADERS.id]: r.event_id,
      };
      if (r.traceparent) headers[EVENT_HEADERS.traceparent] = r.traceparent;
      return { key: r.run_id, value: r.envelope, headers };
    });
    await this.opts.publisher.publish(this.opts.topic, messages);
    const positions = rows.map((r) => r.position);
    await this.opts.afterPublish?.(positions);
    await client.query('delete from run_events_outbox where position = any($1::bigint[])', [positions]);
    this.published += rows.length;
    this.opts.onPublished?.(rows.length);
    return rows.length;
  }
}
