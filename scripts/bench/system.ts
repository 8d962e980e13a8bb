import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createKafka, ensureTopics } from '@flowruns/messaging';
import { BenchDatabase } from './db';
import { freePort, log, round, uniqueName, waitFor } from './util';

/** The repository root (this file runs from dist/scripts/bench/). */
export const ROOT = path.resolve(__dirname, '../../..');

export const benchEnv = () => ({
  serverUrl: process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  kafkaBrokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
});

export { freePort };

const APP_PORT_VAR: Record<string, string> = {
  'api-gateway': 'GATEWAY_PORT',
  'command-service': 'COMMAND_SERVICE_PORT',
  projector: 'PROJECTOR_PORT',
  retention: 'RETENTION_PORT',
  'flow-worker': 'FLOW_WORKER_PORT',
};

export interface RunningApp {
  readonly name: string;
  readonly url: string;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a built app (`dist/apps/<name>/src/main.js`) as a child process and waits for /health/ready. */
export async function startApp(name: string, env: Record<string, string>, port?: number): Promise<RunningApp> {
  const main = path.join(ROOT, 'dist/apps', name, 'src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  port ??= await freePort();
  let out = '';
  // BENCH_APP_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the apps; NODE_OPTIONS refuses --cpu-prof.
  const nodeArgs = (process.env.BENCH_APP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, main], {
    cwd: ROOT,
    env: { ...process.env, ...env, [APP_PORT_VAR[name]]: String(port), LOG_LEVEL: env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const app: RunningApp = {
    name,
    url,
    process: child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 20000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${out}`);
      const r = await fetch(`${url}/health/ready`).catch(() => null);
      return r?.ok === true;
    },
    { timeoutMs: 90000, intervalMs: 200, what: `${name} ready` },
  ).catch((e) => {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- ${name} output ---\n${out}`);
  });
  return app;
}

/**
 * One isolated system for one benchmark: its own database, topic, consumer groups and ports. Apps
 * are started on demand (`start`), so a benchmark can load data before the projector sees it.
 */
export class BenchSystem {
  readonly apps = new Map<string, RunningApp>();
  readonly env: Record<string, string>;

  private constructor(
    readonly label: string,
    readonly db: BenchDatabase,
    readonly topic: string,
    extraEnv: Record<string, string>,
  ) {
    this.env = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: benchEnv().kafkaBrokers.join(','),
      KAFKA_TOPIC: topic,
      KAFKA_TOPIC_PARTITIONS: '12',
      PROJECTOR_GROUP_ID: uniqueName('bench-projector'),
      FLOW_WORKER_GROUP_ID: uniqueName('bench-worker'),
      INTERNAL_API_TOKEN: uniqueName('bench-internal-token'),
      // Measured, not limited: the gateway's per-key rate limit would cap a load test.
      GATEWAY_RATE_LIMIT_PER_SECOND: '0',
      // Bulk-loaded RUNNING runs (up to 90 days old) have no worker: keep the supervisor from timing
      // them out mid-benchmark (it did, with one day: the rebuild's views then differed from the loader's).
      AP_ORPHAN_RUN_SECONDS: String(365 * 86400),
      AP_FLOW_TIMEOUT_SECONDS: String(365 * 86400),
      // On demand only, unless a benchmark starts the retention app itself.
      RETENTION_INTERVAL_MS: '0',
      ...extraEnv,
    };
  }

  static async create(label: string, extraEnv: Record<string, string> = {}): Promise<BenchSystem> {
    const db = await BenchDatabase.create(benchEnv().serverUrl, label);
    const topic = uniqueName(`bench-${label}`);
    const sys = new BenchSystem(label, db, topic, extraEnv);
    await createTopic(topic, Number(sys.env.KAFKA_TOPIC_PARTITIONS));
    return sys;
  }

  async start(name: string, overrides: Record<string, string> = {}): Promise<RunningApp> {
    const cs = this.apps.get('command-service');
    const t = performance.now();
    const app = await startApp(name, { ...this.env, ...(cs ? { COMMAND_SERVICE_URL: cs.url } : {}), ...overrides });
    this.apps.set(name, app);
    this.logSince(t, `${name} ready`);
    return app;
  }

  private logSince(t: number, what: string): void {
    log(`${this.label}: ${what} in ${round((performance.now() - t) / 1000, 2)} s`);
  }

  /**
   * The command service, the projector and the gateway (the apps a REST benchmark needs), started
   * at once: the command service's port chosen first, so the gateway's configuration names it.
   * One after another they took ~5 s of each benchmark; booting is CPU work, and two cores share it.
   */
  async startCore(): Promise<{ gateway: RunningApp }> {
    const t = performance.now();
    const csPort = await freePort();
    const csUrl = `http://127.0.0.1:${csPort}`;
    const names = ['command-service', 'projector', 'api-gateway'] as const;
    const settled = await Promise.allSettled(
      names.map((name) => startApp(name, { ...this.env, COMMAND_SERVICE_URL: csUrl }, name === 'command-service' ? csPort : undefined)),
    );
    settled.forEach((r, i) => r.status === 'fulfilled' && this.apps.set(names[i], r.value));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.logSince(t, `${names.join(', ')} ready`);
    return { gateway: this.app('api-gateway') };
  }

  app(name: string): RunningApp {
    const a = this.apps.get(name);
    if (!a) throw new Error(`${name} is not running`);
    return a;
  }

  async stopApp(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (!app) return;
    const t = performance.now();
    await app.stop();
    this.apps.delete(name);
    this.logSince(t, `${name} stopped`);
  }

  /** Stops every app, the last started first; the database and topic stay. */
  async stopApps(): Promise<void> {
    for (const name of [...this.apps.keys()].reverse()) await this.stopApp(name);
  }

  async stop(): Promise<void> {
    await this.stopApps();
    await deleteTopics([this.topic, `${this.topic}.dlq`]);
    await this.db.drop();
  }
}

export async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = createKafka({ brokers: benchEnv().kafkaBrokers, clientId: 'flow-runs-bench' }).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [
      { topic, numPartitions: partitions },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
  } finally {
    await admin.disconnect();
  }
}

