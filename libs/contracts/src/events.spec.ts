import { z } from 'zod';
import { EVENT_EXAMPLES } from './examples';
import {
  EVENT_HEADERS,
  EventEnvelopeSchema,
  RUN_EVENT_TYPES,
  RunEventDataSchemas,
  isKnownEventType,
  parseEnvelope,
  schemaVersionOf,
  type ParsedEnvelope,
  type RunEventType,
} from './events';

const envelope = (type: string, data: unknown, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  specversion: '1.0',
  id: '01a22253-a85d-76e8-a76d-fb1d6d484f3b',
  type,
  source: 'flow-runs/command-service',
  time: '2024-01-15T10:30:00.000Z',
  subject: 'run_abc123',
  projectId: 'project_123',
  flowId: 'flow_xyz789',
  seq: 3,
  datacontenttype: 'application/json',
  data,
  ...over,
});

const without = (obj: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(obj).filter(([k]) => k !== key));

const reasonOf = (p: ParsedEnvelope): string => {
  if (p.kind !== 'invalid') throw new Error(`expected invalid, got ${p.kind}: ${JSON.stringify(p)}`);
  return p.reason;
};

/** zod's prettified errors end each issue with `→ at <path>`: the reason must point at the field. */
const namesField = (field: string) => new RegExp(`→ at ${field.replace(/\./g, '\\.')}\\b`);

const ENVELOPE_FIELDS = Object.keys(EventEnvelopeSchema.shape);

