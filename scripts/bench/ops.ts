import { ApiKeyStore } from '@flowruns/access';
import { isoMicrosSql } from '@flowruns/database';
import { RETENTION_MARK_PROJECTED, RUN_VIEW_PURGED_AT } from '@flowruns/run-views';
import { performance } from 'node:perf_hooks';
import { httpLoad, type LoadResult } from './load';
import type { Profile } from './profiles';
import { rawBulkWrite, rawConsume, RawPurgeDelete, rawViewInsert } from './raw';
import { seed, SEED_FLOWS } from './seed';
import { BenchSystem, CpuMeter, cpuMsPer, MemorySampler, pidsOf } from './system';
import { joinTimeline, Timeline } from './timeline';
import { log, percentile, round, waitFor } from './util';
import { compareViews, verifySample } from './verify';

/** The bulk benchmark's second project: its runs are retried ON_LATEST_VERSION into new runs. */
const LATEST_PROJECT = 'bench_bulk_latest';

const count = async (sys: BenchSystem, sql: string): Promise<number> => Number((await sys.db.one<{ n: string }>(sql)).n);

/**
 * 4. Bulk retry (FROM_FAILED_STEP) → cancel → archive of N runs through the gateway, over a
 * bulk-loaded write model, views and history; then a retry ON_LATEST_VERSION of another project's
 * N FAILED runs (N new runs). Wall time of the request, time until the views show
 * every change, and the resident memory of each process (baseline and peak during the operation).
 * First, a sample of the loaded runs is checked against the decider and the projection.
 */
