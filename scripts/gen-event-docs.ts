/**
 * Generates docs/events/ for outside consumers from the zod schemas in libs/contracts: one JSON
 * Schema per event type (the envelope with that `type` and its `data`), the envelope's schema, and
 * a README with the stream's rules and one section per type. The prose lives here; every data
 * field must have a description below, or generation fails, so a new field cannot ship undocumented.
 *
 *   node --require ./scripts/register-swc.js scripts/gen-event-docs.ts           # write
 *   node --require ./scripts/register-swc.js scripts/gen-event-docs.ts --check   # exit 1 if stale
 *
 * (Also runs compiled, as `node dist/scripts/gen-event-docs.js [--check]` after `npm run build`.)
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  EVENT_HEADERS,
  EVENT_SOURCE,
  EventEnvelopeSchema,
  RUN_EVENT_TYPES,
  RunEventDataSchemas,
  schemaVersionOf,
  type RunEventType,
} from '@flowruns/contracts';
// Not part of the library's public API: the examples exist for the contract tests and these docs.
import { EVENT_EXAMPLES } from '../libs/contracts/src/examples';

const TOPIC = 'flow-run-events';
const SCHEMA_BASE = 'https://flow-runs.dev/events/';

/** What each event means and the run status it leads to (pinned by the decider's specs). */
const EVENTS: Record<RunEventType, { meaning: string; status: string }> = {
  'flowrun.triggered.v1': {
    meaning:
      'A run was created from a flow version. Its trigger payload is in the execution-data store (`triggerDataRef`), not in the event. Always the first event of a run (`seq` 1).',
    status: '`RUNNING` (attempt 1)',
  },
  'flowrun.step.started.v1': {
    meaning: 'The engine started a step, in the run attempt given by `attempt`.',
    status: 'unchanged (`RUNNING`)',
  },
  'flowrun.step.succeeded.v1': {
    meaning: "A step finished successfully. Its input and output are behind `dataRef`.",
    status: 'unchanged (`RUNNING`)',
  },
  'flowrun.step.failed.v1': {
    meaning:
      'A step failed. Its input and error are behind `dataRef`. The run itself fails only with `flowrun.failed.v1` (the flow may handle the error and go on).',
    status: 'unchanged (`RUNNING`)',
  },
  'flowrun.paused.v1': {
    meaning:
      'The run waits for input (an approval, a webhook) on `requestId`. It can be resumed once, with that request id only, and before `resumeDeadline` when there is one.',
    status: '`PAUSED`',
  },
  'flowrun.resumed.v1': {
    meaning:
      'The awaited input arrived: the paused step succeeded with it as its output (behind `dataRef`), and the run goes on.',
    status: '`RUNNING`',
  },
  'flowrun.succeeded.v1': { meaning: 'The run finished and every step it ran succeeded.', status: '`SUCCEEDED` (terminal)' },
  'flowrun.failed.v1': {
    meaning: 'The run failed, while running or paused: at `failedStepName` when a step failed, or outside any step (null).',
    status: '`FAILED` (terminal)',
  },
  'flowrun.stopped.v1': {
    meaning: 'The run was cancelled while running or paused.',
    status: '`STOPPED` (terminal)',
  },
  'flowrun.timed-out.v1': {
    meaning: 'The run passed its maximum execution time or its resume deadline, or its worker was lost. A request id it waited on can no longer resume it.',
    status: '`TIMEOUT` (terminal)',
  },
  'flowrun.quota-exceeded.v1': {
    meaning:
      "The project's run quota is used up, and the run ended. A run triggered when the quota was already used up is still recorded: this event then follows its `flowrun.triggered.v1` directly.",
    status: '`QUOTA_EXCEEDED` (terminal)',
  },
  'flowrun.internal-error.v1': {
    meaning: 'The engine failed for a reason of its own (a crash), not because of the flow.',
    status: '`INTERNAL_ERROR` (terminal)',
  },
  'flowrun.retried.v1': {
    meaning:
      '`FROM_FAILED_STEP`: the same run starts a new `attempt` from the failed step; the steps that succeeded before keep their outputs and do not run again. `ON_LATEST_VERSION`: a new run (`newRunId`, whose `flowrun.triggered.v1` has `retryOf` = this run) was created on the flow\'s latest published version with the original trigger payload.',
    status: '`RUNNING` (`FROM_FAILED_STEP`); unchanged (`ON_LATEST_VERSION`)',
  },
  'flowrun.archived.v1': {
    meaning: 'The run was archived: API lists leave it out unless `includeArchived=true`. It can no longer be retried.',
    status: 'unchanged',
  },
  'flowrun.execution-data-purged.v1': {
    meaning:
      "The run's execution data (step inputs and outputs, trigger payload, logs) was deleted; the `dataRef`s of its earlier events now point at nothing. The run's metadata and events stay. It can no longer be retried. Emitted for an erase (`ERASE`); retention emits `flowrun.execution-data-purged-through.v1` (histories from before it hold this type with `RETENTION`).",
    status: 'unchanged',
  },
  'flowrun.execution-data-purged-through.v1': {
    meaning:
      "Retention purged, in one go, the execution data of every run of the event's project whose finish key lies after (`fromFinishedAt`, `fromRunId`) and at or before (`throughFinishedAt`, the subject) — this run among them, as the range's last. A finish key orders finished runs: the instant the run last finished (the `time` of its latest terminal event), then its id. A project's ranges follow each other (each one starts at the previous one's end; the first at null), so a consumer that tracks purges keeps, per project, the latest end: a run finished at or before it has no execution data. The runs in the range get no event of their own. None of them can be retried.",
    status: 'unchanged',
  },
};

