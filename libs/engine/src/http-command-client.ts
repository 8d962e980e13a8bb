import {
  CommandResultSchema,
  FlowRunSchema,
  INTERNAL_TOKEN_HEADER,
  LeaseResultSchema,
  RunExecutionSchema,
  type CommandResult,
  type FinishStepRequest,
  type FlowRun,
  type LeaseResult,
  type TriggerRunRequestInput,
} from '@flowruns/contracts';
import { z } from 'zod';
import { CommandServiceError, CommandServiceUnavailable, type CommandServicePort, type RunExecutionView } from './command-port';

export interface HttpCommandClientOptions {
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

const LooseCommandResult = CommandResultSchema.partial().loose();
const PauseAnswer = LooseCommandResult.extend({ requestId: z.string().optional() });

type Retry = 'transient' | 'refused-only';

const enc = encodeURIComponent;
const runPath = (runId: string) => `/internal/runs/${enc(runId)}`;
const TRANSIENT_STATUSES = new Set([502, 503, 504]);

/**
 * The command service's internal API over HTTP (Node's fetch). Reports are safe to repeat (the
 * command service answers a repeated start/finish with no new event), so they are retried on
 * transient failures; triggering a child run is not, so it is retried only when the connection was
 * refused (the request never arrived).
 */
export class HttpCommandClient implements CommandServicePort {
  private readonly baseUrl: string;
  private readonly retries: number;
  private readonly retryBaseMs: number;

  constructor(private readonly opts: HttpCommandClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.retries = opts.retries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
  }

  async getExecution(runId: string): Promise<RunExecutionView | null> {
    try {
      const body = await this.call('GET', `${runPath(runId)}/execution`, undefined, 'transient');
      const view = this.expect(RunExecutionSchema, body, 'execution view');
      // Not (yet) in the contract: when the command service sends it, the execution time counts from it.
      const since = (body as { runningSince?: unknown }).runningSince;
      return typeof since === 'string' ? { ...view, runningSince: since } : view;
    } catch (e) {
      if (e instanceof CommandServiceError && e.status === 404) return null;
      throw e;
    }
  }

  async acquireLease(runId: string, workerId: string, ttlMs: number): Promise<LeaseResult> {
    const body = await this.call('POST', `${runPath(runId)}/lease`, { workerId, ttlMs }, 'transient');
    return this.expect(LeaseResultSchema, body, 'lease');
  }

  async releaseLease(runId: string, workerId: string): Promise<void> {
    await this.call('POST', `${runPath(runId)}/lease/release`, { workerId }, 'transient');
  }

  async claimExpired(workerId: string, ttlMs: number, limit: number): Promise<string[]> {
    const body = await this.call('POST', '/internal/leases/claim-expired', { workerId, ttlMs, limit }, 'transient');
    return this.expect(z.object({ runIds: z.array(z.string()) }), body, 'claim-expired').runIds;
  }

  startStep(runId: string, stepName: string, req: { stepType: string; workerId?: string }): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/steps/${enc(stepName)}/start`, req);
  }

  finishStep(runId: string, stepName: string, req: FinishStepRequest): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/steps/${enc(stepName)}/finish`, req);
  }

  async pause(runId: string, req: { stepName: string; workerId?: string }): Promise<CommandResult & { requestId?: string }> {
    const body = await this.call('POST', `${runPath(runId)}/pause`, req, 'transient');
    return this.expect(PauseAnswer, body, 'pause') as CommandResult & { requestId?: string };
  }

  succeed(runId: string, req: { workerId?: string }): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/succeed`, req);
  }

  fail(runId: string, req: { failedStepName: string | null; workerId?: string }): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/fail`, req);
  }

  timeOut(runId: string, req: { reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST' }): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/time-out`, req);
  }

  internalError(runId: string, req: { reason: string }): Promise<CommandResult> {
    return this.command(`${runPath(runId)}/internal-error`, { reason: req.reason.slice(0, 512) });
  }

  async triggerRun(flowId: string, req: TriggerRunRequestInput): Promise<FlowRun> {
    const body = await this.call('POST', `/internal/flows/${enc(flowId)}/runs`, req, 'refused-only');
    return this.expect(FlowRunSchema.loose(), body, 'trigger') as FlowRun;
  }

  /** Readiness: the command service answers its liveness probe. */
  async probe(timeoutMs = 1500): Promise<{ httpStatus: number }> {
    const res = await fetch(`${this.baseUrl}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`command service /health/live answered ${res.status}`);
    return { httpStatus: res.status };
  }

  private async command(path: string, body: unknown): Promise<CommandResult> {
    const answer = await this.call('POST', path, body, 'transient');
    return this.expect(LooseCommandResult, answer, path) as CommandResult;
  }

  private expect<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    throw new CommandServiceUnavailable(`command service answer to ${what} breaks the contract: ${r.error.issues[0]?.message}`);
  }

  private async call(method: 'GET' | 'POST', path: string, body: unknown, retry: Retry): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.retries;
      let res: Response;
      try {
        res = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: {
            [INTERNAL_TOKEN_HEADER]: this.opts.token,
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
      } catch (e) {
        const err = e as Error & { cause?: { code?: string } };
        const refused = err.cause?.code === 'ECONNREFUSED';
        if (!last && (retry === 'transient' || refused)) {
          await this.backoff(attempt);
          continue;
        }
        throw new CommandServiceUnavailable(`${method} ${path}: ${err.cause?.code ?? err.name}: ${err.message}`);
      }
      const text = await res.text().catch(() => '');
      if (res.ok) {
        try {
          return text.length ? (JSON.parse(text) as unknown) : {};
        } catch {
          throw new CommandServiceUnavailable(`${method} ${path}: answer is not JSON`);
        }
      }
      if (TRANSIENT_STATUSES.has(res.status) && retry === 'transient' && !last) {
        await this.backoff(attempt);
        continue;
      }
      let envelope: { code?: unknown; params?: unknown } = {};
      try {
        envelope = JSON.parse(text) as typeof envelope;
      } catch {
        // not an envelope: the status alone says it
      }
      const code = typeof envelope.code === 'string' ? envelope.code : `HTTP_${res.status}`;
      const params = typeof envelope.params === 'object' && envelope.params !== null ? (envelope.params as Record<string, unknown>) : {};
      throw new CommandServiceError(res.status, code, params, `${method} ${path}`);
    }
  }

  private backoff(attempt: number): Promise<void> {
    const ms = Math.min(this.retryBaseMs * 2 ** attempt, 2000);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
