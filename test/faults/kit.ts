import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { dropTestDatabase, migrate, parseDatabaseUrl } from '@flowruns/database';
import { createKafka } from '@flowruns/messaging';
import { RETENTION_MARK_PROJECTED, RUN_VIEW_PURGED_AT } from '@flowruns/run-views';
import { TcpProxy, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { newApiKey } from '../e2e/client';
import { freePort, startApp, type RunningApp } from '../e2e/harness';

/**
 * The fault suite's kit: a whole system whose apps can be killed and restarted on their own ports,
 * a steady load of triggers through the gateway (each run's steps reported by real flow workers),
 * and a checker that waits for the views to settle and then proves that every accepted command is
 * in them exactly once and that they equal a rebuild from the topic.
 */

const root = path.resolve(__dirname, '../..');
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

export const TERMINAL = ['SUCCEEDED', 'FAILED', 'QUOTA_EXCEEDED', 'INTERNAL_ERROR', 'TIMEOUT', 'STOPPED'] as const;
export const APP_NAMES = ['command-service', 'projector', 'api-gateway', 'flow-worker', 'retention'] as const;
export type AppName = (typeof APP_NAMES)[number];

/** The load's flow: three quick steps; the delay in the middle makes a kill land mid-step often. */
export const LOAD_STEPS = [
  { name: 'first', type: 'transform', settings: { value: { i: '{{trigger.i}}' } } },
  { name: 'pause', type: 'delay', settings: { ms: 150 } },
  { name: 'last', type: 'transform', settings: { value: 'done' } },
] as const;

export interface FaultSystemOptions {
  /** A Postgres URL on the server to use (its database part is ignored); default TEST_DATABASE_URL. */
  readonly serverUrl?: string;
  /** Default KAFKA_BROKERS. */
  readonly brokers?: string;
  /** Flow workers (default 2: a killed one's runs are taken over by the other). */
  readonly workers?: number;
  /** Also run the retention app, its clock a month ahead: it purges the load's runs as they finish (default false). */
  readonly retention?: boolean;
  readonly env?: Record<string, string>;
  /** The apps reach Postgres through a TCP proxy the test can cut (`sys.pgProxy`); the kit's own queries do not. */
  readonly proxyPostgres?: boolean;
}

interface Slot {
  readonly name: AppName;
  readonly port: number;
  app: RunningApp;
}

/** One isolated system (own database, topic, groups, ports) whose apps can be killed and restarted. */
export class FaultSystem {
  readonly projectId = 'proj_faults';
  apiKey = '';
  flowId = '';
  private readonly slots: Slot[] = [];
  private readonly extra: RunningApp[] = [];
  pgProxy?: TcpProxy;

  private constructor(
    readonly dbUrl: string,
    readonly env: Record<string, string>,
    readonly topic: string,
  ) {}

  static async start(opts: FaultSystemOptions = {}): Promise<FaultSystem> {
    const { serverUrl } = parseDatabaseUrl(opts.serverUrl ?? testEnv().databaseUrl);
    const dbUrl = serverUrl(uniqueName('flowruns_test_faults').toLowerCase());
    await migrate(dbUrl);
    const topic = uniqueName('faults-runs');
    const commandPort = await freePort();
    let appDbUrl = dbUrl;
    let pgProxy: TcpProxy | undefined;
    if (opts.proxyPostgres) {
      const u = new URL(dbUrl);
      pgProxy = new TcpProxy(u.hostname, Number(u.port || 5432));
      u.port = String(await pgProxy.start());
      appDbUrl = u.toString();
    }
    const env: Record<string, string> = {
      DATABASE_URL: appDbUrl,
      KAFKA_BROKERS: opts.brokers ?? testEnv().kafkaBrokers.join(','),
      KAFKA_TOPIC: topic,
      KAFKA_TOPIC_PARTITIONS: '3',
      PROJECTOR_GROUP_ID: uniqueName('faults-projector'),
      FLOW_WORKER_GROUP_ID: uniqueName('faults-worker'),
      INTERNAL_API_TOKEN: `faults-${uniqueName('token')}`,
      COMMAND_SERVICE_URL: `http://127.0.0.1:${commandPort}`,
      RELAY_POLL_INTERVAL_MS: '200',
      // A killed worker's lease expires quickly and the other worker claims it.
      FLOW_WORKER_LEASE_TTL_MS: '3000',
      FLOW_WORKER_CLAIM_INTERVAL_MS: '500',
      SUPERVISOR_INTERVAL_MS: '500',
      PROJECTOR_LAG_INTERVAL_MS: '1000',
      RETENTION_INTERVAL_MS: '300',
      // Every run is past the default 30-day window soon after it finishes: purged under the load.
      RETENTION_CLOCK_AHEAD_MS: String(31 * 86_400_000),
      RETENTION_BATCH_SIZE: '3',
      RETENTION_BATCH_PAUSE_MS: '0',
      LOG_LEVEL: 'warn',
      ...opts.env,
    };
    const sys = new FaultSystem(dbUrl, env, topic);
    sys.pgProxy = pgProxy;
    try {
      const names: AppName[] = ['command-service', 'projector', 'api-gateway'];
      for (let i = 0; i < (opts.workers ?? 2); i++) names.push('flow-worker');
      if (opts.retention) names.push('retention');
      for (const name of names) {
        const port = name === 'command-service' ? commandPort : await freePort();
        sys.slots.push({ name, port, app: await startApp(name, env, { port }) });
      }
      sys.apiKey = (await newApiKey(dbUrl, sys.projectId)).key;
      const r = await fetch(`${sys.gatewayUrl}/api/v1/flows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${sys.apiKey}` },
        body: JSON.stringify({ projectId: sys.projectId, displayName: 'fault load', steps: LOAD_STEPS }),
      });
      if (r.status !== 201) throw new Error(`creating the load flow answered ${r.status}: ${await r.text()}`);
      sys.flowId = ((await r.json()) as { id: string }).id;
    } catch (e) {
      await sys.stop();
      throw e;
    }
    return sys;
  }

  get gatewayUrl(): string {
    return this.slot('api-gateway').app.url;
  }

  /** The `i`-th running instance of an app. */
  app(name: AppName, i = 0): RunningApp {
    return this.slot(name, i).app;
  }

  count(name: AppName): number {
    return this.slots.filter((s) => s.name === name).length;
  }

  private slot(name: AppName, i = 0): Slot {
    const s = this.slots.filter((x) => x.name === name)[i];
    if (!s) throw new Error(`no ${name} #${i} in this system`);
    return s;
  }

  /** Stops an instance with `signal` and waits for the process to exit; returns its exit code (null when killed by the signal). */
  async kill(name: AppName, i = 0, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    return this.slot(name, i).app.stop(signal);
  }

  /** Starts a stopped instance again on its own port (callers keep their address), and waits until it is ready. */
  async start(name: AppName, i = 0): Promise<RunningApp> {
    const s = this.slot(name, i);
    s.app = await startApp(name, this.env, { port: s.port });
    return s.app;
  }

  /** Kill (or terminate) and start again. */
  async restart(name: AppName, i = 0, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ exitCode: number | null; app: RunningApp }> {
    const exitCode = await this.kill(name, i, signal);
    return { exitCode, app: await this.start(name, i) };
  }

  /** Another process on this system's database and topic (e.g. a rebuild projector), stopped with the system. */
  async startExtra(name: AppName, overrides: Record<string, string>): Promise<RunningApp> {
    const app = await startApp(name, { ...this.env, ...overrides });
    this.extra.push(app);
    return app;
  }

  /** Every app still running answers its liveness probe (none crashed). */
  async assertAllAlive(): Promise<void> {
    for (const s of this.slots) {
      if (s.app.process.exitCode !== null || s.app.process.signalCode !== null) {
        throw new Error(`${s.name} on :${s.port} exited (${s.app.process.exitCode ?? s.app.process.signalCode}):\n${s.app.output()}`);
      }
    }
  }

  /** Runs SQL on this system's database. */
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = [], url = this.dbUrl): Promise<T[]> {
    const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  /** Output of every app (for a failure message). */
  outputs(): string {
    return this.slots.map((s) => `--- ${s.name} :${s.port} ---\n${s.app.output().slice(-6000)}`).join('\n');
  }

  async stop(): Promise<void> {
    for (const a of [...this.extra].reverse()) await a.stop('SIGKILL');
    for (const s of [...this.slots].reverse()) await s.app.stop('SIGKILL');
    await this.pgProxy?.cut();
    await dropTestDatabase(this.dbUrl).catch(() => undefined);
  }
}

