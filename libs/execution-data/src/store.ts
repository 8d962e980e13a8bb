import { v7 as uuidv7 } from 'uuid';
import { JSON_PARAM, JSONB_PARAM, jsonLiteral, jsonParam } from '@flowruns/database';

/** Raw SQL access (MikroORM's `em.execute` satisfies it, inside or outside a transaction). */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export type ExecutionDataKind = 'trigger' | 'step' | 'resume';

export interface ExecutionRecord {
  readonly ref: string;
  readonly runId: string;
  readonly kind: ExecutionDataKind;
  readonly stepName: string | null;
  readonly attempt: number | null;
  readonly input: unknown;
  readonly output: unknown;
  readonly error: unknown;
  readonly bytes: number;
}

export type NewExecutionRecord = Omit<ExecutionRecord, 'ref' | 'bytes'>;

/** JSON text of a value, with `undefined` stored as SQL null. */
const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

/**
 * The claim-check store: step inputs and outputs, trigger payloads and resume bodies live here,
 * never in events. Events carry the `ref`. A Postgres table today; the interface is what an
 * object store would implement later.
 */
export class ExecutionDataStore {
  constructor(private readonly sql: SqlRunner) {}

  /**
   * A fresh reference, for a command decided before its record is stored (`putMany`). Time-ordered
   * (UUID v7, 74 random bits): each new record's key lands at the right edge of the table's primary
   * key, where a random one (v4) touched a random leaf page of an index far larger than the cache.
   */
  static newRef(): string {
    return `exd_${uuidv7()}`;
  }

  /** Stores one record and returns its reference. Call inside the command's transaction. */
  async put(record: NewExecutionRecord): Promise<string> {
    const insert = ExecutionDataStore.insertOf(record);
    await this.sql.execute(insert.text, insert.params);
    return insert.ref;
  }

  /**
   * The statement that stores one record, and its new reference, for a caller that sends it
   * together with its own writes (one round trip: see `AppendOptions.alsoWrite`).
   */
  static insertOf(record: NewExecutionRecord): { ref: string; text: string; params: unknown[] } {
    const ref = ExecutionDataStore.newRef();
    const input = json(record.input);
    const output = json(record.output);
    const error = json(record.error);
    const bytes = (input?.length ?? 0) + (output?.length ?? 0) + (error?.length ?? 0);
    return {
      ref,
      text: `insert into execution_data (ref, run_id, kind, step_name, attempt, input, output, error, bytes)
       values (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?)`,
      params: [ref, record.runId, record.kind, record.stepName, record.attempt, input, output, error, bytes],
    };
  }

  /**
   * Stores many records (each with its `newRef`) in one statement. The rows travel as one JSON
   * document passed as bytes (one hex literal, encoded natively, instead of every value escaped one
   * character at a time); `x->'input'` keeps `put`'s distinction between no value (SQL NULL: the
   * key is absent, as JSON drops `undefined`) and a JSON null.
   */
  async putMany(records: readonly (NewExecutionRecord & { readonly ref: string })[]): Promise<void> {
    if (records.length === 0) return;
    const insert = ExecutionDataStore.insertManyOf(records);
    await this.sql.execute(insert.text, insert.params);
  }

  /** `putMany`'s statement, for a caller that sends it together with its own writes (one round trip). */
  static insertManyOf(records: readonly (NewExecutionRecord & { readonly ref: string })[]): { text: string; params: unknown[] } {
    // Each value is serialised once: its JSON text is both what `bytes` counts and what is sent.
    const rows = records.map((r) => {
      const values = { input: json(r.input), output: json(r.output), error: json(r.error) };
      const bytes = (values.input?.length ?? 0) + (values.output?.length ?? 0) + (values.error?.length ?? 0);
      const head = JSON.stringify({ ref: r.ref, run_id: r.runId, kind: r.kind, step_name: r.stepName, attempt: r.attempt, bytes });
      const tail = Object.entries(values)
        .filter((e): e is [string, string] => e[1] !== null)
        .map(([k, v]) => `,"${k}":${v}`)
        .join('');
      return `${head.slice(0, -1)}${tail}}`;
    });
    return {
      text: `insert into execution_data (ref, run_id, kind, step_name, attempt, input, output, error, bytes)
       select x->>'ref', x->>'run_id', x->>'kind', x->>'step_name', (x->>'attempt')::int, x->'input', x->'output', x->'error',
              (x->>'bytes')::int
         from jsonb_array_elements(${JSONB_PARAM}) as a (x)`,
      params: [jsonLiteral(`[${rows.join(',')}]`)],
    };
  }

