import { z } from 'zod';
import { FlowRunStatusSchema, RunEnvironmentSchema, StepStatusSchema } from './status';
import { IdSchema, storableText } from './text';

/**
 * Shapes that cross process boundaries over HTTP: the public run representation (the reference's
 * flow run object) and the command service's internal API. One source for validation and docs.
 */

/** A flow run as the public API shows it (list items leave out `steps` and `logsFileId`). */
export const FlowRunSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  flowId: z.string(),
  flowVersionId: z.string(),
  flowVersion: z.object({ displayName: z.string() }),
  status: FlowRunStatusSchema,
  startTime: z.string().nullable(),
  finishTime: z.string().nullable(),
  environment: RunEnvironmentSchema,
  triggeredBy: z.string().nullable(),
  tags: z.array(z.string()),
  stepsCount: z.number().int(),
  failedStepName: z.string().nullable(),
  parentRunId: z.string().nullable(),
  retryOf: z.string().nullable(),
  attempt: z.number().int(),
  pause: z.object({ requestId: z.string(), stepName: z.string() }).nullable(),
  archivedAt: z.string().nullable(),
  executionDataPurgedAt: z.string().nullable(),
  created: z.string(),
});
export type FlowRun = z.infer<typeof FlowRunSchema>;

export const StepResultSchema = z.object({
  type: z.string(),
  status: StepStatusSchema.optional(),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  duration: z.number().int().optional(),
  attempt: z.number().int().optional(),
});
export type StepResult = z.infer<typeof StepResultSchema>;

export const FlowRunWithStepsSchema = FlowRunSchema.extend({
  steps: z.record(z.string(), StepResultSchema),
  logsFileId: z.string().nullable(),
});
export type FlowRunWithSteps = z.infer<typeof FlowRunWithStepsSchema>;

export const FlowStepSchema = z.object({
  name: storableText()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
    // A run's `steps` show the trigger payload under this name.
    .refine((n) => n !== 'trigger', '"trigger" is reserved for the trigger payload'),
  type: storableText().min(1).max(64),
  settings: z.record(z.string(), z.unknown()).default({}),
});
export type FlowStep = z.infer<typeof FlowStepSchema>;

export const CreateFlowSchema = z.object({
  projectId: storableText().min(1).max(128),
  displayName: storableText().min(1).max(256),
  tags: z.array(storableText().min(1).max(64)).max(50).default([]),
  steps: z.array(FlowStepSchema).max(200),
});
export type CreateFlow = z.infer<typeof CreateFlowSchema>;

export const FlowSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  displayName: z.string(),
  tags: z.array(z.string()),
  created: z.string(),
  updated: z.string(),
  version: z.object({
    id: z.string(),
    version: z.number().int(),
    displayName: z.string(),
    steps: z.array(FlowStepSchema),
  }),
});
export type Flow = z.infer<typeof FlowSchema>;

// ---- Internal API of the command service (token-protected; the gateway and engines call it) ----

export const INTERNAL_TOKEN_HEADER = 'x-internal-token';
export const TRACEPARENT_HEADER = 'traceparent';

export const TriggerRunRequestSchema = z.object({
  projectId: storableText().min(1).max(128),
  payload: z.unknown(),
  environment: RunEnvironmentSchema.default('PRODUCTION'),
  triggeredBy: storableText().max(256).nullable().default(null),
  parentRunId: IdSchema.nullable().default(null),
  failParentOnFailure: z.boolean().default(false),
});
export type TriggerRunRequest = z.infer<typeof TriggerRunRequestSchema>;
/** What a caller may send (defaults filled in by the command service). */
export type TriggerRunRequestInput = z.input<typeof TriggerRunRequestSchema>;

export const StartStepRequestSchema = z.object({ stepType: storableText().min(1).max(64), workerId: storableText().min(1).max(128).optional() });

export const FinishStepRequestSchema = z.object({
  workerId: storableText().min(1).max(128).optional(),
  status: z.enum(['SUCCEEDED', 'FAILED']),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  durationMs: z.number().int().nonnegative(),
});
export type FinishStepRequest = z.infer<typeof FinishStepRequestSchema>;

