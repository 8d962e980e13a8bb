import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from '@flowruns/database';
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

  it('uses DATABASE_URL as it is when set, without looking further', async () => {
    const url = 'postgres://someone@db.example:5433/x';
    expect(await choosePostgres({ databaseUrl: url, dir })).toEqual({ kind: 'env', url, reason: 'DATABASE_URL is set' });
  });
});
