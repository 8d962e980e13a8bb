import {
  EVENT_SOURCE,
  EVENT_SPEC_VERSION,
  domainError,
  isDomainError,
  isTerminal,
  type DomainError,
  type EventEnvelope,
  type RunEvent,
  type RunEventData,
} from '@flowruns/contracts';
import { decide, evolve, initialState, type RunCommand, type RunState } from '@flowruns/run-domain';
import { JSONB_PARAM, jsonParam } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { behindMarkSql, holdFinishingProjectsSql, purgeFinishedBehindMarks } from './purge-lock';
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
  /**
   * Writes that belong with this append (a new run's trigger payload), sent in the same statement
   * as the append's own — only if the command is accepted and appends events.
   */
  readonly alsoWrite?: readonly { readonly text: string; readonly params: unknown[] }[];
  /** Batches of many callers' commands: each run's events carry its own caller's span (else `traceparent`). */
  readonly traceparentOf?: (runId: string) => string | null | undefined;
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

/** A run's stream row as `appendToLockedRuns` takes it (the columns of `STREAM_COLUMNS`). */
export interface StreamRow {
  run_id: string;
  project_id: string;
  flow_id: string;
  version: number;
  state: RunState;
}

/** Builds the command once the run's current state is known (and locked). May write claim-checked data. */
export type CommandBuilder = (state: RunState) => Promise<RunCommand | DomainError> | RunCommand | DomainError;

/** A decided command for one run, not yet written. */
interface PendingAppend {
  readonly runId: string;
  readonly meta: StreamMeta;
  /** False for the run's first command (its stream row is inserted, not updated). */
  readonly exists: boolean;
  readonly previousVersion: number;
  readonly previous: RunState;
  readonly state: RunState;
  readonly events: readonly EventEnvelope[];
  readonly parentRunId: string | null;
}

const STREAM_COLUMNS = 'run_id, project_id, flow_id, version, state';

/**
 * Selects and locks (`for update`) the stream rows of these runs, in run id order (the order every
 * batch locks in); with `projectId`, only that project's runs.
 */
export function lockStreams(sql: SqlRunner, runIds: readonly string[], projectId?: string): Promise<StreamRow[]> {
  if (runIds.length === 0) return Promise.resolve([]);
  return sql.execute<StreamRow>(
    `select ${STREAM_COLUMNS} from run_streams where run_id in (?)${projectId !== undefined ? ' and project_id = ?' : ''}
     order by run_id for update`,
    projectId !== undefined ? [runIds, projectId] : [runIds],
  );
}

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
  // A run being created has a fresh id (uuid v7): there is no row to lock, and the insert of its row
  // would fail on the primary key if there were.
  const rows = opts.create ? [] : await sql.execute<StreamRow>(`select ${STREAM_COLUMNS} from run_streams where run_id = ? for update`, [runId]);
  const row = rows[0] && (await withRetentionRanges(sql, rows))[0];
  if (row && opts.projectId !== undefined && row.project_id !== opts.projectId) return runNotFound(runId);
  const command = await build(row ? row.state : initialState());
  if (isDomainError(command)) return command;
  const pending = decideFor(runId, row, command, opts);
  if (isDomainError(pending)) return pending;
  await persist(sql, [pending], opts);
  return resultOf(pending);
}

/**
 * The append path for many runs at once (bulk operations), in the caller's transaction: locks
 * the runs' stream rows in run id order (the order every batch locks in, so batches cannot
 * deadlock each other), decides each command, then writes every change with a handful of
 * statements instead of a handful per run. Runs that do not exist (or are another project's, when
 * `opts.projectId` is set) are left out of the answer; a refused command is its run's DomainError.
 */
export async function appendToRuns(
  sql: SqlRunner,
  runIds: readonly string[],
  build: (state: RunState, runId: string) => RunCommand | DomainError,
  opts: AppendOptions,
): Promise<(AppendResult | DomainError)[]> {
  return appendToLockedRuns(sql, await lockStreams(sql, runIds, opts.projectId), build, opts);
}

