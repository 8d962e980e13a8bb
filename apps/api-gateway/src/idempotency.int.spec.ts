import { waitFor } from '@flowruns/testing';
import { IdempotencySweeper } from './idempotency/idempotency-sweeper';
import { startTestGateway, type Reply, type TestGateway } from './gateway.spec-helpers';

/**
 * `Idempotency-Key` over HTTP: the gateway in-process, real Postgres (the keys live there), the
 * command service faked so that every call that would do the work is counted.
 */
describe('Idempotency-Key', () => {
  let gw: TestGateway;
  let keyA: string;
  let keyA2: string;
  let keyB: string;
  let n = 0;
  /** A fresh Idempotency-Key per test, so tests never see each other's keys. */
  const newKey = () => `key-${Date.now()}-${++n}`;
  const trigger = (key: string, idem: string | undefined, body: unknown = { customer: 7 }) =>
    gw.call('POST', '/api/v1/flows/flow_1/run', { key, body, headers: idem === undefined ? {} : { 'idempotency-key': idem } });
  const triggers = () => gw.fake.callsTo('POST', '/internal/flows/flow_1/runs').length;

  beforeAll(async () => {
    gw = await startTestGateway({ GATEWAY_IDEMPOTENCY_SWEEP_INTERVAL_MS: '0' });
    keyA = await gw.createKey('proj_a', 'key_a');
    keyA2 = await gw.createKey('proj_a', 'key_a2');
    keyB = await gw.createKey('proj_b', 'key_b');
  });

  afterAll(async () => {
    await gw?.close();
  });

  beforeEach(() => {
    gw.fake.received.length = 0;
    let runs = 0;
    gw.fake.reply = () => ({ status: 201, json: { id: `run_${++runs}`, status: 'RUNNING' } });
  });

  it('answers the same key with the same request with the first answer, without doing the work again', async () => {
    const idem = newKey();
    const first = await trigger(keyA, idem);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: 'run_1', status: 'RUNNING' });
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const again = await trigger(keyA, idem);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(triggers()).toBe(1);
  });

  it('replays the status and Location of a retry that created a new run', async () => {
    gw.fake.reply = () => ({ status: 201, json: { id: 'run_new', status: 'RUNNING' } });
    const idem = newKey();
    const body = { strategy: 'ON_LATEST_VERSION', projectId: 'proj_a' };
    const first = await gw.call('POST', '/api/v1/flow-runs/run_old/retry', { key: keyA, body, headers: { 'idempotency-key': idem } });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe('/api/v1/flow-runs/run_new');

    const again = await gw.call('POST', '/api/v1/flow-runs/run_old/retry', { key: keyA, body, headers: { 'idempotency-key': idem } });
    expect(again.status).toBe(201);
    expect(again.headers.get('location')).toBe('/api/v1/flow-runs/run_new');
    expect(again.body).toEqual(first.body);
    expect(gw.fake.callsTo('POST', '/internal/runs/run_old/retry')).toHaveLength(1);
  });

  it('treats bodies that differ only in key order as the same request', async () => {
    const idem = newKey();
    await trigger(keyA, idem, { a: 1, nested: { x: 1, y: [1, 2] } });
    const again = await trigger(keyA, idem, { nested: { y: [1, 2], x: 1 }, a: 1 });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(triggers()).toBe(1);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED for the same key with another body or another path', async () => {
    const idem = newKey();
    expect((await trigger(keyA, idem, { customer: 7 })).status).toBe(201);

    const otherBody = await trigger(keyA, idem, { customer: 8 });
    expect(otherBody.status).toBe(422);
    expect(otherBody.body).toEqual({
      statusCode: 422,
      code: 'IDEMPOTENCY_KEY_REUSED',
      params: { header: 'Idempotency-Key', message: expect.any(String) },
    });
    const otherPath = await gw.call('POST', '/api/v1/flows/flow_2/run', { key: keyA, body: { customer: 7 }, headers: { 'idempotency-key': idem } });
    expect(otherPath.status).toBe(422);
    expect(otherPath.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(gw.fake.received).toHaveLength(1);
  });

  it('answers 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After while the first request is in flight, then the first answer', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    gw.fake.reply = async (): Promise<Reply> => {
      await gate;
      return { status: 201, json: { id: 'run_slow' } };
    };
    const idem = newKey();
    const first = trigger(keyA, idem);
    await waitFor(() => triggers() === 1, { timeoutMs: 5000, what: 'the first request to reach the command service' });

    const during = await trigger(keyA, idem);
    expect(during.status).toBe(409);
    expect(during.headers.get('retry-after')).toBe('1');
    expect(during.body).toEqual({
      statusCode: 409,
      code: 'IDEMPOTENCY_KEY_IN_PROGRESS',
      params: { header: 'Idempotency-Key', message: expect.any(String) },
    });

    release();
    expect((await first).status).toBe(201);
    const after = await trigger(keyA, idem);
    expect(after.body).toEqual({ id: 'run_slow' });
    expect(triggers()).toBe(1);
  });

  it('does the work once for concurrent duplicates: every other answer is 409 or the same answer', async () => {
    const idem = newKey();
    const answers = await Promise.all(Array.from({ length: 8 }, () => trigger(keyA, idem)));
    expect(triggers()).toBe(1);
    const done = answers.filter((a) => a.status === 201);
    expect(done.length).toBeGreaterThanOrEqual(1);
    for (const a of done) expect(a.body).toEqual({ id: 'run_1', status: 'RUNNING' });
    for (const a of answers.filter((x) => x.status !== 201)) expect(a.body).toMatchObject({ statusCode: 409, code: 'IDEMPOTENCY_KEY_IN_PROGRESS' });
  });

  it('keeps a 4xx answer: the command service refusal is replayed without asking again', async () => {
    gw.fake.reply = () => ({ status: 404, json: { code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_1' } } });
    const idem = newKey();
    const first = await trigger(keyA, idem);
    expect(first.status).toBe(404);
    const again = await trigger(keyA, idem);
    expect(again.status).toBe(404);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(triggers()).toBe(1);
  });

  it('keeps a validation error of the body too (the same request would fail the same way)', async () => {
    const idem = newKey();
    const body = { strategy: 'NOPE', projectId: 'proj_a' };
    const first = await gw.call('POST', '/api/v1/flow-runs/run_1/retry', { key: keyA, body, headers: { 'idempotency-key': idem } });
    expect(first.status).toBe(400);
    const again = await gw.call('POST', '/api/v1/flow-runs/run_1/retry', { key: keyA, body, headers: { 'idempotency-key': idem } });
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it.each([
    ['a 5xx of the command service', { status: 500, json: { code: 'INTERNAL_ERROR', params: {} } } as Reply, 500],
    ['a dropped connection to the command service', 'destroy' as Reply, 503],
  ])('does not keep %s: the key is free for the retry', async (_what, failure, status) => {
    gw.fake.reply = () => failure;
    const idem = newKey();
    expect((await trigger(keyA, idem)).status).toBe(status);

    gw.fake.reply = () => ({ status: 201, json: { id: 'run_ok' } });
    const retry = await trigger(keyA, idem);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual({ id: 'run_ok' });
    expect(triggers()).toBe(2);
  });

  it("scopes keys by the API key's project: the same key in two projects is two requests", async () => {
    const idem = newKey();
    expect((await trigger(keyA, idem, { p: 'a' })).status).toBe(201);
    expect((await trigger(keyB, idem, { p: 'b' })).status).toBe(201);
    expect(triggers()).toBe(2);
    // Two API keys of one project share its keys.
    expect((await trigger(keyA2, idem, { p: 'a' })).headers.get('idempotent-replayed')).toBe('true');
    expect(triggers()).toBe(2);
  });

  it('scopes the resume routes (no API key) by their path', async () => {
    gw.fake.reply = () => ({ status: 200, json: { runId: 'run_p', stepName: 'approve', output: { ok: true } } });
    const idem = newKey();
    const resume = (requestId: string) =>
      gw.call('POST', `/api/v1/flow-runs/run_p/requests/${requestId}/sync`, { key: null, body: { ok: true }, headers: { 'idempotency-key': idem } });
    expect((await resume('req_1')).status).toBe(200);
    const again = await resume('req_1');
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await resume('req_2')).status).toBe(200);
    expect(gw.fake.callsTo('POST', '/internal/runs/run_p/resume')).toHaveLength(2);
  });

  it.each([
    ['empty', ''],
    ['longer than 255 characters', 'k'.repeat(256)],
    ['not ASCII', 'clé'],
  ])('answers 400 VALIDATION naming the header for a key that is %s, doing nothing', async (_what, idem) => {
    const res = await trigger(keyA, idem);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'Idempotency-Key' } });
    expect(gw.fake.received).toHaveLength(0);
  });

  it('accepts a key of 255 printable characters', async () => {
    expect((await trigger(keyA, `${newKey()}-${'~'.repeat(255)}`.slice(-255))).status).toBe(201);
  });

  it('ignores the header on GET, and a POST without it runs every time', async () => {
    gw.fake.reply = () => ({ status: 200, json: { data: [] } });
    const list = await gw.call('GET', '/api/v1/flows?projectId=proj_a', { key: keyA, headers: { 'idempotency-key': 'x'.repeat(300) } });
    expect(list.status).toBe(200);
    gw.fake.reply = () => ({ status: 201, json: { id: 'run_x' } });
    await trigger(keyA, undefined);
    await trigger(keyA, undefined);
    expect(triggers()).toBe(2);
  });

  it('answers 409 for a key claimed by a request still in flight elsewhere, and takes over a claim whose lock expired', async () => {
    const { createHash } = await import('node:crypto');
    const live = newKey();
    const dead = newKey();
    const hash = createHash('sha256').update('POST\n/api/v1/flows/flow_1/run\n{"customer":7}').digest();
    await gw.orm.em.fork().execute(
      `insert into idempotency_keys (scope, key, request_hash, owner, expires_at) values
         ('project:proj_a', ?, ?, 'another-gateway', now() + interval '1 minute'),
         ('project:proj_a', ?, ?, 'a-dead-gateway', now() - interval '1 second')`,
      [live, hash, dead, hash],
    );
    expect((await trigger(keyA, live)).status).toBe(409);
    expect((await trigger(keyA, dead)).status).toBe(201);
    expect(triggers()).toBe(1);
  });

  it('is shared by every gateway instance on the database', async () => {
    const other = await startTestGateway({ GATEWAY_IDEMPOTENCY_SWEEP_INTERVAL_MS: '0' }, gw.dbUrl);
    try {
      const idem = newKey();
      const first = await trigger(keyA, idem);
      const elsewhere = await other.call('POST', '/api/v1/flows/flow_1/run', { key: keyA, body: { customer: 7 }, headers: { 'idempotency-key': idem } });
      expect(elsewhere.status).toBe(201);
      expect(elsewhere.body).toEqual(first.body);
      expect(other.fake.received).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  describe('expiry', () => {
    let short: TestGateway;
    let key: string;

    beforeAll(async () => {
      short = await startTestGateway({ GATEWAY_IDEMPOTENCY_TTL_SECONDS: '1', GATEWAY_IDEMPOTENCY_SWEEP_INTERVAL_MS: '0' });
      key = await short.createKey('proj_a', 'key_short');
    });

    afterAll(async () => {
      await short?.close();
    });

    const rows = async () => Number(((await short.orm.em.fork().execute('select count(*) as n from idempotency_keys')) as { n: string }[])[0].n);

    it('does the work again once the TTL has passed', async () => {
      short.fake.reply = () => ({ status: 201, json: { id: `run_${short.fake.received.length}` } });
      const idem = newKey();
      const send = () => short.call('POST', '/api/v1/flows/flow_1/run', { key, body: { customer: 7 }, headers: { 'idempotency-key': idem } });
      expect((await send()).body).toEqual({ id: 'run_1' });

      const fresh = await waitFor(async () => {
        const res = await send();
        return res.headers.get('idempotent-replayed') === null && res;
      }, { timeoutMs: 10_000, intervalMs: 200, what: 'the key to expire' });
      expect(fresh.body).toEqual({ id: 'run_2' });
      expect(short.fake.received).toHaveLength(2);
    });

    it('sweeps expired keys in batches and leaves live ones', async () => {
      const em = short.orm.em.fork();
      await em.execute(
        `insert into idempotency_keys (scope, key, request_hash, owner, expires_at)
         select 'project:proj_sweep', 'k' || g, '\\x00'::bytea, 'o', now() - interval '1 second' from generate_series(1, 2500) g`,
      );
      await em.execute(
        `insert into idempotency_keys (scope, key, request_hash, owner, expires_at)
         values ('project:proj_sweep', 'live', '\\x00'::bytea, 'o', now() + interval '1 hour')`,
      );
      const sweeper = short.app.get(IdempotencySweeper);
      // One sweep takes several batches of 1000; keys of the earlier test expire within a second.
      expect(await sweeper.sweep()).toBeGreaterThanOrEqual(2500);
      await waitFor(async () => (await sweeper.sweep(), (await rows()) === 1), { timeoutMs: 10_000, intervalMs: 200, what: 'every expired key swept' });
      expect(await em.execute('select key from idempotency_keys')).toEqual([{ key: 'live' }]);
    });
  });
});