/** Benchmark topics are deleted after their benchmark (they can hold millions of messages). */
export async function deleteTopics(topics: string[]): Promise<void> {
  const admin = createKafka({ brokers: benchEnv().kafkaBrokers, clientId: 'flow-runs-bench' }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics, timeout: 10000 }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/** Resident memory of a process in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Samples the resident memory of some processes every `intervalMs` until stopped: the baseline
 * (first sample) and the peak of each, in MiB. VmHWM would be the lifetime peak, including start-up;
 * the peak over the window is what an operation costs.
 */
export class MemorySampler {
  private readonly first = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly procs: readonly { name: string; pid: number }[],
    intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample() {
    for (const p of this.procs) {
      const v = rssMiB(p.pid);
      if (v === null) continue;
      if (!this.first.has(p.name)) this.first.set(p.name, v);
      this.peak.set(p.name, Math.max(this.peak.get(p.name) ?? 0, v));
    }
  }

  stop(): Record<string, { baselineMiB: number; peakMiB: number; growthMiB: number }> {
    clearInterval(this.timer);
    this.sample();
    const out: Record<string, { baselineMiB: number; peakMiB: number; growthMiB: number }> = {};
    for (const p of this.procs) {
      const b = this.first.get(p.name) ?? NaN;
      const k = this.peak.get(p.name) ?? NaN;
      out[p.name] = { baselineMiB: Math.round(b), peakMiB: Math.round(k), growthMiB: Math.round(k - b) };
    }
    return out;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU used during a window by the apps, this harness process, the Postgres backends serving the
 * benchmark's database, Postgres's background writers and the Kafka broker: what each event costs, which the machine's other load does not
 * change much (unlike throughput). Backends that did not exist at the start count from zero.
 */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private readonly harness = process.cpuUsage();
  /**
   * Each backend's CPU when last seen, sampled every 250 ms: a pool closes a connection idle for
   * 10 s, and a backend that has exited is gone from `/proc` with its CPU. Read only at the end,
   * the command service's backends of a bulk operation were missing from the time until the views
   * caught up whenever that came more than 10 s after the answer (session 20).
   */
  private readonly backendCpu = new Map<number, { app: string; cpuS: number }>();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly sys: BenchSystem,
    private readonly procs: readonly { name: string; pid: number }[],
  ) {
    this.timer = setInterval(() => void this.sample().catch(() => undefined), 250);
    this.timer.unref();
  }

  static async start(sys: BenchSystem): Promise<CpuMeter> {
    // The broker and Postgres's own background processes (WAL writer, checkpointer, background
    // writer) work for the load too; autovacuum workers come and go and are not counted.
    const others = [
      ...processesMatching(/kafka\.Kafka\b/).map((pid) => ({ name: 'kafka broker', pid })),
      ...processesMatching(/^postgres: [^:]*: (walwriter|checkpointer|background writer)/).map((pid) => ({ name: 'postgres background', pid })),
    ];
    const m = new CpuMeter(sys, [...pidsOf(sys), ...others]);
    for (const p of m.procs) m.start.set(`app:${p.pid}`, cpuSeconds(p.pid) ?? 0);
    for (const { pid } of await m.backends()) m.start.set(`pg:${pid}`, cpuSeconds(pid) ?? 0);
    return m;
  }

  /**
   * The database's backends, the one asking among them: the harness's pool answers from any of its
   * connections, so leaving out the asking one left a pool connection without a CPU figure at
   * `start` when it asked then — and counted the whole life of it (a seed's CPU) when another one
   * asked later (0.6 ms per run of "postgres: other" in a bulk run's catch-up, session 21).
   */
  private async backends(): Promise<{ pid: number; app: string }[]> {
    return this.sys.db.q<{ pid: number; app: string }>(
      "select pid, coalesce(nullif(application_name, ''), 'other') as app from pg_stat_activity where datname = current_database()",
    );
  }

  private sampling: Promise<void> | null = null;

  /** One sample of every backend's CPU; a sample still running is waited for, not doubled. */
  private sample(): Promise<void> {
    this.sampling ??= (async () => {
      try {
        for (const { pid, app } of await this.backends()) {
          const cpuS = cpuSeconds(pid);
          if (cpuS !== null) this.backendCpu.set(pid, { app, cpuS });
        }
      } finally {
        this.sampling = null;
      }
    })();
    return this.sampling;
  }

  /**
   * CPU seconds per process name since `start` (`postgres` = the backends, those that exited
   * meanwhile with their CPU when last sampled; `harness` = this process), and the backends' share
   * by their client's `application_name` (`postgres: projector`, …: parts of `postgres`, not added
   * to it). Sampling goes on: `read` again later, or `stop`.
   */
  async read(): Promise<Record<string, number>> {
    // A fresh sample: one the timer started earlier ends first.
    await this.sampling;
    await this.sample();
    const out: Record<string, number> = {};
    for (const p of this.procs) out[p.name] = (out[p.name] ?? 0) + (cpuSeconds(p.pid) ?? NaN) - (this.start.get(`app:${p.pid}`) ?? 0);
    let pg = 0;
    const byApp: Record<string, number> = {};
    for (const [pid, { app, cpuS }] of this.backendCpu) {
      const used = cpuS - (this.start.get(`pg:${pid}`) ?? 0);
      pg += used;
      byApp[`postgres: ${app}`] = (byApp[`postgres: ${app}`] ?? 0) + used;
    }
    out.postgres = pg;
    Object.assign(out, byApp);
    const h = process.cpuUsage(this.harness);
    out.harness = (h.user + h.system) / 1e6;
    return out;
  }

  /** `read`, and the sampling ends. */
  async stop(): Promise<Record<string, number>> {
    clearInterval(this.timer);
    return this.read();
  }
}

/** CPU seconds per process (`CpuMeter.stop`) as milliseconds per unit of work (an event, a run). */
export const cpuMsPer = (cpuS: Record<string, number>, units: number): Record<string, number> =>
  Object.fromEntries(Object.entries(cpuS).map(([k, v]) => [k, round((v * 1000) / Math.max(units, 1), 3)]));

/** The pids of the processes whose command line matches (arguments joined by spaces). */
export function processesMatching(re: RegExp): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (re.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' '))) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

export const pidsOf = (sys: BenchSystem) =>
  [...sys.apps.values()].map((a) => ({ name: a.name, pid: a.process.pid ?? -1 }));
