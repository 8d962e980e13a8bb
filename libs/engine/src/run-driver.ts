import type { FlowStep } from '@flowruns/contracts';
import { componentLogger, withSpan } from '@flowruns/platform';
import type { Logger } from 'pino';
import {
  CommandServiceError,
  CommandServiceUnavailable,
  isStopAnswer,
  type CommandServicePort,
  type RunExecutionView,
} from './command-port';
import { failed, type StepExecutors, type StepOutcome } from './steps';
import { resolveTemplates, type TemplateContext } from './templates';

/** How a drive ended. Only `error` leaves the run to someone else without a decision. */
export type DriveOutcome =
  /** Another worker holds the run's lease (or the run cannot be leased): nothing ran. */
  | 'not-acquired'
  | 'not-found'
  /** The run was not RUNNING when read (paused, finished): nothing to do. */
  | 'not-running'
  | 'succeeded'
  | 'failed'
  /** An approval step paused the run. */
  | 'paused'
  /** A subflow step waits on its child run. */
  | 'waiting'
  /** A report was refused with 409/404/410: the run was cancelled or timed out meanwhile. */
  | 'stopped'
  | 'lease-lost'
  | 'timed-out'
  /** The worker is draining: stopped at a step boundary, or abandoned the step past its deadline. */
  | 'interrupted'
  /** The engine could not drive the run for a reason of its own; recorded as INTERNAL_ERROR. */
  | 'internal-error'
  /** The command service was unreachable or broke its contract; the run is left for a later drive. */
  | 'error';

export interface DriveResult {
  readonly outcome: DriveOutcome;
  /** Steps whose executor ran in this drive. */
  readonly stepsExecuted: number;
  readonly detail?: string;
}

/** What one step execution came to, for metrics. */
export type StepExecutionOutcome = 'succeeded' | 'failed' | 'paused' | 'waiting' | 'aborted';

export interface DriverHooks {
  onStepExecuted?(e: { runId: string; stepName: string; stepType: string; outcome: StepExecutionOutcome; durationMs: number }): void;
}

export interface RunDriverOptions {
  readonly client: CommandServicePort;
  readonly workerId: string;
  readonly leaseTtlMs: number;
  /** How often the lease is renewed while driving; default a third of the TTL. */
  readonly renewEveryMs?: number;
  /** `AP_FLOW_TIMEOUT_SECONDS`: the maximum execution time of a run. */
  readonly flowTimeoutSeconds: number;
  readonly executors: StepExecutors;
  readonly now?: () => number;
  readonly hooks?: DriverHooks;
  readonly log?: Logger;
}

export interface DriveOptions {
  /**
   * When the run last entered RUNNING, if the caller knows it (the time of the triggered, retried
   * or resumed event that caused this drive). Used when the execution view does not say.
   */
  readonly runningSince?: string;
  /** Aborted when the worker drains: the drive stops at the next step boundary. */
  readonly drain?: AbortSignal;
  /** Aborted when the worker must stop at once (past its shutdown deadline): the step in flight is abandoned. */
  readonly abort?: AbortSignal;
}

type AbortKind = 'deadline' | 'lease-lost' | 'run-ended' | 'shutdown';

/** Why the driver cut a step short. Never recorded as the step's failure. */
export class DriveAbort extends Error {
  constructor(readonly kind: AbortKind) {
    super(`step aborted: ${kind}`);
    this.name = 'DriveAbort';
  }
}

// setTimeout fires at once for delays beyond this; such deadlines are not armed (checked between steps).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The shortest lease the command service grants: a hand-over lease, claimable by anyone a moment later. */
export const HAND_OVER_TTL_MS = 1000;

/** Outcomes after which the run still needs driving: its lease is handed over, not deleted. */
const UNFINISHED: ReadonlySet<DriveOutcome> = new Set(['interrupted', 'error']);

