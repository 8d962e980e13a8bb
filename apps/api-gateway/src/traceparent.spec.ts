import { continueTrace } from './traceparent';

describe('continueTrace', () => {
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('continues a valid trace with a new parent span, keeping the sampled flag', () => {
    const t = continueTrace(incoming);
    expect(t.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(t.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(t.traceparent).not.toBe(incoming);
    expect(continueTrace(incoming.replace(/-01$/, '-00')).traceparent).toMatch(/-00$/);
  });

  it('accepts a future version with extra fields, answering version 00', () => {
    const t = continueTrace('cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-whatever');
    expect(t.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  });

  it.each([
    ['absent', undefined],
    ['garbage', 'hello'],
    ['uppercase hex', incoming.toUpperCase()],
    ['version ff', incoming.replace(/^00/, 'ff')],
    ['a zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['a zero parent id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['version 00 with extra fields', `${incoming}-extra`],
    ['an array', [incoming, incoming]],
  ])('starts a new trace when the header is %s', (_what, header) => {
    const t = continueTrace(header);
    expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(t.traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(t.traceparent).toBe(`00-${t.traceId}-${t.traceparent.split('-')[2]}-00`);
  });
});
