import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { INTERNAL_TOKEN_HEADER, parseEnvelope } from '@flowruns/contracts';
import { createKafka } from '@flowruns/messaging';
import { createTestDatabase, TcpProxy, uniqueName, waitFor } from '@flowruns/testing';
import { freePort, startApp, type RunningApp } from './harness';

const root = path.resolve(__dirname, '../..');

/**
 * Readiness follows the dependencies: false while Postgres or Kafka is unreachable, true again
 * once they are back, without a restart. Postgres is taken away through a TCP proxy; Kafka is a
 * broker of this test's own (its own ports and data), stopped and started again.
 */
describe('health follows Postgres and Kafka', () => {
  let db: { url: string; drop: () => Promise<void> };
  let pgProxy: TcpProxy;
  let kafkaEnv: Record<string, string>;
  const apps: RunningApp[] = [];

  const kafka = (cmd: 'start' | 'stop' | 'reset') =>
    execFileSync('bash', [path.join(root, 'infra/kafka/kafka.sh'), cmd], {
      env: { ...process.env, ...kafkaEnv },
      stdio: 'pipe',
      timeout: 120000,
    });

  beforeAll(async () => {
    db = await createTestDatabase('health');
    const u = new URL(db.url);
    pgProxy = new TcpProxy(u.hostname, Number(u.port || 5432));
    await pgProxy.start();
    // Same cached jars as the main broker; its own ports, hence its own data and run folders.
    kafkaEnv = {
      KAFKA_PORT: String(await freePort()),
      KAFKA_CONTROLLER_PORT: String(await freePort()),
      KAFKA_BROKERS: '',
      KAFKA_TOPIC: '',
    };
    kafkaEnv.KAFKA_BROKERS = `127.0.0.1:${kafkaEnv.KAFKA_PORT}`;
    kafka('start');
  }, 180000);

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    if (kafkaEnv) kafka('reset'); // stops it and deletes this port's data
    await pgProxy?.cut();
    await db?.drop();
  });

  const readiness = async (app: RunningApp) => (await fetch(`${app.url}/health/ready`)).status;

  it.each(['command-service', 'retention'])('%s: ready goes false without Postgres or Kafka and back to true, without a restart', async (name) => {
    const proxied = new URL(db.url);
    proxied.port = String(pgProxy.port);
    const app = await startApp(name, {
      DATABASE_URL: proxied.toString(),
      KAFKA_BROKERS: `127.0.0.1:${kafkaEnv.KAFKA_PORT}`,
      KAFKA_TOPIC: `health-${name}`,
      INTERNAL_API_TOKEN: 'health-test-token-0123456789',
    });
    apps.push(app);
    expect(await readiness(app)).toBe(200);
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);

    await pgProxy.cut();
    await waitFor(async () => (await readiness(app)) === 503, { what: `${name} not ready without Postgres`, timeoutMs: 15000 });
    const body = (await (await fetch(`${app.url}/health/ready`)).json()) as { details: Record<string, { status: string }> };
    expect(body.details.postgres.status).toBe('down');
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    await pgProxy.restore();
    await waitFor(async () => (await readiness(app)) === 200, { what: `${name} ready again with Postgres`, timeoutMs: 30000 });

    kafka('stop');
    await waitFor(async () => (await readiness(app)) === 503, { what: `${name} not ready without Kafka`, timeoutMs: 30000 });
    kafka('start');
    await waitFor(async () => (await readiness(app)) === 200, { what: `${name} ready again with Kafka`, timeoutMs: 60000 });
    expect(app.process.exitCode).toBeNull();
  });

  it('command-service started while Kafka is down: accepts runs, then creates its topic and publishes them once Kafka is up', async () => {
    const own = await createTestDatabase('health_topics');
    const topic = uniqueName('health-late-broker');
    const token = 'health-test-token-0123456789';
    kafka('stop');
    let app: RunningApp | undefined;
    try {
      const running = await startApp(
        'command-service',
        { DATABASE_URL: own.url, KAFKA_BROKERS: `127.0.0.1:${kafkaEnv.KAFKA_PORT}`, KAFKA_TOPIC: topic, INTERNAL_API_TOKEN: token },
        { until: 'live' },
      );
      app = running;
      apps.push(running);
      const { url } = running;
      expect(await readiness(running)).toBe(503);
      const call = async (p: string, body: unknown) => {
        const r = await fetch(`${url}${p}`, { method: 'POST', headers: { [INTERNAL_TOKEN_HEADER]: token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        expect(r.status).toBe(201);
        return (await r.json()) as { id: string };
      };
      const projectId = `p_${randomUUID()}`;
      const flow = await call('/internal/flows', { projectId, displayName: 'late broker', steps: [{ name: 'a', type: 'delay', settings: { ms: 1 } }] });
      const run = await call(`/internal/flows/${flow.id}/runs`, { projectId, payload: { x: 1 } });

      kafka('start');
      const client = createKafka({ brokers: [`127.0.0.1:${kafkaEnv.KAFKA_PORT}`], clientId: 'health-late-broker' });
      const admin = client.admin();
      await admin.connect();
      const consumer = client.consumer({ groupId: uniqueName('health-late-broker') });
      try {
        // The command service creates the topic (nothing else here does), then the relay publishes.
        await waitFor(async () => (await admin.listTopics()).includes(topic), { what: 'the topic created by the command service', timeoutMs: 60000 });
        const seen = new Set<string>();
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            const p = parseEnvelope(message.value);
            if (p.kind === 'known' && p.envelope.subject === run.id) seen.add(p.envelope.type);
          },
        });
        await waitFor(() => seen.has('flowrun.triggered.v1'), { what: 'the run accepted while Kafka was down, on the topic', timeoutMs: 60000 });
        await waitFor(async () => (await readiness(running)) === 200, { what: 'command-service ready with Kafka', timeoutMs: 60000 });
      } finally {
        await consumer.disconnect();
        await admin.disconnect();
      }
    } finally {
      await app?.stop();
      await own.drop();
    }
  });
});
