import { performance } from 'node:perf_hooks';
import type { LoadResult } from './load';
import { maxOf, percentile, round } from './util';

/** A load's `LoadResult` from its latencies (ms): percentiles rounded to `digits`, rate over `elapsedS`. */
export function latencyResult(
  latencies: readonly number[],
  errors: number,
  elapsedS: number,
  digits: number,
  run: Pick<LoadResult, 'targetRps' | 'connections' | 'durationS' | 'tool'>,
): LoadResult {
  return {
    p50Ms: round(percentile(latencies, 50), digits),
    p99Ms: round(percentile(latencies, 99), digits),
    maxMs: round(maxOf(latencies), digits),
    rps: round(latencies.length / elapsedS, 1),
    requests: latencies.length,
    errors,
    ...run,
  };
}

/**
 * Calls `fire(n, due)` for the n-th request at `rate` per second for `durationS`, each at its due
 * instant or, when `concurrency` requests are already in flight, as soon as one ends (the delay
 * then counts against it: latencies are measured from `due`). Resolves when every request ended.
 */
export async function onSchedule(
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

/** One second of the list's load (`LoadResult.seconds`): the requests due in it. */
export interface LatencySecond {
  readonly atMs: number;
  readonly requests: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Latencies bucketed by the wall-clock second their request was due in (epoch ms → second's end). */
export function latencySeconds(due: readonly number[], latencies: readonly number[]): LatencySecond[] {
  const buckets = new Map<number, number[]>();
  due.forEach((d, i) => {
    const end = (Math.floor(d / 1000) + 1) * 1000;
    const b = buckets.get(end) ?? [];
    b.push(latencies[i]);
    buckets.set(end, b);
  });
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([atMs, l]) => ({ atMs, requests: l.length, p99Ms: round(percentile(l, 99), 2), maxMs: round(maxOf(l), 2) }));
}
