/**
 * `npm run bench:compare -- --base <rev> [--repeat N] [harness options…]`
 *
 * Before/after on one machine, the way `bench/notes.md` measures every change: builds `<rev>` in a
 * temporary git worktree (sharing this tree's node_modules), then runs the harness N times
 * (default 2) on each side, alternating — the base first, then this tree (built by the npm script)
 * — with the same options, and prints every figure of the runs side by side with each side's
 * median. Alternating spreads the machine's drift over both sides; a difference smaller than the
 * spread within a side is noise. Each side's result files stay in its own `bench/results` (the
 * worktree's go with it) and the runs never touch `latest` or BENCHMARKS.md unless they are complete
 * and unscaled — so pass `--only` or `--scale` as for any partial run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './system';
import { log } from './util';

interface Args {
  readonly base: string;
  readonly repeat: number;
  readonly harness: readonly string[];
}

export function parseCompareArgs(argv: readonly string[]): Args {
  const harness: string[] = [];
  let base: string | undefined;
  let repeat = 2;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--base') base = argv[++i];
    else if (argv[i] === '--repeat') {
      const v = argv[++i];
      repeat = Number(v);
      if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new Error(`--repeat: an integer from 1 to 20, not ${v}`);
    } else harness.push(argv[i]);
  }
  if (!base) throw new Error('--base <git revision> is required: the code to compare this tree with');
  return { base, repeat, harness };
}

/** Figures that describe the setup (sizes, counts, the load's shape) rather than measure it. */
const SETUP_KEYS = new Set(['config', 'settings', 'runs', 'answer', 'requests', 'targetRps', 'connections', 'durationS', 'errors', 'steps', 'archived', 'plan', 'verifiedSample']);

/** An array element's name in a figure's path: what it is about (an operation, a scenario, a size), else its index. */
function elementName(el: unknown, i: number): string {
  if (el && typeof el === 'object') {
    const o = el as Record<string, unknown>;
    for (const k of ['action', 'scenario', 'label', 'name']) if (typeof o[k] === 'string') return o[k] as string;
    if (typeof o.runs === 'number') return `${o.runs} runs`;
  }
  return String(i);
}

/** Every numeric measurement of a result's `results`, by its path (`bulk.archive.wallS`). */
export function figures(results: unknown): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'number' && Number.isFinite(v)) out.set(at, v);
    else if (Array.isArray(v)) v.forEach((el, i) => walk(el, `${at}.${elementName(el, i)}`));
    else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) if (!SETUP_KEYS.has(k)) walk(child, at ? `${at}.${k}` : k);
    }
  };
  walk(results, '');
  return out;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The side-by-side table: one row per figure present on both sides. */
export function compareTable(before: readonly Map<string, number>[], after: readonly Map<string, number>[]): string {
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) < 1 ? 3 : 2));
  const rows = ['| figure | before | after | median before → after | change |', '|---|---|---|---|---|'];
  const keys = [...(before[0]?.keys() ?? [])].filter((k) => after.every((m) => m.has(k)) && before.every((m) => m.has(k)));
  for (const k of keys) {
    const b = before.map((m) => m.get(k) as number);
    const a = after.map((m) => m.get(k) as number);
    const [mb, ma] = [median(b), median(a)];
    const change = mb === 0 ? '' : `${ma >= mb ? '+' : ''}${(((ma - mb) / mb) * 100).toFixed(1)} %`;
    rows.push(`| ${k} | ${b.map(fmt).join(' / ')} | ${a.map(fmt).join(' / ')} | ${fmt(mb)} → ${fmt(ma)} | ${change} |`);
  }
  return rows.join('\n');
}

/** Runs the built harness in `cwd`, its log (stderr) passed through; answers the result file it wrote. */
function runHarness(cwd: string, harness: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/scripts/bench/main.js', ...harness], { cwd, stdio: ['ignore', 'inherit', 'pipe'] });
    let out = '';
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wrote = /wrote (bench\/results\/\S+\.json)/.exec(out);
      if (code !== 0 || !wrote) reject(new Error(`the harness in ${cwd} exited with ${code}${wrote ? '' : ' and wrote no result'}`));
      else resolve(path.join(cwd, wrote[1]));
    });
  });
}

function sh(cmd: string, args: readonly string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.status}`);
}

async function main() {
  const { base, repeat, harness } = parseCompareArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flowruns-bench-base-'));
  sh('git', ['worktree', 'add', '--detach', dir, base], ROOT);
  try {
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    log(`building ${base} in ${dir}`);
    sh('npm', ['run', '-s', 'build'], dir);
    const before: Map<string, number>[] = [];
    const after: Map<string, number>[] = [];
    for (let i = 1; i <= repeat; i++) {
      for (const [side, cwd, into] of [['before', dir, before], ['after', ROOT, after]] as const) {
        log(`run ${i} of ${repeat}, ${side} (${side === 'before' ? base : 'this tree'})`);
        const file = await runHarness(cwd, harness);
        const result = JSON.parse(readFileSync(file, 'utf8'));
        // The machine's calibration beside the figures: a run on a slower machine shows as one.
        into.push(figures({ ...result.results, ...(result.machine?.calibration ? { calibration: result.machine.calibration } : {}) }));
      }
    }
    console.log(`\nBefore: ${base}; after: this tree; ${repeat} alternated run(s) each of \`${['npm run bench --', ...harness].join(' ')}\`\n`);
    console.log(compareTable(before, after));
  } finally {
    sh('git', ['worktree', 'remove', '--force', dir], ROOT);
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
