import { ExecutionDataStore } from './store';

describe('ExecutionDataStore.newRef', () => {
  it('answers time-ordered references: each sorts after the ones made before it', () => {
    const refs = Array.from({ length: 2000 }, () => ExecutionDataStore.newRef());
    expect(new Set(refs).size).toBe(refs.length);
    expect([...refs].sort()).toEqual(refs);
    for (const r of refs) expect(r).toMatch(/^exd_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
