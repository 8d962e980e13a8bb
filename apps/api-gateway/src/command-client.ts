import { Inject, Injectable } from '@nestjs/common';
import {
  BulkRunResultSchema,
  CommandResultSchema,
  EraseResultSchema,
  ResumeResultSchema,
  RunHeadSchema,
  type BulkRunRequestInput,
  type BulkRunResult,
  type CommandResult,
  type CreateFlow,
  type EraseResult,
  type ErrorEnvelope,
  type Flow,
  type FlowRun,
  type PublishFlowVersion,
  type ResumeResult,
  type RetryRunRequest,
  type RunHead,
  type StopRunRequestSchema,
  type TriggerItemInput,
  type TriggerRunRequestInput,
} from '@flowruns/contracts';
import { CallBatcher, EnvelopeException, JsonText, componentLogger, failureCode, requestInternal } from '@flowruns/platform';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import type { TraceContext } from './traceparent';
import type { z } from 'zod';

/** The command service's error envelope, as it answers it. */
function asEnvelope(body: unknown, status: number): ErrorEnvelope | null {
  if (typeof body !== 'object' || body === null) return null;
  const { code, params } = body as { code?: unknown; params?: unknown };
  if (typeof code !== 'string' || typeof params !== 'object' || params === null) return null;
  // A code this build does not know yet is still the command service's answer: pass it on.
  return { statusCode: status, code: code as ErrorEnvelope['code'], params: params as Record<string, unknown> };
}

const runPath = (runId: string) => `/internal/runs/${encodeURIComponent(runId)}`;

/** A refusal inside a batch names `triggers.<i>.<field>`; the client sent a single request: `<field>` (or `body`). */
const unbatchedField = (params: Record<string, unknown>): Record<string, unknown> =>
  typeof params.field === 'string' && /^triggers\.\d+/.test(params.field)
    ? { ...params, field: params.field.replace(/^triggers\.\d+\.?/, '') || 'body' }
    : params;

const unavailable = () => EnvelopeException.of('SERVICE_UNAVAILABLE', { message: 'command service unavailable' });

/**
 * The gateway's port to the command service's internal API: every change goes there. Answers are
 * passed through; errors keep the command service's status and envelope, except where the fault
 * is not the client's (unreachable, timed out, the gateway's own credentials refused, a reply that
 * is not an envelope), which answer 503.
 */
