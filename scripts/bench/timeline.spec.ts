import { latencySeconds } from './schedule';
import { joinTimeline, promSum, type TimelineSample } from './timeline';

describe('promSum', () => {
  const text = [
    '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind.',
    '# TYPE nodejs_gc_duration_seconds histogram',
    'nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 10',
    'nodejs_gc_duration_seconds_sum{kind="minor"} 0.25',
    'nodejs_gc_duration_seconds_sum{kind="major"} 0.5',
    'nodejs_gc_duration_seconds_count{kind="minor"} 12',
    'nodejs_eventloop_lag_max_seconds 0.0125',
    'nodejs_eventloop_lag_max_seconds_extra 9',
  ].join('\n');

  it('adds a metric over its labels and ignores metrics whose name only starts with it', () => {
    expect(promSum(text, 'nodejs_gc_duration_seconds_sum')).toBe(0.75);
    expect(promSum(text, 'nodejs_eventloop_lag_max_seconds')).toBe(0.0125);
  });

  it('is null for a metric the text does not hold', () => {
    expect(promSum(text, 'nodejs_heap_size_total_bytes')).toBeNull();
  });
});

describe('latencySeconds', () => {
  it('buckets each latency by the wall-clock second its request was due in, keyed by the second’s end', () => {
    const due = [10_000, 10_500, 10_999, 11_000, 12_400];
    const latencies = [1, 3, 2, 40, 5];
    expect(latencySeconds(due, latencies)).toEqual([
      { atMs: 11_000, requests: 3, p99Ms: 3, maxMs: 3 },
      { atMs: 12_000, requests: 1, p99Ms: 40, maxMs: 40 },
      { atMs: 13_000, requests: 1, p99Ms: 5, maxMs: 5 },
    ]);
  });
});

describe('joinTimeline', () => {
  const sample = (atMs: number, checkpointBuffers: number, user: number): TimelineSample => ({
    atMs,
    cpuPct: { user, system: 0, iowait: 0, steal: 0, idle: 100 - user },
    cpuPressureMs: null,
    ioPressureMs: null,
    appsCpuMs: { 'api-gateway': 100 },
    postgresCpuMs: 0,
    checkpoints: 0,
    checkpointBuffers,
    backendBufferWrites: 0,
    cleanerBufferWrites: 0,
    blocksRead: 0,
    blocksHit: 0,
    walKiB: 0,
    walFullPageImages: 0,
    dirtyKiB: 0,
    gatewayGcMs: null,
    gatewayEventLoopMaxMs: null,
  });

  it('sets each list second beside the nearest sample and compares the purge\'s slow seconds with its other seconds', () => {
    const second = (atMs: number, maxMs: number) => ({ atMs, requests: 100, p99Ms: maxMs, maxMs });
    const joined = joinTimeline(
      { before: [second(1_000, 5)], during: [second(2_000, 50), second(3_000, 6), second(9_000, 70)] },
      [sample(1_010, 0, 20), sample(2_004, 800, 90), sample(2_990, 0, 40)],
      10,
    );
    expect(joined.rows.map((r) => [r.phase, r.list.atMs, r.machine?.atMs ?? null])).toEqual([
      ['before', 1_000, 1_010],
      ['during', 2_000, 2_004],
      ['during', 3_000, 2_990],
      // No sample within a second of it: kept, with no machine figures.
      ['during', 9_000, null],
    ]);
    // The split is over the purge's seconds only: the second before it is in neither group.
    expect(joined.seconds).toEqual({ slow: 2, rest: 1 });
    expect(joined.slowMean).toMatchObject({ checkpointBuffers: 800, 'cpuPct.user': 90, 'appsCpuMs.api-gateway': 100 });
    expect(joined.restMean).toMatchObject({ checkpointBuffers: 0, 'cpuPct.user': 40 });
    // Figures with no value (null) are left out of the means rather than counted as zero.
    expect(joined.slowMean).not.toHaveProperty('gatewayGcMs');
  });
});
