import { isDomainError } from '@flowruns/contracts';
import { inTransaction, type Transactor } from './run-commands';
import { appendWithRules } from './run-rules';
import type { SqlRunner } from './sql';

export interface SupervisorOptions {
  /** `AP_FLOW_TIMEOUT_SECONDS`: the longest a run may run at a stretch (since it last entered RUNNING). */
  readonly flowTimeoutSeconds: number;
  /** `AP_ORPHAN_RUN_SECONDS`: the longest a RUNNING run may go without a live lease. */
  readonly orphanRunSeconds: number;
  /** Runs handled per sweep and transaction. */
  readonly batchSize: number;
}

export interface SweepCounts {
  readonly pauseExpired: number;
  readonly executionTimedOut: number;
  readonly workerLost: number;
}

type Reason = 'PAUSE_TIME' | 'EXECUTION_TIME' | 'WORKER_LOST';

/** A parent waiting on a subflow child holds no lease by design: it is not orphaned (`s` is its stream row). */
const WAITS_ON_SUBFLOW = `exists (
  select 1 from jsonb_each(s.state -> 'steps') st
  where st.value ->> 'type' = 'subflow' and st.value ->> 'status' = 'RUNNING'
    and (st.value ->> 'attempt')::int = (s.state ->> 'attempt')::int)`;

/** At most this many batches per sweep and tick, so one tick stays bounded. */
const MAX_BATCHES = 10;

/**
 * Ends runs that nobody will end: PAUSED past their resume deadline (TIMEOUT, PAUSE_TIME); RUNNING
 * longer than the flow timeout since they last entered RUNNING (TIMEOUT, EXECUTION_TIME); RUNNING
 * without a live lease for longer than the orphan time — never picked up, or their worker died and
 * nobody claimed them (TIMEOUT, WORKER_LOST). Each batch is one transaction that locks its runs
 * with `for update skip locked`, so several command-service instances sweep side by side without
 * taking the same run, and the condition holds on the locked row when the command is appended.
 */
export class RunSupervisor {
  /** When this instance's next WORKER_LOST sweep is due (epoch ms); null: at the next tick. */
  private workerLostDue: number | null = null;

  constructor(
    private readonly tx: Transactor,
    private readonly options: SupervisorOptions,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async tick(now: Date = this.clock()): Promise<SweepCounts> {
    const ms = (s: number) => new Date(now.getTime() - s * 1000);
    const n = this.options.batchSize;
    const pauseExpired = await this.sweep('PAUSE_TIME', now, (sql) =>
      sql.execute<{ run_id: string }>(
        `select run_id from run_streams where status = 'PAUSED' and resume_deadline <= ?
         order by resume_deadline limit ? for update skip locked`,
        [now, n],
      ),
    );
    const executionTimedOut = await this.sweep('EXECUTION_TIME', now, (sql) =>
      sql.execute<{ run_id: string }>(
        `select run_id from run_streams where status = 'RUNNING' and running_since <= ?
         order by running_since limit ? for update skip locked`,
        [ms(this.options.flowTimeoutSeconds), n],
      ),
    );
    const orphanedBefore = ms(this.options.orphanRunSeconds);
    // Unlike the other two, this sweep reads every RUNNING run older than the orphan time, the
    // healthy long-running ones included (50 000 with live leases: ~0.26 s a sweep), so it runs at
    // most every tenth of the orphan time: an orphan ends at most a tenth of the orphan time later,
    // and a tick stays cheap however many runs run long.
    if (this.workerLostDue !== null && now.getTime() < this.workerLostDue) {
      return { pauseExpired: pauseExpired.changed, executionTimedOut: executionTimedOut.changed, workerLost: 0 };
    }
    const workerLost = await this.sweep('WORKER_LOST', now, (sql) =>
      sql.execute<{ run_id: string }>(
        // The runs without a live lease first (a hash anti-join), then the look into the steps for
        // those only: asked of every old RUNNING run, it took half the sweep's time. What the lock
        // waits on is checked again on the row it locks (status, start, steps); the leases are
        // read at the statement's snapshot either way, so the candidates' check stands for them.
        `with unleased as materialized (
           select c.run_id, c.running_since, c.state from run_streams c
           where c.status = 'RUNNING' and c.running_since <= ?
             and not exists (select 1 from run_leases l where l.run_id = c.run_id and l.expires_at > ?)
         ), candidates as materialized (
           select s.run_id from unleased s
           where not ${WAITS_ON_SUBFLOW}
           order by s.running_since limit ?
         )
         select s.run_id from run_streams s
         where s.run_id in (select run_id from candidates)
           and s.status = 'RUNNING' and s.running_since <= ?
           and not ${WAITS_ON_SUBFLOW}
         order by s.running_since for update of s skip locked`,
        [orphanedBefore, orphanedBefore, n, orphanedBefore],
      ),
    );
    // A sweep cut short by its batch bound left orphans behind: the next tick goes on with them.
    this.workerLostDue = workerLost.complete ? now.getTime() + this.options.orphanRunSeconds * 100 : null;
    return { pauseExpired: pauseExpired.changed, executionTimedOut: executionTimedOut.changed, workerLost: workerLost.changed };
  }

  /** Batches until one finds fewer runs than a batch holds (`complete`) or `MAX_BATCHES` ran. */
  private async sweep(reason: Reason, now: Date, select: (sql: SqlRunner) => Promise<{ run_id: string }[]>): Promise<{ changed: number; complete: boolean }> {
    let total = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const r = await inTransaction(this.tx, async (sql) => {
        const rows = await select(sql);
        let changed = 0;
        for (const { run_id } of rows) {
          const appended = await appendWithRules(sql, run_id, () => ({ type: 'TimeOutRun', reason }), { now });
          if (!isDomainError(appended) && appended.events.length > 0) changed++;
        }
        return { found: rows.length, changed };
      });
      if (isDomainError(r)) return { changed: total, complete: false };
      total += r.changed;
      if (r.found < this.options.batchSize) return { changed: total, complete: true };
    }
    return { changed: total, complete: false };
  }
}