export async function benchBulk(profile: Profile) {
  const n = profile.bulk.runs;
  const project = 'bench_bulk';
  const sys = await BenchSystem.create('bulk');
  try {
    // BENCH_BULK_OPS (labels, comma-separated) runs only those operations, and loads the first
    // project only when one of them needs it: for profiling one operation, never in a recorded run.
    const chosen = process.env.BENCH_BULK_OPS?.split(',').map((s) => s.trim());
    const wanted = (label: string) => !chosen || chosen.includes(label);
    const t = Date.now();
    if (!chosen || chosen.some((label) => label !== 'retry ON_LATEST_VERSION')) {
      await seed(sys.db, { projectId: project, from: 0, to: n, baseMs: Date.now() - 86_400_000, spacingMs: 50, flows: 20, steps: 3, status: 'FAILED', writeModel: true, events: true, published: true, views: true });
    }
    // A second project's FAILED runs, with their flows, for the retry ON_LATEST_VERSION (new runs).
    await seed(sys.db, { projectId: LATEST_PROJECT, from: n, to: 2 * n, baseMs: Date.now() - 86_400_000, spacingMs: 50, flows: 20, steps: 3, status: 'FAILED', writeModel: true, events: true, published: true, views: true });
    await sys.db.q(SEED_FLOWS, [LATEST_PROJECT, 20, 3]);
    log(`bulk: ${n} runs in each project loaded in ${round((Date.now() - t) / 1000, 1)} s`);
    const sample = (await sys.db.q<{ run_id: string }>('select run_id from run_streams order by md5(run_id) limit 200')).map((r) => r.run_id);
    const verified = await verifySample(sys.db, sample);
    const { gateway: gw } = await sys.startCore();
    const keys = new ApiKeyStore(sys.db.runner());
    const { key } = await keys.create(project, 'key_bench_bulk');
    const { key: latestKey } = await keys.create(LATEST_PROJECT, 'key_bench_bulk_latest');
    const ops = [
      { action: 'retry', label: 'retry', key, body: { strategy: 'FROM_FAILED_STEP' }, projected: `select count(*)::text as n from run_views where project_id = '${project}' and status = 'RUNNING'` },
      { action: 'cancel', label: 'cancel', key, body: {}, projected: `select count(*)::text as n from run_views where project_id = '${project}' and status = 'STOPPED'` },
      { action: 'archive', label: 'archive', key, body: {}, projected: `select count(*)::text as n from run_views where project_id = '${project}' and archived_at is not null` },
      // Every original records the retry and a new run of its flow's latest version starts with a copy of its payload.
      // The new runs counted through the list's index (created in the last hour; the originals a day
      // ago): counted by `retry_of`, a sequential scan of 200 000 rows every 250 ms (107 ms each,
      // pg_stat_statements) took Postgres time from the projector it was waiting for.
      { action: 'retry', label: 'retry ON_LATEST_VERSION', key: latestKey, body: { strategy: 'ON_LATEST_VERSION' }, projected: `select count(*)::text as n from run_views where project_id = '${LATEST_PROJECT}' and archived_at is null and created > now() - interval '1 hour'` },
    ];
    const results: { action: string; runsPerS: number; [k: string]: unknown }[] = [];
    for (const op of ops.filter((o) => wanted(o.label))) {
      const mem = new MemorySampler(pidsOf(sys));
      const cpu = await CpuMeter.start(sys);
      const t0 = performance.now();
      const r = await fetch(`${gw.url}/api/v1/flow-runs/${op.action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${op.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(op.body),
      });
      const body = await r.text();
      const wallS = (performance.now() - t0) / 1000;
      const cpuAnswered = await cpu.read();
      if (!r.ok) throw new Error(`bulk ${op.action}: ${r.status} ${body}`);
      await waitFor(async () => (await count(sys, op.projected)) >= n, { timeoutMs: 600000, intervalMs: 250, what: `views after ${op.action}` });
      const projectedS = (performance.now() - t0) / 1000;
      const cpuProjected = await cpu.stop();
      const memory = mem.stop();
      log(`bulk ${op.label}: ${body} in ${round(wallS, 2)} s, projected after ${round(projectedS, 2)} s`);
      results.push({ action: op.label, answer: JSON.parse(body), wallS: round(wallS, 2), runsPerS: round(n / wallS), projectedS: round(projectedS, 2), memoryMiB: memory,
        // CPU per run of each process until the answer, and until the views showed every change.
        cpuMsPerRun: { answered: cpuMsPer(cpuAnswered, n), projected: cpuMsPer(cpuProjected, n) } });
    }
    const batchSize = sys.env.COMMAND_BULK_BATCH_SIZE ?? process.env.COMMAND_BULK_BATCH_SIZE ?? '2000 (default)';
    const pagesInFlight = sys.env.COMMAND_BULK_PAGES_IN_FLIGHT ?? process.env.COMMAND_BULK_PAGES_IN_FLIGHT ?? '2 (default)';
    // The raw limit after the operations (its writes would have moved their checkpoints), on the
    // second project's rows, the apps idle, in the command service's pages.
    await sys.stopApps();
    const raw = await rawBulkWrite(sys.db, LATEST_PROJECT, n, { page: parseInt(batchSize, 10), inFlight: parseInt(pagesInFlight, 10) });
    log(`bulk: raw limit ${raw.runsPerS} runs/s (${raw.seconds} s)`);
    await sys.stop();
    return {
      runs: n,
      commandBulkBatchSize: batchSize,
      commandBulkPagesInFlight: pagesInFlight,
      verifiedSample: verified,
      operations: results.map((op) => ({ ...op, ratioToRaw: round(op.runsPerS / raw.runsPerS, 3) })),
      raw,
    };
  } catch (e) {
    await sys.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * Every benchmark purge is paced by its rate settings alone (no busy share: a lane does not rest in
 * proportion to its batches), as every recorded run was before the busy share existed.
 */
const RATE_ONLY = { RETENTION_MAX_BUSY_SHARE: '1' } as const;

/** The purge's raw limit deletes the records of at most this many of the first set's runs (the oldest). */
const RAW_PURGE_RUNS = 100_000;

/**
 * 5. Retention purge of N finished runs (90 days old) by the retention app, while the gateway
 * serves the first list page at a fixed rate. Runs/s from the purge timestamps the command service
 * wrote (first to last batch); list latency before the purge and during it. Then a second set
 * (finished 20 days ago, so the first pass leaves it) purged by a retention app with a cap on runs
 * per second (`RETENTION_MAX_RUNS_PER_S`), the list measured again: what a paced purge leaves the API.
 */
export async function benchPurge(profile: Profile) {
  const n = profile.purge.runs;
  const paced = profile.purge.paced;
  const project = 'bench_purge';
  const sys = await BenchSystem.create('purge');
  try {
    const t = Date.now();
    const spec = { projectId: project, spacingMs: 20, flows: 20, steps: 3, status: 'SUCCEEDED', writeModel: true, events: true, published: true, views: true } as const;
    const atTarget = profile.purge.atTarget;
    // One set per pass at the target's rate, the oldest purged first: finished 9, 7, 5 … days ago
    // (the paced pass's 10-day window leaves them all), each pass's window a day short of its set.
    const targetSets = Array.from({ length: atTarget.passes }, (_, k) => ({ ageDays: 9 - 2 * k, from: n + paced.runs + k * atTarget.runs }));
    for (const set of targetSets) {
      await seed(sys.db, { ...spec, from: set.from, to: set.from + atTarget.runs, baseMs: Date.now() - set.ageDays * 86_400_000, settle: false });
    }
    await seed(sys.db, { ...spec, from: n, to: n + paced.runs, baseMs: Date.now() - 20 * 86_400_000, settle: false });
    await seed(sys.db, { ...spec, from: 0, to: n, baseMs: Date.now() - 90 * 86_400_000 });
    log(`purge: ${n} + ${paced.runs} + ${atTarget.passes} × ${atTarget.runs} runs loaded in ${round((Date.now() - t) / 1000, 1)} s`);
    // The raw limit's rows copied now, while they exist; deleted (timed) after every pass.
    const rawPurge = await RawPurgeDelete.copy(sys.db, project, Math.min(n, RAW_PURGE_RUNS));
    const { gateway: gw } = await sys.startCore();
    const { key } = await new ApiKeyStore(sys.db.runner()).create(project, 'key_bench_purge');
    const list = { url: `${gw.url}/api/v1/flow-runs?projectId=${project}`, headers: { authorization: `Bearer ${key}` }, rate: profile.list.rateRps };
    // The gateway warmed up first (JIT, connections): a cold start measured as "before" made the
    // purge's effect look smaller than it is.
    await httpLoad({ ...list, connections: 8, durationS: 3 });
    // Uncapped, in the batches the harness has always measured: the purge's own speed.
    const uncapped = { RETENTION_MAX_RUNS_PER_S: '0', RETENTION_BATCH_SIZE: '2000', RETENTION_BATCH_PAUSE_MS: '10' };
    const full = await purgeWhileListing(sys, profile, list, {
      runs: n,
      project,
      expired: (finished) => `${finished} < now() - interval '30 days'`,
      retentionEnv: uncapped,
      measureCpu: true,
    });
    log(`purge: ${n} runs in ${full.purgeSeconds} s (${full.runsPerS} runs/s), list p99 before ${full.listBefore.p99Ms} ms, worst during ${full.listDuringWorstP99Ms} ms`);
    await sys.stopApp('retention');
    const pacedResult = await cappedPurge(sys, profile, list, project, paced, {
      retentionDays: 10,
      expired: (finished) => `${finished} >= now() - interval '30 days' and ${finished} < now() - interval '10 days'`,
    });
    // The target's two halves at once: about the rate it asks for (the cap a tenth above it, see
    // `Profile.purge`), and the list's p99 over the purge against as long before it, pooled over
    // the passes (one set each).
    const targetPasses = [];
    for (const set of targetSets) {
      const pass = await cappedPurge(sys, profile, list, project, atTarget, {
        retentionDays: set.ageDays - 1,
        expired: (finished) => `${finished} >= now() - interval '${set.ageDays + 1} days' and ${finished} < now() - interval '${set.ageDays - 1} days'`,
        keepLatencies: true,
      });
      targetPasses.push({ ageDays: set.ageDays, ...pass });
    }
    const atTargetResult = pooledPasses(targetPasses, atTarget.runs);
    log(`purge at the target's rate, ${targetPasses.length} passes pooled: ${atTargetResult.runsPerS} runs/s, list p99 before ${atTargetResult.listBeforeP99Ms} ms, during ${atTargetResult.listDuringP99Ms} ms`);
    const mixed = await purgeAmongLongerWindow(sys, profile, list);
    log(`purge among a longer window's runs: ${mixed.runs} of ${mixed.runs + mixed.kept} runs in ${mixed.purgeSeconds} s (${mixed.runsPerS} runs/s)`);
    await sys.stopApps();
    const raw = await rawPurge.deleteAll(Number(uncapped.RETENTION_BATCH_SIZE));
    log(`purge: raw limit ${raw.runsPerS} runs/s (${raw.runs} runs, ${raw.seconds} s)`);
    await sys.stop();
    return {
      runs: n,
      settings: { ...uncapped, ...RATE_ONLY, RETENTION_CONCURRENCY: sys.env.RETENTION_CONCURRENCY ?? process.env.RETENTION_CONCURRENCY ?? '1 (default)' },
      ...full,
      raw,
      ratioToRaw: round(full.runsPerS / raw.runsPerS, 3),
      paced: { runs: paced.runs, maxRunsPerS: paced.runsPerS, batch: paced.batch, ...pacedResult },
      atTarget: { runs: atTarget.runs, passes: atTarget.passes, maxRunsPerS: atTarget.runsPerS, batch: atTarget.batch, ...atTargetResult },
      mixed,
    };
  } catch (e) {
    await sys.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * A purge by a retention app capped at `cap.runsPerS` (`RETENTION_MAX_RUNS_PER_S`, batches of
 * `cap.batch`, no pause), the list measured over the time the purge should take and as long before
 * it; the app is stopped after.
 */
async function cappedPurge(
  sys: BenchSystem,
  profile: Profile,
  list: { url: string; headers: Record<string, string>; rate: number },
  project: string,
  cap: { runs: number; runsPerS: number; batch: number },
  set: { retentionDays: number; expired: (finishedColumn: string) => string; keepLatencies?: boolean },
) {
  const result = await purgeWhileListing(sys, profile, list, {
    keepLatencies: set.keepLatencies,
    timeline: true,
    runs: cap.runs,
    project,
    expired: set.expired,
    retentionEnv: {
      AP_EXECUTION_DATA_RETENTION_DAYS: String(set.retentionDays),
      RETENTION_MAX_RUNS_PER_S: String(cap.runsPerS),
      RETENTION_BATCH_SIZE: String(cap.batch),
      RETENTION_BATCH_PAUSE_MS: '0',
    },
    measureCpu: false,
    listS: Math.max(1, Math.floor(cap.runs / cap.runsPerS)),
  });
  log(`purge, capped at ${cap.runsPerS} runs/s: ${cap.runs} runs in ${result.purgeSeconds} s (${result.runsPerS} runs/s), list p99 before ${result.listBefore.p99Ms} ms, worst during ${result.listDuringWorstP99Ms} ms`);
  await sys.stopApp('retention');
  return result;
}

type CappedPurgeResult = Awaited<ReturnType<typeof cappedPurge>>;

/**
 * Several capped passes as one figure: the list's p99 before and during over the requests of every
 * pass (the windows' latencies pooled, then dropped from the results), the rate over all the runs
 * against the passes' purge time, and each pass's own figures beside them.
 */
export function pooledPasses<P extends CappedPurgeResult>(passes: readonly P[], runsPerPass: number) {
  const latencies = (loads: readonly LoadResult[]) =>
    loads.flatMap((l) => {
      if (!l.latenciesMs) throw new Error('a pooled pass kept no latencies');
      return [...l.latenciesMs];
    });
  const drop = ({ latenciesMs: _, ...rest }: LoadResult): LoadResult => rest;
  const before = latencies(passes.map((p) => p.listBefore));
  const during = latencies(passes.flatMap((p) => p.listDuring));
  const runs = passes.length * runsPerPass;
  const seconds = passes.reduce((s, p) => s + p.purgeSeconds, 0);
  return {
    runsPerS: round(runs / seconds),
    listBeforeP99Ms: round(percentile(before, 99), 2),
    listDuringP99Ms: round(percentile(during, 99), 2),
    listBeforeP50Ms: round(percentile(before, 50), 2),
    listDuringP50Ms: round(percentile(during, 50), 2),
    requests: { before: before.length, during: during.length },
    executionDataLeft: passes.reduce((s, p) => s + p.executionDataLeft, 0),
    eachPass: passes.map((p) => ({ ...p, listBefore: drop(p.listBefore), listDuring: p.listDuring.map(drop) })),
  };
}

/**
 * The purge of a project's expired runs among a longer-windowed project's runs over the same 300
 * days (finished 330 to 31 days ago): a 30-day project's and a 365-day one's, interleaved, the
 * latter kept. One uncapped pass at the default batch size; what it measures is the reading of the
 * candidates' index (each batch after where the previous one ended, not from the head through the
 * kept runs: `purgeExpiredBatch`).
 */
async function purgeAmongLongerWindow(sys: BenchSystem, profile: Profile, list: { url: string; headers: Record<string, string>; rate: number }) {
  const { expired, kept } = profile.purge.mixed;
  const base = { from: 0, baseMs: Date.now() - 330 * 86_400_000, flows: 5, steps: 3, status: 'SUCCEEDED', writeModel: true, events: true, published: true, views: true } as const;
  const span = 299 * 86_400_000;
  const t = Date.now();
  await seed(sys.db, { ...base, projectId: 'bench_purge_long', to: kept, spacingMs: span / kept, settle: false });
  await seed(sys.db, { ...base, projectId: 'bench_purge_short', to: expired, spacingMs: span / expired });
  await sys.db.q(`insert into projects (id, retention_days) values ('bench_purge_long', 365) on conflict (id) do update set retention_days = 365`);
  log(`purge: ${expired} + ${kept} interleaved runs of a 30- and a 365-day project loaded in ${round((Date.now() - t) / 1000, 1)} s`);
  const batch = 200;
  const result = await purgeWhileListing(sys, profile, list, {
    runs: expired,
    project: 'bench_purge_short',
    expired: () => 'true',
    retentionEnv: { RETENTION_MAX_RUNS_PER_S: '0', RETENTION_BATCH_SIZE: String(batch), RETENTION_BATCH_PAUSE_MS: '0' },
    measureCpu: false,
  });
  const longPurged = await count(
    sys,
    `select ((select count(*) from retention_marks where project_id = 'bench_purge_long')
       + (select count(*) from run_views where project_id = 'bench_purge_long' and ${RUN_VIEW_PURGED_AT} is not null))::text as n`,
  );
  if (longPurged !== 0) throw new Error(`the 365-day project's runs were purged: ${longPurged}`);
  return { runs: expired, kept, batch, purgeSeconds: result.purgeSeconds, runsPerS: result.runsPerS, executionDataLeft: result.executionDataLeft, viewsCaughtUpS: result.viewsCaughtUpS };
}

/**
 * Starts a retention app (`retentionEnv` over the system's) and serves the list at its rate in
 * windows until every run of `project` that `expired` selects (given its finish column) is purged —
 * the project's retention mark past it — and the views show the last range; the list's latency
 * measured first without a purge. Runs/s from the ranges' purge times (first to last batch, plus
 * one batch for the last one's own duration). Then checks that every such run's view reads purged
 * and its execution data is gone.
 */
async function purgeWhileListing(
  sys: BenchSystem,
  profile: Profile,
  list: { url: string; headers: Record<string, string>; rate: number },
  opts: {
    runs: number;
    project: string;
    expired: (finishedColumn: string) => string;
    retentionEnv: Record<string, string> & { RETENTION_BATCH_SIZE: string };
    measureCpu: boolean;
    listS?: number;
    /** Every list request's latency kept in the results (`LoadResult.latenciesMs`), for pooling. */
    keepLatencies?: boolean;
    /** The list's seconds beside what the machine, Postgres and the gateway did in each (`Timeline`). */
    timeline?: boolean;
  },
) {
  const load = (durationS: number) => httpLoad({ ...list, connections: 8, durationS, keepLatencies: opts.keepLatencies, seconds: opts.timeline });
  const timeline = opts.timeline ? await Timeline.start(sys) : null;
  const before = await load(opts.listS ?? 2 * profile.purge.windowS);
  const cpu = opts.measureCpu ? await CpuMeter.start(sys) : null;
  const passStart = (await sys.db.one<{ t: string }>('select now()::text as t')).t;
  const retention = await sys.start('retention', { RETENTION_INTERVAL_MS: '3600000', ...RATE_ONLY, ...opts.retentionEnv });
  const mem = new MemorySampler(pidsOf(sys));
  const windows: LoadResult[] = [];
  const t0 = performance.now();
  // The project's runs still to purge: after its mark (a keyset on the candidates' index).
  const left = async (): Promise<number> => {
    const mark = await sys.db.q<{ f: string; r: string }>(
      `select ${isoMicrosSql('finished_at')} as f, run_id as r from retention_marks where project_id = $1`,
      [opts.project],
    );
    return count(
      sys,
      `select count(*)::text as n from run_streams s where s.project_id = '${opts.project}' and s.finished_at is not null
         and ${opts.expired('s.finished_at')}${mark[0] ? ` and (s.finished_at, s.run_id) > ('${mark[0].f}'::timestamptz, '${mark[0].r}')` : ''}`,
    );
  };
  // With `listS`: one load as long as the one before, so the two p99s are the same statistic over
  // as many requests; else windows until the purge is done (the worst of them is reported).
  const notDone = (e: Error) => new Error(`${e.message}\n${retention.output()}`);
  if (opts.listS) {
    windows.push(await load(opts.listS));
    const leftMs = 900_000 - (performance.now() - t0);
    await waitFor(async () => (await left()) === 0, { timeoutMs: leftMs, intervalMs: 100, what: 'the capped purge' }).catch((e: Error) => {
      throw notDone(e);
    });
  }
  while ((await left()) > 0) {
    if (performance.now() - t0 > 900_000) throw notDone(new Error('purge not done after 900 s:'));
    windows.push(await load(profile.purge.windowS));
  }
  // The views catch up after the command side has purged the last run (the range that ends at the
  // project's mark is projected); the CPU a purged run costs includes the relay and the projector.
  await waitFor(
    async () =>
      (await count(
        sys,
        `select count(*)::text as n from retention_marks m where m.project_id = '${opts.project}' and ${RETENTION_MARK_PROJECTED}`,
      )) === 1,
    { timeoutMs: 300000, intervalMs: 100, what: 'the views to show the purge' },
  );
  const viewsCaughtUpS = (performance.now() - t0) / 1000;
  const samples = timeline ? await timeline.stop() : null;
  const cpuS = cpu ? await cpu.stop() : null;
  const memory = mem.stop();
  const span = await sys.db.one<{ s: number; batches: number; runs: number; records: string; unpurged_views: string }>(
    `select extract(epoch from max(purged_at) - min(purged_at))::float8 as s, count(*)::int as batches, sum(runs)::int as runs,
       (select count(*) from execution_data d join run_streams x on x.run_id = d.run_id
         where x.project_id = $1 and ${opts.expired('x.finished_at')})::text as records,
       (select count(*) from run_views where project_id = $1 and ${opts.expired('finish_time')} and ${RUN_VIEW_PURGED_AT} is null)::text as unpurged_views
     from run_view_purge_ranges where project_id = $1 and purged_at >= $2::timestamptz`,
    [opts.project, passStart],
  );
  if (span.runs !== opts.runs || Number(span.unpurged_views) !== 0) {
    throw new Error(`purge of ${opts.runs} runs: the ranges hold ${span.runs}, ${span.unpurged_views} of the views do not read purged`);
  }
  const seconds = (span.s * span.batches) / Math.max(1, span.batches - 1);
  const worst = windows.reduce<LoadResult | null>((w, x) => (!w || x.p99Ms > w.p99Ms ? x : w), null);
  return {
    purgeSeconds: round(seconds, 2),
    runsPerS: round(opts.runs / seconds),
    executionDataLeft: Number(span.records),
    // The seconds are in `timeline`, beside the machine's.
    listBefore: withoutSeconds(before),
    listDuring: windows.map(withoutSeconds),
    listDuringWorstP99Ms: worst?.p99Ms ?? null,
    viewsCaughtUpS: round(viewsCaughtUpS, 2),
    cpuMsPerRun: cpuS ? cpuMsPer(cpuS, opts.runs) : undefined,
    memoryMiB: memory,
    // Seconds whose slowest list request took more than twice the p99 before the purge: "slow".
    timeline: samples
      ? joinTimeline({ before: before.seconds ?? [], during: windows.flatMap((w) => w.seconds ?? []) }, samples, round(2 * before.p99Ms, 2))
      : undefined,
  };
}

const withoutSeconds = ({ seconds: _, ...rest }: LoadResult): LoadResult => rest;

/**
 * 6. Rebuild: the relay publishes a bulk-loaded history to an empty topic, then a projector in a
 * new consumer group builds the views from the beginning of the topic. Events/s of each, and the
 * views it built compared with the bulk loader's, row by row (the check that the loader's views
 * are the pipeline's).
 */
export async function benchRebuild(profile: Profile) {
  const n = profile.rebuild.runs;
  const project = 'bench_rebuild';
  // The comparison with the loader needs the write model to stay as loaded: no supervisor tick
  // (the first would come after an hour) may time out a loaded RUNNING run, whatever its age.
  const sys = await BenchSystem.create('rebuild', { SUPERVISOR_INTERVAL_MS: '3600000' });
  try {
    await sys.db.q('create table expected_run_views (like run_views including all); create table expected_step_views (like step_views including all)');
    await seed(sys.db, { projectId: project, from: 0, to: n, baseMs: Date.now() - 86_400_000, spacingMs: 50, flows: 20, steps: 3, writeModel: true, events: true, published: false, views: true, viewTables: { runs: 'expected_run_views', steps: 'expected_step_views' } });
    const events = await count(sys, 'select count(*)::text as n from run_events');
    log(`rebuild: ${n} runs, ${events} events loaded; relay publishing`);
    const t0 = performance.now();
    await sys.start('command-service');
    // The relay's rate: from the command service being ready until its queue is empty.
    const relayReady = performance.now();
    await waitFor(async () => (await count(sys, 'select count(*)::text as n from run_events_outbox')) === 0, { timeoutMs: 900000, intervalMs: 100, what: 'the relay to publish' });
    const relayDone = performance.now();
    const relayWallS = (relayDone - t0) / 1000;
    await sys.stopApp('command-service');

    const t1 = performance.now();
    const projector = await sys.start('projector');
    const ready = performance.now();
    const mem = new MemorySampler(pidsOf(sys));
    await waitFor(async () => (await count(sys, 'select coalesce(sum(version), 0)::text as n from run_views')) >= events, { timeoutMs: 900000, intervalMs: 250, what: 'the projector to catch up' });
    const done = performance.now();
    const memory = mem.stop();
    const span = await sys.db.one<{ s: number }>('select extract(epoch from max(updated_at) - min(updated_at))::float8 as s from run_views');
    const stalls = await count(sys, 'select count(*)::text as n from projection_stalls');
    const verification = await compareViews(sys.db);
    const eventsPerS = events / ((done - ready) / 1000);
    log(`rebuild: ${round(eventsPerS)} events/s; views vs loader: ${JSON.stringify(verification)}`);
    void projector;
    await sys.stopApps();
    // The raw limits of the projector's two sides: reading the same topic, writing the same views.
    const raw = { kafka: await rawConsume(sys.topic, events), postgres: await rawViewInsert(sys.db, { runs: 'run_views', steps: 'step_views' }) };
    log(`rebuild: raw limits kafkajs ${raw.kafka.messagesPerS} messages/s (${raw.kafka.seconds} s), Postgres ${raw.postgres.rowsPerS} view rows/s (${raw.postgres.seconds} s)`);
    await sys.stop();
    return {
      runs: n,
      events,
      relay: { wallS: round(relayWallS, 2), eventsPerS: round(events / ((relayDone - relayReady) / 1000)), batchSize: sys.env.RELAY_BATCH_SIZE ?? '500 (default)' },
      projector: {
        startS: round((ready - t1) / 1000, 2),
        catchUpS: round((done - ready) / 1000, 2),
        eventsPerS: round(eventsPerS),
        eventsPerSFromViewTimestamps: round(events / span.s),
        memoryMiB: memory,
      },
      raw,
      // The slower raw side's time for the whole job against the projector's (after ready).
      ratioToSlowerRaw: round(Math.max(raw.kafka.seconds, raw.postgres.seconds) / ((done - ready) / 1000), 3),
      stalls,
      viewsEqualLoader: verification.runRowsDiffering === 0 && verification.stepRowsDiffering === 0 && stalls === 0,
      verification,
    };
  } catch (e) {
    await sys.stop().catch(() => undefined);
    throw e;
  }
}
