import { z } from 'zod';
import { failed, type StepOutcome } from './types';

/** Parses a step's resolved settings; a misfit is the step's failure, naming the setting. */
export function parseSettings<S extends z.ZodType>(
  schema: S,
  settings: unknown,
): { ok: true; value: z.infer<S> } | { ok: false; outcome: StepOutcome } {
  const r = schema.safeParse(settings);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const where = issue.path.length ? `settings.${issue.path.map(String).join('.')}` : 'settings';
  return { ok: false, outcome: failed({ message: `invalid ${where}: ${issue.message}` }) };
}

/** Rejects with the abort reason when the signal is (or becomes) aborted. */
export const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
