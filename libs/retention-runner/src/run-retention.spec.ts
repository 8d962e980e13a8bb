import type { PurgeBatchOutcomeResult, PurgeCursorInput } from '@flowruns/contracts';
import type { RetentionClient } from './retention-client';
import { runRetentionPass } from './run-retention';

/**
 * A stand-in for the command service's purge endpoint over `expired` runs: each call takes up to
 * `limit` of what is left, answering after the test lets it (so calls overlap); `failOn` makes that
 * call fail instead. Each answer's `last` names its call (`call-<n>`), and `afters` records what
 * each call was sent as `after`.
 */
function purgeEndpoint(expired: number, opts: { failOn?: number; clock?: VirtualClock; callMs?: number } = {}) {
  let left = expired;
  const startedAt: number[] = [];
  let calls = 0;
  let open = 0;
  let maxOpen = 0;
  let callsAfterFailure = 0;
  let failedAt: number | null = null;
  const afters: (string | null)[] = [];
  const client = {
    purgeBatch: async (_window: unknown, limit: number, after: PurgeCursorInput | null = null): Promise<PurgeBatchOutcomeResult> => {
      const n = ++calls;
      afters.push(after?.projectId ?? null);
      if (failedAt !== null) callsAfterFailure++;
      open++;
      maxOpen = Math.max(maxOpen, open);
      if (opts.clock) startedAt.push(opts.clock.now());
      try {
        if (opts.clock && opts.callMs) await opts.clock.sleep(opts.callMs);
        // Let the other lanes start their calls before this one answers.
        await new Promise((resolve) => setImmediate(resolve));
        if (n === opts.failOn) {
          failedAt = n;
          throw new Error('command service unavailable');
        }
        const runs = Math.min(limit, left);
        left -= runs;
        return { runs, records: runs * 4, bytes: runs * 100, last: runs > 0 ? { projectId: `call-${n}` } : null };
      } finally {
        open--;
      }
    },
  } as unknown as RetentionClient;
  return { client, startedAt, afters, stats: () => ({ calls, maxOpen, left, open, callsAfterFailure }) };
}

/**
 * Time that passes only when every caller waits: `drive` runs the code under test until it is
 * stuck on sleeps, then moves the clock to the earliest one and wakes it (a discrete-event clock).
 */
class VirtualClock {
  private t = 0;
  private timers: { at: number; wake: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((wake) => this.timers.push({ at: this.t + ms, wake }));
  }
  async drive<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let turns = 0; !settled; turns++) {
      if (turns > 1_000) throw new Error('the pass never finished');
      // Several turns of the event loop: code woken last turn may itself wait a turn before it sleeps.
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
      if (settled || this.timers.length === 0) continue;
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers.shift()!;
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
    return work;
  }
}

const window = { now: new Date('2026-11-29T00:00:00Z'), defaultDays: 30 };

