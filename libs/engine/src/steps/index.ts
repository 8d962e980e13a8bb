import { httpStep, type HttpStepOptions } from './http';
import { approvalStep, delayStep, failStep, subflowStep, transformStep } from './simple';
import type { StepExecutor } from './types';

export * from './types';
export { httpStep, DEFAULT_MAX_RESPONSE_BYTES, type HttpStepOptions } from './http';
export {
  blockedReason,
  checkDestination,
  DestinationRefusedError,
  NOTHING_ALLOWED,
  parseAllowList,
  type BlockReason,
  type DestinationAllowList,
  type ResolveAll,
} from './destinations';
export { approvalStep, delayStep, failStep, subflowStep, transformStep } from './simple';

/** The step types the engine runs, by name. */
export type StepExecutors = Readonly<Record<string, StepExecutor>>;

export const STEP_TYPES = ['http', 'transform', 'delay', 'approval', 'subflow', 'fail'] as const;

/** The executors of every step type, the HTTP one with its per-request limits. */
export function defaultExecutors(http: HttpStepOptions): StepExecutors {
  return {
    http: httpStep(http),
    transform: transformStep,
    delay: delayStep,
    approval: approvalStep,
    subflow: subflowStep,
    fail: failStep,
  };
}
