import { domainError, type DomainError, type LeaseResult } from '@flowruns/contracts';
import type { SqlRunner } from './sql';

/**
 * Engine leases: the right of one worker to execute a RUNNING run until `expires_at`. A worker
 * renews its lease while it works; a lease that expires (its worker died) can be claimed by
 * another worker, which continues the run from its recorded state. Times come from the caller's
 * clock (the command service's), never from a worker's.
 */
export class LeaseStore {
  constructor(private readonly sql: SqlRunner) {}

  /**
   * Acquires or renews: granted when the run has no lease, an expired one, or one held by the same
   * worker. Only RUNNING runs are leased. Returns null for a run that does not exist.
   */
  async acquire(runId: string, workerId: string, ttlMs: number, now: Date): Promise<LeaseResult | null> {
    const runs = await this.sql.execute<{ status: string | null }>('select status from run_streams where run_id = ?', [runId]);
    if (!runs[0]) return null;
    if (runs[0].status === 'RUNNING') {
      const expiresAt = new Date(now.getTime() + ttlMs);
      const granted = await this.sql.execute<{ worker_id: string; expires_at: Date }>(
        `insert into run_leases (run_id, worker_id, expires_at, acquired_at) values (?, ?, ?, ?)
         on conflict (run_id) do update set
           worker_id = excluded.worker_id,
           expires_at = excluded.expires_at,
           acquired_at = case when run_leases.worker_id = excluded.worker_id then run_leases.acquired_at
                              else excluded.acquired_at end
         where run_leases.worker_id = excluded.worker_id or run_leases.expires_at <= ?
         returning worker_id, expires_at`,
        [runId, workerId, expiresAt, now, now],
      );
      if (granted[0]) return { acquired: true, holder: workerId, expiresAt: expiresAt.toISOString() };
    }
    const held = await this.holder(runId);
    return { acquired: false, holder: held?.workerId ?? null, expiresAt: held?.expiresAt ?? null };
  }

  /** Gives a lease up; only its holder can. */
  async release(runId: string, workerId: string): Promise<boolean> {
    const rows = await this.sql.execute('delete from run_leases where run_id = ? and worker_id = ? returning run_id', [
      runId,
      workerId,
    ]);
    return rows.length > 0;
  }

  /**
   * Takes over RUNNING runs whose lease expired, oldest expiry first. `skip locked`: two workers
   * claiming at once never get the same run, and neither waits for the other.
   */
  async claimExpired(workerId: string, ttlMs: number, limit: number, now: Date): Promise<string[]> {
    const rows = await this.sql.execute<{ run_id: string }>(
      `with expired as (
         select l.run_id from run_leases l join run_streams s on s.run_id = l.run_id
         where l.expires_at <= ? and s.status = 'RUNNING'
         order by l.expires_at
         limit ?
         for update of l skip locked
       )
       update run_leases l set worker_id = ?, expires_at = ?, acquired_at = ?
       from expired where l.run_id = expired.run_id
       returning l.run_id`,
      [now, limit, workerId, new Date(now.getTime() + ttlMs), now],
    );
    return rows.map((r) => r.run_id);
  }

  async holder(runId: string): Promise<{ workerId: string; expiresAt: string } | null> {
    const rows = await this.sql.execute<{ worker_id: string; expires_at: Date }>(
      'select worker_id, expires_at from run_leases where run_id = ?',
      [runId],
    );
    return rows[0] ? { workerId: rows[0].worker_id, expiresAt: new Date(rows[0].expires_at).toISOString() } : null;
  }

  /**
   * Fencing: the worker must hold an unexpired lease on the run. Call inside the reporting
   * command's transaction: the lease row stays share-locked until it commits, so the lease cannot
   * be taken over between this check and the append.
   */
  async checkHeld(runId: string, workerId: string, now: Date): Promise<DomainError | null> {
    const rows = await this.sql.execute<LeaseRow>('select run_id, worker_id, expires_at from run_leases where run_id = ? for share', [runId]);
    return leaseLost(runId, workerId, rows[0], now);
  }

  /**
   * `checkHeld` for many runs in one statement (a batch of reports): the refusals by run id; a run
   * whose worker holds its lease is absent. Share-locks the lease rows in run id order.
   */
  async checkHeldMany(holders: ReadonlyMap<string, string>, now: Date): Promise<Map<string, DomainError>> {
    const lost = new Map<string, DomainError>();
    if (holders.size === 0) return lost;
    const rows = await this.sql.execute<LeaseRow>(
      'select run_id, worker_id, expires_at from run_leases where run_id in (?) order by run_id for share',
      [[...holders.keys()]],
    );
    const byRun = new Map(rows.map((r) => [r.run_id, r]));
    for (const [runId, workerId] of holders) {
      const refusal = leaseLost(runId, workerId, byRun.get(runId), now);
      if (refusal) lost.set(runId, refusal);
    }
    return lost;
  }
}

interface LeaseRow {
  run_id: string;
  worker_id: string;
  expires_at: Date;
}

/** LEASE_LOST unless `workerId` holds an unexpired lease (the row), naming the live holder if any. */
function leaseLost(runId: string, workerId: string, l: LeaseRow | undefined, now: Date): DomainError | null {
  const live = l !== undefined && new Date(l.expires_at).getTime() > now.getTime();
  if (live && l.worker_id === workerId) return null;
  return domainError('LEASE_LOST', {
    entityType: 'flow_run',
    entityId: runId,
    workerId,
    holder: live ? l.worker_id : null,
    message: 'the worker does not hold the lease on this run',
  });
}
