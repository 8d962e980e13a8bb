import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export { SpanKind, type Span };

/**
 * OpenTelemetry tracing for one process. Every app calls `startTracing` first thing in main.ts:
 * spans always exist (so W3C `traceparent` propagation and the `traceId` in log lines work without
 * a collector), and they are exported over OTLP/HTTP only when the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The standard
 * `OTEL_SDK_DISABLED=true` turns the SDK off entirely (spans become no-ops; ids still propagate).
 *
 * How one trace follows a command: the gateway's request span → the command service's request
 * span (`traceparent` header) → the events it appends carry that span's `traceparent` in the
 * outbox and, published, in the Kafka message headers → the projector's apply span and the flow
 * worker's step span are children of it → the worker's calls to the command service carry the
 * step span's `traceparent`, and so on until the run ends.
 */
export interface Tracing {
  /** Exports what is buffered and stops the exporter (call at shutdown). */
  shutdown(): Promise<void>;
  /** Whether spans are exported somewhere. */
  readonly exporting: boolean;
}

const TRACER = 'flow-runs';
let started: Tracing | undefined;

export function startTracing(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  /** Extra span processors (tests collect spans in memory with one). */
  extra: SpanProcessor[] = [],
): Tracing {
  if (started) return started;
  const propagator = new W3CTraceContextPropagator();
  if (env.OTEL_SDK_DISABLED === 'true') {
    propagation.setGlobalPropagator(propagator);
    started = { shutdown: async () => undefined, exporting: false };
    return started;
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const spanProcessors: SpanProcessor[] = [...extra];
  if (endpoint) {
    // The exporter reads the endpoint (adding /v1/traces to the base one), headers and timeout
    // from the standard OTEL_EXPORTER_OTLP_* variables itself.
    spanProcessors.push(
      new BatchSpanProcessor(new OTLPTraceExporter(), {
        scheduledDelayMillis: Number(env.OTEL_BSP_SCHEDULE_DELAY ?? 1000),
        maxQueueSize: 8192,
        maxExportBatchSize: 512,
      }),
    );
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? service }),
    spanProcessors,
  });
  provider.register({ propagator });
  started = { shutdown: () => provider.shutdown(), exporting: endpoint !== undefined };
  return started;
}

/** Whether spans leave the process (an OTLP endpoint is set): hot paths skip optional spans otherwise. */
export const tracingExports = (): boolean => started?.exporting ?? false;

/** Flushes and stops the process's tracing, if started (idempotent). */
export async function stopTracing(): Promise<void> {
  const t = started;
  if (!t) return;
  await t.shutdown().catch(() => undefined);
}

type Carrier = Record<string, string | string[] | undefined>;

const getter = {
  keys: (c: Carrier) => Object.keys(c),
  get: (c: Carrier, key: string) => c[key] ?? c[key.toLowerCase()],
};

/** The context a W3C `traceparent` describes (the root context when absent or invalid). */
export function contextFrom(traceparent: string | string[] | undefined | null): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent }, getter);
}

/** The active span's `traceparent`, to send downstream (undefined outside any span). */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The trace id a W3C `traceparent` names (undefined when absent or malformed), for log fields. */
export function traceIdOf(traceparent: string | undefined | null): string | undefined {
  const id = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent ?? '')?.[1];
  return id && !/^0+$/.test(id) ? id : undefined;
}

/** `{ traceId, spanId }` of the active span, for log lines; empty outside any span. */
export function traceFields(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent as a `traceparent` (e.g. a Kafka message header); else the active span. */
  readonly parent?: string | null;
  /** When the work began (ms since the epoch), if before now. */
  readonly startTime?: number;
}

/** Starts a span (not made active); the caller ends it. For work whose end is an event (HTTP). */
export function beginSpan(name: string, opts: SpanOptions = {}): { span: Span; ctx: Context } {
  const parent = opts.parent !== undefined ? contextFrom(opts.parent) : context.active();
  const span = trace
    .getTracer(TRACER)
    .startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: opts.attributes, startTime: opts.startTime }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Runs `fn` inside a new active span; records a thrown error on it and ends it either way. */
export async function withSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const { span, ctx } = beginSpan(name, opts);
  try {
    return await context.with(ctx, () => fn(span));
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error (its message and type, as an exception event). */
export function failSpan(span: Span, e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

interface TracedHttpRequest {
  method: string;
  originalUrl?: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  route?: { path?: string };
}
interface TracedHttpResponse {
  statusCode: number;
  once(event: 'finish' | 'close', fn: () => void): unknown;
}

/**
 * Express middleware: one SERVER span per request, a child of the caller's `traceparent` (a new
 * trace without a valid one), active for everything the request does. The request's
 * `traceparent` header is replaced by this span's, so whatever reads it downstream (a controller
 * handing it to the events it appends, a client forwarding it) continues from this hop. Named
 * `METHOD /route/:pattern` once routed; 5xx answers mark it failed.
 */
export function httpTracing() {
  return (req: TracedHttpRequest, res: TracedHttpResponse, next: () => void): void => {
    const path = (req.originalUrl ?? req.url).split('?')[0];
    // Probes and scrapes are not traced.
    if (path.startsWith('/health') || path === '/metrics') return next();
    const incoming = req.headers.traceparent;
    const { span, ctx } = beginSpan(`${req.method}`, {
      kind: SpanKind.SERVER,
      parent: typeof incoming === 'string' ? incoming : null,
      attributes: { 'http.request.method': req.method, 'url.path': path },
    });
    req.headers.traceparent = currentTraceparent(ctx);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = req.route?.path;
      if (route) {
        span.updateName(`${req.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(ctx, next);
  };
}
