import { z } from 'zod';
import { abortReason, parseSettings } from './settings';
import { failed, succeeded, type StepExecutor } from './types';

/** `transform { value }`: the output is `value`, templates resolved (they already are). */
export const transformStep: StepExecutor = async (settings) => succeeded(settings.value);

/** `fail { message }`: fails the step with that message. */
export const failStep: StepExecutor = async (settings) => {
  const message = settings.message;
  if (typeof message === 'string' && message.length > 0) return failed({ message });
  if (message === undefined || message === null || message === '') return failed({ message: 'failed by a fail step' });
  return failed({ message: typeof message === 'object' ? JSON.stringify(message) : String(message) });
};

// setTimeout's longest delay (about 24.8 days); longer waits belong to an approval or a schedule.
const MAX_DELAY_MS = 2 ** 31 - 1;
const DelaySettings = z.object({ ms: z.coerce.number().int().min(0).max(MAX_DELAY_MS) });

/** `delay { ms }`: waits, then succeeds with `{ delayedMs }`. An abort ends the wait at once. */
export const delayStep: StepExecutor = async (settings, ctx) => {
  const parsed = parseSettings(DelaySettings, settings);
  if (!parsed.ok) return parsed.outcome;
  const { ms } = parsed.value;
  await new Promise<void>((resolve, reject) => {
    if (ctx.signal.aborted) return reject(abortReason(ctx.signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(ctx.signal));
    };
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
  return succeeded({ delayedMs: ms });
};

/** `approval {}`: the run pauses; the resume body becomes the step's output (the command service records it). */
export const approvalStep: StepExecutor = async () => ({ kind: 'pause' });

const SubflowSettings = z.object({
  flowId: z.string().min(1),
  payload: z.unknown().optional(),
  failParentOnFailure: z.boolean().default(false),
});

/**
 * `subflow { flowId, payload?, failParentOnFailure? }`: asks the driver to start the child run and
 * wait for it. The step finishes when the child does (its output: the child's final status and
 * last output), reported by whichever worker sees the child end.
 */
export const subflowStep: StepExecutor = async (settings) => {
  const parsed = parseSettings(SubflowSettings, settings);
  if (!parsed.ok) return parsed.outcome;
  const { flowId, payload, failParentOnFailure } = parsed.value;
  return { kind: 'subflow', flowId, payload: payload === undefined ? {} : payload, failParentOnFailure };
};
