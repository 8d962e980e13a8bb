import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import type { FlowRun, FlowRunWithSteps } from '@flowruns/contracts';
import { EnvelopeException, parseOrThrow } from '@flowruns/platform';
import type { RunPage } from '@flowruns/run-views';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { Principal, assertOwnProject } from './auth/principal';
import { CommandClient } from './command-client';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import {
  BulkArchiveBodySchema,
  BulkCancelBodySchema,
  BulkRetryBodySchema,
  RetryBodySchema,
  parseListRunsQuery,
  parseStrictBody,
} from './requests';
import { RunQueries } from './run-queries';
import { Trace, type TraceContext } from './traceparent';
import { Idempotent, KeyedApi } from './request-control.module';

/** Reads from the run views; changes go to the command service. Everything scoped to the key's project. */
@Controller('api/v1/flow-runs')
@KeyedApi()
export class FlowRunsController {
  constructor(
    private readonly runs: RunQueries,
    private readonly commands: CommandClient,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Get()
  list(@Req() req: Request, @Principal() principal: ApiKeyPrincipal): Promise<RunPage> {
    const query = parseListRunsQuery(new URL(req.originalUrl, 'http://gateway').searchParams);
    assertOwnProject(principal, query.projectId);
    return this.runs.list(query);
  }

  /** `{ cancelled }`: how many of the selected runs this request stopped (descendants stop too). */
  @Post('cancel')
  @Idempotent()
  @HttpCode(200)
  async cancel(@Body() body: unknown, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<{ cancelled: number }> {
    const { projectId: _projectId, ...filter } = this.bulkBody(BulkCancelBodySchema, body, principal);
    const reason = `cancelled by ${principal.keyId}`;
    const r = await this.commands.bulk({ action: 'cancel', projectId: principal.projectId, reason, filter }, trace);
    return { cancelled: r.changed };
  }

  /** `{ retried }`: how many of the selected runs this request retried with the strategy. */
  @Post('retry')
  @Idempotent()
  @HttpCode(200)
  async retryMany(@Body() body: unknown, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<{ retried: number }> {
    const { projectId: _projectId, strategy, ...filter } = this.bulkBody(BulkRetryBodySchema, body, principal);
    const r = await this.commands.bulk({ action: 'retry', projectId: principal.projectId, strategy, filter }, trace);
    return { retried: r.changed };
  }

  /** `{ archived }`: how many of the selected runs this request archived (already archived ones are not counted). */
  @Post('archive')
  @Idempotent()
  @HttpCode(200)
  async archive(@Body() body: unknown, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<{ archived: number }> {
    const { projectId: _projectId, ...filter } = this.bulkBody(BulkArchiveBodySchema, body, principal);
    const r = await this.commands.bulk({ action: 'archive', projectId: principal.projectId, filter }, trace);
    return { archived: r.changed };
  }

  /**
   * The run from the views. A run the views do not hold yet may just have been triggered: the write
   * model is asked, and an existing run is waited for (up to GATEWAY_READ_WAIT_MS) instead of being
   * answered 404 — a client that reads right after it wrote sees what it wrote.
   */
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query('projectId') projectId: unknown,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
    @Res({ passthrough: true }) res: Response,
  ): Promise<FlowRunWithSteps> {
    if (projectId !== undefined) assertOwnProject(principal, String(projectId));
    const run = await this.runs.get(principal.projectId, id);
    if (run) return run;
    const waitMs = this.config.GATEWAY_READ_WAIT_MS;
    // Another project's run answers exactly like a run that does not exist.
    const head = waitMs > 0 ? await this.commands.runHead(id, principal.projectId, trace) : null;
    if (!head) throw EnvelopeException.of('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: id, message: 'Flow run not found' });
    const projected = await this.runs.getWhenProjected(principal.projectId, id, Date.now() + waitMs);
    if (projected) return projected;
    res.setHeader('retry-after', '1');
    throw EnvelopeException.of('SERVICE_UNAVAILABLE', {
      entityType: 'flow_run',
      entityId: id,
      message: 'the run exists but is not in the views yet; try again',
    });
  }

  /**
   * The command service scopes the retry to the key's project (another project's run is its 404).
   * A new run (ON_LATEST_VERSION) answers 201 with its Location; the same run in a new attempt
   * (FROM_FAILED_STEP) answers 200.
   */
  @Post(':id/retry')
  @Idempotent()
  async retry(
    @Param('id') id: string,
    @Body() body: unknown,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
    @Res({ passthrough: true }) res: Response,
  ): Promise<FlowRun> {
    const input = parseOrThrow(RetryBodySchema, body ?? {});
    assertOwnProject(principal, input.projectId);
    const run = await this.commands.retryRun(id, { projectId: principal.projectId, strategy: input.strategy }, trace);
    if (typeof run?.id === 'string' && run.id !== id) {
      res.status(201).location(`/api/v1/flow-runs/${encodeURIComponent(run.id)}`);
    } else {
      res.status(200);
    }
    return run;
  }

  /**
   * A bulk body, strictly validated. No body is refused rather than read as "no filters", which
   * would select every run of the project; `{}` says that on purpose.
   */
  private bulkBody<S extends z.ZodType<{ projectId?: string }>>(schema: S, body: unknown, principal: ApiKeyPrincipal): z.infer<S> {
    if (body === undefined) {
      throw EnvelopeException.of('VALIDATION', { field: 'body', message: 'a JSON object is required ({} selects every run the operation can change)' });
    }
    const input = parseStrictBody(schema, body);
    if (input.projectId !== undefined) assertOwnProject(principal, input.projectId);
    return input;
  }
}
