import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Controller, Get, Injectable, Module, Query, type INestApplication, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HttpDrain, shutdownHttpApp } from './shutdown';

/**
 * The SIGTERM drain of an HTTP app under keep-alive load (reliability finding 1: the command
 * service never exited because its workers kept their keep-alive connections busy). Clients that
 * send requests back to back on keep-alive connections hammer a tiny Nest app while it shuts down:
 * it must finish every request it received, answer each with `Connection: close`, drop none
 * (a client may only be refused a new connection), run its shutdown hooks after the last answer,
 * and be done long before its deadline; a request that never ends is cut at the deadline.
 */

const root = path.resolve(__dirname, '../../..');

/** Polls `cond` until it holds; fails after `timeoutMs`. */
async function until(cond: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Answer {
  status: number;
  body: string;
  connection?: string;
}

function get(port: number, agent: http.Agent, urlPath: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * Clients sending requests back to back, each on its own keep-alive connection, until refused.
 * A request that fails any other way was dropped.
 */
function hammer(port: number, clients: number, urlPath: string, draining: () => boolean) {
  const stats = { ok: 0, okWhileDraining: 0, keptAliveWhileDraining: 0, refused: 0, dropped: [] as string[] };
  const agents: http.Agent[] = [];
  const loops = Array.from({ length: clients }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    for (;;) {
      const sentWhileDraining = draining();
      try {
        const a = await get(port, agent, urlPath);
        if (a.status !== 200) throw new Error(`status ${a.status}`);
        stats.ok++;
        if (sentWhileDraining) {
          stats.okWhileDraining++;
          if (a.connection !== 'close') stats.keptAliveWhileDraining++;
        }
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'ECONNREFUSED') stats.refused++;
        else stats.dropped.push(`${err.code ?? ''} ${err.message}`);
        return;
      }
    }
  });
  return {
    stats,
    done: async () => {
      await Promise.all(loops);
      for (const a of agents) a.destroy();
    },
  };
}

@Injectable()
class Work implements OnApplicationShutdown {
  started = 0;
  /** Requests of a second or more. */
  slowStarted = 0;
  finished = 0;
  lastFinishedAt = 0;
  shutdownHookAt = 0;

  async run(ms: number): Promise<{ ms: number }> {
    this.started++;
    if (ms >= 1000) this.slowStarted++;
    await new Promise((r) => setTimeout(r, ms).unref());
    this.finished++;
    this.lastFinishedAt = Date.now();
    return { ms };
  }

  onApplicationShutdown(): void {
    this.shutdownHookAt = Date.now();
  }
}

@Controller()
class WorkController {
  constructor(private readonly work: Work) {}

  @Get('work')
  run(@Query('ms') ms: string) {
    return this.work.run(Number(ms));
  }
}

@Module({ controllers: [WorkController], providers: [Work] })
class TinyModule {}

async function startTiny(): Promise<{ app: INestApplication; drain: HttpDrain; work: Work; port: number }> {
  const app = await NestFactory.create(TinyModule, { logger: false });
  const drain = new HttpDrain(app.getHttpServer());
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as net.AddressInfo).port;
  return { app, drain, work: app.get(Work), port };
}

