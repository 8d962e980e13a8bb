import { Controller, Get, Param, Query, Req, UseGuards } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import type { FlowRunWithSteps } from '@flowruns/contracts';
import { EnvelopeException } from '@flowruns/platform';
import type { RunPage } from '@flowruns/run-views';
import type { Request } from 'express';
import { ApiKeyGuard } from './auth/api-key.guard';
import { Principal, assertOwnProject } from './auth/principal';
import { parseListRunsQuery } from './requests';
import { RunQueries } from './run-queries';

/** `GET /api/v1/flow-runs` and `GET /api/v1/flow-runs/:id`, read from the run views. */
@Controller('api/v1/flow-runs')
@UseGuards(ApiKeyGuard)
export class FlowRunsController {
  constructor(private readonly runs: RunQueries) {}

  @Get()
  list(@Req() req: Request, @Principal() principal: ApiKeyPrincipal): Promise<RunPage> {
    const query = parseListRunsQuery(new URL(req.originalUrl, 'http://gateway').searchParams);
    assertOwnProject(principal, query.projectId);
    return this.runs.list(query);
  }

  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query('projectId') projectId: unknown,
    @Principal() principal: ApiKeyPrincipal,
  ): Promise<FlowRunWithSteps> {
    if (projectId !== undefined) assertOwnProject(principal, String(projectId));
    const run = await this.runs.get(principal.projectId, id);
    // Another project's run answers exactly like a run that does not exist.
    if (!run) {
      throw EnvelopeException.of('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: id, message: 'Flow run not found' });
    }
    return run;
  }
}
