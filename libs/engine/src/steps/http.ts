import { fetch, type Response } from 'undici';
import { z } from 'zod';
import { DestinationRefusedError, guardedAgent, NOTHING_ALLOWED, type DestinationAllowList, type ResolveAll } from './destinations';
import { abortReason, parseSettings } from './settings';
import { failed, succeeded, type StepExecutor } from './types';

export interface HttpStepOptions {
  /** Deadline for one request: connecting, sending and reading the whole answer. */
  readonly timeoutMs: number;
  /**
   * The largest answer body read. Outputs travel to the command service in one report, so an
   * unbounded body would fail the report instead of the step.
   */
  readonly maxResponseBytes?: number;
  /**
   * Destinations reached although the SSRF guard blocks them (`parseAllowList`): by default none, so
   * loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved addresses are refused.
   */
  readonly allow?: DestinationAllowList;
  /** Resolves host names for the guard; default `dns.lookup`. Tests inject one. */
  readonly resolveAll?: ResolveAll;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

const HttpSettings = z.object({
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(METHODS)),
  url: z
    .string()
    .pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
  headers: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
    .optional(),
  body: z.unknown().optional(),
});

const isJsonType = (contentType: string | null): boolean =>
  contentType !== null && /^application\/([\w.-]+\+)?json$/i.test(contentType.split(';')[0].trim());

class TooLarge extends Error {}

async function readBody(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new TooLarge(`response body larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string, contentType: string | null): unknown {
  if (!isJsonType(contentType)) return text;
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Says JSON, is not: keep what came so that the author can see it.
    return text;
  }
}

const refusalOf = (e: unknown): DestinationRefusedError | undefined => {
  const cause = (e as { cause?: unknown }).cause;
  return e instanceof DestinationRefusedError ? e : cause instanceof DestinationRefusedError ? cause : undefined;
};

/** Why a request failed, without the noise of `fetch failed`: the cause's code and message. */
function describeNetworkError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause;
  if (cause?.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return err.message ?? String(e);
}

/**
 * `http { method, url, headers?, body? }` → output `{ status, headers, body }`. A JSON answer's
 * body is parsed; any other is text. A body that is a string is sent as it is; any other value is
 * sent as JSON (`content-type: application/json` unless the settings set one). A status outside
 * 2xx fails the step with `{ message, status }` (the answer is still the step's output); a network
 * error or the per-request timeout fails it with `{ message }`.
 *
 * Every connection, the redirects' included, goes through the SSRF guard (`guardedAgent`): a
 * blocked destination fails the step with `{ message: '<method> <url>: destination … is not
 * allowed (<reason> address)' }` before anything is sent to it.
 */
export function httpStep(opts: HttpStepOptions): StepExecutor {
  const limit = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const dispatcher = guardedAgent({ allow: opts.allow ?? NOTHING_ALLOWED, resolveAll: opts.resolveAll });
  return async (settings, ctx) => {
    const parsed = parseSettings(HttpSettings, settings);
    if (!parsed.ok) return parsed.outcome;
    const { method, url, body } = parsed.value;
    const headers: Record<string, string> = { ...parsed.value.headers };
    const hasBody = body !== undefined && body !== null;
    if (hasBody && (method === 'GET' || method === 'HEAD')) {
      return failed({ message: `invalid settings.body: a ${method} request cannot have a body` });
    }
    let payload: string | undefined;
    if (hasBody) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
      if (!hasType) headers['content-type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    }

    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    try {
      // undici's own fetch, not Node's global one: the dispatcher must be this undici's. Redirects are
      // followed by fetch (at most 20), each hop connecting through the same guarded dispatcher.
      const res = await fetch(url, { method, headers, body: payload, signal, redirect: 'follow', dispatcher });
      const text = await readBody(res, limit);
      const output = {
        status: res.status,
        headers: Object.fromEntries(res.headers.entries()),
        body: parseBody(text, res.headers.get('content-type')),
      };
      if (res.status >= 200 && res.status < 300) return succeeded(output);
      return failed({ message: `${method} ${url} answered ${res.status}`, status: res.status }, output);
    } catch (e) {
      // The driver's abort is not the step's failure: the driver decides what it means.
      if (ctx.signal.aborted) throw abortReason(ctx.signal);
      if (timeout.aborted) return failed({ message: `${method} ${url} timed out after ${opts.timeoutMs} ms` });
      if (e instanceof TooLarge) return failed({ message: `${method} ${url}: ${e.message}` });
      const refused = refusalOf(e);
      if (refused) return failed({ message: `${method} ${url}: ${refused.message}` });
      return failed({ message: `${method} ${url} failed: ${describeNetworkError(e)}` });
    }
  };
}
