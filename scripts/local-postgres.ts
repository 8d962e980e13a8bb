// Which Postgres `npm run up` uses, and the embedded one it starts when there is none:
//   node --require ./scripts/register-swc.js scripts/local-postgres.ts choose|stop|status
// `choose` prints `DATABASE_URL=<url>` on stdout (what it chose, and why, on stderr); `stop` stops
// the embedded server if it runs. The logic is exported so test/integration can drive it.
//
// The embedded server is the `embedded-postgres` package's binaries (initdb, pg_ctl, postgres),
// driven through pg_ctl rather than the package's own class: the class keeps the server a child of
// the Node process that started it and stops it when that process exits, while `npm run up` must
// leave it running until `npm run down`. Postgres refuses to run as root, so as root (CI, this
// machine) initdb/pg_ctl run as an unprivileged user: EMBEDDED_POSTGRES_OS_USER, else `postgres`
// when that user exists, else `nobody` (no user is created). When that user cannot reach the
// checkout's binaries (a clone under /root), a copy of them in the temp folder is used.
import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

export type PostgresChoice =
  | { readonly kind: 'env'; readonly url: string; readonly reason: string }
  | { readonly kind: 'local'; readonly url: string; readonly reason: string }
  | { readonly kind: 'embedded'; readonly url: string; readonly reason: string; readonly dir: string; readonly port: number; readonly started: boolean };

export interface ChooseOptions {
  /** `DATABASE_URL`: used as it is when set. */
  readonly databaseUrl?: string;
  /** The database the local and embedded URLs name (`db:migrate` creates it). Default `flowruns`. */
  readonly database?: string;
  /** Where a local server is looked for. Default 127.0.0.1:5432. */
  readonly localHost?: string;
  readonly localPort?: number;
  /** The embedded server's folder: data in `data/`, log in `postgres.log`. */
  readonly dir: string;
  /** The embedded server's port; default: the one it had last time if free, else any free port. */
  readonly port?: number;
  /** Unprivileged user the server runs as when this process is root. */
  readonly osUser?: string;
  readonly log?: (line: string) => void;
}

const SUPERUSER = 'postgres';
const urlOf = (port: number, database: string, host = '127.0.0.1') => `postgres://${SUPERUSER}@${host}:${port}/${database}`;

/** DATABASE_URL if set; else a server answering on 127.0.0.1:5432; else the embedded one, started if needed. */
export async function choosePostgres(opts: ChooseOptions): Promise<PostgresChoice> {
  const database = opts.database ?? 'flowruns';
  if (opts.databaseUrl) return { kind: 'env', url: opts.databaseUrl, reason: 'DATABASE_URL is set' };

  const host = opts.localHost ?? '127.0.0.1';
  const localPort = opts.localPort ?? 5432;
  const local = await probe(urlOf(localPort, 'postgres', host));
  if (local === true) return { kind: 'local', url: urlOf(localPort, database, host), reason: `a server answers on ${host}:${localPort}` };

  const { port, started } = await startEmbeddedPostgres({ dir: opts.dir, port: opts.port, osUser: opts.osUser, log: opts.log });
  return {
    kind: 'embedded',
    url: urlOf(port, database),
    reason: `no usable server on ${host}:${localPort} (${local}); DATABASE_URL is not set`,
    dir: opts.dir,
    port,
    started,
  };
}

/** True when a Postgres server accepts `postgres@` there, else why not. */
async function probe(url: string): Promise<true | string> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === 'ECONNREFUSED' ? 'nothing listens there' : err.message || String(err.code);
  } finally {
    await c.end().catch(() => undefined);
  }
}

type Binaries = { initdb: string; pgCtl: string; postgres: string };
const binariesIn = (dir: string): Binaries => ({ initdb: path.join(dir, 'initdb'), pgCtl: path.join(dir, 'pg_ctl'), postgres: path.join(dir, 'postgres') });

/** The binaries shipped by `@embedded-postgres/<platform>-<arch>` (a dependency of `embedded-postgres`). */
export function embeddedBinaries(): Binaries {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  // The package's `exports` hides its files from require.resolve: look in node_modules upwards.
  const searched: string[] = [];
  for (let at = __dirname; ; at = path.dirname(at)) {
    searched.push(path.join(at, 'node_modules', pkg, 'native', 'bin'));
    if (path.dirname(at) === at) break;
  }
  const dir = searched.find((p) => existsSync(path.join(p, 'pg_ctl')));
  if (!dir) throw new Error(`no embedded Postgres binaries for ${platform()}-${arch()} (${pkg} is not installed; run npm ci)`);
  return binariesIn(dir);
}