/** What a trigger got back. */
export type Outcome = 'accepted' | 'unavailable' | 'refused' | 'connection-error' | 'hung' | `http-${number}`;

/**
 * A steady load: `ratePerSecond` triggers through the gateway, each with a unique `i` in its
 * payload; at most `maxInFlight` at once (beyond that a tick is skipped and counted). Records every
 * run whose trigger answered 201 — the commands the system promised to keep.
 */
export class Load {
  readonly accepted = new Map<string, number>();
  readonly outcomes = new Map<Outcome, number>();
  /** 2xx answers that named a run id another 2xx already named (must stay 0). */
  duplicateAnswers = 0;
  attempts = 0;
  skipped = 0;
  maxLatencyMs = 0;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly unexpected: string[] = [];

  constructor(
    private readonly sys: FaultSystem,
    private readonly opts: { ratePerSecond?: number; maxInFlight?: number; timeoutMs?: number } = {},
  ) {}

  start(): this {
    const every = 1000 / (this.opts.ratePerSecond ?? 10);
    this.timer = setInterval(() => this.fire(), every);
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }

  count(o: Outcome): number {
    return this.outcomes.get(o) ?? 0;
  }

  /** Answers that are neither 201 nor a clean 503, and requests dropped without an answer (a refused connection — the gateway restarting — is not one). */
  problems(): string[] {
    return [...this.unexpected];
  }

