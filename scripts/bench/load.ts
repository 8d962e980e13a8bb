import autocannon from 'autocannon';
import { performance } from 'node:perf_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import type { HttpScheduleOptions, ScheduleAnswer, ScheduleJob } from './http-schedule';
import { latencyResult, onSchedule, type LatencySecond } from './schedule';
import { round } from './util';

/** What every load measurement reports: latency percentiles (ms) and the achieved rate. */
export interface LoadResult {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
  /** Requests per second asked for (null: closed loop, as fast as the connections go). */
  readonly targetRps: number | null;
  readonly connections: number;
  readonly durationS: number;
  readonly tool: string;
  /** Every request's latency, when asked for (`keepLatencies`): for percentiles pooled over several loads; not stored in results. */
  readonly latenciesMs?: readonly number[];
  /** The requests by the second they were due in, when asked for (`seconds`): set beside a `Timeline`. */
  readonly seconds?: readonly LatencySecond[];
}

/**
 * HTTP load. At a fixed rate (`rate`): a schedule run by a process of its own
 * (`http-schedule.ts`), each latency from the instant its request was due, so a stall counts
 * against every request it delayed. Closed-loop (no `rate`): autocannon over `connections`. Any
 * answer but 2xx counts as an error, and a run with errors is reported as such, never silently
 * averaged in.
 */
export async function httpLoad(opts: {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  rate?: number;
  /** With `rate` only: every request's latency in the result (`latenciesMs`). */
  keepLatencies?: boolean;
  /** With `rate` only: the requests by the second they were due in (`seconds`). */
  seconds?: boolean;
  /** A JSON body: every request is a POST of it (else a GET). */
  post?: string;
}): Promise<LoadResult> {
  if (opts.rate) {
    const r = await runHttpSchedule({ urls: { only: opts.url }, headers: opts.headers, connections: opts.connections, durationS: opts.durationS, rate: opts.rate, keepLatencies: opts.keepLatencies, seconds: opts.seconds, post: opts.post });
    return r.only;
  }
  const r = await autocannon({
    url: opts.url,
    headers: opts.post === undefined ? opts.headers : { ...opts.headers, 'content-type': 'application/json' },
    connections: opts.connections,
    duration: opts.durationS,
    timeout: 30,
    ...(opts.post === undefined ? {} : { method: 'POST' as const, body: opts.post }),
  });
  return {
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    rps: round(r.requests.total / r.duration, 1),
    requests: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
    targetRps: null,
    connections: opts.connections,
    durationS: opts.durationS,
    tool: 'autocannon 8 (ms resolution)',
  };
}

/**
 * A fixed-rate schedule over one or more URLs, run by `http-schedule.ts` in a child process: one
 * process forked on first use and kept for the harness's run (a schedule at a time, as the
 * benchmarks ask for them), not holding the harness open while it waits for work.
 */
export function runHttpSchedule(opts: HttpScheduleOptions): Promise<Record<string, LoadResult>> {
  return scheduleProcess().run(opts);
}

class ScheduleProcess {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (r: Record<string, LoadResult>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stderr = '';

  constructor() {
    this.child = fork(SCHEDULE_SCRIPT, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    // The pipe would hold the harness open too.
    (this.child.stderr as Socket | null)?.unref();
    this.child.on('message', (m: ScheduleAnswer) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.idle();
      if ('error' in m) p.reject(new Error(`the load process failed: ${m.error}`));
      else p.resolve(m.result);
    });
    this.child.on('exit', (code, signal) => this.fail(new Error(`the load process exited with ${code ?? signal}: ${this.stderr}`)));
    // Not started (or not reachable): every schedule waiting fails, the next call forks anew.
    this.child.on('error', (e) => this.fail(new Error(`the load process failed to run: ${e.message}`)));
    this.idle();
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  run(opts: HttpScheduleOptions): Promise<Record<string, LoadResult>> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.child.ref();
      this.child.channel?.ref();
      this.child.send({ id, opts } satisfies ScheduleJob, (e) => {
        if (!e) return;
        this.pending.delete(id);
        reject(e);
      });
    });
  }

  private fail(e: Error): void {
    if (current === this) current = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Waiting for work keeps neither process alive: the harness exits when its run is done, and the child with it. */
  private idle(): void {
    if (this.pending.size > 0) return;
    this.child.unref();
    this.child.channel?.unref();
  }
}

let current: ScheduleProcess | null = null;
const scheduleProcess = () => (current ??= new ScheduleProcess());

/** The load process's pid, once one runs. */
export const scheduleProcessPid = (): number | null => current?.pid ?? null;

// Compiled, beside this file; this file's source under jest runs the build's.
const SCHEDULE_SCRIPT = [path.join(__dirname, 'http-schedule.js'), path.resolve(__dirname, '../../dist/scripts/bench/http-schedule.js')].find((f) => existsSync(f)) ?? path.join(__dirname, 'http-schedule.js');

/**
 * The same two shapes of load for anything asynchronous (a SQL query on a pool): `rate` per second
 * on a fixed schedule, each latency measured from the instant the request was due (so a stall
 * counts against every request it delayed), at most `concurrency` in flight; or closed-loop with
 * `concurrency` workers.
 */
export async function fnLoad(
  work: () => Promise<unknown>,
  opts: { concurrency: number; durationS: number; rate?: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + opts.durationS * 1000;
  const one = async (due: number) => {
    // From the instant it was due, or from when it started if a timer fired it early (setTimeout
    // rounds to whole milliseconds: measured from `due`, a fast query came out negative).
    const from = Math.min(due, performance.now());
    try {
      await work();
      latencies.push(performance.now() - from);
    } catch {
      errors++;
    }
  };
  if (opts.rate) {
    await onSchedule(opts, (_, due) => one(due));
  } else {
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < end) await one(performance.now());
      }),
    );
  }
  return latencyResult(latencies, errors, (performance.now() - start) / 1000, 3, {
    targetRps: opts.rate ?? null,
    connections: opts.concurrency,
    durationS: opts.durationS,
    tool: 'harness (performance.now, µs resolution)',
  });
}