  /**
   * The statement that stores copies of trigger payloads under new references for other runs (a
   * retry on the latest version starts its new run with the original's payload), copied inside
   * Postgres: a page of retries never holds its payloads in memory. A source that is gone copies
   * nothing.
   */
  static copyTriggerPayloadsOf(copies: readonly { readonly ref: string; readonly runId: string; readonly from: string }[]): { text: string; params: unknown[] } {
    return {
      text: `insert into execution_data (ref, run_id, kind, step_name, attempt, input, output, error, bytes)
       select x.ref, x.run_id, 'trigger', null, null, null, d.output, null, d.bytes
         from json_to_recordset(${JSON_PARAM}) as x (ref text, run_id text, source text) join execution_data d on d.ref = x.source`,
      params: [jsonParam(copies.map((c) => ({ ref: c.ref, run_id: c.runId, source: c.from })))],
    };
  }

  /** An SQL expression: whether a record is stored under the reference `refExpr` evaluates to. */
  static storedSql(refExpr: string): string {
    return `exists (select 1 from execution_data d where d.ref = ${refExpr})`;
  }

  /** The records behind these references (missing ones, e.g. purged, are simply absent). */
  async getMany(refs: readonly string[]): Promise<Map<string, ExecutionRecord>> {
    const out = new Map<string, ExecutionRecord>();
    if (refs.length === 0) return out;
    const rows = await this.sql.execute<{
      ref: string;
      run_id: string;
      kind: ExecutionDataKind;
      step_name: string | null;
      attempt: number | null;
      input: unknown;
      output: unknown;
      error: unknown;
      bytes: number;
      has_input: boolean;
      has_output: boolean;
      has_error: boolean;
    }>(
      // A JSON null (stored as jsonb 'null') and no value (SQL NULL) both arrive as null: the flags tell them apart.
      `select *, input is not null as has_input, output is not null as has_output, error is not null as has_error
         from execution_data where ref in (?)`,
      [refs],
    );
    for (const r of rows) {
      out.set(r.ref, {
        ref: r.ref,
        runId: r.run_id,
        kind: r.kind,
        stepName: r.step_name,
        attempt: r.attempt,
        input: r.has_input ? r.input : undefined,
        output: r.has_output ? r.output : undefined,
        error: r.has_error ? r.error : undefined,
        bytes: r.bytes,
      });
    }
    return out;
  }

  /**
   * SQL that deletes every record of the runs `runIdsSql` selects (a subquery or a `(?)` list),
   * returning each record's `bytes`: the body of a data-modifying CTE.
   */
  static deleteRunsSql(runIdsSql: string): string {
    return `delete from execution_data where run_id in ${runIdsSql} returning bytes`;
  }

  /** Deletes every record of the given runs; returns how many records and bytes went. */
  async purgeRuns(runIds: readonly string[]): Promise<{ records: number; bytes: number }> {
    if (runIds.length === 0) return { records: 0, bytes: 0 };
    const [row] = await this.sql.execute<{ records: number; bytes: number }>(
      `with gone as (${ExecutionDataStore.deleteRunsSql('(?)')})
       select count(*)::int as records, coalesce(sum(bytes), 0)::float8 as bytes from gone`,
      [runIds],
    );
    return row;
  }
}
