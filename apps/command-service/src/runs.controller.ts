import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards, UsePipes } from '@nestjs/common';
import {
  BulkRunRequestSchema,
  ClaimExpiredRequestSchema,
  CreateFlowSchema,
  EraseRunRequestSchema,
  FailRunRequestSchema,
  FinishStepRequestSchema,
  InternalErrorRequestSchema,
  LeaseRequestSchema,
  PauseRunRequestSchema,
  PublishFlowVersionSchema,
  PurgeBatchRequestSchema,
  ReleaseLeaseRequestSchema,
  ResumeRunRequestSchema,
  EngineReportSchema,
  ReportBatchShellSchema,
  TriggerBatchShellSchema,
  TriggerItemSchema,
  findUnstorableJson,
  RetentionWindowSchema,
  RetryRunRequestSchema,
  StartStepRequestSchema,
  StopRunRequestSchema,
  SucceedRunRequestSchema,
  TimeOutRunRequestSchema,
  TRACEPARENT_HEADER,
  TriggerRunRequestSchema,
  isDomainError,
  storableText,
  type ReportResult,
  type DomainError,
  type ErrorEnvelope,
  type FlowRun,
  type TriggerItem,
} from '@flowruns/contracts';
import { EnvelopeException, GroupCommit, RouteParamsPipe, SpanKind, beginSpan, currentTraceparent, failSpan, orThrow, parseOrThrow } from '@flowruns/platform';
import { RunCommands } from '@flowruns/write-model';
import type { Response } from 'express';
import { z } from 'zod';
import { CommandMetricsGuard, countCommand } from './command-metrics.guard';
import { COMMAND_SERVICE_CONFIG, type CommandServiceConfig } from './config';
import { InternalTokenGuard } from './internal-token.guard';

/** Request bodies one group of single triggers holds at most (the payloads go in one statement). */
const TRIGGER_GROUP_BYTES = 1_000_000;

/** `?projectId=` of the flow reads: the project scopes them (another project's flow is not found). */
const ProjectQuerySchema = z.object({ projectId: storableText().min(1).max(128) });

/**
 * The internal, token-protected command API: the gateway and engines send every change here. Every
 * path parameter is an id (1 to 256 characters, no U+0000) or the call answers 400 naming it; the
 * body was checked for depth and unstorable text before it got here (configure.ts).
 */
@Controller('internal')
@UseGuards(InternalTokenGuard, CommandMetricsGuard)
@UsePipes(RouteParamsPipe)
export class RunsController {
  /** Single triggers in group commit (`COMMAND_TRIGGER_GROUP`; null: a transaction each), with their bodies' sizes. */
  private readonly triggerGroup: GroupCommit<{ readonly trigger: TriggerItem; readonly bytes: number }, FlowRun | DomainError> | null;

  constructor(
    private readonly commands: RunCommands,
    @Inject(COMMAND_SERVICE_CONFIG) private readonly config: CommandServiceConfig,
  ) {
    this.triggerGroup =
      config.COMMAND_TRIGGER_GROUP > 0
        ? new GroupCommit<{ readonly trigger: TriggerItem; readonly bytes: number }, FlowRun | DomainError>({
            maxItems: config.COMMAND_TRIGGER_GROUP,
            maxInFlight: config.COMMAND_TRIGGER_GROUPS_IN_FLIGHT,
            // The payloads are written by one statement: a group holds at most TRIGGER_GROUP_BYTES of
            // request bodies (as the gateway's batches hold at most 1 MB of JSON); a larger one goes alone.
            weight: { of: (x) => x.bytes, max: TRIGGER_GROUP_BYTES },
            // Each trigger decided and answered as its own (a refusal is its answer alone), as
            // `POST /internal/triggers` does; a failure of the transaction fails the group's requests.
            apply: async (items) => {
              const results = await this.commands.triggerMany(items.map((x) => x.trigger));
              return isDomainError(results) ? items.map(() => ({ ok: results })) : results.map((ok) => ({ ok }));
            },
          })
        : null;
  }

  // ---- Flows ----

  @Post('flows')
  async createFlow(@Body() body: unknown) {
    return orThrow(await this.commands.createFlow(parseOrThrow(CreateFlowSchema, body)));
  }

  @Post('flows/:flowId/versions')
  async publishFlowVersion(@Param('flowId') flowId: string, @Body() body: unknown) {
    return orThrow(await this.commands.publishFlowVersion(flowId, parseOrThrow(PublishFlowVersionSchema, body)));
  }

