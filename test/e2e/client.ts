import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FlowRunWithSteps } from '@flowruns/contracts';
import { waitFor } from '@flowruns/testing';

const root = path.resolve(__dirname, '../..');

/** A client of the public API, as a user's code would be. */
export function gatewayClient(baseUrl: string, apiKey: string) {
  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${baseUrl}${p}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> & { [k: string]: unknown } };
  };
  /** The answer as text (NDJSON exports), with its content type. */
  const raw = async (method: string, p: string) => {
    const r = await fetch(`${baseUrl}${p}`, { method, headers: { authorization: `Bearer ${apiKey}` } });
    return { status: r.status, contentType: r.headers.get('content-type'), text: await r.text() };
  };
  return {
    call,
    raw,
    get: (p: string, headers?: Record<string, string>) => call('GET', p, undefined, headers),
    post: (p: string, body?: unknown, headers?: Record<string, string>) => call('POST', p, body, headers),
    /** Polls the run until `accept` holds (default: it has the status), then returns it. */
    async waitForRun(runId: string, status: string | ((run: FlowRunWithSteps) => boolean), timeoutMs = 30000): Promise<FlowRunWithSteps> {
      const accept = typeof status === 'string' ? (r: FlowRunWithSteps) => r.status === status : status;
      let last: unknown;
      return waitFor(
        async () => {
          const r = await call('GET', `/api/v1/flow-runs/${runId}`);
          last = r.body;
          const run = r.body as unknown as FlowRunWithSteps;
          return r.status === 200 && accept(run) ? run : undefined;
        },
        { timeoutMs, what: `run ${runId} to reach ${typeof status === 'string' ? status : 'the expected state'} (last: ${JSON.stringify(last)?.slice(0, 400)})` },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)?.slice(0, 800)}`);
      });
    },
  };
}

/** A local HTTP target standing in for the outside world that flow steps call; it counts calls. */
export async function startTarget(handler?: (req: http.IncomingMessage, body: string) => { status: number; body: unknown }) {
  const calls: { method: string; url: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', body });
      const answer = handler?.(req, body) ?? { status: 200, body: { ok: true, path: req.url } };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    count: (p: string) => calls.filter((c) => c.url === p).length,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const execFileAsync = promisify(execFile);

/**
 * The operator CLI, without blocking the test's event loop. A synchronous CLI call takes seconds on
 * a busy machine; two in a row can outlast the gateway's 5 s keep-alive timeout, which then closes
 * the test's pooled idle socket unseen, and the next request fails with "other side closed" before
 * it reaches the gateway (the pattern of finding 5 in docs/reliability.md).
 */
async function cli(databaseUrl: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [path.join(root, 'dist/apps/cli/src/main.js'), ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
  });
  return stdout;
}

/** Creates an API key with the operator CLI, as a user would (without blocking the event loop: see `cli`). */
export async function newApiKey(databaseUrl: string, projectId: string): Promise<{ id: string; key: string }> {
  const out = await cli(databaseUrl, ['api-keys:create', '--project', projectId]);
  const key = out.trim().split('\n').pop();
  const id = /\b(key_[A-Za-z0-9-]+)\b/.exec(out)?.[1];
  if (!id || !key) throw new Error(`no key id or key in the CLI output: ${out}`);
  return { id, key };
}

/** Revokes a key with the operator CLI, as an operator would. */
export const revokeKey = (databaseUrl: string, keyId: string): Promise<string> => cli(databaseUrl, ['api-keys:revoke', keyId]);

/** One HTTP answer as a contract test needs it: status, headers, parsed JSON body (or undefined) and raw text. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
  readonly text: string;
}

/**
 * A raw request to the gateway: `key` null sends no Authorization header, `authorization` sends
 * that header verbatim, `rawBody` is sent as it is (for malformed JSON and oversized bodies).
 */
export async function httpRequest(
  baseUrl: string,
  method: string,
  p: string,
  opts: { key?: string | null; authorization?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined || opts.rawBody !== undefined) headers['content-type'] ??= 'application/json';
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const r = await fetch(`${baseUrl}${p}`, {
    method,
    headers,
    body: opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
  });
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, body, text };
}

/**
 * The public error contract, checked on every answer that is an error: never a 5xx, and always the
 * envelope `{ statusCode, code, params }` with `statusCode` equal to the HTTP status and nothing else.
 */
export function assertContractAnswer(what: string, a: HttpAnswer): void {
  if (a.status >= 500) throw new Error(`${what}: answered ${a.status} (never expected a 5xx): ${a.text.slice(0, 500)}`);
  if (a.status < 400) return;
  const b = a.body as Record<string, unknown> | undefined;
  const ok =
    b !== undefined &&
    b !== null &&
    typeof b === 'object' &&
    Object.keys(b).sort().join(',') === 'code,params,statusCode' &&
    b.statusCode === a.status &&
    typeof b.code === 'string' &&
    typeof b.params === 'object' &&
    b.params !== null &&
    !Array.isArray(b.params);
  if (!ok) throw new Error(`${what}: ${a.status} without the error envelope { statusCode, code, params }: ${a.text.slice(0, 500)}`);
}
