/** Runs SQL with knex-style `?` bindings on the read model's database (`sqlRunner(em)`). */
export interface StallsSql {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** One row of `projection_stalls`, as an operator reads it. */
export interface StalledRun {
  readonly runId: string;
  /** From the run's view; null when the run has none (its first event stalled: `not-created`, or a gap at seq 1). */
  readonly projectId: string | null;
  /** 'gap', 'not-created' or 'already-created'; null for a stall recorded before the reason was kept. */
  readonly reason: string | null;
  /** The type of the event the run stalled on; null, like `reason`, for an older stall. */
  readonly eventType: string | null;
  readonly expectedSeq: number;
  readonly receivedSeq: number;
  readonly eventId: string;
  /** ISO 8601, UTC, milliseconds. */
  readonly detectedAt: string;
}

// The total comes with the rows (counted before the limit), so a listing can say what it left out.
// Stalls of one batch share their detected_at (the transaction's now()): run_id breaks the tie.
const SELECT_STALLS = `
  select s.run_id, v.project_id, s.reason, s.event_type, s.expected_seq, s.received_seq, s.event_id,
    to_char(s.detected_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as detected_at,
    (count(*) over ())::int as total
  from projection_stalls s left join run_views v on v.id = s.run_id
  order by s.detected_at desc, s.run_id
  limit ?`;

type StallRow = {
  run_id: string;
  project_id: string | null;
  reason: string | null;
  event_type: string | null;
  expected_seq: number;
  received_seq: number;
  event_id: string;
  detected_at: string;
  total: number;
};

/** The newest `limit` stalled runs, newest first, and how many there are in all. */
export async function listStalls(sql: StallsSql, limit: number): Promise<{ stalls: StalledRun[]; total: number }> {
  const rows = await sql.execute<StallRow>(SELECT_STALLS, [limit]);
  return {
    total: rows[0]?.total ?? 0,
    stalls: rows.map((r) => ({
      runId: r.run_id,
      projectId: r.project_id,
      reason: r.reason,
      eventType: r.event_type,
      expectedSeq: r.expected_seq,
      receivedSeq: r.received_seq,
      eventId: r.event_id,
      detectedAt: r.detected_at,
    })),
  };
}

const COLUMNS: ReadonlyArray<readonly [string, (s: StalledRun) => string | number | null]> = [
  ['RUN', (s) => s.runId],
  ['PROJECT', (s) => s.projectId],
  ['REASON', (s) => s.reason],
  ['EVENT TYPE', (s) => s.eventType],
  ['EXPECTED', (s) => s.expectedSeq],
  ['RECEIVED', (s) => s.receivedSeq],
  ['EVENT', (s) => s.eventId],
  ['DETECTED AT', (s) => s.detectedAt],
];

/** A header and one line per stall, columns aligned; `-` where a value is null. */
export function stallsTable(stalls: readonly StalledRun[]): string[] {
  const cells = [COLUMNS.map(([title]) => title), ...stalls.map((s) => COLUMNS.map(([, value]) => String(value(s) ?? '-')))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  return cells.map((line) => line.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
}
