/** A drive the pool runs: the run and what the event that asked for it knew. */
export interface DriveRequest {
  readonly runId: string;
  readonly runningSince?: string;
  /** The asking event's `traceparent`: the drive continues that trace. */
  readonly traceparent?: string;
}

export type SubmitResult = 'started' | 'queued' | 'coalesced' | 'closed';

/**
 * Runs drives with bounded concurrency, never two of the same run at once in this process. A run
 * asked for while its drive is active is driven once more after it (the event may have come after
 * the drive read the run: a resume right after the pause); asked for while queued, it stays one
 * queued drive. Once closed, nothing new starts.
 */
export class DrivePool {
  private readonly activeRuns = new Set<string>();
  private readonly again = new Map<string, DriveRequest>();
  private readonly queue = new Map<string, DriveRequest>();
  private closedFlag = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly work: (req: DriveRequest) => Promise<void>,
    private readonly onChange: (active: number, queued: number) => void = () => undefined,
  ) {}

  get active(): number {
    return this.activeRuns.size;
  }

  get queued(): number {
    return this.queue.size;
  }

  /** Slots not taken by active or queued drives: how many more runs this worker should take on. */
  get free(): number {
    return Math.max(0, this.concurrency - this.activeRuns.size - this.queue.size);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** True when the run is being driven, or waits for a slot, here. */
  holds(runId: string): boolean {
    return this.activeRuns.has(runId) || this.queue.has(runId);
  }

  submit(req: DriveRequest): SubmitResult {
    if (this.closedFlag) return 'closed';
    if (this.activeRuns.has(req.runId)) {
      this.again.set(req.runId, req);
      return 'coalesced';
    }
    if (this.queue.has(req.runId)) {
      this.queue.set(req.runId, { ...this.queue.get(req.runId), ...req });
      return 'coalesced';
    }
    this.queue.set(req.runId, req);
    this.pump();
    return this.activeRuns.has(req.runId) ? 'started' : 'queued';
  }

  /** Stops starting drives; returns the queued ones (their leases are the caller's to hand over). */
  close(): DriveRequest[] {
    this.closedFlag = true;
    const left = [...this.queue.values()];
    this.queue.clear();
    this.again.clear();
    this.onChange(this.activeRuns.size, 0);
    this.settleIdle();
    return left;
  }

  /** Resolves once no drive is active (or after `timeoutMs`: false then). */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.activeRuns.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  private pump(): void {
    while (!this.closedFlag && this.activeRuns.size < this.concurrency && this.queue.size > 0) {
      const [runId, req] = this.queue.entries().next().value as [string, DriveRequest];
      this.queue.delete(runId);
      this.activeRuns.add(runId);
      void this.run(req);
    }
    this.onChange(this.activeRuns.size, this.queue.size);
  }

  private async run(req: DriveRequest): Promise<void> {
    try {
      await this.work(req);
    } catch {
      // The work function reports its own failures; the pool only keeps going.
    } finally {
      this.activeRuns.delete(req.runId);
      const again = this.again.get(req.runId);
      this.again.delete(req.runId);
      if (again && !this.closedFlag) this.queue.set(req.runId, again);
      this.pump();
      this.settleIdle();
    }
  }

  private settleIdle(): void {
    if (this.activeRuns.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
