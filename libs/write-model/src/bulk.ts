import {
  FLOW_RUN_STATUSES,
  TERMINAL_STATUSES,
  domainError,
  type BulkRunFilter,
  type BulkRunRequest,
  type DomainError,
  type FlowRunStatus,
} from '@flowruns/contracts';
import { RETRYABLE_FROM_FAILED_STEP, type RunState } from '@flowruns/run-domain';
import type { Transactor } from './run-commands';

/** The statuses each bulk action can change: what it selects when the request names none. */
export const BULK_DEFAULT_STATUSES = {
  cancel: ['RUNNING', 'PAUSED'],
  retryFromFailedStep: FLOW_RUN_STATUSES.filter((s) => RETRYABLE_FROM_FAILED_STEP.has(s)),
  retryOnLatestVersion: FLOW_RUN_STATUSES.filter((s) => TERMINAL_STATUSES.has(s)),
  archive: [...FLOW_RUN_STATUSES],
} as const satisfies Record<string, readonly FlowRunStatus[]>;

/**
 * The statuses a bulk request selects. With `flowRunIds` the other filters are ignored (as in the
 * reference), `status` included, so the action's own statuses apply.
 */
export function bulkStatuses(req: BulkRunRequest): readonly FlowRunStatus[] {
  const defaults =
    req.action === 'cancel'
      ? BULK_DEFAULT_STATUSES.cancel
      : req.action === 'archive'
        ? BULK_DEFAULT_STATUSES.archive
        : req.strategy === 'FROM_FAILED_STEP'
          ? BULK_DEFAULT_STATUSES.retryFromFailedStep
          : BULK_DEFAULT_STATUSES.retryOnLatestVersion;
  return req.filter.flowRunIds || !req.filter.status ? defaults : req.filter.status;
}

/**
 * Refuses a run whose locked state is no longer in `statuses`: it matched when its page was read
 * and was changed by someone else since. The refusal is not an answer to anyone; the run is only
 * not counted.
 */
export const inStatuses =
  (statuses: readonly FlowRunStatus[]) =>
  (state: RunState): DomainError | null =>
    state.status !== null && statuses.includes(state.status)
      ? null
      : domainError('INVALID_TRANSITION', { entityType: 'flow_run', status: state.status, reason: 'changed meanwhile' });

/**
 * Pages of the run ids a bulk request selects in one project, read from the write model (so a bulk
 * operation never misses a run the views have not caught up with), in run id order. Each page is
 * read when the caller asks for it (`RunCommands.bulk` asks while the pages before are still being
 * written), by keyset (`run_id > last`), so memory stays at the pages in hand however many runs
 * match, and a run whose status changes mid-way is neither read twice nor skipped because of it.
 */
export async function* selectBulkPages(
  tx: Transactor,
  projectId: string,
  filter: BulkRunFilter,
  statuses: readonly FlowRunStatus[],
  pageSize: number,
): AsyncGenerator<string[]> {
  if (filter.flowRunIds) {
    const ids = [...new Set(filter.flowRunIds)].sort();
    for (let i = 0; i < ids.length; i += pageSize) {
      const chunk = ids.slice(i, i + pageSize);
      const page = await tx.transactional((sql) =>
        sql.execute<{ run_id: string }>(
          'select run_id from run_streams where project_id = ? and run_id in (?) and status in (?) order by run_id',
          [projectId, chunk, statuses],
        ),
      );
      if (page.length) yield page.map((r) => r.run_id);
    }
    return;
  }

  const where = ['project_id = ?', 'status in (?)'];
  const params: unknown[] = [projectId, statuses];
  const and = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.flowId !== undefined) and('flow_id = ?', filter.flowId);
  if (filter.failedStepName !== undefined) and(`state->>'failedStepName' = ?`, filter.failedStepName);
  // Passed as written: a Date would drop the microseconds the list filters honour.
  if (filter.createdAfter !== undefined) and('created_at >= ?::timestamptz', filter.createdAfter);
  if (filter.createdBefore !== undefined) and('created_at <= ?::timestamptz', filter.createdBefore);
  if (filter.excludeFlowRunIds?.length) and('run_id not in (?)', filter.excludeFlowRunIds);

  let after = '';
  for (;;) {
    const page = await tx.transactional((sql) =>
      sql.execute<{ run_id: string }>(
        `select run_id from run_streams where ${where.join(' and ')} and run_id > ? order by run_id limit ?`,
        [...params, after, pageSize],
      ),
    );
    if (page.length === 0) return;
    yield page.map((r) => r.run_id);
    if (page.length < pageSize) return;
    after = page[page.length - 1].run_id;
  }
}
