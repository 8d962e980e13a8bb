/**
 * Telling "a data source is unreachable, retry later" (503) from a bug (500). Postgres and the
 * network report a lost connection in many shapes, and MikroORM/knex wrap or even replace them,
 * so this looks at codes, SQLSTATE classes, the messages the drivers use, and the causes.
 */

/** Socket-level codes of a connection that could not be made or was lost. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);

/**
 * SQLSTATEs of a server that is going away or not taking connections. Class 08 (connection
 * exception) is matched as a whole; from class 57 the ones that end or refuse the session
 * (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57P05
 * idle_session_timeout), not 57014 (a cancelled statement); 53300 too_many_connections.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '57P05', '53300']);

/** Messages of pg, knex and Node for a lost or unusable connection (they carry no code). */
const MESSAGES = [
  /Connection terminated/i, // pg: "… unexpectedly", "… due to connection timeout"
  /Connection ended unexpectedly/i,
  /connect ECONNREFUSED/,
  /read ECONNRESET/,
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /This socket has been ended by the other party/i,
  /timeout exceeded when trying to connect/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /terminating connection due to administrator command/i,
  // knex, when MikroORM rolls back a transaction whose COMMIT (or other transaction query) failed
  // on a lost connection: the rollback's error replaces the original one, so this is all that is
  // left of it. Our code never queries a finished transaction otherwise.
  /Transaction query already complete/i,
];

/**
 * True for errors that mean a data source is unreachable or going away: refused, reset or
 * terminated connections, Postgres shutting down or not accepting connections (SQLSTATE class 08,
 * 57P01…), a pool that could not hand out a connection in time. Looks through `cause` chains
 * and `AggregateError`s (Node's connect to several addresses).
 */
export function isConnectionError(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== 'object' || depth > 5) return false;
  const err = e as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (err.name === 'KnexTimeoutError') return true;
  const code = typeof err.code === 'string' ? err.code : '';
  if (NETWORK_CODES.has(code) || SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  const message = typeof err.message === 'string' ? err.message : '';
  if (MESSAGES.some((m) => m.test(message))) return true;
  if (err.cause !== undefined && err.cause !== e && isConnectionError(err.cause, depth + 1)) return true;
  return Array.isArray(err.errors) && err.errors.some((x) => isConnectionError(x, depth + 1));
}
