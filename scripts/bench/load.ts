import autocannon from 'autocannon';
import { performance } from 'node:perf_hooks';
import { percentile, round } from './util';

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
}

/**
 * HTTP load with autocannon: at a fixed rate (`rate`, latencies corrected for coordinated
 * omission by autocannon) or closed-loop over `connections`. Any answer but 2xx counts as an error,
 * and a run with errors is reported as such, never silently averaged in.
 */
export async function httpLoad(opts: {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  rate?: number;
}): Promise<LoadResult> {
  const r = await autocannon({
    url: opts.url,
    headers: opts.headers,
    connections: opts.connections,
    duration: opts.durationS,
    overallRate: opts.rate,
    timeout: 30,
  });
  return {
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    rps: round(r.requests.total / r.duration, 1),
    requests: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
    targetRps: opts.rate ?? null,
    connections: opts.connections,
    durationS: opts.durationS,
    tool: 'autocannon 8 (ms resolution)',
  };
}

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
  const elapsed = (performance.now() - start) / 1000;
  return {
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
    maxMs: round(Math.max(...latencies), 3),
    rps: round(latencies.length / elapsed, 1),
    requests: latencies.length,
    errors,
    targetRps: opts.rate ?? null,
    connections: opts.concurrency,
    durationS: opts.durationS,
    tool: 'harness (performance.now, µs resolution)',
  };
}

/**
 * Several requests measured side by side: one schedule at `rate` per second in all, taking the
 * works in turn (a, b, a, b, …), each latency from the instant its request was due (as `fnLoad`),
 * kept apart per work. Whatever slows the machine for a moment (a collector, a timer in another
 * process, autovacuum) falls on all of them alike, so their ratio compares the requests and not the
 * moments they ran in — two loads one after the other compared p99s of two different quarters of a
 * minute.
 */
export async function interleavedLoad(
  works: Readonly<Record<string, () => Promise<void>>>,
  opts: { concurrency: number; durationS: number; rate: number },
): Promise<Record<string, LoadResult>> {
  const names = Object.keys(works);
  const latencies = new Map(names.map((n) => [n, [] as number[]]));
  const errors = new Map(names.map((n) => [n, 0]));
  const start = performance.now();
  await onSchedule(opts, async (n, due) => {
    const name = names[n % names.length];
    const from = Math.min(due, performance.now());
    try {
      await works[name]();
      latencies.get(name)?.push(performance.now() - from);
    } catch {
      errors.set(name, (errors.get(name) ?? 0) + 1);
    }
  });
  const elapsed = (performance.now() - start) / 1000;
  return Object.fromEntries(
    names.map((name) => {
      const l = latencies.get(name) ?? [];
      const result: LoadResult = {
        p50Ms: round(percentile(l, 50), 3),
        p99Ms: round(percentile(l, 99), 3),
        maxMs: round(Math.max(...l), 3),
        rps: round(l.length / elapsed, 1),
        requests: l.length,
        errors: errors.get(name) ?? 0,
        targetRps: opts.rate / names.length,
        connections: opts.concurrency,
        durationS: opts.durationS,
        tool: `harness (fetch, performance.now; ${names.join(' and ')} interleaved, ${opts.rate}/s in all)`,
      };
      return [name, result];
    }),
  );
}

/**
 * Calls `fire(n, due)` for the n-th request at `rate` per second for `durationS`, each at its due
 * instant or, when `concurrency` requests are already in flight, as soon as one ends (the delay
 * then counts against it: latencies are measured from `due`). Resolves when every request ended.
 */
async function onSchedule(
  opts: { concurrency: number; durationS: number; rate?: number },
  fire: (n: number, due: number) => Promise<void>,
): Promise<void> {
  const start = performance.now();
  const end = start + opts.durationS * 1000;
  const interval = 1000 / (opts.rate ?? 1);
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const pending: Promise<void>[] = [];
  for (let n = 0; ; n++) {
    const due = start + n * interval;
    if (due >= end) break;
    const now = performance.now();
    if (due > now) await new Promise((r) => setTimeout(r, due - now));
    while (inFlight >= opts.concurrency) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    pending.push(
      fire(n, due).finally(() => {
        inFlight--;
        waiters.shift()?.();
      }),
    );
  }
  await Promise.all(pending);
}
