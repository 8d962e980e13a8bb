import { randomBytes } from 'node:crypto';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/** The W3C trace context of one request, as the gateway passes it on. */
export interface TraceContext {
  readonly traceId: string;
  /** The header to send downstream: the caller's trace, with the gateway as the parent span. */
  readonly traceparent: string;
}

// version-traceid-parentid-flags, lowercase hex (https://www.w3.org/TR/trace-context/#traceparent-header).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Continues the caller's trace when its `traceparent` is valid, else starts a new one. Either way
 * the downstream parent id is a new span id: the gateway's hop is a span of its own.
 */
export function continueTrace(incoming: string | string[] | undefined): TraceContext {
  const m = typeof incoming === 'string' ? TRACEPARENT.exec(incoming.trim()) : null;
  const valid =
    m !== null &&
    m[1] !== 'ff' &&
    // Version 00 has exactly four fields; later versions may append more, which we drop.
    !(m[1] === '00' && m[5] !== undefined) &&
    m[2] !== ZERO_TRACE &&
    m[3] !== ZERO_SPAN;
  const traceId = valid ? m[2] : randomBytes(16).toString('hex');
  // Keep only the sampled bit (the one flag version 00 defines); a new trace is not sampled by us.
  const flags = valid ? ((parseInt(m[4], 16) & 0x01) === 1 ? '01' : '00') : '00';
  return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}` };
}

export interface TracedRequest {
  trace?: TraceContext;
  headers: Record<string, string | string[] | undefined>;
}

/** The request's trace context (set by the gateway's middleware; computed here if it did not run). */
export const Trace = createParamDecorator((_: unknown, ctx: ExecutionContext): TraceContext => {
  const req = ctx.switchToHttp().getRequest<TracedRequest>();
  req.trace ??= continueTrace(req.headers.traceparent);
  return req.trace;
});
