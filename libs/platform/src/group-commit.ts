/** What a batch answers for one of its items: its result, or the error its caller gets. */
export type ItemOutcome<O> = { readonly ok: O } | { readonly error: unknown };

export interface GroupCommitOptions<I, O> {
  /** Items per batch at most. */
  readonly maxItems: number;
  /** Batches applied at once; items that arrive meanwhile wait and go together in the next one. */
  readonly maxInFlight: number;
  /** A batch's weight at most, and an item's (characters of JSON, say); a single heavier item still goes, alone. */
  readonly weight?: { readonly of: (item: I) => number; readonly max: number };
  /** Applies a batch: one outcome per item, in order; throws to fail every item of the batch. */
  readonly apply: (items: readonly I[]) => Promise<readonly ItemOutcome<O>[]>;
}

interface Queued<I, O> {
  readonly item: I;
  readonly resolve: (r: O) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Group commit: items are queued and applied together, one call (one transaction) for many. Nothing
 * waits on a timer: an item goes at the next turn of the event loop if a slot is free, and the items
 * that arrive while batches are being applied go together in the next one — the busier the callers,
 * the larger the batches, and a lone caller waits for nobody. Each caller gets its own item's
 * outcome; a batch that fails as a whole fails each of its callers with that error.
 */
export class GroupCommit<I, O> {
  private readonly queue: Queued<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly opts: GroupCommitOptions<I, O>) {
    if (opts.maxItems < 1 || opts.maxInFlight < 1) throw new Error('GroupCommit needs maxItems and maxInFlight of at least 1');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Items waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    const { maxItems, maxInFlight, weight } = this.opts;
    while (this.inFlight < maxInFlight && this.queue.length > 0) {
      let n = 0;
      let total = 0;
      while (n < this.queue.length && n < maxItems) {
        const w = weight ? weight.of(this.queue[n].item) : 0;
        if (n > 0 && weight && total + w > weight.max) break;
        total += w;
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

  private async flush(batch: readonly Queued<I, O>[]): Promise<void> {
    try {
      const outcomes = await this.opts.apply(batch.map((q) => q.item));
      if (outcomes.length !== batch.length) throw new Error(`a batch of ${batch.length} items answered ${outcomes.length} outcomes`);
      outcomes.forEach((o, i) => ('ok' in o ? batch[i].resolve(o.ok) : batch[i].reject(o.error)));
    } catch (e) {
      for (const q of batch) q.reject(e);
    }
  }
}
