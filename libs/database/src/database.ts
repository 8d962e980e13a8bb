import { Client } from 'pg';

/** Splits a Postgres URL into the server address and the database name. */
export function parseDatabaseUrl(url: string): { database: string; serverUrl: (db: string) => string } {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(database)) {
    throw new Error(`DATABASE_URL: database name "${database}" must match [A-Za-z0-9_]+`);
  }
  return {
    database,
    serverUrl: (db: string) => {
      const v = new URL(url);
      v.pathname = `/${db}`;
      return v.toString();
    },
  };
}

/** Creates the database named in the URL if it does not exist. Returns true when it created it. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const { database, serverUrl } = parseDatabaseUrl(url);
  const admin = new Client({ connectionString: serverUrl('postgres') });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount) return false;
    try {
      await admin.query(`create database "${database}"`);
    } catch (e) {
      // Another process created it first: that is what we wanted.
      if ((e as { code?: string }).code !== '42P04') throw e;
      return false;
    }
    return true;
  } finally {
    await admin.end();
  }
}

/** Drops a database; refuses any whose name does not say it is a test database. */
export async function dropTestDatabase(url: string): Promise<void> {
  const { database, serverUrl } = parseDatabaseUrl(url);
  if (!database.includes('test')) throw new Error(`refusing to drop "${database}": not a test database`);
  const admin = new Client({ connectionString: serverUrl('postgres') });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${database}" with (force)`);
  } finally {
    await admin.end();
  }
}