  /** Resolves once `n` more triggers were accepted: the system serves again after a fault. */
  async progressed(n = 5, timeoutMs = 60000): Promise<void> {
    const target = this.accepted.size + n;
    await waitFor(() => this.accepted.size >= target, { timeoutMs, intervalMs: 100, what: `${n} more accepted triggers (have ${this.accepted.size})` });
  }

  summary() {
    return {
      attempts: this.attempts,
      accepted: this.accepted.size,
      outcomes: Object.fromEntries(this.outcomes),
      skippedTicks: this.skipped,
      duplicateAnswers: this.duplicateAnswers,
      maxLatencyMs: this.maxLatencyMs,
    };
  }

  private fire(): void {
    if (this.inFlight.size >= (this.opts.maxInFlight ?? 40)) {
      this.skipped++;
      return;
    }
    const i = this.attempts++;
    const p = this.trigger(i).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async trigger(i: number): Promise<void> {
    const started = Date.now();
    let outcome: Outcome;
    try {
      const r = await fetch(`${this.sys.gatewayUrl}/api/v1/flows/${this.sys.flowId}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.sys.apiKey}` },
        body: JSON.stringify({ i }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 20000),
      });
      const text = await r.text();
      if (r.status === 201) {
        const id = (JSON.parse(text) as { id: string }).id;
        if (this.accepted.has(id)) this.duplicateAnswers++;
        this.accepted.set(id, i);
        outcome = 'accepted';
      } else if (r.status === 503) {
        outcome = 'unavailable';
        const body = JSON.parse(text) as { statusCode?: number; code?: string };
        if (body.statusCode !== 503 || body.code !== 'SERVICE_UNAVAILABLE') this.unexpected.push(`503 without the envelope: ${text.slice(0, 200)}`);
      } else {
        outcome = `http-${r.status}`;
        this.unexpected.push(`trigger ${i}: ${r.status} ${text.slice(0, 300)}`);
      }
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      if (err.name === 'TimeoutError' || err.name === 'AbortError') {
        outcome = 'hung';
        this.unexpected.push(`trigger ${i}: no answer within ${this.opts.timeoutMs ?? 20000} ms`);
      } else {
        // Refused: the gateway was not listening (killed or restarting). Anything else: a request in flight was dropped.
        outcome = err.cause?.code === 'ECONNREFUSED' ? 'refused' : 'connection-error';
        if (outcome === 'connection-error') {
          this.unexpected.push(`trigger ${i}: dropped without an answer after ${Date.now() - started} ms (${err.message}: ${err.cause?.code ?? ''} ${(err.cause as Error | undefined)?.message ?? ''})`);
        }
      }
    }
    this.maxLatencyMs = Math.max(this.maxLatencyMs, Date.now() - started);
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }
}


export interface CheckOptions {
  /** Until the views have settled (default 120 s). */
  readonly timeoutMs?: number;
  /** The status every accepted run must end in; 'terminal' accepts any terminal status. */
  readonly expect?: 'SUCCEEDED' | 'terminal';
  /** Compare the views with a rebuild from the topic (default true). */
  readonly rebuild?: boolean;
}

export interface CheckFigures {
  readonly accepted: number;
  readonly foundInViews: number;
  readonly missingFromViews: string[];
  readonly duplicateViewRows: number;
  readonly listedOnce: number;
  readonly duplicatesInList: number;
  readonly statuses: Record<string, number>;
  readonly notAsExpected: string[];
  readonly stepsIncomplete: string[];
  readonly writeModelRuns: number;
  /** Runs recorded although their trigger got no 2xx (the answer was lost to the fault): allowed. */
  readonly recordedWithoutAnswer: number;
  /** Trigger payloads (`i`) that made more than one run. */
  readonly duplicateRunsPerPayload: number;
  readonly eventsInLog: number;
  readonly messagesOnTopic: number;
  /** Messages that repeat an event already on the topic (at-least-once publishing). */
  readonly duplicatesOnTopic: number;
  readonly eventsMissingFromTopic: number;
  /** (run, step, attempt) started more than once: a reported step run twice (must stay 0). */
  readonly stepsStartedTwice: number;
  /**
   * Retention ranges that do not start where their project's previous one ended (an overlap purges
   * runs twice, a hole leaves runs behind the mark unpurged), plus runs erased twice (must stay 0).
   */
  readonly purgedTwice: number;
  /** Runs the write model's retention marks cover (or that were erased): their views must read purged, with no execution data left. */
  readonly purgedRuns: number;
  /** Runs whose view disagrees with the write model on whether their data is purged, or covered runs with data left (must stay 0). */
  readonly purgeMismatches: number;
  /** Up to ten of those runs: each side's answer, whether data is left, its finish and its project's mark. */
  readonly purgeMismatchSamples: readonly unknown[];
  readonly rebuild: RebuildFigures | null;
}

