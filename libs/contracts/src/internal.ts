import { z } from 'zod';
import { FlowStepSchema } from './api';
import { FlowRunStatusSchema, RetryStrategySchema, StepStatusSchema } from './status';
import { IdSchema, storableText } from './text';

/**
 * The command service's internal API beyond the first slice: flows, run control, resume, and the
 * engine's leases. Token-protected (`x-internal-token`); the gateway and flow workers call it.
 * Every answer that fails is the error envelope `{ statusCode, code, params }`.
 */

// ---- Flows ----

/** `POST /internal/flows/:flowId/versions` → `Flow` (the new latest version). */
export const PublishFlowVersionSchema = z.object({
  projectId: storableText().min(1).max(128),
  displayName: storableText().min(1).max(256).optional(),
  steps: z.array(FlowStepSchema).max(200),
});
export type PublishFlowVersion = z.infer<typeof PublishFlowVersionSchema>;
// `GET /internal/flows?projectId=…` → `{ data: Flow[] }`; `GET /internal/flows/:flowId?projectId=…` → `Flow`.

// ---- Run control (answers: CommandResult unless said otherwise) ----

/** `POST /internal/runs/:runId/stop`: RUNNING/PAUSED → STOPPED, and every such descendant too. */
export const StopRunRequestSchema = z.object({
  projectId: storableText().min(1).max(128).optional(),
  reason: storableText().max(512).default('stopped by request'),
});
/** `POST /internal/runs/:runId/time-out` */
export const TimeOutRunRequestSchema = z.object({ reason: z.enum(['EXECUTION_TIME', 'PAUSE_TIME', 'WORKER_LOST']) });
/** `POST /internal/runs/:runId/internal-error` */
export const InternalErrorRequestSchema = z.object({ reason: storableText().max(512) });

/**
 * `POST /internal/runs/:runId/retry` → `FlowRun`: the same run in a new attempt (FROM_FAILED_STEP)
 * or the new run (ON_LATEST_VERSION).
 */
export const RetryRunRequestSchema = z.object({
  projectId: storableText().min(1).max(128),
  strategy: RetryStrategySchema,
});
export type RetryRunRequest = z.infer<typeof RetryRunRequestSchema>;

/**
 * `POST /internal/runs/:runId/resume` → `ResumeResult`. No project: the request id is the
 * capability (unguessable, single-use). Not paused → 409; unknown or used id → 404.
 */
export const ResumeRunRequestSchema = z.object({ requestId: storableText().min(1).max(128), body: z.unknown() });
export const ResumeResultSchema = z.object({ runId: z.string(), stepName: z.string(), output: z.unknown() });
export type ResumeResult = z.infer<typeof ResumeResultSchema>;

/**
 * `GET /internal/runs/:runId/head?projectId=` → `RunHead`: the run's last sequence number and status
 * in the write model (404 for an unknown run or another project's). The gateway asks it when a run
 * is not in the views yet, to tell "not projected yet" from "does not exist".
 */
export const RunHeadSchema = z.object({ runId: z.string(), version: z.number().int().min(1), status: FlowRunStatusSchema });
export type RunHead = z.infer<typeof RunHeadSchema>;

// ---- Engine: leases and the execution view ----

/** Fencing: a step report that names a worker is refused (409 LEASE_LOST) unless it holds the run's lease. */
export const WORKER_ID_FIELD = 'workerId';

/** `POST /internal/runs/:runId/lease` (acquire or renew) → `LeaseResult`. */
export const LeaseRequestSchema = z.object({
  workerId: storableText().min(1).max(128),
  ttlMs: z.number().int().min(1000).max(600000),
});
export const LeaseResultSchema = z.object({ acquired: z.boolean(), holder: z.string().nullable(), expiresAt: z.string().nullable() });
export type LeaseResult = z.infer<typeof LeaseResultSchema>;
/** `POST /internal/runs/:runId/lease/release` `{ workerId }` → `{ released: boolean }`. */
export const ReleaseLeaseRequestSchema = z.object({ workerId: storableText().min(1).max(128) });
/**
 * `POST /internal/leases/claim-expired` → `{ runIds }`: RUNNING runs whose lease expired (their
 * worker died), now leased to the caller, which continues them from their recorded state.
 */
export const ClaimExpiredRequestSchema = LeaseRequestSchema.extend({ limit: z.number().int().min(1).max(100).default(10) });

/** `GET /internal/runs/:runId/execution` → `RunExecution`: what an engine needs to drive a run. */
export const RunExecutionSchema = z.object({
  runId: z.string(),
  projectId: z.string(),
  flowId: z.string(),
  flowVersionId: z.string(),
  status: FlowRunStatusSchema,
  attempt: z.number().int(),
  startTime: z.string(),
  parentRunId: z.string().nullable(),
  failParentOnFailure: z.boolean(),
  /** The flow version's steps, in order. */
  steps: z.array(FlowStepSchema),
  /** The trigger payload (null once purged). */
  trigger: z.unknown(),
  /** Each step the run has recorded: status, attempt, and for succeeded steps their output. */
  results: z.record(
    z.string(),
    z.object({ status: StepStatusSchema, attempt: z.number().int(), output: z.unknown().optional() }),
  ),
  pause: z.object({ requestId: z.string(), stepName: z.string() }).nullable(),
  purged: z.boolean(),
});
export type RunExecution = z.infer<typeof RunExecutionSchema>;