  @Get('flows')
  async listFlows(@Query() query: unknown) {
    const { projectId } = parseOrThrow(ProjectQuerySchema, query, 'query');
    return orThrow(await this.commands.listFlows(projectId));
  }

  @Get('flows/:flowId')
  async getFlow(@Param('flowId') flowId: string, @Query() query: unknown) {
    const { projectId } = parseOrThrow(ProjectQuerySchema, query, 'query');
    return orThrow(await this.commands.getFlow(projectId, flowId));
  }

  @Post('flows/:flowId/runs')
  async trigger(
    @Param('flowId') flowId: string,
    @Body() body: unknown,
    @Headers(TRACEPARENT_HEADER) tp?: string,
    @Headers('content-length') length?: string,
  ) {
    const req = parseOrThrow(TriggerRunRequestSchema, body);
    // Concurrent single triggers share a transaction (group commit): one lone caller waits for nobody.
    // A body of unknown size (chunked) counts as a full group's: it goes alone.
    if (this.triggerGroup) {
      return orThrow(await this.triggerGroup.submit({ trigger: { ...req, flowId, traceparent: tp }, bytes: Number(length) || TRIGGER_GROUP_BYTES }));
    }
    return orThrow(await this.commands.trigger(flowId, req, { traceparent: tp }));
  }

  // ---- Engine reports (fenced when they name a worker) ----

  @Post('runs/:runId/steps/:stepName/start')
  @HttpCode(200)
  async startStep(
    @Param('runId') runId: string,
    @Param('stepName') stepName: string,
    @Body() body: unknown,
    @Headers(TRACEPARENT_HEADER) tp?: string,
  ) {
    const { stepType, workerId } = parseOrThrow(StartStepRequestSchema, body);
    return orThrow(await this.commands.startStep(runId, stepName, stepType, { traceparent: tp, workerId }));
  }

  @Post('runs/:runId/steps/:stepName/finish')
  @HttpCode(200)
  async finishStep(
    @Param('runId') runId: string,
    @Param('stepName') stepName: string,
    @Body() body: unknown,
    @Headers(TRACEPARENT_HEADER) tp?: string,
  ) {
    const req = parseOrThrow(FinishStepRequestSchema, body);
    return orThrow(await this.commands.finishStep(runId, stepName, req, { traceparent: tp, workerId: req.workerId }));
  }

  /**
   * Many engine reports (start, finish, pause, succeed, fail; any runs, any workers) in one call and
   * one transaction. Each report is checked, decided and answered on its own, as its own endpoint
   * would: `{ results: [{ ok: <command result> } | { error: <envelope> }] }` in the order sent. A
   * report that is malformed, nested too deep or holds unstorable text is refused alone (400 naming
   * `reports.<i>.<field>`); only a body without 1 to 500 reports is refused whole.
   */
  @Post('reports')
  @HttpCode(200)
  reports(@Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string): Promise<BatchAnswer<ReportResult>> {
    const { reports } = parseOrThrow(ReportBatchShellSchema, body);
    return this.batch(reports, 'reports', EngineReportSchema, {
      span: (r) => `command-service.report ${r.type}`,
      command: (r) => r?.type ?? 'malformedReport',
      apply: (items) => this.commands.report(items, { traceparent: tp }),
    });
  }

  /**
   * Many triggers (`{ triggers: [{ flowId, …the single trigger's body, traceparent? }] }`, 1–500) in
   * one call and one transaction, each checked, decided and answered on its own, as `reports` does:
   * `{ results: [{ ok: FlowRun } | { error: <envelope> }] }` in the order sent.
   */
  @Post('triggers')
  @HttpCode(200)
  triggers(@Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string): Promise<BatchAnswer<FlowRun>> {
    const { triggers } = parseOrThrow(TriggerBatchShellSchema, body);
    return this.batch(triggers, 'triggers', TriggerItemSchema, {
      span: () => 'command-service.trigger',
      command: () => 'trigger',
      apply: (items) => this.commands.triggerMany(items, { traceparent: tp }),
    });
  }

