import { forEachBounded } from './bounded';

/** A call that finishes when the test says so. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('forEachBounded', () => {
  it('never has more than `concurrency` calls in flight, and calls every item once', async () => {
    let inFlight = 0;
    let max = 0;
    const seen: number[] = [];
    await forEachBounded(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise((r) => setImmediate(r));
      seen.push(i);
      inFlight--;
    });
    expect(max).toBe(4);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('pulls from an async source only when a slot is free', async () => {
    const pulled: number[] = [];
    const gates = Array.from({ length: 6 }, gate);
    async function* source() {
      for (let i = 0; i < 6; i++) {
        pulled.push(i);
        yield i;
      }
    }
    const done = forEachBounded(source(), 2, (i) => gates[i].opened);
    await new Promise((r) => setImmediate(r));
    expect(pulled).toEqual([0, 1]);
    gates[0].open();
    await new Promise((r) => setImmediate(r));
    expect(pulled).toEqual([0, 1, 2]);
    gates.forEach((g) => g.open());
    await done;
    expect(pulled).toHaveLength(6);
  });

  it('stops starting calls after the first failure, lets running ones finish, and rethrows it', async () => {
    const started: number[] = [];
    let finished = 0;
    let cleaned = false;
    async function* source() {
      try {
        for (let i = 0; i < 100; i++) yield i;
      } finally {
        cleaned = true;
      }
    }
    await expect(
      forEachBounded(source(), 3, async (i) => {
        started.push(i);
        if (i === 1) throw new Error('boom');
        await new Promise((r) => setImmediate(r));
        finished++;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([0, 1, 2]);
    expect(finished).toBe(2);
    expect(cleaned).toBe(true);
  });

  it('rejects with a failure of the source itself', async () => {
    async function* source() {
      yield 1;
      throw new Error('database down');
    }
    await expect(forEachBounded(source(), 2, async () => undefined)).rejects.toThrow('database down');
  });
});
