import {
  EVENT_SOURCE,
  EVENT_SPEC_VERSION,
  domainError,
  isDomainError,
  type DomainError,
  type EventEnvelope,
  type RunEvent,
  type RunEventData,
} from '@flowruns/contracts';
import { decide, evolve, initialState, type RunCommand, type RunState } from '@flowruns/run-domain';
import { v7 as uuidv7 } from 'uuid';
import type { SqlRunner } from './sql';

/** The Postgres channel the relay listens on; notified in the appending transaction. */
export const OUTBOX_CHANNEL = 'flow_run_events';

export interface StreamMeta {
  readonly projectId: string;
  readonly flowId: string;
}

export interface AppendOptions {
  readonly now: Date;
  readonly traceparent?: string | null;
  /** Set for a run's first command (TriggerRun): the stream's owner. */
  readonly create?: StreamMeta;
  /** When set, a run of another project is answered as not found and never touched. */
  readonly projectId?: string;
}

export interface AppendResult {
  readonly runId: string;
  readonly meta: StreamMeta;
  readonly version: number;
  /** The state before the command (equal to `state` when nothing was appended). */
  readonly previous: RunState;
  readonly state: RunState;
  readonly events: readonly EventEnvelope[];
}

interface StreamRow {
  project_id: string;
  flow_id: string;
  version: number;
  state: RunState;
}

/** Builds the command once the run's current state is known (and locked). May write claim-checked data. */
export type CommandBuilder = (state: RunState) => Promise<RunCommand | DomainError> | RunCommand | DomainError;

/**
 * The append path. Must run inside a transaction: locks the run's stream row, decides, appends the
 * events to the log (which is also the outbox) with the next sequence numbers, stores the new
 * version and snapshot, and notifies the relay (delivered only if the transaction commits).
 */
export async function appendToRun(
  sql: SqlRunner,
  runId: string,
  build: CommandBuilder,
  opts: AppendOptions,
): Promise<AppendResult | DomainError> {
  const rows = await sql.execute<StreamRow>(
    'select project_id, flow_id, version, state from run_streams where run_id = ? for update',
    [runId],
  );
  const row = rows[0];
  if (row && opts.projectId !== undefined && row.project_id !== opts.projectId) {
    return domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId, message: 'Flow run not found' });
  }
  const meta: StreamMeta | undefined = row ? { projectId: row.project_id, flowId: row.flow_id } : opts.create;
  const state = row ? row.state : initialState();
  const version = row ? row.version : 0;

  const command = await build(state);
  if (isDomainError(command)) return command;
  if (!meta) {
    return domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId, message: 'Flow run not found' });
  }
  const decision = decide(command, state, { runId, now: opts.now });
  if (isDomainError(decision)) return decision;
  if (decision.length === 0) return { runId, meta, version, previous: state, state, events: [] };

  const time = opts.now.toISOString();
  let next = state;
  const envelopes = decision.map((event: RunEvent, i): EventEnvelope => {
    next = evolve(next, event, time);
    return {
      specversion: EVENT_SPEC_VERSION,
      id: uuidv7({ msecs: opts.now.getTime() }),
      type: event.type,
      source: EVENT_SOURCE,
      time,
      subject: runId,
      projectId: meta.projectId,
      flowId: meta.flowId,
      seq: version + 1 + i,
      datacontenttype: 'application/json',
      data: event.data as Record<string, unknown>,
    };
  });
  const newVersion = version + envelopes.length;

  // The columns beside the snapshot are what other queries find runs by (supervisor, cascade, quota).
  const runningSince = next.runningSince ?? null;
  const resumeDeadline = next.pause?.resumeDeadline ?? null;
  if (row) {
    await sql.execute(
      `update run_streams set version = ?, state = ?::jsonb, updated_at = ?, status = ?,
         running_since = coalesce(?::timestamptz, running_since), resume_deadline = ?::timestamptz
       where run_id = ?`,
      [newVersion, JSON.stringify(next), opts.now, next.status, runningSince, resumeDeadline, runId],
    );
  } else {
    const parentRunId = command.type === 'TriggerRun' ? command.parentRunId : null;
    await sql.execute(
      `insert into run_streams (run_id, project_id, flow_id, version, state, created_at, updated_at, status,
         parent_run_id, running_since, resume_deadline)
       values (?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz)`,
      [
        runId,
        meta.projectId,
        meta.flowId,
        newVersion,
        JSON.stringify(next),
        opts.now,
        opts.now,
        next.status,
        parentRunId,
        runningSince,
        resumeDeadline,
      ],
    );
  }
  // A lease is a right to execute a RUNNING run: a run that pauses or ends gives it up.
  if (row && state.status === 'RUNNING' && next.status !== 'RUNNING') {
    await sql.execute('delete from run_leases where run_id = ?', [runId]);
  }
  const values = envelopes.map(() => '(?, ?, ?, ?, ?::jsonb, ?, ?)').join(', ');
  const params = envelopes.flatMap((e) => [
    e.id,
    runId,
    e.seq,
    e.type,
    JSON.stringify(e),
    opts.traceparent ?? null,
    opts.now,
  ]);
  await sql.execute(
    `insert into run_events (event_id, run_id, seq, type, envelope, traceparent, created_at) values ${values}`,
    params,
  );
  await sql.execute(`select pg_notify('${OUTBOX_CHANNEL}', '')`);
  return { runId, meta, version: newVersion, previous: state, state: next, events: envelopes };
}

/** Reads a run's stream head without locking (for answers that need the current state). */
export async function readStream(sql: SqlRunner, runId: string): Promise<(StreamMeta & { version: number; state: RunState }) | null> {
  const rows = await sql.execute<StreamRow>('select project_id, flow_id, version, state from run_streams where run_id = ?', [
    runId,
  ]);
  const r = rows[0];
  return r ? { projectId: r.project_id, flowId: r.flow_id, version: r.version, state: r.state } : null;
}

/** A run's first event (seq 1): what it was triggered with, and when. */
export async function readTriggered(
  sql: SqlRunner,
  runId: string,
): Promise<{ time: string; projectId: string; flowId: string; data: RunEventData<'flowrun.triggered.v1'> } | null> {
  const rows = await sql.execute<{ envelope: EventEnvelope }>(
    `select envelope from run_events where run_id = ? and seq = 1 and type = 'flowrun.triggered.v1'`,
    [runId],
  );
  const e = rows[0]?.envelope;
  if (!e) return null;
  return { time: e.time, projectId: e.projectId, flowId: e.flowId, data: e.data as RunEventData<'flowrun.triggered.v1'> };
}
