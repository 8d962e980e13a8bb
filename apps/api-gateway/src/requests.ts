import { FlowRunStatusSchema } from '@flowruns/contracts';
import { EnvelopeException } from '@flowruns/platform';
import { decodeCursor, MAX_LIST_LIMIT, type ListRunsQuery } from '@flowruns/run-views';
import { z } from 'zod';

/** Query parameters that may repeat: `status=A&status=B` and `status[]=A&status[]=B` alike. */
const REPEATABLE = new Set(['status', 'tags', 'flowRunIds']);

/**
 * A query string as an object: repeatable parameters become arrays (however they were written),
 * and a single-valued parameter given twice becomes an array too, so validation rejects it
 * instead of silently picking one. Read from the raw URL so the framework's query parser
 * settings (simple or extended) cannot change what a request means.
 */
export function queryObject(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [rawKey, value] of params) {
    const key = rawKey.replace(/\[\d*\]$/, '');
    const seen = out[key];
    if (REPEATABLE.has(key)) out[key] = [...((seen as string[] | undefined) ?? []), value];
    else out[key] = seen === undefined ? value : [...[seen].flat(), value];
  }
  return out;
}

const id = z.string().min(1).max(256);
const timestamp = z.iso.datetime({ offset: true, message: 'an ISO 8601 timestamp with a time zone, e.g. 2024-01-15T10:30:00.000Z' });

/** `GET /api/v1/flow-runs` query parameters. */
export const ListRunsQuerySchema = z.object({
  projectId: id,
  flowId: id.optional(),
  status: z.array(FlowRunStatusSchema).max(8).optional(),
  tags: z.array(z.string().min(1).max(64)).max(50).optional(),
  failedStepName: z.string().min(1).max(128).optional(),
  createdAfter: timestamp.optional(),
  createdBefore: timestamp.optional(),
  flowRunIds: z.array(id).max(100).optional(),
  includeArchived: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  limit: z
    .string()
    .regex(/^\d+$/, 'an integer from 1 to 100')
    .default('10')
    .transform(Number)
    .pipe(z.number().int().min(1, 'an integer from 1 to 100').max(MAX_LIST_LIMIT, 'an integer from 1 to 100')),
  cursor: z
    .string()
    .refine((c) => decodeCursor(c) !== null, 'not a cursor from this API (use `next` or `previous` of a page)')
    .optional(),
});

/** 400 VALIDATION naming the first offending parameter (`params.field`). */
function invalid(error: z.ZodError, fallbackField: string): EnvelopeException {
  const issue = error.issues[0];
  return EnvelopeException.of('VALIDATION', {
    field: issue.path.length ? String(issue.path[0]) : fallbackField,
    message: issue.message,
  });
}

/** Validates the list query; a bad parameter answers 400 naming it. */
export function parseListRunsQuery(params: URLSearchParams): ListRunsQuery {
  const r = ListRunsQuerySchema.safeParse(queryObject(params));
  if (!r.success) throw invalid(r.error, 'query');
  return r.data;
}

/** The nested-run headers of `POST /api/v1/flows/:flowId/run`. */
export const TriggerHeadersSchema = z.object({
  'ap-parent-run-id': id.optional(),
  'ap-fail-parent-on-failure': z.enum(['true', 'false'], { message: 'true or false' }).optional(),
});

export function parseTriggerHeaders(headers: Record<string, string | string[] | undefined>): {
  parentRunId: string | null;
  failParentOnFailure: boolean;
} {
  const r = TriggerHeadersSchema.safeParse({
    'ap-parent-run-id': headers['ap-parent-run-id'],
    'ap-fail-parent-on-failure': headers['ap-fail-parent-on-failure']?.toString().toLowerCase(),
  });
  if (!r.success) throw invalid(r.error, 'headers');
  return {
    parentRunId: r.data['ap-parent-run-id'] ?? null,
    failParentOnFailure: r.data['ap-fail-parent-on-failure'] === 'true',
  };
}