/**
 * The rows with `state.purged` set where retention purged the run as part of a range (its finish
 * key at or before its project's mark in `retention_marks`, `purgeExpiredBatch`): a range purge
 * writes nothing on the runs it covers, so their snapshots do not say it. Only finished runs not
 * marked purged already are looked up, in one statement.
 *
 * Exact for the commands whose outcome depends on it (retries, erases): they hold their project
 * against the purge first (`holdAgainstPurge`, a statement of its own), so the mark read here is
 * that of the last batch to commit, and no batch moves it before they commit. For any other
 * command a batch may cover its run while it runs; none of them reads the run's data.
 */
export async function withRetentionRanges<R extends StreamRow>(sql: SqlRunner, rows: readonly R[]): Promise<R[]> {
  const finished = rows.filter((r) => !r.state.purged && r.state.status !== null && isTerminal(r.state.status)).map((r) => r.run_id);
  if (finished.length === 0) return [...rows];
  const covered = await sql.execute<{ run_id: string }>(
    `select s.run_id from run_streams s join retention_marks m on m.project_id = s.project_id
     where s.run_id in (?) and s.finished_at is not null and ${behindMarkSql('s.finished_at', 's.run_id', 'm')}`,
    [finished],
  );
  if (covered.length === 0) return [...rows];
  const ids = new Set(covered.map((c) => c.run_id));
  return rows.map((r) => (ids.has(r.run_id) ? { ...r, state: { ...r.state, purged: true } } : r));
}

/**
 * `appendToRuns` for stream rows the caller has already selected (`STREAM_COLUMNS`) and locked
 * (`for update`) in this transaction (`lockStreams`).
 */
export async function appendToLockedRuns(
  sql: SqlRunner,
  rows: readonly StreamRow[],
  build: (state: RunState, runId: string) => RunCommand | DomainError,
  opts: AppendOptions,
): Promise<(AppendResult | DomainError)[]> {
  const decided = (await withRetentionRanges(sql, rows)).map((row) => {
    const command = build(row.state, row.run_id);
    return isDomainError(command) ? command : decideFor(row.run_id, row, command, opts);
  });
  await persistMany(
    sql,
    decided.filter((d): d is PendingAppend => !isDomainError(d)),
    opts,
  );
  return decided.map((d) => (isDomainError(d) ? d : resultOf(d)));
}

/** A run being created by `appendToNewRuns`: its fresh id, its owner and its first command. */
export interface NewStream {
  readonly runId: string;
  readonly meta: StreamMeta;
  readonly command: RunCommand;
}

/**
 * The append path for many new runs at once (a batch of triggers), in the caller's transaction:
 * each first command decided as `appendToRun` decides it with `create`, then every stream row,
 * every event and the writes `alsoWrite` gives for the accepted runs (their trigger payloads) in
 * one statement, whatever the number of runs — not one per run. Fresh ids (uuid v7) have no row
 * to lock; a duplicate would fail the insert on the primary key, as it does one by one. Answers in
 * the order given.
 */
export async function appendToNewRuns(
  sql: SqlRunner,
  runs: readonly NewStream[],
  opts: AppendOptions,
  alsoWrite: (accepted: readonly string[]) => readonly Write[] = () => [],
): Promise<(AppendResult | DomainError)[]> {
  const decided = runs.map((r) => decideFor(r.runId, undefined, r.command, { ...opts, create: r.meta }));
  const changed = decided.filter((d): d is PendingAppend => !isDomainError(d) && d.events.length > 0);
  if (changed.length > 0) {
    await writeAppends(sql, [...alsoWrite(changed.map((p) => p.runId)), newStreamsInsert(changed, opts), eventsInsert(changed, opts)], changed, opts.now);
  }
  return decided.map((d) => (isDomainError(d) ? d : resultOf(d)));
}

const runNotFound = (runId: string): DomainError =>
  domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId, message: 'Flow run not found' });

