import { maxOf } from './util';

describe('maxOf', () => {
  it('answers the largest of more values than a spread into Math.max can take', () => {
    // A permutation of 0 … 299 999 (7 919 is prime to 300 000), its largest value mid-way.
    const values = Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 300_000);
    expect(() => Math.max(...values)).toThrow(RangeError);
    expect(values.indexOf(299_999)).toBeGreaterThan(0);
    expect(values.indexOf(299_999)).toBeLessThan(values.length - 1);
    expect(maxOf(values)).toBe(299_999);
    expect(maxOf(new Map([['a', -3], ['b', -1]]).values())).toBe(-1);
    expect(maxOf([])).toBe(-Infinity);
  });
});
