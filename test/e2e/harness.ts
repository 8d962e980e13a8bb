import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createTestDatabase, freePort, testEnv, uniqueName, waitFor } from '@flowruns/testing';

const root = path.resolve(__dirname, '../..');

/** Re-exported for the specs that start apps on ports of their own. */
export { freePort };

export interface RunningApp {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly process: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const APP_PORT_VAR: Record<string, string> = {
  'api-gateway': 'GATEWAY_PORT',
  'command-service': 'COMMAND_SERVICE_PORT',
  projector: 'PROJECTOR_PORT',
  retention: 'RETENTION_PORT',
  'flow-worker': 'FLOW_WORKER_PORT',
};

/**
 * Starts a built app (`npm run build` first) as its own process and waits for /health/ready.
 * `opts.port` reuses a known port (a restarted command service must keep the address its callers have).
 */
export async function startApp(
  name: string,
  env: Record<string, string>,
  /** `until: 'live'`: return once the process answers, even if not ready (a dependency away). */
  opts: { port?: number; until?: 'ready' | 'live' } = {},
): Promise<RunningApp> {
  const main = path.join(root, 'dist/apps', name, 'src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` before the e2e tests`);
  const port = opts.port ?? (await freePort());
  let out = '';
  const child = spawn(process.execPath, [main], {
    cwd: root,
    env: { ...process.env, ...env, [APP_PORT_VAR[name]]: String(port), LOG_LEVEL: env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  child.stderr?.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  const url = `http://127.0.0.1:${port}`;
  const app: RunningApp = {
    name,
    port,
    url,
    process: child,
    output: () => out,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${out}`);
      const r = await fetch(`${url}/health/${opts.until ?? 'ready'}`).catch(() => null);
      return r?.ok === true;
    },
    { timeoutMs: 60000, intervalMs: 200, what: `${name} ${opts.until ?? 'ready'}` },
  ).catch((e) => {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- ${name} output ---\n${out}`);
  });
  return app;
}

/** One isolated system: its own database, topics, consumer groups and ports. */
export async function startSystem(
  apps: readonly string[] = ['command-service', 'projector', 'api-gateway'],
  extraEnv: Record<string, string> = {},
) {
  const db = await createTestDatabase('e2e');
  const topic = uniqueName('e2e-runs');
  const internalToken = `e2e-${uniqueName('token')}`;
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
    KAFKA_TOPIC: topic,
    KAFKA_TOPIC_PARTITIONS: '3',
    PROJECTOR_GROUP_ID: uniqueName('e2e-projector'),
    INTERNAL_API_TOKEN: internalToken,
    RELAY_POLL_INTERVAL_MS: '200',
    FLOW_WORKER_GROUP_ID: uniqueName('e2e-worker'),
    // The flows' http steps call local targets on 127.0.0.1, which the worker's SSRF guard blocks
    // unless allowed; only that address, so every other private one stays refused.
    FLOW_WORKER_HTTP_ALLOW_PRIVATE: '127.0.0.1',
    ...extraEnv,
  };
  const running: RunningApp[] = [];
  const byName: Record<string, RunningApp> = {};
  try {
    for (const name of apps) {
      if (byName['command-service']) env.COMMAND_SERVICE_URL = byName['command-service'].url;
      const app = await startApp(name, env);
      running.push(app);
      // A second instance of an app is reachable as `<name>#2`.
      byName[byName[name] ? `${name}#${running.filter((a) => a.name === name).length}` : name] = app;
    }
  } catch (e) {
    await Promise.all(running.map((a) => a.stop('SIGKILL')));
    await db.drop();
    throw e;
  }
  return {
    db,
    env,
    topic,
    internalToken,
    apps: byName,
    /** Starts one more app process in this system (e.g. a second worker). */
    async add(name: string, overrides: Record<string, string> = {}) {
      const app = await startApp(name, { ...env, ...overrides });
      running.push(app);
      return app;
    },
    async stop() {
      for (const a of [...running].reverse()) await a.stop();
      await db.drop();
    },
  };
}
