import { Client } from 'pg';
import { benchEnv } from './system';
import { percentile, round } from './util';

/**
 * How fast this machine is at the things the figures are made of, measured before each run: the
 * same "AMD EPYC" × 2 has given the same code's bulk retry in 13.9 s one day and 38–47 s another
 * (session 20), with plain JavaScript (a recursive loop) as fast as ever and allocation, memory
 * and Postgres's inserts two to three times slower. A figure is then read against the machine it
 * was measured on: a result whose calibration differs from another's is not a before/after.
 *
 * - `computeMs`: a recursive Fibonacci of 30 (calls, arithmetic; no allocation), the median of 5.
 * - `allocNs`: one zero-filled 512-byte `Buffer.alloc` (kafkajs allocates several per message).
 * - `memoryReadNs`: one dependent read at a random place in 128 MiB (cache and TLB misses).
 * - `pgInsertUs`: one row of 100 000 inserted by a statement into a temporary table with a text
 *   primary key of random UUIDs (Postgres's CPU and memory on the write path).
 */
export interface Calibration {
  readonly computeMs: number;
  readonly allocNs: number;
  readonly memoryReadNs: number;
  readonly pgInsertUs: number;
}

const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));

/** The median over `rounds` of `work`'s time in ms. */
function medianMs(rounds: number, work: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    work();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return percentile(times, 50);
}

function memoryReadNs(): number {
  const n = 1 << 25; // 32 Mi int32 = 128 MiB
  const next = new Int32Array(n);
  // One random cycle through the array (Sattolo's shuffle): each read depends on the one before.
  for (let i = 0; i < n; i++) next[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * i);
    const t = next[i];
    next[i] = next[j];
    next[j] = t;
  }
  const reads = 2_000_000;
  let at = 0;
  const ms = medianMs(3, () => {
    for (let i = 0; i < reads; i++) at = next[at];
  });
  if (at < 0) throw new Error('unreachable');
  return (ms * 1e6) / reads;
}

async function pgInsertUs(): Promise<number> {
  const pg = new Client({ connectionString: benchEnv().serverUrl });
  await pg.connect();
  try {
    const rows = 100_000;
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      await pg.query('create temp table calibration (id text primary key, n int)');
      const t = process.hrtime.bigint();
      await pg.query('insert into calibration select gen_random_uuid()::text, i from generate_series(1, $1::int) i', [rows]);
      times.push(Number(process.hrtime.bigint() - t) / 1e3 / rows);
      await pg.query('drop table calibration');
    }
    return percentile(times, 50);
  } finally {
    await pg.end();
  }
}

export async function calibrate(): Promise<Calibration> {
  const allocs = 200_000;
  let kept: Buffer | null = null;
  const allocMs = medianMs(3, () => {
    for (let i = 0; i < allocs; i++) kept = Buffer.alloc(512);
  });
  if (!kept) throw new Error('unreachable');
  return {
    computeMs: round(medianMs(5, () => fib(30)), 1),
    allocNs: round((allocMs * 1e6) / allocs, 0),
    memoryReadNs: round(memoryReadNs(), 0),
    pgInsertUs: round(await pgInsertUs(), 2),
  };
}