/**
 * The binaries as `as` can run them. As root, the checkout may sit where the server's user cannot
 * reach (a clone under /root): then a copy of the package's `native/` folder in the temp folder,
 * made once per version, is used instead.
 */
async function binariesFor(as: RunAs): Promise<Binaries> {
  const bin = embeddedBinaries();
  if (as.uid === undefined) return bin;
  const runs = () => run(bin.pgCtl, ['--version'], as).then(() => true, () => false);
  if (await runs()) return bin;
  const native = path.dirname(path.dirname(bin.pgCtl));
  const { version } = JSON.parse(readFileSync(path.join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const copy = path.join(tmpdir(), `flowruns-embedded-postgres-${platform()}-${arch()}-${version}`);
  if (!existsSync(path.join(copy, 'bin', 'pg_ctl'))) {
    const partial = `${copy}.${process.pid}.tmp`;
    rmSync(partial, { recursive: true, force: true });
    await run('cp', ['-a', native, partial]);
    await run('chmod', ['-R', 'a+rX', partial]);
    try {
      renameSync(partial, copy);
    } catch {
      rmSync(partial, { recursive: true, force: true }); // another process made it first
    }
  }
  return binariesIn(path.join(copy, 'bin'));
}

interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
}

/** Whom the server runs as: ourselves, or as root an unprivileged user (Postgres refuses root). */
async function runAs(osUser: string | undefined, dataDir: string): Promise<RunAs> {
  if (userInfo().uid !== 0) return {};
  if (existsSync(dataDir)) {
    const st = statSync(dataDir);
    if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  }
  const wanted = osUser ? [osUser] : [SUPERUSER, 'nobody'];
  for (const name of wanted) {
    const ids = await idsOf(name);
    if (ids) return ids;
  }
  throw new Error(`running as root, and no user ${wanted.join(' or ')} to run Postgres as (set EMBEDDED_POSTGRES_OS_USER)`);
}

async function idsOf(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return undefined;
  }
}

function run(file: string, args: string[], as: RunAs = {}, timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...as, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as { code?: unknown }).code;
        reject(Object.assign(new Error(`${path.basename(file)} ${args[0] ?? ''} failed (${code}): ${(stderr || stdout || err.message).trim()}`), { exitCode: code }));
      } else resolve(stdout);
    });
  });
}

const dataDirOf = (dir: string) => path.join(dir, 'data');

/** The port of the server running on this folder's data, if one runs (its postmaster.pid, checked by pg_ctl). */
export async function embeddedStatus(dir: string): Promise<{ running: false } | { running: true; port: number; pid: number }> {
  const data = dataDirOf(dir);
  if (!existsSync(path.join(data, 'PG_VERSION'))) return { running: false };
  try {
    const as = await runAs(undefined, data);
    await run((await binariesFor(as)).pgCtl, ['status', '-D', data], as);
  } catch {
    return { running: false };
  }
  const lines = readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n');
  return { running: true, pid: Number(lines[0]), port: Number(lines[3]) };
}

