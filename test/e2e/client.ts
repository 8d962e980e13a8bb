import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FlowRunWithSteps } from '@flowruns/contracts';
import { waitFor } from '@flowruns/testing';

const root = path.resolve(__dirname, '../..');

/** Creates an API key with the operator CLI, as a user would; its last line is the key. */
export function createApiKey(databaseUrl: string, projectId: string): string {
  const out = execFileSync(process.execPath, [path.join(root, 'dist/apps/cli/src/main.js'), 'api-keys:create', '--project', projectId], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

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
  return {
    call,
    get: (p: string) => call('GET', p),
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
