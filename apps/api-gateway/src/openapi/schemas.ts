import {
  CreateFlowSchema,
  ERROR_CODES,
  FlowRunSchema,
  FlowRunWithStepsSchema,
  FlowSchema,
  ResumeResultSchema,
  type ErrorEnvelope,
  type Flow,
} from '@flowruns/contracts';
import type { RunPage } from '@flowruns/run-views';
import { z } from 'zod';
import type { FlowRunsController } from '../flow-runs.controller';
import type { MeController } from '../me.controller';
import type { ResumeController } from '../resume.controller';
import type { RunDataController } from '../run-data.controller';
import {
  BulkArchiveBodySchema,
  BulkCancelBodySchema,
  BulkRetryBodySchema,
  PublishVersionBodySchema,
  RetryBodySchema,
} from '../requests';

/**
 * The named schemas of the document (`components.schemas`): the very zod schemas the gateway
 * validates requests with, and for answers the contract's schemas. Answers that have no schema
 * elsewhere (a page, `{ cancelled }`, the envelope) are declared here, each typed against what the
 * handler returns, so a handler that changes its answer's type no longer compiles with its schema.
 */

/** What a handler of controller `C` answers (its promise's value). */
type Answer<C, M extends keyof C> = C[M] extends (...args: never[]) => Promise<infer R> ? R : never;

/** Bodies clients send: shown on their input side (fields with defaults are optional). */
export const REQUEST_SCHEMAS = {
  CreateFlow: CreateFlowSchema,
  PublishFlowVersion: PublishVersionBodySchema,
  RetryFlowRun: RetryBodySchema,
  BulkCancel: BulkCancelBodySchema,
  BulkRetry: BulkRetryBodySchema,
  BulkArchive: BulkArchiveBodySchema,
} as const satisfies Record<string, z.ZodType>;

const count = z.number().int().min(0);

/**
 * `{ statusCode, code, params }`, every error answer. `params` depends on the code: `field` and
 * `message` for VALIDATION, `entityType` and `entityId` for ENTITY_NOT_FOUND, `header` for the
 * Idempotency-Key errors, `retryAfterSeconds` for RATE_LIMITED.
 */
export const ErrorEnvelopeSchema: z.ZodType<ErrorEnvelope> = z.object({
  statusCode: z.number().int().min(400).max(599),
  code: z.enum(ERROR_CODES),
  params: z.record(z.string(), z.unknown()),
});

/** Answers: shown on their output side. */
export const RESPONSE_SCHEMAS = {
  FlowRun: FlowRunSchema,
  FlowRunWithSteps: FlowRunWithStepsSchema,
  FlowRunPage: z.object({
    data: z.array(FlowRunSchema),
    next: z.string().nullable(),
    previous: z.string().nullable(),
  }) satisfies z.ZodType<RunPage>,
  Flow: FlowSchema,
  FlowList: z.object({ data: z.array(FlowSchema) }) satisfies z.ZodType<{ data: Flow[] }>,
  ResumeResult: ResumeResultSchema,
  ResumeAccepted: z.object({ accepted: z.literal(true) }) satisfies z.ZodType<Answer<ResumeController, 'accept'>>,
  BulkCancelResult: z.object({ cancelled: count }) satisfies z.ZodType<Answer<FlowRunsController, 'cancel'>>,
  BulkRetryResult: z.object({ retried: count }) satisfies z.ZodType<Answer<FlowRunsController, 'retryMany'>>,
  BulkArchiveResult: z.object({ archived: count }) satisfies z.ZodType<Answer<FlowRunsController, 'archive'>>,
  EraseResult: z.object({
    runId: z.string(),
    erased: z.boolean(),
    records: count,
    bytes: z.number().min(0),
  }) satisfies z.ZodType<Answer<RunDataController, 'erase'>>,
  ApiKeyIdentity: z.object({
    projectId: z.string(),
    keyId: z.string(),
  }) satisfies z.ZodType<Answer<MeController, 'me'>>,
  ErrorEnvelope: ErrorEnvelopeSchema,
} as const satisfies Record<string, z.ZodType>;

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;
export type RequestSchemaName = keyof typeof REQUEST_SCHEMAS;