/** Creates the cluster on first use, then starts it (on `port`, the last port, or a free one) unless it runs. */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port?: number;
  osUser?: string;
  log?: (line: string) => void;
}): Promise<{ port: number; started: boolean }> {
  const log = opts.log ?? (() => undefined);
  const data = dataDirOf(opts.dir);
  const status = await embeddedStatus(opts.dir);
  if (status.running) {
    if (opts.port !== undefined && opts.port !== status.port) {
      throw new Error(`the embedded Postgres in ${opts.dir} already runs on port ${status.port}, not ${opts.port} (npm run down first)`);
    }
    return { port: status.port, started: false };
  }

  mkdirSync(opts.dir, { recursive: true });
  const as = await runAs(opts.osUser, data);
  const bin = await binariesFor(as);
  // As root: the folder belongs to the server's user, so it can enter it even when it is private (mkdtemp).
  if (as.uid !== undefined) chownSync(opts.dir, as.uid, as.gid ?? as.uid);
  if (!existsSync(path.join(data, 'PG_VERSION'))) {
    log(`initialising an embedded Postgres cluster in ${data}`);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    if (as.uid !== undefined) chownSync(data, as.uid, as.gid ?? as.uid);
    await run(bin.initdb, ['-D', data, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-instructions'], as).catch((e: Error) => {
      throw new Error(`${e.message}${as.uid !== undefined ? ` (as uid ${as.uid}: it must be able to reach ${bin.initdb} and ${data})` : ''}`);
    });
    // Loopback TCP only: no Unix socket (its default folder may not exist or be writable here).
    appendFileSync(path.join(data, 'postgresql.conf'), "\n# flow-runs (scripts/local-postgres.ts)\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n");
  }

  const portFile = path.join(opts.dir, 'port');
  const last = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8').trim()) : undefined;
  const port = opts.port ?? (last && (await isFree(last)) ? last : await freePort());
  if (opts.port !== undefined && !(await isFree(opts.port))) throw new Error(`port ${opts.port} for the embedded Postgres is in use`);
  const logFile = path.join(opts.dir, 'postgres.log');
  if (as.uid !== undefined) {
    writeFileSync(logFile, '', { flag: 'a' });
    chownSync(logFile, as.uid, as.gid ?? as.uid);
  }
  log(`starting the embedded Postgres on 127.0.0.1:${port} (log ${logFile})`);
  await run(bin.pgCtl, ['start', '-D', data, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port}`], as, 90000).catch((e: Error) => {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n') : '';
    throw new Error(`${e.message}\n${tail}`);
  });
  writeFileSync(portFile, `${port}\n`);
  return { port, started: true };
}

/** Stops the embedded server on this folder if it runs (fast shutdown: sessions are ended). */
export async function stopEmbeddedPostgres(dir: string): Promise<boolean> {
  const status = await embeddedStatus(dir);
  if (!status.running) return false;
  const data = dataDirOf(dir);
  const as = await runAs(undefined, data);
  await run((await binariesFor(as)).pgCtl, ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60'], as, 90000);
  return true;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const describeChoice = (c: PostgresChoice): string => {
  switch (c.kind) {
    case 'env':
      return `Postgres: DATABASE_URL (${redact(c.url)})`;
    case 'local':
      return `Postgres: the local server at ${c.url} (${c.reason})`;
    case 'embedded':
      return `Postgres: embedded, ${c.started ? 'started' : 'already running'} on 127.0.0.1:${c.port}, data in ${c.dir} (${c.reason}); npm run down stops it`;
    default: {
      const never: never = c;
      return never;
    }
  }
};
const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/** The folder `npm run up` keeps the embedded server in: `<FLOWRUNS_CACHE_DIR or .cache>/postgres` (the scripts run from the repo root). */
export const defaultDir = (env: NodeJS.ProcessEnv = process.env) => path.resolve(env.FLOWRUNS_CACHE_DIR ?? '.cache', 'postgres');

async function main(argv: string[]): Promise<number> {
  const env = process.env;
  const dir = defaultDir(env);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const port = env.EMBEDDED_POSTGRES_PORT ? Number(env.EMBEDDED_POSTGRES_PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    say(`error: EMBEDDED_POSTGRES_PORT: "${env.EMBEDDED_POSTGRES_PORT}" is not a port`);
    return 2;
  }
  switch (argv[0]) {
    case 'choose': {
      const choice = await choosePostgres({ databaseUrl: env.DATABASE_URL || undefined, dir, port, osUser: env.EMBEDDED_POSTGRES_OS_USER || undefined, log: say });
      say(describeChoice(choice));
      process.stdout.write(`DATABASE_URL=${choice.url}\n`);
      return 0;
    }
    case 'stop':
      say((await stopEmbeddedPostgres(dir)) ? `stopped the embedded Postgres (${dir})` : 'the embedded Postgres is not running');
      return 0;
    case 'status': {
      const s = await embeddedStatus(dir);
      say(s.running ? `the embedded Postgres runs on 127.0.0.1:${s.port} (pid ${s.pid}, ${dir})` : 'the embedded Postgres is not running');
      return s.running ? 0 : 3;
    }
    default:
      say('usage: local-postgres.ts choose|stop|status');
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`error: ${e.message}\n`);
      process.exit(1);
    },
  );
}
