import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from '@flowruns/database';
import { testEnv } from '@flowruns/testing';
import { Client } from 'pg';
import { choosePostgres, embeddedStatus, stopEmbeddedPostgres } from '../../scripts/local-postgres';

/** A port nothing listens on: one the OS just handed out and that was closed again. */
const deadPort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/**
 * `npm run up` on a machine with no Postgres: with DATABASE_URL unset and nothing answering where a
 * local server would be, the chooser starts the embedded server (as an unprivileged user when this
 * runs as root), the project's migrations apply to it, and it stops again.
 */
describe('the embedded Postgres fallback of npm run up', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowruns-embedded-pg-'));
  afterAll(async () => {
    await stopEmbeddedPostgres(dir).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts it when DATABASE_URL is unset and no local server answers, migrates, queries and stops it', async () => {
    const choice = await choosePostgres({ databaseUrl: undefined, localPort: await deadPort(), dir, database: 'flowruns_test_embedded' });
    expect(choice).toMatchObject({ kind: 'embedded', started: true, dir });
    expect(choice.reason).toContain('nothing listens there');
    expect(choice.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/flowruns_test_embedded$/);

    const applied = await migrate(choice.url);
    expect(applied.length).toBeGreaterThan(0);
    const db = new Client({ connectionString: choice.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ version: string; tables: number }>(
        "select current_setting('server_version') as version, count(*)::int as tables from information_schema.tables where table_name in ('run_events', 'api_keys', 'run_views')",
      );
      expect(rows[0].version).toMatch(/^17\./);
      expect(rows[0].tables).toBe(3);
    } finally {
      await db.end();
    }

    // Choosing again finds the running server instead of starting another.
    expect(await choosePostgres({ localPort: await deadPort(), dir, database: 'flowruns_test_embedded' })).toMatchObject({ kind: 'embedded', started: false, url: choice.url });

    expect(await stopEmbeddedPostgres(dir)).toBe(true);
    expect(await embeddedStatus(dir)).toEqual({ running: false });
    expect(await stopEmbeddedPostgres(dir)).toBe(false);
  }, 60000);

  it('uses a server that answers where a local one would be, without starting the embedded one', async () => {
    // The test server stands in for "127.0.0.1:5432" (its own address, whatever that is here).
    const server = new URL(testEnv().databaseUrl);
    const saved = process.env.PGPASSWORD;
    if (server.password) process.env.PGPASSWORD = decodeURIComponent(server.password);
    try {
      const choice = await choosePostgres({ localHost: server.hostname, localPort: Number(server.port || 5432), dir, database: 'flowruns_test_local' });
      expect(choice).toEqual({
        kind: 'local',
        url: `postgres://postgres@${server.hostname}:${server.port || 5432}/flowruns_test_local`,
        reason: `a server answers on ${server.hostname}:${server.port || 5432}`,
      });
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
    expect(await embeddedStatus(dir)).toEqual({ running: false });
  });

  /** `scripts/local-postgres.ts` as `npm run up` runs it: exit code, stdout, stderr. */
  const script = (args: string[], env: Record<string, string | undefined>) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const root = path.resolve(__dirname, '../..');
      execFile(
        process.execPath,
        ['--require', './scripts/register-swc.js', 'scripts/local-postgres.ts', ...args],
        { cwd: root, env: { ...process.env, DATABASE_URL: undefined, ...env, FLOWRUNS_CACHE_DIR: dir }, timeout: 60000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr }),
      );
    });

  it('as npm run up calls it: choose prints DATABASE_URL=..., status and a bad port answer with their exit codes', async () => {
    const url = 'postgres://someone@db.example:5433/x';
    const chosen = await script(['choose'], { DATABASE_URL: url });
    expect(chosen).toEqual({ code: 0, stdout: `DATABASE_URL=${url}\n`, stderr: `Postgres: DATABASE_URL (${url})\n` });
    expect(await script(['status'], {})).toEqual({ code: 3, stdout: '', stderr: 'the embedded Postgres is not running\n' });
    expect(await script(['choose'], { EMBEDDED_POSTGRES_PORT: 'lots' })).toMatchObject({ code: 2, stderr: expect.stringContaining('EMBEDDED_POSTGRES_PORT') });
    expect(await script(['begin'], {})).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: local-postgres.ts choose|stop|status') });
  });

  it('uses DATABASE_URL as it is when set, without looking further', async () => {
    const url = 'postgres://someone@db.example:5433/x';
    expect(await choosePostgres({ databaseUrl: url, dir })).toEqual({ kind: 'env', url, reason: 'DATABASE_URL is set' });
  });
});
