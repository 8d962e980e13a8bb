import { DrivePool, type DriveRequest } from './drive-pool';

/** A drive that ends when the test says so. */
function controllable() {
  const pending = new Map<string, () => void>();
  const started: string[] = [];
  const work = (req: DriveRequest) =>
    new Promise<void>((resolve) => {
      started.push(req.runId);
      pending.set(req.runId, resolve);
    });
  const finish = async (runId: string) => {
    pending.get(runId)?.();
    pending.delete(runId);
    await new Promise((r) => setImmediate(r));
  };
  return { work, finish, started };
}

describe('DrivePool', () => {
  it('runs at most `concurrency` drives and starts queued ones as slots free', async () => {
    const c = controllable();
    const pool = new DrivePool(2, c.work);
    expect(pool.submit({ runId: 'a' })).toBe('started');
    expect(pool.submit({ runId: 'b' })).toBe('started');
    expect(pool.submit({ runId: 'c' })).toBe('queued');
    expect({ active: pool.active, queued: pool.queued, free: pool.free }).toEqual({ active: 2, queued: 1, free: 0 });
    await c.finish('a');
    expect(c.started).toEqual(['a', 'b', 'c']);
    expect(pool.active).toBe(2);
  });

  it('never drives one run twice at once; a run asked for during its drive is driven again after it', async () => {
    const c = controllable();
    const pool = new DrivePool(4, c.work);
    pool.submit({ runId: 'a' });
    expect(pool.submit({ runId: 'a', runningSince: 't2' })).toBe('coalesced');
    expect(pool.submit({ runId: 'a' })).toBe('coalesced');
    expect(c.started).toEqual(['a']);
    await c.finish('a');
    expect(c.started).toEqual(['a', 'a']);
    await c.finish('a');
    expect(c.started).toEqual(['a', 'a']);
    expect(pool.active).toBe(0);
  });

  it('keeps one queued drive per run', () => {
    const c = controllable();
    const pool = new DrivePool(1, c.work);
    pool.submit({ runId: 'a' });
    pool.submit({ runId: 'b' });
    expect(pool.submit({ runId: 'b' })).toBe('coalesced');
    expect(pool.queued).toBe(1);
    expect(pool.holds('b')).toBe(true);
    expect(pool.holds('z')).toBe(false);
  });

  it('once closed, starts nothing, returns the queued drives, and reports idle when the active ones end', async () => {
    const c = controllable();
    const pool = new DrivePool(1, c.work);
    pool.submit({ runId: 'a' });
    pool.submit({ runId: 'b' });
    pool.submit({ runId: 'a' }); // would run again, but the pool closes
    expect(pool.close()).toEqual([{ runId: 'b' }]);
    expect(pool.submit({ runId: 'c' })).toBe('closed');
    expect(await pool.idle(10)).toBe(false);
    const idle = pool.idle(1000);
    await c.finish('a');
    expect(await idle).toBe(true);
    expect(c.started).toEqual(['a']);
  });

  it('keeps going when a drive throws', async () => {
    const pool = new DrivePool(1, async (req) => {
      if (req.runId === 'bad') throw new Error('boom');
    });
    pool.submit({ runId: 'bad' });
    pool.submit({ runId: 'good' });
    expect(await pool.idle(1000)).toBe(true);
  });
});
