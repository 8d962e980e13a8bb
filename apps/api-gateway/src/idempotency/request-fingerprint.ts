import { createHash } from 'node:crypto';
import { EnvelopeException } from '@flowruns/platform';

/** The header's name as clients write it; params of its errors name it so. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

// Printable ASCII (space to tilde), 1 to 255 characters.
const KEY = /^[\x20-\x7e]{1,255}$/;

/**
 * The `Idempotency-Key` header's value, or null when the request has none. A present but invalid
 * value is the client's 400: silently ignoring it would run the request without the protection the
 * client asked for.
 */
export function parseIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header === 'string' && KEY.test(header)) return header;
  throw EnvelopeException.of('VALIDATION', {
    field: IDEMPOTENCY_HEADER,
    message: 'Idempotency-Key must be one value of 1 to 255 printable ASCII characters',
  });
}

/**
 * JSON with object keys sorted at every depth, so that two bodies that mean the same thing
 * (`{"a":1,"b":2}` and `{"b":2,"a":1}`) have the same text. No body at all is the empty string,
 * which no JSON value serialises to.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * What identifies "the same request" for a key: sha256 of method, path and canonical body. Only
 * the hash is stored, never the body (which may hold personal data).
 */
export function requestFingerprint(method: string, path: string, body: unknown): Buffer {
  return createHash('sha256').update(`${method.toUpperCase()}\n${path}\n${canonicalJson(body)}`).digest();
}
