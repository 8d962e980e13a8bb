import { RequestRateLimiter, rateLimitHeaders } from './request-rate-limiter';

describe('RequestRateLimiter', () => {
  it('allows the burst, then refuses with a whole number of seconds to wait', async () => {
    // 3 per window of 30 s: the window cannot end during the test.
    const limiter = new RequestRateLimiter(0.1, 3);
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.take('key:a'));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0]);
    const refused = decisions[3];
    expect(Number.isInteger(refused.resetSeconds)).toBe(true);
    expect(refused.resetSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.resetSeconds).toBeLessThanOrEqual(30);
  });

  it('keeps a budget per key', async () => {
    const limiter = new RequestRateLimiter(0.1, 1);
    expect((await limiter.take('key:a')).allowed).toBe(true);
    expect((await limiter.take('key:a')).allowed).toBe(false);
    expect((await limiter.take('key:b')).allowed).toBe(true);
  });

  it('never says less than a second, even for a window of a millisecond', async () => {
    const limiter = new RequestRateLimiter(1000, 1);
    expect((await limiter.take('key:a')).resetSeconds).toBe(1);
  });
});

describe('rateLimitHeaders', () => {
  it('names the limit, what is left and when the window ends', () => {
    expect(rateLimitHeaders({ allowed: true, limit: 2000, remaining: 1999, resetSeconds: 2 })).toEqual({
      'RateLimit-Limit': '2000',
      'RateLimit-Remaining': '1999',
      'RateLimit-Reset': '2',
    });
  });
});
