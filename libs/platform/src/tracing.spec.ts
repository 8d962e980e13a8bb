import { EventEmitter } from 'node:events';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { rootLogger } from './logger';
import { currentTraceparent, httpTracing, startTracing, traceFields, withSpan } from './tracing';

const exporter = new InMemorySpanExporter();
startTracing('tracing-spec', {}, [new SimpleSpanProcessor(exporter)]);

const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

/** Runs one request through the middleware; `handler` runs as the route would, inside it. */
function request(headers: Record<string, string | string[] | undefined>, handler: () => void = () => undefined, url = '/api/v1/flow-runs') {
  const req = { method: 'GET', url, headers: { ...headers }, route: { path: '/api/v1/flow-runs' } };
  const res = Object.assign(new EventEmitter(), { statusCode: 200 });
  let seenInside: string | undefined;
  httpTracing()(req, res, () => {
    seenInside = currentTraceparent();
    handler();
  });
  res.statusCode = 503;
  res.emit('finish');
  return { forwarded: req.headers.traceparent as string | undefined, seenInside };
}

beforeEach(() => exporter.reset());

describe('httpTracing', () => {
  it('continues a valid trace: the forwarded traceparent is the request span, a child of the caller', () => {
    const { forwarded, seenInside } = request({ traceparent: incoming });
    const m = TRACEPARENT.exec(forwarded ?? '');
    expect(m?.[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(forwarded).not.toBe(incoming);
    expect(seenInside).toBe(forwarded);
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().spanId).toBe(m?.[2]);
    expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span.name).toBe('GET /api/v1/flow-runs');
    expect(span.attributes['http.response.status_code']).toBe(503);
    expect(span.status.code).toBe(2); // ERROR: a 5xx
  });

  it('keeps an unsampled caller unsampled (and exports nothing)', () => {
    const { forwarded } = request({ traceparent: incoming.replace(/-01$/, '-00') });
    expect(forwarded).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('accepts a future version with extra fields, answering version 00', () => {
    const { forwarded } = request({ traceparent: 'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever' });
    expect(forwarded).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
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
  ])('starts a new (sampled) trace when the header is %s', (_what, header) => {
    const { forwarded } = request({ traceparent: header });
    const m = TRACEPARENT.exec(forwarded ?? '');
    expect(m).not.toBeNull();
    expect(m?.[1]).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().traceId).toBe(m?.[1]);
    expect(span.parentSpanContext).toBeUndefined();
  });

  it('does not trace probes and scrapes', () => {
    const { forwarded } = request({ traceparent: incoming }, undefined, '/health/ready');
    expect(forwarded).toBe(incoming);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});

describe('withSpan', () => {
  it('parents on a traceparent from a message, is active inside, and records a failure', async () => {
    await expect(
      withSpan('projector.apply', { parent: incoming, attributes: { 'run.id': 'r1' } }, async () => {
        expect(traceFields().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
        expect(trace.getSpan(context.active())).toBeDefined();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('projector.apply');
    expect(span.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span.attributes['run.id']).toBe('r1');
    expect(span.status).toEqual({ code: 2, message: 'boom' });
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('puts the active trace and span ids on log lines', async () => {
    const lines: string[] = [];
    const log = rootLogger().child({}, {});
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await withSpan('work', {}, async (span) => {
        log.info('inside');
        expect(span.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
      });
      log.info('outside');
    } finally {
      write.mockRestore();
    }
    const [inside, outside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const [span] = exporter.getFinishedSpans();
    expect(inside).toMatchObject({ msg: 'inside', traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
    expect(outside.msg).toBe('outside');
    expect(outside.traceId).toBeUndefined();
  });
});