/**
 * Stops the retention apps, then waits until the views settle (every accepted run terminal in the
 * views, the outbox drained, every run's view at its write-model version, nothing RUNNING or
 * PAUSED, each retention mark projected), then measures. The
 * caller asserts with `assertClean`, so that the figures are recorded even when a check fails.
 */
export async function settleAndMeasure(sys: FaultSystem, load: Load, opts: CheckOptions = {}): Promise<CheckFigures> {
  const ids = [...load.accepted.keys()];
  const timeoutMs = opts.timeoutMs ?? 120000;
  // Retention keeps moving its marks as the last runs finish (every 300 ms, 3 runs a batch): the
  // views would be compared with a write model a batch ahead of them. Stopped first (SIGTERM: a
  // batch in flight commits or rolls back whole), and each project's last mark must be projected.
  for (let i = 0; i < sys.count('retention'); i++) await sys.kill('retention', i, 'SIGTERM');
  let last = '';
  await waitFor(
    async () => {
      const [s] = await sys.sql<{ open: number; unpublished: number; behind: number; missing: number; unprojectedMarks: number }>(
        `select (select count(*)::int from run_streams where status in ('RUNNING', 'PAUSED')) as open,
                (select count(*)::int from run_events_outbox) as unpublished,
                (select count(*)::int from run_streams s left join run_views v on v.id = s.run_id
                  where v.version is distinct from s.version) as behind,
                (select count(*)::int from unnest($1::text[]) as a(id)
                  where not exists (select 1 from run_views v where v.id = a.id and v.status = any($2::text[]))) as missing,
                (select count(*)::int from retention_marks m where not ${RETENTION_MARK_PROJECTED}) as "unprojectedMarks"`,
        [ids, TERMINAL],
      );
      last = JSON.stringify(s);
      return s.open === 0 && s.unpublished === 0 && s.behind === 0 && s.missing === 0 && s.unprojectedMarks === 0;
    },
    { timeoutMs, intervalMs: 500, what: 'the views to settle' },
  ).catch((e) => {
    throw new Error(`${(e as Error).message} (last: ${last})\n${sys.outputs()}`);
  });

  const views = await sys.sql<{ id: string; status: string; n: number }>(
    `select id, status, count(*) over (partition by id)::int as n from run_views where id = any($1::text[])`,
    [ids],
  );
  const found = new Set(views.map((v) => v.id));
  const statuses: Record<string, number> = {};
  for (const v of views) statuses[v.status] = (statuses[v.status] ?? 0) + 1;
  const expectStatus = opts.expect ?? 'SUCCEEDED';
  const notAsExpected = views
    .filter((v) => (expectStatus === 'terminal' ? !(TERMINAL as readonly string[]).includes(v.status) : v.status !== expectStatus))
    .map((v) => `${v.id}:${v.status}`);
  const stepsIncomplete = (
    await sys.sql<{ id: string }>(
      `select v.id from run_views v where v.status = 'SUCCEEDED' and v.id = any($1::text[])
         and (select count(*) from step_views s where s.run_id = v.id and s.status = 'SUCCEEDED') <> $2`,
      [ids, LOAD_STEPS.length],
    )
  ).map((r) => r.id);
  const [wm] = await sys.sql<{ runs: number; events: number }>(
    `select (select count(*)::int from run_streams) as runs, (select count(*)::int from run_events) as events`,
  );
  const dupPayloads = await sys.sql<{ n: number }>(
    `select count(*)::int as n from (select input->>'i' from execution_data where kind = 'trigger' and input ? 'i'
       group by 1 having count(*) > 1) d`,
  );
  const listed = await listAllRunIds(sys);
  const listCounts = new Map<string, number>();
  for (const id of listed) listCounts.set(id, (listCounts.get(id) ?? 0) + 1);
  const topic = await scanTopic(sys);
  const logKeys = await sys.sql<{ k: string }>(`select run_id || ':' || seq as k from run_events`);
  const eventsMissingFromTopic = logKeys.filter((r) => !topic.keys.has(r.k)).length;
  const [twice] = await sys.sql<{ steps: number; purges: number }>(
    `select (select count(*)::int from (select 1 from run_events where type = 'flowrun.step.started.v1'
               group by run_id, envelope->'data'->>'stepName', envelope->'data'->>'attempt' having count(*) > 1) a) as steps,
            (select count(*)::int from (select 1 from run_events where type = 'flowrun.execution-data-purged.v1'
               group by run_id having count(*) > 1) b)
            + (select count(*)::int from (
                 select envelope->'data'->>'fromRunId' as from_id, (envelope->'data'->>'fromFinishedAt')::timestamptz as from_at,
                   lag(run_id) over w as prev_id, lag((envelope->'data'->>'throughFinishedAt')::timestamptz) over w as prev_at
                 from run_events where type = 'flowrun.execution-data-purged-through.v1'
                 window w as (partition by envelope->>'projectId' order by position)) r
               where r.from_id is distinct from r.prev_id or r.from_at is distinct from r.prev_at) as purges`,
  );
  // Whether a run's data is purged, as the write model decides it (its project's mark, or its own
  // erase) and as the views answer it (RUN_VIEW_PURGED_AT).
  const [purge] = await sys.sql<{ runs: number; mismatches: number; samples: unknown[] }>(
    `with w as (
       select run_views.id, ${RUN_VIEW_PURGED_AT} is not null as view_purged,
         exists (select 1 from execution_data d where d.run_id = run_views.id) as has_data,
         (s.purged_at is not null or (m.project_id is not null and s.finished_at is not null
           and (s.finished_at, s.run_id) <= (m.finished_at, m.run_id))) as purged
       from run_views join run_streams s on s.run_id = run_views.id left join retention_marks m on m.project_id = s.project_id
     )
     select (select count(*)::int from w where purged) as runs,
       (select count(*)::int from w where purged is distinct from view_purged)
       + (select count(*)::int from w where purged and has_data) as mismatches,
       (select coalesce(jsonb_agg(x), '[]') from (
          select w.id, w.purged, w.view_purged, w.has_data, s.finished_at, s.purged_at, m.finished_at as mark_finished_at, m.run_id as mark_run_id
          from w join run_streams s on s.run_id = w.id left join retention_marks m on m.project_id = s.project_id
          where w.purged is distinct from w.view_purged or (w.purged and w.has_data)
          limit 10) x) as samples`,
  );
  const rebuild = opts.rebuild === false ? null : await rebuildAndCompare(sys);
  return {
    accepted: ids.length,
    foundInViews: found.size,
    missingFromViews: ids.filter((id) => !found.has(id)),
    duplicateViewRows: views.filter((v) => v.n > 1).length,
    listedOnce: ids.filter((id) => listCounts.get(id) === 1).length,
    duplicatesInList: [...listCounts.values()].filter((n) => n > 1).length,
    statuses,
    notAsExpected,
    stepsIncomplete,
    writeModelRuns: wm.runs,
    recordedWithoutAnswer: wm.runs - ids.length,
    duplicateRunsPerPayload: dupPayloads[0]?.n ?? 0,
    eventsInLog: wm.events,
    messagesOnTopic: topic.messages,
    duplicatesOnTopic: topic.messages - topic.invalid - topic.keys.size,
    eventsMissingFromTopic,
    stepsStartedTwice: twice.steps,
    purgedTwice: twice.purges,
    purgedRuns: purge.runs,
    purgeMismatches: purge.mismatches,
    purgeMismatchSamples: purge.samples,
    rebuild,
  };
}

