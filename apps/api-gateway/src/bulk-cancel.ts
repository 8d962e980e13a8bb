import { Inject, Injectable } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { EnvelopeException, componentLogger } from '@flowruns/platform';
import { forEachBounded } from './bounded';
import { CommandClient } from './command-client';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { CANCELLABLE_STATUSES, type BulkCancelBody } from './requests';
import { RunQueries } from './run-queries';
import type { TraceContext } from './traceparent';

/**
 * Statuses with which a stop means "this run was not changed by us": already finished or stopped
 * by someone else (409), gone (404), purged (410). The bulk answer simply does not count it.
 */
const NOT_CHANGED = new Set([404, 409, 410]);

/**
 * `POST /api/v1/flow-runs/cancel`: selects the key's project's runs (by ids, or by filters paged
 * through `run_views` with keyset pagination), stops each through the command service with
 * bounded concurrency, and counts the runs that actually changed. Memory stays at one page of ids
 * however many runs match.
 */
@Injectable()
export class BulkCancel {
  private readonly log = componentLogger('bulk-cancel');

  constructor(
    private readonly commands: CommandClient,
    private readonly runs: RunQueries,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async cancel(principal: ApiKeyPrincipal, body: BulkCancelBody, trace: TraceContext): Promise<{ cancelled: number }> {
    const started = Date.now();
    const { projectId, keyId } = principal;
    const reason = `cancelled by ${keyId}`;
    // With flowRunIds the other filters are ignored (as in the reference). Ids of other projects
    // and unknown ids are dropped here, so the command service never hears of them.
    const ids: Iterable<string> | AsyncIterable<string> = body.flowRunIds
      ? await this.runs.ownedRunIds(projectId, [...new Set(body.flowRunIds)])
      : this.runs.runIds(
          {
            projectId,
            flowId: body.flowId,
            status: body.status ?? CANCELLABLE_STATUSES,
            failedStepName: body.failedStepName,
            createdAfter: body.createdAfter,
            createdBefore: body.createdBefore,
            excludeFlowRunIds: body.excludeFlowRunIds,
            // Archiving hides a run from lists; it must not shield running work from a cancel.
            includeArchived: true,
          },
          this.config.GATEWAY_BULK_PAGE_SIZE,
        );

    let examined = 0;
    let cancelled = 0;
    try {
      await forEachBounded(ids, this.config.GATEWAY_BULK_CONCURRENCY, async (runId) => {
        examined++;
        if (await this.stop(runId, projectId, reason, trace)) cancelled++;
      });
    } catch (e) {
      this.log.warn(
        { projectId, keyId, traceId: trace.traceId, examined, cancelled, ms: Date.now() - started },
        'bulk cancel interrupted; runs already stopped stay stopped',
      );
      throw e;
    }
    this.log.info(
      { projectId, keyId, traceId: trace.traceId, byIds: body.flowRunIds !== undefined, examined, cancelled, ms: Date.now() - started },
      'bulk cancel done',
    );
    return { cancelled };
  }

  /** True when this stop changed the run. */
  private async stop(runId: string, projectId: string, reason: string, trace: TraceContext): Promise<boolean> {
    try {
      const result = await this.commands.stopRun(runId, { projectId, reason }, trace);
      return result.eventsAppended > 0;
    } catch (e) {
      if (e instanceof EnvelopeException && NOT_CHANGED.has(e.envelope.statusCode)) return false;
      throw e;
    }
  }
}
