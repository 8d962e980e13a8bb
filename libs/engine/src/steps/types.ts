/** How a step ends, as its executor reports it. The run driver turns it into reports. */
export type StepOutcome =
  /** The step did its work; `output` is recorded and later steps may template it. */
  | { readonly kind: 'succeeded'; readonly output: unknown }
  /** The step failed; the run fails at it. `output` is recorded when there is one (an HTTP error answer). */
  | { readonly kind: 'failed'; readonly error: StepError; readonly output?: unknown }
  /** The run waits for input (approval): the driver pauses it and stops driving. */
  | { readonly kind: 'pause' }
  /** The run waits for a child run: the driver starts it and stops driving. */
  | { readonly kind: 'subflow'; readonly flowId: string; readonly payload: unknown; readonly failParentOnFailure: boolean };

/** A failed step's error, as recorded: always a message, an HTTP status when there was an answer. */
export interface StepError {
  readonly message: string;
  readonly status?: number;
  readonly [detail: string]: unknown;
}

export interface StepContext {
  readonly runId: string;
  readonly stepName: string;
  /**
   * Aborted when the driver must stop the step where it is (the run's time is up, the lease was
   * lost, the worker is past its shutdown deadline). An executor then rejects with `signal.reason`;
   * it never turns an abort into a step failure.
   */
  readonly signal: AbortSignal;
}

/**
 * Executes one step with its settings already resolved (templates filled in). Settings that do not
 * fit the step type fail the step (they are the flow author's error, not the engine's).
 */
export type StepExecutor = (settings: Readonly<Record<string, unknown>>, ctx: StepContext) => Promise<StepOutcome>;

export const succeeded = (output: unknown): StepOutcome => ({ kind: 'succeeded', output: output === undefined ? null : output });
export const failed = (error: StepError, output?: unknown): StepOutcome =>
  output === undefined ? { kind: 'failed', error } : { kind: 'failed', error, output };