describe('runRetentionPass', () => {
  it('one lane: batches until one comes back short, adding up what each purged', async () => {
    const { client, stats } = purgeEndpoint(25);
    const r = await runRetentionPass(client, { window, batchSize: 10, pauseMs: 0 });
    expect(r).toEqual({ runs: 25, records: 100, bytes: 2500, batches: 3, complete: true });
    expect(stats().maxOpen).toBe(1);
  });

  it('each batch starts after where its lane\'s last one ended; the first of each lane at the head', async () => {
    const one = purgeEndpoint(25);
    await runRetentionPass(one.client, { window, batchSize: 10, pauseMs: 0 });
    expect(one.afters).toEqual([null, 'call-1', 'call-2']);

    // Two lanes: each carries its own position (a batch of one lane never continues the other's).
    const two = purgeEndpoint(45);
    await runRetentionPass(two.client, { window, batchSize: 10, pauseMs: 0, concurrency: 2 });
    expect(two.afters.slice(0, 2)).toEqual([null, null]);
    // Calls 1 and 2 overlap, then each lane continues from its own: lane of call 1 sends call-1, the other call-2.
    expect(two.afters.slice(2, 4).sort()).toEqual(['call-1', 'call-2']);
    expect(two.stats().left).toBe(0);
  });

  it('several lanes: that many batches in flight, every expired run purged once, complete when all came back short', async () => {
    const { client, stats } = purgeEndpoint(95);
    const r = await runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, concurrency: 3 });
    expect(r.runs).toBe(95);
    expect(r.records).toBe(380);
    expect(r.complete).toBe(true);
    expect(stats()).toMatchObject({ maxOpen: 3, left: 0, open: 0 });
  });

  it('a failed batch fails the pass once the batches in hand have ended, and no lane starts another', async () => {
    const { client, stats } = purgeEndpoint(1000, { failOn: 4 });
    await expect(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, concurrency: 3 })).rejects.toThrow('command service unavailable');
    expect(stats().open).toBe(0);
    // The two other lanes were mid-call when the fourth call failed; neither started one after.
    expect(stats().callsAfterFailure).toBe(0);
    expect(stats().left).toBeGreaterThan(900);
  });

  it('stops when asked, between batches, and says the pass is not complete', async () => {
    const { client } = purgeEndpoint(1000);
    let batches = 0;
    const r = await runRetentionPass(client, {
      window,
      batchSize: 10,
      pauseMs: 0,
      concurrency: 2,
      shouldStop: () => batches >= 4,
      onBatch: () => batches++,
    });
    expect(r.complete).toBe(false);
    expect(r.runs).toBe(r.batches * 10);
    expect(r.batches).toBeGreaterThanOrEqual(4);
    expect(r.batches).toBeLessThanOrEqual(5);
  });

  it('with a cap on runs per second, batches start one slot apart (a batch\'s worth of runs at the cap)', async () => {
    const clock = new VirtualClock();
    const { client, startedAt } = purgeEndpoint(45, { clock });
    const r = await clock.drive(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxRunsPerS: 100, clock }));
    expect(r.runs).toBe(45);
    expect(startedAt).toEqual([0, 100, 200, 300, 400]);
  });

  it('the schedule is shared by the lanes: more lanes do not raise the rate', async () => {
    const clock = new VirtualClock();
    const { client, startedAt, stats } = purgeEndpoint(200, { clock, callMs: 150 });
    const r = await clock.drive(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, concurrency: 3, maxRunsPerS: 100, clock }));
    expect(r.runs).toBe(200);
    expect(stats().maxOpen).toBe(2);
    const sorted = [...startedAt].sort((a, b) => a - b);
    expect(sorted.slice(0, 5)).toEqual([0, 100, 200, 300, 400]);
    sorted.slice(1).forEach((t, i) => expect(t - sorted[i]).toBeGreaterThanOrEqual(100));
  });

  it('batches slower than the cap go back to back, with no burst to catch up', async () => {
    const clock = new VirtualClock();
    const { client, startedAt } = purgeEndpoint(35, { clock, callMs: 250 });
    await clock.drive(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxRunsPerS: 100, clock }));
    expect(startedAt).toEqual([0, 250, 500, 750]);
  });

  it('with a busy share, a lane rests after each batch in proportion to how long it took', async () => {
    const clock = new VirtualClock();
    const { client, startedAt } = purgeEndpoint(35, { clock, callMs: 100 });
    // Busy a quarter of the time: 100 ms of batch, 300 ms of rest.
    const r = await clock.drive(runRetentionPass(client, { window, batchSize: 10, pauseMs: 10, maxBusyShare: 0.25, clock }));
    expect(r.runs).toBe(35);
    expect(startedAt).toEqual([0, 400, 800, 1200]);
  });

  it('the longer of the busy share\'s rest and the fixed pause; under a cap, the later of the rest and the slot', async () => {
    const clock = new VirtualClock();
    const fast = purgeEndpoint(25, { clock, callMs: 10 });
    // 10 ms of batch at half the time: a 10-ms rest, shorter than the 50-ms pause.
    await clock.drive(runRetentionPass(fast.client, { window, batchSize: 10, pauseMs: 50, maxBusyShare: 0.5, clock }));
    expect(fast.startedAt).toEqual([0, 60, 120]);

    const capped = new VirtualClock();
    const slow = purgeEndpoint(35, { clock: capped, callMs: 150 });
    // Slots 100 ms apart; a 150-ms batch at half the time rests 150 ms: the rest decides.
    await capped.drive(runRetentionPass(slow.client, { window, batchSize: 10, pauseMs: 0, maxRunsPerS: 100, maxBusyShare: 0.5, clock: capped }));
    expect(slow.startedAt).toEqual([0, 300, 600, 900]);
  });

  it('a stop asked during a long rest ends the pass within a step', async () => {
    const clock = new VirtualClock();
    const { client, startedAt } = purgeEndpoint(1000, { clock, callMs: 1000 });
    // A 1-s batch at a tenth of the time: a 9-s rest.
    const r = await clock.drive(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxBusyShare: 0.1, clock, shouldStop: () => clock.now() >= 2000 }));
    expect(startedAt).toEqual([0]);
    expect(r).toMatchObject({ runs: 10, complete: false });
    expect(clock.now()).toBeLessThanOrEqual(2250);
  });

  it('refuses a busy share outside (0, 1]', async () => {
    const { client } = purgeEndpoint(10);
    await expect(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxBusyShare: 0 })).rejects.toThrow(/maxBusyShare/);
    await expect(runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxBusyShare: 1.5 })).rejects.toThrow(/maxBusyShare/);
  });

  it('a stop asked while a lane waits for a far slot ends the pass within a step, not at the slot', async () => {
    const clock = new VirtualClock();
    const { client, startedAt } = purgeEndpoint(1000, { clock });
    // One run a second in batches of 10: the second batch's slot is 10 s away.
    const r = await clock.drive(
      runRetentionPass(client, { window, batchSize: 10, pauseMs: 0, maxRunsPerS: 1, clock, shouldStop: () => clock.now() >= 1000 }),
    );
    expect(startedAt).toEqual([0]);
    expect(r).toMatchObject({ runs: 10, complete: false });
    expect(clock.now()).toBeLessThanOrEqual(1250);
  });
});