/**
 * Drives one run on behalf of one worker: holds the run's lease (renewing it), reads the execution
 * view, and from the first step that has not succeeded executes the steps in order, reporting each
 * (start, then finish with input, output, error, duration) to the command service; then succeeds or
 * fails the run. Steps that succeeded before (an earlier drive, an earlier attempt) are never
 * executed again: their outputs feed the templates.
 *
 * The command service is the judge: any 409 (the run was cancelled, timed out, or the lease is no
 * longer ours) ends the drive quietly at the step boundary where it is heard.
 */
export class RunDriver {
  private readonly client: CommandServicePort;
  private readonly now: () => number;
  private readonly renewEveryMs: number;
  private readonly log: Logger;

  constructor(private readonly opts: RunDriverOptions) {
    this.client = opts.client;
    this.now = opts.now ?? Date.now;
    this.renewEveryMs = opts.renewEveryMs ?? Math.max(100, Math.floor(opts.leaseTtlMs / 3));
    this.log = opts.log ?? componentLogger('run-driver');
  }

  get workerId(): string {
    return this.opts.workerId;
  }

  /** Acquires the lease (or renews it, when this worker holds it already) and drives the run. */
  async drive(runId: string, options: DriveOptions = {}): Promise<DriveResult> {
    const log = this.log.child({ runId, workerId: this.opts.workerId });
    try {
      const lease = await this.client.acquireLease(runId, this.opts.workerId, this.opts.leaseTtlMs);
      if (!lease.acquired) {
        log.debug({ holder: lease.holder }, 'lease held by another worker; not driving');
        return { outcome: 'not-acquired', stepsExecuted: 0 };
      }
    } catch (e) {
      // A refusal (run not RUNNING, unknown run) means there is nothing to drive.
      if (e instanceof CommandServiceError && e.status < 500 && e.status !== 401 && e.status !== 403) {
        log.debug({ status: e.status, code: e.code }, 'lease refused; not driving');
        return { outcome: 'not-acquired', stepsExecuted: 0, detail: e.code };
      }
      log.warn({ err: (e as Error).message }, 'could not acquire the lease');
      return { outcome: 'error', stepsExecuted: 0, detail: (e as Error).message };
    }

    const leaseLost = new AbortController();
    const renewer = this.renewWhileDriving(runId, leaseLost, log);
    const state = { stepsExecuted: 0 };
    let outcome: DriveOutcome | undefined;
    try {
      outcome = await this.driveLeased(runId, options, leaseLost.signal, state, log);
      return { outcome, stepsExecuted: state.stepsExecuted };
    } catch (e) {
      const settled = await this.settle(runId, e, log);
      outcome = settled.outcome;
      return { ...settled, stepsExecuted: state.stepsExecuted };
    } finally {
      renewer.stop();
      await this.letGo(runId, outcome, log);
    }
  }

  /**
   * Gives the lease up at the end of a drive. A run that still needs driving (the worker drains, the
   * command service failed) is handed over: its lease is shortened to expire at once, so that
   * `claim-expired` gives it to a live worker (a deleted lease is never claimed, and the supervisor
   * would end the run as WORKER_LOST). Any other run is released. A lost lease is someone else's.
   */
  private async letGo(runId: string, outcome: DriveOutcome | undefined, log: Logger): Promise<void> {
    if (outcome === 'lease-lost') return;
    try {
      if (outcome === undefined || UNFINISHED.has(outcome)) {
        await this.client.acquireLease(runId, this.opts.workerId, HAND_OVER_TTL_MS);
      } else {
        await this.client.releaseLease(runId, this.opts.workerId);
      }
    } catch (e) {
      // It expires on its own; until then nobody else drives the run.
      log.warn({ err: (e as Error).message }, 'could not let go of the lease');
    }
  }

