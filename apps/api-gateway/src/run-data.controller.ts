import { Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { componentLogger } from '@flowruns/platform';
import type { Request, Response } from 'express';
import { once } from 'node:events';
import { Principal, assertOwnProject } from './auth/principal';
import { CommandClient } from './command-client';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { parseExportRunsQuery } from './requests';
import { RunQueries } from './run-queries';
import { Trace, type TraceContext } from './traceparent';
import { Idempotent, KeyedApi } from './request-control.module';

/**
 * A project's execution data as data: export it before the retention window closes, erase one run's
 * on request. Registered before `FlowRunsController`, so `export` is not taken for a run id.
 */
@Controller('api/v1/flow-runs')
@KeyedApi()
export class RunDataController {
  private readonly log = componentLogger('export');

  constructor(
    private readonly runs: RunQueries,
    private readonly commands: CommandClient,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  /**
   * NDJSON: one run with its steps per line, newest first, with the list's filters (no paging: all
   * of them). Streamed page by page with backpressure, so memory stays at one page whatever the
   * number of runs, and a client that goes away stops the scan. A failure after the first byte
   * cannot change the status any more: the connection is cut, so the client sees an incomplete
   * transfer rather than a silently short file.
   */
  @Get('export')
  async export(@Req() req: Request, @Res() res: Response, @Principal() principal: ApiKeyPrincipal): Promise<void> {
    const query = parseExportRunsQuery(new URL(req.originalUrl, 'http://gateway').searchParams);
    assertOwnProject(principal, query.projectId);
    const pages = this.runs.exportPages(query, this.config.GATEWAY_EXPORT_PAGE_SIZE);
    // The first page is read before answering, so an error there is still a clean 5xx envelope.
    let page = await pages.next();
    res.status(200);
    res.setHeader('content-type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="flow-runs-${query.projectId}.ndjson"`);
    let exported = 0;
    try {
      while (!page.done && !res.destroyed) {
        const chunk = page.value.map((run) => JSON.stringify(run)).join('\n') + '\n';
        exported += page.value.length;
        if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        page = await pages.next();
      }
      res.end();
      this.log.info({ projectId: query.projectId, exported, complete: !res.destroyed }, 'export done');
    } catch (e) {
      this.log.warn({ err: e, projectId: query.projectId, exported }, 'export failed mid-stream; connection cut');
      res.destroy(e as Error);
    } finally {
      await pages.return(undefined);
    }
  }

  /**
   * Removes one finished run's execution data now (step inputs and outputs, trigger payload,
   * logs), recorded as a purge; its metadata stays. 409 while the run is RUNNING or PAUSED.
   */
  @Post(':id/erase')
  @Idempotent()
  @HttpCode(200)
  async erase(
    @Param('id') id: string,
    @Query('projectId') projectId: unknown,
    @Principal() principal: ApiKeyPrincipal,
    @Trace() trace: TraceContext,
  ): Promise<{ runId: string; erased: boolean; records: number; bytes: number }> {
    if (projectId !== undefined) assertOwnProject(principal, String(projectId));
    const r = await this.commands.eraseRun(id, principal.projectId, trace);
    return { runId: r.runId, erased: r.eventsAppended > 0, records: r.records, bytes: r.bytes };
  }
}
