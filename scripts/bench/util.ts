// The test helpers' own: built with the apps (dist/libs/testing) for the harness.
export { freePort, uniqueName, waitFor } from '@flowruns/testing';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const round = (n: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

/** Percentile of an unsorted sample (nearest rank). */
/** The largest value (-Infinity for none), in a loop: `Math.max(...values)` overflows the stack past ~100 000 values. */
export function maxOf(values: Iterable<number>): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}
