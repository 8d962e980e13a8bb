import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { benchEnv, ROOT } from './system';

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
