export * from './plans';
export * from './tcp-proxy';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { dropTestDatabase, migrate, parseDatabaseUrl } from '@flowruns/database';

/** Where the test infrastructure is: from the environment (set by test/global-setup.js). */
export const testEnv = () => ({
  databaseUrl: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  kafkaBrokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
});

/** A TCP port free on 127.0.0.1 right now (for a process a test starts). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });

/** A short unique suffix so every test owns its topic names, groups and databases. */
export const uniqueName = (prefix: string): string => `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

/** A fresh, migrated database whose name says it is a test database. Drop it in afterAll. */
export async function createTestDatabase(label = 'it'): Promise<{ url: string; drop: () => Promise<void> }> {
  const { serverUrl } = parseDatabaseUrl(testEnv().databaseUrl);
  const url = serverUrl(uniqueName(`flowruns_test_${label}`).toLowerCase());
  await migrate(url);
  return { url, drop: () => dropTestDatabase(url) };
}

/**
 * Polls `probe` until it returns a value that is not undefined/false, or fails after `timeoutMs`
 * with the last error or value described. Never a fixed sleep.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${opts.timeoutMs ?? 20000} ms waiting for ${opts.what ?? 'condition'}: ${detail}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
