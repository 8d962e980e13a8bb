import { BatchAnswerSchema, type ErrorEnvelope } from '@flowruns/contracts';
import { CommandServiceUnavailable } from './internal-client';
import { currentTraceparent } from './tracing';

export interface CallBatcherOptions {
  /** Items per call at most (the command service's batch endpoints take up to 500). */
  readonly maxItems: number;
  /** Characters of JSON per call at most; a single larger item still goes, alone. */
  readonly maxChars: number;
  /** Calls in flight at once; items that arrive meanwhile wait and go together in the next one. */
  readonly maxInFlight: number;
}

interface Queued<O> {
  readonly text: string;
  readonly resolve: (r: O) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Group commit for calls to a batch endpoint of the command service (`POST /internal/reports`,
 * `POST /internal/triggers`): items are queued and sent together, one call and one transaction for
 * many. Nothing waits on a timer: an item goes at the next turn of the event loop if a call slot is
 * free, and the items that arrive while calls are in flight go together in the next call — the busier
 * the caller, the larger the batches. Each item carries its caller's span (`traceparent`), and each
 * caller gets its own item's answer, or its refusal as the error `refusal` makes of the envelope.
 */
export class CallBatcher<I extends object, O> {
  private readonly queue: Queued<O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly opts: CallBatcherOptions & {
      /** The list's key in the body: `{"<key>":[…]}`. */
      readonly key: string;
      /** Sends the body (already JSON) and answers the parsed answer; throws for the whole batch. */
      readonly send: (body: string) => Promise<unknown>;
      /** The error a caller gets for its item's refusal. */
      readonly refusal: (envelope: ErrorEnvelope) => Error;
      /** What to call the endpoint in a contract breach. */
      readonly what: string;
      /** The error every caller of a batch gets when the answer breaks the contract (default `CommandServiceUnavailable`). */
      readonly breach?: (message: string) => Error;
    },
  ) {}

  submit(item: I): Promise<O> {
    const traceparent = currentTraceparent();
    const text = JSON.stringify(traceparent && !('traceparent' in item) ? { ...item, traceparent } : item);
    return new Promise<O>((resolve, reject) => {
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

  /** Items waiting for a call slot. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      let n = 0;
      let chars = 0;
      while (n < this.queue.length && n < this.opts.maxItems && (n === 0 || chars + this.queue[n].text.length < this.opts.maxChars)) {
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

  private async flush(batch: readonly Queued<O>[]): Promise<void> {
    try {
      const body = await this.opts.send(`{"${this.opts.key}":[${batch.map((q) => q.text).join(',')}]}`);
      const parsed = BatchAnswerSchema.safeParse(body);
      if (!parsed.success || parsed.data.results.length !== batch.length) {
        const message = `command service answer to ${this.opts.what} breaks the contract`;
        throw this.opts.breach ? this.opts.breach(message) : new CommandServiceUnavailable(message);
      }
      parsed.data.results.forEach((r, i) => {
        if ('error' in r) batch[i].reject(this.opts.refusal(r.error as ErrorEnvelope));
        else batch[i].resolve(r.ok as O);
      });
    } catch (e) {
      for (const q of batch) q.reject(e);
    }
  }
}