  /** Turns whatever ended a drive early into its outcome, recording what must be recorded. */
  private async settle(runId: string, e: unknown, log: Logger): Promise<{ outcome: DriveOutcome; detail?: string }> {
    if (e instanceof DriveAbort) {
      switch (e.kind) {
        case 'deadline':
          return this.timeOut(runId, log);
        case 'lease-lost':
          log.info('lease lost; stopped driving');
          return { outcome: 'lease-lost' };
        case 'run-ended':
          log.info('run no longer running; stopped driving');
          return { outcome: 'stopped' };
        case 'shutdown':
          log.warn('shutdown deadline passed; step in flight abandoned, another worker will run it again');
          return { outcome: 'interrupted' };
      }
    }
    if (isStopAnswer(e)) {
      log.info({ status: e.status, code: e.code }, 'command service refused a report; stopped driving');
      return { outcome: e.code === 'LEASE_LOST' ? 'lease-lost' : 'stopped', detail: e.code };
    }
    if (e instanceof CommandServiceUnavailable || e instanceof CommandServiceError) {
      // Not the run's fault: leave it RUNNING; it is driven again once the command service is back.
      log.warn({ err: e.message }, 'command service failed while driving; run left for a later drive');
      return { outcome: 'error', detail: e.message };
    }
    const reason = `engine error: ${(e as Error)?.message ?? String(e)}`;
    log.error({ err: e }, 'engine failed while driving; recording INTERNAL_ERROR');
    await this.client.internalError(runId, { reason }).catch((err: Error) => log.warn({ err: err.message }, 'could not record the internal error'));
    return { outcome: 'internal-error', detail: reason };
  }

  private async timeOut(runId: string, log: Logger): Promise<{ outcome: DriveOutcome }> {
    log.info('maximum execution time reached');
    try {
      await this.client.timeOut(runId, { reason: 'EXECUTION_TIME' });
    } catch (e) {
      // The supervisor may have recorded it first (409), or will: either way the run ends TIMEOUT.
      if (!isStopAnswer(e)) log.warn({ err: (e as Error).message }, 'could not record the timeout; the supervisor will');
    }
    return { outcome: 'timed-out' };
  }

  private async driveLeased(
    runId: string,
    options: DriveOptions,
    leaseLost: AbortSignal,
    state: { stepsExecuted: number },
    log: Logger,
  ): Promise<DriveOutcome> {
    const view = await this.client.getExecution(runId);
    if (!view) return 'not-found';
    if (view.status !== 'RUNNING') return 'not-running';
    if (view.purged) {
      const reason = 'execution data purged while the run was running';
      await this.client.internalError(runId, { reason });
      return 'internal-error';
    }
    const deadline = this.deadlineOf(view, options.runningSince);
    const ctx: { trigger: unknown; steps: Record<string, { output: unknown }> } = { trigger: view.trigger ?? null, steps: {} };
    for (const [name, r] of Object.entries(view.results)) {
      if (r.status === 'SUCCEEDED') ctx.steps[name] = { output: r.output ?? null };
    }

    for (const step of view.steps) {
      const recorded = view.results[step.name];
      if (recorded?.status === 'SUCCEEDED') continue;
      if (recorded && recorded.attempt === view.attempt) {
        // This attempt already recorded the step's failure (a worker died before failing the run,
        // or a subflow's child failed it): the run fails there, the step does not run again.
        if (recorded.status === 'FAILED') {
          await this.client.fail(runId, { failedStepName: step.name, workerId: this.opts.workerId });
          return 'failed';
        }
        if (recorded.status === 'RUNNING' && step.type === 'subflow') return 'waiting';
        if (recorded.status === 'PAUSED') {
          log.warn({ stepName: step.name }, 'a running run has a paused step; not driving');
          return 'not-running';
        }
        // RUNNING (not a subflow): its worker died mid-step; the step runs again.
      }
      if (this.now() >= deadline) return (await this.timeOut(runId, log)).outcome;
      if (options.drain?.aborted) return 'interrupted';
      if (leaseLost.aborted) throw leaseLost.reason;

      const outcome = await withSpan(
        `step ${step.name}`,
        { attributes: { 'run.id': runId, 'step.name': step.name, 'step.type': step.type } },
        async (span) => {
          const o = await this.runStep(view, step, ctx, deadline, options, leaseLost, state, log);
          span.setAttribute('step.outcome', o.kind);
          return o;
        },
      );
      switch (outcome.kind) {
        case 'succeeded':
          ctx.steps[step.name] = { output: outcome.output };
          continue;
        case 'failed':
          await this.client.fail(runId, { failedStepName: step.name, workerId: this.opts.workerId });
          return 'failed';
        case 'pause':
          return 'paused';
        case 'subflow':
          return 'waiting';
      }
    }
    await this.client.succeed(runId, { workerId: this.opts.workerId });
    return 'succeeded';
  }

