import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { currentTraceparent } from '@flowruns/platform';

/** The W3C trace context of one request, as the gateway passes it on. */
export interface TraceContext {
  readonly traceId: string;
  /** The header to send downstream: the caller's trace, with the gateway's request span as the parent. */
  readonly traceparent: string;
}

export interface TracedRequest {
  trace?: TraceContext;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The request's trace context. The platform's `httpTracing` middleware (mounted by
 * configureGateway) has replaced the `traceparent` header with the gateway's own request span,
 * a child of the caller's valid `traceparent` or the root of a new trace.
 */
export function traceContextOf(req: TracedRequest): TraceContext {
  const header = req.headers.traceparent;
  const traceparent = typeof header === 'string' ? header : currentTraceparent();
  if (!traceparent) throw new Error('no trace context: the httpTracing middleware did not run');
  return { traceId: traceparent.split('-')[1], traceparent };
}

/** The request's trace context (see `traceContextOf`). */
export const Trace = createParamDecorator((_: unknown, ctx: ExecutionContext): TraceContext => {
  const req = ctx.switchToHttp().getRequest<TracedRequest>();
  req.trace ??= traceContextOf(req);
  return req.trace;
});
