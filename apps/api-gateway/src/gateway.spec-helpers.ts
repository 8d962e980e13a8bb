import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyStore } from '@flowruns/access';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { observeHttp } from '@flowruns/platform';
import { createTestDatabase, testEnv } from '@flowruns/testing';
import { loadGatewayConfig } from './config';
import { configureGateway } from './configure';
import { gatewayRootModule } from './gateway.module';

/**
 * The gateway in-process over HTTP against a fresh migrated Postgres database, with the command
 * service (outside the gateway's boundary) played by a local HTTP server that records every call.
 * Shared by every in-process gateway spec.
 */

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** An answer (JSON, or `text` as HTML), a connection cut, or none at all until `close`. */
export type Reply = { status: number; json?: unknown; text?: string } | 'hang' | 'destroy';

/**
 * The command service as a local HTTP server: records each call, answers with `reply`. A batch of
 * triggers (`POST /internal/triggers`, as the gateway sends them) is recorded and answered as the
 * single triggers it carries (`POST /internal/flows/:flowId/runs`, each with its own traceparent),
 * so specs see the calls the way the gateway's clients made them: a 2xx becomes the item's `ok`, a
 * client error with an envelope its `error`, and any other reply (an outage, nonsense, a hang) is
 * the answer to the whole batch.
 */
export class FakeCommandService {
  readonly received: Received[] = [];
  /** Calls that carried a batch of triggers (`received` holds the triggers themselves). */
  triggerBatches = 0;
  reply: (r: Received) => Reply | Promise<Reply> = () => ({ status: 201, json: { ok: true } });
  /** Requests received and not answered yet, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  private server!: Server;
  private readonly open = new Set<ServerResponse>();
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/health/live') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        const raw = Buffer.concat(chunks).toString();
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : undefined };
        this.open.add(res);
        this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
        const answer = r.method === 'POST' && r.url === '/internal/triggers' ? this.unbatch(r) : (this.received.push(r), this.reply(r));
        void Promise.resolve(answer).then((reply) => {
          if (reply === 'hang') return;
          this.open.delete(res);
          this.inFlight--;
          if (reply === 'destroy') return void req.socket.destroy();
          if (reply.text !== undefined) return void res.writeHead(reply.status, { 'content-type': 'text/html' }).end(reply.text);
          res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.json));
        });
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A trigger batch answered item by item (see the class comment). */
  private async unbatch(batch: Received): Promise<Reply> {
    this.triggerBatches++;
    const items = (batch.body as { triggers: Record<string, unknown>[] }).triggers;
    const results: unknown[] = [];
    for (const item of items) {
      const { flowId, traceparent, ...body } = item;
      const single: Received = {
        method: 'POST',
        url: `/internal/flows/${encodeURIComponent(String(flowId))}/runs`,
        headers: { ...batch.headers, ...(typeof traceparent === 'string' ? { traceparent } : {}) },
        body,
      };
      this.received.push(single);
      const reply = await this.reply(single);
      if (reply === 'hang' || reply === 'destroy' || reply.text !== undefined) return reply;
      const envelope = reply.json as { code?: unknown } | undefined;
      if (reply.status >= 200 && reply.status < 300) results.push({ ok: reply.json });
      else if (reply.status >= 400 && reply.status < 500 && ![401, 403].includes(reply.status) && typeof envelope?.code === 'string') {
        results.push({ error: { statusCode: reply.status, params: {}, ...(reply.json as object) } });
      } else return reply;
    }
    return { status: 200, json: { results } };
  }

  /** Calls to one path (method and path, query left out). */
  callsTo(method: string, path: string): Received[] {
    return this.received.filter((r) => r.method === method && r.url.split('?')[0] === path);
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

export interface CallOptions {
  /** The API key (Bearer); null sends none. */
  key?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface TestGateway {
  readonly base: string;
  /** The database, for a second gateway instance to share. */
  readonly dbUrl: string;
  readonly app: INestApplication;
  readonly orm: MikroORM;
  readonly fake: FakeCommandService;
  /** A new API key of `projectId`: the `sk-…` secret. */
  createKey(projectId: string, keyId: string): Promise<string>;
  call(method: string, path: string, opts?: CallOptions): Promise<CallResult>;
  close(): Promise<void>;
}

/**
 * Boots a gateway with `env` over the defaults a test needs (the fake command service, the local
 * Kafka broker for readiness) on a fresh database, dropped by `close` — or on `dbUrl`, another
 * gateway's, to play a second instance of the same deployment.
 */
export async function startTestGateway(env: Record<string, string> = {}, dbUrl?: string): Promise<TestGateway> {
  process.env.LOG_LEVEL ??= 'silent';
  const db = dbUrl ? null : await createTestDatabase('gateway');
  dbUrl ??= (db as { url: string }).url;
  const orm = await MikroORM.init(ormOptions({ url: dbUrl, entities: [], poolMax: 2 }));
  const fake = new FakeCommandService();
  await fake.start();
  const config = loadGatewayConfig({
    DATABASE_URL: dbUrl,
    DATABASE_POOL_MAX: '4',
    KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
    COMMAND_SERVICE_URL: fake.url,
    INTERNAL_API_TOKEN: 'test-internal-token-0123456789',
    COMMAND_SERVICE_TIMEOUT_MS: '2000',
    ...env,
  });
  const app = await NestFactory.create(gatewayRootModule(config), { bodyParser: false, logger: false });
  // As bootstrapHttpApp does for the real process: timing and a span per request, then the gateway's pipeline.
  observeHttp(app, 'api-gateway');
  configureGateway(app, config);
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');

  return {
    base,
    dbUrl,
    app,
    orm,
    fake,
    createKey: async (projectId, keyId) => (await new ApiKeyStore(sqlRunner(orm.em.fork())).create(projectId, keyId)).key,
    call: async (method, path, opts = {}) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.key) headers.authorization = `Bearer ${opts.key}`;
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(`${base}${path}`, { method, headers, body });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    close: async () => {
      await app.close();
      await fake.close();
      await orm.close(true);
      await db?.drop();
    },
  };
}