  /** Start, execute, finish one step. Returns what the run does next. */
  private async runStep(
    view: RunExecutionView,
    step: FlowStep,
    ctx: TemplateContext,
    deadline: number,
    options: DriveOptions,
    leaseLost: AbortSignal,
    state: { stepsExecuted: number },
    log: Logger,
  ): Promise<StepOutcome> {
    const runId = view.runId;
    const workerId = this.opts.workerId;
    const input = resolveTemplates(step.settings ?? {}, ctx) as Record<string, unknown>;
    await this.client.startStep(runId, step.name, { stepType: step.type, workerId });

    const started = this.now();
    let durationMs = 0;
    const hook = (o: StepExecutionOutcome) =>
      this.opts.hooks?.onStepExecuted?.({ runId, stepName: step.name, stepType: step.type, outcome: o, durationMs });
    state.stepsExecuted++;
    let outcome: StepOutcome;
    try {
      outcome = await this.execute(runId, step, input, deadline, options, leaseLost);
    } finally {
      durationMs = Math.max(0, Math.round(this.now() - started));
    }

    switch (outcome.kind) {
      case 'succeeded': {
        hook('succeeded');
        try {
          await this.client.finishStep(runId, step.name, { status: 'SUCCEEDED', input, output: outcome.output, durationMs, workerId });
          return outcome;
        } catch (e) {
          const error = unrecordable(e);
          if (!error) throw e;
          // The result cannot be recorded: the step fails with that reason instead of the run hanging.
          // Without the input and output: either may be what was refused.
          await this.client.finishStep(runId, step.name, { status: 'FAILED', error, durationMs, workerId });
          return failed(error);
        }
      }
      case 'failed':
        hook('failed');
        log.info({ stepName: step.name, error: outcome.error.message }, 'step failed');
        try {
          await this.client.finishStep(runId, step.name, {
            status: 'FAILED',
            input,
            ...(outcome.output === undefined ? {} : { output: outcome.output }),
            error: outcome.error,
            durationMs,
            workerId,
          });
        } catch (e) {
          const error = unrecordable(e);
          if (!error) throw e;
          await this.client.finishStep(runId, step.name, { status: 'FAILED', error, durationMs, workerId });
          return failed(error);
        }
        return outcome;
      case 'pause': {
        hook('paused');
        const paused = await this.client.pause(runId, { stepName: step.name, workerId });
        log.info({ stepName: step.name, requestId: paused.requestId }, 'run paused');
        return outcome;
      }
      case 'subflow': {
        try {
          const child = await this.client.triggerRun(outcome.flowId, {
            projectId: view.projectId,
            payload: outcome.payload,
            parentRunId: runId,
            failParentOnFailure: outcome.failParentOnFailure,
            triggeredBy: null,
          });
          hook('waiting');
          log.info({ stepName: step.name, childRunId: child.id }, 'waiting on a child run');
          return outcome;
        } catch (e) {
          if (!(e instanceof CommandServiceError) || e.status >= 500 || e.status === 401 || e.status === 403) throw e;
          // The child could not be started (unknown flow, quota, ...): the step fails with the reason.
          hook('failed');
          const error = { message: `could not start the child run: ${e.code}`, status: e.status, code: e.code, params: e.params };
          await this.client.finishStep(runId, step.name, { status: 'FAILED', input, error, durationMs, workerId });
          return failed(error);
        }
      }
    }
  }