const ENVELOPE_FIELDS: Record<keyof z.infer<typeof EventEnvelopeSchema>, string> = {
  specversion: 'CloudEvents spec version, always `"1.0"`.',
  id: 'Unique event id, time-sortable (UUIDv7). Also the `ce-id` header.',
  type: 'The event type, e.g. `flowrun.step.succeeded.v1`; its `.vN` is the schema version. Also the `ce-type` header.',
  source: `Always \`${EVENT_SOURCE}\`.`,
  time: 'When the command that produced the event was accepted (ISO 8601, UTC, `Z`). Events of one command share it.',
  subject: 'The run id. Also the Kafka message key.',
  projectId: "The run's project.",
  flowId: "The run's flow.",
  seq: "The event's position in its run's stream: 1, 2, 3, … with no gaps.",
  datacontenttype: 'Always `"application/json"`.',
  data: 'The fields of the event type, below.',
};

/** Field descriptions: shared by name, overridden per type where the meaning differs. */
const FIELDS: Record<string, string> = {
  stepName: "The step's name, unique in its flow version.",
  stepType: 'The kind of step (e.g. `http`, `transform`, `approval`).',
  attempt: 'The run attempt: 1, then one more for each `FROM_FAILED_STEP` retry.',
  durationMs: 'How long the step ran, in milliseconds.',
  dataRef: "Claim check: the key of the step's input and output in the execution-data store. `GET /api/v1/flow-runs/:id` returns them.",
  requestId: 'The single-use id the run waits on; resuming needs exactly this id.',
  reason: 'Why, in words.',
};
const FIELDS_BY_TYPE: Partial<Record<RunEventType, Record<string, string>>> = {
  'flowrun.triggered.v1': {
    flowVersionId: 'The flow version the run executes.',
    flowDisplayName: "The flow's display name when the run was triggered.",
    environment: '`PRODUCTION`, or `TESTING` for a test run.',
    triggeredBy: 'The API key that triggered the run, or null.',
    tags: "The flow's tags when the run was triggered.",
    stepsCount: 'How many steps the flow version has.',
    parentRunId: 'The run that started this one as a sub-flow, or null.',
    failParentOnFailure: 'Whether this run ending in a failure status fails its parent.',
    retryOf: 'The run this one retries (`ON_LATEST_VERSION`), or null.',
    triggerDataRef:
      'Claim check: the key of the trigger payload in the execution-data store (`GET /api/v1/flow-runs/:id` shows it as step `trigger`), or null.',
    logsFileId: "The id of the run's logs file, or null.",
  },
  'flowrun.step.failed.v1': {
    dataRef: "Claim check: the key of the step's input and error in the execution-data store. `GET /api/v1/flow-runs/:id` returns them.",
  },
  'flowrun.paused.v1': {
    stepName: 'The step that waits.',
    resumeDeadline: 'When the wait ends (the run then times out with `PAUSE_TIME`), or null for no deadline.',
  },
  'flowrun.resumed.v1': {
    stepName: 'The step that waited; it has now succeeded.',
    requestId: 'The request id the run waited on (now used up).',
    dataRef: 'Claim check: the key of the resume input, which is the step\'s output, in the execution-data store.',
  },
  'flowrun.succeeded.v1': { durationMs: 'Milliseconds from the trigger to the end of the run (across retries).' },
  'flowrun.failed.v1': {
    failedStepName: 'The step that failed, or null when the run failed outside any step.',
    durationMs: 'Milliseconds from the trigger to the end of the run (across retries).',
  },
  'flowrun.stopped.v1': { reason: 'Why the run was stopped (free text, e.g. who cancelled it).' },
  'flowrun.timed-out.v1': {
    reason:
      '`EXECUTION_TIME`: ran past the maximum execution time; `PAUSE_TIME`: waited past its resume deadline; `WORKER_LOST`: its worker stopped reporting.',
  },
  'flowrun.quota-exceeded.v1': { quota: "The project's run quota that was reached." },
  'flowrun.internal-error.v1': { reason: 'What went wrong in the engine (free text).' },
  'flowrun.retried.v1': {
    strategy: '`FROM_FAILED_STEP` (same run, new attempt) or `ON_LATEST_VERSION` (new run).',
    attempt: 'The attempt the run is now in (`FROM_FAILED_STEP`); the unchanged attempt (`ON_LATEST_VERSION`).',
    fromStepName: 'The failed step the new attempt starts from, or null (no step failed, or `ON_LATEST_VERSION`).',
    newRunId: 'The new run (`ON_LATEST_VERSION`), else null.',
  },
  'flowrun.execution-data-purged.v1': {
    reason: '`ERASE`: an erase request; `RETENTION` (older histories only): older than the retention period.',
  },
  'flowrun.execution-data-purged-through.v1': {
    reason: 'Always `RETENTION`.',
    fromFinishedAt: 'With `fromRunId`, the finish key the range starts after: the project\'s previous range\'s end, or null for its first.',
    fromRunId: 'See `fromFinishedAt`.',
    throughFinishedAt: 'When this run finished (microseconds): with the subject, the finish key the range ends at, inclusive.',
    runs: 'How many runs the range holds.',
  },
};

