/**
 * Fixed-rate HTTP load in a process of its own (`runHttpSchedule` spawns this file). The load
 * generator used to run inside the harness process, which also holds the benchmark's database pools
 * and the data generator's garbage: a pause of the harness's collector or event loop delayed the
 * requests it was due to send and was counted against the gateway. In a child process the only
 * work on its event loop is the schedule.
 *
 * Two ways to run it. Forked with an IPC channel (`runHttpSchedule`): one process for the harness's
 * whole run, a schedule per `{ id, opts }` message, answered `{ id, result }` or `{ id, error }`, a
 * full collection before each (`--expose-gc`) so one schedule's garbage is not the next one's pause.
 * Spawning a process per schedule cost ~0.9 s of node start and module loading each time on this
 * machine, ~40 s of a quick run (session 26). By hand (`list-probe.ts`): argv[2] is the JSON of
 * `HttpScheduleOptions`; the result (`Record<name, LoadResult>`) is the last line of stdout.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { LoadResult } from './load';
import { latencyResult, latencySeconds, onSchedule } from './schedule';
import { round } from './util';

export interface HttpScheduleOptions {
  /** Named URLs, taken in turn (a, b, a, b, …) on one schedule. All must share one origin. */
  readonly urls: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Requests per second in all. */
  readonly rate: number;
  readonly durationS: number;
  /** Keep-alive connections, which is also the most requests in flight. */
  readonly connections: number;
  /** Every request's latency in the result too (`LoadResult.latenciesMs`), for percentiles over several loads. */
  readonly keepLatencies?: boolean;
  /** The requests bucketed by the wall-clock second they were due in (`LoadResult.seconds`), for a `Timeline`. */
  readonly seconds?: boolean;
  /** A JSON body: every request is a POST of it (else a GET). */
  readonly post?: string;
}

async function main(opts: HttpScheduleOptions): Promise<Record<string, LoadResult>> {
  const names = Object.keys(opts.urls);
  const targets = names.map((n) => new URL(opts.urls[n]));
  const origin = targets[0].origin;
  if (targets.some((t) => t.origin !== origin)) throw new Error('every URL of a schedule must share one origin');
  const pool = new Pool(origin, { connections: opts.connections });
  const request = async (path: string) => {
    const r = opts.post === undefined
      ? await pool.request({ path, method: 'GET', headers: { ...opts.headers } })
      : await pool.request({ path, method: 'POST', headers: { ...opts.headers, 'content-type': 'application/json' }, body: opts.post });
    await r.body.arrayBuffer();
    if (r.statusCode < 200 || r.statusCode > 299) throw new Error(`HTTP ${r.statusCode}`);
  };
  // Connections opened and code warmed before the schedule starts.
  for (let i = 0; i < opts.connections * 2; i++) await request(targets[i % targets.length].pathname + targets[i % targets.length].search);

  const latencies = names.map(() => [] as number[]);
  const dueAt = names.map(() => [] as number[]);
  const errors = names.map(() => 0);
  const start = performance.now();
  await onSchedule({ concurrency: opts.connections, durationS: opts.durationS, rate: opts.rate }, async (n, due) => {
    const i = n % names.length;
    const from = Math.min(due, performance.now());
    try {
      await request(targets[i].pathname + targets[i].search);
      latencies[i].push(performance.now() - from);
      if (opts.seconds) dueAt[i].push(performance.timeOrigin + due);
    } catch {
      errors[i]++;
    }
  });
  const elapsed = (performance.now() - start) / 1000;
  await pool.close();
  const tool = names.length > 1
    ? `load process (undici; ${names.join(' and ')} interleaved, ${opts.rate}/s in all; latency from each request's due time)`
    : "load process (undici; latency from each request's due time)";
  return Object.fromEntries(
    names.map((name, i): [string, LoadResult] => {
      const result = latencyResult(latencies[i], errors[i], elapsed, 2, { targetRps: opts.rate / names.length, connections: opts.connections, durationS: opts.durationS, tool });
      return [
        name,
        {
          ...result,
          ...(opts.keepLatencies ? { latenciesMs: latencies[i].map((ms) => round(ms, 2)) } : {}),
          ...(opts.seconds ? { seconds: latencySeconds(dueAt[i], latencies[i]) } : {}),
        },
      ];
    }),
  );
}

/** A message from `runHttpSchedule` and the answer to it. */
export interface ScheduleJob {
  readonly id: number;
  readonly opts: HttpScheduleOptions;
}
export type ScheduleAnswer = { readonly id: number; readonly result: Record<string, LoadResult> } | { readonly id: number; readonly error: string };

function serve(): void {
  const send = (m: ScheduleAnswer) => process.send?.(m);
  process.on('message', (job: ScheduleJob) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    main(job.opts).then(
      (result) => send({ id: job.id, result }),
      (e: unknown) => send({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  // The parent gone (its run over, or killed): nothing more will come.
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module && process.send) {
  serve();
} else if (require.main === module) {
  main(JSON.parse(process.argv[2]) as HttpScheduleOptions).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
