import type { EngineReportInput, ReportResult } from '@flowruns/contracts';
import { CallBatcher, CommandServiceError, type CallBatcherOptions } from '@flowruns/platform';

export interface ReportBatcherOptions {
  /** Reports per call at most (the command service takes up to 500). */
  readonly maxReports: number;
  /** Characters of JSON per call at most; a single larger report still goes, alone. */
  readonly maxChars: number;
  /** Calls in flight at once; reports that arrive meanwhile wait and go together in the next one. */
  readonly maxInFlight: number;
}

export const DEFAULT_REPORT_BATCHING: ReportBatcherOptions = { maxReports: 200, maxChars: 1_000_000, maxInFlight: 2 };


/**
 * A worker's engine reports in batches (`POST /internal/reports`, see `CallBatcher`): each caller
 * still gets its own report's answer, or its refusal as a `CommandServiceError`.
 */
export class ReportBatcher extends CallBatcher<EngineReportInput, ReportResult> {
  constructor(send: (body: string) => Promise<unknown>, opts: ReportBatcherOptions = DEFAULT_REPORT_BATCHING) {
    const batching: CallBatcherOptions = { maxItems: opts.maxReports, maxChars: opts.maxChars, maxInFlight: opts.maxInFlight };
    super({
      ...batching,
      key: 'reports',
      send,
      what: 'reports',
      refusal: (e) => new CommandServiceError(e.statusCode, e.code, e.params, 'POST /internal/reports'),
    });
  }
}