type JsonSchema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  format?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  [k: string]: unknown;
};

// `input`: the schemas accept what `parseEnvelope` accepts (unknown fields are ignored, not refused),
// so a consumer that validates with them stays a tolerant reader.
const toJson = (schema: z.ZodType): JsonSchema =>
  z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }) as JsonSchema;

function describeField(type: RunEventType, field: string): string {
  const text = FIELDS_BY_TYPE[type]?.[field] ?? FIELDS[field];
  if (!text) throw new Error(`${type}: field "${field}" has no description in scripts/gen-event-docs.ts`);
  return text;
}

function dataSchema(type: RunEventType): JsonSchema {
  const { $schema: _drop, ...js } = toJson(RunEventDataSchemas[type]);
  for (const [name, prop] of Object.entries(js.properties ?? {})) prop.description = describeField(type, name);
  return js;
}

function envelopeSchema(type?: RunEventType): JsonSchema {
  const schema = type
    ? EventEnvelopeSchema.extend({ type: z.literal(type), data: RunEventDataSchemas[type] })
    : EventEnvelopeSchema;
  const js = toJson(schema);
  for (const [name, prop] of Object.entries(js.properties ?? {})) {
    prop.description = ENVELOPE_FIELDS[name as keyof typeof ENVELOPE_FIELDS];
  }
  if (type) js.properties!.data = { ...dataSchema(type), description: ENVELOPE_FIELDS.data };
  const { $schema, ...rest } = js;
  return {
    $schema,
    $id: `${SCHEMA_BASE}${fileOf(type ?? 'envelope')}`,
    title: type ?? 'Flow run event envelope',
    description: type ? EVENTS[type].meaning : 'The envelope of every flow run event; `data` depends on `type`.',
    ...rest,
  };
}