export const PauseRunRequestSchema = z.object({
  workerId: storableText().min(1).max(128).optional(),
  stepName: storableText().min(1).max(128),
  resumeDeadline: z.iso.datetime().nullable().default(null),
});

export const FailRunRequestSchema = z.object({
  failedStepName: storableText().min(1).max(128).nullable().default(null),
  workerId: storableText().min(1).max(128).optional(),
});
/** `POST /internal/runs/:runId/succeed` */
export const SucceedRunRequestSchema = z.object({ workerId: storableText().min(1).max(128).optional() });

/** What every internal command answers: the run's stream position after the command. */
export const CommandResultSchema = z.object({
  runId: z.string(),
  version: z.number().int(),
  status: FlowRunStatusSchema.nullable(),
  eventsAppended: z.number().int(),
});
export type CommandResult = z.infer<typeof CommandResultSchema>;

/** How many engine reports one `POST /internal/reports` may carry. */
export const MAX_REPORTS_PER_BATCH = 500;

/** The caller's span for one report in a batch (each report keeps its own trace). */
const ReportTraceparent = z.string().max(128).optional();

/**
 * One engine report inside a batch: the same fields as the single-report endpoint's body, plus the
 * run (and step) its path would name.
 */
export const EngineReportSchema = z.discriminatedUnion('type', [
  StartStepRequestSchema.extend({ type: z.literal('startStep'), runId: IdSchema, stepName: IdSchema, traceparent: ReportTraceparent }),
  FinishStepRequestSchema.extend({ type: z.literal('finishStep'), runId: IdSchema, stepName: IdSchema, traceparent: ReportTraceparent }),
  PauseRunRequestSchema.extend({ type: z.literal('pause'), runId: IdSchema, traceparent: ReportTraceparent }),
  SucceedRunRequestSchema.extend({ type: z.literal('succeed'), runId: IdSchema, traceparent: ReportTraceparent }),
  FailRunRequestSchema.extend({ type: z.literal('fail'), runId: IdSchema, traceparent: ReportTraceparent }),
]);
export type EngineReport = z.infer<typeof EngineReportSchema>;
export type EngineReportInput = z.input<typeof EngineReportSchema>;

/**
 * `POST /internal/reports`: many engines' reports in one call and one transaction, 1 to 500; the
 * command service reads this shell first, then checks each report on its own (`EngineReportSchema`).
 * Reports of one run are applied in the order sent; each gets its own answer (`BatchAnswerSchema`).
 */
export const ReportBatchShellSchema = z.object({ reports: z.array(z.unknown()).min(1).max(MAX_REPORTS_PER_BATCH) });

/** How many triggers one `POST /internal/triggers` may carry. */
export const MAX_TRIGGERS_PER_BATCH = 500;

/** One trigger inside a batch: the single trigger's body, plus the flow its path would name. */
export const TriggerItemSchema = TriggerRunRequestSchema.extend({ flowId: IdSchema, traceparent: ReportTraceparent });
export type TriggerItem = z.infer<typeof TriggerItemSchema>;
export type TriggerItemInput = z.input<typeof TriggerItemSchema>;

/** `POST /internal/triggers`: many triggers in one call and one transaction, each answered on its own. */
export const TriggerBatchShellSchema = z.object({ triggers: z.array(z.unknown()).min(1).max(MAX_TRIGGERS_PER_BATCH) });

/** One report's result: its command result; a pause's also names its request id and deadline. */
export const ReportResultSchema = CommandResultSchema.extend({ requestId: z.string().optional(), resumeDeadline: z.string().optional() });
export type ReportResult = z.infer<typeof ReportResultSchema>;

/**
 * What a batch endpoint (`POST /internal/reports`, `POST /internal/triggers`) answers: one result per
 * item in the order sent, the item's answer or its refusal's envelope.
 */
export const BatchAnswerSchema = z.object({
  results: z.array(
    z.union([
      z.object({ ok: z.unknown() }),
      z.object({ error: z.object({ statusCode: z.number().int(), code: z.string(), params: z.record(z.string(), z.unknown()) }) }),
    ]),
  ),
});

