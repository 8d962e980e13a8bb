import { domainError, isDomainError, isFailure, type DomainError } from '@flowruns/contracts';
import type { RunCommand, RunState } from '@flowruns/run-domain';
import { LeaseStore } from './leases';
import { appendToRun, appendToRuns, readTriggered, type AppendOptions, type AppendResult, type CommandBuilder } from './run-store';
import type { SqlRunner } from './sql';

/**
 * The append path plus the rules that reach beyond one run, in the same transaction:
 * a run that enters a failure status (FAILED, TIMEOUT, INTERNAL_ERROR, QUOTA_EXCEEDED) and was
 * triggered with `failParentOnFailure` fails its parent (if the parent is still RUNNING or PAUSED),
 * and so on up the chain. A parent that has already ended is left as it is.
 */
export async function appendWithRules(
  sql: SqlRunner,
  runId: string,
  build: CommandBuilder,
  opts: AppendOptions,
): Promise<AppendResult | DomainError> {
  const r = await appendToRun(sql, runId, build, opts);
  if (isDomainError(r)) return r;
  if (r.events.length > 0 && enteredFailure(r.previous, r.state)) await failParentOf(sql, r.runId, opts);
  return r;
}

/** `appendToRuns` (many runs, a few statements) plus the same rules, run by run. */
export async function appendManyWithRules(
  sql: SqlRunner,
  runIds: readonly string[],
  build: (state: RunState, runId: string) => RunCommand | DomainError,
  opts: AppendOptions,
): Promise<(AppendResult | DomainError)[]> {
  return applyFailureRules(sql, await appendToRuns(sql, runIds, build, opts), opts);
}

/** The rules beyond one run for appends already written (a failing child fails its parent), run by run. */
export async function applyFailureRules<R extends AppendResult | DomainError>(
  sql: SqlRunner,
  results: readonly R[],
  opts: AppendOptions,
): Promise<R[]> {
  for (const r of results) {
    if (!isDomainError(r) && r.events.length > 0 && enteredFailure(r.previous, r.state)) await failParentOf(sql, r.runId, opts);
  }
  return [...results];
}

const enteredFailure = (before: RunState, after: RunState): boolean =>
  after.status !== null && isFailure(after.status) && (before.status === null || !isFailure(before.status));

async function failParentOf(sql: SqlRunner, childRunId: string, opts: AppendOptions): Promise<void> {
  const triggered = await readTriggered(sql, childRunId);
  const parentRunId = triggered?.data.parentRunId ?? null;
  if (parentRunId === null || !triggered?.data.failParentOnFailure) return;
  // The parent's own ending may fail its parent in turn; a refusal (it already ended) is ignored.
  await appendWithRules(
    sql,
    parentRunId,
    (state) =>
      state.status === 'RUNNING' || state.status === 'PAUSED'
        ? { type: 'FailRun', failedStepName: activeStepOf(state) }
        : domainError('INVALID_TRANSITION', { entityType: 'flow_run', entityId: parentRunId, status: state.status }),
    { now: opts.now, traceparent: opts.traceparent },
  );
}

/** The step the run is in (the subflow step waiting on the child), if any: a retry resumes from it. */
function activeStepOf(state: RunState): string | null {
  let active: string | null = null;
  for (const [name, step] of Object.entries(state.steps)) {
    if (step.attempt === state.attempt && (step.status === 'RUNNING' || step.status === 'PAUSED')) active = name;
  }
  return active;
}

/**
 * Fencing: a report that names a worker is refused (LEASE_LOST) unless that worker holds an
 * unexpired lease on the run. Checked after the stream row is locked, inside the same transaction.
 * A run that is no longer active is left to the decider, which answers its status.
 */
export function fenced(sql: SqlRunner, runId: string, workerId: string | undefined, now: Date, build: CommandBuilder): CommandBuilder {
  if (workerId === undefined) return build;
  return async (state) => {
    if (state.status === 'RUNNING' || state.status === 'PAUSED') {
      const lost = await new LeaseStore(sql).checkHeld(runId, workerId, now);
      if (lost) return lost;
    }
    return build(state);
  };
}
