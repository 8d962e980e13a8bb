import {
  CommandResultSchema,
  FlowRunSchema,
  LeaseResultSchema,
  RunExecutionSchema,
  type CommandResult,
  type FinishStepRequest,
  type FlowRun,
  type LeaseResult,
  type TriggerRunRequestInput,
} from '@flowruns/contracts';
import { z } from 'zod';
import { InternalApiClient, JsonText, type InternalApiClientOptions, type RetryPolicy } from '@flowruns/platform';
import { CommandServiceError, type CommandServicePort, type RunExecutionView } from './command-port';
import { ReportBatcher, type ReportBatcherOptions } from './report-batcher';

/**
 * `COMMAND_SERVICE_URL`, `INTERNAL_API_TOKEN`, the deadline and retries of one call; with
 * `batchReports`, step starts and finishes, pauses, successes and failures go in batches
 * (`POST /internal/reports`, see `ReportBatcher`) instead of one call each.
 */
export type HttpCommandClientOptions = InternalApiClientOptions & { readonly batchReports?: ReportBatcherOptions };

const LooseCommandResult = CommandResultSchema.partial().loose();
const PauseAnswer = LooseCommandResult.extend({ requestId: z.string().optional() });

const enc = encodeURIComponent;
const runPath = (runId: string) => `/internal/runs/${enc(runId)}`;

/**
 * The command service's internal API over HTTP (Node's fetch). Reports are safe to repeat (the
 * command service answers a repeated start/finish with no new event), so they are retried on
 * transient failures; triggering a child run is not, so it is retried only when the connection was
 * refused (the request never arrived).
 */
export class HttpCommandClient implements CommandServicePort {
  private readonly http: InternalApiClient;
  private readonly batcher: ReportBatcher | null;

  constructor(opts: HttpCommandClientOptions) {
    this.http = new InternalApiClient(opts);
    // A batch is made of reports, each safe to repeat: the whole call is retried on transient failures.
    this.batcher = opts.batchReports
      ? new ReportBatcher((body) => this.http.call('POST', '/internal/reports', new JsonText(body), 'transient'), opts.batchReports)
      : null;
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
    if (this.batcher) return this.batcher.submit({ type: 'startStep', runId, stepName, ...req });
    return this.command(`${runPath(runId)}/steps/${enc(stepName)}/start`, req);
  }

  finishStep(runId: string, stepName: string, req: FinishStepRequest): Promise<CommandResult> {
    if (this.batcher) return this.batcher.submit({ type: 'finishStep', runId, stepName, ...req });
    return this.command(`${runPath(runId)}/steps/${enc(stepName)}/finish`, req);
  }

  async pause(runId: string, req: { stepName: string; workerId?: string }): Promise<CommandResult & { requestId?: string }> {
    if (this.batcher) return this.batcher.submit({ type: 'pause', runId, ...req });
    const body = await this.call('POST', `${runPath(runId)}/pause`, req, 'transient');
    return this.expect(PauseAnswer, body, 'pause') as CommandResult & { requestId?: string };
  }

  succeed(runId: string, req: { workerId?: string }): Promise<CommandResult> {
    if (this.batcher) return this.batcher.submit({ type: 'succeed', runId, ...req });
    return this.command(`${runPath(runId)}/succeed`, req);
  }

  fail(runId: string, req: { failedStepName: string | null; workerId?: string }): Promise<CommandResult> {
    if (this.batcher) return this.batcher.submit({ type: 'fail', runId, ...req });
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
  probe(timeoutMs?: number): Promise<{ httpStatus: number }> {
    return this.http.probe(timeoutMs);
  }

  private async command(path: string, body: unknown): Promise<CommandResult> {
    const answer = await this.call('POST', path, body, 'transient');
    return this.expect(LooseCommandResult, answer, path) as CommandResult;
  }

  private expect<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
    return this.http.expect(schema, body, what);
  }

  private call(method: 'GET' | 'POST', path: string, body: unknown, retry: RetryPolicy): Promise<unknown> {
    return this.http.call(method, path, body, retry);
  }
}