/** The checks every fault test makes on the figures. */
export function assertClean(f: CheckFigures, load: Load): void {
  const problems: string[] = [];
  if (f.missingFromViews.length) problems.push(`accepted runs missing from the views: ${f.missingFromViews.slice(0, 10).join(', ')}`);
  if (f.duplicateViewRows) problems.push(`${f.duplicateViewRows} duplicate view rows`);
  if (f.listedOnce !== f.accepted) problems.push(`only ${f.listedOnce} of ${f.accepted} accepted runs listed exactly once`);
  if (f.duplicatesInList) problems.push(`${f.duplicatesInList} runs listed more than once`);
  if (f.notAsExpected.length) problems.push(`runs not in the expected status: ${f.notAsExpected.slice(0, 10).join(', ')} (${f.notAsExpected.length})`);
  if (f.stepsIncomplete.length) problems.push(`succeeded runs without all their step views: ${f.stepsIncomplete.slice(0, 10).join(', ')}`);
  if (f.recordedWithoutAnswer < 0) problems.push(`accepted runs missing from the write model (${f.recordedWithoutAnswer})`);
  if (f.writeModelRuns > load.attempts) problems.push(`${f.writeModelRuns} runs recorded for ${load.attempts} triggers`);
  if (f.duplicateRunsPerPayload) problems.push(`${f.duplicateRunsPerPayload} trigger payloads made more than one run`);
  if (f.eventsMissingFromTopic) problems.push(`${f.eventsMissingFromTopic} committed events never reached the topic`);
  if (f.stepsStartedTwice) problems.push(`${f.stepsStartedTwice} steps started twice in one attempt`);
  if (f.purgedTwice) problems.push(`${f.purgedTwice} runs purged twice (or retention ranges that do not follow each other)`);
  if (f.purgeMismatches) {
    problems.push(
      `${f.purgeMismatches} runs whose views disagree with the write model on their purge, or purged with data left: ${JSON.stringify(f.purgeMismatchSamples)}`,
    );
  }
  if (load.duplicateAnswers) problems.push(`${load.duplicateAnswers} triggers answered with an id already given`);
  if (f.rebuild && f.rebuild.differences.length) problems.push(`views differ from a rebuild: ${f.rebuild.differences.slice(0, 5).join(' | ')}`);
  if (problems.length) throw new Error(`fault check failed:\n- ${problems.join('\n- ')}\nfigures: ${JSON.stringify({ ...f, missingFromViews: f.missingFromViews.length })}`);
}