  /**
   * A batch endpoint: each item checked (`batchItem`), the valid ones applied together in one use
   * case call, each inside a span of its own (`itemSpans`), answered and counted one by one.
   */
  private async batch<S extends z.ZodType<{ traceparent?: string }>, R>(
    raw: readonly unknown[],
    key: string,
    schema: S,
    how: {
      readonly span: (item: z.infer<S>) => string;
      /** The `command` label an item is counted under (undefined: the item was malformed). */
      readonly command: (item: z.infer<S> | undefined) => string;
      readonly apply: (items: z.infer<S>[]) => Promise<(R | DomainError)[] | DomainError>;
    },
  ): Promise<BatchAnswer<R>> {
    const answers = new Array<BatchAnswer<R>['results'][number]>(raw.length);
    const valid: { index: number; item: z.infer<S> }[] = [];
    raw.forEach((r, index) => {
      const checked = this.batchItem(schema, r, `${key}.${index}`);
      if ('error' in checked) answers[index] = checked;
      else valid.push({ index, item: checked.item });
    });
    if (valid.length > 0) {
      const spans = itemSpans(valid.map((v) => v.item), how.span, raw.length);
      const result = await spans.around(() => how.apply(spans.items));
      spans.end(Array.isArray(result) ? result : valid.map(() => result));
      orThrow(result).forEach((o, k) => {
        answers[valid[k].index] = isDomainError(o) ? { error: envelopeOf(EnvelopeException.fromDomain(o).envelope) } : { ok: o };
      });
    }
    const items = new Map(valid.map((v) => [v.index, v.item]));
    answers.forEach((a, i) => countCommand(how.command(items.get(i)), 'ok' in a ? 'ok' : a.error.code));
    return { results: answers };
  }

  /**
   * One item of a batch, checked as the single endpoint checks its body (storable text, depth, the
   * schema): the item, or its 400 naming `<field>.<path>`.
   */
  private batchItem<S extends z.ZodType>(schema: S, raw: unknown, field: string): { item: z.infer<S> } | { error: ErrorEnvelope } {
    const problem = findUnstorableJson(raw, this.config.COMMAND_SERVICE_JSON_MAX_DEPTH);
    if (problem) {
      return { error: { statusCode: 400, code: 'VALIDATION', params: { field, ...(problem.path ? { path: problem.path } : {}), message: problem.message } } };
    }
    const parsed = schema.safeParse(raw);
    if (parsed.success) return { item: parsed.data };
    const issue = parsed.error.issues[0];
    return { error: { statusCode: 400, code: 'VALIDATION', params: { field: [field, ...issue.path.map(String)].join('.'), message: issue.message } } };
  }

  @Post('runs/:runId/pause')
  @HttpCode(200)
  async pause(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(PauseRunRequestSchema, body);
    return orThrow(await this.commands.pause(runId, req.stepName, req.resumeDeadline, { traceparent: tp, workerId: req.workerId }));
  }

  @Post('runs/:runId/succeed')
  @HttpCode(200)
  async succeed(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const { workerId } = parseOrThrow(SucceedRunRequestSchema, body ?? {});
    return orThrow(await this.commands.succeed(runId, { traceparent: tp, workerId }));
  }

  @Post('runs/:runId/fail')
  @HttpCode(200)
  async fail(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(FailRunRequestSchema, body ?? {});
    return orThrow(await this.commands.fail(runId, req.failedStepName, { traceparent: tp, workerId: req.workerId }));
  }

  // ---- Run control ----

  @Post('runs/:runId/stop')
  @HttpCode(200)
  async stop(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(StopRunRequestSchema, body ?? {});
    return orThrow(await this.commands.stop(runId, req, { traceparent: tp }));
  }

  @Post('runs/:runId/time-out')
  @HttpCode(200)
  async timeOut(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const { reason } = parseOrThrow(TimeOutRunRequestSchema, body);
    return orThrow(await this.commands.timeOut(runId, reason, { traceparent: tp }));
  }

  @Post('runs/:runId/internal-error')
  @HttpCode(200)
  async internalError(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const { reason } = parseOrThrow(InternalErrorRequestSchema, body);
    return orThrow(await this.commands.failInternally(runId, reason, { traceparent: tp }));
  }

  /** 200 with the same run (FROM_FAILED_STEP), 201 with the new run (ON_LATEST_VERSION). */
  @Post('runs/:runId/retry')
  async retry(
    @Param('runId') runId: string,
    @Body() body: unknown,
    @Res({ passthrough: true }) res: Response,
    @Headers(TRACEPARENT_HEADER) tp?: string,
  ) {
    const req = parseOrThrow(RetryRunRequestSchema, body);
    const run = orThrow(await this.commands.retry(runId, req, { traceparent: tp }));
    res.status(req.strategy === 'ON_LATEST_VERSION' ? 201 : 200);
    return run;
  }

  /** Cancel, retry or archive every run of a project a filter selects, batch by batch. */
  @Post('runs/bulk')
  @HttpCode(200)
  async bulk(@Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(BulkRunRequestSchema, body);
    return orThrow(await this.commands.bulk(req, { traceparent: tp }));
  }

