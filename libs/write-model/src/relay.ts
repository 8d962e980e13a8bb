import { EVENT_HEADERS, schemaVersionOf, type EventEnvelope } from '@flowruns/contracts';
import type { EventPublisher, OutgoingMessage } from '@flowruns/messaging';
import { componentLogger } from '@flowruns/platform';
import { Client } from 'pg';
import { OUTBOX_CHANNEL } from './run-store';

export interface RelayOptions {
  readonly databaseUrl: string;
  readonly topic: string;
  readonly publisher: EventPublisher;
  readonly batchSize?: number;
  /** Fallback poll when no notification arrives (lost NOTIFY, relay restart). */
  readonly pollIntervalMs?: number;
  /** Fault injection for tests: runs after a batch was published and before it is marked. */
  readonly afterPublish?: (positions: readonly string[]) => Promise<void> | void;
  readonly onPublished?: (count: number) => void;
}

interface OutboxRow {
  position: string;
  run_id: string;
  envelope: EventEnvelope;
  traceparent: string | null;
}

/** One relay per database publishes: the lock keeps the log's order on the topic across instances. */
const RELAY_LOCK_KEY = 'flow-runs:outbox-relay';

/**
 * Publishes the event log's unpublished rows to Kafka in log order (key = run id), then marks
 * them. Woken by LISTEN/NOTIFY, with a slow poll as a safety net. Several command-service
 * instances may run: a session advisory lock elects the one that publishes; the others stand by
 * and take over when its connection drops. A crash between publish and mark republishes the
 * batch: consumers see a duplicate `seq` and skip it.
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

  /** Stops after the batch in hand is published and marked. */
  async stop(): Promise<void> {
    this.running = false;
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
    client.on('notification', () => {
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
      let t: NodeJS.Timeout | undefined = undefined;
      const done = () => {
        clearTimeout(t);
        this.pending = false;
        resolve();
      };
      t = setTimeout(done, ms);
      this.wake = done;
    });
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
        const n = await this.publishBatch(client);
        this.lastError = null;
        backoff = 200;
        if (n < (this.opts.batchSize ?? 500)) await this.sleep(poll);
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
      // Order by the bigint column, not the text alias: as text, position 10 sorts before 9.
      `select e.position::text as position, e.run_id, e.envelope, e.traceparent from run_events e
       where e.published_at is null order by e.position limit $1`,
      [this.opts.batchSize ?? 500],
    );
    if (rows.length === 0) return 0;
    const messages: OutgoingMessage[] = rows.map((r) => {
      const headers: Record<string, string> = {
        [EVENT_HEADERS.type]: r.envelope.type,
        [EVENT_HEADERS.schemaVersion]: String(schemaVersionOf(r.envelope.type)),
        [EVENT_HEADERS.id]: r.envelope.id,
      };
      if (r.traceparent) headers[EVENT_HEADERS.traceparent] = r.traceparent;
      return { key: r.run_id, value: JSON.stringify(r.envelope), headers };
    });
    await this.opts.publisher.publish(this.opts.topic, messages);
    const positions = rows.map((r) => r.position);
    await this.opts.afterPublish?.(positions);
    await client.query('update run_events set published_at = now() where position = any($1::bigint[])', [positions]);
    this.published += rows.length;
    this.opts.onPublished?.(rows.length);
    return rows.length;
  }
}
