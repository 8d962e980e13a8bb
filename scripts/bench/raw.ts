import { createKafka } from '@flowruns/messaging';
import { performance } from 'node:perf_hooks';
import { BenchDatabase } from './db';
import { benchEnv } from './system';
import { round, uniqueName, waitFor } from './util';

/**
 * The raw limits: what the machine's Postgres or Kafka does with the same rows or messages when
 * nothing but a plain client stands in between. Each benchmark reports its figure beside the
 * limit it measured in the same run, so a figure can be read against this machine, not only
 * against the targets.
 */

/**
 * Postgres inserting view rows into an empty read model with its indexes (a database of its own,
 * migrated), `batch` rows per statement: the view rows of `runTable` and `stepTable` as loaded or
 * built in `db`.
 */
export async function rawViewInsert(db: BenchDatabase, tables: { runs: string; steps: string }, batch = 500) {
  const runRows = await db.q<{ r: unknown }>(`select to_jsonb(v) as r from ${tables.runs} v`);
  const stepRows = await db.q<{ r: unknown }>(`select to_jsonb(s) as r from ${tables.steps} s`);
  const target = await BenchDatabase.create(benchEnv().serverUrl, 'raw');
  try {
    const t = performance.now();
    for (const [rows, table] of [
      [runRows, 'run_views'],
      [stepRows, 'step_views'],
    ] as const) {
      for (let i = 0; i < rows.length; i += batch) {
        await target.q(`insert into ${table} select * from jsonb_populate_recordset(null::${table}, $1::jsonb)`, [
          JSON.stringify(rows.slice(i, i + batch).map((x) => x.r)),
        ]);
      }
    }
    const seconds = (performance.now() - t) / 1000;
    const rows = runRows.length + stepRows.length;
    return {
      rows,
      seconds: round(seconds, 2),
      rowsPerS: round(rows / seconds, 1),
      how: `insert … select from jsonb_populate_recordset, ${batch} rows per statement, into an empty read model with its indexes`,
    };
  } finally {
    await target.drop();
  }
}

/**
 * Postgres writing, straight in SQL, the rows a bulk retry writes per run: its stream row's
 * state rewritten (a new version), one event appended with an envelope of the size the project's
 * events have, its outbox entry, and its view row's status and version — for `runs` of
 * `projectId`'s runs, in pages of `page` run ids, each page one statement and one transaction,
 * `inFlight` pages at a time (the command service's defaults). On copies of the project's stream
 * and view rows in tables of their own with the same indexes and fillfactors, dropped after; what
 * it leaves out — reading and deciding each run, the relay, Kafka, the projector's fold — is what
 * the system adds over it.
 */
export async function rawBulkWrite(db: BenchDatabase, projectId: string, runs: number, opts: { page: number; inFlight: number }) {
  const tables = ['raw_streams', 'raw_events', 'raw_outbox', 'raw_views'];
  // `like … including all` copies columns, defaults and indexes but not the storage parameters.
  const storage = async (table: string) => {
    const { o } = await db.one<{ o: string | null }>(`select array_to_string(reloptions, ', ') as o from pg_class where oid = $1::regclass`, [table]);
    return o ? `with (${o})` : '';
  };
  try {
    await db.q(`
      create table raw_streams (like run_streams including all) ${await storage('run_streams')};
      create table raw_events (like run_events including all);
      create table raw_outbox (position bigint primary key);
      create table raw_views (like run_views including all) ${await storage('run_views')}`);
    await db.q(`insert into raw_streams select * from run_streams where project_id = $1 order by run_id limit $2`, [projectId, runs]);
    await db.q(`insert into raw_views select v.* from run_views v join raw_streams s on s.run_id = v.id order by v.id`);
    await db.q('vacuum analyze raw_streams, raw_views');
    const envelope = await db.one<{ e: string }>(
      `select e.envelope::text as e from run_events e join raw_streams s on s.run_id = e.run_id order by e.position desc limit 1`,
    );
    const ids = (await db.q<{ run_id: string }>('select run_id from raw_streams order by run_id')).map((r) => r.run_id);
    if (ids.length !== runs) throw new Error(`raw bulk write: ${ids.length} of ${runs} runs copied`);
    const pages: string[][] = [];
    for (let i = 0; i < ids.length; i += opts.page) pages.push(ids.slice(i, i + opts.page));
    const write = (page: readonly string[]) =>
      db.q(
        `with s as (
           update raw_streams s set version = s.version + 1, state = s.state || '{"status":"RUNNING"}'::jsonb, updated_at = now()
            where s.run_id = any($1::text[]) returning s.run_id, s.version),
         e as (
           insert into raw_events (event_id, run_id, seq, type, envelope, created_at)
           select 'raw_' || s.run_id || '_' || s.version, s.run_id, s.version, 'flowrun.retried.v1', $2::jsonb, now() from s
           returning position),
         o as (insert into raw_outbox (position) select position from e)
         update raw_views v set status = 'RUNNING', finish_time = null, failed_step_name = null, attempt = v.attempt + 1,
                version = v.version + 1, updated_at = now()
          where v.id = any($1::text[])`,
        [page, envelope.e],
      );
    const t = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < pages.length) await write(pages[next++]);
    };
    await Promise.all(Array.from({ length: opts.inFlight }, lane));
    const seconds = (performance.now() - t) / 1000;
    const written = await db.one<{ n: number }>(`select count(*)::int as n from raw_events`);
    if (written.n !== runs) throw new Error(`raw bulk write: ${written.n} events for ${runs} runs`);
    return {
      runs,
      seconds: round(seconds, 2),
      runsPerS: round(runs / seconds),
      envelopeBytes: envelope.e.length,
      how: `per run a stream row's state rewritten, one event (an envelope of ${envelope.e.length} bytes) and its outbox entry inserted, the view row's status changed; ${opts.page} runs per statement (one transaction), ${opts.inFlight} in flight, on copies of the project's rows with the same indexes and fillfactors`,
    };
  } finally {
    await db.q(`drop table if exists ${tables.join(', ')}`);
  }
}

