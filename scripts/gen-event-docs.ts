/**
 * Generates docs/events/ from the contracts library: one JSON Schema per event type (the envelope
 * with that type and its data), the envelope's schema, and a README for outside consumers.
 * `--check` fails when the files on disk differ (CI runs it, so the docs never go stale).
 * Run after `npm run build`: `node dist/scripts/gen-event-docs.js [--check]`.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  EVENT_EXAMPLES,
  EVENT_HEADERS,
  EventEnvelopeSchema,
  RUN_EVENT_TYPES,
  RunEventDataSchemas,
  schemaVersionOf,
  type RunEventType,
} from '@flowruns/contracts';

const MEANING: Record<RunEventType, { meaning: string; status: string }> = {
  'flowrun.triggered.v1': { meaning: 'A run was created from a flow version with a trigger payload (stored, not carried).', status: 'RUNNING' },
  'flowrun.step.started.v1': { meaning: 'The engine started a step in the given attempt.', status: 'unchanged (RUNNING)' },
  'flowrun.step.succeeded.v1': { meaning: 'A step finished successfully; its input and output are behind `dataRef`.', status: 'unchanged' },
  'flowrun.step.failed.v1': { meaning: 'A step failed; its input and error are behind `dataRef`.', status: 'unchanged (the run fails with `flowrun.failed.v1`)' },
  'flowrun.paused.v1': { meaning: 'The run waits for human input on `requestId` (single-use).', status: 'PAUSED' },
  'flowrun.resumed.v1': { meaning: 'The awaited input arrived; the paused step succeeded with it as output.', status: 'RUNNING' },
  'flowrun.succeeded.v1': { meaning: 'Every step succeeded.', status: 'SUCCEEDED' },
  'flowrun.failed.v1': { meaning: 'The run failed, at `failedStepName` when a step failed.', status: 'FAILED' },
  'flowrun.stopped.v1': { meaning: 'The run was cancelled.', status: 'STOPPED' },
  'flowrun.timed-out.v1': { meaning: 'The run passed its maximum execution or pause time, or its worker was lost.', status: 'TIMEOUT' },
  'flowrun.quota-exceeded.v1': { meaning: "The project's run quota was exhausted.", status: 'QUOTA_EXCEEDED' },
  'flowrun.internal-error.v1': { meaning: 'The engine failed for a reason of its own, not the flow’s.', status: 'INTERNAL_ERROR' },
  'flowrun.retried.v1': {
    meaning:
      'FROM_FAILED_STEP: the same run starts a new `attempt` from the failed step, earlier outputs kept. ON_LATEST_VERSION: a new run (`newRunId`) was created from this one.',
    status: 'RUNNING (FROM_FAILED_STEP); unchanged (ON_LATEST_VERSION)',
  },
  'flowrun.archived.v1': { meaning: 'The run is hidden from lists unless `includeArchived=true`.', status: 'unchanged' },
  'flowrun.execution-data-purged.v1': {
    meaning: 'Step inputs/outputs, the trigger payload and logs were deleted (retention or an erase request); metadata stays.',
    status: 'unchanged',
  },
};

const root = path.resolve(__dirname, '..', '..');
const outDir = path.join(root, 'docs/events');
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const fileOf = (type: string) => `${type}.schema.json`;

function schemaFor(type: RunEventType): unknown {
  const schema = EventEnvelopeSchema.extend({ type: z.literal(type), data: RunEventDataSchemas[type] });
  return {
    $id: `https://flow-runs.dev/events/${fileOf(type)}`,
    title: type,
    description: MEANING[type].meaning,
    ...(z.toJSONSchema(schema, { target: 'draft-2020-12' }) as object),
  };
}

function fieldsTable(type: RunEventType): string {
  const js = z.toJSONSchema(RunEventDataSchemas[type]) as { properties?: Record<string, { type?: unknown; anyOf?: { type?: string }[]; enum?: unknown[]; format?: string }>; required?: string[] };
  const props = Object.entries(js.properties ?? {});
  if (props.length === 0) return '_No fields._\n';
  const typeOf = (p: { type?: unknown; anyOf?: { type?: string }[]; enum?: unknown[]; format?: string }): string => {
    if (p.enum) return p.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
    if (p.anyOf) return p.anyOf.map((a) => typeOf(a)).join(' \\| ');
    return `${String(p.type ?? 'any')}${p.format ? ` (${p.format})` : ''}`;
  };
  return ['| field | type |', '|---|---|', ...props.map(([name, p]) => `| \`${name}\` | ${typeOf(p)} |`)].join('\n') + '\n';
}

function readme(): string {
  const sections = RUN_EVENT_TYPES.map(
    (type) => `### \`${type}\`

${MEANING[type].meaning}

Status after it: ${MEANING[type].status}. Schema: [\`${fileOf(type)}\`](./${fileOf(type)}).

${fieldsTable(type)}
Example \`data\`:

\`\`\`json
${JSON.stringify(EVENT_EXAMPLES[type], null, 2)}
\`\`\`
`,
  );
  return `# Run events — for consumers

Generated from \`libs/contracts\` by \`scripts/gen-event-docs.ts\`; do not edit by hand.

## The stream

- **Topic** \`flow-run-events\` (configurable with \`KAFKA_TOPIC\`); **key** = the run id, so one run's
  events are on one partition, in order.
- **\`seq\`** is per run, gap-free from 1. Delivery is at least once: a consumer keeps, per run, the
  last \`seq\` it applied and skips any event with \`seq <=\` that (a duplicate). A \`seq\` beyond the next
  one means a gap: stop for that run and alert rather than guess.
- **Headers** on every message: \`${EVENT_HEADERS.type}\` (the event type), \`${EVENT_HEADERS.schemaVersion}\`
  (the \`.vN\` of the type), \`${EVENT_HEADERS.id}\` (the event id), and \`${EVENT_HEADERS.traceparent}\` (W3C
  trace context) when the command carried one.
- **Unknown types**: skip them (still advance your \`seq\` bookkeeping). New types and new versions
  (\`.v2\`) are added without notice; a changed schema always gets a new version.
- **No payloads**: step inputs/outputs, trigger payloads and resume bodies never travel in events.
  They stay in the execution-data store; events carry references (\`dataRef\`, \`triggerDataRef\`), and
  \`GET /api/v1/flow-runs/:id\` returns the payloads. After a purge they are gone; the events stay.
- **Dead letters**: messages a Flow Runs consumer could not parse go to \`flow-run-events.dlq\`.

## The envelope (CloudEvents-shaped JSON)

| field | meaning |
|---|---|
| \`specversion\` | \`"1.0"\` |
| \`id\` | unique, time-sortable (UUIDv7) |
| \`type\` | the event type below |
| \`source\` | \`flow-runs/command-service\` |
| \`time\` | when the command was accepted (ISO 8601, UTC) |
| \`subject\` | the run id (also the message key) |
| \`projectId\`, \`flowId\` | the run's project and flow |
| \`seq\` | the event's position in its run, from 1 |
| \`datacontenttype\` | \`"application/json"\` |
| \`data\` | the type's fields, below |

Schema: [\`envelope.schema.json\`](./envelope.schema.json).

## Event types

${sections.join('\n')}`;
}

function expectedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  files.set('envelope.schema.json', json({ $id: 'https://flow-runs.dev/events/envelope.schema.json', title: 'Flow run event envelope', ...(z.toJSONSchema(EventEnvelopeSchema, { target: 'draft-2020-12' }) as object) }));
  for (const type of RUN_EVENT_TYPES) {
    if (schemaVersionOf(type) < 1) throw new Error(`${type}: no version`);
    files.set(fileOf(type), json(schemaFor(type)));
  }
  files.set('README.md', readme());
  return files;
}

const files = expectedFiles();
if (process.argv.includes('--check')) {
  const stale = [...files].filter(([name, content]) => !existsSync(path.join(outDir, name)) || readFileSync(path.join(outDir, name), 'utf8') !== content);
  const extra = existsSync(outDir) ? readdirSync(outDir).filter((f) => !files.has(f)) : [];
  if (stale.length || extra.length) {
    console.error(`docs/events is stale: ${[...stale.map(([n]) => n), ...extra.map((n) => `${n} (not generated)`)].join(', ')}`);
    console.error('regenerate with: npm run build && node dist/scripts/gen-event-docs.js');
    process.exit(1);
  }
  console.log(`docs/events is current (${files.size} files)`);
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [name, content] of files) writeFileSync(path.join(outDir, name), content);
  console.log(`wrote ${files.size} files to docs/events`);
}
