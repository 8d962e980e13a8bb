import { readFileSync } from 'node:fs';
import type { BenchSystem } from './system';
import { cpuSeconds, pidsOf, processesMatching } from './system';
import type { LatencySecond } from './schedule';
import { round } from './util';

/**
 * What the machine, Postgres and the gateway did in each second of a measurement, to set beside
 * the list's latency in the same second (`LoadResult.seconds`): where a latency tail comes from when
 * the whole-window figures cannot say (session 18: the list's p99 during a purge at the target's
 * rate was 6.4× the one before it while its p50 barely moved).
 *
 * Each sample holds the change since the one before: the machine's CPU split (/proc/stat, in
 * percent of both cores), CPU pressure (PSI: ms in the second that some task waited for a core),
 * each app's and all of Postgres's CPU (ms), Postgres's checkpoints, buffer writes and reads and
 * WAL (`pg_stat_bgwriter`, `pg_stat_database`, `pg_stat_wal`), the kernel's dirty pages, and the
 * gateway's garbage-collection time and worst event-loop delay (its `/metrics`, prom-client's
 * process defaults).
 */
export interface TimelineSample {
  /** Wall-clock end of the second (epoch ms). */
  readonly atMs: number;
  readonly cpuPct: { readonly user: number; readonly system: number; readonly iowait: number; readonly steal: number; readonly idle: number };
  readonly cpuPressureMs: number | null;
  readonly ioPressureMs: number | null;
  readonly appsCpuMs: Record<string, number>;
  readonly postgresCpuMs: number;
  readonly checkpoints: number;
  readonly checkpointBuffers: number;
  readonly backendBufferWrites: number;
  readonly cleanerBufferWrites: number;
  readonly blocksRead: number;
  readonly blocksHit: number;
  readonly walKiB: number;
  readonly walFullPageImages: number;
  readonly dirtyKiB: number;
  readonly gatewayGcMs: number | null;
  readonly gatewayEventLoopMaxMs: number | null;
}

interface Counters {
  atMs: number;
  cpu: number[];
  cpuPressureUs: number | null;
  ioPressureUs: number | null;
  apps: Record<string, number>;
  /** CPU seconds of each Postgres process by pid: one that exited between two samples drops out of both. */
  postgres: Map<number, number>;
  pg: { checkpoints: number; checkpointBuffers: number; backendWrites: number; cleanerWrites: number; read: number; hit: number; walBytes: number; fpi: number };
  dirtyKiB: number;
  gcS: number | null;
  loopMaxS: number | null;
}

export class Timeline {
  private readonly samples: TimelineSample[] = [];
  private last: Counters | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pending: Promise<void> = Promise.resolve();

  private constructor(
    private readonly sys: BenchSystem,
    private readonly gatewayUrl: string | null,
  ) {}

  /** Samples every second from now until `stop`. */
  static async start(sys: BenchSystem): Promise<Timeline> {
    const t = new Timeline(sys, sys.apps.get('api-gateway')?.url ?? null);
    t.last = await t.read();
    t.timer = setInterval(() => {
      // One sample at a time: a slow read delays the next instead of overlapping it.
      t.pending = t.pending.then(() => t.sample()).catch(() => undefined);
    }, 1000);
    return t;
  }

  async stop(): Promise<TimelineSample[]> {
    if (this.timer) clearInterval(this.timer);
    await this.pending;
    return this.samples;
  }

  private async sample(): Promise<void> {
    const now = await this.read();
    const before = this.last;
    this.last = now;
    if (!before) return;
    const cpu = now.cpu.map((v, i) => v - before.cpu[i]);
    const total = cpu.reduce((s, v) => s + v, 0) || 1;
    const pct = (i: number) => round((100 * cpu[i]) / total, 1);
    const diff = (a: number | null, b: number | null, scale: number) => (a === null || b === null ? null : round((a - b) * scale, 1));
    const apps: Record<string, number> = {};
    for (const [name, v] of Object.entries(now.apps)) if (before.apps[name] !== undefined) apps[name] = round((v - before.apps[name]) * 1000);
    this.samples.push({
      atMs: now.atMs,
      // /proc/stat's cpu line: user nice system idle iowait irq softirq steal.
      cpuPct: { user: round(pct(0) + pct(1), 1), system: round(pct(2) + pct(5) + pct(6), 1), idle: pct(3), iowait: pct(4), steal: pct(7) },
      cpuPressureMs: diff(now.cpuPressureUs, before.cpuPressureUs, 1 / 1000),
      ioPressureMs: diff(now.ioPressureUs, before.ioPressureUs, 1 / 1000),
      appsCpuMs: apps,
      // Processes present in both samples; one started since counts from zero.
      postgresCpuMs: round([...now.postgres].reduce((sum, [pid, s]) => sum + s - (before.postgres.get(pid) ?? 0), 0) * 1000),
      checkpoints: now.pg.checkpoints - before.pg.checkpoints,
      checkpointBuffers: now.pg.checkpointBuffers - before.pg.checkpointBuffers,
      backendBufferWrites: now.pg.backendWrites - before.pg.backendWrites,
      cleanerBufferWrites: now.pg.cleanerWrites - before.pg.cleanerWrites,
      blocksRead: now.pg.read - before.pg.read,
      blocksHit: now.pg.hit - before.pg.hit,
      walKiB: round((now.pg.walBytes - before.pg.walBytes) / 1024),
      walFullPageImages: now.pg.fpi - before.pg.fpi,
      dirtyKiB: now.dirtyKiB,
      gatewayGcMs: diff(now.gcS, before.gcS, 1000),
      gatewayEventLoopMaxMs: now.loopMaxS === null ? null : round(now.loopMaxS * 1000, 1),
    });
  }

