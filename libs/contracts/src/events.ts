import { z } from 'zod';
import { RetryStrategySchema, RunEnvironmentSchema } from './status';

/**
 * Run events. Each type is past tense and versioned in its name; its `data` has a runtime schema
 * from which the TypeScript type is inferred. No event carries step payloads: inputs, outputs,
 * trigger payloads and logs live in the execution-data store, and events carry only summaries and
 * references to it (claim check).
 */
const stepRef = {
  stepName: z.string().min(1).max(128),
  stepType: z.string().min(1).max(64),
  attempt: z.number().int().positive(),
};

/** A reference to a record in the execution-data store. */
export const DataRefSchema = z.string().min(1).max(256);

export const RunEventDataSchemas = {
  'flowrun.triggered.v1': z.object({
    flowVersionId: z.string().min(1),
    flowDisplayName: z.string(),
    environment: RunEnvironmentSchema,
    triggeredBy: z.string().nullable(),
    tags: z.array(z.string()),
    stepsCount: z.number().int().nonnegative(),
    parentRunId: z.string().nullable(),
    failParentOnFailure: z.boolean(),
    retryOf: z.string().nullable(),
    triggerDataRef: DataRefSchema.nullable(),
    logsFileId: z.string().nullable(),
  }),
  'flowrun.step.started.v1': z.object({ ...stepRef }),
  'flowrun.step.succeeded.v1': z.object({
    ...stepRef,
    durationMs: z.number().int().nonnegative(),
    dataRef: DataRefSchema,
  }),
  'flowrun.step.failed.v1': z.object({
    ...stepRef,
    durationMs: z.number().int().nonnegative(),
    dataRef: DataRefSchema,
  }),
  'flowrun.paused.v1': z.object({
    stepName: z.string().min(1),
    requestId: z.string().min(1),
    resumeDeadline: z.iso.datetime().nullable(),
  }),
  'flowrun.resumed.v1': z.object({
    stepName: z.string().min(1),
    requestId: z.string().min(1),
    dataRef: DataRefSchema,
  }),
  'flowrun.succeeded.v1': z.object({ durationMs: z.number().int().nonnegative() }),
  'flowrun.failed.v1': z.object({
    failedStepName: z.string().nullable(),
    durationMs: z.number().int().nonnegative(),
  }),
  'flowrun.stopped.v1': z.object({ reason: z.string().max(512) }),
  'flowrun.timed-out.v1': z.object({ reason: z.enum(['EXECUTION_TIME', 'PAUSE_TIME', 'WORKER_LOST']) }),
  'flowrun.quota-exceeded.v1': z.object({ quota: z.number().int().nonnegative() }),
  'flowrun.internal-error.v1': z.object({ reason: z.string().max(512) }),
  'flowrun.retried.v1': z.object({
    strategy: RetryStrategySchema,
    /** The attempt the run is now in (FROM_FAILED_STEP), or unchanged (ON_LATEST_VERSION). */
    attempt: z.number().int().positive(),
    fromStepName: z.string().nullable(),
    /** The new run (ON_LATEST_VERSION only). */
    newRunId: z.string().nullable(),
  }),
  'flowrun.archived.v1': z.object({}),
  /** One run's execution data went: erased on request (`ERASE`), or, before range purges, by retention. */
  'flowrun.execution-data-purged.v1': z.object({ reason: z.enum(['RETENTION', 'ERASE']) }),
  /**
   * Retention purged the execution data of every run of the event's project whose finish key (the
   * instant it finished, with Postgres's microseconds, then its run id) lies after
   * (`fromFinishedAt`, `fromRunId`) and at or before (`throughFinishedAt`, the subject) — this run
   * closes the range. The start is the project's previous range's end (null for its first), so a
   * project's ranges tile its finished runs from the oldest; `runs` counts the runs in the range.
   */
  'flowrun.execution-data-purged-through.v1': z.object({
    reason: z.literal('RETENTION'),
    fromFinishedAt: z.iso.datetime().nullable(),
    fromRunId: z.string().min(1).nullable(),
    throughFinishedAt: z.iso.datetime(),
    runs: z.number().int().positive(),
  }),
} as const;

export type RunEventType = keyof typeof RunEventDataSchemas;
export const RUN_EVENT_TYPES = Object.keys(RunEventDataSchemas) as RunEventType[];

