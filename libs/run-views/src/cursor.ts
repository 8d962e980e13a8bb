/**
 * Opaque keyset cursors for run lists ordered by `(created desc, id desc)`.
 *
 * A cursor is base64url JSON `{ t, i, d }`: `t` is the boundary row's `created` as an ISO string
 * with all six fractional digits Postgres stores (a JS `Date` would keep only milliseconds, and
 * thousands of runs can share one millisecond), `i` its id, and `d` the direction: `n` (rows after
 * the boundary in list order, i.e. older) or `p` (rows before it, i.e. newer). The boundary row
 * itself is never part of the page the cursor opens.
 */

import { isStorableText } from '@flowruns/contracts';

export type CursorDirection = 'next' | 'previous';

export interface Cursor {
  /** `created` of the boundary row, ISO 8601 UTC with microseconds: `2024-01-15T10:30:00.123456Z`. */
  readonly created: string;
  readonly id: string;
  readonly direction: CursorDirection;
}

const CREATED_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;
const MAX_ID_LENGTH = 256;
// A cursor is small; refusing long input keeps a hostile one from costing a big decode.
const MAX_CURSOR_LENGTH = 1024;

/** True for a microsecond ISO timestamp that names a real instant (no Feb 30, no hour 24). */
export function isCursorTimestamp(value: string): boolean {
  const m = CREATED_PATTERN.exec(value);
  if (!m) return false;
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7].slice(0, 3)}Z`);
  // Date.parse rolls Feb 30 over to Mar 1; formatting it back catches that.
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === value.slice(0, 19);
}

/** Encodes a cursor as an opaque, URL-safe string. */
export function encodeCursor(cursor: Cursor): string {
  const body = { t: cursor.created, i: cursor.id, d: cursor.direction === 'next' ? 'n' : 'p' };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** Decodes a cursor; null for anything that is not one this module produced. */
export function decodeCursor(value: string): Cursor | null {
  if (value.length === 0 || value.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+={0,2}$/.test(value)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { t, i, d } = parsed as Record<string, unknown>;
  if (typeof t !== 'string' || !isCursorTimestamp(t)) return null;
  // An id Postgres cannot compare (U+0000) would fail the query instead of matching nothing.
  if (typeof i !== 'string' || i.length === 0 || i.length > MAX_ID_LENGTH || !isStorableText(i)) return null;
  if (d !== 'n' && d !== 'p') return null;
  return { created: t, id: i, direction: d === 'n' ? 'next' : 'previous' };
}

/** Thrown by the query side for a cursor that does not decode (the gateway validates first). */
export class InvalidCursorError extends Error {
  readonly field = 'cursor';
  constructor() {
    super('cursor is not valid');
  }
}
