/**
 * Calls `fn` for every item of `source` with at most `concurrency` calls in flight. Items are
 * pulled only when a slot is free, so an async source (pages read on demand) is never read ahead
 * by more than what its own buffer holds. The first failure stops new calls from starting; calls
 * already running finish, then the promise rejects with that failure.
 */
export async function forEachBounded<T>(
  source: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  const it: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  const state: { failure: { error: unknown } | null } = { failure: null };

  // Async generators queue concurrent next() calls, so the workers may share one iterator.
  const worker = async (): Promise<void> => {
    while (!state.failure) {
      let next: IteratorResult<T>;
      try {
        next = await it.next();
      } catch (e) {
        state.failure ??= { error: e };
        return;
      }
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (e) {
        state.failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (state.failure) {
    // Let a generator source release what it holds (it stops reading pages).
    await it.return?.();
    throw state.failure.error;
  }
}