  @Post('runs/:runId/resume')
  @HttpCode(200)
  async resume(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(ResumeRunRequestSchema, body);
    return orThrow(await this.commands.resume(runId, req.requestId, req.body, { traceparent: tp }));
  }

  // ---- Engine: execution view and leases ----

  @Post('runs/:runId/erase')
  @HttpCode(200)
  async erase(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const { projectId } = parseOrThrow(EraseRunRequestSchema, body);
    return orThrow(await this.commands.erase(runId, projectId, { traceparent: tp }));
  }

  // ---- Retention ----

  @Post('retention/purge')
  @HttpCode(200)
  async purge(@Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const { now, defaultDays, limit, after } = parseOrThrow(PurgeBatchRequestSchema, body);
    return orThrow(await this.commands.purgeExpired({ now: new Date(now), defaultDays }, limit, { traceparent: tp }, after ?? null));
  }

  @Post('retention/plan')
  @HttpCode(200)
  async plan(@Body() body: unknown) {
    const { now, defaultDays } = parseOrThrow(RetentionWindowSchema, body);
    return orThrow(await this.commands.retentionPlan({ now: new Date(now), defaultDays }));
  }

  @Get('runs/:runId/head')
  async head(@Param('runId') runId: string, @Query() query: unknown) {
    const { projectId } = parseOrThrow(ProjectQuerySchema, query, 'query');
    return orThrow(await this.commands.head(projectId, runId));
  }

  @Get('runs/:runId/execution')
  async execution(@Param('runId') runId: string) {
    return orThrow(await this.commands.execution(runId));
  }

  @Post('runs/:runId/lease')
  @HttpCode(200)
  async acquireLease(@Param('runId') runId: string, @Body() body: unknown) {
    const { workerId, ttlMs } = parseOrThrow(LeaseRequestSchema, body);
    return orThrow(await this.commands.acquireLease(runId, workerId, ttlMs));
  }

  @Post('runs/:runId/lease/release')
  @HttpCode(200)
  async releaseLease(@Param('runId') runId: string, @Body() body: unknown) {
    const { workerId } = parseOrThrow(ReleaseLeaseRequestSchema, body);
    return orThrow(await this.commands.releaseLease(runId, workerId));
  }

  @Post('leases/claim-expired')
  @HttpCode(200)
  async claimExpired(@Body() body: unknown) {
    const { workerId, ttlMs, limit } = parseOrThrow(ClaimExpiredRequestSchema, body);
    return orThrow(await this.commands.claimExpired(workerId, ttlMs, limit));
  }
}

const envelopeOf = (e: ErrorEnvelope): ErrorEnvelope => ({ statusCode: e.statusCode, code: e.code, params: { ...e.params } });

/**
 * One span per item of a batch, a child of the item's own `traceparent` (the caller's span: a
 * worker's step, a gateway request) or else of the batch call: each command keeps its own trace
 * through the command service, however it was batched. The items go on with their span's
 * `traceparent`, which the events they append carry to the projector and workers. `end` closes the
 * spans (a refusal marks its span failed); `around` ends them failed if the whole batch throws.
 */
function itemSpans<T extends { readonly traceparent?: string }>(items: readonly T[], name: (item: T) => string, batchSize: number) {
  const opened = items.map((item) => {
    const { span, ctx } = beginSpan(name(item), {
      kind: SpanKind.SERVER,
      ...(item.traceparent ? { parent: item.traceparent } : {}),
      attributes: { 'batch.size': batchSize },
    });
    return { span, item: { ...item, traceparent: currentTraceparent(ctx) ?? item.traceparent } };
  });
  return {
    items: opened.map((o) => o.item),
    async around<R>(work: () => Promise<R>): Promise<R> {
      try {
        return await work();
      } catch (e) {
        for (const { span } of opened) {
          failSpan(span, e);
          span.end();
        }
        throw e;
      }
    },
    end(outcomes: readonly unknown[]): void {
      opened.forEach(({ span }, k) => {
        const o = outcomes[k];
        if (isDomainError(o)) span.setAttribute('error.code', o.code);
        if (isDomainError(o) && EnvelopeException.fromDomain(o).envelope.statusCode >= 500) failSpan(span, new Error(o.code));
        span.end();
      });
    },
  };
}

/** What a batch endpoint answers: one result per item, in the order sent. */
interface BatchAnswer<R> {
  readonly results: ({ ok: R } | { error: ErrorEnvelope })[];
}