describe('event contracts', () => {
  describe('event types', () => {
    it('has one example per event type, and nothing else', () => {
      expect(Object.keys(EVENT_EXAMPLES).sort()).toEqual([...RUN_EVENT_TYPES].sort());
    });

    it.each(RUN_EVENT_TYPES)('names %s in the past tense, with its schema version', (type) => {
      expect(type).toMatch(/^flowrun\.[a-z]+(?:[.-][a-z]+)*\.v[1-9]\d*$/);
      expect(schemaVersionOf(type)).toBe(Number(/\.v(\d+)$/.exec(type)![1]));
    });

    it('reads the schema version from a type name (1 when the name has none)', () => {
      expect(schemaVersionOf('flowrun.step.succeeded.v1')).toBe(1);
      expect(schemaVersionOf('flowrun.step.succeeded.v12')).toBe(12);
      expect(schemaVersionOf('flowrun.step.succeeded')).toBe(1);
    });

    it('knows exactly its own types (not inherited object keys)', () => {
      for (const type of RUN_EVENT_TYPES) expect(isKnownEventType(type)).toBe(true);
      for (const other of ['flowrun.step.succeeded.v2', 'constructor', '__proto__', 'toString', '']) {
        expect(isKnownEventType(other)).toBe(false);
      }
    });

    it('puts the four documented headers on messages', () => {
      expect(EVENT_HEADERS).toEqual({ type: 'ce-type', schemaVersion: 'ce-schemaversion', id: 'ce-id', traceparent: 'traceparent' });
    });

    // Claim check: events carry summaries and references, never payloads. A field that could hold
    // arbitrary JSON (unknown, any, a free-form object) would let a payload slip into the stream.
    it.each(RUN_EVENT_TYPES)('%s has no field that could carry a step payload', (type) => {
      const js = z.toJSONSchema(RunEventDataSchemas[type]) as { properties?: Record<string, Record<string, unknown>> };
      // The primitive types a value of this schema can have; `object` or `any` if it could hold JSON.
      const types = (s: Record<string, unknown>): unknown[] => {
        if (Array.isArray(s.anyOf)) return (s.anyOf as Record<string, unknown>[]).flatMap(types);
        if (s.type === 'array') return types(s.items as Record<string, unknown>);
        if (Array.isArray(s.type)) return s.type;
        return [s.type ?? 'any'];
      };
      for (const [field, schema] of Object.entries(js.properties ?? {})) {
        for (const t of types(schema)) {
          expect([field, t]).toEqual([field, expect.stringMatching(/^(string|integer|number|boolean|null)$/)]);
        }
      }
    });
  });

  describe('parseEnvelope', () => {
    it.each(RUN_EVENT_TYPES)('round-trips a valid %s envelope', (type: RunEventType) => {
      const sent = envelope(type, EVENT_EXAMPLES[type]);
      expect(parseEnvelope(Buffer.from(JSON.stringify(sent)))).toEqual({ kind: 'known', envelope: sent });
      expect(parseEnvelope(JSON.stringify(sent))).toEqual({ kind: 'known', envelope: sent });
    });

    it.each(RUN_EVENT_TYPES)('drops keys %s does not define, in the envelope and in its data', (type: RunEventType) => {
      const sent = envelope(type, EVENT_EXAMPLES[type]);
      const padded = { ...sent, extra: 'x', data: { ...(EVENT_EXAMPLES[type] as Record<string, unknown>), payload: { big: true } } };
      expect(parseEnvelope(JSON.stringify(padded))).toEqual({ kind: 'known', envelope: sent });
    });

    it('parses the example data of every type with its own schema', () => {
      for (const type of RUN_EVENT_TYPES) expect(RunEventDataSchemas[type].parse(EVENT_EXAMPLES[type])).toEqual(EVENT_EXAMPLES[type]);
    });

    it('calls an empty message value invalid (a tombstone is not an event)', () => {
      expect(parseEnvelope(null)).toEqual({ kind: 'invalid', reason: 'empty message value' });
    });

    it.each(['{not json', '', 'undefined', '{"specversion":"1.0",'])('calls %j invalid: not JSON', (raw) => {
      expect(reasonOf(parseEnvelope(raw))).toMatch(/^not JSON/);
    });

    it.each(['null', '42', '"a string"', '[]'])('calls the JSON value %s invalid: not an envelope', (raw) => {
      expect(reasonOf(parseEnvelope(raw))).toMatch(/^bad envelope/);
    });

    it.each(ENVELOPE_FIELDS)('calls an envelope without %s invalid, naming the field', (field) => {
      const sent = without(envelope('flowrun.archived.v1', {}), field);
      expect(reasonOf(parseEnvelope(JSON.stringify(sent)))).toMatch(namesField(field));
    });

    it.each([
      ['0', 0],
      ['negative', -1],
      ['fractional', 1.5],
      ['a string', '1'],
      ['null', null],
      ['unsafe', Number.MAX_SAFE_INTEGER + 2],
    ])('calls an envelope with a %s seq invalid, naming seq', (_what, seq) => {
      expect(reasonOf(parseEnvelope(JSON.stringify(envelope('flowrun.archived.v1', {}, { seq }))))).toMatch(namesField('seq'));
    });

    it.each([
      ['specversion', { specversion: '0.3' }],
      ['subject', { subject: '' }],
      ['time', { time: 'yesterday' }],
      ['time', { time: '2024-01-15 10:30:00' }],
      ['datacontenttype', { datacontenttype: 'text/plain' }],
      ['data', { data: 'a payload' }],
      ['data', { data: null }],
      ['data', { data: [1, 2] }],
      ['type', { type: 7 }],
    ])('calls an envelope with a bad %s invalid, naming it', (field, over) => {
      expect(reasonOf(parseEnvelope(JSON.stringify(envelope('flowrun.archived.v1', {}, over))))).toMatch(namesField(field));
    });

    it('returns a well-formed envelope of an unknown type as unknown-type, so consumers can skip it', () => {
      const sent = envelope('flowrun.teleported.v1', { anything: true, nested: { deep: [1] } });
      expect(parseEnvelope(JSON.stringify(sent))).toEqual({ kind: 'unknown-type', envelope: sent });
    });

    it('treats a new version of a known type as unknown (v2 is not v1)', () => {
      const sent = envelope('flowrun.step.succeeded.v2', { whatever: 1 });
      expect(parseEnvelope(JSON.stringify(sent))).toEqual({ kind: 'unknown-type', envelope: sent });
    });

    it('calls an unknown type with a malformed envelope invalid, not unknown-type', () => {
      const sent = without(envelope('flowrun.teleported.v1', {}), 'seq');
      expect(reasonOf(parseEnvelope(JSON.stringify(sent)))).toMatch(namesField('seq'));
    });

    it.each(RUN_EVENT_TYPES.filter((t) => Object.keys(EVENT_EXAMPLES[t]).length > 0))(
      'calls %s data without its first field invalid, naming the type and the field',
      (type) => {
        const data = EVENT_EXAMPLES[type] as Record<string, unknown>;
        const field = Object.keys(data)[0];
        const reason = reasonOf(parseEnvelope(JSON.stringify(envelope(type, without(data, field)))));
        expect(reason).toContain(`bad data for ${type}`);
        expect(reason).toMatch(namesField(field));
      },
    );

    it.each([
      ['flowrun.step.succeeded.v1', { attempt: 0 }, 'attempt'],
      ['flowrun.step.succeeded.v1', { durationMs: -1 }, 'durationMs'],
      ['flowrun.step.succeeded.v1', { dataRef: '' }, 'dataRef'],
      ['flowrun.step.started.v1', { stepName: 'x'.repeat(129) }, 'stepName'],
      ['flowrun.paused.v1', { resumeDeadline: 'next week' }, 'resumeDeadline'],
      ['flowrun.timed-out.v1', { reason: 'BORED' }, 'reason'],
      ['flowrun.retried.v1', { strategy: 'FROM_SCRATCH' }, 'strategy'],
      ['flowrun.triggered.v1', { environment: 'STAGING' }, 'environment'],
      ['flowrun.triggered.v1', { tags: 'onboarding' }, 'tags'],
      ['flowrun.execution-data-purged.v1', { reason: null }, 'reason'],
    ] as const)('calls %s data with %j invalid, naming %s', (type, over, field) => {
      const reason = reasonOf(parseEnvelope(JSON.stringify(envelope(type, { ...EVENT_EXAMPLES[type], ...over }))));
      expect(reason).toContain(`bad data for ${type}`);
      expect(reason).toMatch(namesField(field));
    });
  });
});
