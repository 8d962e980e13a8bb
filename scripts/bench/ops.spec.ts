import type { LoadResult } from './load';
import { pooledPasses } from './ops';

const load = (latenciesMs: number[]): LoadResult => ({
  p50Ms: 0,
  p99Ms: Math.max(...latenciesMs),
  maxMs: Math.max(...latenciesMs),
  rps: 200,
  requests: latenciesMs.length,
  errors: 0,
  targetRps: 200,
  connections: 8,
  durationS: 1,
  tool: 'test',
  latenciesMs,
});

const pass = (before: number[], during: number[], purgeSeconds: number) =>
  ({
    purgeSeconds,
    runsPerS: 0,
    executionDataLeft: 0,
    listBefore: load(before),
    listDuring: [load(during)],
    listDuringWorstP99Ms: Math.max(...during),
    viewsCaughtUpS: purgeSeconds,
    cpuMsPerRun: undefined,
    memoryMiB: {},
  }) as unknown as Parameters<typeof pooledPasses>[0][number];

describe('pooledPasses (the purge at the target rate, several passes as one figure)', () => {
  it('takes the p99s over every pass\'s requests together, not the worst or the mean of the passes', () => {
    // 100 requests a side per pass; one or two slow requests in each "during" window.
    const fast = (n: number, ms: number) => Array.from({ length: n }, () => ms);
    const passes = [
      pass([...fast(99, 1), 3], [...fast(98, 2), 40, 40], 5),
      pass(fast(100, 1), [...fast(99, 2), 30], 5),
      pass(fast(100, 1), [...fast(99, 2), 25], 5),
    ];
    const r = pooledPasses(passes, 100_000);
    // 300 requests a side: the p99 is the 297th of 300 (nearest rank), the slowest four's fastest;
    // no single pass's p99 (its 99th of 100) is above 2 ms but the first one's.
    expect(r.requests).toEqual({ before: 300, during: 300 });
    expect(r.listBeforeP99Ms).toBe(1);
    expect(r.listDuringP99Ms).toBe(25);
    expect(r.listDuringP50Ms).toBe(2);
    expect(r.runsPerS).toBe(20_000);
  });

  it('keeps each pass\'s own figures but not its latencies, and refuses a pass that kept none', () => {
    const r = pooledPasses([pass([1, 2], [3, 4], 1)], 10);
    expect(r.eachPass).toHaveLength(1);
    expect(r.eachPass[0].listBefore.latenciesMs).toBeUndefined();
    expect(r.eachPass[0].listDuring[0].latenciesMs).toBeUndefined();
    expect(r.eachPass[0].listBefore.requests).toBe(2);
    const bare = pass([1], [1], 1);
    const { latenciesMs: _, ...withoutLatencies } = bare.listBefore;
    expect(() => pooledPasses([{ ...bare, listBefore: withoutLatencies }], 10)).toThrow(/kept no latencies/);
  });
});
