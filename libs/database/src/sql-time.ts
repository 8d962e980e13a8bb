/**
 * SQL that reads a timestamptz column (or expression) as ISO 8601 text in UTC with its
 * microseconds (`2026-11-30T16:31:19.123456Z`): a keyset cursor or mark must carry the key as
 * Postgres orders it, and a JS `Date` keeps milliseconds only.
 */
export const isoMicrosSql = (timestamp: string): string => `to_char(${timestamp} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
