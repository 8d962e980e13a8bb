import {
  ACTION_STATUSES,
  domainError,
  type BulkRunFilter,
  type BulkRunRequest,
  type DomainError,
  type FlowRunStatus,
} from '@flowruns/contracts';
import { isoMicrosSql } from '@flowruns/database';
import type { RunState } from '@flowruns/run-domain';
import type { Transactor } from './run-commands';


/**
 * The statuses a bulk request selects. With `flowRunIds` the other filters are ignored (as in the
 * reference), `status` included, so the action's own statuses apply.
 */
export function bulkStatuses(req: BulkRunRequest): readonly FlowRunStatus[] {
  const defaults =
    req.action === 'cancel'
      ? ACTION_STATUSES.cancel
      : req.action === 'archive'
        ? ACTION_STATUSES.archive
        : req.strategy === 'FROM_FAILED_STEP'
          ? ACTION_STATUSES.retryFromFailedStep
          : ACTION_STATUSES.retryOnLatestVersion;
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
 * operation never misses a run the views have not caught up with), in creation order. Each page is
 * read when the caller asks for it (`RunCommands.bulk` asks while the pages before are still being
 * written), by keyset (`(created_at, run_id) > last`), so memory stays at the pages in hand however many runs
 * match, and a run whose status changes mid-way is neither read twice nor skipped because of it.
 */
export async function* selectBulkPages(
  tx: Transactor,
  projectId: string,
  filter: BulkRunFilter,
  statuses: readonly FlowRunStatus[],
  pageSize: number,
  /** Runs of the project read per statement (when not selecting by ids). */
  candidatesPerRead = 4 * pageSize,
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

  // Read in creation order over the project's (project_id, created_at, run_id) index, a bounded
  // number of candidates per statement, the filters applied to each read's candidates. Not one
  // `… where status in (…) order by … limit n`: its plan rests on the statistics of `status`,
  // which a bulk operation itself makes stale (after a bulk retry the statistics still say no run
  // is RUNNING), and the plan they chose for a bulk cancel then was a parallel scan and sort of the
  // whole table for every page (80 ms a page at 100 000 runs, three processes busy). Bounded reads
  // cost the same whatever the statistics say: one pass over the project's runs in all, or over
  // its time window only (`created_at` leads the key and never changes).
  const window = new Clauses();
  // Passed as written: a Date would drop the microseconds the list filters honour.
  if (filter.createdAfter !== undefined) window.add('created_at >= ?::timestamptz', filter.createdAfter);
  if (filter.createdBefore !== undefined) window.add('created_at <= ?::timestamptz', filter.createdBefore);
  const match = new Clauses().add('status in (?)', statuses);
  if (filter.flowId !== undefined) match.add('flow_id = ?', filter.flowId);
  if (filter.failedStepName !== undefined) match.add(`state->>'failedStepName' = ?`, filter.failedStepName);
  if (filter.excludeFlowRunIds?.length) match.add('run_id not in (?)', filter.excludeFlowRunIds);
  // The cursor is the last candidate's key, its time as text with the microseconds Postgres keeps.
  const read = `with c as materialized (
      select run_id, created_at, status, flow_id${filter.failedStepName !== undefined ? ', state' : ''} from run_streams
       where project_id = ? and (created_at, run_id) > (?::timestamptz, ?)${window.sql.map((w) => ` and ${w}`).join('')}
       order by created_at, run_id limit ?),
    last as (select created_at, run_id from c order by created_at desc, run_id desc limit 1)
    select (select ${isoMicrosSql('created_at')} from last) as last_at, (select run_id from last) as last_id,
      (select count(*) from c)::int as scanned,
      array(select run_id from c where ${match.sql.join(' and ')} order by created_at, run_id) as ids`;

  let after: { at: string; id: string } = { at: '-infinity', id: '' };
  let page: string[] = [];
  for (;;) {
    const [r] = await tx.transactional((sql) =>
      sql.execute<{ last_at: string | null; last_id: string | null; scanned: number; ids: string[] }>(read, [
        projectId,
        after.at,
        after.id,
        ...window.params,
        candidatesPerRead,
        ...match.params,
      ]),
    );
    page.push(...r.ids);
    // A short read reached the project's last run (an empty one included: `last` is null only then).
    const done = r.scanned < candidatesPerRead;
    while (page.length >= pageSize || (done && page.length > 0)) {
      yield page.slice(0, pageSize);
      page = page.slice(pageSize);
    }
    if (done || r.last_at === null || r.last_id === null) return;
    after = { at: r.last_at, id: r.last_id };
  }
}

/** SQL conditions with their `?` parameters, in order. */
class Clauses {
  readonly sql: string[] = [];
  readonly params: unknown[] = [];

  add(clause: string, value: unknown): this {
    this.sql.push(clause);
    this.params.push(value);
    return this;
  }
}
