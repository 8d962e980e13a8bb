import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { CreateFlowSchema, type Flow, type FlowRun } from '@flowruns/contracts';
import { parseOrThrow } from '@flowruns/platform';
import type { Request } from 'express';
import { Principal, assertOwnProject } from './auth/principal';
import { CommandClient } from './command-client';
import { PublishVersionBodySchema, parseListFlowsQuery, parseTriggerHeaders } from './requests';
import { Trace, type TraceContext } from './traceparent';
import { Idempotent, KeyedApi } from './request-control.module';

/**
 * Flows: validated here, decided, recorded and read by the command service. Every call names the
 * key's project, so another project's flow answers exactly like an unknown one.
 */
@Controller('api/v1/flows')
@KeyedApi()
export class FlowsController {
  constructor(private readonly commands: CommandClient) {}

  @Post()
  @Idempotent()
  @HttpCode(201)
  create(@Body() body: unknown, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<Flow> {
    const input = parseOrThrow(CreateFlowSchema, body ?? {});
    assertOwnProject(principal, input.projectId);
    return this.commands.createFlow(input, trace);
  }

  @Get()
  list(@Req() req: Request, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<{ data: Flow[] }> {
    const { projectId } = parseListFlowsQuery(new URL(req.originalUrl, 'http://gateway').searchParams);
    assertOwnProject(principal, projectId);
    return this.commands.listFlows(projectId, trace);
  }

  @Get(':flowId')
  get(
    @Param('flowId') flowId: string,
    @Query('projectId') projectId: unknown,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
  ): Promise<Flow> {
    if (projectId !== undefined) assertOwnProject(principal, String(projectId));
    return this.commands.getFlow(flowId, principal.projectId, trace);
  }

  /** Publishes a new version (the flow's latest); 201, as a new version resource exists. */
  @Post(':flowId/versions')
  @Idempotent()
  @HttpCode(201)
  publishVersion(
    @Param('flowId') flowId: string,
    @Body() body: unknown,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
  ): Promise<Flow> {
    const input = parseOrThrow(PublishVersionBodySchema, body ?? {});
    if (input.projectId !== undefined) assertOwnProject(principal, input.projectId);
    return this.commands.publishFlowVersion(flowId, { ...input, projectId: principal.projectId }, trace);
  }

  /** Triggers a run; the body, whatever JSON it is, is the trigger payload. */
  @Post(':flowId/run')
  @Idempotent()
  @HttpCode(201)
  trigger(
    @Param('flowId') flowId: string,
    @Body() payload: unknown,
    @Headers() headers: Record<string, string | string[] | undefined>,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
  ): Promise<FlowRun> {
    const nested = parseTriggerHeaders(headers);
    return this.commands.triggerRun(
      flowId,
      {
        projectId: principal.projectId,
        // No body at all is an empty payload, as a webhook without a body would give.
        payload: payload === undefined ? {} : payload,
        parentRunId: nested.parentRunId,
        failParentOnFailure: nested.failParentOnFailure,
        triggeredBy: principal.keyId,
      },
      trace,
    );
  }
}
