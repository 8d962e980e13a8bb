import { Body, Controller, Headers, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { CreateFlowSchema, type Flow, type FlowRun } from '@flowruns/contracts';
import { parseOrThrow } from '@flowruns/platform';
import { ApiKeyGuard } from './auth/api-key.guard';
import { Principal, assertOwnProject } from './auth/principal';
import { CommandClient } from './command-client';
import { parseTriggerHeaders } from './requests';
import { Trace, type TraceContext } from './traceparent';

/** Flow commands: validated here, decided and recorded by the command service. */
@Controller('api/v1/flows')
@UseGuards(ApiKeyGuard)
export class FlowsController {
  constructor(private readonly commands: CommandClient) {}

  @Post()
  @HttpCode(201)
  create(@Body() body: unknown, @Principal() principal: ApiKeyPrincipal, @Trace() trace: TraceContext): Promise<Flow> {
    const input = parseOrThrow(CreateFlowSchema, body ?? {});
    assertOwnProject(principal, input.projectId);
    return this.commands.createFlow(input, trace);
  }

  /** Triggers a run; the body, whatever JSON it is, is the trigger payload. */
  @Post(':flowId/run')
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
