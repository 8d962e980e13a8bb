import { BatchAnswerSchema, type ErrorEnvelope } from '@flowruns/contracts';
import { CommandServiceUnavailable } from './internal-client';
import { GroupCommit, type ItemOutcome } from './group-commit';
import { currentTraceparent } from './tracing';

export interface CallBatcherOptions {
  /** Items per call at most (the command service's batch endpoints take up to 500). */
  readonly maxItems: number;
  /** Characters of JSON per call at most; a single larger item still goes, alone. */
  readonly maxChars: number;
  /** Calls in flight at once; items that arrive meanwhile wait and go together in the next one. */
  readonly maxInFlight: number;
}

/**
 * Group commit for calls to a batch endpoint of the command service (`POST /internal/reports`,
 * `POST /internal/triggers`; see `GroupCommit`): items are queued and sent together, one call and one
 * transaction for many. Each item carries its caller's span (`traceparent`), and each caller gets its
 * own item's answer, or its refusal as the error `refusal` makes of the envelope.
 */
export class CallBatcher<I extends object, O> {
  private readonly group: GroupCommit<string, O>;

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
  ) {
    this.group = new GroupCommit<string, O>({
      maxItems: opts.maxItems,
      maxInFlight: opts.maxInFlight,
      // Each item's JSON and its comma.
      weight: { of: (text) => text.length + 1, max: opts.maxChars },
      apply: (texts) => this.call(texts),
    });
  }

  submit(item: I): Promise<O> {
    const traceparent = currentTraceparent();
    return this.group.submit(JSON.stringify(traceparent && !('traceparent' in item) ? { ...item, traceparent } : item));
  }

  /** Items waiting for a call slot. */
  get waiting(): number {
    return this.group.waiting;
  }

  private async call(texts: readonly string[]): Promise<ItemOutcome<O>[]> {
    const body = await this.opts.send(`{"${this.opts.key}":[${texts.join(',')}]}`);
    const parsed = BatchAnswerSchema.safeParse(body);
    if (!parsed.success || parsed.data.results.length !== texts.length) {
      const message = `command service answer to ${this.opts.what} breaks the contract`;
      throw this.opts.breach ? this.opts.breach(message) : new CommandServiceUnavailable(message);
    }
    return parsed.data.results.map((r) => ('error' in r ? { error: this.opts.refusal(r.error as ErrorEnvelope) } : { ok: r.ok as O }));
  }
}
