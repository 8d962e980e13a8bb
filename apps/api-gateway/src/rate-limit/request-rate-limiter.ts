import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/** One request's share of its key's budget. */
export interface RateDecision {
  readonly allowed: boolean;
  /** Requests allowed per window (the burst). */
  readonly limit: number;
  readonly remaining: number;
  /** Whole seconds until the window ends, at least 1: `Retry-After` when refused. */
  readonly resetSeconds: number;
}

/**
 * A fixed window per key, in this process's memory: at most `burst` requests per window of
 * `burst / perSecond` seconds, so the average is `perSecond` and a client may spend the window's
 * budget at once. Across a window edge up to twice the burst can pass in a short time; that is the
 * price of a counter per key instead of a log of timestamps. Memory is one counter per key active
 * in the current window (the library drops a key when its window ends).
 *
 * Being in memory, the limit is per gateway instance: N instances behind a balancer let a key
 * through up to N times the rate. That is the intended trade-off — no shared store on the hot path —
 * for a limit whose job is to stop a runaway client, not to meter it exactly.
 */
export class RequestRateLimiter {
  private readonly limiter: RateLimiterMemory;

  constructor(
    perSecond: number,
    private readonly burst: number,
  ) {
    this.limiter = new RateLimiterMemory({ points: burst, duration: burst / perSecond });
  }

  async take(key: string): Promise<RateDecision> {
    try {
      return this.decision(true, await this.limiter.consume(key));
    } catch (res) {
      if (res instanceof RateLimiterRes) return this.decision(false, res);
      throw res;
    }
  }

  private decision(allowed: boolean, res: RateLimiterRes): RateDecision {
    return {
      allowed,
      limit: this.burst,
      remaining: res.remainingPoints,
      resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
    };
  }
}

/**
 * The informative headers of the IETF draft "RateLimit header fields for HTTP" (the separate
 * `RateLimit-Limit` / `-Remaining` / `-Reset` form that common clients read).
 */
export function rateLimitHeaders(d: RateDecision): Record<string, string> {
  return {
    'RateLimit-Limit': String(d.limit),
    'RateLimit-Remaining': String(d.remaining),
    'RateLimit-Reset': String(d.resetSeconds),
  };
}