/** A short, readable rendering of a JSON Schema type for the fields tables. */
function typeText(p: JsonSchema): string {
  if (p.anyOf) return p.anyOf.map(typeText).join(' \\| ');
  if (p.const !== undefined) return `\`${JSON.stringify(p.const)}\``;
  if (p.enum) return p.enum.map((e) => `\`${JSON.stringify(e)}\``).join(' \\| ');
  if (Array.isArray(p.type)) return p.type.map((t) => typeText({ ...p, type: t })).join(' \\| ');
  if (p.type === 'array') return `array of ${p.items ? typeText(p.items) : 'any'}`;
  if (p.type === 'null') return 'null';
  const limits: string[] = [];
  if (p.format) limits.push(p.format);
  if (p.type === 'integer' && p.minimum !== undefined) limits.push(`≥ ${p.minimum}`);
  if (p.type === 'integer' && p.exclusiveMinimum !== undefined) limits.push(`≥ ${p.exclusiveMinimum + 1}`);
  if (p.minLength !== undefined && p.minLength > 0) limits.push(`length ≥ ${p.minLength}`);
  if (p.maxLength !== undefined) limits.push(`length ≤ ${p.maxLength}`);
  return `${String(p.type ?? 'any')}${limits.length ? ` (${limits.join(', ')})` : ''}`;
}

