/**
 * `npm run bench [-- --profile quick|full] [--only ingest,list,bulk,purge,rebuild] [--scale F]
 *   [--report-batch N] [--trigger-batch N] [--engines N]` (the last three override the profile's ingest settings, for
 *   before/after comparisons: `--report-batch 0` / `--trigger-batch 0` send one call per report / trigger, as before batching)
 *   [--purge-cap N] [--purge-cap-batch N] (the paced purge's `RETENTION_MAX_RUNS_PER_S` and batch size)
 *   [--purge-target-batch N] [--purge-target-passes N] (the batch size and the number of passes of the purge at the target's rate)
 *   [--autovacuum on|off] (the server's autovacuum for the run, put back after: `withAutovacuum`)
 *
 * Runs the benchmarks of issue 6 against the built apps (dist/), each with its own database and
 * topic, writes `bench/results/<timestamp>-<profile>.json` (and `latest-<profile>.json`), and
 * regenerates BENCHMARKS.md from the latest results. `--scale` shrinks every dataset (a smoke
 * run of the harness itself; such results are not written as `latest`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchIngest } from './ingest';
import { benchList } from './list';
import { calibrate } from './calibration';
import { machineInfo, withAutovacuum } from './machine';
import { benchBulk, benchPurge, benchRebuild } from './ops';
import { PROFILES, type Profile } from './profiles';
import { renderBenchmarks } from './report';
import { ROOT } from './system';
import { log, round } from './util';

const ALL = ['ingest', 'list', 'bulk', 'purge', 'rebuild'] as const;
type Name = (typeof ALL)[number];

function parseArgs(argv: string[]) {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const profileName = get('--profile') ?? 'quick';
  if (profileName !== 'quick' && profileName !== 'full') throw new Error(`--profile: quick or full, not ${profileName}`);
  const only = (get('--only')?.split(',') ?? [...ALL]) as Name[];
  for (const o of only) if (!ALL.includes(o)) throw new Error(`--only: one of ${ALL.join(', ')}, not ${o}`);
  const scale = Number(get('--scale') ?? '1');
  if (!(scale > 0 && scale <= 1)) throw new Error('--scale: a number in (0, 1]');
  const base = scaled(PROFILES[profileName], scale);
  const intFlag = (flag: string, min: number, max: number): number | undefined => {
    const v = get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag}: an integer from ${min} to ${max}, not ${v}`);
    return n;
  };
  const reportBatch = intFlag('--report-batch', 0, 500);
  const triggerBatch = intFlag('--trigger-batch', 0, 500);
  const engines = intFlag('--engines', 1, 2000);
  const ingest = { ...base.ingest, ...(reportBatch !== undefined ? { reportBatch } : {}), ...(triggerBatch !== undefined ? { triggerBatch } : {}), ...(engines !== undefined ? { concurrency: engines } : {}) };
  const pacedRate = intFlag('--purge-cap', 1, 1_000_000);
  const pacedBatch = intFlag('--purge-cap-batch', 1, 10_000);
  const paced = { ...base.purge.paced, ...(pacedRate !== undefined ? { runsPerS: pacedRate } : {}), ...(pacedBatch !== undefined ? { batch: pacedBatch } : {}) };
  const targetBatch = intFlag('--purge-target-batch', 1, 10_000);
  const targetPasses = intFlag('--purge-target-passes', 1, 4);
  const atTarget = { ...base.purge.atTarget, ...(targetBatch !== undefined ? { batch: targetBatch } : {}), ...(targetPasses !== undefined ? { passes: targetPasses } : {}) };
  const autovacuumFlag = get('--autovacuum');
  if (autovacuumFlag !== undefined && autovacuumFlag !== 'on' && autovacuumFlag !== 'off') throw new Error(`--autovacuum: on or off, not ${autovacuumFlag}`);
  const autovacuum: 'on' | 'off' | undefined = autovacuumFlag;
  return { profile: { ...base, ingest, purge: { ...base.purge, paced, atTarget } }, only, scale, autovacuum };
}

function scaled(p: Profile, f: number): Profile {
  if (f === 1) return p;
  const s = (n: number) => Math.max(100, Math.round(n * f));
  return {
    ...p,
    ingest: { ...p.ingest, durationS: Math.max(3, Math.round(p.ingest.durationS * f)) },
    list: { ...p.list, sizes: p.list.sizes.map(s), page: Math.max(2, Math.round(p.list.page * f)), fixedS: 1, maxS: 1, sqlS: 1 },
    bulk: { runs: s(p.bulk.runs) },
    purge: { ...p.purge, runs: s(p.purge.runs), windowS: 1, atTarget: { ...p.purge.atTarget, runs: s(p.purge.atTarget.runs) }, mixed: { expired: s(p.purge.mixed.expired), kept: s(p.purge.mixed.kept) } },
    rebuild: { runs: s(p.rebuild.runs) },
  };
}

async function main() {
  const { autovacuum, ...args } = parseArgs(process.argv.slice(2));
  await (autovacuum ? withAutovacuum(autovacuum, () => run(args)) : run(args));
}

async function run({ profile, only, scale }: Omit<ReturnType<typeof parseArgs>, 'autovacuum'>) {
  const command = `npm run bench${profile.name === 'quick' ? '' : ` -- --profile ${profile.name}`}`;
  const started = new Date();
  const machine = await machineInfo();
  const calibration = await calibrate();
  log(`profile ${profile.name}${scale !== 1 ? ` (scale ${scale})` : ''}: ${only.join(', ')}; load average ${machine.loadAverage.join(' ')}; calibration ${JSON.stringify(calibration)}`);
  const runners: Record<Name, (p: Profile) => Promise<unknown>> = {
    ingest: benchIngest,
    list: benchList,
    bulk: benchBulk,
    purge: benchPurge,
    rebuild: benchRebuild,
  };
  const results: Record<string, unknown> = {};
  const timings: Record<string, number> = {};
  let failed = false;
  for (const name of only) {
    const t = Date.now();
    try {
      results[name] = await runners[name](profile);
      // A failed check of the loader against the pipeline fails the run (the figures are kept in its JSON).
      if ((results[name] as { viewsEqualLoader?: boolean }).viewsEqualLoader === false) {
        failed = true;
        log(`${name}: the projector's views differ from the bulk loader's (see verification in the JSON)`);
      }
    } catch (e) {
      failed = true;
      results[name] = { error: (e as Error).message.slice(0, 4000) };
      log(`${name} FAILED: ${(e as Error).message.slice(0, 2000)}`);
    }
    timings[name] = round((Date.now() - t) / 1000, 1);
    log(`${name}: ${timings[name]} s`);
  }
  const result = {
    profile: profile.name,
    scale,
    command,
    startedAt: started.toISOString(),
    totalS: round((Date.now() - started.getTime()) / 1000, 1),
    timingsS: timings,
    machine: { ...machine, calibration, loadAverageAfter: (await machineInfo()).loadAverage },
    settings: profile,
    results,
  };
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}-${profile.name}${scale !== 1 ? `-scale${scale}` : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(ROOT, file)}`);
  if (scale === 1 && !failed && only.length === ALL.length && !process.env.BENCH_BULK_OPS) {
    writeFileSync(path.join(dir, `latest-${profile.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), renderBenchmarks(dir));
    log('BENCHMARKS.md regenerated');
  } else {
    log('partial, scaled or failed run: latest result and BENCHMARKS.md left as they were');
  }
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
