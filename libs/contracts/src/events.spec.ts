import { EVENT_EXAMPLES } from './examples';
import { EVENT_HEADERS, RUN_EVENT_TYPES, parseEnvelope, schemaVersionOf, type RunEventType } from './events';

const envelope = (type: string, data: unknown, over: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id: '01a22253-a85d-76e8-a76d-fb1d6d484f3b',
  type,
  source: 'flow-runs/command-service',
  time: '2024-01-15T10:30:00.000Z',
  subject: 'run_abc123',
  projectId: 'project_123',
  flowId: 'flow_xyz789',
  seq: 1,
  datacontenttype: 'application/json',
  data,
  ...over,
});

describe('event contracts', () => {
  it('has an example for every event type', () => {
    expect(Object.keys(EVENT_EXAMPLES).sort()).toEqual([...RUN_EVENT_TYPES].sort());
  });

  it.each(RUN_EVENT_TYPES)('parses a valid %s envelope back to the same event', (type: RunEventType) => {
    const sent = envelope(type, EVENT_EXAMPLES[type]);
    const parsed = parseEnvelope(Buffer.from(JSON.stringify(sent)));
    expect(parsed).toEqual({ kind: 'known', envelope: sent });
  });

  it('names every type in past tense with its schema version', () => {
    for (const type of RUN_EVENT_TYPES) {
      expect(type).toMatch(/^flowrun\.[a-z.-]+\.v\d+$/);
      expect(schemaVersionOf(type)).toBe(1);
    }
    expect(Object.values(EVENT_HEADERS)).toEqual(['ce-type', 'ce-schemaversion', 'ce-id', 'traceparent']);
  });

  it('calls a message that is not JSON invalid', () => {
    const p = parseEnvelope('{not json');
    expect(p.kind).toBe('invalid');
    expect(p.kind === 'invalid' && p.reason).toMatch(/not JSON/);
    expect(parseEnvelope(null)).toEqual({ kind: 'invalid', reason: 'empty message value' });
  });

  it.each([
    ['seq', { seq: 0 }],
    ['seq', { seq: 1.5 }],
    ['subject', { subject: '' }],
    ['time', { time: 'yesterday' }],
    ['specversion', { specversion: '0.3' }],
  ])('calls a bad envelope invalid, naming %s', (field, over) => {
    const p = parseEnvelope(JSON.stringify(envelope('flowrun.archived.v1', {}, over)));
    expect(p.kind).toBe('invalid');
    expect(p.kind === 'invalid' && p.reason).toContain(field);
  });

  it('calls an envelope without projectId invalid', () => {
    const { projectId: _drop, ...rest } = envelope('flowrun.archived.v1', {});
    const p = parseEnvelope(JSON.stringify(rest));
    expect(p.kind === 'invalid' && p.reason).toContain('projectId');
  });

  it('returns a well-formed envelope of an unknown type as unknown-type, so consumers can skip it', () => {
    const sent = envelope('flowrun.teleported.v1', { anything: true });
    expect(parseEnvelope(JSON.stringify(sent))).toEqual({ kind: 'unknown-type', envelope: sent });
  });

  it('calls bad data for a known type invalid, naming the field', () => {
    const p = parseEnvelope(JSON.stringify(envelope('flowrun.step.succeeded.v1', { stepName: 'a', stepType: 'http', attempt: 0 })));
    expect(p.kind).toBe('invalid');
    expect(p.kind === 'invalid' && p.reason).toMatch(/flowrun\.step\.succeeded\.v1/);
    expect(p.kind === 'invalid' && p.reason).toMatch(/attempt|durationMs|dataRef/);
  });
});