/**
 * Postgres deleting the execution-data records of `runs` of `projectId`'s finished runs, oldest
 * first, `batch` runs per statement by run id (one transaction each, one at a time): the rows a
 * retention purge deletes, without finding the range, recording it or its event. In two steps:
 * `copy` takes the records into a table of their own with the same indexes (before the purge
 * deletes them), `deleteAll` times the deletes (after the purge, so that neither disturbs the
 * other) and drops the copy.
 */
export class RawPurgeDelete {
  private constructor(
    private readonly db: BenchDatabase,
    private readonly ids: readonly string[],
    private readonly records: number,
  ) {}

  static async copy(db: BenchDatabase, projectId: string, runs: number): Promise<RawPurgeDelete> {
    await db.q(`create table raw_execution_data (like execution_data including all)`);
    const ids = (
      await db.q<{ run_id: string }>(
        `select run_id from run_streams where project_id = $1 and finished_at is not null order by finished_at, run_id limit $2`,
        [projectId, runs],
      )
    ).map((r) => r.run_id);
    await db.q(`insert into raw_execution_data select d.* from execution_data d where d.run_id = any($1::text[]) order by d.ref`, [ids]);
    await db.q('vacuum analyze raw_execution_data');
    const records = (await db.one<{ n: number }>('select count(*)::int as n from raw_execution_data')).n;
    return new RawPurgeDelete(db, ids, records);
  }

  async deleteAll(batch: number) {
    try {
      const t = performance.now();
      for (let i = 0; i < this.ids.length; i += batch) {
        await this.db.q(`delete from raw_execution_data where run_id = any($1::text[])`, [this.ids.slice(i, i + batch)]);
      }
      const seconds = (performance.now() - t) / 1000;
      const left = (await this.db.one<{ n: number }>('select count(*)::int as n from raw_execution_data')).n;
      if (left !== 0) throw new Error(`raw purge: ${left} records left`);
      return {
        runs: this.ids.length,
        records: this.records,
        seconds: round(seconds, 2),
        runsPerS: round(this.ids.length / seconds),
        how: `delete … where run_id = any(…), ${batch} runs per statement (one transaction), one at a time, on a copy of the ${this.ids.length} oldest runs' records with the same indexes`,
      };
    } finally {
      await this.drop();
    }
  }

  async drop(): Promise<void> {
    await this.db.q('drop table if exists raw_execution_data');
  }
}

/**
 * kafkajs reading `topic` from the beginning in a group of its own, doing nothing with the
 * messages (with the apps' consumer settings and this project's record decoder), until it has
 * read `messages`: from the group's join to the last batch.
 */
export async function rawConsume(topic: string, messages: number) {
  const kafka = createKafka({ brokers: benchEnv().kafkaBrokers, clientId: 'flow-runs-bench-raw-consumer' });
  const consumer = kafka.consumer({
    groupId: uniqueName('bench-raw-consumer'),
    allowAutoTopicCreation: false,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 1000,
  });
  let joined = 0;
  let last = 0;
  let read = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = performance.now();
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        read += batch.messages.length;
        last = performance.now();
      },
    });
    await waitFor(async () => read >= messages, { timeoutMs: 600_000, intervalMs: 50, what: `the raw consumer to read ${messages} messages` });
  } finally {
    await consumer.disconnect();
  }
  const seconds = (last - joined) / 1000;
  return {
    messages: read,
    seconds: round(seconds, 2),
    messagesPerS: round(read / seconds, 1),
    how: 'kafkajs 2.2.4 (this project\'s record decoder, as the apps), a consumer group of its own from the beginning, the messages counted and dropped, from the group\'s join to the last batch',
  };
}
