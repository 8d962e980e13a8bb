import { waitFor } from '@flowruns/testing';
import { startTestGateway, type TestGateway } from './gateway.spec-helpers';

/** Per-key rate limiting over HTTP: the gateway in-process, real Postgres, the command service faked. */
describe('rate limiting', () => {
  // 3 requests per window of 3 s: small enough to exhaust, a window short enough to wait out.
  let limited: TestGateway;
  let keyA: string;
  let keyB: string;
  let keyC: string;
  const listFlows = (gw: TestGateway, key: string) => gw.call('GET', '/api/v1/flows?projectId=proj_a', { key });

  beforeAll(async () => {
    limited = await startTestGateway({ GATEWAY_RATE_LIMIT_PER_SECOND: '1', GATEWAY_RATE_LIMIT_BURST: '3' });
    keyA = await limited.createKey('proj_a', 'key_a');
    keyB = await limited.createKey('proj_a', 'key_b');
    keyC = await limited.createKey('proj_a', 'key_c');
    limited.fake.reply = () => ({ status: 200, json: { data: [] } });
  });

  afterAll(async () => {
    await limited?.close();
  });

  it('answers 429 RATE_LIMITED with Retry-After past the burst, with RateLimit-* headers throughout, and not for another key', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await listFlows(limited, keyA));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => a.headers.get('ratelimit-limit'))).toEqual(['3', '3', '3']);
    expect(answers.map((a) => a.headers.get('ratelimit-remaining'))).toEqual(['2', '1', '0']);
    expect(Number(answers[0].headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);

    const refused = await listFlows(limited, keyA);
    expect(refused.status).toBe(429);
    const retryAfter = refused.headers.get('retry-after');
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    expect(Number(retryAfter)).toBeLessThanOrEqual(3);
    expect(refused.body).toEqual({
      statusCode: 429,
      code: 'RATE_LIMITED',
      params: { retryAfterSeconds: Number(retryAfter), message: expect.any(String) },
    });

    // Another key of the same project has a budget of its own.
    expect((await listFlows(limited, keyB)).status).toBe(200);

    // Once the window is over, the key may send again.
    await waitFor(async () => (await listFlows(limited, keyA)).status === 200, { timeoutMs: 10_000, intervalMs: 250, what: 'a new window' });
  });

  it('never limits health and metrics', async () => {
    for (let i = 0; i < 10; i++) {
      const live = await limited.call('GET', '/health/live', { key: null });
      expect(live.status).toBe(200);
      expect(live.headers.get('ratelimit-limit')).toBeNull();
    }
    const metrics = await fetch(`${limited.base}/metrics`);
    expect(metrics.status).toBe(200);
  });

  it('limits the resume routes, which take no API key, per client address', async () => {
    limited.fake.reply = () => ({ status: 200, json: { runId: 'run_p', stepName: 'approve', output: {} } });
    const resume = () => limited.call('POST', '/api/v1/flow-runs/run_p/requests/req_1/sync', { key: null, body: {} });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await resume()).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    limited.fake.reply = () => ({ status: 200, json: { data: [] } });
  });

  it('refuses before the Idempotency-Key is claimed: the key still does the work once the window is over', async () => {
    limited.fake.reply = (r) => (r.method === 'GET' ? { status: 200, json: { data: [] } } : { status: 201, json: { id: 'run_1' } });
    const trigger = () =>
      limited.call('POST', '/api/v1/flows/flow_1/run', { key: keyC, body: {}, headers: { 'idempotency-key': 'rate-limited-key' } });
    for (let i = 0; i < 3; i++) await listFlows(limited, keyC);
    expect((await trigger()).status).toBe(429);
    expect(limited.fake.callsTo('POST', '/internal/flows/flow_1/runs')).toHaveLength(0);
    expect(await limited.orm.em.fork().execute(`select key from idempotency_keys where key = 'rate-limited-key'`)).toEqual([]);

    const done = await waitFor(async () => {
      const res = await trigger();
      return res.status !== 429 && res;
    }, { timeoutMs: 10_000, intervalMs: 250, what: 'a new window' });
    expect(done.status).toBe(201);
    expect(done.headers.get('idempotent-replayed')).toBeNull();
    expect(limited.fake.callsTo('POST', '/internal/flows/flow_1/runs')).toHaveLength(1);
  });

  it('is off with GATEWAY_RATE_LIMIT_PER_SECOND=0', async () => {
    const off = await startTestGateway({ GATEWAY_RATE_LIMIT_PER_SECOND: '0', GATEWAY_RATE_LIMIT_BURST: '1' }, limited.dbUrl);
    try {
      off.fake.reply = () => ({ status: 200, json: { data: [] } });
      for (let i = 0; i < 20; i++) {
        const res = await listFlows(off, keyA);
        expect(res.status).toBe(200);
        expect(res.headers.get('ratelimit-limit')).toBeNull();
      }
    } finally {
      await off.close();
    }
  });

  it('does not get in the way of a busy client with the defaults (hundreds of requests per second per key)', async () => {
    const busy = await startTestGateway({}, limited.dbUrl);
    try {
      busy.fake.reply = () => ({ status: 200, json: { data: [] } });
      const statuses: number[] = [];
      // 600 requests, 50 at a time.
      for (let i = 0; i < 12; i++) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => listFlows(busy, keyA)));
        statuses.push(...batch.map((r) => r.status));
      }
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    } finally {
      await busy.close();
    }
  });
});