/** Every run id of the project, through the public list API (keyset pages of 100, archived included). */
async function listAllRunIds(sys: FaultSystem): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10000; page++) {
    const q = new URLSearchParams({ projectId: sys.projectId, limit: '100', includeArchived: 'true' });
    if (cursor) q.set('cursor', cursor);
    const r = await fetch(`${sys.gatewayUrl}/api/v1/flow-runs?${q}`, { headers: { authorization: `Bearer ${sys.apiKey}` } });
    if (r.status !== 200) throw new Error(`list answered ${r.status}: ${await r.text()}`);
    const body = (await r.json()) as { data: { id: string }[]; next: string | null };
    out.push(...body.data.map((d) => d.id));
    cursor = body.next;
    if (!cursor) return out;
  }
  throw new Error('list did not end');
}

/** Reads the whole topic once with a fresh group: messages, distinct events (run:seq), unparseable ones. */
export async function scanTopic(sys: FaultSystem, topic = sys.topic): Promise<{ messages: number; invalid: number; keys: Set<string> }> {
  const kafka = createKafka({ brokers: sys.env.KAFKA_BROKERS.split(','), clientId: 'fault-scan' });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const seen = new Map<number, number>();
  const keys = new Set<string>();
  let messages = 0;
  let invalid = 0;
  const done = () => [...want].every(([p, high]) => high === 0 || (seen.get(p) ?? 0) >= high);
  if (done()) return { messages, invalid, keys };
  const consumer = kafka.consumer({ groupId: uniqueName('fault-scan') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.set(partition, Number(message.offset) + 1);
      if (Number(message.offset) >= (want.get(partition) ?? 0)) return;
      messages++;
      try {
        const e = JSON.parse(message.value?.toString() ?? '') as { subject?: unknown; seq?: unknown };
        if (typeof e.subject !== 'string' || typeof e.seq !== 'number') throw new Error('not an envelope');
        keys.add(`${e.subject}:${e.seq}`);
      } catch {
        invalid++;
      }
    },
  });
  try {
    await waitFor(done, { timeoutMs: 60000, intervalMs: 100, what: `reading ${topic} to its end` });
  } finally {
    await consumer.disconnect();
  }
  return { messages, invalid, keys };
}

export interface RebuildFigures {
  readonly runs: number;
  readonly steps: number;
  readonly differences: string[];
  readonly seconds: number;
}

/**
 * The views must equal a rebuild: a fresh database (migrated), a fresh projector in a new consumer
 * group on the same topic, compared row by row. `run_views.updated_at` is left out: it is the wall
 * clock of the transaction that last wrote the row (`now()`), not something an event says.
 */
export async function rebuildAndCompare(sys: FaultSystem): Promise<RebuildFigures> {
  const started = Date.now();
  const { serverUrl } = parseDatabaseUrl(sys.dbUrl);
  const url = serverUrl(uniqueName('flowruns_test_rebuild').toLowerCase());
  await migrate(url);
  const projector = await sys.startExtra('projector', { DATABASE_URL: url, PROJECTOR_GROUP_ID: uniqueName('faults-rebuild') });
  try {
    const signature = `select count(*)::int as n, coalesce(sum(version), 0)::bigint::text as v from run_views`;
    const [live] = await sys.sql<{ n: number; v: string }>(signature);
    await waitFor(
      async () => {
        const [r] = await sys.sql<{ n: number; v: string }>(signature, [], url);
        return r.n === live.n && r.v === live.v;
      },
      { timeoutMs: 120000, intervalMs: 300, what: `the rebuild to reach ${live.n} runs` },
    );
    const runsSql = `select id, to_jsonb(v) - 'updated_at' as row from run_views v order by id`;
    const stepsSql = `select run_id || '/' || step_name as id, to_jsonb(s) as row from step_views s order by run_id, step_name`;
    const rangesSql = `select project_id || '/' || through_run_id as id, to_jsonb(r) as row from run_view_purge_ranges r order by 1`;
    const differences = [
      ...diffRows('run_views', await sys.sql(runsSql), await sys.sql(runsSql, [], url)),
      ...diffRows('step_views', await sys.sql(stepsSql), await sys.sql(stepsSql, [], url)),
      ...diffRows('run_view_purge_ranges', await sys.sql(rangesSql), await sys.sql(rangesSql, [], url)),
    ];
    const [steps] = await sys.sql<{ n: number }>(`select count(*)::int as n from step_views`);
    return { runs: live.n, steps: steps.n, differences, seconds: (Date.now() - started) / 1000 };
  } finally {
    await projector.stop('SIGKILL');
    await dropTestDatabase(url).catch(() => undefined);
  }
}