export type RunEventData<T extends RunEventType> = z.infer<(typeof RunEventDataSchemas)[T]>;

/** An event as a decider emits it: type and data only; ids, times and seq come from the store. */
export type RunEvent = {
  [T in RunEventType]: { readonly type: T; readonly data: RunEventData<T> };
}[RunEventType];

export const isKnownEventType = (type: string): type is RunEventType =>
  Object.prototype.hasOwnProperty.call(RunEventDataSchemas, type);

export const EVENT_SOURCE = 'flow-runs/command-service';
export const EVENT_SPEC_VERSION = '1.0';

/**
 * The envelope every run event travels in (CloudEvents-shaped JSON). `seq` is per run, gap-free
 * from 1; `subject` is the run id and the Kafka message key.
 */
export const EventEnvelopeSchema = z.object({
  specversion: z.literal(EVENT_SPEC_VERSION),
  id: z.string().min(1),
  type: z.string().min(1),
  source: z.string().min(1),
  time: z.iso.datetime(),
  subject: z.string().min(1),
  projectId: z.string().min(1),
  flowId: z.string().min(1),
  seq: z.number().int().positive(),
  datacontenttype: z.literal('application/json'),
  data: z.record(z.string(), z.unknown()),
});
export type EventEnvelope = z.infer<typeof EventEnvelopeSchema>;

/** An envelope whose type is known and whose data passed that type's schema. */
export type KnownEnvelope = Omit<EventEnvelope, 'type' | 'data'> & RunEvent;

export type ParsedEnvelope =
  | { readonly kind: 'known'; readonly envelope: KnownEnvelope }
  | { readonly kind: 'unknown-type'; readonly envelope: EventEnvelope }
  | { readonly kind: 'invalid'; readonly reason: string };

/**
 * Each known type's whole envelope, its data's schema in place of the envelope's record: a valid
 * event is checked in one pass (the envelope's `z.record` alone copied every data object once more).
 */
const KNOWN_ENVELOPE_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.fromEntries(
  RUN_EVENT_TYPES.map((type) => [type, EventEnvelopeSchema.extend({ type: z.literal(type), data: RunEventDataSchemas[type] })]),
);

/**
 * Parses a message value. A well-formed envelope of a type this build does not know is returned as
 * `unknown-type` so that consumers can skip it; anything else malformed is `invalid` with a reason.
 */
export function parseEnvelope(raw: string | Buffer | null): ParsedEnvelope {
  if (raw === null) return { kind: 'invalid', reason: 'empty message value' };
  let json: unknown;
  try {
    json = JSON.parse(raw.toString());
  } catch (e) {
    return { kind: 'invalid', reason: `not JSON: ${(e as Error).message}` };
  }
  // The common case, a valid event of a known type: one pass. Anything else takes the two passes
  // below, which tell the envelope's faults from the data's (and an unknown type from both).
  const claimed = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  if (typeof claimed === 'string' && isKnownEventType(claimed)) {
    const whole = KNOWN_ENVELOPE_SCHEMAS[claimed].safeParse(json);
    if (whole.success) return { kind: 'known', envelope: whole.data as KnownEnvelope };
  }
  const env = EventEnvelopeSchema.safeParse(json);
  if (!env.success) return { kind: 'invalid', reason: `bad envelope: ${z.prettifyError(env.error)}` };
  const type = env.data.type;
  if (!isKnownEventType(type)) return { kind: 'unknown-type', envelope: env.data };
  const data = RunEventDataSchemas[type].safeParse(env.data.data);
  if (!data.success) {
    return { kind: 'invalid', reason: `bad data for ${type}: ${z.prettifyError(data.error)}` };
  }
  return { kind: 'known', envelope: { ...env.data, type, data: data.data } as KnownEnvelope };
}

/** Kafka header names carried by every run event message. */
export const EVENT_HEADERS = {
  type: 'ce-type',
  schemaVersion: 'ce-schemaversion',
  id: 'ce-id',
  traceparent: 'traceparent',
} as const;

export const schemaVersionOf = (type: string): number => {
  const m = /\.v(\d+)$/.exec(type);
  return m ? Number(m[1]) : 1;
};