// ---- Bulk run control ----

/** Most run ids one bulk request may name (`flowRunIds`, `excludeFlowRunIds`). */
export const MAX_BULK_IDS = 1000;

const bulkId = IdSchema;
const bulkTimestamp = z.iso.datetime({ offset: true, message: 'an ISO 8601 timestamp with a time zone, e.g. 2024-01-15T10:30:00.000Z' });

/**
 * Which of a project's runs a bulk operation selects. `flowRunIds`, when given, is the whole
 * selection (the other filters are ignored, as in the reference). `createdAfter`/`createdBefore`
 * are inclusive. `status` defaults per action to the statuses the action can change.
 */
export const BulkRunFilterSchema = z.strictObject({
  flowRunIds: z.array(bulkId).min(1).max(MAX_BULK_IDS).optional(),
  excludeFlowRunIds: z.array(bulkId).max(MAX_BULK_IDS).optional(),
  flowId: bulkId.optional(),
  status: z.array(FlowRunStatusSchema).min(1).max(8).optional(),
  failedStepName: storableText().min(1).max(128).optional(),
  createdAfter: bulkTimestamp.optional(),
  createdBefore: bulkTimestamp.optional(),
});
export type BulkRunFilter = z.infer<typeof BulkRunFilterSchema>;

/**
 * `POST /internal/runs/bulk` → `BulkRunResult`. The command service pages through the project's
 * runs in the write model and changes them batch by batch (one transaction per batch), so memory
 * stays flat however many runs match. A run that no longer matches once locked (changed by someone
 * else meanwhile) is skipped and not counted.
 */
export const BulkRunRequestSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('cancel'),
    projectId: storableText().min(1).max(128),
    reason: storableText().max(512).default('cancelled by request'),
    filter: BulkRunFilterSchema,
  }),
  z.object({
    action: z.literal('retry'),
    projectId: storableText().min(1).max(128),
    strategy: RetryStrategySchema,
    filter: BulkRunFilterSchema,
  }),
  z.object({ action: z.literal('archive'), projectId: storableText().min(1).max(128), filter: BulkRunFilterSchema }),
]);
export type BulkRunRequest = z.infer<typeof BulkRunRequestSchema>;
export type BulkRunRequestInput = z.input<typeof BulkRunRequestSchema>;

/** `changed`: runs this request changed (descendants stopped by a cancel's cascade not included). */
export const BulkRunResultSchema = z.object({
  action: z.enum(['cancel', 'retry', 'archive']),
  changed: z.number().int().min(0),
  examined: z.number().int().min(0),
});
export type BulkRunResult = z.infer<typeof BulkRunResultSchema>;

// ---- Retention ----

/**
 * The retention window a purge is measured against: `now` (an operator may ask about a future
 * date) and the default `AP_EXECUTION_DATA_RETENTION_DAYS` (a project may override it).
 */
export const RetentionWindowSchema = z.object({
  now: z.iso.datetime({ offset: true }),
  defaultDays: z.number().int().min(1).max(36500),
});

/**
 * Where a purge pass stands: the project its last batch purged in (projects are taken in id order;
 * within a project the purge's own watermark says where it stands). A pass sends the last batch's
 * as `after`, so each batch starts where the one before ended.
 */
export const PurgeCursorSchema = z.object({ projectId: storableText().min(1).max(128) });
export type PurgeCursorInput = z.infer<typeof PurgeCursorSchema>;

/**
 * `POST /internal/retention/purge` → `PurgeBatchOutcome`: one batch of expired runs, project by
 * project in id order (from `after`'s project, when given), each project's oldest finish first, and
 * where it ended (`last`; null when it took no run).
 */
export const PurgeBatchRequestSchema = RetentionWindowSchema.extend({ limit: z.number().int().min(1).max(10000), after: PurgeCursorSchema.optional() });
export const PurgeOutcomeSchema = z.object({ runs: z.number().int().min(0), records: z.number().int().min(0), bytes: z.number().min(0) });
export type PurgeOutcomeResult = z.infer<typeof PurgeOutcomeSchema>;
/** `last` is optional: a command service that answers without it has each batch start at the first project. */
export const PurgeBatchOutcomeSchema = PurgeOutcomeSchema.extend({ last: PurgeCursorSchema.nullable().optional() });
export type PurgeBatchOutcomeResult = z.infer<typeof PurgeBatchOutcomeSchema>;

/** `POST /internal/retention/plan` → `RetentionPlan`: what a purge at `now` would take; changes nothing. */
export const RetentionPlanSchema = z.object({ runs: z.number().int().min(0), bytes: z.number().min(0) });
export type RetentionPlan = z.infer<typeof RetentionPlanSchema>;

/**
 * `POST /internal/runs/:runId/erase` `{ projectId }` → `CommandResult` + `PurgeOutcome`: one finished
 * run's execution data removed now (409 while it runs; `eventsAppended` 0 when already gone).
 */
export const EraseRunRequestSchema = z.object({ projectId: storableText().min(1).max(128) });
export const EraseResultSchema = PurgeOutcomeSchema.extend({
  runId: z.string(),
  version: z.number().int(),
  status: FlowRunStatusSchema,
  eventsAppended: z.number().int().min(0),
});
export type EraseResult = z.infer<typeof EraseResultSchema>;