function diffRows(table: string, live: Record<string, unknown>[], rebuilt: Record<string, unknown>[]): string[] {
  const index = (rows: Record<string, unknown>[]) => new Map(rows.map((r) => [String(r.id), JSON.stringify(r.row)]));
  const a = index(live);
  const b = index(rebuilt);
  const out: string[] = [];
  for (const [id, row] of a) {
    if (!b.has(id)) out.push(`${table} ${id}: only live`);
    else if (b.get(id) !== row) out.push(`${table} ${id}: live ${row} rebuilt ${b.get(id)}`);
  }
  for (const id of b.keys()) if (!a.has(id)) out.push(`${table} ${id}: only rebuilt`);
  return out;
}

/** Appends a test's figures to `tmp/reliability/<file>.json` (what docs/reliability.md reports). */
export function recordFigures(file: string, name: string, figures: unknown): void {
  const dir = path.join(root, 'tmp/reliability');
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, `${file}.json`);
  const all = existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : {};
  all[name] = { at: new Date().toISOString(), ...(figures as object) };
  writeFileSync(p, JSON.stringify(all, null, 2));
}

/** Figures in the shape the report wants. */
export const reportOf = (f: CheckFigures, load: Load, faults: Record<string, number>) => ({
  faults,
  load: load.summary(),
  acceptedVsFound: `${f.accepted} accepted, ${f.foundInViews} in the views, ${f.listedOnce} listed exactly once`,
  statuses: f.statuses,
  recordedWithoutAnswer: f.recordedWithoutAnswer,
  duplicatesInViews: f.duplicateViewRows + f.duplicatesInList,
  duplicatesOnTopic: f.duplicatesOnTopic,
  stepsStartedTwice: f.stepsStartedTwice,
  purgedTwice: f.purgedTwice,
  purgedRuns: f.purgedRuns,
  purgeMismatches: f.purgeMismatches,
  ...(f.purgeMismatches ? { purgeMismatchSamples: f.purgeMismatchSamples } : {}),
  eventsInLog: f.eventsInLog,
  messagesOnTopic: f.messagesOnTopic,
  rebuild: f.rebuild && { runs: f.rebuild.runs, steps: f.rebuild.steps, differences: f.rebuild.differences.length, seconds: f.rebuild.seconds },
});

/**
 * Runs a command without blocking this process. The load runs in this process: a synchronous call
 * that takes longer than the gateway's keep-alive timeout (5 s; a broker start takes longer)
 * freezes its HTTP client, so the gateway closes the client's idle connections meanwhile, and the
 * first triggers sent when the loop resumes go out on them and are lost without an answer — the
 * 2 "dropped" triggers of the Kafka-outage run (docs/reliability.md, finding 5).
 */
const execFileAsync = promisify(execFile);

/** A Kafka broker of the test's own (own ports, own data), to stop and start without touching the shared one. */
export async function ownKafka() {
  const env: Record<string, string> = {
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
  };
  const options = { env: { ...process.env, ...env, KAFKA_BROKERS: `127.0.0.1:${env.KAFKA_PORT}`, KAFKA_TOPIC: '' }, timeout: 150000 };
  const script = path.join(root, 'infra/kafka/kafka.sh');
  const run = async (cmd: 'start' | 'stop'): Promise<void> => void (await execFileAsync('bash', [script, cmd], options));
  await run('start');
  return {
    brokers: `127.0.0.1:${env.KAFKA_PORT}`,
    stop: () => run('stop'),
    start: () => run('start'),
    /** Stops it and deletes its data (after the load: may block). */
    destroy: () => void execFileSync('bash', [script, 'reset'], { ...options, stdio: 'pipe' }),
  };
}

/**
 * A throwaway Postgres cluster (initdb into a temporary folder, its own port), to stop and restart
 * without touching the shared server. initdb refuses to run as root, so it runs as `postgres` then.
 */