  private async read(): Promise<Counters> {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const apps: Record<string, number> = {};
    for (const p of pidsOf(this.sys)) {
      const s = cpuSeconds(p.pid);
      if (s !== null) apps[p.name] = s;
    }
    const postgres = new Map<number, number>();
    for (const pid of processesMatching(/^postgres[: ]/)) {
      const s = cpuSeconds(pid);
      if (s !== null) postgres.set(pid, s);
    }
    const pg = await this.sys.db.one<Record<string, string>>(
      `select b.checkpoints_timed + b.checkpoints_req as checkpoints, b.buffers_checkpoint, b.buffers_backend, b.buffers_clean,
         d.blks_read, d.blks_hit, w.wal_bytes, w.wal_fpi
       from pg_stat_bgwriter b, pg_stat_wal w, pg_stat_database d where d.datname = current_database()`,
    );
    const metrics = this.gatewayUrl ? await fetch(`${this.gatewayUrl}/metrics`).then((r) => r.text()).catch(() => null) : null;
    return {
      atMs: Date.now(),
      cpu,
      cpuPressureUs: pressureTotalUs('cpu'),
      ioPressureUs: pressureTotalUs('io'),
      apps,
      postgres,
      pg: {
        checkpoints: Number(pg.checkpoints),
        checkpointBuffers: Number(pg.buffers_checkpoint),
        backendWrites: Number(pg.buffers_backend),
        cleanerWrites: Number(pg.buffers_clean),
        read: Number(pg.blks_read),
        hit: Number(pg.blks_hit),
        walBytes: Number(pg.wal_bytes),
        fpi: Number(pg.wal_fpi),
      },
      dirtyKiB: vmstatPages('nr_dirty') * 4,
      gcS: metrics === null ? null : promSum(metrics, 'nodejs_gc_duration_seconds_sum'),
      loopMaxS: metrics === null ? null : promSum(metrics, 'nodejs_eventloop_lag_max_seconds'),
    };
  }
}

/** `/proc/pressure/<what>`'s "some" total (µs that some task stalled), or null without PSI. */
function pressureTotalUs(what: 'cpu' | 'io'): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${what}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function vmstatPages(field: string): number {
  const m = new RegExp(`^${field} (\\d+)`, 'm').exec(readFileSync('/proc/vmstat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** The sum of a metric's samples over its labels, in Prometheus's text format. */
export function promSum(text: string, metric: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * Each list second beside the timeline sample nearest its end (within a second), and the seconds
 * during the purge split by whether their slowest request took more than `slowMs`: the mean of
 * every timeline figure over the slow seconds against the rest — what the slow seconds had more of.
 */
export function joinTimeline(list: { readonly before: readonly LatencySecond[]; readonly during: readonly LatencySecond[] }, samples: readonly TimelineSample[], slowMs: number) {
  const tagged = [...list.before.map((l) => ({ phase: 'before' as const, l })), ...list.during.map((l) => ({ phase: 'during' as const, l }))];
  const rows = tagged.map(({ phase, l }) => {
    let best: TimelineSample | null = null;
    for (const s of samples) if (Math.abs(s.atMs - l.atMs) <= 1000 && (!best || Math.abs(s.atMs - l.atMs) < Math.abs(best.atMs - l.atMs))) best = s;
    return { phase, list: l, machine: best };
  });
  const flat = (s: TimelineSample): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(s)) {
      if (k === 'atMs') continue;
      if (typeof v === 'number') out[k] = v;
      else if (v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) if (typeof v2 === 'number') out[`${k}.${k2}`] = v2;
    }
    return out;
  };
  const mean = (group: typeof rows) => {
    const sums: Record<string, number> = {};
    const counts: Record<string, number> = {};
    for (const r of group) {
      if (!r.machine) continue;
      for (const [k, v] of Object.entries(flat(r.machine))) {
        sums[k] = (sums[k] ?? 0) + v;
        counts[k] = (counts[k] ?? 0) + 1;
      }
    }
    return Object.fromEntries(Object.keys(sums).map((k) => [k, round(sums[k] / counts[k], 1)]));
  };
  // Within the purge's seconds only: the seconds before it are another regime (an idle machine),
  // and mixing them in would credit the slow seconds with whatever the purge itself does.
  const during = rows.filter((r) => r.phase === 'during');
  const slow = during.filter((r) => r.list.maxMs > slowMs);
  const rest = during.filter((r) => r.list.maxMs <= slowMs);
  return { slowMs, seconds: { slow: slow.length, rest: rest.length }, slowMean: mean(slow), restMean: mean(rest), rows };
}
