import { INTERNAL_TOKEN_HEADER, TRACEPARENT_HEADER, type ErrorCode } from '@flowruns/contracts';
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { currentTraceparent } from './tracing';

/**
 * One call to the command service's internal API through undici's `request`, not `fetch` (its
 * WHATWG layers — Request, Headers, web streams — cost ~0.3–0.9 ms of CPU per call on this machine;
 * bench/notes.md, session 25): the token, a JSON body on a POST, the caller's traceparent, and one
 * deadline over connecting, sending and reading the answer's body, which the caller reads.
 */
export function requestInternal(call: {
  readonly url: string;
  readonly token: string;
  readonly method: 'GET' | 'POST';
  readonly body: unknown;
  readonly traceparent?: string | null;
  readonly timeoutMs: number;
}): Promise<Dispatcher.ResponseData> {
  return request(call.url, {
    method: call.method,
    headers: {
      [INTERNAL_TOKEN_HEADER]: call.token,
      ...(call.method === 'POST' ? { 'content-type': 'application/json' } : {}),
      ...(call.traceparent ? { [TRACEPARENT_HEADER]: call.traceparent } : {}),
    },
    body: call.method !== 'POST' ? undefined : call.body instanceof JsonText ? call.body.text : JSON.stringify(call.body),
    signal: AbortSignal.timeout(call.timeoutMs),
  });
}

/** Why a call failed to reach its answer: the error's code (`ECONNREFUSED`, `UND_ERR_…`), if it has one. */
export const failureCode = (e: unknown): string | undefined => {
  const err = e as { code?: string; cause?: { code?: string } };
  return err.code ?? err.cause?.code;
};

/** The command service refused a request: its status and error envelope. */
export class CommandServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | string,
    readonly params: Readonly<Record<string, unknown>> = {},
    what = 'command service',
  ) {
    super(`${what} answered ${status} ${code}`);
    this.name = 'CommandServiceError';
  }
}

/** The command service could not be reached, timed out, or answered outside its contract. */
export class CommandServiceUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandServiceUnavailable';
  }
}

export interface InternalApiClientOptions {
  /** `COMMAND_SERVICE_URL`. */
  readonly baseUrl: string;
  /** `INTERNAL_API_TOKEN`, sent as `x-internal-token`. */
  readonly token: string;
  /** Deadline of one call (connect, send, read the answer). */
  readonly timeoutMs: number;
  /** Extra attempts after a transient failure (unreachable, 502/503/504). Default 3. */
  readonly retries?: number;
  /** First backoff between attempts, doubled each time (capped at 2 s). Default 200 ms. */
  readonly retryBaseMs?: number;
}

/** A request body already serialised to JSON (sent as is, not stringified again). */
export class JsonText {
  constructor(readonly text: string) {}
}

/**
 * When a failed call may be sent again: `transient` for requests that are safe to repeat (any
 * transient failure), `refused-only` for those that are not (only when the connection was refused,
 * so the request never arrived), `never` for long operations a caller repeats itself.
 */
export type RetryPolicy = 'transient' | 'refused-only' | 'never';

const TRANSIENT_STATUSES = new Set([502, 503, 504]);

/**
 * The command service's internal API over HTTP (`requestInternal`), for the processes that call it
 * (flow workers, retention, the CLI): the internal token, one deadline per call, retries with
 * backoff by policy, envelopes turned into `CommandServiceError`, everything else into
 * `CommandServiceUnavailable`.
 */
export class InternalApiClient {
  private readonly baseUrl: string;
  private readonly retries: number;
  private readonly retryBaseMs: number;

  constructor(private readonly opts: InternalApiClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.retries = opts.retries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
  }

  /** The answer parsed with `schema`; one outside the contract is `CommandServiceUnavailable`. */
  expect<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    throw new CommandServiceUnavailable(`command service answer to ${what} breaks the contract: ${r.error.issues[0]?.message}`);
  }

  /** Readiness: the command service answers its liveness probe. */
  async probe(timeoutMs = 1500): Promise<{ httpStatus: number }> {
    const res = await fetch(`${this.baseUrl}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`command service /health/live answered ${res.status}`);
    // Not `status`: terminus reserves that key in a probe's details.
    return { httpStatus: res.status };
  }

  async call(method: 'GET' | 'POST', path: string, body: unknown, retry: RetryPolicy, timeoutMs = this.opts.timeoutMs): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const last = retry === 'never' || attempt >= this.retries;
      let status: number;
      let text: string;
      try {
        const res = await requestInternal({
          url: `${this.baseUrl}${path}`,
          token: this.opts.token,
          method,
          body: body ?? {},
          // The caller's active span (a worker's step, a retention pass) parents the command.
          traceparent: currentTraceparent(),
          timeoutMs,
        });
        status = res.statusCode;
        text = await res.body.text().catch(() => '');
      } catch (e) {
        const err = e as Error;
        const code = failureCode(e);
        const refused = code === 'ECONNREFUSED';
        if (!last && (retry === 'transient' || refused)) {
          await this.backoff(attempt);
          continue;
        }
        throw new CommandServiceUnavailable(`${method} ${path}: ${code ?? err.name}: ${err.message}`);
      }
      if (status >= 200 && status < 300) {
        try {
          return text.length ? (JSON.parse(text) as unknown) : {};
        } catch {
          throw new CommandServiceUnavailable(`${method} ${path}: answer is not JSON`);
        }
      }
      if (TRANSIENT_STATUSES.has(status) && retry === 'transient' && !last) {
        await this.backoff(attempt);
        continue;
      }
      let envelope: { code?: unknown; params?: unknown } = {};
      try {
        envelope = JSON.parse(text) as typeof envelope;
      } catch {
        // not an envelope: the status alone says it
      }
      const code = typeof envelope.code === 'string' ? envelope.code : `HTTP_${status}`;
      const params = typeof envelope.params === 'object' && envelope.params !== null ? (envelope.params as Record<string, unknown>) : {};
      throw new CommandServiceError(status, code, params, `${method} ${path}`);
    }
  }

  private backoff(attempt: number): Promise<void> {
    const ms = Math.min(this.retryBaseMs * 2 ** attempt, 2000);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
