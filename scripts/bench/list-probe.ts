/**
 * Keeps a list benchmark's system up for investigation: `runs` views bulk-loaded (default
 * 1 000 000), the command service, the projector and the gateway running, an API key made. Writes
 * what a probe needs (gateway URL, key, process ids) to `LIST_PROBE_FILE` (default
 * /tmp/list-probe.json) and waits; SIGTERM or SIGINT stops everything and drops the database.
 *
 *   node dist/scripts/bench/list-probe.js [runs]
 *   node dist/scripts/bench/http-schedule.js '{"urls":{"p1":"<url>/api/v1/flow-runs?projectId=bench_list"},
 *     "headers":{"authorization":"Bearer <key>"},"rate":200,"durationS":30,"connections":8}'
 *
 * `BENCH_APP_NODE_ARGS` (e.g. `--trace-gc`, `--cpu-prof --cpu-prof-dir=/tmp/prof`) reaches the apps;
 * their output is written to `<file>.<app>.log` on exit. How session 6 used it: bench/notes.md.
 */
import { ApiKeyStore } from '@flowruns/access';
import { writeFileSync } from 'node:fs';
import { PROJECT, seedListRuns } from './list';
import { BenchSystem } from './system';
import { log } from './util';

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 1_000_000);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs: a positive integer, not ${process.argv[2]}`);
  const file = process.env.LIST_PROBE_FILE ?? '/tmp/list-probe.json';
  const sys = await BenchSystem.create('probe');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const app of sys.apps.values()) writeFileSync(`${file}.${app.name}.log`, app.output());
    await sys.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  await seedListRuns(sys.db, 0, runs);
  const { gateway: gw } = await sys.startCore();
  const { key } = await new ApiKeyStore(sys.db.runner()).create(PROJECT, 'key_list_probe');
  const pids = Object.fromEntries([...sys.apps.values()].map((a) => [a.name, a.process.pid]));
  writeFileSync(file, JSON.stringify({ url: gw.url, key, project: PROJECT, runs, pids, database: sys.db.url }, null, 2));
  log(`list probe up: ${runs} runs, gateway ${gw.url}; details in ${file}; SIGTERM to stop`);
  await new Promise<never>(() => undefined);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