  /** Runs the executor under the drive's signals; an abort propagates as a DriveAbort. */
  private async execute(
    runId: string,
    step: FlowStep,
    input: Record<string, unknown>,
    deadline: number,
    options: DriveOptions,
    leaseLost: AbortSignal,
  ): Promise<StepOutcome> {
    const executor = this.opts.executors[step.type];
    if (!executor) return failed({ message: `unknown step type "${step.type}"` });

    const timeUp = new AbortController();
    const remaining = deadline - this.now();
    const timer = remaining < MAX_TIMER_MS ? setTimeout(() => timeUp.abort(new DriveAbort('deadline')), Math.max(0, remaining)) : undefined;
    const signals = [leaseLost, timeUp.signal];
    if (options.abort) signals.push(options.abort);
    const signal = AbortSignal.any(signals);
    try {
      return await executor(input, { runId, stepName: step.name, signal });
    } catch (e) {
      if (signal.aborted) {
        const reason = signal.reason as unknown;
        this.opts.hooks?.onStepExecuted?.({ runId, stepName: step.name, stepType: step.type, outcome: 'aborted', durationMs: 0 });
        throw reason instanceof DriveAbort ? reason : new DriveAbort('shutdown');
      }
      // An executor that throws is a broken step, not a broken run: the step fails with the reason.
      return failed({ message: `step crashed: ${(e as Error)?.message ?? String(e)}` });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The instant past which the run may not start another step: its maximum execution time, counted
   * (as the supervisor counts it) from when the run last entered RUNNING. That is `runningSince`
   * when known; `startTime` only when it is certainly the same instant (first attempt, never
   * resumed). Otherwise no deadline is armed here and the supervisor alone enforces it: timing out
   * a resumed run by its original start would end it wrongly.
   */
  private deadlineOf(view: RunExecutionView, hint: string | undefined): number {
    const resumedBefore = view.steps.some((s) => s.type === 'approval' && view.results[s.name]?.status === 'SUCCEEDED');
    const since = view.runningSince ?? hint ?? (view.attempt === 1 && !resumedBefore ? view.startTime : undefined);
    const t = since === undefined ? Number.NaN : Date.parse(since);
    return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t + this.opts.flowTimeoutSeconds * 1000;
  }

  /**
   * Renews the lease every `renewEveryMs`. The lease counts as lost, and the step in flight is
   * aborted, when the command service gives it to someone else, refuses it (the run ended), or
   * cannot be reached for so long that the lease would expire before the next try.
   */
  private renewWhileDriving(runId: string, lost: AbortController, log: Logger): { stop(): void } {
    let lastOk = this.now();
    let inFlight = false;
    const ttl = this.opts.leaseTtlMs;
    const timer = setInterval(() => {
      if (inFlight || lost.signal.aborted) return;
      inFlight = true;
      this.client
        .acquireLease(runId, this.opts.workerId, ttl)
        .then((r) => {
          if (r.acquired) lastOk = this.now();
          else lost.abort(new DriveAbort('lease-lost'));
        })
        .catch((e: Error) => {
          if (isStopAnswer(e)) {
            lost.abort(new DriveAbort(e.code === 'LEASE_LOST' ? 'lease-lost' : 'run-ended'));
          } else if (this.now() + this.renewEveryMs >= lastOk + ttl) {
            log.warn({ err: e.message }, 'lease could not be renewed in time; abandoning the step in flight');
            lost.abort(new DriveAbort('lease-lost'));
          } else {
            log.warn({ err: e.message }, 'lease renewal failed; retrying');
          }
        })
        .finally(() => {
          inFlight = false;
        });
    }, this.renewEveryMs);
    timer.unref?.();
    return { stop: () => clearInterval(timer) };
  }
}

/**
 * The error to record instead of a step result the command service refused to store: too large
 * (413), or refused as input (400: text Postgres cannot store such as U+0000, or nested too deep).
 * Only fixed text and the refusal's code and limit: the refused values stay out of it.
 */
function unrecordable(e: unknown): { message: string; code: string; limit?: unknown } | null {
  if (!(e instanceof CommandServiceError)) return null;
  if (e.code === 'PAYLOAD_TOO_LARGE') {
    return { message: 'step output too large to record', code: e.code, ...(e.params.limit !== undefined ? { limit: e.params.limit } : {}) };
  }
  if (e.status === 400 && e.code === 'VALIDATION') {
    return { message: 'step result cannot be recorded: it holds text that cannot be stored (U+0000, an unpaired surrogate) or is nested too deep', code: e.code };
  }
  return null;
}