/** Decides `command` on the run's locked row (none: the run does not exist yet) and builds its envelopes. */
function decideFor(runId: string, row: StreamRow | undefined, command: RunCommand, opts: AppendOptions): PendingAppend | DomainError {
  const meta: StreamMeta | undefined = row ? { projectId: row.project_id, flowId: row.flow_id } : opts.create;
  if (!meta) return runNotFound(runId);
  const state = row ? row.state : initialState();
  const version = row ? row.version : 0;
  const decision = decide(command, state, { runId, now: opts.now });
  if (isDomainError(decision)) return decision;

  const time = opts.now.toISOString();
  let next = state;
  const events = decision.map((event: RunEvent, i): EventEnvelope => {
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
  return {
    runId,
    meta,
    exists: row !== undefined,
    previousVersion: version,
    previous: state,
    state: next,
    events,
    parentRunId: command.type === 'TriggerRun' ? command.parentRunId : null,
  };
}

/**
 * The columns beside a stream's snapshot, derived from it after an append: what other queries find
 * runs by (supervisor, cascade, quota, retention).
 */
const streamColumns = (p: PendingAppend) => ({
  version: p.previousVersion + p.events.length,
  status: p.state.status,
  runningSince: p.state.runningSince ?? null,
  resumeDeadline: p.state.pause?.resumeDeadline ?? null,
  // Retention's clock: starts when a run finishes (or is created finished, over its quota), kept
  // while it stays finished (archive, a retry on the latest version).
  finished: p.state.status !== null && isTerminal(p.state.status),
  purged: p.state.purged,
});

const resultOf = (p: PendingAppend): AppendResult => ({
  runId: p.runId,
  meta: p.meta,
  version: p.previousVersion + p.events.length,
  previous: p.previous,
  state: p.state,
  events: p.events,
});

/**
 * Writes decided appends: new stream rows, updated ones (one statement for all), the leases of
 * runs that stopped RUNNING, every event (one statement) — sent together as one statement (one
 * round trip) — and wakes the relay (`writeAppends`).
 */
async function persist(sql: SqlRunner, pending: readonly PendingAppend[], opts: AppendOptions): Promise<void> {
  const changed = pending.filter((p) => p.events.length > 0);
  if (changed.length === 0) return;
  const writes: Write[] = [...(opts.alsoWrite ?? [])];
  const write = (text: string, params: unknown[]) => writes.push({ text, params });

  const created = changed.filter((c) => !c.exists);
  if (created.length > 0) writes.push(newStreamsInsert(created, opts));
  const updates = changed.filter((c) => c.exists);
  if (updates.length > 0) {
    write(
      `update run_streams s set version = v.version, state = v.state, updated_at = ?, status = v.status,
         running_since = coalesce(v.running_since, s.running_since), resume_deadline = v.resume_deadline,
         finished_at = case when v.finished then coalesce(s.finished_at, ?) end,
         purged_at = case when v.purged then coalesce(s.purged_at, ?) end
       from (values ${updates.map(() => '(?, ?::int, ?::jsonb, ?, ?::timestamptz, ?::timestamptz, ?::boolean, ?::boolean)').join(', ')})
         as v (run_id, version, state, status, running_since, resume_deadline, finished, purged)
       where s.run_id = v.run_id`,
      [
        opts.now,
        opts.now,
        opts.now,
        ...updates.flatMap((p) => {
          const c = streamColumns(p);
          return [p.runId, c.version, JSON.stringify(p.state), c.status, c.runningSince, c.resumeDeadline, c.finished, c.purged];
        }),
      ],
    );
  }
  // A lease is a right to execute a RUNNING run: a run that pauses or ends gives it up.
  const leftRunning = updates.filter((p) => p.previous.status === 'RUNNING' && p.state.status !== 'RUNNING').map((p) => p.runId);
  if (leftRunning.length > 0) write('delete from run_leases where run_id in (?)', [leftRunning]);

  const envelopes = changed.flatMap((p) => p.events);
  write(
    `insert into run_events (event_id, run_id, seq, type, envelope, traceparent, created_at)
     values ${envelopes.map(() => '(?, ?, ?, ?, ?::jsonb, ?, ?)').join(', ')}`,
    envelopes.flatMap((e) => [e.id, e.subject, e.seq, e.type, JSON.stringify(e), opts.traceparent ?? null, opts.now]),
  );
  await writeAppends(sql, writes, changed, opts.now);
}

/** Whether an append gives its run a finish key (created finished, or ending now); a finished run keeps its own. */
const finishes = (p: PendingAppend) =>
  p.state.status !== null && isTerminal(p.state.status) && !(p.exists && p.previous.status !== null && isTerminal(p.previous.status));

/**
 * Sends an append's writes as one statement, and wakes the relay. When it finishes runs, the same
 * statement holds their projects against the purge and the next one purges those a retention
 * range already covers (`holdFinishingProjectsSql`): a range never passes over a finish in flight.
 */
async function writeAppends(sql: SqlRunner, writes: readonly Write[], changed: readonly PendingAppend[], now: Date): Promise<void> {
  const finished = changed.filter(finishes);
  if (finished.length === 0) {
    await sql.execute(...oneStatement(writes));
  } else {
    const projectIds = finished.map((p) => p.meta.projectId);
    await sql.execute(...oneStatement([...writes, holdFinishingProjectsSql(projectIds)]));
    // A run that finishes now gets this append's instant as its finish (`finished_at`).
    await purgeFinishedBehindMarks(
      sql,
      finished.map((p) => p.runId),
      projectIds,
      now,
    );
  }
  await wakeRelay(sql);
}

/**
 * Wakes the relay once the transaction commits: by the runner's owner when it can (the command
 * service: an in-process signal, see OutboxRelay.appendCommitted), else by a NOTIFY that Postgres
 * delivers at commit — which serialises the commits of all notifying transactions.
 */
async function wakeRelay(sql: SqlRunner): Promise<void> {
  if (sql.outboxAppended) sql.outboxAppended();
  else await sql.execute(`select pg_notify('${OUTBOX_CHANNEL}', '')`);
}


/**
 * What changed in a snapshot: its top-level keys whose values differ (`evolve` copies the state
 * with spreads, so an untouched key keeps the very same value), or null when a key went away (then
 * the whole snapshot is written). Applied to the locked row's snapshot with jsonb `||`, it gives
 * exactly `after`: a purge, an archive, a cancel or a retry rewrites a few fields, not the steps.
 */
export function snapshotPatch(before: RunState, after: RunState): Record<string, unknown> | null {
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  for (const k of Object.keys(b)) if (b[k] !== undefined && a[k] === undefined) return null;
  const patch: Record<string, unknown> = {};
  for (const k of Object.keys(a)) if (a[k] !== undefined && a[k] !== b[k]) patch[k] = a[k];
  return patch;
}

/**
 * `persist` for the existing runs of `appendToRuns` (bulk operations, purges: hundreds to thousands
 * of runs per call): every row travels inside one JSON document per table instead of a literal per
 * column per row, so the statement stays a few lines however large the batch — Node stringifies
 * once and quotes one string, Postgres parses one jsonb value instead of planning a VALUES list of
 * thousands of casts; a snapshot travels as its `snapshotPatch` when it can. The stream rows are
 * found through their primary key (`run_id in (…)`): the join alone let the planner hash a
 * sequential scan of the whole table, once per batch.
 */
async function persistMany(sql: SqlRunner, pending: readonly PendingAppend[], opts: AppendOptions): Promise<void> {
  const changed = pending.filter((p) => p.events.length > 0);
  if (changed.length === 0) return;
  const rows = changed.map((p) => {
    const patch = snapshotPatch(p.previous, p.state);
    const c = streamColumns(p);
    return {
      run_id: p.runId,
      version: c.version,
      state: patch === null ? p.state : null,
      patch,
      status: c.status,
      running_since: c.runningSince,
      resume_deadline: c.resumeDeadline,
      finished: c.finished,
      purged: c.purged,
    };
  });
  const writes: Write[] = [
    {
      text: `update run_streams s set version = v.version, state = coalesce(v.state, s.state || v.patch), updated_at = ?,
         status = v.status, running_since = coalesce(v.running_since, s.running_since), resume_deadline = v.resume_deadline,
         finished_at = case when v.finished then coalesce(s.finished_at, ?) end,
         purged_at = case when v.purged then coalesce(s.purged_at, ?) end
       from jsonb_to_recordset(${JSONB_PARAM}) as v (run_id text, version int, state jsonb, patch jsonb, status text,
         running_since timestamptz, resume_deadline timestamptz, finished boolean, purged boolean)
       where s.run_id in (?) and s.run_id = v.run_id`,
      params: [opts.now, opts.now, opts.now, jsonParam(rows), rows.map((r) => r.run_id)],
    },
  ];
  // A lease is a right to execute a RUNNING run: a run that pauses or ends gives it up.
  const leftRunning = changed.filter((p) => p.previous.status === 'RUNNING' && p.state.status !== 'RUNNING').map((p) => p.runId);
  if (leftRunning.length > 0) writes.push({ text: 'delete from run_leases where run_id in (?)', params: [leftRunning] });
  writes.push(eventsInsert(changed, opts));
  await writeAppends(sql, writes, changed, opts.now);
}

/** One statement's text and bindings, to be sent together with others (`oneStatement`). */
export interface Write {
  readonly text: string;
  readonly params: unknown[];
}

/** The insert of new runs' stream rows (their first appends) as one JSON document. */
function newStreamsInsert(created: readonly PendingAppend[], opts: AppendOptions): Write {
  const rows = created.map((p) => {
    const c = streamColumns(p);
    return {
      run_id: p.runId,
      project_id: p.meta.projectId,
      flow_id: p.meta.flowId,
      version: c.version,
      state: p.state,
      status: c.status,
      parent_run_id: p.parentRunId,
      running_since: c.runningSince,
      resume_deadline: c.resumeDeadline,
      finished: c.finished,
    };
  });
  return {
    text: `insert into run_streams (run_id, project_id, flow_id, version, state, created_at, updated_at, status,
         parent_run_id, running_since, resume_deadline, finished_at)
       select v.run_id, v.project_id, v.flow_id, v.version, v.state, ?, ?, v.status, v.parent_run_id, v.running_since,
              v.resume_deadline, case when v.finished then ?::timestamptz end
         from jsonb_to_recordset(${JSONB_PARAM}) as v (run_id text, project_id text, flow_id text, version int, state jsonb,
           status text, parent_run_id text, running_since timestamptz, resume_deadline timestamptz, finished boolean)`,
    params: [opts.now, opts.now, opts.now, jsonParam(rows)],
  };
}

/**
 * The insert of every event of these appends as one JSON document. Each element is the envelope
 * itself; the columns beside it are read out of it. Ordinality keeps the log's positions in the
 * order the events were decided. With `traceparentOf` (a batch of many callers' commands) the
 * elements are `{ e, tp }`: each run's events keep their caller's span.
 */
function eventsInsert(changed: readonly PendingAppend[], opts: AppendOptions): Write {
  const tpOf = opts.traceparentOf;
  return tpOf
    ? {
        text: `insert into run_events (event_id, run_id, seq, type, envelope, traceparent, created_at)
     select x->'e'->>'id', x->'e'->>'subject', (x->'e'->>'seq')::int, x->'e'->>'type', x->'e', x->>'tp', ?
       from jsonb_array_elements(${JSONB_PARAM}) with ordinality as a (x, i) order by i`,
        params: [opts.now, jsonParam(changed.flatMap((p) => p.events.map((e) => ({ e, tp: tpOf(p.runId) ?? opts.traceparent ?? null }))))],
      }
    : {
        text: `insert into run_events (event_id, run_id, seq, type, envelope, traceparent, created_at)
     select e->>'id', e->>'subject', (e->>'seq')::int, e->>'type', e, ?, ?
       from jsonb_array_elements(${JSONB_PARAM}) with ordinality as x (e, i) order by i`,
        params: [opts.traceparent ?? null, opts.now, jsonParam(changed.flatMap((p) => p.events))],
      };
}

/**
 * Writes as one statement: all but the last as data-modifying CTEs (Postgres runs every one of
 * them, referenced or not, against the same snapshot — they touch different rows, so none needs to
 * see another's effect). One round trip instead of one per write, on the path every command takes.
 */
function oneStatement(writes: readonly Write[]): [string, unknown[]] {
  const last = writes[writes.length - 1];
  const ctes = writes.slice(0, -1).map((w, i) => `w${i} as (${w.text})`);
  return [ctes.length > 0 ? `with ${ctes.join(', ')}\n${last.text}` : last.text, writes.flatMap((w) => w.params)];
}

/** Reads a run's stream head without locking (for answers that need the current state). */
export async function readStream(sql: SqlRunner, runId: string): Promise<(StreamMeta & { version: number; state: RunState }) | null> {
  const rows = await sql.execute<StreamRow>(`select ${STREAM_COLUMNS} from run_streams where run_id = ?`, [runId]);
  const r = rows[0] && (await withRetentionRanges(sql, rows))[0];
  return r ? { projectId: r.project_id, flowId: r.flow_id, version: r.version, state: r.state } : null;
}

/** What a run was triggered with, and when (its first event, seq 1). */
export interface Triggered {
  readonly time: string;
  readonly projectId: string;
  readonly flowId: string;
  readonly data: RunEventData<'flowrun.triggered.v1'>;
}

/** The trigger events of the runs an `in (?)` parameter names: each run's first event (seq 1), when it is one. */
const TRIGGER_EVENTS_OF = `run_events where run_id in (?) and seq = 1 and type = 'flowrun.triggered.v1'`;

/** `readTriggered` for many runs in one statement; runs without a trigger event are absent. */
export async function readTriggeredMany(sql: SqlRunner, runIds: readonly string[]): Promise<Map<string, Triggered>> {
  const out = new Map<string, Triggered>();
  if (runIds.length === 0) return out;
  const rows = await sql.execute<{ envelope: EventEnvelope }>(
    `select envelope from ${TRIGGER_EVENTS_OF}`,
    [runIds],
  );
  for (const { envelope: e } of rows) {
    out.set(e.subject, { time: e.time, projectId: e.projectId, flowId: e.flowId, data: e.data as RunEventData<'flowrun.triggered.v1'> });
  }
  return out;
}

/** What a retry on the latest version takes from a run's trigger, and whether its payload is still stored. */
export type RetrySource = Pick<RunEventData<'flowrun.triggered.v1'>, 'environment' | 'triggeredBy' | 'triggerDataRef'> & {
  readonly payloadStored: boolean;
};

/**
 * `RetrySource` of many runs in one statement; runs without a trigger event are absent. Only the
 * three fields, read inside Postgres: whole envelopes cost their text conversion there and their
 * parsing here (a page of retries read 2 000 of them).
 */
export async function readRetrySources(sql: SqlRunner, runIds: readonly string[]): Promise<Map<string, RetrySource>> {
  const out = new Map<string, RetrySource>();
  if (runIds.length === 0) return out;
  const rows = await sql.execute<{ run_id: string; environment: RetrySource['environment']; triggered_by: RetrySource['triggeredBy']; ref: RetrySource['triggerDataRef']; stored: boolean }>(
    `select t.run_id, t.data->>'environment' as environment, t.data->>'triggeredBy' as triggered_by, t.data->>'triggerDataRef' as ref,
       ${ExecutionDataStore.storedSql(`t.data->>'triggerDataRef'`)} as stored
     from (select run_id, envelope->'data' as data from ${TRIGGER_EVENTS_OF}) t`,
    [runIds],
  );
  for (const r of rows) out.set(r.run_id, { environment: r.environment, triggeredBy: r.triggered_by, triggerDataRef: r.ref, payloadStored: r.stored });
  return out;
}

/** A run's first event (seq 1): what it was triggered with, and when. */
export async function readTriggered(sql: SqlRunner, runId: string): Promise<Triggered | null> {
  return (await readTriggeredMany(sql, [runId])).get(runId) ?? null;
}