@Injectable()
export class CommandClient {
  private readonly log = componentLogger('command-client');
  private readonly baseUrl: string;
  private readonly triggers: CallBatcher<TriggerItemInput, FlowRun> | null;

  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig) {
    this.baseUrl = config.COMMAND_SERVICE_URL.replace(/\/+$/, '');
    this.triggers =
      config.GATEWAY_TRIGGER_BATCH > 0
        ? new CallBatcher<TriggerItemInput, FlowRun>({
            key: 'triggers',
            what: 'triggers',
            maxItems: config.GATEWAY_TRIGGER_BATCH,
            maxChars: 1_000_000,
            maxInFlight: config.GATEWAY_TRIGGER_CALLS_IN_FLIGHT,
            // Each trigger carries its own request's span (the command service opens one per trigger):
            // the batch call itself belongs to no single request's trace.
            send: (body) => this.send('POST', '/internal/triggers', new JsonText(body), null),
            refusal: (e) => new EnvelopeException({ ...e, params: unbatchedField(e.params) }),
            breach: (message) => {
              this.log.error({ path: '/internal/triggers' }, message);
              return unavailable();
            },
          })
        : null;
  }

  createFlow(input: CreateFlow, trace: TraceContext): Promise<Flow> {
    return this.send<Flow>('POST', '/internal/flows', input, trace);
  }

  /** `req` as the command service accepts it: fields it defaults (environment) may be left out. */
  triggerRun(flowId: string, req: TriggerRunRequestInput, trace: TraceContext): Promise<FlowRun> {
    if (this.triggers) return this.triggers.submit({ ...req, flowId, traceparent: trace.traceparent });
    return this.send<FlowRun>('POST', `/internal/flows/${encodeURIComponent(flowId)}/runs`, req, trace);
  }

  publishFlowVersion(flowId: string, input: PublishFlowVersion, trace: TraceContext): Promise<Flow> {
    return this.send<Flow>('POST', `/internal/flows/${encodeURIComponent(flowId)}/versions`, input, trace);
  }

  listFlows(projectId: string, trace: TraceContext): Promise<{ data: Flow[] }> {
    return this.send('GET', `/internal/flows?${new URLSearchParams({ projectId })}`, undefined, trace);
  }

  /** Scoped to `projectId`: another project's flow answers 404 like an unknown one. */
  getFlow(flowId: string, projectId: string, trace: TraceContext): Promise<Flow> {
    return this.send('GET', `/internal/flows/${encodeURIComponent(flowId)}?${new URLSearchParams({ projectId })}`, undefined, trace);
  }

  /** Removes a finished run's execution data now (the command service records it as a purge). */
  async eraseRun(runId: string, projectId: string, trace: TraceContext): Promise<EraseResult> {
    const path = `${runPath(runId)}/erase`;
    return this.expect(EraseResultSchema, await this.send('POST', path, { projectId }, trace), path, trace);
  }

  /** The run's version and status in the write model, or null when it does not exist in the project. */
  async runHead(runId: string, projectId: string, trace: TraceContext): Promise<RunHead | null> {
    const path = `${runPath(runId)}/head?${new URLSearchParams({ projectId })}`;
    try {
      return this.expect(RunHeadSchema, await this.send('GET', path, undefined, trace), path, trace);
    } catch (e) {
      if (e instanceof EnvelopeException && e.envelope.statusCode === 404) return null;
      throw e;
    }
  }

  /** The same run in a new attempt (FROM_FAILED_STEP) or the new run (ON_LATEST_VERSION). */
  retryRun(runId: string, req: RetryRunRequest, trace: TraceContext): Promise<FlowRun> {
    return this.send('POST', `${runPath(runId)}/retry`, req, trace);
  }

  /** No project: the request id is the capability. Answers exactly `{ runId, stepName, output }`. */
  async resumeRun(runId: string, req: { requestId: string; body: unknown }, trace: TraceContext): Promise<ResumeResult> {
    const path = `${runPath(runId)}/resume`;
    return this.expect(ResumeResultSchema, await this.send('POST', path, req, trace), path, trace);
  }

  /** RUNNING/PAUSED → STOPPED (descendants too); `eventsAppended` 0 means nothing changed. */
  async stopRun(runId: string, req: z.input<typeof StopRunRequestSchema>, trace: TraceContext): Promise<CommandResult> {
    const path = `${runPath(runId)}/stop`;
    return this.expect(CommandResultSchema, await this.send('POST', path, req, trace), path, trace);
  }

  /**
   * Cancel, retry or archive what a filter selects in the project; the command service works
   * batch by batch and answers when all are done, so this call has the bulk deadline.
   */
  async bulk(req: BulkRunRequestInput, trace: TraceContext): Promise<BulkRunResult> {
    const path = '/internal/runs/bulk';
    const answer = await this.send('POST', path, req, trace, this.config.GATEWAY_BULK_TIMEOUT_MS);
    return this.expect(BulkRunResultSchema, answer, path, trace);
  }

  /** Readiness: the command service answers its liveness probe. */
  async probe(timeoutMs = 1500): Promise<{ httpStatus: number }> {
    const res = await fetch(`${this.baseUrl}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`command service /health/live answered ${res.status}`);
    // Not `status`: terminus reserves that key in a probe's details.
    return { httpStatus: res.status };
  }

  /**
   * An answer the gateway reads rather than passes on must have the contract's shape: a bulk
   * operation that counted an answer without `eventsAppended` as "unchanged" would under-report
   * silently. Anything else is the command service's fault: 503.
   */
  private expect<S extends z.ZodType>(schema: S, answer: unknown, path: string, trace: TraceContext): z.infer<S> {
    const r = schema.safeParse(answer);
    if (r.success) return r.data;
    this.log.error({ path, traceId: trace.traceId, issue: r.error.issues[0]?.message }, 'command service answer breaks the contract');
    throw unavailable();
  }

  private async send<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    trace: TraceContext | null,
    timeoutMs = this.config.COMMAND_SERVICE_TIMEOUT_MS,
  ): Promise<T> {
    const started = Date.now();
    let status: number;
    let text: string;
    try {
      // One deadline for connecting, sending and reading the whole answer.
      const res = await requestInternal({
        url: `${this.baseUrl}${path}`,
        token: this.config.INTERNAL_API_TOKEN,
        method,
        body,
        traceparent: trace?.traceparent,
        timeoutMs,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      const err = e as Error;
      this.log.warn(
        { method, path, traceId: trace?.traceId, err: err.name, cause: failureCode(e) ?? err.message, ms: Date.now() - started },
        'command service unreachable',
      );
      throw unavailable();
    }

    let json: unknown;
    try {
      json = text.length ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300 && json !== undefined) return json as T;

    const envelope = json === undefined ? null : asEnvelope(json, status);
    if (status === 401 || status === 403) {
      // The command service refused the gateway's internal token: our misconfiguration, never
      // the client's, so it must not look like the client's API key was rejected.
      this.log.error({ method, path, status, traceId: trace?.traceId }, 'command service refused the internal token');
      throw unavailable();
    }
    if (envelope && status >= 400) {
      if (status >= 500) this.log.warn({ method, path, status, code: envelope.code, traceId: trace?.traceId }, 'command service failed');
      throw new EnvelopeException(envelope);
    }
    this.log.error({ method, path, status, traceId: trace?.traceId, body: text.slice(0, 200) }, 'unexpected answer from the command service');
    throw unavailable();
  }
}
