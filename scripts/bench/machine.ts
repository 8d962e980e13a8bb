import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { benchEnv, ROOT } from './system';
import { log, waitFor } from './util';

const sh = (cmd: string, args: string[]): string | null => {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
};

/** What the figures were measured on. */
export async function machineInfo() {
  const lscpu = sh('lscpu', []) ?? '';
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(lscpu)?.[1]?.trim() ?? null;
  const pg = new Client({ connectionString: benchEnv().serverUrl });
  await pg.connect();
  const [{ server_version: postgres }] = (await pg.query('show server_version')).rows;
  // The server's own settings that move the figures (the harness sets none of them): autovacuum
  // in particular — off, a large purge's dead rows stay until something vacuums them.
  const settings = (
    await pg.query<{ name: string; setting: string; unit: string | null }>(
      `select name, setting, unit from pg_settings
        where name in ('autovacuum', 'fsync', 'synchronous_commit', 'shared_buffers', 'max_wal_size', 'work_mem') order by name`,
    )
  ).rows;
  await pg.end();
  const postgresSettings = Object.fromEntries(settings.map((s) => [s.name, s.unit ? `${s.setting} × ${s.unit}` : s.setting]));
  const kafkaVersion = (() => {
    try {
      return /<kafka\.version>([^<]+)</.exec(readFileSync(path.join(ROOT, 'infra/kafka/pom.xml'), 'utf8'))?.[1] ?? null;
    } catch {
      return null;
    }
  })();
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return null;
    }
  };
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no', 'apps', 'libs']);
  return {
    cpu: field('Model name'),
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    postgres,
    postgresSettings,
    kafka: kafkaVersion,
    kafkajs: pkg('kafkajs'),
    nestjs: pkg('@nestjs/core'),
    autocannon: pkg('autocannon'),
    gitCommit: sh('git', ['rev-parse', '--short', 'HEAD']),
    productCodeModified: dirty ? dirty.split('\n').length : 0,
  };
}

/**
 * Runs `work` with the server's `autovacuum` switched to `value` (`alter system`, configuration
 * reloaded; needs a superuser), then puts it back as it was: to the value `alter system` had set,
 * or reset to the configuration files' when it had set none. The results record the setting the
 * run had (`postgresSettings`). For measuring as production would run (autovacuum cleaning up after
 * a purge beside the load) on a server whose own configuration turns it off. A run killed before
 * it ends leaves the value set: `alter system reset autovacuum; select pg_reload_conf()` undoes it.
 */
export async function withAutovacuum<T>(value: 'on' | 'off', work: () => Promise<T>): Promise<T> {
  const pg = new Client({ connectionString: benchEnv().serverUrl });
  await pg.connect();
  const settingNow = async () => (await pg.query<{ v: string }>(`select current_setting('autovacuum') as v`)).rows[0].v;
  // Reloading is a signal: each backend, this one included, takes the new value at its next command.
  const apply = async (sql: string, expected: string) => {
    await pg.query(sql);
    await pg.query('select pg_reload_conf()');
    await waitFor(async () => (await settingNow()) === expected, { timeoutMs: 10000, intervalMs: 50, what: `autovacuum = ${expected}` });
  };
  try {
    const [before] = (await pg.query<{ setting: string; sourcefile: string | null }>(`select setting, sourcefile from pg_settings where name = 'autovacuum'`)).rows;
    const setByAlterSystem = before.sourcefile?.endsWith('postgresql.auto.conf') ?? false;
    log(`postgres: autovacuum ${before.setting} → ${value} for this run`);
    await apply(`alter system set autovacuum = ${value}`, value);
    try {
      return await work();
    } finally {
      await apply(setByAlterSystem ? `alter system set autovacuum = ${before.setting}` : 'alter system reset autovacuum', before.setting);
      log(`postgres: autovacuum back to ${before.setting}`);
    }
  } finally {
    await pg.end();
  }
}
