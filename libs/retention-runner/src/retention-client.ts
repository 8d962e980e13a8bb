import { PurgeBatchOutcomeSchema, RetentionPlanSchema, type PurgeBatchOutcomeResult, type PurgeCursorInput, type RetentionPlan } from '@flowruns/contracts';
import { InternalApiClient, type InternalApiClientOptions } from '@flowruns/platform';

/** The window a purge is measured against (see `RetentionWindowSchema`). */
export interface RetentionWindowInput {
  readonly now: Date;
  readonly defaultDays: number;
}

/** The command service's retention endpoints: the purge itself happens there, in the write model. */
export class RetentionClient {
  private readonly http: InternalApiClient;

  constructor(opts: InternalApiClientOptions) {
    this.http = new InternalApiClient(opts);
  }

  /**
   * One batch, oldest finish first, after `after` (the previous batch's `last`) when given. Safe to
   * repeat (an expired run is purged once), so retried on transient failures.
   */
  async purgeBatch(window: RetentionWindowInput, limit: number, after: PurgeCursorInput | null = null): Promise<PurgeBatchOutcomeResult> {
    const request = { now: window.now.toISOString(), defaultDays: window.defaultDays, limit, ...(after ? { after } : {}) };
    const body = await this.http.call('POST', '/internal/retention/purge', request, 'transient');
    return this.http.expect(PurgeBatchOutcomeSchema, body, 'retention purge');
  }

  async plan(window: RetentionWindowInput): Promise<RetentionPlan> {
    const body = await this.http.call('POST', '/internal/retention/plan', { now: window.now.toISOString(), defaultDays: window.defaultDays }, 'transient');
    return this.http.expect(RetentionPlanSchema, body, 'retention plan');
  }

  probe(): Promise<{ httpStatus: number }> {
    return this.http.probe();
  }
}
