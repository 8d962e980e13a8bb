import {
  BulkRunFilterSchema,
  FlowRunStatusSchema,
  IdSchema,
  MAX_BULK_IDS,
  PublishFlowVersionSchema,
  ResumeRunRequestSchema,
  RetryRunRequestSchema,
  RetryStrategySchema,
  storableText,
} from '@flowruns/contracts';
import { EnvelopeException, parseOrThrow } from '@flowruns/platform';
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

// No U+0000 in any id or filter: Postgres refuses it in text, and the query would answer 500.
const id = IdSchema;
const timestamp = z.iso.datetime({ offset: true, message: 'an ISO 8601 timestamp with a time zone, e.g. 2024-01-15T10:30:00.000Z' });

/** `GET /api/v1/flow-runs` query parameters. */
export const ListRunsQuerySchema = z.object({
  projectId: id,
  flowId: id.optional(),
  status: z.array(FlowRunStatusSchema).max(8).optional(),
  tags: z.array(storableText().min(1).max(64)).max(50).optional(),
  failedStepName: storableText().min(1).max(128).optional(),
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

/** `GET /api/v1/flow-runs/export` query parameters: the list's filters, without paging. */
export const ExportRunsQuerySchema = ListRunsQuerySchema.omit({ limit: true, cursor: true });
export type ExportRunsQuery = z.infer<typeof ExportRunsQuerySchema>;

/** Validates the export query; a bad parameter answers 400 naming it. */
export function parseExportRunsQuery(params: URLSearchParams): ExportRunsQuery {
  const r = ExportRunsQuerySchema.safeParse(queryObject(params));
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

/** `GET /api/v1/flows` query parameters. */
export const ListFlowsQuerySchema = z.object({ projectId: id });

export function parseListFlowsQuery(params: URLSearchParams): { projectId: string } {
  const r = ListFlowsQuerySchema.safeParse(queryObject(params));
  if (!r.success) throw invalid(r.error, 'query');
  return r.data;
}

/**
 * `POST /api/v1/flows/:flowId/versions`: the command service's body, with `projectId` optional
 * (the key's project when left out).
 */
export const PublishVersionBodySchema = PublishFlowVersionSchema.extend({
  projectId: PublishFlowVersionSchema.shape.projectId.optional(),
});

/** `POST /api/v1/flow-runs/:id/retry`: both fields required, as in the reference. */
export const RetryBodySchema = RetryRunRequestSchema;

/** The request id of a resume path, as the command service accepts it. */
export const ResumeRequestIdSchema = ResumeRunRequestSchema.shape.requestId;

export function parseResumeRequestId(requestId: string): string {
  const r = ResumeRequestIdSchema.safeParse(requestId);
  if (!r.success) throw EnvelopeException.of('VALIDATION', { field: 'requestId', message: r.error.issues[0].message });
  return r.data;
}

/** Statuses a cancel may select: only runs that can still be stopped. */
export const CANCELLABLE_STATUSES = ['RUNNING', 'PAUSED'] as const;
export { MAX_BULK_IDS };

/**
 * The filters every bulk operation takes (`POST /api/v1/flow-runs/cancel|retry|archive`). Strict:
 * a misspelt filter (`flowID`) must be refused, not dropped, because dropping it would widen the
 * operation to every run of the project. `flowRunIds`, when present, makes the other filters
 * ignored (as in the reference), but they are still validated. `projectId` is optional; when
 * present it must be the key's project.
 */
const BulkFilterFields = {
  projectId: id.optional(),
  ...BulkRunFilterSchema.shape,
};

/** `POST /api/v1/flow-runs/cancel` → `{ cancelled }`. `status` may name only PAUSED and RUNNING. */
export const BulkCancelBodySchema = z.strictObject({
  ...BulkFilterFields,
  status: z.array(z.enum(CANCELLABLE_STATUSES, { message: 'PAUSED or RUNNING' })).min(1).max(2).optional(),
});
export type BulkCancelBody = z.infer<typeof BulkCancelBodySchema>;

/** `POST /api/v1/flow-runs/retry` → `{ retried }`. */
export const BulkRetryBodySchema = z.strictObject({ ...BulkFilterFields, strategy: RetryStrategySchema });
export type BulkRetryBody = z.infer<typeof BulkRetryBodySchema>;

/** `POST /api/v1/flow-runs/archive` → `{ archived }` (the same filters as retry, without strategy). */
export const BulkArchiveBodySchema = z.strictObject(BulkFilterFields);
export type BulkArchiveBody = z.infer<typeof BulkArchiveBodySchema>;

/**
 * Validates a body with a strict schema: an unknown field answers 400 naming it; otherwise the
 * shared rule (the first offending field, dotted path).
 */
export function parseStrictBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    throw EnvelopeException.of('VALIDATION', { field: [...issue.path.map(String), issue.keys[0]].join('.'), message: 'unknown field' });
  }
  return parseOrThrow(schema, body);
}