describe('HttpDrain + shutdownHttpApp (in process)', () => {
  it('under keep-alive load: finishes the requests in hand, drops none, closes every connection, then runs the hooks', async () => {
    const { app, drain, work, port } = await startTiny();
    const load = hammer(port, 8, '/work?ms=2', () => drain.isDraining);
    // Requests that are mid-way when the shutdown begins (their own keep-alive connections).
    const slowAgent = new http.Agent({ keepAlive: true });
    let t0 = 0;
    await until(() => load.stats.ok >= 200, '200 answers under load');
    const slow = [1, 2, 3].map(() =>
      get(port, slowAgent, '/work?ms=1200').catch((e: NodeJS.ErrnoException): Answer => ({ status: 0, body: `${e.code} after ${Date.now() - t0} ms` })),
    );
    await until(() => work.slowStarted === 3, 'the slow requests in flight');

    t0 = Date.now();
    await shutdownHttpApp(app, drain, { drainTimeoutMs: 8000 });
    const took = Date.now() - t0;
    await load.done();
    const answers = await Promise.all(slow);
    slowAgent.destroy();

    expect(answers.map((a) => [a.status, a.connection, a.body])).toEqual([
      [200, 'close', '{"ms":1200}'],
      [200, 'close', '{"ms":1200}'],
      [200, 'close', '{"ms":1200}'],
    ]);
    expect(load.stats.dropped).toEqual([]);
    // Every client ended by being refused a new connection: its old one was closed under no request.
    expect(load.stats.refused).toBe(8);
    expect(load.stats.keptAliveWhileDraining).toBe(0);
    expect(work.finished).toBe(work.started);
    expect(work.shutdownHookAt).toBeGreaterThanOrEqual(work.lastFinishedAt);
    // About the slow requests' 1.2 s, far from the 8 s deadline.
    expect(took).toBeLessThan(4000);
  });

  it('a request that never ends is cut at the drain deadline, and the shutdown goes on', async () => {
    const { app, drain, work, port } = await startTiny();
    const agent = new http.Agent({ keepAlive: true });
    const stuck = get(port, agent, '/work?ms=600000').then(
      () => 'answered',
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    await until(() => work.started === 1, 'the stuck request in flight');

    const t0 = Date.now();
    await shutdownHttpApp(app, drain, { drainTimeoutMs: 500 });
    const took = Date.now() - t0;
    agent.destroy();

    expect(await stuck).toBe('ECONNRESET');
    expect(work.shutdownHookAt).toBeGreaterThan(0);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(3000);
  });
});

/**
 * The same through a real SIGTERM, in a process of its own started from `dist` (needs
 * `npm run build`): bootstrapHttpApp wires the drain and the exit, and the process ends by itself.
 */
describe('bootstrapHttpApp on SIGTERM (a process of its own)', () => {
  const platform = path.join(root, 'dist/libs/platform/src/index.js');

  // A Nest app in plain JavaScript: the decorators applied by hand.
  const child = `
    require('reflect-metadata');
    const { Controller, Get, Module, Query } = require('@nestjs/common');
    const { bootstrapHttpApp, HealthModule, loggerModule, READINESS_PROBES } = require(${JSON.stringify(platform)});
    let slow = 0;
    class WorkController {
      async work(ms) {
        if (Number(ms) >= 1000) slow++;
        await new Promise((r) => setTimeout(r, Number(ms)));
        return { ms: Number(ms) };
      }
      slow() { return { slow }; }
    }
    Get('slow')(WorkController.prototype, 'slow', Object.getOwnPropertyDescriptor(WorkController.prototype, 'slow'));
    Query('ms')(WorkController.prototype, 'work', 0);
    Get('work')(WorkController.prototype, 'work', Object.getOwnPropertyDescriptor(WorkController.prototype, 'work'));
    Controller()(WorkController);
    class TinyModule {}
    Module({
      imports: [loggerModule(), HealthModule.forProbes({ provide: READINESS_PROBES, useValue: [] })],
      controllers: [WorkController],
    })(TinyModule);
    bootstrapHttpApp(TinyModule, { name: 'tiny', port: Number(process.env.PORT) });
    // Something that would keep a process up forever if shutdown waited for the event loop to empty.
    setInterval(() => undefined, 1000);
  `;

  const freePort = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });

  it('drains its keep-alive clients and exits with 0 within its deadline', async () => {
    if (!existsSync(platform)) throw new Error(`${platform} is missing: run \`npm run build\` before this test`);
    const port = await freePort();
    let out = '';
    const proc = spawn(process.execPath, ['-e', child], {
      cwd: root,
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info', SHUTDOWN_DRAIN_TIMEOUT_MS: '8000', SHUTDOWN_TIMEOUT_MS: '15000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (d) => (out += d.toString()));
    proc.stderr.on('data', (d) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    try {
      await until(() => out.includes('tiny listening'), 'the child listening', 30000);
      let signalled = false;
      const load = hammer(port, 6, '/work?ms=2', () => signalled);
      await until(() => load.stats.ok >= 200, '200 answers under load');
      const slowAgent = new http.Agent({ keepAlive: true });
      const slow = get(port, slowAgent, '/work?ms=1000');
      const noKeepAlive = new http.Agent({ keepAlive: false });
      for (let n = 0; JSON.parse((await get(port, noKeepAlive, '/slow')).body).slow < 1; n++) {
        if (n > 500) throw new Error('the slow request never arrived');
        await new Promise((r) => setTimeout(r, 5));
      }

      const t0 = Date.now();
      signalled = true;
      proc.kill('SIGTERM');
      const exit = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20000).unref())]);
      await load.done();
      const answer = await slow;
      slowAgent.destroy();

      expect(exit).not.toBe('hung');
      if (exit === 'hung') return;
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
      expect(exit.at - t0).toBeLessThan(8000);
      expect([answer.status, answer.connection, answer.body]).toEqual([200, 'close', '{"ms":1000}']);
      expect(load.stats.dropped).toEqual([]);
      expect(load.stats.refused).toBe(6);
      expect(out).toContain('http drained');
      expect(out).toContain('"msg":"stopped"');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- child output ---\n${out.slice(-4000)}`);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
  });
});