export async function ownPostgres() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flowruns-faults-pg-'));
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres', dir]);
  const pg = (bin: string, args: string[]) =>
    asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe', timeout: 120000 })
      : execFileSync(bin, args, { stdio: 'pipe', timeout: 120000 });
  pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']);
  const opts = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const log = path.join(dir, 'log');
  pg('pg_ctl', ['-D', data, '-o', opts, '-l', log, '-w', 'start']);
  // Under the load: without blocking this process (see execFileAsync).
  const pgAsync = async (args: string[]): Promise<void> =>
    void (await (asRoot
      ? execFileAsync('runuser', ['-u', 'postgres', '--', 'pg_ctl', ...args], { timeout: 120000 })
      : execFileAsync('pg_ctl', args, { timeout: 120000 })));
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pgAsync(['-D', data, '-m', 'fast', '-w', 'stop']),
    start: () => pgAsync(['-D', data, '-o', opts, '-l', log, '-w', 'start']),
    restart: () => pgAsync(['-D', data, '-o', opts, '-l', log, '-m', 'fast', '-w', 'restart']),
    destroy: () => {
      try {
        pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `/health/ready` status of an app, or 0 when it does not answer within 5 s. */
export async function readiness(app: RunningApp): Promise<number> {
  try {
    const r = await fetch(`${app.url}/health/ready`, { signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    return r.status;
  } catch {
    return 0;
  }
}

/** Publishes messages as they are (poison, unknown types, duplicates) onto the system's topic. */
export async function publishRaw(
  sys: FaultSystem,
  messages: { key: string | null; value: string | Buffer | null; headers?: Record<string, string> }[],
  topic = sys.topic,
): Promise<void> {
  const kafka = createKafka({ brokers: sys.env.KAFKA_BROKERS.split(','), clientId: 'fault-inject' });
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Messages on the dead-letter topic (`<topic>.dlq`) so far. */
export async function deadLetterCount(sys: FaultSystem): Promise<number> {
  const kafka = createKafka({ brokers: sys.env.KAFKA_BROKERS.split(','), clientId: 'fault-dlq' });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(`${sys.topic}.dlq`);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

/** A well-formed envelope of a type no consumer knows, for a run that does not exist. */
export const unknownTypeEvent = (sys: FaultSystem, n: number) => {
  const subject = `run_unknown_${n}_${uniqueName('x')}`;
  return {
    key: subject,
    value: JSON.stringify({
      specversion: '1.0',
      id: `evt_${uniqueName('u')}`,
      type: 'flowrun.from-the-future.v9',
      source: 'fault-suite',
      time: new Date().toISOString(),
      subject,
      projectId: sys.projectId,
      flowId: sys.flowId,
      seq: 1,
      datacontenttype: 'application/json',
      data: { anything: n },
    }),
    headers: { 'ce-type': 'flowrun.from-the-future.v9' },
  };
};

/** Poison: not JSON, not an envelope, a known type with data that breaks its schema, an empty value. */
export const poisonMessages = (sys: FaultSystem) => [
  { key: 'poison-1', value: '{not json' },
  { key: 'poison-2', value: JSON.stringify({ hello: 'world' }) },
  {
    key: 'poison-3',
    value: JSON.stringify({
      specversion: '1.0',
      id: `evt_${uniqueName('p')}`,
      type: 'flowrun.triggered.v1',
      source: 'fault-suite',
      time: new Date().toISOString(),
      subject: `run_poison_${uniqueName('p')}`,
      projectId: sys.projectId,
      flowId: sys.flowId,
      seq: 1,
      datacontenttype: 'application/json',
      data: { wrong: true },
    }),
  },
  { key: 'poison-4', value: null },
];

export interface Scenario {
  readonly sys: FaultSystem;
  readonly load: Load;
  /** Counts one injected fault of this kind (the report's "faults injected"). */
  readonly injected: (kind: string) => void;
}

/**
 * One fault scenario from start to verdict: a system, a steady load, `inject` (which injects its
 * faults and waits for the system to serve again after each), then the load stops, the views
 * settle and are checked, and the figures are recorded in tmp/reliability/<file>.json (with the
 * apps' logs when a request got an answer it should not have).
 */
export async function underLoad(
  file: string,
  name: string,
  inject: (s: Scenario) => Promise<void>,
  opts: { system?: FaultSystemOptions; ratePerSecond?: number; check?: CheckOptions; sys?: FaultSystem } = {},
): Promise<{ figures: CheckFigures; load: Load; faults: Record<string, number> }> {
  const started = Date.now();
  const sys = opts.sys ?? (await FaultSystem.start(opts.system));
  const load = new Load(sys, { ratePerSecond: opts.ratePerSecond ?? 8 }).start();
  const faults: Record<string, number> = {};
  try {
    await load.progressed(10);
    await inject({ sys, load, injected: (k) => void (faults[k] = (faults[k] ?? 0) + 1) });
    await load.progressed(5);
    await load.stop();
    await sys.assertAllAlive();
    const figures = await settleAndMeasure(sys, load, opts.check);
    recordFigures(file, name, { ...reportOf(figures, load, faults), problems: load.problems(), seconds: (Date.now() - started) / 1000 });
    if (load.problems().length) recordFigures(`${file}-logs`, name, { outputs: sys.outputs().split('\n') });
    assertClean(figures, load);
    if (load.problems().length) throw new Error(`answers that were neither 201 nor a clean 503:\n${load.problems().slice(0, 10).join('\n')}`);
    return { figures, load, faults };
  } finally {
    await load.stop();
    if (!opts.sys) await sys.stop();
  }
}
