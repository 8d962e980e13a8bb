import { isFailure, isTerminal, type FlowRunStatus } from '@flowruns/contracts';
import { componentLogger } from '@flowruns/platform';
import type { Logger } from 'pino';
import { isStopAnswer, type CommandServicePort, type RunExecutionView } from './command-port';
import { resolveTemplates } from './templates';

export interface SubflowCompletionOptions {
  readonly client: CommandServicePort;
  readonly workerId: string;
  readonly leaseTtlMs: number;
  /** Tries at the parent's lease while its last drive lets go of it (it triggered the child and is releasing). */
  readonly leaseAttempts?: number;
  readonly leaseBackoffMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

export type SubflowCompletion =
  | { readonly result: 'no-parent' | 'not-found' | 'child-not-finished' | 'parent-not-waiting' }
  | { readonly result: 'reported' | 'stopped'; readonly parentRunId: string; readonly stepName: string; readonly status: 'SUCCEEDED' | 'FAILED' };

/** The parent's lease stayed with another worker: try again later (the event is not committed). */
export class ParentLeaseBusy extends Error {
  constructor(
    readonly parentRunId: string,
    readonly holder: string | null,
  ) {
    super(`lease of parent run ${parentRunId} is held by ${holder ?? 'another worker'}`);
    this.name = 'ParentLeaseBusy';
  }
}

/** The output of the child's last step that succeeded (in flow order), or null. */
export function lastOutput(child: RunExecutionView): unknown {
  let out: unknown = null;
  for (const step of child.steps) {
    const r = child.results[step.name];
    if (r?.status === 'SUCCEEDED') out = r.output ?? null;
  }
  return out;
}

/** The parent's step that waits on a child of `childFlowId` in the current attempt, if any. */
function waitingSubflowStep(parent: RunExecutionView, childFlowId: string) {
  const ctx = { trigger: parent.trigger ?? null, steps: {} as Record<string, { output: unknown }> };
  for (const [name, r] of Object.entries(parent.results)) if (r.status === 'SUCCEEDED') ctx.steps[name] = { output: r.output ?? null };
  for (const step of parent.steps) {
    const r = parent.results[step.name];
    if (step.type !== 'subflow' || r?.status !== 'RUNNING' || r.attempt !== parent.attempt) continue;
    const input = resolveTemplates(step.settings ?? {}, ctx) as Record<string, unknown>;
    if (input.flowId !== childFlowId) return null;
    return { step, input };
  }
  return null;
}

/**
 * A child run ended: finishes its parent's waiting `subflow` step, with output
 * `{ status: <child's final status>, output: <child's last output> }`. The step succeeds, unless
 * the child ended in a failure status and was started with `failParentOnFailure`: then it fails,
 * and the parent's next drive fails the run there.
 *
 * Idempotent: once the step is finished, the parent no longer waits and a repeat does nothing.
 * Rejects with `ParentLeaseBusy` or a command-service error when it should be tried again.
 */
export async function completeSubflowStep(childRunId: string, opts: SubflowCompletionOptions): Promise<SubflowCompletion> {
  const { client, workerId } = opts;
  const log = (opts.log ?? componentLogger('subflow-completion')).child({ childRunId });
  const now = opts.now ?? Date.now;

  const child = await client.getExecution(childRunId);
  if (!child) return { result: 'not-found' };
  if (!child.parentRunId) return { result: 'no-parent' };
  if (!isTerminal(child.status)) return { result: 'child-not-finished' };
  const parentRunId = child.parentRunId;

  const attempts = opts.leaseAttempts ?? 5;
  let holder: string | null = null;
  for (let i = 0; ; i++) {
    const lease = await client.acquireLease(parentRunId, workerId, opts.leaseTtlMs).catch((e: unknown) => {
      if (isStopAnswer(e)) return null; // the parent is not running any more
      throw e;
    });
    // Refused, or not granted to anybody (the command service leases RUNNING runs only): the parent ended.
    if (lease === null || (!lease.acquired && lease.holder === null)) return { result: 'parent-not-waiting' };
    if (lease.acquired) break;
    holder = lease.holder;
    if (i + 1 >= attempts) throw new ParentLeaseBusy(parentRunId, holder);
    await new Promise((r) => setTimeout(r, (opts.leaseBackoffMs ?? 200) * 2 ** i));
  }

  try {
    const parent = await client.getExecution(parentRunId);
    if (!parent || parent.status !== 'RUNNING') return { result: 'parent-not-waiting' };
    const waiting = waitingSubflowStep(parent, child.flowId);
    if (!waiting) return { result: 'parent-not-waiting' };

    const childStatus: FlowRunStatus = child.status;
    const status = isFailure(childStatus) && child.failParentOnFailure ? 'FAILED' : 'SUCCEEDED';
    const output = { status: childStatus, output: lastOutput(child) };
    const durationMs = Math.max(0, Math.round(now() - Date.parse(child.startTime))) || 0;
    try {
      await client.finishStep(parentRunId, waiting.step.name, {
        status,
        input: waiting.input,
        output,
        ...(status === 'FAILED' ? { error: { message: `child run ${childRunId} ended ${childStatus}`, childRunId, childStatus } } : {}),
        durationMs,
        workerId,
      });
    } catch (e) {
      if (!isStopAnswer(e)) throw e;
      log.info({ parentRunId, code: e.code }, 'parent no longer waits on the child');
      return { result: 'stopped', parentRunId, stepName: waiting.step.name, status };
    }
    log.info({ parentRunId, stepName: waiting.step.name, childStatus, status }, 'subflow step finished');
    return { result: 'reported', parentRunId, stepName: waiting.step.name, status };
  } finally {
    await client.releaseLease(parentRunId, workerId).catch((e: Error) => log.warn({ parentRunId, err: e.message }, 'could not release the parent lease'));
  }
}