function fieldsTable(js: JsonSchema): string {
  const props = Object.entries(js.properties ?? {});
  if (props.length === 0) return '_No fields: `data` is `{}`._';
  const required = new Set(js.required ?? []);
  const rows = props.map(
    ([name, p]) => `| \`${name}\` | ${typeText(p)} | ${required.has(name) ? 'yes' : 'no'} | ${p.description ?? ''} |`,
  );
  return ['| field | type | required | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

const fileOf = (name: string) => `${name}.schema.json`;
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function exampleEnvelope(type: RunEventType, seq: number): unknown {
  return {
    specversion: '1.0',
    id: '01a22253-a85d-76e8-a76d-fb1d6d484f3b',
    type,
    source: EVENT_SOURCE,
    time: '2024-01-15T10:30:00.000Z',
    subject: '01a22253-a7fd-7343-8b8c-3e4f2bba3a2c',
    projectId: 'project_123',
    flowId: 'flow_xyz789',
    seq,
    datacontenttype: 'application/json',
    data: EVENT_EXAMPLES[type],
  };
}

function readme(): string {
  const sections = RUN_EVENT_TYPES.map((type) =>
    [
      `### \`${type}\``,
      '',
      EVENTS[type].meaning,
      '',
      `- **Status after it:** ${EVENTS[type].status}`,
      `- **Schema version:** ${schemaVersionOf(type)} · **JSON Schema:** [\`${fileOf(type)}\`](./${fileOf(type)})`,
      '',
      fieldsTable(dataSchema(type)),
      '',
      'Example:',
      '',
      '```json',
      JSON.stringify(exampleEnvelope(type, type === 'flowrun.triggered.v1' ? 1 : 4), null, 2),
      '```',
      '',
    ].join('\n'),
  );
  const toc = RUN_EVENT_TYPES.map((t) => `| [\`${t}\`](#${t.replace(/\./g, '')}) | ${EVENTS[t].status} |`);
  return `# Flow run events — for consumers

<!-- Generated by scripts/gen-event-docs.ts from libs/contracts; do not edit by hand. -->

Every change to a flow run is an event. Flow Runs publishes them to Kafka; this page is the contract
for services that consume them. The JSON Schemas next to it are generated from the same zod schemas
that the producer validates against.

## The topic

- **Topic:** \`${TOPIC}\` (the operator may rename it).
- **Key:** the run id (the envelope's \`subject\`). All events of one run are on one partition, in
  the order they happened. There is no order between different runs.
- **\`seq\`:** each run's events are numbered 1, 2, 3, … with no gaps. Delivery is at least once, so
  you may see an event again: keep, per run, the last \`seq\` you applied and skip any event with a
  \`seq\` at or below it. A \`seq\` above the next one means you missed events: stop processing that run
  and alert rather than guess.
- **Headers** on every message:

  | header | value |
  |---|---|
  | \`${EVENT_HEADERS.type}\` | the event type, as in the envelope's \`type\` |
  | \`${EVENT_HEADERS.schemaVersion}\` | the schema version: the \`N\` of the type's \`.vN\` |
  | \`${EVENT_HEADERS.id}\` | the event id, as in the envelope's \`id\` |
  | \`${EVENT_HEADERS.traceparent}\` | W3C trace context of the request that caused the event (when it had one) |

  The headers let you route or skip a message without parsing its value.

## Rules for consumers

- **Skip event types you do not know.** New types, and new versions of existing types (\`.v2\`), are
  added without notice; a consumer must ignore them (and still count their \`seq\`) rather than fail.
  A type's schema never changes in an incompatible way: such a change gets a new version.
- **Ignore fields you do not know.** The schemas do not forbid extra fields.
- **No step payloads travel in events (claim check).** Step inputs and outputs, trigger payloads,
  resume inputs and logs stay in the execution-data store. Events carry only summaries and
  references: \`dataRef\` (a step's input and output, or a resume input) and \`triggerDataRef\` (the
  trigger payload) point into that store. To read the payloads, call
  \`GET /api/v1/flow-runs/:id\`, which returns the run with its steps' inputs and outputs. Once a run's
  execution data is purged (\`flowrun.execution-data-purged.v1\` for that run, or a
  \`flowrun.execution-data-purged-through.v1\` range of its project that holds it), the references
  point at nothing, and the events stay.

## The envelope

CloudEvents-shaped JSON, the message value. JSON Schema: [\`envelope.schema.json\`](./envelope.schema.json).

${fieldsTable(envelopeSchema())}

## Event types

| type | status after it |
|---|---|
${toc.join('\n')}

${sections.join('\n')}`;
}

function generate(): Map<string, string> {
  const files = new Map<string, string>();
  files.set(fileOf('envelope'), json(envelopeSchema()));
  for (const type of RUN_EVENT_TYPES) files.set(fileOf(type), json(envelopeSchema(type)));
  files.set('README.md', readme());
  return files;
}

/** The repository root, from scripts/ or from dist/scripts/. */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'tsconfig.base.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no tsconfig.base.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

function main(): void {
  const outDir = path.join(repoRoot(), 'docs', 'events');
  const files = generate();
  if (process.argv.includes('--check')) {
    const stale = [...files]
      .filter(([name, text]) => !existsSync(path.join(outDir, name)) || readFileSync(path.join(outDir, name), 'utf8') !== text)
      .map(([name]) => name);
    const extra = existsSync(outDir) ? readdirSync(outDir).filter((name) => !files.has(name)) : [];
    if (stale.length > 0 || extra.length > 0) {
      console.error(`docs/events is stale: ${[...stale, ...extra.map((n) => `${n} (not generated)`)].join(', ')}`);
      console.error('regenerate: node --require ./scripts/register-swc.js scripts/gen-event-docs.ts');
      process.exit(1);
    }
    console.log(`docs/events is current (${files.size} files)`);
    return;
  }
  mkdirSync(outDir, { recursive: true });
  for (const name of existsSync(outDir) ? readdirSync(outDir) : []) {
    if (!files.has(name)) console.warn(`docs/events/${name} is not generated; remove it if it is stale`);
  }
  for (const [name, text] of files) writeFileSync(path.join(outDir, name), text);
  console.log(`wrote ${files.size} files to docs/events`);
}

main();
