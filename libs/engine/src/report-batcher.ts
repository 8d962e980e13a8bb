import { ReportAnswerSchema, type CommandResult, type EngineReportInput } from '@flowruns/contracts';
import { CommandServiceError, CommandServiceUnavailable, currentTraceparent } from '@flowruns/platform';
import { z } from 'zod';

export interface ReportBatcherOptions {
  /** Reports per call at most (the command service takes up to 500). */
  readonly maxReports: number;
  /** Characters of JSON per call at most; a single larger report still goes, alone. */
  readonly maxChars: number;
  /** Calls in flight at once; reports that arrive meanwhile wait and go together in the next one. */
  readonly maxInFlight: number;
}

export const DEFAULT_REPORT_BATCHING: ReportBatcherOptions = { maxReports: 200, maxChars: 1_000_000, maxInFlight: 2 };

/** What one report resolves to: its command result (a pause's also names the request id). */
export type ReportResult = CommandResult & { requestId?: string; resumeDeadline?: string };

interface Queued {
  readonly text: string;
  readonly resolve: (r: ReportResult) => void;
  readonly reject: (e: unknown) => void;
}

const BatchAnswer = z.object({ results: z.array(ReportAnswerSchema) });

/**
 * Group commit for engine reports: the reports of every run a worker drives are queued and sent
 * together (`POST /internal/reports`), one call and one transaction for many. Nothing waits on a
 * timer: a report goes at the next turn of the event loop if a call slot is free, and the reports
 * that arrive while the calls are in flight go together in the next call — the busier the worker,
 * the larger the batches. Each caller still gets its own report's answer (or refusal, as a
 * `CommandServiceError`), with its own span in the report's `traceparent`.
 */
export class ReportBatcher {
  private readonly queue: Queued[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    /** Sends `{"reports":[…]}` (already JSON) and answers the parsed body. */
    private readonly send: (body: string) => Promise<unknown>,
    private readonly opts: ReportBatcherOptions = DEFAULT_REPORT_BATCHING,
  ) {}

  submit(report: EngineReportInput): Promise<ReportResult> {
    const traceparent = currentTraceparent();
    const text = JSON.stringify(traceparent ? { ...report, traceparent } : report);
    return new Promise<ReportResult>((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Reports waiting for a call slot (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      let n = 0;
      let chars = 0;
      while (n < this.queue.length && n < this.opts.maxReports && (n === 0 || chars + this.queue[n].text.length < this.opts.maxChars)) {
        chars += this.queue[n].text.length + 1;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: readonly Queued[]): Promise<void> {
    try {
      const body = await this.send(`{"reports":[${batch.map((q) => q.text).join(',')}]}`);
      const parsed = BatchAnswer.safeParse(body);
      if (!parsed.success || parsed.data.results.length !== batch.length) {
        throw new CommandServiceUnavailable('command service answer to reports breaks the contract');
      }
      parsed.data.results.forEach((r, i) => {
        if ('ok' in r) batch[i].resolve(r.ok as ReportResult);
        else batch[i].reject(new CommandServiceError(r.error.statusCode, r.error.code, r.error.params, 'POST /internal/reports'));
      });
    } catch (e) {
      for (const q of batch) q.reject(e);
    }
  }
}
