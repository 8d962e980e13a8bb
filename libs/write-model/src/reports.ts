import { randomBytes } from 'node:crypto';
import { domainError, isDomainError, type CommandResult, type DomainError, type EngineReport, type ReportResult } from '@flowruns/contracts';
import { ExecutionDataStore } from '@flowruns/execution-data';
import type { RunCommand, RunState } from '@flowruns/run-domain';
import { LeaseStore } from './leases';
import { applyFailureRules } from './run-rules';
import { appendToLockedRuns, lockStreams, type AppendResult } from './run-store';
import type { SqlRunner } from './sql';

/** A fresh, unguessable resume request id (192 random bits). */
export const newRequestId = (): string => `req_${randomBytes(24).toString('base64url')}`;

export interface ReportOptions {
  readonly now: Date;
  /** The span of the call, for reports that name none of their own. */
  readonly traceparent?: string | null;
  /** `AP_PAUSE_TIMEOUT_SECONDS`: the resume deadline of a pause that names none. */
  readonly pauseTimeoutSeconds: number;
}

/** One report's outcome: what the single-report endpoint would answer, or its refusal. */
export type ReportOutcome = ReportResult | DomainError;

/**
 * Applies a batch of engine reports (many runs, many workers) in the caller's transaction, with a
 * handful of statements per batch instead of a handful per report: the runs' stream rows are locked
 * in one statement, their leases checked in one, every decision written in one (`appendToLockedRuns`),
 * the step results stored in one. The decisions are exactly the single reports' ones — same
 * commands, same fencing (a report naming a worker is refused LEASE_LOST unless that worker holds
 * the run's lease), same rules (a failing child fails its parent) — and a refusal is that report's
 * answer alone. Reports of one run are applied in the order given: the batch is cut into waves in
 * which each run appears once.
 */
export async function applyReports(sql: SqlRunner, reports: readonly EngineReport[], opts: ReportOptions): Promise<ReportOutcome[]> {
  const out: ReportOutcome[] = new Array<ReportOutcome>(reports.length);
  const waves: number[][] = [];
  const seen = new Map<string, number>();
  reports.forEach((r, i) => {
    const wave = seen.get(r.runId) ?? 0;
    seen.set(r.runId, wave + 1);
    (waves[wave] ??= []).push(i);
  });
  for (const wave of waves) await applyWave(sql, reports, wave, out, opts);
  return out;
}

async function applyWave(
  sql: SqlRunner,
  reports: readonly EngineReport[],
  wave: readonly number[],
  out: ReportOutcome[],
  opts: ReportOptions,
): Promise<void> {
  const { now } = opts;
  const indexOf = new Map(wave.map((i) => [reports[i].runId, i]));
  const rows = await lockStreams(sql, [...indexOf.keys()]);

  // Fencing, as `fenced`: only an active run's reports are checked; the decider answers the rest.
  const holders = new Map<string, string>();
  for (const row of rows) {
    const r = reports[indexOf.get(row.run_id) as number];
    if (r.workerId !== undefined && (row.state.status === 'RUNNING' || row.state.status === 'PAUSED')) holders.set(row.run_id, r.workerId);
  }
  const lost = await new LeaseStore(sql).checkHeldMany(holders, now);

  const stored = new Map<string, { ref: string; attempt: number }>();
  const paused = new Map<string, { requestId: string; resumeDeadline: string }>();
  const build = (state: RunState, runId: string): RunCommand | DomainError => {
    const refusal = lost.get(runId);
    if (refusal) return refusal;
    const r = reports[indexOf.get(runId) as number];
    switch (r.type) {
      case 'startStep':
        return { type: 'StartStep', stepName: r.stepName, stepType: r.stepType };
      case 'finishStep': {
        const ref = ExecutionDataStore.newRef();
        stored.set(runId, { ref, attempt: state.attempt });
        return { type: 'CompleteStep', stepName: r.stepName, outcome: r.status, durationMs: r.durationMs, dataRef: ref };
      }
      case 'pause': {
        const requestId = newRequestId();
        const resumeDeadline = r.resumeDeadline ?? new Date(now.getTime() + opts.pauseTimeoutSeconds * 1000).toISOString();
        paused.set(runId, { requestId, resumeDeadline });
        return { type: 'PauseRun', stepName: r.stepName, requestId, resumeDeadline };
      }
      case 'succeed':
        return { type: 'SucceedRun' };
      case 'fail':
        return { type: 'FailRun', failedStepName: r.failedStepName };
    }
  };
  const appendOpts = {
    now,
    traceparent: opts.traceparent,
    traceparentOf: (runId: string) => reports[indexOf.get(runId) as number].traceparent,
  };
  const results = await applyFailureRules(sql, await appendToLockedRuns(sql, rows, build, appendOpts), appendOpts);

  // The claim check: a finish's input/output/error is stored only when its event was appended (an
  // idempotent repeat or a refusal leaves nothing behind).
  const records = [];
  for (const r of results) {
    if (isDomainError(r) || r.events.length === 0) continue;
    const s = stored.get(r.runId);
    if (!s) continue;
    const report = reports[indexOf.get(r.runId) as number];
    if (report.type !== 'finishStep') continue;
    records.push({
      ref: s.ref,
      runId: r.runId,
      kind: 'step' as const,
      stepName: report.stepName,
      attempt: s.attempt,
      input: report.input,
      output: report.output,
      error: report.error,
    });
  }
  await new ExecutionDataStore(sql).putMany(records);

  // `appendToLockedRuns` answers in row order and leaves out runs that do not exist.
  rows.forEach((row, k) => {
    const r = results[k];
    out[indexOf.get(row.run_id) as number] = isDomainError(r) ? r : { ...commandResult(r), ...(paused.get(r.runId) ?? {}) };
  });
  for (const [runId, i] of indexOf) {
    out[i] ??= domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId, message: 'Flow run not found' });
  }
}

const commandResult = (r: AppendResult): CommandResult => ({
  runId: r.runId,
  version: r.version,
  status: r.state.status,
  eventsAppended: r.events.length,
});
